// SPDX-License-Identifier: Apache-2.0
//
// Compaction (compact.c): the latest record of every key survives at its
// offset (C2), tombstones go only after delete.retention.ms, records
// without a key and control batches stay, the active segment is never
// touched (C1), emptied segments disappear, a second pass changes nothing,
// the result survives a reopen, appends go on while a pass runs, and a
// truncation discards a pass that overlapped it (C5), and a pass cut short
// before its renames leaves the clean point where it was (C8).
#include <criterion/criterion.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "broker/log/log_int.h"
#include "proto/batch.h"
#include "proto/error.h"
#include "proto/varint.h"
#include "tests/unit/log/helpers.h"

#define KEYS 10
#define MAX_OFFSETS 4096

// What the test wrote: for every offset, its key (-1: no key), whether it
// is a tombstone, and its timestamp.
static struct {
	int key[MAX_OFFSETS];
	bool tomb[MAX_OFFSETS];
	int64_t ts[MAX_OFFSETS];
	int64_t n;
} W;

struct kv {
	int key;   // -1: no key
	bool tomb;
};

static void appended(void *arg, int res, int64_t base, int64_t last)
{
	struct tl_cb *cb = arg;
	cb->calls++;
	cb->res = res;
	cb->base = base;
	cb->last = last;
}

// Appends one batch of records (attributes may mark it a control batch).
// Each value is "o<offset>", so a record read back tells where it was
// written.
static void put(const struct kv *recs, int n, int64_t ts, uint16_t attrs)
{
	uint8_t buf[4096];
	char keys[64][8], vals[64][16];
	struct ox_batch_params p = {.attributes = attrs,
				    .producer_id = OX_PRODUCER_NONE,
				    .base_sequence = OX_SEQUENCE_NONE};
	struct ox_batch_builder b;
	cr_assert_leq(n, 64);
	cr_assert_eq(ox_batch_builder_init(&b, buf, sizeof(buf), &p), 0);
	int64_t base = ox_log_end_offset(T.log);
	for (int i = 0; i < n; i++) {
		snprintf(keys[i], sizeof(keys[i]), "k%d", recs[i].key);
		snprintf(vals[i], sizeof(vals[i]), "o%" PRId64, base + i);
		struct ox_record r = {
			.key = (const uint8_t *)keys[i],
			.key_len = recs[i].key < 0 ? -1 : (int32_t)strlen(keys[i]),
			.value = recs[i].tomb ? NULL : (const uint8_t *)vals[i],
			.value_len = recs[i].tomb ? -1 : (int32_t)strlen(vals[i]),
			.timestamp = ts,
		};
		cr_assert_eq(ox_batch_builder_add(&b, &r), 0);
		cr_assert_lt(base + i, MAX_OFFSETS);
		W.key[base + i] = recs[i].key;
		W.tomb[base + i] = recs[i].tomb;
		W.ts[base + i] = ts;
	}
	size_t len;
	cr_assert_eq(ox_batch_builder_finish(&b, &len), 0);
	struct tl_cb cb = {0};
	cr_assert_eq(ox_log_append(T.log, buf, len, 1, 0, appended, &cb, NULL), 0);
	tl_wait(&cb);
	cr_assert_eq(cb.res, 0);
	W.n = base + n;
}

// One round: every key once, values (or tombstones for `tomb_mask` keys).
static void round_of_keys(int64_t ts, unsigned tomb_mask)
{
	struct kv recs[KEYS];
	for (int k = 0; k < KEYS; k++)
		recs[k] = (struct kv){.key = k, .tomb = (tomb_mask >> k) & 1};
	put(recs, KEYS, ts, 0);
}

// The offset of the latest record of key below `upto` (-1 if none).
static int64_t latest_written(int key, int64_t upto)
{
	for (int64_t o = upto - 1; o >= 0; o--)
		if (W.key[o] == key)
			return o;
	return -1;
}

