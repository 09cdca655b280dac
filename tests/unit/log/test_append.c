// SPDX-License-Identifier: Apache-2.0
//
// The write path: offsets, round trips, group commit (I2, I3), rolls by
// size and age, KEEP_OFFSETS, argument errors, back-pressure, the interval
// policy and the sticky failed state (I7). Most cases run under both io
// backends (suites *_uring and *_sync).
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/log/log_int.h"
#include "proto/batch.h"
#include "proto/error.h"
#include "tests/unit/log/helpers.h"

LOG_TEST(append, empty_log_starts_at_zero)
{
	tl_open();
	cr_assert_eq(ox_log_start_offset(T.log), 0);
	cr_assert_eq(ox_log_end_offset(T.log), 0);
	cr_assert_eq(ox_log_written_offset(T.log), 0);
	cr_assert_eq(ox_log_durable_offset(T.log), 0);
	cr_assert_eq(ox_log_last_term(T.log), 0);
	cr_assert_eq(ox_log_segment_count(T.log), 1);
	cr_assert_eq(ox_log_size_bytes(T.log), 0);
	cr_assert_eq(tl_file_size(0, ".log"), 0);
}

LOG_TEST(append, round_trip_assigns_dense_offsets)
{
	int64_t end = 0;

	tl_open();
	for (uint32_t i = 0; i < 30; i++) {
		uint32_t n = 1 + (i * 7) % 23;
		cr_assert_eq(tl_append(n, (i * 37) % 300, 5000 + i * 100, i), 0);
		cr_assert_eq(T.model[i].base, end, "I1: dense offsets");
		end += n;
		cr_assert_eq(ox_log_end_offset(T.log), end);
		cr_assert_eq(ox_log_written_offset(T.log), end);
		cr_assert_eq(ox_log_durable_offset(T.log), end);
	}
	cr_assert_eq(ox_log_last_term(T.log), 7);
	cr_assert_eq(ox_log_size_bytes(T.log),
		     (uint64_t)tl_file_size(0, ".log"));
	tl_check_model();
}

// Many appends in flight: callbacks in order, each only once its batch is
// durable (I3), and the durable offset covers them all at the end.
LOG_TEST(append, group_commit_many_in_flight)
{
	enum { N = 300 };
	static uint8_t bufs[N][600];
	static struct tl_cb cbs[N];
	int64_t base[N];

	tl_open();
	for (int i = 0; i < N; i++) {
		size_t len = tl_build(bufs[i], sizeof(bufs[i]), 4, 50, i, i);
		int rc = ox_log_append(T.log, bufs[i], len, 3, 0, tl_cb_fn,
				       &cbs[i], &base[i]);
		cr_assert_eq(rc, 0, "append %d: %s", i, ox_strerror(rc));
		cr_assert_eq(base[i], 4 * i);
		T.model[T.nmodel++] = (struct tl_batch){ base[i], 4, 50, i,
							 (uint32_t)i };
	}
	cr_assert_eq(ox_log_end_offset(T.log), 4 * N);
	cr_assert_leq(ox_log_durable_offset(T.log),
		      ox_log_written_offset(T.log), "I2");
	tl_wait(&cbs[N - 1]);
	for (int i = 0; i < N; i++) {
		cr_assert_eq(cbs[i].calls, 1);
		cr_assert_eq(cbs[i].res, 0);
		cr_assert_eq(cbs[i].seq, i, "I3: in offset order");
		cr_assert_gt(cbs[i].durable, cbs[i].last, "I3: durable first");
		cr_assert_eq(cbs[i].base, base[i]);
	}
	cr_assert_eq(ox_log_durable_offset(T.log), 4 * N);
	tl_check_model();
}

// The pending entry of the append that got base offset `base`.
static const struct ox_log_pending *entry_of(int64_t base)
{
	for (uint32_t i = 0; i < OX_LOG_APPENDS_MAX; i++)
		if (T.log->ring[i].done && T.log->ring[i].base_offset == base)
			return &T.log->ring[i];
	cr_assert_fail("no entry for %ld", (long)base);
	return NULL;
}

