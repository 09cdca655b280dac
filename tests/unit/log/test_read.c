// SPDX-License-Identifier: Apache-2.0
//
// The read side: whole batches, byte budget, limit offset, offsets inside
// a batch, reads across segments, corrupt batches (I4), read slices, time
// lookups (Kafka semantics, checked against a brute-force model) and the
// in-flight bound (I2).
#include <criterion/criterion.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/log/log_int.h"
#include "proto/batch.h"
#include "proto/error.h"
#include "tests/unit/log/helpers.h"

// Ten batches of 5 records each: offsets 10k..10k+4, timestamps
// 1000 * (k + 1) + i.
static void ten_batches(void)
{
	tl_open();
	for (uint32_t k = 0; k < 10; k++)
		cr_assert_eq(tl_append(5, 40, 1000 * (k + 1), k), 0);
}

// Batches in buf[0, len): count, and the first base offset.
static unsigned count_batches(const uint8_t *buf, size_t len, int64_t *first,
			      int64_t *next)
{
	struct ox_batch_header h;
	size_t pos = 0;
	unsigned n = 0;

	while (ox_batch_next(buf, len, &pos, &h) == 1) {
		if (n == 0 && first)
			*first = h.base_offset;
		if (next)
			*next = h.base_offset + h.last_offset_delta + 1;
		n++;
	}
	cr_assert_eq(pos, len, "whole batches only");
	return n;
}

static size_t batch_len(void)
{
	uint8_t buf[1024];
	return tl_build(buf, sizeof(buf), 5, 40, 1000, 0);
}

LOG_TEST(read, max_bytes_returns_whole_batches_and_at_least_one)
{
	uint8_t buf[16384];
	size_t n = 0;
	size_t one = batch_len();

	ten_batches();
	cr_assert_eq(ox_log_read(T.log, 0, 1, INT64_MAX, buf, sizeof(buf), &n), 0);
	cr_assert_eq(n, one, "at least one batch");
	cr_assert_eq(ox_log_read(T.log, 0, one * 2 + one / 2, INT64_MAX, buf,
				 sizeof(buf), &n), 0);
	cr_assert_eq(count_batches(buf, n, NULL, NULL), 2);
	cr_assert_eq(ox_log_read(T.log, 0, one * 3, INT64_MAX, buf, sizeof(buf),
				 &n), 0);
	cr_assert_eq(count_batches(buf, n, NULL, NULL), 3, "exactly 3 fit");
	cr_assert_eq(ox_log_read(T.log, 0, SIZE_MAX, INT64_MAX, buf, one * 4 - 1,
				 &n), 0);
	cr_assert_eq(count_batches(buf, n, NULL, NULL), 3, "bounded by buf_cap");
	cr_assert_eq(ox_log_read(T.log, 0, 100, INT64_MAX, buf, one - 1, &n),
		     -ENOSPC);
	for (unsigned k = 0; k < 3; k++)
		tl_check_batch(buf + k * one, one, &T.model[k]);
}

LOG_TEST(read, limit_and_offset_bounds)
{
	uint8_t buf[16384];
	size_t n = 99;
	int64_t first = -1, next = -1;

	ten_batches();
	// A limit inside batch 2 stops before it.
	cr_assert_eq(ox_log_read(T.log, 0, SIZE_MAX, 12, buf, sizeof(buf), &n), 0);
	cr_assert_eq(count_batches(buf, n, NULL, &next), 2);
	cr_assert_eq(next, 10);
	cr_assert_eq(ox_log_read(T.log, 0, SIZE_MAX, 10, buf, sizeof(buf), &n), 0);
	cr_assert_eq(count_batches(buf, n, NULL, NULL), 2);
	cr_assert_eq(ox_log_read(T.log, 10, SIZE_MAX, 10, buf, sizeof(buf), &n), 0);
	cr_assert_eq(n, 0, "offset == limit: nothing");
	cr_assert_eq(ox_log_read(T.log, 11, SIZE_MAX, 10, buf, sizeof(buf), &n),
		     -OX_EOFFSET);
	cr_assert_eq(ox_log_read(T.log, 50, SIZE_MAX, INT64_MAX, buf,
				 sizeof(buf), &n), 0);
	cr_assert_eq(n, 0, "at the end: nothing");
	cr_assert_eq(ox_log_read(T.log, 51, SIZE_MAX, INT64_MAX, buf,
				 sizeof(buf), &n), -OX_EOFFSET);
	cr_assert_eq(ox_log_read(T.log, -1, SIZE_MAX, INT64_MAX, buf,
				 sizeof(buf), &n), -OX_EOFFSET);
	// An offset inside a batch returns that whole batch.
	cr_assert_eq(ox_log_read(T.log, 23, 1, INT64_MAX, buf, sizeof(buf), &n), 0);
	cr_assert_eq(count_batches(buf, n, &first, NULL), 1);
	cr_assert_eq(first, 20);
	tl_check_batch(buf, n, &T.model[4]);
	cr_assert_eq(ox_log_read(T.log, 49, SIZE_MAX, INT64_MAX, buf,
				 sizeof(buf), &n), 0);
	cr_assert_eq(count_batches(buf, n, &first, NULL), 1);
	cr_assert_eq(first, 45);
}

