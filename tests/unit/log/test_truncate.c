// SPDX-License-Identifier: Apache-2.0
//
// Truncation (within a segment, across segments, to zero, then appending
// again; durable before it returns), reset to a new start, retention by
// time and size, and deleting the segments a snapshot covers (I5: never
// the active segment, never bytes not durable; slices survive).
#include <criterion/criterion.h>

#include <errno.h>
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
		cr_assert_eq(tl_append(4, 60, 1000 * (k + 1), k), 0);
}

static void truncate_and_check(int64_t offset, int64_t want_end)
{
	cr_assert_eq(ox_log_truncate(T.log, offset), 0);
	tl_model_truncate(offset);
	cr_assert_eq(ox_log_end_offset(T.log), want_end);
	cr_assert_eq(ox_log_written_offset(T.log), want_end);
	cr_assert_eq(ox_log_durable_offset(T.log), want_end);
	tl_check_model();
}

LOG_TEST(truncate, within_a_segment_then_append)
{
	tl_open();
	batches(10);
	truncate_and_check(22, 20); // inside batch 5: all of it goes
	cr_assert_eq(ox_log_size_bytes(T.log),
		     (uint64_t)tl_file_size(0, ".log"));
	truncate_and_check(16, 16); // exactly at a batch
	cr_assert_eq(tl_append(3, 10, 77, 50), 0);
	cr_assert_eq(T.model[T.nmodel - 1].base, 16, "offsets continue");
	tl_check_model();
	tl_reopen();
	cr_assert_eq(ox_log_end_offset(T.log), 19);
	tl_check_model();
}

LOG_TEST(truncate, across_segments)
{
	T.cfg.segment_bytes = 1000;
	T.cfg.index_interval_bytes = 100;
	tl_open();
	batches(20);
	unsigned segs = ox_log_segment_count(T.log);
	cr_assert_geq(segs, 6);
	int64_t last_base = ox_log_active(T.log)->base_offset;
	struct ox_segment *s2 = T.log->segs[2];
	int64_t s2_base = s2->base_offset;
	truncate_and_check(s2_base + 5, s2_base + 4);
	cr_assert_eq(ox_log_segment_count(T.log), 3);
	cr_assert_eq(tl_file_size(last_base, ".log"), -1, "later files gone");
	cr_assert_eq(tl_file_size(s2_base, ".index"), -1,
		     "I9: the active segment has no index file");
	cr_assert_eq(ox_log_last_term(T.log), 7);
	batches(5);
	tl_check_model();
	tl_reopen();
	tl_check_model();
	// Time lookups still agree after the cut.
	int64_t off = -1;
	cr_assert_eq(ox_log_offset_for_time(T.log, 3000, &off), 0);
	cr_assert_eq(off, 8);
}

// A cut at the first offset of a segment keeps the previous one whole and
// makes it the active segment again.
LOG_TEST(truncate, at_a_segment_base)
{
	T.cfg.segment_bytes = 1000;
	tl_open();
	batches(12);
	cr_assert_geq(ox_log_segment_count(T.log), 3);
	int64_t base2 = T.log->segs[2]->base_offset;
	int64_t base1 = T.log->segs[1]->base_offset;
	truncate_and_check(base2, base2);
	cr_assert_eq(ox_log_segment_count(T.log), 2);
	cr_assert_eq(ox_log_active(T.log)->base_offset, base1);
	cr_assert_eq(tl_file_size(base1, ".index"), -1);
	batches(2);
	tl_reopen();
	tl_check_model();
}

LOG_TEST(truncate, to_zero_then_append)
{
	T.cfg.segment_bytes = 1000;
	tl_open();
	batches(8);
	truncate_and_check(0, 0);
	cr_assert_eq(ox_log_segment_count(T.log), 1);
	cr_assert_eq(ox_log_size_bytes(T.log), 0);
	cr_assert_eq(ox_log_last_term(T.log), 0);
	cr_assert_eq(tl_file_size(0, ".log"), 0);
	batches(3);
	cr_assert_eq(T.model[0].base, 0);
	tl_reopen();
	tl_check_model();
}

LOG_TEST(truncate, refusals_and_no_ops)
{
	uint8_t b[1024];
	struct tl_cb cb = { 0 };

	tl_open();
	batches(3);
	cr_assert_eq(ox_log_truncate(T.log, 12), 0, "at the end: no-op");
	cr_assert_eq(ox_log_truncate(T.log, 100), 0);
	cr_assert_eq(ox_log_end_offset(T.log), 12);
	size_t len = tl_build(b, sizeof(b), 2, 20, 1, 1);
	cr_assert_eq(ox_log_append(T.log, b, len, 1, 0, tl_cb_fn, &cb, NULL), 0);
	cr_assert_eq(ox_log_truncate(T.log, 4), -EBUSY);
	tl_wait(&cb);
	cr_assert_eq(ox_log_truncate(T.log, 4), 0);
	cr_assert_eq(ox_log_end_offset(T.log), 4);
}