struct seen {
	int64_t offsets[MAX_OFFSETS];
	int n;
	int controls;
};

// Reads the whole log; checks every batch verifies, offsets increase and
// each record still says the offset it was written at (C2).
static void read_back(struct seen *s)
{
	size_t len, pos = 0;
	uint8_t *all = tl_read_all(&len);
	struct ox_batch_header h;
	int64_t prev = -1;
	memset(s, 0, sizeof(*s));
	while (ox_batch_next(all, len, &pos, &h) == 1) {
		const uint8_t *batch = all + pos - h.length;
		cr_assert_eq(ox_batch_verify(batch, h.length, NULL), 0);
		cr_assert_gt(h.base_offset, prev, "offsets only increase");
		prev = h.base_offset + h.last_offset_delta;
		if (h.attributes & OX_BATCH_ATTR_CONTROL)
			s->controls++;
		struct ox_batch_iter it;
		struct ox_record r;
		cr_assert_eq(ox_batch_iter_init(&it, batch, h.length), 0);
		while (ox_batch_iter_next(&it, &r) == 1) {
			cr_assert_lt(r.offset, W.n);
			if (r.value_len >= 0) {
				char want[24];
				snprintf(want, sizeof(want), "o%" PRId64, r.offset);
				cr_assert_eq((size_t)r.value_len, strlen(want));
				cr_assert_eq(memcmp(r.value, want, strlen(want)), 0,
					     "record moved from its offset");
			}
			cr_assert_eq(r.value_len < 0, W.tomb[r.offset]);
			s->offsets[s->n++] = r.offset;
		}
	}
	free(all);
}

static bool seen_has(const struct seen *s, int64_t offset)
{
	for (int i = 0; i < s->n; i++)
		if (s->offsets[i] == offset)
			return true;
	return false;
}

// Lets the background index writes of sealed segments finish: compaction
// stops at a segment whose index files are being written (C1), and the
// tests want every sealed segment in the pass.
static void settle(void)
{
	for (int i = 0; T.log->index_jobs > 0 && i < 1000; i++)
		cr_assert_geq(ox_io_run(T.io, 1), 0);
	cr_assert_eq(T.log->index_jobs, 0);
}

static void compact_all(void)
{
	settle();
	cr_assert_eq(ox_log_compact(T.log, ox_log_end_offset(T.log)), 0);
}

static void open_compacted(uint64_t segment_bytes)
{
	// Tombstones age by their segment file's mtime (C2): the test clock
	// runs from the real time so the two can be compared.
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	T.now_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
	T.cfg.cleanup = OX_LOG_CLEANUP_COMPACT;
	T.cfg.segment_bytes = segment_bytes;
	T.cfg.index_interval_bytes = 64;
	T.cfg.delete_retention_ms = 1000;
	memset(&W, 0, sizeof(W));
	tl_open();
}

LOG_TEST(compact, latest_per_key_kept_at_its_offset)
{
	open_compacted(600);
	for (int r = 0; r < 30; r++)
		round_of_keys(T.now_ms, 0);
	unsigned segs = ox_log_segment_count(T.log);
	cr_assert_geq(segs, 5);
	struct ox_segment *active = ox_log_active(T.log);
	uint64_t active_size = active->size;
	int64_t end = ox_log_end_offset(T.log);

	compact_all();
	cr_assert_eq(ox_log_active(T.log), active, "C1: active untouched");
	cr_assert_eq(active->size, active_size);
	cr_assert_eq(ox_log_end_offset(T.log), end);

	struct seen s;
	read_back(&s);
	// Every key's latest record survives, and below the active segment
	// nothing but each key's latest within the cleaned part.
	int64_t sealed_end = active->base_offset;
	for (int k = 0; k < KEYS; k++) {
		cr_assert(seen_has(&s, latest_written(k, end)));
		int64_t last_sealed = latest_written(k, sealed_end);
		for (int64_t o = 0; o < sealed_end; o++)
			if (W.key[o] == k && o != last_sealed)
				cr_assert(!seen_has(&s, o), "k%d@%" PRId64 " kept", k, o);
	}
	cr_assert_lt(ox_log_segment_count(T.log), segs, "emptied segments go");
	cr_assert_lt(ox_log_size_bytes(T.log), (uint64_t)segs * 600);
}