// An append to an idle log is one write+fdatasync; appends behind it, and
// the first append into a new segment file (its directory entry is not
// durable yet), go through a group-commit round. Either way the callback
// sees its batch durable (I3).
LOG_TEST(append, idle_append_syncs_in_one_operation)
{
	static uint8_t bufs[3][400];
	static struct tl_cb cbs[3];
	int64_t base[3];

	T.cfg.segment_bytes = 600;
	tl_open();
	cr_assert_eq(tl_append(2, 20, 1, 1), 0);
	cr_assert(entry_of(0)->dsync, "idle: one operation");
	cr_assert_eq(ox_log_durable_offset(T.log), 2);
	for (int i = 0; i < 3; i++) {
		size_t len = tl_build(bufs[i], sizeof(bufs[i]), 2, 20, 1, 2);
		cr_assert_eq(ox_log_append(T.log, bufs[i], len, 1, 0, tl_cb_fn,
					   &cbs[i], &base[i]), 0);
	}
	tl_wait(&cbs[2]);
	for (int i = 0; i < 3; i++)
		cr_assert(cbs[i].res == 0 && cbs[i].durable > cbs[i].last);
	cr_assert_not(entry_of(base[1])->dsync, "behind another: a round");
	cr_assert_not(entry_of(base[2])->dsync);
	// Fill the segment until a roll: the new file's first append waits
	// for a round that syncs the directory too.
	unsigned segs = ox_log_segment_count(T.log);
	for (int i = 0; i < 100 && ox_log_segment_count(T.log) == segs; i++)
		cr_assert_eq(tl_append(2, 20, 1, 3), 0);
	cr_assert_eq(ox_log_segment_count(T.log), segs + 1);
	int64_t first_in_new = ox_log_active(T.log)->base_offset;
	cr_assert_not(entry_of(first_in_new)->dsync, "new file: a round");
	cr_assert_eq(ox_log_durable_offset(T.log), ox_log_end_offset(T.log));
	cr_assert_eq(tl_append(2, 20, 1, 4), 0);
	cr_assert(entry_of(first_in_new + 2)->dsync, "idle again");
	cr_assert_eq(ox_log_durable_offset(T.log), ox_log_end_offset(T.log));
}

// The benchmark's pattern: each callback appends the next batch.
static struct {
	uint8_t buf[2][800];
	int left;
	int done;
	int64_t next_base;
	int errors;
} chain;

static void chain_cb(void *arg, int res, int64_t base, int64_t last)
{
	(void)arg;
	if (res != 0 || base != chain.next_base)
		chain.errors++;
	chain.next_base = last + 1;
	if (--chain.left == 0) {
		chain.done = 1;
		return;
	}
	uint8_t *b = chain.buf[chain.left % 2];
	size_t len = tl_build(b, sizeof(chain.buf[0]), 5, 60, 0, 9);
	if (ox_log_append(T.log, b, len, 1, 0, chain_cb, NULL, NULL) != 0)
		chain.errors++;
}

LOG_TEST(append, append_from_a_callback)
{
	tl_open();
	chain.left = 50;
	size_t len = tl_build(chain.buf[0], sizeof(chain.buf[0]), 5, 60, 0, 9);
	cr_assert_eq(ox_log_append(T.log, chain.buf[0], len, 1, 0, chain_cb,
				   NULL, NULL), 0);
	cr_assert_eq(ox_io_run_until(T.io, &chain.done), 0);
	cr_assert_eq(chain.errors, 0);
	cr_assert_eq(ox_log_end_offset(T.log), 250);
	cr_assert_eq(ox_log_durable_offset(T.log), 250);
}

LOG_TEST(append, roll_by_size)
{
	T.cfg.segment_bytes = 4096;
	tl_open();
	for (uint32_t i = 0; i < 40; i++)
		cr_assert_eq(tl_append(3, 200, 100 + i, i), 0);
	unsigned n = ox_log_segment_count(T.log);
	cr_assert_gt(n, 5);
	uint64_t total = 0;
	for (unsigned i = 0; i < n; i++) {
		struct ox_segment *s = T.log->segs[i];
		cr_assert_leq(s->size, 4096, "segment %u", i);
		cr_assert_gt(s->size, 0);
		cr_assert_eq((long long)s->size, tl_file_size(s->base_offset, ".log"));
		if (i > 0)
			cr_assert_eq(s->base_offset, T.log->segs[i - 1]->next_offset,
				     "I1 across segments");
		total += s->size;
	}
	cr_assert_eq(total, ox_log_size_bytes(T.log));
	// A batch bigger than a segment gets a segment of its own.
	cr_assert_eq(tl_append(30, 200, 1, 99), 0);
	cr_assert_eq(ox_log_segment_count(T.log), n + 1);
	cr_assert_gt(ox_log_active(T.log)->size, 4096);
	cr_assert_eq(tl_append(1, 10, 1, 98), 0);
	cr_assert_eq(ox_log_segment_count(T.log), n + 2);
	tl_check_model();
	tl_reopen();
	cr_assert_eq(ox_log_segment_count(T.log), n + 2);
	tl_check_model();
}

