// SPDX-License-Identifier: Apache-2.0
//
// Compaction crash test. The parent builds a compacted-topic log whose
// every record says which key and sequence it carries, with tombstones for
// some keys, and remembers each key's latest record and each sequence's
// offset. Then, for a bounded number of rounds, a child process opens the
// log and compacts it over and over while the parent SIGKILLs it at a random
// moment. After every kill the parent reopens the log and checks:
//   - every batch the log serves verifies and offsets only increase;
//   - every record kept sits at the offset it was appended at;
//   - the latest record of every key is still there, and is the latest one
//     that was written (a tombstoned key is either gone or still a
//     tombstone: an older value never comes back).
// Not Criterion: it forks and kills, so it is a plain program (exit 0 = ok).
// The seed (of the kill times) is printed; OX_TEST_SEED=<seed> replays it.
#include <errno.h>
#include <inttypes.h>
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

#define KEYS 500
#define ROUNDS_FIRST 24   // every key once a round: 12,000 records first
#define ROUNDS_MORE 2     // and 1,000 more before each kill round
#define BATCH_RECORDS 50
// Rounds go on until this many kills hit a pass while it was writing
// (a ".cleaned" file left behind), at least KILL_ROUNDS_MIN and at most
// KILL_ROUNDS_MAX rounds: on a busy machine fewer kills land mid-pass.
#define MID_PASS_WANT 12
#define KILL_ROUNDS_MIN 25
#define KILL_ROUNDS_MAX 120
// Even rounds kill up to KILL_WINDOW_US after the first pass starts (any
// phase: map, writing, swap); odd rounds wait until the pass is writing a
// cleaned file (polling every POLL_US, for WRITE_WAIT_US at most) and kill
// up to KILL_WINDOW_US later, to aim at the writes and the renames.
#define KILL_WINDOW_US 6000
#define POLL_US 100
#define WRITE_WAIT_US 2000000
#define SEQ_MAX (KEYS * (ROUNDS_FIRST + ROUNDS_MORE * KILL_ROUNDS_MAX))

struct expect {
	int64_t seq_offset[SEQ_MAX]; // offset each sequence was appended at
	int latest_seq[KEYS];        // latest sequence written per key
	int tombstone[KEYS];         // latest record of the key is a tombstone
};

static struct expect ex;

static void config(struct ox_log_config *cfg)
{
	ox_log_config_default(cfg);
	cfg->segment_bytes = 64 * 1024; // many sealed segments to clean
	cfg->cleanup = OX_LOG_CLEANUP_COMPACT;
	cfg->retention_ms = -1;
	cfg->delete_retention_ms = 0; // tombstones may go at once
}

// Appends one batch of sequences [seq0, seq0 + n) and records their offsets.
static void append_batch(struct ox_io *io, struct ox_log *log, int seq0, int n,
			 uint8_t *buf, size_t cap)
{
	struct ox_batch_params p = {.producer_id = OX_PRODUCER_NONE,
				    .base_sequence = OX_SEQUENCE_NONE};
	struct ox_batch_builder b;
	char keys[BATCH_RECORDS][16], vals[BATCH_RECORDS][32];
	if (ox_batch_builder_init(&b, buf, cap, &p) < 0)
		lc_die("builder", -EINVAL);
	for (int i = 0; i < n; i++) {
		int seq = seq0 + i, key = seq % KEYS;
		// Every seventh write of a key in the later rounds is a delete.
		int del = seq >= KEYS * 8 && (seq / KEYS + key) % 7 == 0;
		snprintf(keys[i], sizeof(keys[i]), "k%d", key);
		snprintf(vals[i], sizeof(vals[i]), "k%d s%d", key, seq);
		struct ox_record r = {
			.key = (const uint8_t *)keys[i],
			.key_len = (int32_t)strlen(keys[i]),
			.value = del ? NULL : (const uint8_t *)vals[i],
			.value_len = del ? -1 : (int32_t)strlen(vals[i]),
			.timestamp = 1000 + seq,
		};
		if (ox_batch_builder_add(&b, &r) < 0)
			lc_die("builder add", -ENOSPC);
		ex.latest_seq[key] = seq;
		ex.tombstone[key] = del;
	}
	size_t len;
	if (ox_batch_builder_finish(&b, &len) < 0)
		lc_die("builder finish", -EINVAL);
	int64_t base = lc_append_wait(log, io, buf, len, 1);
	for (int i = 0; i < n; i++)
		ex.seq_offset[seq0 + i] = base + i;
}