LOG_TEST(compact, second_pass_changes_nothing)
{
	open_compacted(600);
	for (int r = 0; r < 20; r++)
		round_of_keys(T.now_ms, 0);
	compact_all();
	size_t len1, len2;
	uint8_t *once = tl_read_all(&len1);
	unsigned segs = ox_log_segment_count(T.log);
	compact_all();
	uint8_t *twice = tl_read_all(&len2);
	cr_assert_eq(len1, len2);
	cr_assert_eq(memcmp(once, twice, len1), 0, "a re-run is idempotent");
	cr_assert_eq(ox_log_segment_count(T.log), segs);
	tl_reopen();
	uint8_t *reopened = tl_read_all(&len2);
	cr_assert_eq(len1, len2);
	cr_assert_eq(memcmp(once, reopened, len1), 0, "survives a reopen");
	free(once);
	free(twice);
	free(reopened);
}

LOG_TEST(compact, tombstones_go_after_delete_retention)
{
	open_compacted(600);
	for (int r = 0; r < 10; r++)
		round_of_keys(T.now_ms, 0);
	// k0 and k2 deleted, by a producer whose clock says 1970: the age of a
	// tombstone is the broker's to measure, not the producer's (C2).
	round_of_keys(1, 0x5);
	for (int r = 0; r < 10; r++) {
		struct kv recs[] = {{.key = 5}, {.key = 6}};
		put(recs, 2, T.now_ms, 0); // pushes the tombstones out of the active segment
	}
	int64_t t0 = latest_written(0, W.n), t2 = latest_written(2, W.n);
	cr_assert(W.tomb[t0] && W.tomb[t2]);

	compact_all();
	struct seen s;
	read_back(&s);
	cr_assert(seen_has(&s, t0) && seen_has(&s, t2), "young tombstones stay");
	for (int64_t o = 0; o < t0; o++)
		if (W.key[o] == 0 || W.key[o] == 2)
			cr_assert(!seen_has(&s, o), "value under a tombstone kept");

	T.now_ms += 60000; // well past delete.retention.ms after the write
	compact_all();
	read_back(&s);
	for (int64_t o = 0; o < W.n; o++)
		if (W.key[o] == 0 || W.key[o] == 2)
			cr_assert(!seen_has(&s, o), "k%d@%" PRId64 " is back", W.key[o], o);
	cr_assert(seen_has(&s, latest_written(1, W.n)), "other keys stay");
}

LOG_TEST(compact, keyless_records_and_control_batches_stay)
{
	open_compacted(400);
	struct kv keyless[] = {{.key = -1}, {.key = -1}};
	struct kv ctl[] = {{.key = -1}};
	put(keyless, 2, T.now_ms, 0);
	put(ctl, 1, T.now_ms, OX_BATCH_ATTR_CONTROL);
	for (int r = 0; r < 12; r++)
		round_of_keys(T.now_ms, 0);
	compact_all();
	struct seen s;
	read_back(&s);
	cr_assert(seen_has(&s, 0) && seen_has(&s, 1), "keyless records stay");
	cr_assert(seen_has(&s, 2), "the control record stays");
	cr_assert_eq(s.controls, 1);
	cr_assert_eq(ox_log_start_offset(T.log), 0);
}

