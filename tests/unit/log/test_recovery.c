// SPDX-License-Identifier: Apache-2.0
//
// Recovery at open (I6): a clean reopen gives identical content, a torn
// or corrupt tail is cut to the last good batch, damage in a sealed
// segment ends the log there, a lost tail before a later segment drops
// the later segment, batches with bad offsets are refused (I1).
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/log/log_int.h"
#include "proto/batch.h"
#include "proto/error.h"
#include "tests/unit/log/helpers.h"

static void batches(uint32_t count)
{
	for (uint32_t k = 0; k < count; k++)
		cr_assert_eq(tl_append(1 + k % 6, 10 + 17 * k % 150,
				       1000 * (k + 1), k), 0);
}

// Reopens and checks that the log is the model, durable, and that the
// last segment file ends exactly at the last good batch.
static void reopen_and_check(void)
{
	tl_reopen();
	int64_t end = T.nmodel ? T.model[T.nmodel - 1].base +
					 T.model[T.nmodel - 1].n
			       : 0;
	cr_assert_eq(ox_log_end_offset(T.log), end);
	cr_assert_eq(ox_log_written_offset(T.log), end);
	cr_assert_eq(ox_log_durable_offset(T.log), end);
	struct ox_segment *a = ox_log_active(T.log);
	cr_assert_eq(tl_file_size(a->base_offset, ".log"), (long long)a->size,
		     "the tail was cut in the file too");
	tl_check_model();
	// And the log takes appends where it ends.
	cr_assert_eq(tl_append(2, 5, 1, 4242), 0);
	cr_assert_eq(T.model[T.nmodel - 1].base, end);
	tl_check_model();
}

LOG_TEST(recovery, reopen_gives_identical_content)
{
	size_t la, lb;

	T.cfg.segment_bytes = 2000;
	T.cfg.index_interval_bytes = 300;
	tl_open();
	batches(30);
	uint8_t *a = tl_read_all(&la);
	unsigned segs = ox_log_segment_count(T.log);
	int64_t end = ox_log_end_offset(T.log);
	uint64_t bytes = ox_log_size_bytes(T.log);
	tl_reopen();
	uint8_t *b = tl_read_all(&lb);
	cr_assert_eq(la, lb);
	cr_assert_eq(memcmp(a, b, la), 0);
	cr_assert_eq(ox_log_segment_count(T.log), segs);
	cr_assert_eq(ox_log_end_offset(T.log), end);
	cr_assert_eq(ox_log_size_bytes(T.log), bytes);
	cr_assert_eq(ox_log_last_term(T.log), 7);
	free(a);
	free(b);
	reopen_and_check();
}

LOG_TEST(recovery, garbage_tail_is_cut)
{
	uint8_t junk[777];

	tl_open();
	batches(5);
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(i * 131 + 7);
	tl_close();
	tl_file_append(0, junk, sizeof(junk));
	tl_open();
	reopen_and_check();
}

LOG_TEST(recovery, zero_filled_tail_is_cut)
{
	static uint8_t zeros[8192];

	tl_open();
	batches(5);
	tl_close();
	tl_file_append(0, zeros, sizeof(zeros));
	tl_open();
	reopen_and_check();
}

LOG_TEST(recovery, partial_batch_is_cut)
{
	uint8_t b[2048];

	tl_open();
	batches(5);
	tl_close();
	size_t len = tl_build(b, sizeof(b), 8, 100, 1, 1);
	ox_batch_stamp(b, 15, 7);
	tl_file_append(0, b, len / 2);
	tl_open();
	reopen_and_check();
}

// A whole, valid-looking batch that repeats offsets is refused (I1).
LOG_TEST(recovery, batch_with_stale_offsets_is_cut)
{
	uint8_t b[2048];

	tl_open();
	batches(5);
	tl_close();
	size_t len = tl_build(b, sizeof(b), 2, 10, 1, 1);
	ox_batch_stamp(b, 3, 7); // offsets 3..4 again
	tl_file_append(0, b, len);
	tl_open();
	reopen_and_check();
}

LOG_TEST(recovery, corrupt_last_batch_is_dropped)
{
	tl_open();
	batches(6);
	uint64_t last_pos = ox_log_active(T.log)->last_pos;
	tl_close();
	uint8_t bad = 0xee;
	tl_file_write(0, last_pos + OX_BATCH_HEADER_BYTES + 2, &bad, 1);
	tl_model_truncate(T.model[T.nmodel - 1].base);
	tl_open();
	reopen_and_check();
}