// A follower installing a snapshot: everything goes, the log restarts at
// the snapshot's offset, takes a follower's batch there, and reopens so.
LOG_TEST(truncate, reset_restarts_the_log_at_an_offset)
{
	uint8_t buf[4096];
	struct tl_cb cb = { 0 };
	size_t len;

	T.cfg.segment_bytes = 1000;
	tl_open();
	batches(12);
	cr_assert_gt(ox_log_segment_count(T.log), 2);
	cr_assert_eq(ox_log_reset(T.log, -1), -OX_EOFFSET);
	cr_assert_eq(ox_log_reset(T.log, 5000), 0);
	cr_assert_eq(ox_log_start_offset(T.log), 5000);
	cr_assert_eq(ox_log_end_offset(T.log), 5000);
	cr_assert_eq(ox_log_written_offset(T.log), 5000);
	cr_assert_eq(ox_log_durable_offset(T.log), 5000);
	cr_assert_eq(ox_log_segment_count(T.log), 1);
	cr_assert_eq(ox_log_last_term(T.log), 0);
	cr_assert_eq(tl_file_size(0, ".log"), -1, "old segments gone");
	len = tl_build(buf, sizeof(buf), 3, 10, 99, 1);
	ox_batch_stamp(buf, 4999, 9);
	cr_assert_eq(ox_log_append(T.log, buf, len, 0,
				   OX_LOG_APPEND_KEEP_OFFSETS, tl_cb_fn, &cb,
				   NULL), -OX_EOFFSET, "not at the new end");
	ox_batch_stamp(buf, 5000, 9);
	cr_assert_eq(ox_log_append(T.log, buf, len, 0,
				   OX_LOG_APPEND_KEEP_OFFSETS, tl_cb_fn, &cb,
				   NULL), 0);
	tl_wait(&cb);
	cr_assert_eq(cb.res, 0);
	cr_assert_eq(cb.base, 5000);
	cr_assert_eq(ox_log_end_offset(T.log), 5003);
	tl_close();
	tl_open();
	cr_assert_eq(ox_log_start_offset(T.log), 5000);
	cr_assert_eq(ox_log_end_offset(T.log), 5003);
	cr_assert_eq(ox_log_last_term(T.log), 9);
}

LOG_TEST(retention, by_size_never_the_active_segment)
{
	T.cfg.segment_bytes = 1000;
	tl_open();
	batches(20);
	unsigned segs = ox_log_segment_count(T.log);
	uint64_t total = ox_log_size_bytes(T.log);
	uint64_t seg0 = T.log->segs[0]->size;
	// Exactly one segment over the limit goes.
	T.cfg.retention_bytes = (int64_t)(total - seg0);
	T.log->cfg.retention_bytes = T.cfg.retention_bytes;
	cr_assert_eq(ox_log_enforce_retention(T.log), 1);
	cr_assert_eq(ox_log_segment_count(T.log), segs - 1);
	cr_assert_eq(ox_log_size_bytes(T.log), total - seg0);
	cr_assert_eq(ox_log_start_offset(T.log), T.log->segs[0]->base_offset);
	cr_assert_eq(tl_file_size(0, ".log"), -1);
	cr_assert_eq(tl_file_size(0, ".index"), -1);
	cr_assert_eq(ox_log_enforce_retention(T.log), 0, "under the limit");
	// Limit 0: everything sealed goes, the active segment stays (I5).
	T.log->cfg.retention_bytes = 0;
	cr_assert_eq(ox_log_enforce_retention(T.log), (int)segs - 2);
	cr_assert_eq(ox_log_segment_count(T.log), 1);
	tl_model_trim_start();
	tl_check_model();
	uint8_t buf[64];
	size_t n;
	cr_assert_eq(ox_log_read(T.log, 0, 10, INT64_MAX, buf, sizeof(buf), &n),
		     -OX_EOFFSET, "below the start offset");
	tl_reopen();
	tl_check_model();
}

