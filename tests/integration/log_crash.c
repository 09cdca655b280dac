// SPDX-License-Identifier: Apache-2.0
//
// Crash test of the partition log (broker/log, invariants I3 and I6 of
// log.c). For a bounded number of rounds, a forked child opens the log
// (fsync always, small segments, size retention), appends batches with
// several in flight, and writes (base, last, checksum) of every batch to
// a pipe from its append callback, that is once the batch is durable. The
// parent SIGKILLs the child at a random moment (during recovery, appends,
// rolls or retention), then reopens the log itself and checks:
//   - every batch the child reported durable and that retention has not
//     passed is there, at its offsets, with its checksum (I3);
//   - the log serves exactly a dense run of verified batches from its
//     start to its end offset, and everything it holds is durable (I6).
// Rounds alternate the io backends. Not Criterion (it forks and kills):
// a plain program, exit 0 when every check held. The seed is printed;
// OX_TEST_SEED=<seed> replays a run.
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "broker/io/io.h"
#include "broker/log/log.h"
#include "proto/batch.h"
#include "proto/error.h"
#include "tests/integration/log_common.h"

#define ROUNDS 30
#define KILL_MS_MAX 300       // the child dies within this after its start
#define DEPTH 8               // appends the child keeps in flight
#define BATCH_RECORDS_MAX 64
#define VALUE_BYTES_MAX 2000 // batches up to ~130 KiB
#define BATCH_CAP \
	(OX_BATCH_HEADER_BYTES + BATCH_RECORDS_MAX * (VALUE_BYTES_MAX + 64))
#define RETENTION_BYTES (4 << 20) // keeps every round's verification short
#define REPORTS_MAX 400000    // durable batches remembered over all rounds
#define READ_CAP (1 << 20)

struct report {
	int64_t base;
	int64_t last;
	uint64_t checksum;
};

static struct report reports[REPORTS_MAX];
static size_t nreports;

static void config(struct ox_log_config *cfg)
{
	ox_log_config_default(cfg);
	cfg->segment_bytes = 512 * 1024;
	cfg->index_interval_bytes = 1024;
	cfg->retention_ms = -1;
	cfg->retention_bytes = RETENTION_BYTES;
}

// ------------------------------------------------------------- child

struct slot {
	uint8_t buf[BATCH_CAP];
	int busy;
};

static struct slot slots[DEPTH];
static int report_fd;

static void child_appended(void *arg, int res, int64_t base, int64_t last)
{
	struct slot *s = arg;
	struct ox_batch_header h;

	if (res < 0)
		lc_die("append callback", res);
	if (ox_batch_header_decode(s->buf, OX_BATCH_HEADER_BYTES, &h) < 0)
		lc_die("own batch", -OX_ECORRUPT);
	struct report r = { base, last, h.checksum };
	// Whole reports only: a pipe write of up to PIPE_BUF bytes is atomic.
	if (write(report_fd, &r, sizeof(r)) != (ssize_t)sizeof(r))
		_exit(0); // the parent is gone
	s->busy = 0;
}

static size_t child_batch(uint8_t *buf)
{
	struct ox_batch_params params = { .producer_id = OX_PRODUCER_NONE,
					  .base_sequence = OX_SEQUENCE_NONE };
	struct ox_batch_builder b;
	uint8_t value[VALUE_BYTES_MAX];
	uint32_t n = 1 + (uint32_t)(lc_rng() % BATCH_RECORDS_MAX);
	size_t len = 0;

	if (ox_batch_builder_init(&b, buf, BATCH_CAP, &params) < 0)
		lc_die("builder", -EINVAL);
	for (uint32_t i = 0; i < n; i++) {
		uint32_t vlen = (uint32_t)(lc_rng() % VALUE_BYTES_MAX);
		for (uint32_t j = 0; j < vlen; j++)
			value[j] = (uint8_t)lc_rng();
		struct ox_record r = { .key = NULL, .key_len = -1,
				       .value = value, .value_len = (int32_t)vlen,
				       .timestamp = (int64_t)time(NULL) * 1000 };
		if (ox_batch_builder_add(&b, &r) < 0)
			lc_die("builder add", -ENOSPC);
	}
	if (ox_batch_builder_finish(&b, &len) < 0)
		lc_die("builder finish", -EINVAL);
	return len;
}