LOG_TEST(recovery, corruption_inside_the_tail_cuts_from_there)
{
	tl_open();
	batches(10);
	// Flip a byte inside batch 4: batches 4..9 go.
	struct ox_batch_header h;
	uint64_t p4 = 0;
	cr_assert_eq(ox_segment_locate(ox_log_active(T.log), &T.log->scan,
				       T.model[4].base, ox_log_active(T.log)->size,
				       &p4, &h), 1);
	tl_close();
	uint8_t bad = 0x01;
	tl_file_write(0, p4 + 40, &bad, 1);
	tl_model_truncate(T.model[4].base);
	tl_open();
	reopen_and_check();
}

// Finds the second batch of segment 1 and damages its last byte; returns
// its base offset and the base offsets of segments 1 and 3.
static int64_t damage_segment1(int64_t *base1, int64_t *base3)
{
	struct ox_batch_header h;
	uint64_t pos = 0;
	int64_t victim = -1;

	T.cfg.segment_bytes = 1500;
	tl_open();
	batches(25);
	cr_assert_geq(ox_log_segment_count(T.log), 4);
	struct ox_segment *s1 = T.log->segs[1];
	for (unsigned k = 0; k < T.nmodel && victim < 0; k++)
		if (T.model[k].base > s1->base_offset)
			victim = T.model[k].base;
	cr_assert(victim > 0 && victim < s1->next_offset);
	cr_assert_eq(ox_segment_locate(s1, &T.log->scan, victim, s1->size, &pos,
				       &h), 1);
	*base1 = s1->base_offset;
	*base3 = T.log->segs[3]->base_offset;
	tl_close();
	uint8_t bad = 0x10;
	tl_file_write(*base1, pos + h.length - 1, &bad, 1);
	return victim;
}

// Damage in a sealed segment that must be scanned (its index was never
// written: the crash came first) is a corrupt tail too: the log ends at
// the last good batch before it and the later segments go (I6).
LOG_TEST(recovery, damage_in_a_scanned_sealed_segment_ends_the_log_there)
{
	int64_t base1, base3;
	int64_t victim = damage_segment1(&base1, &base3);
	char path[TL_PATH_MAX];

	tl_path(path, base1, ".index");
	cr_assert_eq(unlink(path), 0);
	tl_model_truncate(victim);
	tl_open();
	cr_assert_eq(ox_log_segment_count(T.log), 2);
	cr_assert_eq(tl_file_size(base3, ".log"), -1);
	cr_assert_eq(tl_file_size(base1, ".index"), -1, "now the active one");
	reopen_and_check();
}

// A sealed segment whose index matches is not rescanned at open, but the
// damaged batch is still never served (I4).
LOG_TEST(recovery, damage_under_a_valid_index_is_caught_by_reads)
{
	int64_t base1, base3;
	int64_t victim = damage_segment1(&base1, &base3);
	uint8_t buf[65536];
	size_t n = 0;

	tl_open();
	cr_assert_geq(ox_log_segment_count(T.log), 4);
	cr_assert_eq(ox_log_read(T.log, victim, SIZE_MAX, INT64_MAX, buf,
				 sizeof(buf), &n), -OX_ECORRUPT);
	cr_assert_eq(ox_log_read(T.log, base1, SIZE_MAX, INT64_MAX, buf,
				 sizeof(buf), &n), 0);
	cr_assert_gt(n, 0);
	size_t pos = 0;
	struct ox_batch_header h;
	while (ox_batch_next(buf, n, &pos, &h) == 1)
		cr_assert_lt(h.base_offset, victim);
}

// A crash can lose the tail of a sealed segment whose index was not
// written yet while the next segment's bytes survive: the hole means the
// next segment cannot follow, so it goes (I6).
LOG_TEST(recovery, lost_tail_before_a_later_segment)
{
	T.cfg.segment_bytes = 1500;
	tl_open();
	batches(12);
	cr_assert_geq(ox_log_segment_count(T.log), 3);
	struct ox_segment *s1 = T.log->segs[1];
	int64_t base1 = s1->base_offset, base2 = T.log->segs[2]->base_offset;
	uint64_t last_pos = s1->last_pos;
	int64_t lost = -1;
	for (unsigned k = 0; k < T.nmodel; k++)
		if (T.model[k].base + T.model[k].n == s1->next_offset)
			lost = T.model[k].base;
	tl_close();
	char path[TL_PATH_MAX];
	tl_path(path, base1, ".index");
	cr_assert_eq(unlink(path), 0);
	tl_file_truncate(base1, last_pos);
	tl_model_truncate(lost);
	tl_open();
	cr_assert_eq(tl_file_size(base2, ".log"), -1);
	cr_assert_eq(ox_log_segment_count(T.log), 2);
	reopen_and_check();
}