// Opens the log at dir over an io_uring loop (the default backend; this
// test has never fallen back to plain syscalls). The caller closes both.
// Returns 0 or the first error, and then nothing is open.
static int open_log(const char *dir, struct ox_io **io, struct ox_log **log)
{
	struct ox_io_opts io_opts = {0};
	struct ox_log_config cfg;
	config(&cfg);
	int rc = ox_io_create(io, &io_opts);
	if (rc < 0)
		return rc;
	rc = ox_log_open(log, *io, dir, &cfg);
	if (rc < 0)
		ox_io_destroy(*io);
	return rc;
}

static void close_log(struct ox_io *io, struct ox_log *log)
{
	ox_log_close(log);
	ox_io_destroy(io);
}

// Appends `rounds` rounds of every key, from sequence *seq on, so that
// every kill round has new records to compact.
static void extend_log(const char *dir, int *seq, int rounds)
{
	struct ox_io *io;
	struct ox_log *log;
	static uint8_t buf[1 << 16];
	int rc = open_log(dir, &io, &log);
	if (rc < 0)
		lc_die("open", rc);
	for (int end = *seq + rounds * KEYS; *seq < end; *seq += BATCH_RECORDS)
		append_batch(io, log, *seq, BATCH_RECORDS, buf, sizeof(buf));
	close_log(io, log);
}

// Child: compacts forever (each pass rewrites what the last one left, and
// a pass after everything is clean still rewrites nothing), until killed.
static void compact_forever(const char *dir, int ready_fd)
{
	struct ox_io *io;
	struct ox_log *log;
	if (open_log(dir, &io, &log) < 0)
		_exit(3);
	// Tells the parent the first pass starts now, so its kill can aim at
	// the pass and not at process start-up.
	if (write(ready_fd, "r", 1) != 1)
		_exit(5);
	for (;;) {
		int rc = ox_log_compact(log, ox_log_end_offset(log));
		if (rc < 0)
			_exit(4);
	}
}

static int parse_value(const struct ox_record *r, int *key, int *seq)
{
	char tmp[40];
	if (r->value_len < 0 || r->value_len >= (int32_t)sizeof(tmp))
		return -1;
	memcpy(tmp, r->value, (size_t)r->value_len);
	tmp[r->value_len] = '\0';
	return sscanf(tmp, "k%d s%d", key, seq) == 2 ? 0 : -1;
}

static int parse_key(const struct ox_record *r)
{
	char tmp[16];
	int key;
	if (r->key_len <= 0 || r->key_len >= (int32_t)sizeof(tmp))
		return -1;
	memcpy(tmp, r->key, (size_t)r->key_len);
	tmp[r->key_len] = '\0';
	return sscanf(tmp, "k%d", &key) == 1 && key >= 0 && key < KEYS ? key : -1;
}

struct seen {
	int64_t last_offset[KEYS]; // offset of the key's latest record, -1 none
	int last_seq[KEYS];        // its sequence (-1 for a tombstone)
};

static void check_record(const struct ox_record *r, struct seen *s)
{
	int key = parse_key(r), vkey, seq;
	CHECK(key >= 0, "record at %" PRId64 " has a bad key", r->offset);
	if (key < 0)
		return;
	if (r->value_len < 0) {
		s->last_offset[key] = r->offset;
		s->last_seq[key] = -1;
		return;
	}
	CHECK(parse_value(r, &vkey, &seq) == 0 && vkey == key && seq >= 0 &&
		      seq < SEQ_MAX,
	      "record at %" PRId64 " has a bad value", r->offset);
	if (seq < 0 || seq >= SEQ_MAX)
		return;
	CHECK(ex.seq_offset[seq] == r->offset,
	      "sequence %d moved from offset %" PRId64 " to %" PRId64, seq,
	      ex.seq_offset[seq], r->offset);
	s->last_offset[key] = r->offset;
	s->last_seq[key] = seq;
}