// Appends until killed; retention keeps the log small.
static _Noreturn void child_main(const char *dir, int fd, int round)
{
	struct ox_log_config cfg;
	struct ox_log *log = NULL;
	struct ox_io *io = lc_io_create(round);

	report_fd = fd;
	config(&cfg);
	int rc = ox_log_open(&log, io, dir, &cfg);
	if (rc < 0)
		lc_die("child open", rc);
	for (unsigned long pass = 0;; pass++) {
		for (int i = 0; i < DEPTH; i++) {
			if (slots[i].busy)
				continue;
			size_t len = child_batch(slots[i].buf);
			rc = ox_log_append(log, slots[i].buf, len, 1 + round, 0,
					   child_appended, &slots[i], NULL);
			if (rc == -EBUSY)
				break;
			if (rc < 0)
				lc_die("append", rc);
			slots[i].busy = 1;
		}
		rc = ox_io_run(io, 1);
		if (rc < 0)
			lc_die("ox_io_run", rc);
		if (pass % 64 == 0) {
			rc = ox_log_enforce_retention(log);
			if (rc < 0)
				lc_die("retention", rc);
		}
	}
}

// ------------------------------------------------------------ parent

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void take_reports(const uint8_t *bytes, size_t len)
{
	for (size_t off = 0; off + sizeof(struct report) <= len;
	     off += sizeof(struct report)) {
		if (nreports == REPORTS_MAX)
			lc_die("reports", -OX_ETOOBIG);
		memcpy(&reports[nreports++], bytes + off, sizeof(struct report));
	}
}

// Reads reports until the deadline, kills the child, reads the rest.
static void run_child(const char *dir, int round, int kill_ms)
{
	static uint8_t buf[4096 * sizeof(struct report)];
	size_t have = 0;
	int fds[2];

	if (pipe(fds) < 0)
		lc_die("pipe", -errno);
	pid_t pid = fork();
	if (pid < 0)
		lc_die("fork", -errno);
	if (pid == 0) {
		close(fds[0]);
		child_main(dir, fds[1], round);
	}
	close(fds[1]);
	int64_t deadline = now_ms() + kill_ms;
	bool killed = false;
	for (;;) {
		int64_t left = deadline - now_ms();
		if (!killed && left <= 0) {
			kill(pid, SIGKILL);
			killed = true;
		}
		struct pollfd p = { .fd = fds[0], .events = POLLIN };
		if (poll(&p, 1, killed ? 1000 : (int)left) < 0 && errno != EINTR)
			lc_die("poll", -errno);
		ssize_t n = read(fds[0], buf + have, sizeof(buf) - have);
		if (n == 0 && killed)
			break;
		if (n < 0 && errno != EINTR && errno != EAGAIN)
			lc_die("read", -errno);
		if (n > 0)
			have += (size_t)n;
		size_t whole = have - have % sizeof(struct report);
		take_reports(buf, whole);
		memmove(buf, buf + whole, have - whole);
		have -= whole;
	}
	close(fds[0]);
	int status = 0;
	if (waitpid(pid, &status, 0) < 0)
		lc_die("waitpid", -errno);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
	      "round %d: the child ended by itself (status %d)", round, status);
}

