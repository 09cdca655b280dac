// SPDX-License-Identifier: Apache-2.0
//
// Offline reading of a partition log (log_digest.h): open it with
// broker/log on a plain-syscall io loop, read every batch from its start
// to its end, hash each, and walk the records of data batches.
#include "tests/integration/log_digest.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <xxhash.h>

#include "broker/io/io.h"
#include "tests/integration/broker_common.h"
#include "broker/log/log.h"
#include "proto/error.h"

// One read's worth of batches: several segments' worth of small batches,
// and more than any one batch can be (a bigger one is read alone).
#define READ_BYTES (4u << 20)

// Appends b to log->batches, growing it by doubling.
static int batch_push(struct ld_log *log, size_t *cap, const struct ld_batch *b)
{
	if (log->n == *cap) {
		size_t ncap = *cap ? 2 * *cap : 1024;
		struct ld_batch *nb = realloc(log->batches,
					      ncap * sizeof(*nb));
		if (nb == NULL)
			return -ENOMEM;
		log->batches = nb;
		*cap = ncap;
	}
	log->batches[log->n++] = *b;
	return 0;
}

// Walks the batches of one read (buf[0, len)): each must verify and follow
// the one before without a gap. Returns 0 with *next the offset after the
// last batch, or a negative error.
static int walk(const uint8_t *buf, size_t len, ld_record_cb fn, void *arg,
		struct ld_log *log, size_t *cap, int64_t *next)
{
	struct ox_batch_header h;
	size_t pos = 0, at;
	int rc;

	for (at = pos; (rc = ox_batch_next(buf, len, &pos, &h)) == 1;
	     at = pos) {
		struct ld_batch b = {
			.base = h.base_offset,
			.last = h.base_offset + (int64_t)h.last_offset_delta,
			.len = h.length,
			.attributes = h.attributes,
			.term = h.term,
			.hash = XXH3_64bits(buf + at, h.length),
		};
		if (ox_batch_verify(buf + at, h.length, NULL) < 0)
			return -OX_ECORRUPT;
		if (b.base != *next)
			return -OX_EOFFSET;
		*next = b.last + 1;
		if (batch_push(log, cap, &b) < 0)
			return -ENOMEM;
		if (fn == NULL || (h.attributes & OX_BATCH_ATTR_CONTROL))
			continue;
		struct ox_batch_iter it;
		struct ox_record r;
		if (ox_batch_iter_init(&it, buf + at, h.length) < 0)
			return -OX_ECORRUPT;
		while ((rc = ox_batch_iter_next(&it, &r)) == 1)
			fn(arg, &b, &r);
		if (rc < 0)
			return -OX_ECORRUPT;
	}
	return rc < 0 ? rc : 0;
}

// Reads every batch of an open log from its start to its written end.
static int read_all(struct ox_log *l, ld_record_cb fn, void *arg,
		    struct ld_log *out)
{
	size_t cap = 0, len = 0;
	int64_t next = ox_log_start_offset(l);
	int64_t end = ox_log_written_offset(l);
	uint8_t *buf = malloc(OX_BATCH_BYTES_MAX);
	int rc = 0;

	if (buf == NULL)
		return -ENOMEM;
	out->start = next;
	out->end = end;
	while (rc == 0 && next < end) {
		rc = ox_log_read(l, next, READ_BYTES, end, buf,
				 OX_BATCH_BYTES_MAX, &len);
		if (rc == 0 && len == 0)
			rc = -OX_EOFFSET; // below the end, and nothing read
		if (rc == 0)
			rc = walk(buf, len, fn, arg, out, &cap, &next);
	}
	free(buf);
	return rc;
}

int ld_log_read(const char *dir, ld_record_cb fn, void *arg,
		struct ld_log *out)
{
	struct ox_io_opts o = { .backend = OX_IO_BACKEND_SYNC };
	struct ox_log_config cfg;
	struct ox_io *io = NULL;
	struct ox_log *l = NULL;
	struct stat st;
	int rc;

	memset(out, 0, sizeof(*out));
	// ox_log_open creates a missing directory: a replica that is not
	// there must be reported, not made.
	if (stat(dir, &st) != 0)
		return -errno;
	ox_log_config_default(&cfg);
	cfg.max_batch_bytes = OX_BATCH_BYTES_MAX;
	cfg.retention_ms = -1; // reading removes nothing
	rc = ox_io_create(&io, &o);
	if (rc < 0)
		return rc;
	rc = ox_log_open(&l, io, dir, &cfg);
	if (rc < 0)
		goto fail;
	rc = read_all(l, fn, arg, out);
	int crc = ox_log_close(l);
	if (rc == 0)
		rc = crc;
fail:
	ox_io_destroy(io);
	if (rc < 0)
		ld_log_free(out);
	return rc;
}

