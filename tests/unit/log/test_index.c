// SPDX-License-Identifier: Apache-2.0
//
// The in-memory indexes (floor lookups, time lookups, trimming: I8) and
// their files: persisted for sealed segments, loaded only when they match
// the segment (I9), rebuilt by a scan when missing, damaged or stale.
#include <criterion/criterion.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/log/log_int.h"
#include "proto/error.h"
#include "tests/unit/log/helpers.h"

static void add(struct ox_index *idx, uint32_t rel, uint32_t pos, int64_t ts)
{
	cr_assert_eq(ox_index_reserve(idx), 0);
	ox_index_add(idx, rel, pos, ts);
}

Test(index, floor_lookups)
{
	struct ox_index idx;
	struct ox_index_entry e;

	ox_index_init(&idx);
	e = ox_index_floor(&idx, 5);
	cr_assert(e.rel == 0 && e.pos == 0, "empty index floors to the start");
	add(&idx, 10, 100, 1);
	add(&idx, 20, 250, 2);
	add(&idx, 35, 400, 3);
	e = ox_index_floor(&idx, 0);
	cr_assert(e.rel == 0 && e.pos == 0);
	e = ox_index_floor(&idx, 9);
	cr_assert(e.rel == 0 && e.pos == 0);
	e = ox_index_floor(&idx, 10);
	cr_assert(e.rel == 10 && e.pos == 100);
	e = ox_index_floor(&idx, 34);
	cr_assert(e.rel == 20 && e.pos == 250);
	e = ox_index_floor(&idx, UINT32_MAX);
	cr_assert(e.rel == 35 && e.pos == 400);

	cr_assert_not(ox_index_floor_pos(&idx, 100, &e));
	cr_assert(ox_index_floor_pos(&idx, 101, &e) && e.pos == 100);
	cr_assert(ox_index_floor_pos(&idx, 400, &e) && e.pos == 250);
	cr_assert(ox_index_floor_pos(&idx, 401, &e) && e.pos == 400);
	ox_index_deinit(&idx);
}

Test(index, time_entries_only_when_the_max_grows)
{
	struct ox_index idx;
	uint32_t rel = 0;

	ox_index_init(&idx);
	add(&idx, 10, 100, 1000);
	add(&idx, 20, 200, 1000); // same max: no time entry (I8)
	add(&idx, 30, 300, 900);  // an older batch: the max stays 1000
	add(&idx, 40, 400, 2000);
	cr_assert_eq(idx.off_len, 4);
	cr_assert_eq(idx.time_len, 2);

	cr_assert_not(ox_index_time_floor(&idx, 1000, &rel),
		      "nothing is known to be older than 1000");
	cr_assert(ox_index_time_floor(&idx, 1001, &rel) && rel == 10);
	cr_assert(ox_index_time_floor(&idx, 2000, &rel) && rel == 10);
	cr_assert(ox_index_time_floor(&idx, 2001, &rel) && rel == 40);

	cr_assert_eq(ox_index_max_ts_upto(&idx, 5), INT64_MIN);
	cr_assert_eq(ox_index_max_ts_upto(&idx, 30), 1000);
	cr_assert_eq(ox_index_max_ts_upto(&idx, 40), 2000);
	ox_index_deinit(&idx);
}

Test(index, trim)
{
	struct ox_index idx;

	ox_index_init(&idx);
	for (uint32_t i = 1; i <= 10; i++)
		add(&idx, i * 10, i * 100, i * 1000);
	ox_index_trim(&idx, true, 55);
	cr_assert_eq(idx.off_len, 5);
	cr_assert_eq(idx.time_len, 5);
	cr_assert_eq(idx.off[4].rel, 50);
	ox_index_trim(&idx, true, 50);
	cr_assert_eq(idx.off_len, 5, "the entry at keep_rel stays");
	ox_index_trim(&idx, false, 0);
	cr_assert_eq(idx.off_len, 0);
	cr_assert_eq(idx.time_len, 0);
	ox_index_deinit(&idx);
}