LOG_TEST(compact, only_below_the_limit_and_the_policy)
{
	T.cfg.segment_bytes = 600;
	tl_open();
	round_of_keys(T.now_ms, 0);
	cr_assert_eq(ox_log_compact(T.log, ox_log_end_offset(T.log)), -EINVAL,
		     "delete-only topics are not compacted");
	tl_close();
	open_compacted(600);
	for (int r = 0; r < 20; r++)
		round_of_keys(T.now_ms, 0);
	size_t len1, len2;
	uint8_t *before = tl_read_all(&len1);
	cr_assert_eq(ox_log_compact(T.log, 0), 0, "limit 0: nothing to do");
	uint8_t *after = tl_read_all(&len2);
	cr_assert_eq(len1, len2);
	cr_assert_eq(memcmp(before, after, len1), 0);
	free(before);
	free(after);
}

LOG_TEST(compact, appends_go_on_during_a_pass)
{
	open_compacted(600);
	for (int r = 0; r < 30; r++)
		round_of_keys(T.now_ms, 0);
	settle();
	cr_assert_eq(ox_log_compact_start(T.log, ox_log_end_offset(T.log)), 0);
	cr_assert_eq(ox_log_compact_start(T.log, ox_log_end_offset(T.log)), -EALREADY);
	for (int r = 0; r < 5; r++)
		round_of_keys(T.now_ms, 0);
	int rc = 0;
	for (int i = 0; i < 10000 && (rc = ox_log_compact_poll(T.log)) == 0; i++)
		usleep(1000);
	cr_assert_eq(rc, 1, "the pass swapped in: %d", rc);
	struct seen s;
	read_back(&s);
	for (int k = 0; k < KEYS; k++)
		cr_assert(seen_has(&s, latest_written(k, W.n)));
	cr_assert_eq(ox_log_end_offset(T.log), W.n);
}

LOG_TEST(compact, truncation_discards_an_overlapping_pass)
{
	open_compacted(600);
	for (int r = 0; r < 30; r++)
		round_of_keys(T.now_ms, 0);
	size_t len1;
	uint8_t *before = tl_read_all(&len1);
	settle();
	cr_assert_eq(ox_log_compact_start(T.log, ox_log_end_offset(T.log)), 0);
	int64_t cut = W.n - 2 * KEYS;
	cr_assert_eq(ox_log_truncate(T.log, cut), 0);
	cr_assert_eq(ox_log_compact_poll(T.log), 0, "nothing left to swap");
	W.n = cut;
	struct seen s;
	read_back(&s);
	for (int64_t o = 0; o < cut; o++)
		cr_assert(seen_has(&s, o), "the aborted pass dropped %" PRId64, o);
	free(before);
	// The log compacts normally afterwards.
	compact_all();
	read_back(&s);
	for (int k = 0; k < KEYS; k++)
		cr_assert(seen_has(&s, latest_written(k, W.n)));
}

// A pass cut short by close leaves nothing behind that a later open could
// misread: reopened even under the delete policy, the log (gaps from an
// earlier pass included, C7) is exactly what it was.
LOG_TEST(compact, close_during_a_pass_then_reopen_with_delete)
{
	open_compacted(600);
	for (int r = 0; r < 20; r++)
		round_of_keys(T.now_ms, 0);
	compact_all(); // leaves gaps between segments
	for (int r = 0; r < 20; r++)
		round_of_keys(T.now_ms, 0);
	settle();
	size_t len1, len2;
	uint8_t *before = tl_read_all(&len1);
	int64_t end = ox_log_end_offset(T.log);
	cr_assert_eq(ox_log_compact_start(T.log, end), 0);
	tl_close();
	T.cfg.cleanup = OX_LOG_CLEANUP_DELETE;
	tl_open();
	cr_assert_eq(ox_log_end_offset(T.log), end, "nothing cut at open");
	uint8_t *after = tl_read_all(&len2);
	cr_assert_eq(len1, len2);
	cr_assert_eq(memcmp(before, after, len1), 0);
	free(before);
	free(after);
}

