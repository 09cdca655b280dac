// SPDX-License-Identifier: Apache-2.0
//
// The fixture of the log unit tests (helpers.h).
#include "tests/unit/log/helpers.h"

#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proto/batch.h"
#include "proto/error.h"

// Loop passes before a test gives up waiting for a callback.
#define WAIT_PASSES_MAX 100000

struct tl T;

static int64_t test_clock(void *arg)
{
	return *(const int64_t *)arg;
}

static void setup(enum ox_io_backend be)
{
	struct ox_io_opts o = { .backend = be };

	memset(&T, 0, sizeof(T));
	T.be = be;
	snprintf(T.root, sizeof(T.root), "/tmp/ox-log-XXXXXX");
	cr_assert_not_null(mkdtemp(T.root), "mkdtemp: %s", strerror(errno));
	snprintf(T.dir, sizeof(T.dir), "%s/p0", T.root);
	int rc = ox_io_create(&T.io, &o);
	if (rc < 0 && be == OX_IO_BACKEND_URING) {
		T.skip = true;
		return;
	}
	cr_assert_eq(rc, 0, "ox_io_create: %s", ox_strerror(rc));
	ox_log_config_default(&T.cfg);
	T.now_ms = 1700000000000LL;
	T.cfg.clock = test_clock;
	T.cfg.clock_arg = &T.now_ms;
	T.cfg.segment_ms = -1;
	T.cfg.retention_ms = -1;
}

void tl_setup_uring(void)
{
	setup(OX_IO_BACKEND_URING);
}

void tl_setup_sync(void)
{
	setup(OX_IO_BACKEND_SYNC);
}

void tl_skip_if_needed(void)
{
	if (T.skip)
		cr_skip_test("io_uring is not available on this kernel");
}