LOG_TEST(append, roll_by_age)
{
	T.cfg.segment_ms = 1000;
	tl_open();
	// An empty segment never rolls, however old.
	T.now_ms += 5000;
	cr_assert_eq(tl_append(1, 10, 1, 1), 0);
	cr_assert_eq(ox_log_segment_count(T.log), 1);
	T.now_ms += 999;
	cr_assert_eq(tl_append(1, 10, 2, 2), 0);
	cr_assert_eq(ox_log_segment_count(T.log), 1);
	T.now_ms += 1;
	cr_assert_eq(tl_append(1, 10, 3, 3), 0);
	cr_assert_eq(ox_log_segment_count(T.log), 2);
	cr_assert_eq(ox_log_active(T.log)->base_offset, 2);
	T.now_ms += 500;
	cr_assert_eq(tl_append(1, 10, 4, 4), 0);
	cr_assert_eq(ox_log_segment_count(T.log), 2);
	tl_check_model();
}

LOG_TEST(append, keep_offsets)
{
	uint8_t buf[512];
	int64_t base = -1;
	struct tl_cb cb = { 0 };

	tl_open();
	cr_assert_eq(tl_append(3, 10, 1, 1), 0);
	size_t len = tl_build(buf, sizeof(buf), 2, 10, 5, 2);
	ox_batch_stamp(buf, 4, 9);
	cr_assert_eq(ox_log_append(T.log, buf, len, 1,
				   OX_LOG_APPEND_KEEP_OFFSETS, tl_cb_fn, &cb,
				   &base), -OX_EOFFSET, "base 4 is not the end 3");
	ox_batch_stamp(buf, 3, 9);
	cr_assert_eq(ox_log_append(T.log, buf, len, 1,
				   OX_LOG_APPEND_KEEP_OFFSETS, tl_cb_fn, &cb,
				   &base), 0);
	tl_wait(&cb);
	cr_assert_eq(cb.res, 0);
	cr_assert_eq(base, 3);
	cr_assert_eq(ox_log_last_term(T.log), 9, "the batch's own term");
	uint64_t term = 0;
	cr_assert_eq(ox_log_term_at(T.log, 4, &term), 0);
	cr_assert_eq(term, 9);
	cr_assert_eq(ox_log_term_at(T.log, 0, &term), 0);
	cr_assert_eq(term, 7);
	T.model[T.nmodel++] = (struct tl_batch){ 3, 2, 10, 5, 2 };
	tl_check_model();
}

LOG_TEST(append, rejects_bad_batches)
{
	uint8_t buf[4096];
	struct tl_cb cb = { 0 };

	T.cfg.max_batch_bytes = 1024;
	tl_open();
	size_t len = tl_build(buf, sizeof(buf), 2, 20, 1, 1);
	cr_assert_eq(ox_log_append(T.log, buf, len, 1, 0x80, tl_cb_fn, &cb,
				   NULL), -EINVAL);
	cr_assert_eq(ox_log_append(T.log, buf, len + 1, 1, 0, tl_cb_fn, &cb,
				   NULL), -OX_ECORRUPT, "trailing bytes");
	cr_assert_eq(ox_log_append(T.log, buf, len - 1, 1, 0, tl_cb_fn, &cb,
				   NULL), -OX_ECORRUPT, "short");
	buf[len - 1] ^= 1;
	cr_assert_eq(ox_log_append(T.log, buf, len, 1, 0, tl_cb_fn, &cb, NULL),
		     -OX_ECORRUPT, "checksum");
	size_t big = tl_build(buf, sizeof(buf), 10, 200, 1, 1);
	cr_assert_gt(big, 1024);
	cr_assert_eq(ox_log_append(T.log, buf, big, 1, 0, tl_cb_fn, &cb, NULL),
		     -OX_ETOOBIG);
	cr_assert_eq(cb.calls, 0);
	cr_assert_eq(ox_log_end_offset(T.log), 0);
	cr_assert_eq(ox_log_size_bytes(T.log), 0);
}