// Below the cleaner checkpoint a gap between segments is legitimate
// (compaction made it, compact.c C7), whatever the cleanup policy is now;
// above it the same gap is a lost tail.
LOG_TEST(recovery, gap_kept_when_compaction_may_have_made_it)
{
	T.cfg.segment_bytes = 1500;
	tl_open();
	batches(12);
	struct ox_segment *s1 = T.log->segs[1];
	int64_t base1 = s1->base_offset;
	cr_assert_eq(ox_log_checkpoint_store(T.log, T.log->segs[2]->base_offset, 0), 0);
	uint64_t last_pos = s1->last_pos;
	unsigned segs = ox_log_segment_count(T.log);
	unsigned lost = 0;
	for (unsigned k = 0; k < T.nmodel; k++)
		if (T.model[k].base + T.model[k].n == s1->next_offset)
			lost = k;
	tl_close();
	char path[TL_PATH_MAX];
	tl_path(path, base1, ".index");
	cr_assert_eq(unlink(path), 0);
	tl_file_truncate(base1, last_pos);
	memmove(&T.model[lost], &T.model[lost + 1],
		(T.nmodel - lost - 1) * sizeof(T.model[0]));
	T.nmodel--;
	tl_open();
	cr_assert_eq(ox_log_segment_count(T.log), segs);
	cr_assert_eq(T.log->gaps_upto, T.log->segs[2]->base_offset);
	tl_check_model();
	tl_close();
	// A damaged checkpoint keeps every gap rather than cut data.
	char cp[TL_PATH_MAX];
	snprintf(cp, sizeof(cp), "%s/cleaner-checkpoint", T.dir);
	FILE *f = fopen(cp, "r+");
	cr_assert_not_null(f);
	cr_assert_eq(fputc('x', f), 'x');
	fclose(f);
	tl_open();
	cr_assert_eq(ox_log_segment_count(T.log), segs);
	tl_check_model();
	// Rewritten whole at once: the gaps just accepted stay accepted, none
	// above the end, and every segment is mapped again (C8).
	cr_assert_eq(T.log->gaps_upto, ox_log_end_offset(T.log));
	cr_assert_eq(T.log->clean_upto, 0);
	tl_reopen();
	cr_assert_eq(ox_log_segment_count(T.log), segs);
	cr_assert_eq(T.log->gaps_upto, ox_log_end_offset(T.log));
	tl_check_model();
}

// A checkpoint above the end (a tail lost at recovery, I6) is lowered to
// the end at open: those offsets are handed out again, so a gap there would
// be a lost tail (C7) and their records are not clean (C8).
LOG_TEST(recovery, checkpoint_above_the_end_is_lowered)
{
	T.cfg.segment_bytes = 1500;
	tl_open();
	batches(12);
	int64_t end = ox_log_end_offset(T.log);
	cr_assert_eq(ox_log_checkpoint_store(T.log, end + 100, end + 50), 0);
	tl_reopen();
	cr_assert_eq(T.log->gaps_upto, end);
	cr_assert_eq(T.log->clean_upto, end);
	tl_reopen();
	cr_assert_eq(T.log->gaps_upto, end, "lowered durably");
	cr_assert_eq(T.log->clean_upto, end);
	tl_check_model();
}

// A truncation below the checkpoint lowers it: offsets from the cut are
// handed out again, so a gap there later is a lost tail.
LOG_TEST(recovery, truncate_lowers_the_cleaner_checkpoint)
{
	T.cfg.segment_bytes = 1500;
	tl_open();
	batches(12);
	int64_t base2 = T.log->segs[2]->base_offset;
	cr_assert_eq(ox_log_checkpoint_store(T.log, base2, base2), 0);
	cr_assert_eq(ox_log_truncate(T.log, base2 - 1), 0);
	tl_model_truncate(base2 - 1);
	cr_assert_leq(T.log->gaps_upto, base2 - 1);
	cr_assert_leq(T.log->clean_upto, base2 - 1);
	tl_reopen();
	cr_assert_leq(T.log->gaps_upto, base2 - 1);
	cr_assert_leq(T.log->clean_upto, base2 - 1);
	tl_check_model();
}