// Three sealed segments with dense indexes, then closed.
static void three_segments(void)
{
	T.cfg.segment_bytes = 3000;
	T.cfg.index_interval_bytes = 1;
	tl_open();
	for (uint32_t i = 0; i < 24; i++)
		cr_assert_eq(tl_append(3, 100, 1000 + 10 * i, i), 0);
	cr_assert_geq(ox_log_segment_count(T.log), 4);
}

static void index_copy(const struct ox_index *src, struct ox_index *dst)
{
	ox_index_init(dst);
	for (uint32_t i = 0; i < src->off_len; i++) {
		cr_assert_eq(ox_index_reserve(dst), 0);
		dst->off[dst->off_len++] = src->off[i];
	}
	for (uint32_t i = 0; i < src->time_len; i++)
		dst->time[dst->time_len++] = src->time[i];
}

static void index_assert_equal(const struct ox_index *a,
			       const struct ox_index *b)
{
	cr_assert_eq(a->off_len, b->off_len);
	cr_assert_eq(a->time_len, b->time_len);
	for (uint32_t i = 0; i < a->off_len; i++)
		cr_assert(a->off[i].rel == b->off[i].rel &&
			  a->off[i].pos == b->off[i].pos);
	for (uint32_t i = 0; i < a->time_len; i++)
		cr_assert(a->time[i].ts == b->time[i].ts &&
			  a->time[i].rel == b->time[i].rel);
}

LOG_TEST(index_files, sealed_segments_get_index_files_that_load)
{
	struct ox_index loaded;
	struct ox_index_meta meta;

	int64_t bases[16];
	three_segments();
	unsigned n = T.log->nsegs;
	cr_assert_leq(n, 16);
	for (unsigned i = 0; i < n; i++)
		bases[i] = T.log->segs[i]->base_offset;
	struct ox_segment *s0 = T.log->segs[0];
	cr_assert_gt(s0->index.off_len, 1);
	struct ox_index want;
	index_copy(&s0->index, &want);
	int64_t base0 = s0->base_offset;
	tl_close();

	for (unsigned i = 0; i + 1 < n; i++) {
		cr_assert_geq(tl_file_size(bases[i], ".index"), 80);
		cr_assert_geq(tl_file_size(bases[i], ".timeindex"), 80);
	}
	int dirfd = open(T.dir, O_RDONLY);
	ox_index_init(&loaded);
	int rc = ox_index_load(dirfd, base0,
			       (uint64_t)tl_file_size(base0, ".log"), &loaded,
			       &meta);
	cr_assert_eq(rc, 0, "%s", ox_strerror(rc));
	index_assert_equal(&want, &loaded);
	cr_assert_eq(meta.segment_bytes, (uint64_t)tl_file_size(base0, ".log"));
	// A different segment size is a different segment (I9).
	ox_index_deinit(&loaded);
	rc = ox_index_load(dirfd, base0, meta.segment_bytes + 1, &loaded, &meta);
	cr_assert_eq(rc, -OX_ECORRUPT);
	close(dirfd);
	ox_index_deinit(&want);

	tl_open();
	cr_assert_eq(T.log->segs[0]->index_state, OX_INDEX_STORED);
	tl_check_model();
}

LOG_TEST(index_files, active_segment_has_no_index_file)
{
	three_segments();
	int64_t active = T.log->segs[T.log->nsegs - 1]->base_offset;
	tl_close();
	cr_assert_eq(tl_file_size(active, ".index"), -1);
	cr_assert_eq(tl_file_size(active, ".timeindex"), -1);
}

static void damage_file(int64_t base, const char *suffix, long pos)
{
	char path[TL_PATH_MAX];
	tl_path(path, base, suffix);
	FILE *f = fopen(path, "r+b");
	cr_assert_not_null(f);
	cr_assert_eq(fseek(f, pos, SEEK_SET), 0);
	int c = fgetc(f);
	cr_assert_eq(fseek(f, pos, SEEK_SET), 0);
	fputc(c ^ 0x5a, f);
	fclose(f);
}