void ld_log_free(struct ld_log *log)
{
	free(log->batches);
	memset(log, 0, sizeof(*log));
}

int ld_cluster_topic_dir(const char *data_dir, char *buf, size_t cap)
{
	char topics[LD_PATH_MAX];
	struct dirent *e;
	int found = 0, n;

	n = snprintf(topics, sizeof(topics), "%s/topics", data_dir);
	if (n < 0 || (size_t)n >= sizeof(topics))
		return -ENAMETOOLONG;
	DIR *d = opendir(topics);
	if (d == NULL)
		return -errno;
	while ((e = readdir(d)) != NULL) {
		char *end;
		errno = 0;
		unsigned long long id = strtoull(e->d_name, &end, 10);
		char dir[LD_PATH_MAX + 300];

		snprintf(dir, sizeof(dir), "%s/%s", topics, e->d_name);
		if (errno || *end || end == e->d_name ||
		    id < LD_CLUSTER_TOPIC_ID_BASE ||
		    bc_dir_partitions(dir) == BC_OFFSETS_PARTITIONS)
			continue; // the cluster's __offsets is not the test's
		if (found++)
			continue;
		n = snprintf(buf, cap, "%s/%s", topics, e->d_name);
		if (n < 0 || (size_t)n >= cap)
			found = -1;
	}
	closedir(d);
	if (found < 0)
		return -ENAMETOOLONG;
	return found == 0 ? -ENOENT : found > 1 ? -EEXIST : 0;
}

static bool same_batch(const struct ld_batch *a, const struct ld_batch *b)
{
	return a->base == b->base && a->last == b->last && a->len == b->len &&
	       a->attributes == b->attributes && a->term == b->term &&
	       a->hash == b->hash;
}

// The first batch of log whose last offset is at or above offset.
static size_t first_at(const struct ld_log *log, int64_t offset)
{
	size_t i = 0;

	while (i < log->n && log->batches[i].last < offset)
		i++;
	return i;
}

int64_t ld_logs_agree(const struct ld_log *logs, size_t n, char *why,
		      size_t cap)
{
	enum { LOGS_MAX = 8 };
	size_t at[LOGS_MAX];
	int64_t from = 0, to = INT64_MAX;

	if (n == 0 || n > LOGS_MAX) {
		snprintf(why, cap, "%zu logs to compare", n);
		return -1;
	}
	for (size_t k = 0; k < n; k++) {
		from = logs[k].start > from ? logs[k].start : from;
		to = logs[k].end < to ? logs[k].end : to;
	}
	for (size_t k = 0; k < n; k++)
		at[k] = first_at(&logs[k], from);
	for (;;) {
		// Where log 0 is, every log must be; a log that has no batch
		// left below `to` while another has one differs from it.
		size_t live = 0;
		for (size_t k = 0; k < n; k++)
			live += at[k] < logs[k].n &&
				logs[k].batches[at[k]].base < to;
		if (live == 0)
			return to < from ? from : to;
		for (size_t k = 0; k < n; k++) {
			const struct ld_batch *a =
				at[0] < logs[0].n ? &logs[0].batches[at[0]]
						  : NULL;
			const struct ld_batch *b =
				at[k] < logs[k].n ? &logs[k].batches[at[k]]
						  : NULL;
			if (a && b && same_batch(a, b))
				continue;
			snprintf(why, cap, "log %zu batch %" PRId64 "..%" PRId64
				 " (%" PRIu32 " bytes, term %" PRIu64 ", hash "
				 "%016" PRIx64 ") but log %zu batch %" PRId64
				 "..%" PRId64 " (%" PRIu32 " bytes, term %"
				 PRIu64 ", hash %016" PRIx64 ")", (size_t)0,
				 a ? a->base : -1, a ? a->last : -1,
				 a ? a->len : 0, a ? a->term : 0,
				 a ? a->hash : 0, k, b ? b->base : -1,
				 b ? b->last : -1, b ? b->len : 0,
				 b ? b->term : 0, b ? b->hash : 0);
			return -1;
		}
		for (size_t k = 0; k < n; k++)
			at[k]++;
	}
}