// Survivors whose timestamps cannot be re-based on the first survivor (the
// deltas would overflow) are split into batches of their own, at their
// offsets, with their timestamps: the pass neither fails nor stalls.
LOG_TEST(compact, survivors_that_do_not_fit_one_batch_are_split)
{
	open_compacted(300);
	uint8_t buf[1024];
	struct ox_batch_params p = {.producer_id = OX_PRODUCER_NONE,
				    .base_sequence = OX_SEQUENCE_NONE};
	const int64_t ts[] = {0, INT64_MIN + 1, INT64_MAX};
	const char *keys[] = {"k0", "k1", "k2"};
	struct ox_batch_builder b;
	cr_assert_eq(ox_batch_builder_init(&b, buf, sizeof(buf), &p), 0);
	for (int i = 0; i < 3; i++) {
		char val[8];
		snprintf(val, sizeof(val), "o%d", i);
		struct ox_record r = {.key = (const uint8_t *)keys[i], .key_len = 2,
				      .value = (const uint8_t *)val, .value_len = 2,
				      .timestamp = ts[i]};
		cr_assert_eq(ox_batch_builder_add(&b, &r), 0);
		W.key[i] = i;
		W.ts[i] = ts[i];
	}
	size_t len;
	cr_assert_eq(ox_batch_builder_finish(&b, &len), 0);
	struct tl_cb cb = {0};
	cr_assert_eq(ox_log_append(T.log, buf, len, 1, 0, appended, &cb, NULL), 0);
	tl_wait(&cb);
	W.n = 3;
	struct kv others[] = {{.key = 0}, {.key = 5}, {.key = 6}};
	for (int r = 0; r < 20; r++)
		put(others, 3, T.now_ms, 0); // supersedes k0@0, never k1 or k2
	compact_all();
	struct seen s;
	read_back(&s);
	cr_assert(!seen_has(&s, 0), "k0@0 is superseded");
	cr_assert(seen_has(&s, 1) && seen_has(&s, 2), "k1 and k2 stay where they were");
	// Their timestamps are intact.
	size_t n;
	uint8_t *all = tl_read_all(&n);
	struct ox_batch_iter it;
	struct ox_record r;
	size_t pos = 0;
	struct ox_batch_header h;
	int found = 0;
	while (ox_batch_next(all, n, &pos, &h) == 1 && h.base_offset <= 2) {
		cr_assert_eq(ox_batch_iter_init(&it, all + pos - h.length, h.length), 0);
		while (ox_batch_iter_next(&it, &r) == 1)
			if (r.offset <= 2 && ++found)
				cr_assert_eq(r.timestamp, ts[r.offset]);
	}
	cr_assert_eq(found, 2);
	free(all);
}

// Runs one whole pass while the first segment's name is held by a
// directory, so that renaming its cleaned file over it fails (EISDIR):
// the pass stops after storing the gap horizon and before any rename,
// where a crash leaves the same files. The segment's own file is put back
// afterwards. Returns what the pass returned.
static int pass_with_first_rename_failing(void)
{
	char path[TL_PATH_MAX], held[TL_PATH_MAX];
	tl_path(path, T.log->segs[0]->base_offset, ".log");
	snprintf(held, sizeof(held), "%s/held.log", T.root);
	settle();
	cr_assert_eq(rename(path, held), 0);
	cr_assert_eq(mkdir(path, 0755), 0);
	int rc = ox_log_compact(T.log, ox_log_end_offset(T.log));
	cr_assert_eq(rmdir(path), 0);
	cr_assert_eq(rename(held, path), 0);
	return rc;
}