LOG_TEST(delete_before, whole_segments_below_the_offset_only)
{
	T.cfg.segment_bytes = 1000;
	T.cfg.cleanup = OX_LOG_CLEANUP_COMPACT; // no retention policy needed
	tl_open();
	batches(20);
	unsigned segs = ox_log_segment_count(T.log);
	cr_assert_geq(segs, 4);
	int64_t seg1_base = T.log->segs[1]->base_offset;
	int64_t seg2_base = T.log->segs[2]->base_offset;
	// An offset inside segment 1: only segment 0 lies wholly below it.
	cr_assert_eq(ox_log_delete_before(T.log, seg2_base - 1), 1);
	cr_assert_eq(ox_log_start_offset(T.log), seg1_base);
	cr_assert_eq(ox_log_delete_before(T.log, seg2_base - 1), 0, "again");
	cr_assert_eq(ox_log_delete_before(T.log, 0), 0, "below the start");
	// Past the end: every sealed segment goes, the active one stays.
	cr_assert_eq(ox_log_delete_before(T.log, INT64_MAX), (int)segs - 2);
	cr_assert_eq(ox_log_segment_count(T.log), 1);
	cr_assert_leq(ox_log_start_offset(T.log), ox_log_end_offset(T.log));
	tl_model_trim_start();
	tl_check_model();
	tl_reopen();
	tl_check_model();
}

LOG_TEST(retention, by_time)
{
	T.cfg.segment_bytes = 1000;
	T.cfg.retention_ms = 10000;
	tl_open();
	// Record timestamps: batch k spans 1000(k+1) .. 1000(k+1) + 3.
	batches(12);
	unsigned segs = ox_log_segment_count(T.log);
	T.now_ms = 10000; // nothing older than 0
	cr_assert_eq(ox_log_enforce_retention(T.log), 0);
	int64_t max0 = T.log->segs[0]->max_timestamp;
	int64_t max1 = T.log->segs[1]->max_timestamp;
	T.now_ms = max0 + 10000;
	cr_assert_eq(ox_log_enforce_retention(T.log), 0, "not past retention");
	T.now_ms = max0 + 10001;
	cr_assert_eq(ox_log_enforce_retention(T.log), 1);
	T.now_ms = max1 + 10001;
	cr_assert_eq(ox_log_enforce_retention(T.log), 1);
	T.now_ms = INT64_MAX / 2;
	cr_assert_eq(ox_log_enforce_retention(T.log), (int)segs - 3,
		     "all but the active one");
	cr_assert_eq(ox_log_segment_count(T.log), 1);
	tl_model_trim_start();
	tl_check_model();
}

LOG_TEST(retention, only_with_the_delete_policy)
{
	T.cfg.segment_bytes = 1000;
	T.cfg.retention_bytes = 0;
	T.cfg.cleanup = OX_LOG_CLEANUP_COMPACT;
	tl_open();
	batches(10);
	cr_assert_eq(ox_log_enforce_retention(T.log), 0);
	T.log->cfg.cleanup = OX_LOG_CLEANUP_DELETE | OX_LOG_CLEANUP_COMPACT;
	cr_assert_gt(ox_log_enforce_retention(T.log), 0);
}

// I5: a sealed segment whose bytes are not durable yet stays.
LOG_TEST(retention, not_before_durable)
{
	T.cfg.segment_bytes = 1000;
	T.cfg.retention_bytes = 0;
	T.cfg.fsync = OX_LOG_FSYNC_INTERVAL;
	T.cfg.fsync_interval_ms = 86400000;
	tl_open();
	batches(10);
	cr_assert_eq(ox_log_durable_offset(T.log), 0);
	cr_assert_eq(ox_log_enforce_retention(T.log), 0);
	tl_reopen();
	cr_assert_gt(ox_log_enforce_retention(T.log), 0);
}

// A reader's slice keeps the deleted segment's bytes readable.
LOG_TEST(retention, slice_survives_deletion)
{
	uint8_t before[8192], after[8192];
	struct ox_log_slice sl;

	T.cfg.segment_bytes = 1000;
	T.cfg.retention_bytes = 0;
	tl_open();
	batches(10);
	cr_assert_eq(ox_log_read_slice(T.log, 0, SIZE_MAX, INT64_MAX, &sl), 0);
	cr_assert_gt(sl.len, 0);
	cr_assert_eq(pread(sl.fd, before, sl.len, (off_t)sl.pos), (ssize_t)sl.len);
	cr_assert_gt(ox_log_enforce_retention(T.log), 0);
	cr_assert_eq(tl_file_size(0, ".log"), -1, "unlinked");
	cr_assert_eq(pread(sl.fd, after, sl.len, (off_t)sl.pos), (ssize_t)sl.len);
	cr_assert_eq(memcmp(before, after, sl.len), 0);
	size_t pos = 0;
	struct ox_batch_header h;
	unsigned k = 0;
	while (ox_batch_next(after, sl.len, &pos, &h) == 1) {
		tl_check_batch(after + pos - h.length, h.length, &T.model[k]);
		k++;
	}
	cr_assert_gt(k, 0);
	// The slice outlives the log itself.
	tl_close();
	cr_assert_eq(pread(sl.fd, after, sl.len, (off_t)sl.pos), (ssize_t)sl.len);
	ox_log_slice_release(&sl);
}