LOG_TEST(recovery, empty_segment_after_a_roll)
{
	tl_open();
	batches(4);
	int64_t end = ox_log_end_offset(T.log);
	tl_close();
	char path[TL_PATH_MAX];
	tl_path(path, end, ".log");
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fclose(f);
	tl_open();
	cr_assert_eq(ox_log_segment_count(T.log), 2);
	cr_assert_eq(ox_log_active(T.log)->base_offset, end);
	cr_assert_eq(ox_log_last_term(T.log), 7, "from the sealed segment");
	reopen_and_check();
	cr_assert_eq(tl_file_size(0, ".index") > 0, true,
		     "the sealed segment got its index");
}

LOG_TEST(recovery, corrupt_first_batch_leaves_an_empty_log)
{
	tl_open();
	batches(3);
	tl_close();
	uint8_t bad = 0x55;
	tl_file_write(0, 20, &bad, 1);
	T.nmodel = 0;
	tl_open();
	cr_assert_eq(ox_log_size_bytes(T.log), 0);
	reopen_and_check();
}

// Position, in segment 1, of the k-th batch of that segment, and its
// model entry.
static uint64_t batch_in_segment1(unsigned k, const struct tl_batch **m)
{
	struct ox_segment *s1 = T.log->segs[1];
	struct ox_batch_header h;
	uint64_t pos = 0;
	unsigned first = 0;

	while (T.model[first].base < s1->base_offset)
		first++;
	*m = &T.model[first + k];
	cr_assert_lt((*m)->base + (*m)->n, s1->next_offset, "not the last");
	cr_assert_eq(ox_segment_locate(s1, &T.log->scan, (*m)->base, s1->size,
				       &pos, &h), 1);
	cr_assert_eq(h.base_offset, (*m)->base);
	return pos;
}

static void put_le(int64_t base, uint64_t pos, uint64_t v, size_t n)
{
	uint8_t b[8];
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	tl_file_write(base, pos, b, n);
}

// A damaged header under a valid index must not make a read skip offsets
// (serving the next batch as if across a compaction gap) nor end the log
// early: the read says -OX_ECORRUPT (I1, I4).
LOG_TEST(recovery, damaged_headers_never_skip_offsets)
{
	const struct tl_batch *a, *b;
	uint8_t buf[65536];
	size_t n = 0;
	uint64_t term = 0;

	T.cfg.segment_bytes = 1500;
	T.cfg.index_interval_bytes = 100000; // walks start at position 0
	tl_open();
	for (uint32_t k = 0; k < 30; k++)
		cr_assert_eq(tl_append(3 + k % 3, 20, 1000 + k, k), 0);
	uint64_t pa = batch_in_segment1(1, &a);
	uint64_t pb = batch_in_segment1(2, &b);
	int64_t base1 = T.log->segs[1]->base_offset;
	tl_close();
	// B's base offset goes back to A's: offsets no longer increase.
	put_le(base1, pb + 16, (uint64_t)a->base, 8);
	tl_open();
	cr_assert_geq(ox_log_segment_count(T.log), 3, "segment 1 stays sealed");
	cr_assert_eq(ox_log_read(T.log, b->base, 1, INT64_MAX, buf, sizeof(buf),
				 &n), -OX_ECORRUPT);
	cr_assert_eq(ox_log_read(T.log, b->base + 1, 1, INT64_MAX, buf,
				 sizeof(buf), &n), -OX_ECORRUPT);
	cr_assert_eq(ox_log_term_at(T.log, b->base, &term), -OX_ECORRUPT);
	cr_assert_eq(ox_log_read(T.log, a->base, 1, INT64_MAX, buf, sizeof(buf),
				 &n), 0);
	tl_check_batch(buf, n, a);
	tl_close();
	// Repaired, then A's span shrinks below its record count: a header
	// that does not decode stops the walk, for A and what follows it
	// within the index interval.
	put_le(base1, pb + 16, (uint64_t)b->base, 8);
	put_le(base1, pa + 32, 0, 4);
	tl_open();
	cr_assert_eq(ox_log_read(T.log, a->base + 1, 1, INT64_MAX, buf,
				 sizeof(buf), &n), -OX_ECORRUPT);
	cr_assert_eq(ox_log_read(T.log, b->base, 1, INT64_MAX, buf, sizeof(buf),
				 &n), -OX_ECORRUPT);
}