// Back-pressure: either the pending ring (OX_LOG_APPENDS_MAX) or the io
// loop's pool says -EBUSY; nothing is lost, everything completes.
LOG_TEST(append, busy_when_too_many_in_flight)
{
	enum { N = OX_LOG_APPENDS_MAX + 1 };
	uint8_t (*bufs)[160] = malloc(N * sizeof(*bufs));
	struct tl_cb *cbs = calloc(N, sizeof(*cbs));
	int accepted = 0, rc = 0;

	cr_assert(bufs && cbs);
	tl_open();
	for (; accepted < N; accepted++) {
		size_t len = tl_build(bufs[accepted], sizeof(bufs[0]), 1, 8, 0, 1);
		rc = ox_log_append(T.log, bufs[accepted], len, 1, 0, tl_cb_fn,
				   &cbs[accepted], NULL);
		if (rc != 0)
			break;
	}
	cr_assert_eq(rc, -EBUSY, "%s", ox_strerror(rc));
	cr_assert_leq(accepted, (int)OX_LOG_APPENDS_MAX);
	cr_assert_eq(ox_log_end_offset(T.log), accepted);
	tl_wait(&cbs[accepted - 1]);
	for (int i = 0; i < accepted; i++)
		cr_assert(cbs[i].calls == 1 && cbs[i].res == 0);
	cr_assert_eq(ox_log_durable_offset(T.log), accepted);
	free(bufs);
	free(cbs);
}

LOG_TEST(append, interval_policy_calls_back_when_written)
{
	T.cfg.fsync = OX_LOG_FSYNC_INTERVAL;
	T.cfg.fsync_interval_ms = 20;
	tl_open();
	for (uint32_t i = 0; i < 5; i++)
		cr_assert_eq(tl_append(2, 30, i, i), 0);
	cr_assert_eq(ox_log_written_offset(T.log), 10);
	// The timer makes it durable within a few intervals.
	for (int i = 0; i < 1000 && ox_log_durable_offset(T.log) < 10; i++)
		cr_assert_geq(ox_io_run(T.io, 1), 0);
	cr_assert_eq(ox_log_durable_offset(T.log), 10);
	tl_check_model();
	tl_reopen();
	tl_check_model();
}

// Closing does not wait for the fsync timer, however long its interval,
// but does make everything written durable first.
LOG_TEST(append, interval_close_is_prompt_and_durable)
{
	T.cfg.fsync = OX_LOG_FSYNC_INTERVAL;
	T.cfg.fsync_interval_ms = 86400000;
	tl_open();
	cr_assert_eq(tl_append(2, 30, 1, 1), 0);
	cr_assert_eq(ox_log_durable_offset(T.log), 0);
	tl_reopen();
	cr_assert_eq(ox_log_end_offset(T.log), 2);
	tl_check_model();
}

// I7: a failed write fails the log until it is reopened.
LOG_TEST(failure, write_error_is_sticky)
{
	struct tl_cb cb = { 0 };
	uint8_t buf[512];
	char path[TL_PATH_MAX];

	tl_open();
	cr_assert_eq(tl_append(2, 30, 1, 1), 0);
	// Replace the active segment's fd with a read-only one: the next
	// write fails with EBADF through either backend.
	tl_path(path, 0, ".log");
	int ro = open(path, O_RDONLY);
	cr_assert_geq(ro, 0);
	cr_assert_geq(dup2(ro, ox_log_active(T.log)->fd), 0);
	close(ro);
	size_t len = tl_build(buf, sizeof(buf), 2, 30, 2, 2);
	cr_assert_eq(ox_log_append(T.log, buf, len, 1, 0, tl_cb_fn, &cb, NULL), 0);
	tl_wait(&cb);
	cr_assert_lt(cb.res, 0);
	cr_assert_neq(cb.res, -OX_EFAILED, "the callback gets the I/O error");
	cr_assert_eq(ox_log_written_offset(T.log), 2);
	cr_assert_eq(ox_log_durable_offset(T.log), 2);
	len = tl_build(buf, sizeof(buf), 2, 30, 3, 3);
	cr_assert_eq(ox_log_append(T.log, buf, len, 1, 0, tl_cb_fn, &cb, NULL),
		     -OX_EFAILED);
	cr_assert_eq(ox_log_truncate(T.log, 0), -OX_EFAILED);
	// Reads of what was written still work.
	tl_check_model();
	int err = ox_log_close(T.log);
	T.log = NULL;
	cr_assert_eq(err, cb.res, "close returns the sticky error");
	tl_open();
	cr_assert_eq(ox_log_end_offset(T.log), 2);
	tl_check_model();
}

