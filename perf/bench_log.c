// SPDX-License-Identifier: Apache-2.0
//
// `oxbow-bench log`: the storage layer alone. The write pass encodes N
// records of B bytes into batches of K records and appends them through the
// real partition log with its real fsync policy, keeping a bounded number
// of batches in flight so group commit can do its work; it reports
// throughput and append-to-durable latency. The read pass (`--read`) reads
// the log in D back from its first offset the way a replaying consumer
// does: whole batches through ox_log_read (pread through the page cache
// and its readahead, checksums verified), then every record decoded;
// --io only changes the write path. Not a test: it prints figures and judges nothing.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "broker/io/io.h"
#include "broker/log/log.h"
#include "perf/bench.h"
#include "proto/assert.h"
#include "proto/batch.h"
#include "proto/error.h"

// Payload bytes come from a random pool this much larger than one record,
// each record starting at a different place, so no two batches are equal.
#define PAYLOAD_POOL_EXTRA 4096u
// Read pass: bytes asked for per ox_log_read, like a consumer's fetch size.
#define READ_FETCH_BYTES (1u << 20)

struct opts {
	const char *dir;
	uint64_t records;
	uint64_t size;
	uint64_t batch_records;
	uint64_t inflight_mb;
	uint64_t segment_mb;
	enum ox_log_fsync fsync;
	enum ox_io_backend io;
	int read;
	int cold;
};

struct slot {
	struct bench *bench;
	uint8_t *buf;
	size_t len;
	uint32_t records;
	uint64_t submit_ns;
	struct slot *next_free;
};

struct bench {
	struct opts o;
	struct ox_io *io;
	struct ox_log *log;
	struct slot *slots;
	unsigned slot_count;
	struct slot *free_list;
	size_t batch_cap;
	uint8_t *payload;
	uint64_t acked;
	int error;
	struct ox_hist hist;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: oxbow-bench log --dir D --records N --size B [flags]\n"
		"       oxbow-bench log --dir D --read [--cold] [--io uring|sync]\n"
		"  --batch-records K   records per batch (default 1000)\n"
		"  --fsync always|interval  the log's fsync policy (default always)\n"
		"  --io uring|sync     I/O backend (default uring)\n"
		"  --inflight-mb M     batch bytes in flight at most (default 32)\n"
		"  --segment-mb S      segment.bytes in MiB (default 1024)\n"
		"  --read              read the log in D back instead of writing\n"
		"  --cold              drop D's pages from the page cache first\n");
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
		{"dir", required_argument, NULL, 'd'},
		{"records", required_argument, NULL, 'n'},
		{"size", required_argument, NULL, 's'},
		{"batch-records", required_argument, NULL, 'k'},
		{"fsync", required_argument, NULL, 'f'},
		{"io", required_argument, NULL, 'i'},
		{"inflight-mb", required_argument, NULL, 'm'},
		{"segment-mb", required_argument, NULL, 'g'},
		{"read", no_argument, NULL, 'r'},
		{"cold", no_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	*o = (struct opts){.batch_records = 1000, .inflight_mb = 32,
			   .segment_mb = 1024, .fsync = OX_LOG_FSYNC_ALWAYS,
			   .io = OX_IO_BACKEND_URING};
	int c, rc = 0;
	optind = 1;
	while (rc == 0 && (c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'd': o->dir = optarg; break;
		case 'n': rc = ox_bench_parse_u64(optarg, &o->records); break;
		case 's': rc = ox_bench_parse_u64(optarg, &o->size); break;
		case 'k': rc = ox_bench_parse_u64(optarg, &o->batch_records); break;
		case 'm': rc = ox_bench_parse_u64(optarg, &o->inflight_mb); break;
		case 'g': rc = ox_bench_parse_u64(optarg, &o->segment_mb); break;
		case 'i': rc = ox_io_backend_parse(optarg, &o->io); break;
		case 'f':
			if (strcmp(optarg, "always") == 0)
				o->fsync = OX_LOG_FSYNC_ALWAYS;
			else if (strcmp(optarg, "interval") == 0)
				o->fsync = OX_LOG_FSYNC_INTERVAL;
			else
				rc = -EINVAL;
			break;
		case 'r': o->read = 1; break;
		case 'c': o->cold = 1; break;
		case 'h': usage(stdout); exit(0);
		default: rc = -EINVAL; break;
		}
	}
	if (rc == 0 && (o->dir == NULL || optind != argc))
		rc = -EINVAL;
	if (rc == 0 && !o->read &&
	    (o->records == 0 || o->size == 0 || o->size > (16u << 20) ||
	     o->batch_records == 0 || o->batch_records > 100000 ||
	     o->inflight_mb == 0 || o->segment_mb == 0))
		rc = -EINVAL;
	return rc;
}

