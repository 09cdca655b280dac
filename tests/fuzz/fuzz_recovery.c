// SPDX-License-Identifier: Apache-2.0
//
// libFuzzer harness for the partition log's recovery (broker/log, I4 and
// I6 of log.c). The input becomes the segment file(s) of a partition
// directory, as a crash or a bad disk might leave them; the log is opened,
// read from start to end, looked up by time and term, truncated, appended
// to, closed and opened again. Nothing may crash, and:
//   - open succeeds (damage is cut, never an error);
//   - everything in [start, end) reads back, every batch verified, offsets
//     increasing (recovery scanned every file: nothing damaged is left);
//   - after a truncate and an append the log reopens at the same end.
//
// Input layout: byte 0 holds flags. Bit 0: before writing, give every
// batch the walk can frame its correct checksum, so the fuzzer gets past
// the checksum to the offset and structure checks. Bit 1: two segment
// files; bytes 1-2 (LE) pick where the rest is split, bytes 3-6 (LE) the
// second file's base offset. The rest is file content.
//
// Files go to a directory under /dev/shm when there is one (fsync is free
// there), and the io loop is the synchronous backend.
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker/io/io.h"
#include "broker/log/log.h"
#include "proto/batch.h"
#include "proto/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                         \
	do {                                                                \
		if (!(cond)) {                                              \
			fprintf(stderr, "fuzz_recovery: check failed: %s (line %d)\n", \
				#cond, __LINE__);                           \
			abort();                                            \
		}                                                           \
	} while (0)

// Inputs above this are cut: recovery of a few segments' worth of bytes
// is what matters, and big inputs only slow the run.
#define INPUT_MAX (256u << 10)
#define READ_CAP (1u << 20)
#define HEADER_BYTES 7

static char root[64];
static char dir[96];
static struct ox_io *io;
static uint8_t *content;
static uint8_t *readbuf;

static void clear_dir(void);

// libFuzzer ends a run with exit(): the directory goes then.
static void teardown(void)
{
	clear_dir();
	rmdir(dir);
	rmdir(root);
}

static void setup(void)
{
	struct ox_io_opts o = { .backend = OX_IO_BACKEND_SYNC };
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";

	snprintf(root, sizeof(root), "%s/ox-fuzz-recovery-XXXXXX", base);
	CHECK(mkdtemp(root) != NULL);
	snprintf(dir, sizeof(dir), "%s/p", root);
	CHECK(ox_io_create(&io, &o) == 0);
	content = malloc(INPUT_MAX);
	readbuf = malloc(READ_CAP);
	CHECK(content && readbuf);
	atexit(teardown);
}

static void clear_dir(void)
{
	char path[400];
	DIR *d = opendir(dir);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%.255s", dir, e->d_name);
		unlink(path);
	}
	closedir(d);
}

static void write_segment(int64_t base, const uint8_t *bytes, size_t len)
{
	char path[200];
	snprintf(path, sizeof(path), "%s/%020lld.log", dir, (long long)base);
	FILE *f = fopen(path, "wb");
	CHECK(f != NULL);
	CHECK(len == 0 || fwrite(bytes, 1, len, f) == len);
	CHECK(fclose(f) == 0);
}

// Gives every batch the walk can frame its right checksum.
static void fix_checksums(uint8_t *buf, size_t len)
{
	struct ox_batch_header h;
	size_t pos = 0;

	while (len - pos >= OX_BATCH_HEADER_BYTES &&
	       ox_batch_header_decode(buf + pos, len - pos, &h) == 0 &&
	       h.length <= len - pos) {
		uint64_t sum = ox_batch_checksum(buf + pos, h.length);
		for (int i = 0; i < 8; i++)
			buf[pos + i] = (uint8_t)(sum >> (8 * i));
		pos += h.length;
	}
}

static void config(struct ox_log_config *cfg)
{
	ox_log_config_default(cfg);
	cfg->segment_bytes = 4096;
	cfg->index_interval_bytes = 64;
	cfg->retention_ms = -1;
	cfg->max_batch_bytes = OX_BATCH_BYTES_MAX;
}

static void appended(void *arg, int res, int64_t base, int64_t last)
{
	(void)base;
	(void)last;
	CHECK(res == 0);
	*(int *)arg = 1;
}