// C8: a pass cut short after the gap horizon moved but before its
// renames leaves the clean point where it was, so the next pass maps those
// segments again. Were they taken as clean, it would find k0 nowhere in
// its map, keep k0's old values and drop k0's tombstone: a deleted value
// back. With `reopen` the next pass runs after a restart, from what the
// checkpoint file says.
static void pass_cut_short_then_compact(bool reopen)
{
	open_compacted(600);
	struct kv keyless[] = {{.key = -1}};
	put(keyless, 1, T.now_ms, 0); // the first segment is cleaned, not emptied
	for (int r = 0; r < 10; r++)
		round_of_keys(T.now_ms, 0);
	round_of_keys(T.now_ms, 0x1); // k0 deleted
	for (int r = 0; r < 10; r++) {
		struct kv recs[] = {{.key = 5}, {.key = 6}};
		put(recs, 2, T.now_ms, 0); // pushes the tombstone out of the active segment
	}
	int64_t tomb = latest_written(0, W.n);
	cr_assert(W.tomb[tomb]);
	cr_assert_lt(tomb, ox_log_active(T.log)->base_offset);
	int64_t job_end = ox_log_active(T.log)->base_offset;

	cr_assert_eq(pass_with_first_rename_failing(), -EISDIR);
	cr_assert_eq(T.log->gaps_upto, job_end, "C7: the horizon went first");
	cr_assert_eq(T.log->clean_upto, 0, "C8: nothing swapped in, nothing clean");
	if (reopen) {
		tl_reopen();
		cr_assert_eq(T.log->gaps_upto, job_end);
		cr_assert_eq(T.log->clean_upto, 0);
	}

	T.now_ms += 60000; // the tombstone may go now
	compact_all();
	struct seen s;
	read_back(&s);
	for (int64_t o = 0; o < W.n; o++)
		if (W.key[o] == 0)
			cr_assert(!seen_has(&s, o), "deleted k0@%" PRId64 " is back", o);
	for (int k = 1; k < KEYS; k++)
		cr_assert(seen_has(&s, latest_written(k, W.n)), "k%d lost", k);
	cr_assert(seen_has(&s, 0), "the keyless record stays");
	cr_assert_eq(T.log->clean_upto, job_end, "C8: raised once swapped in");
	tl_reopen();
	cr_assert_eq(T.log->clean_upto, job_end, "the clean point is durable");
	read_back(&s);
	for (int64_t o = 0; o < W.n; o++)
		if (W.key[o] == 0)
			cr_assert(!seen_has(&s, o), "deleted k0@%" PRId64 " is back", o);
}

LOG_TEST(compact, a_pass_cut_short_leaves_the_clean_point)
{
	pass_cut_short_then_compact(false);
}

LOG_TEST(compact, a_pass_cut_short_leaves_the_clean_point_across_a_reopen)
{
	pass_cut_short_then_compact(true);
}

// A checkpoint of the first version ("OXCLEAN1": one offset, stored before
// a pass's renames) still bounds the gaps (C7), but the segments under it
// may never have been swapped in: the clean point starts at 0 (C8).
LOG_TEST(compact, a_first_version_checkpoint_bounds_gaps_only)
{
	open_compacted(600);
	for (int r = 0; r < 10; r++)
		round_of_keys(T.now_ms, 0);
	int64_t upto = ox_log_active(T.log)->base_offset;
	tl_close();
	uint8_t buf[24];
	ox_store_le64(buf, 0x314e41454c43584full); // "OXCLEAN1"
	ox_store_le64(buf + 8, (uint64_t)upto);
	ox_store_le64(buf + 16, XXH3_64bits(buf, 16));
	char path[TL_PATH_MAX];
	snprintf(path, sizeof(path), "%s/cleaner-checkpoint", T.dir);
	FILE *f = fopen(path, "wb");
	cr_assert_not_null(f);
	cr_assert_eq(fwrite(buf, 1, sizeof(buf), f), sizeof(buf));
	cr_assert_eq(fclose(f), 0);
	tl_open();
	cr_assert_eq(T.log->gaps_upto, upto);
	cr_assert_eq(T.log->clean_upto, 0);
	compact_all();
	cr_assert_eq(T.log->clean_upto, upto);
	struct seen s;
	read_back(&s);
	for (int64_t o = 0; o < upto; o++)
		cr_assert(!seen_has(&s, o) || o == latest_written(W.key[o], upto),
			  "k%d@%" PRId64 " kept under its later record", W.key[o], o);
}