static int open_log(struct bench *b)
{
	struct ox_io_opts io_opts = {.backend = b->o.io, .entries = 256};
	int rc = ox_io_create(&b->io, &io_opts);
	if (rc < 0) {
		fprintf(stderr, "oxbow-bench: io loop: %s\n", ox_strerror(rc));
		return rc;
	}
	struct ox_log_config cfg;
	ox_log_config_default(&cfg);
	cfg.fsync = b->o.fsync;
	cfg.segment_bytes = b->o.segment_mb << 20;
	cfg.retention_ms = -1;
	cfg.max_batch_bytes = OX_BATCH_BYTES_MAX;
	rc = ox_log_open(&b->log, b->io, b->o.dir, &cfg);
	if (rc < 0)
		fprintf(stderr, "oxbow-bench: open log %s: %s\n", b->o.dir,
			ox_strerror(rc));
	return rc;
}

static void append_done(void *arg, int res, int64_t base, int64_t last)
{
	struct slot *s = arg;
	struct bench *b = s->bench;
	(void)base;
	(void)last;
	if (res < 0 && b->error == 0)
		b->error = res;
	if (res >= 0) {
		b->acked += s->records;
		ox_hist_record(&b->hist, ox_bench_now_ns() - s->submit_ns);
	}
	s->next_free = b->free_list;
	b->free_list = s;
}

static int setup_slots(struct bench *b)
{
	static const uint8_t any;
	struct ox_record probe = {.key_len = -1, .value = &any,
				  .value_len = (int32_t)b->o.size};
	b->batch_cap = OX_BATCH_HEADER_BYTES +
		       b->o.batch_records * ox_record_bytes_max(&probe);
	if (b->batch_cap > OX_BATCH_BYTES_MAX)
		return -OX_ETOOBIG;
	uint64_t count = (b->o.inflight_mb << 20) / b->batch_cap;
	b->slot_count = (unsigned)(count < 2 ? 2 : count > 4096 ? 4096 : count);
	b->slots = calloc(b->slot_count, sizeof(*b->slots));
	b->payload = malloc(b->o.size + PAYLOAD_POOL_EXTRA);
	if (b->slots == NULL || b->payload == NULL)
		return -ENOMEM;
	for (uint64_t i = 0; i < b->o.size + PAYLOAD_POOL_EXTRA; i++)
		b->payload[i] = (uint8_t)(random() >> 7);
	for (unsigned i = 0; i < b->slot_count; i++) {
		b->slots[i].bench = b;
		b->slots[i].buf = malloc(b->batch_cap);
		if (b->slots[i].buf == NULL)
			return -ENOMEM;
		b->slots[i].next_free = b->free_list;
		b->free_list = &b->slots[i];
	}
	return 0;
}

static int build_batch(struct bench *b, struct slot *s, uint64_t first,
		       uint32_t count)
{
	struct ox_batch_params params = {.producer_id = OX_PRODUCER_NONE,
					 .base_sequence = OX_SEQUENCE_NONE};
	struct ox_batch_builder bb;
	int rc = ox_batch_builder_init(&bb, s->buf, b->batch_cap, &params);
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	int64_t ts = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
	for (uint32_t i = 0; rc == 0 && i < count; i++) {
		struct ox_record r = {
			.key_len = -1,
			.value = b->payload + (first + i) % PAYLOAD_POOL_EXTRA,
			.value_len = (int32_t)b->o.size,
			.timestamp = ts,
		};
		rc = ox_batch_builder_add(&bb, &r);
	}
	if (rc == 0)
		rc = ox_batch_builder_finish(&bb, &s->len);
	s->records = count;
	return rc;
}

static int write_pass(struct bench *b)
{
	uint64_t sent = 0;
	struct slot *pending = NULL; // built, refused with -EBUSY, retried
	while (sent < b->o.records && b->error == 0) {
		struct slot *s = pending;
		if (s == NULL && (s = b->free_list) != NULL) {
			b->free_list = s->next_free;
			uint64_t left = b->o.records - sent;
			uint32_t n = (uint32_t)(left < b->o.batch_records ? left : b->o.batch_records);
			int rc = build_batch(b, s, sent, n);
			if (rc < 0)
				return rc;
		}
		if (s == NULL) {
			ox_io_run(b->io, 1);
			continue;
		}
		s->submit_ns = ox_bench_now_ns();
		int rc = ox_log_append(b->log, s->buf, s->len, 1, 0, append_done, s, NULL);
		pending = rc == -EBUSY ? s : NULL;
		if (rc == -EBUSY) {
			ox_io_run(b->io, 1);
			continue;
		}
		if (rc < 0)
			return rc;
		sent += s->records;
		ox_io_run(b->io, 0);
	}
	while (b->acked < sent && b->error == 0 && ox_io_inflight(b->io) > 0)
		ox_io_run(b->io, 1);
	if (b->error == 0 && b->acked != sent)
		b->error = -EIO;
	return b->error;
}