// I7: a failed fsync is never retried; every pending callback gets it.
LOG_TEST(failure, sync_error_fails_every_pending_append)
{
	enum { N = 20 };
	static uint8_t bufs[N][400];
	static struct tl_cb cbs[N];

	tl_open();
	cr_assert_eq(tl_append(2, 30, 1, 1), 0);
	ox_log_fault_sync(T.log, -EIO);
	for (int i = 0; i < N; i++) {
		size_t len = tl_build(bufs[i], sizeof(bufs[i]), 2, 30, i, i);
		cr_assert_eq(ox_log_append(T.log, bufs[i], len, 1, 0, tl_cb_fn,
					   &cbs[i], NULL), 0);
	}
	tl_wait(&cbs[N - 1]);
	for (int i = 0; i < N; i++) {
		cr_assert_eq(cbs[i].calls, 1);
		cr_assert_eq(cbs[i].res, -EIO, "append %d", i);
		cr_assert_eq(cbs[i].seq, cbs[0].seq + i, "still in order");
	}
	cr_assert_eq(ox_log_durable_offset(T.log), 2);
	uint8_t buf[400];
	size_t len = tl_build(buf, sizeof(buf), 2, 30, 1, 1);
	cr_assert_eq(ox_log_append(T.log, buf, len, 1, 0, NULL, NULL, NULL),
		     -OX_EFAILED);
	cr_assert_eq(ox_log_enforce_retention(T.log), -OX_EFAILED);
	int err = ox_log_close(T.log);
	T.log = NULL;
	cr_assert_eq(err, -EIO);
}

LOG_TEST(append, term_at_covers_appends_in_flight)
{
	uint8_t a[400], b[400];
	struct tl_cb ca = { 0 }, cb = { 0 };
	uint64_t term = 0;

	tl_open();
	size_t la = tl_build(a, sizeof(a), 3, 10, 1, 1);
	size_t lb = tl_build(b, sizeof(b), 2, 10, 1, 2);
	cr_assert_eq(ox_log_append(T.log, a, la, 4, 0, tl_cb_fn, &ca, NULL), 0);
	cr_assert_eq(ox_log_append(T.log, b, lb, 5, 0, tl_cb_fn, &cb, NULL), 0);
	cr_assert_eq(ox_log_written_offset(T.log), 0, "nothing ran yet");
	cr_assert_eq(ox_log_term_at(T.log, 2, &term), 0);
	cr_assert_eq(term, 4);
	cr_assert_eq(ox_log_term_at(T.log, 3, &term), 0);
	cr_assert_eq(term, 5);
	cr_assert_eq(ox_log_term_at(T.log, 5, &term), -OX_EOFFSET);
	cr_assert_eq(ox_log_last_term(T.log), 5);
	tl_wait(&cb);
	cr_assert_eq(ox_log_term_at(T.log, 0, &term), 0);
	cr_assert_eq(term, 4);
	cr_assert_eq(ox_log_term_at(T.log, 4, &term), 0);
	cr_assert_eq(term, 5);
	tl_reopen();
	cr_assert_eq(ox_log_last_term(T.log), 5);
	cr_assert_eq(ox_log_term_at(T.log, 1, &term), 0);
	cr_assert_eq(term, 4);
}

Test(append_api, open_rejects_bad_config, .init = tl_setup_sync,
     .fini = tl_teardown)
{
	struct ox_log *log = NULL;
	struct ox_log_config c;

	ox_log_config_default(&c);
	c.segment_bytes = OX_LOG_SEGMENT_BYTES_MAX + 1;
	cr_assert_eq(ox_log_open(&log, T.io, T.dir, &c), -EINVAL);
	ox_log_config_default(&c);
	c.index_interval_bytes = 0;
	cr_assert_eq(ox_log_open(&log, T.io, T.dir, &c), -EINVAL);
	ox_log_config_default(&c);
	c.fsync = OX_LOG_FSYNC_INTERVAL;
	c.fsync_interval_ms = 0;
	cr_assert_eq(ox_log_open(&log, T.io, T.dir, &c), -EINVAL);
	ox_log_config_default(&c);
	c.cleanup = 0x4;
	cr_assert_eq(ox_log_open(&log, T.io, T.dir, &c), -EINVAL);
	ox_log_config_default(&c);
	c.max_batch_bytes = OX_BATCH_BYTES_MAX + 1;
	cr_assert_eq(ox_log_open(&log, T.io, T.dir, &c), -EINVAL);
	cr_assert_null(log);
	// NULL config: the defaults.
	cr_assert_eq(ox_log_open(&log, T.io, T.dir, NULL), 0);
	cr_assert_eq(ox_log_close(log), 0);
	cr_assert_eq(ox_log_close(NULL), 0);
}