// Checks the log (see the top of the file); returns the records it holds.
static long verify_log(const char *dir, int round)
{
	struct ox_io *io;
	struct ox_log *log;
	static uint8_t buf[4 << 20];
	static struct seen s;
	int rc = open_log(dir, &io, &log);
	CHECK(rc == 0, "round %d: reopen failed: %s", round, ox_strerror(rc));
	if (rc < 0)
		return 0;
	long records = 0;
	for (int k = 0; k < KEYS; k++)
		s.last_offset[k] = -1;
	int64_t off = ox_log_start_offset(log), end = ox_log_written_offset(log);
	int64_t prev_last = -1;
	while (off < end && lc_failures == 0) {
		size_t len = 0, pos = 0;
		rc = ox_log_read(log, off, 1 << 20, end, buf, sizeof(buf), &len);
		CHECK(rc == 0 && len > 0, "round %d: read at %" PRId64 ": %s",
		      round, off, ox_strerror(rc));
		if (rc < 0 || len == 0)
			break;
		struct ox_batch_header h;
		while ((rc = ox_batch_next(buf, len, &pos, &h)) == 1) {
			const uint8_t *batch = buf + pos - h.length;
			CHECK(ox_batch_verify(batch, h.length, NULL) == 0,
			      "round %d: batch at %" PRId64 " does not verify", round,
			      h.base_offset);
			CHECK(h.base_offset > prev_last, "round %d: offsets go back", round);
			struct ox_batch_iter it;
			struct ox_record r;
			ox_batch_iter_init(&it, batch, h.length);
			while (ox_batch_iter_next(&it, &r) == 1)
				if (r.offset >= off && ++records)
					check_record(&r, &s);
			prev_last = h.base_offset + h.last_offset_delta;
			off = prev_last + 1;
		}
	}
	for (int k = 0; k < KEYS && lc_failures == 0; k++) {
		int want = ex.latest_seq[k];
		if (ex.tombstone[k]) {
			CHECK(s.last_offset[k] < 0 ||
				      (s.last_seq[k] == -1 &&
				       s.last_offset[k] == ex.seq_offset[want]),
			      "round %d: deleted key k%d came back", round, k);
		} else {
			CHECK(s.last_seq[k] == want,
			      "round %d: key k%d latest is s%d, want s%d", round, k,
			      s.last_seq[k], want);
		}
	}
	close_log(io, log);
	return records;
}

// One whole pass in this process: the log must shrink to about one record
// per key (plus the active segment), proving the kill rounds had real work.
static void final_pass(const char *dir, int written)
{
	struct ox_io *io;
	struct ox_log *log;
	int rc = open_log(dir, &io, &log);
	if (rc < 0)
		lc_die("open", rc);
	rc = ox_log_compact(log, ox_log_end_offset(log));
	CHECK(rc == 0, "final pass: %s", ox_strerror(rc));
	close_log(io, log);
	long left = verify_log(dir, KILL_ROUNDS_MAX + 1);
	printf("log_compact_crash: %d records written, %ld left after a final pass\n",
	       written, left);
	CHECK(left < written / 4, "compaction left %ld of %d records", left, written);
}

// True while a pass is writing a cleaned file, or, after a kill, when the
// compactor died in the middle of one: counted to show the kills land
// where they matter.
static void find_cleaned(void *arg, const char *name, const char *path)
{
	(void)path;
	if (strstr(name, ".cleaned") != NULL)
		*(bool *)arg = true;
}

static bool cleaned_file_present(const char *dir)
{
	bool found = false;
	// A directory that cannot be listed shows no pass cut short.
	(void)lc_dir_each(dir, find_cleaned, &found);
	return found;
}

int main(void)
{
	char dir[LC_PATH_MAX];
	lc_start("log_compact_crash");
	lc_tmpdir(dir, "log-compact-crash");
	int seq = 0, mid_pass = 0, round;
	extend_log(dir, &seq, ROUNDS_FIRST);
	verify_log(dir, 0);
	for (round = 1; lc_failures == 0 && round <= KILL_ROUNDS_MAX &&
		       (round <= KILL_ROUNDS_MIN || mid_pass < MID_PASS_WANT);
	     round++) {
		extend_log(dir, &seq, ROUNDS_MORE);
		int ready[2];
		char byte;
		if (pipe(ready) < 0)
			lc_die("pipe", -errno);
		pid_t pid = fork();
		if (pid < 0)
			lc_die("fork", -errno);
		if (pid == 0)
			compact_forever(dir, ready[1]);
		close(ready[1]);
		CHECK(read(ready[0], &byte, 1) == 1, "round %d: compactor never started", round);
		close(ready[0]);
		for (int w = 0; round % 2 == 1 && w < WRITE_WAIT_US / POLL_US &&
				!cleaned_file_present(dir); w++)
			usleep(POLL_US);
		struct timespec t = {0, (long)(lc_rng() % KILL_WINDOW_US) * 1000L};
		nanosleep(&t, NULL);
		kill(pid, SIGKILL);
		int st;
		waitpid(pid, &st, 0);
		CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
		      "round %d: the compactor died by itself (status %#x)", round, st);
		mid_pass += cleaned_file_present(dir);
		verify_log(dir, round);
	}
	if (lc_failures == 0)
		final_pass(dir, seq);
	lc_rmtree(dir);
	printf("log_compact_crash: %d kill rounds (%d in the middle of a pass), %d failures\n",
	       round - 1, mid_pass, lc_failures);
	return lc_failures == 0 ? 0 : 1;
}