static int run_write(struct bench *b)
{
	int rc = setup_slots(b);
	if (rc < 0)
		return rc;
	uint64_t start = ox_bench_now_ns();
	rc = write_pass(b);
	double secs = (double)(ox_bench_now_ns() - start) / 1e9;
	if (rc < 0)
		return rc;
	uint64_t log_bytes = ox_log_size_bytes(b->log);
	char extra[256];
	snprintf(extra, sizeof(extra),
		 "\"pass\":\"write\",\"fsync\":\"%s\",\"io\":\"%s\","
		 "\"batch_records\":%" PRIu64 ",\"log_bytes\":%" PRIu64
		 ",\"log_mb_per_s\":%.1f",
		 b->o.fsync == OX_LOG_FSYNC_ALWAYS ? "always" : "interval",
		 b->o.io == OX_IO_BACKEND_URING ? "uring" : "sync",
		 b->o.batch_records, log_bytes, (double)log_bytes / secs / 1e6);
	struct ox_bench_result r = {.mode = "log", .records = b->acked,
				    .bytes = b->acked * b->o.size,
				    .seconds = secs, .latency = &b->hist};
	ox_bench_print(&r, extra);
	return 0;
}

// Asks the kernel to forget the cached pages of every segment in dir, so the
// read pass measures the disk and not memory. Segments are durable already.
static void drop_cache(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	while (d != NULL && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		char path[4096];
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		fdatasync(fd);
		posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
		close(fd);
	}
	if (d != NULL)
		closedir(d);
}

static int count_records(const uint8_t *buf, size_t len, int64_t from,
			 uint64_t *records, uint64_t *bytes, int64_t *next)
{
	size_t pos = 0;
	struct ox_batch_header h;
	int rc;
	while ((rc = ox_batch_next(buf, len, &pos, &h)) == 1) {
		struct ox_batch_iter it;
		struct ox_record r;
		rc = ox_batch_iter_init(&it, buf + pos - h.length, h.length);
		while (rc == 0 && (rc = ox_batch_iter_next(&it, &r)) == 1) {
			rc = 0;
			if (r.offset < from)
				continue;
			*records += 1;
			*bytes += (uint64_t)(r.key_len > 0 ? r.key_len : 0) +
				  (uint64_t)(r.value_len > 0 ? r.value_len : 0);
		}
		if (rc < 0)
			return rc;
		*next = h.base_offset + h.last_offset_delta + 1;
	}
	return rc;
}

static int run_read(struct bench *b)
{
	size_t cap = READ_FETCH_BYTES + OX_BATCH_BYTES_MAX;
	uint8_t *buf = malloc(cap);
	if (buf == NULL)
		return -ENOMEM;
	uint64_t records = 0, bytes = 0;
	int64_t offset = ox_log_start_offset(b->log);
	int64_t end = ox_log_written_offset(b->log);
	int rc = 0;
	uint64_t start = ox_bench_now_ns();
	while (rc == 0 && offset < end) {
		size_t len = 0;
		rc = ox_log_read(b->log, offset, READ_FETCH_BYTES, end, buf, cap, &len);
		if (rc == 0 && len == 0)
			rc = -EIO; // the log claims more data than it returns
		if (rc == 0)
			rc = count_records(buf, len, offset, &records, &bytes, &offset);
	}
	double secs = (double)(ox_bench_now_ns() - start) / 1e9;
	free(buf);
	if (rc < 0)
		return rc;
	char extra[160];
	snprintf(extra, sizeof(extra),
		 "\"pass\":\"read\",\"cold\":%s,\"log_bytes\":%" PRIu64
		 ",\"log_mb_per_s\":%.1f",
		 b->o.cold ? "true" : "false", ox_log_size_bytes(b->log),
		 (double)ox_log_size_bytes(b->log) / secs / 1e6);
	struct ox_bench_result r = {.mode = "log", .records = records,
				    .bytes = bytes, .seconds = secs};
	ox_bench_print(&r, extra);
	return 0;
}

static void bench_free(struct bench *b)
{
	int rc = ox_log_close(b->log);
	if (rc < 0)
		fprintf(stderr, "oxbow-bench: close log: %s\n", ox_strerror(rc));
	ox_io_destroy(b->io);
	for (unsigned i = 0; b->slots != NULL && i < b->slot_count; i++)
		free(b->slots[i].buf);
	free(b->slots);
	free(b->payload);
}

int ox_bench_log(int argc, char **argv)
{
	struct bench b = {0};
	if (parse_opts(argc, argv, &b.o) < 0) {
		usage(stderr);
		return OX_BENCH_EXIT_USAGE;
	}
	ox_hist_init(&b.hist);
	if (b.o.read && b.o.cold)
		drop_cache(b.o.dir);
	int rc = open_log(&b);
	if (rc == 0)
		rc = b.o.read ? run_read(&b) : run_write(&b);
	if (rc < 0)
		fprintf(stderr, "oxbow-bench log: %s\n", ox_strerror(rc));
	bench_free(&b);
	return rc < 0 ? OX_BENCH_EXIT_FAIL : 0;
}