// Every offset, with small budgets and dense/sparse indexes, lands on the
// batch holding it.
LOG_TEST(read, every_offset_finds_its_batch)
{
	uint8_t buf[4096];
	size_t n;

	T.cfg.segment_bytes = 1000;
	T.cfg.index_interval_bytes = 700;
	ten_batches();
	cr_assert_gt(ox_log_segment_count(T.log), 2);
	for (int64_t off = 0; off < 50; off++) {
		int64_t first = -1;
		cr_assert_eq(ox_log_read(T.log, off, 1, INT64_MAX, buf,
					 sizeof(buf), &n), 0);
		cr_assert_eq(count_batches(buf, n, &first, NULL), 1);
		cr_assert_eq(first, off - off % 5, "offset %ld", (long)off);
		tl_check_batch(buf, n, &T.model[off / 5]);
	}
}

LOG_TEST(read, continues_across_segments)
{
	uint8_t buf[65536];
	size_t n = 0;

	T.cfg.segment_bytes = 800;
	ten_batches();
	unsigned segs = ox_log_segment_count(T.log);
	cr_assert_geq(segs, 5);
	cr_assert_eq(ox_log_read(T.log, 3, SIZE_MAX, INT64_MAX, buf, sizeof(buf),
				 &n), 0);
	cr_assert_eq(count_batches(buf, n, NULL, NULL), 10, "all segments");
	for (unsigned k = 0; k < 10; k++)
		tl_check_batch(buf + k * batch_len(), batch_len(), &T.model[k]);
}

// I4: a corrupt batch is never served; what precedes it is.
LOG_TEST(read, stops_before_a_corrupt_batch)
{
	uint8_t buf[16384];
	size_t n = 0;
	size_t one = batch_len();

	ten_batches();
	uint8_t bad = 0x77;
	tl_file_write(0, one * 4 + one - 3, &bad, 1); // inside batch 4
	cr_assert_eq(ox_log_read(T.log, 0, SIZE_MAX, INT64_MAX, buf, sizeof(buf),
				 &n), 0);
	cr_assert_eq(count_batches(buf, n, NULL, NULL), 4);
	cr_assert_eq(ox_log_read(T.log, 20, SIZE_MAX, INT64_MAX, buf,
				 sizeof(buf), &n), -OX_ECORRUPT);
	cr_assert_eq(ox_log_read(T.log, 24, SIZE_MAX, INT64_MAX, buf,
				 sizeof(buf), &n), -OX_ECORRUPT);
	cr_assert_eq(ox_log_read(T.log, 25, SIZE_MAX, INT64_MAX, buf,
				 sizeof(buf), &n), 0);
	cr_assert_eq(count_batches(buf, n, NULL, NULL), 5);
}

LOG_TEST(read, slice_matches_read)
{
	uint8_t buf[16384], via[16384];
	struct ox_log_slice sl;
	size_t n = 0;
	size_t one = batch_len();

	T.cfg.segment_bytes = one * 4;
	ten_batches();
	cr_assert_eq(ox_log_read_slice(T.log, 7, one * 2, INT64_MAX, &sl), 0);
	cr_assert_eq(sl.base_offset, 5);
	cr_assert_eq(sl.next_offset, 15);
	cr_assert_eq(sl.len, one * 2);
	cr_assert_eq(pread(sl.fd, via, sl.len, (off_t)sl.pos), (ssize_t)sl.len);
	cr_assert_eq(ox_log_read(T.log, 7, one * 2, INT64_MAX, buf, sizeof(buf),
				 &n), 0);
	cr_assert_eq(n, sl.len);
	cr_assert_eq(memcmp(buf, via, n), 0);
	ox_log_slice_release(&sl);
	cr_assert_null(sl.segment);
	// A slice ends with its segment, and never passes the limit.
	cr_assert_eq(ox_log_read_slice(T.log, 0, SIZE_MAX, INT64_MAX, &sl), 0);
	cr_assert_eq(sl.len, one * 4);
	cr_assert_eq(sl.next_offset, 20);
	ox_log_slice_release(&sl);
	cr_assert_eq(ox_log_read_slice(T.log, 0, SIZE_MAX, 12, &sl), 0);
	cr_assert_eq(sl.next_offset, 10);
	ox_log_slice_release(&sl);
	cr_assert_eq(ox_log_read_slice(T.log, 12, SIZE_MAX, 12, &sl), 0);
	cr_assert_eq(sl.len, 0);
	cr_assert_null(sl.segment);
	cr_assert_eq(sl.fd, -1);
	ox_log_slice_release(&sl);
	cr_assert_eq(ox_log_read_slice(T.log, 60, SIZE_MAX, INT64_MAX, &sl),
		     -OX_EOFFSET);
}