// Reads [start, end): all of it, every batch verified and in order.
static void read_all(struct ox_log *log)
{
	int64_t off = ox_log_start_offset(log), end = ox_log_end_offset(log);

	CHECK(ox_log_written_offset(log) == end);
	CHECK(ox_log_durable_offset(log) == end);
	while (off < end) {
		size_t n = 0, pos = 0;
		struct ox_batch_header h;
		CHECK(ox_log_read(log, off, READ_CAP, end, readbuf, READ_CAP,
				  &n) == 0);
		CHECK(n > 0);
		while (ox_batch_next(readbuf, n, &pos, &h) == 1) {
			CHECK(ox_batch_verify(readbuf + pos - h.length, h.length,
					      NULL) == 0);
			CHECK(h.base_offset + h.last_offset_delta >= off);
			off = h.base_offset + h.last_offset_delta + 1;
		}
		CHECK(pos == n);
	}
	CHECK(off == end);
}

// Time and term lookups answer inside the log or say there is none.
static void lookups(struct ox_log *log)
{
	int64_t start = ox_log_start_offset(log), end = ox_log_end_offset(log);
	static const int64_t ts[] = { INT64_MIN, -1, 0, 1700000000000, INT64_MAX };
	uint64_t term = 0;

	for (size_t i = 0; i < sizeof(ts) / sizeof(ts[0]); i++) {
		int64_t off = -1;
		int rc = ox_log_offset_for_time(log, ts[i], &off);
		CHECK(rc == -OX_EOFFSET || (rc == 0 && off >= start && off < end));
	}
	if (end > start) {
		CHECK(ox_log_term_at(log, start + (end - start) / 2, &term) == 0);
		CHECK(ox_log_term_at(log, end - 1, &term) == 0);
		CHECK(term == ox_log_last_term(log));
	}
	CHECK(ox_log_term_at(log, end, &term) == -OX_EOFFSET);
}

// Cuts the log in the middle, appends one batch, and checks a reopen.
static void truncate_append_reopen(struct ox_log **logp)
{
	struct ox_log_config cfg;
	struct ox_log *log = *logp;
	int64_t start = ox_log_start_offset(log), end = ox_log_end_offset(log);
	uint8_t batch[256];
	struct ox_batch_params params = { .producer_id = OX_PRODUCER_NONE,
					  .base_sequence = OX_SEQUENCE_NONE };
	struct ox_batch_builder b;
	struct ox_record r = { .key = (const uint8_t *)"k", .key_len = 1,
			       .value = (const uint8_t *)"v", .value_len = 1,
			       .timestamp = 1 };
	size_t len = 0;
	int done = 0;

	CHECK(ox_log_truncate(log, start + (end - start) / 2) == 0);
	int64_t cut = ox_log_end_offset(log);
	CHECK(cut <= start + (end - start) / 2);
	CHECK(ox_batch_builder_init(&b, batch, sizeof(batch), &params) == 0);
	CHECK(ox_batch_builder_add(&b, &r) == 0);
	CHECK(ox_batch_builder_finish(&b, &len) == 0);
	CHECK(ox_log_append(log, batch, len, ox_log_last_term(log) + 1, 0,
			    appended, &done, NULL) == 0);
	CHECK(ox_io_run_until(io, &done) == 0);
	CHECK(ox_log_close(log) == 0);
	config(&cfg);
	CHECK(ox_log_open(logp, io, dir, &cfg) == 0);
	CHECK(ox_log_end_offset(*logp) == cut + 1);
	read_all(*logp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ox_log_config cfg;
	struct ox_log *log = NULL;

	if (!io)
		setup();
	if (size < HEADER_BYTES)
		return 0;
	uint8_t flags = data[0];
	size_t len = size - HEADER_BYTES < INPUT_MAX ? size - HEADER_BYTES
						      : INPUT_MAX;
	memcpy(content, data + HEADER_BYTES, len);
	clear_dir();
	CHECK(mkdir(dir, 0755) == 0 || errno == EEXIST);
	size_t split = len;
	int64_t base2 = 0;
	if (flags & 2) {
		split = (size_t)(data[1] | data[2] << 8);
		split = len ? split % (len + 1) : 0;
		base2 = (int64_t)((uint32_t)data[3] | (uint32_t)data[4] << 8 |
				  (uint32_t)data[5] << 16 | (uint32_t)data[6] << 24);
	}
	if (flags & 1) {
		fix_checksums(content, split);
		fix_checksums(content + split, len - split);
	}
	write_segment(0, content, split);
	if ((flags & 2) && base2 > 0)
		write_segment(base2, content + split, len - split);

	config(&cfg);
	CHECK(ox_log_open(&log, io, dir, &cfg) == 0);
	read_all(log);
	lookups(log);
	truncate_append_reopen(&log);
	CHECK(ox_log_close(log) == 0);
	return 0;
}