static int rm_entry(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void tl_teardown(void)
{
	if (T.log)
		ox_log_close(T.log);
	T.log = NULL;
	ox_io_destroy(T.io);
	T.io = NULL;
	if (T.root[0])
		nftw(T.root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

void tl_open(void)
{
	cr_assert_null(T.log);
	int rc = ox_log_open(&T.log, T.io, T.dir, &T.cfg);
	cr_assert_eq(rc, 0, "ox_log_open: %s", ox_strerror(rc));
}

void tl_close(void)
{
	int rc = ox_log_close(T.log);
	T.log = NULL;
	cr_assert_eq(rc, 0, "ox_log_close: %s", ox_strerror(rc));
}

void tl_reopen(void)
{
	tl_close();
	tl_open();
}

static uint8_t value_byte(uint32_t seed, uint32_t i, uint32_t j)
{
	return (uint8_t)(seed * 31u + i * 7u + j * 13u + (j >> 8));
}

size_t tl_build_max(uint32_t n, uint32_t vlen)
{
	return OX_BATCH_HEADER_BYTES + (size_t)n * (vlen + 64);
}

size_t tl_build(uint8_t *buf, size_t cap, uint32_t n, uint32_t vlen,
		int64_t ts0, uint32_t seed)
{
	struct ox_batch_params params = {
		.producer_id = OX_PRODUCER_NONE,
		.base_sequence = OX_SEQUENCE_NONE,
	};
	struct ox_batch_builder b;
	uint8_t *value = malloc(vlen ? vlen : 1);
	char key[32];
	size_t len = 0;

	cr_assert_not_null(value);
	cr_assert_eq(ox_batch_builder_init(&b, buf, cap, &params), 0);
	for (uint32_t i = 0; i < n; i++) {
		int klen = snprintf(key, sizeof(key), "k%u-%u", seed, i);
		for (uint32_t j = 0; j < vlen; j++)
			value[j] = value_byte(seed, i, j);
		struct ox_record r = {
			.key = (const uint8_t *)key,
			.key_len = klen,
			.value = value,
			.value_len = (int32_t)vlen,
			.timestamp = ts0 + i,
		};
		cr_assert_eq(ox_batch_builder_add(&b, &r), 0, "record %u", i);
	}
	cr_assert_eq(ox_batch_builder_finish(&b, &len), 0);
	free(value);
	return len;
}

void tl_cb_fn(void *arg, int res, int64_t base, int64_t last)
{
	struct tl_cb *cb = arg;

	cb->calls++;
	cb->res = res;
	cb->base = base;
	cb->last = last;
	cb->durable = ox_log_durable_offset(T.log);
	cb->written = ox_log_written_offset(T.log);
	cb->seq = T.cb_seq++;
}

void tl_wait(const struct tl_cb *cb)
{
	for (int i = 0; cb->calls == 0 && i < WAIT_PASSES_MAX; i++) {
		int rc = ox_io_run(T.io, 1);
		cr_assert_geq(rc, 0, "ox_io_run: %s", ox_strerror(rc));
	}
	cr_assert_eq(cb->calls, 1, "callback never ran");
}

int tl_append(uint32_t n, uint32_t vlen, int64_t ts0, uint32_t seed)
{
	size_t cap = tl_build_max(n, vlen);
	uint8_t *buf = malloc(cap);
	struct tl_cb cb = { 0 };
	int64_t base = -1;

	cr_assert_not_null(buf);
	size_t len = tl_build(buf, cap, n, vlen, ts0, seed);
	int rc = ox_log_append(T.log, buf, len, 7, 0, tl_cb_fn, &cb, &base);
	if (rc == 0) {
		tl_wait(&cb);
		rc = cb.res;
	}
	free(buf);
	if (rc == 0) {
		cr_assert_eq(cb.base, base);
		cr_assert_eq(cb.last, base + n - 1);
		cr_assert_lt(T.nmodel, TL_MODEL_MAX);
		T.model[T.nmodel++] = (struct tl_batch){ base, n, vlen, ts0, seed };
	}
	return rc;
}

void tl_model_truncate(int64_t offset)
{
	while (T.nmodel > 0 &&
	       T.model[T.nmodel - 1].base + T.model[T.nmodel - 1].n - 1 >= offset)
		T.nmodel--;
}

void tl_model_trim_start(void)
{
	int64_t start = ox_log_start_offset(T.log);
	unsigned k = 0;

	while (k < T.nmodel && T.model[k].base < start)
		k++;
	memmove(T.model, T.model + k, (T.nmodel - k) * sizeof(T.model[0]));
	T.nmodel -= k;
}

void tl_check_batch(const uint8_t *batch, size_t len, const struct tl_batch *m)
{
	struct ox_batch_header h;
	struct ox_batch_iter it;
	struct ox_record r;
	char key[32];

	cr_assert_eq(ox_batch_verify(batch, len, &h), 0);
	cr_assert_eq(h.base_offset, m->base);
	cr_assert_eq(h.record_count, m->n);
	cr_assert_eq(ox_batch_iter_init(&it, batch, len), 0);
	for (uint32_t i = 0; i < m->n; i++) {
		cr_assert_eq(ox_batch_iter_next(&it, &r), 1, "record %u", i);
		int klen = snprintf(key, sizeof(key), "k%u-%u", m->seed, i);
		cr_assert_eq(r.key_len, klen);
		cr_assert_eq(memcmp(r.key, key, (size_t)klen), 0);
		cr_assert_eq(r.value_len, (int32_t)m->vlen);
		for (uint32_t j = 0; j < m->vlen; j++)
			cr_assert_eq(r.value[j], value_byte(m->seed, i, j),
				     "record %u byte %u", i, j);
		cr_assert_eq(r.timestamp, m->ts0 + i);
		cr_assert_eq(r.offset, m->base + i);
	}
	cr_assert_eq(ox_batch_iter_next(&it, &r), 0);
}

uint8_t *tl_read_all(size_t *len_out)
{
	size_t cap = ox_log_size_bytes(T.log) + 1;
	uint8_t *buf = malloc(cap);
	size_t used = 0;
	int64_t off = ox_log_start_offset(T.log);
	int64_t limit = ox_log_written_offset(T.log);

	cr_assert_not_null(buf);
	while (off < limit) {
		size_t n = 0;
		int rc = ox_log_read(T.log, off, cap - used, limit, buf + used,
				     cap - used, &n);
		cr_assert_eq(rc, 0, "read at %" PRId64 ": %s", off,
			     ox_strerror(rc));
		cr_assert_gt(n, 0);
		size_t pos = 0;
		struct ox_batch_header h;
		while (ox_batch_next(buf + used, n, &pos, &h) == 1)
			off = h.base_offset + h.last_offset_delta + 1;
		cr_assert_eq(pos, n);
		used += n;
	}
	*len_out = used;
	return buf;
}

void tl_check_model(void)
{
	size_t len = 0, pos = 0;
	uint8_t *buf = tl_read_all(&len);
	struct ox_batch_header h;
	unsigned k = 0;

	while (ox_batch_next(buf, len, &pos, &h) == 1) {
		cr_assert_lt(k, T.nmodel, "more batches than the model");
		tl_check_batch(buf + pos - h.length, h.length, &T.model[k]);
		k++;
	}
	cr_assert_eq(pos, len);
	cr_assert_eq(k, T.nmodel, "fewer batches than the model");
	free(buf);
}

void tl_path(char *out, int64_t base, const char *suffix)
{
	snprintf(out, TL_PATH_MAX, "%s/%020" PRId64 "%s", T.dir, base, suffix);
}

long long tl_file_size(int64_t base, const char *suffix)
{
	char path[TL_PATH_MAX];
	struct stat st;

	tl_path(path, base, suffix);
	return stat(path, &st) < 0 ? -1 : (long long)st.st_size;
}

void tl_file_write(int64_t base, uint64_t pos, const void *bytes, size_t len)
{
	char path[TL_PATH_MAX];

	tl_path(path, base, ".log");
	int fd = open(path, O_WRONLY);
	cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
	cr_assert_eq(pwrite(fd, bytes, len, (off_t)pos), (ssize_t)len);
	close(fd);
}

void tl_file_append(int64_t base, const void *bytes, size_t len)
{
	long long size = tl_file_size(base, ".log");

	cr_assert_geq(size, 0);
	tl_file_write(base, (uint64_t)size, bytes, len);
}

void tl_file_truncate(int64_t base, uint64_t size)
{
	char path[TL_PATH_MAX];

	tl_path(path, base, ".log");
	cr_assert_eq(truncate(path, (off_t)size), 0);
}