// The log is a dense run of verified batches from start to end (I6).
static void check_log(struct ox_log *log, uint8_t *buf)
{
	int64_t off = ox_log_start_offset(log), end = ox_log_end_offset(log);

	CHECK(ox_log_durable_offset(log) == end, "durable %" PRId64 " end %" PRId64,
	      ox_log_durable_offset(log), end);
	while (off < end) {
		size_t n = 0, pos = 0;
		struct ox_batch_header h;
		int rc = ox_log_read(log, off, READ_CAP, end, buf, READ_CAP, &n);
		if (rc < 0 || n == 0) {
			CHECK(0, "read at %" PRId64 ": %s", off, ox_strerror(rc));
			return;
		}
		while (ox_batch_next(buf, n, &pos, &h) == 1) {
			CHECK(h.base_offset == off, "batch at %" PRId64 " for %" PRId64,
			      h.base_offset, off);
			CHECK(ox_batch_verify(buf + pos - h.length, h.length, NULL) == 0,
			      "served a bad batch at %" PRId64, off);
			off = h.base_offset + h.last_offset_delta + 1;
		}
		CHECK(pos == n, "partial batch served at %" PRId64, off);
	}
}

// Every durable batch not yet passed by retention is there, intact (I3).
static void check_reports(struct ox_log *log, uint8_t *buf)
{
	int64_t start = ox_log_start_offset(log);

	for (size_t i = 0; i < nreports; i++) {
		const struct report *r = &reports[i];
		struct ox_batch_header h;
		size_t n = 0;
		if (r->base < start)
			continue;
		int rc = ox_log_read(log, r->base, 1, INT64_MAX, buf, READ_CAP, &n);
		if (rc < 0 || n < OX_BATCH_HEADER_BYTES) {
			CHECK(0, "durable batch %" PRId64 " lost: %s", r->base,
			      ox_strerror(rc));
			continue;
		}
		ox_batch_header_decode(buf, n, &h);
		CHECK(h.base_offset == r->base &&
			      h.base_offset + h.last_offset_delta == r->last &&
			      h.checksum == r->checksum,
		      "durable batch %" PRId64 "..%" PRId64 " changed", r->base,
		      r->last);
	}
}

static unsigned tails_cut;

static void verify(const char *dir, int round, int kill_ms)
{
	struct ox_log_config cfg;
	struct ox_log *log = NULL;
	struct ox_io *io = lc_io_create(round + 1);
	uint8_t *buf = malloc(READ_CAP);

	if (!buf)
		lc_die("malloc", -ENOMEM);
	config(&cfg);
	// The first child may die before it creates the directory.
	uint64_t before = lc_segment_files_bytes(dir, true);
	int rc = ox_log_open(&log, io, dir, &cfg);
	if (rc < 0)
		lc_die("reopen after kill", rc);
	// Recovery cut a torn tail (or the retention in flight finished).
	if (ox_log_size_bytes(log) < before)
		tails_cut++;
	CHECK(ox_log_size_bytes(log) == lc_segment_files_bytes(dir, true),
	      "round %d: the files hold more than the log", round);
	check_log(log, buf);
	check_reports(log, buf);
	printf("round %2d: killed after %3d ms; log [%" PRId64 ", %" PRId64
	       "), %zu durable batches reported so far\n",
	       round, kill_ms, ox_log_start_offset(log),
	       ox_log_end_offset(log), nreports);
	rc = ox_log_close(log);
	if (rc < 0)
		lc_die("close", rc);
	ox_io_destroy(io);
	free(buf);
}

int main(void)
{
	char root[LC_PATH_MAX], dir[LC_PATH_MAX + 2];

	lc_start("log_crash");
	lc_tmpdir(root, "log-crash");
	snprintf(dir, sizeof(dir), "%s/p", root);
	for (int round = 0; round < ROUNDS; round++) {
		int kill_ms = 1 + (int)(lc_rng() % KILL_MS_MAX);
		run_child(dir, round, kill_ms);
		verify(dir, round, kill_ms);
	}
	int64_t highest = -1;
	for (size_t i = 0; i < nreports; i++)
		if (reports[i].last > highest)
			highest = reports[i].last;
	CHECK(nreports > 0, "no append ever became durable");
	lc_rmtree(root);
	printf("log_crash: %d failures, %zu durable batches checked, up to "
	       "offset %" PRId64 ", %u recoveries cut a tail\n", lc_failures,
	       nreports, highest, tails_cut);
	return lc_failures ? 1 : 0;
}