// Damaging or removing an index file must give the same index back.
static void rebuild_case(const char *suffix, bool remove_it, long pos)
{
	struct ox_index want;

	three_segments();
	int64_t base1 = T.log->segs[1]->base_offset;
	index_copy(&T.log->segs[1]->index, &want);
	tl_close();
	if (remove_it) {
		char path[TL_PATH_MAX];
		tl_path(path, base1, suffix);
		cr_assert_eq(unlink(path), 0);
	} else {
		damage_file(base1, suffix, pos);
	}
	tl_open();
	index_assert_equal(&want, &T.log->segs[1]->index);
	tl_check_model();
	tl_close();
	// Rebuilt, and written back: it loads again.
	int dirfd = open(T.dir, O_RDONLY);
	struct ox_index loaded;
	struct ox_index_meta meta;
	ox_index_init(&loaded);
	cr_assert_eq(ox_index_load(dirfd, base1,
				   (uint64_t)tl_file_size(base1, ".log"),
				   &loaded, &meta), 0);
	index_assert_equal(&want, &loaded);
	ox_index_deinit(&loaded);
	ox_index_deinit(&want);
	close(dirfd);
}

LOG_TEST(index_files, missing_offset_index_is_rebuilt)
{
	rebuild_case(".index", true, 0);
}

LOG_TEST(index_files, missing_time_index_is_rebuilt)
{
	rebuild_case(".timeindex", true, 0);
}

LOG_TEST(index_files, damaged_index_entry_is_rebuilt)
{
	rebuild_case(".index", false, 90);
}

LOG_TEST(index_files, damaged_index_header_is_rebuilt)
{
	rebuild_case(".timeindex", false, 35);
}

LOG_TEST(index_files, truncated_index_is_rebuilt)
{
	struct ox_index want;

	three_segments();
	int64_t base0 = T.log->segs[0]->base_offset;
	index_copy(&T.log->segs[0]->index, &want);
	tl_close();
	char path[TL_PATH_MAX];
	tl_path(path, base0, ".index");
	cr_assert_eq(truncate(path, tl_file_size(base0, ".index") - 8), 0);
	tl_open();
	index_assert_equal(&want, &T.log->segs[0]->index);
	tl_check_model();
	ox_index_deinit(&want);
}

// An index whose checksums are fine but whose segment's last batch is
// not the one it remembers is stale (I9): the segment is scanned, and the
// damaged batch ends the log there (I6).
LOG_TEST(index_files, stale_index_is_not_trusted)
{
	three_segments();
	struct ox_segment *s1 = T.log->segs[1];
	int64_t base1 = s1->base_offset;
	uint64_t last_pos = s1->last_pos;
	int64_t cut = s1->next_offset;
	tl_close();
	// Flip a bit of the last batch's stored checksum.
	damage_file(base1, ".log", (long)last_pos);
	tl_open();
	// Segment 1 lost its last batch; every later segment is gone.
	cr_assert_eq(ox_log_segment_count(T.log), 2);
	cr_assert_lt(ox_log_end_offset(T.log), cut);
	tl_model_truncate(ox_log_end_offset(T.log));
	cr_assert_eq(T.model[T.nmodel - 1].base + T.model[T.nmodel - 1].n,
		     ox_log_end_offset(T.log));
	tl_check_model();
}

Test(index_files_plain, orphan_and_temporary_files_are_removed,
     .init = tl_setup_sync, .fini = tl_teardown)
{
	static const char *const junk[] = {
		"00000000000000000000.deleted",
		"00000000000000000007.index.tmp",
		"00000000000000000000.cleaned",
		"00000000000000000099.index",
		"00000000000000000099.timeindex",
	};
	char path[TL_PATH_MAX];

	tl_open();
	cr_assert_eq(tl_append(2, 10, 1, 1), 0);
	tl_close();
	for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", T.dir, junk[i]);
		FILE *f = fopen(path, "w");
		cr_assert_not_null(f);
		fputs("junk", f);
		fclose(f);
	}
	snprintf(path, sizeof(path), "%s/notes.txt", T.dir);
	FILE *f = fopen(path, "w");
	fclose(f);
	tl_open();
	for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", T.dir, junk[i]);
		cr_assert_neq(access(path, F_OK), 0, "%s survived", junk[i]);
	}
	snprintf(path, sizeof(path), "%s/notes.txt", T.dir);
	cr_assert_eq(access(path, F_OK), 0, "a foreign file was removed");
	tl_check_model();
}