// I2: batches in flight are invisible to readers.
LOG_TEST(read, never_past_the_written_offset)
{
	uint8_t b[1024], buf[16384];
	struct tl_cb cb = { 0 };
	size_t n = 0;

	ten_batches();
	size_t len = tl_build(b, sizeof(b), 5, 40, 1, 77);
	cr_assert_eq(ox_log_append(T.log, b, len, 1, 0, tl_cb_fn, &cb, NULL), 0);
	cr_assert_eq(ox_log_end_offset(T.log), 55);
	cr_assert_eq(ox_log_written_offset(T.log), 50);
	cr_assert_eq(ox_log_read(T.log, 0, SIZE_MAX, INT64_MAX, buf, sizeof(buf),
				 &n), 0);
	cr_assert_eq(count_batches(buf, n, NULL, NULL), 10);
	cr_assert_eq(ox_log_read(T.log, 50, SIZE_MAX, INT64_MAX, buf,
				 sizeof(buf), &n), 0);
	cr_assert_eq(n, 0);
	tl_wait(&cb);
	cr_assert_eq(ox_log_read(T.log, 50, SIZE_MAX, INT64_MAX, buf,
				 sizeof(buf), &n), 0);
	cr_assert_eq(count_batches(buf, n, NULL, NULL), 1);
}

// The model's answer: the first offset whose timestamp is >= ts.
static int64_t brute_time(int64_t ts)
{
	for (unsigned k = 0; k < T.nmodel; k++)
		for (uint32_t i = 0; i < T.model[k].n; i++)
			if (T.model[k].ts0 + i >= ts)
				return T.model[k].base + i;
	return -1;
}

static void check_times(int64_t from, int64_t to)
{
	for (int64_t ts = from; ts <= to; ts++) {
		int64_t off = -7;
		int64_t want = brute_time(ts);
		int rc = ox_log_offset_for_time(T.log, ts, &off);
		if (want < 0) {
			cr_assert_eq(rc, -OX_EOFFSET, "ts %ld", (long)ts);
		} else {
			cr_assert_eq(rc, 0, "ts %ld: %s", (long)ts, ox_strerror(rc));
			cr_assert_eq(off, want, "ts %ld", (long)ts);
		}
	}
}

LOG_TEST(read, offset_for_time)
{
	int64_t off = -1;

	T.cfg.segment_bytes = 1500;
	T.cfg.index_interval_bytes = 1;
	ten_batches();
	cr_assert_eq(ox_log_offset_for_time(T.log, 0, &off), 0);
	cr_assert_eq(off, 0);
	cr_assert_eq(ox_log_offset_for_time(T.log, 3003, &off), 0);
	cr_assert_eq(off, 13, "got %ld", (long)off);
	cr_assert_eq(ox_log_offset_for_time(T.log, 3005, &off), 0);
	cr_assert_eq(off, 15, "between batches: the next record");
	cr_assert_eq(ox_log_offset_for_time(T.log, 10005, &off), -OX_EOFFSET);
	check_times(900, 10010);
	tl_reopen();
	check_times(900, 10010);
}

// Timestamps that go back in time: still the first offset at or after ts.
LOG_TEST(read, offset_for_time_out_of_order)
{
	static const int64_t ts0[] = { 500, 100, 900, 300, 900, 50, 1200, 700 };

	T.cfg.segment_bytes = 1000;
	T.cfg.index_interval_bytes = 1;
	tl_open();
	for (uint32_t k = 0; k < 8; k++)
		cr_assert_eq(tl_append(4, 40, ts0[k], k), 0);
	check_times(0, 1300);
	tl_reopen();
	check_times(0, 1300);
}