// A batch with fewer records than offsets (as compaction leaves them)
// whose span is damaged but still decodes: the walk must not take the
// offsets it lost for a gap and serve the next batch in their place.
LOG_TEST(recovery, damaged_span_never_skips_offsets)
{
	struct ox_batch_params params = { .producer_id = OX_PRODUCER_NONE,
					  .base_sequence = OX_SEQUENCE_NONE };
	struct ox_record r = { .key = (const uint8_t *)"k", .key_len = 1,
			       .value = (const uint8_t *)"v", .value_len = 1,
			       .timestamp = 5 };
	struct ox_batch_builder bb;
	struct ox_batch_header h;
	struct tl_cb cb = { 0 };
	uint8_t batch[256], buf[65536];
	size_t len = 0, n = 0;
	int64_t gap_base = -1;
	uint64_t pos = 0;

	T.cfg.segment_bytes = 1500;
	T.cfg.index_interval_bytes = 100000;
	tl_open();
	for (uint32_t k = 0; k < 3; k++)
		cr_assert_eq(tl_append(3, 20, 1000 + k, k), 0);
	// Records at deltas 0 and 4: five offsets, two records.
	cr_assert_eq(ox_batch_builder_init(&bb, batch, sizeof(batch), &params), 0);
	cr_assert_eq(ox_batch_builder_add_at(&bb, &r, 0), 0);
	cr_assert_eq(ox_batch_builder_add_at(&bb, &r, 4), 0);
	cr_assert_eq(ox_batch_builder_finish(&bb, &len), 0);
	cr_assert_eq(ox_log_append(T.log, batch, len, 7, 0, tl_cb_fn, &cb,
				   &gap_base), 0);
	tl_wait(&cb);
	for (uint32_t k = 0; k < 30; k++)
		cr_assert_eq(tl_append(3, 20, 2000 + k, 100 + k), 0);
	unsigned i = ox_log_seg_find(T.log, gap_base);
	struct ox_segment *s = T.log->segs[i];
	cr_assert_lt(i + 1, ox_log_segment_count(T.log), "sealed");
	cr_assert_eq(ox_segment_locate(s, &T.log->scan, gap_base, s->size, &pos,
				       &h), 1);
	cr_assert_lt(h.base_offset + 5, s->next_offset, "not the last batch");
	int64_t seg_base = s->base_offset;
	tl_close();
	put_le(seg_base, pos + 32, 1, 4); // span 2: offsets +2..+4 "gone"
	tl_open();
	cr_assert_geq(ox_log_segment_count(T.log), i + 2, "index trusted");
	for (int64_t off = gap_base; off <= gap_base + 4; off++)
		cr_assert_eq(ox_log_read(T.log, off, 1, INT64_MAX, buf,
					 sizeof(buf), &n), -OX_ECORRUPT,
			     "offset %ld", (long)off);
	cr_assert_eq(ox_log_read(T.log, gap_base + 5, 1, INT64_MAX, buf,
				 sizeof(buf), &n), 0, "the next batch is fine");
	cr_assert_eq(ox_batch_header_decode(buf, n, &h), 0);
	cr_assert_eq(h.base_offset, gap_base + 5);
}

// A header claiming offsets past the end is damage, not "nothing here".
LOG_TEST(recovery, header_claiming_offsets_past_the_end_is_corrupt)
{
	const struct tl_batch *a;
	uint8_t buf[65536];
	size_t n = 0;

	T.cfg.segment_bytes = 1500;
	tl_open();
	for (uint32_t k = 0; k < 30; k++)
		cr_assert_eq(tl_append(3, 20, 1000 + k, k), 0);
	uint64_t pa = batch_in_segment1(1, &a);
	int64_t base1 = T.log->segs[1]->base_offset;
	int64_t end = ox_log_end_offset(T.log);
	tl_close();
	put_le(base1, pa + 32, (uint64_t)end, 4);
	tl_open();
	cr_assert_geq(ox_log_segment_count(T.log), 3, "segment 1 stays sealed");
	cr_assert_eq(ox_log_read(T.log, a->base, 1, INT64_MAX, buf, sizeof(buf),
				 &n), -OX_ECORRUPT);
}
