// SPDX-License-Identifier: Apache-2.0
//
// Writes the seed corpus of the batch fuzzer (tests/fuzz/corpus/batch/):
// valid batches that between them use every feature of the format, so the
// fuzzer starts deep inside the record decoder instead of having to guess
// a header and a checksum. Run it after a format change:
//
//   build/tests/fuzz/make-batch-seeds tests/fuzz/corpus/batch
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/assert.h"
#include "proto/batch.h"

#define SEED_BYTES_MAX 8192

struct seed {
	uint8_t buf[SEED_BYTES_MAX];
	size_t len;
};

static const struct ox_batch_params plain = {
	.producer_id = OX_PRODUCER_NONE,
	.producer_epoch = -1,
	.base_sequence = OX_SEQUENCE_NONE,
};

static struct ox_record kv(const char *key, const char *value, int64_t ts)
{
	return (struct ox_record){
		.key = (const uint8_t *)key,
		.key_len = key ? (int32_t)strlen(key) : -1,
		.value = (const uint8_t *)value,
		.value_len = value ? (int32_t)strlen(value) : -1,
		.timestamp = ts,
	};
}

// Appends a batch of `n` records (at deltas[i] when deltas is non-NULL).
static void batch(struct seed *s, const struct ox_batch_params *p,
		  const struct ox_record *recs, size_t n,
		  const uint32_t *deltas, uint32_t last_delta)
{
	struct ox_batch_builder b;
	size_t len;

	OX_ASSERT(ox_batch_builder_init(&b, s->buf + s->len,
					sizeof(s->buf) - s->len, p) == 0);
	for (size_t i = 0; i < n; i++) {
		int rc = deltas ? ox_batch_builder_add_at(&b, &recs[i], deltas[i])
				: ox_batch_builder_add(&b, &recs[i]);
		OX_ASSERT(rc == 0);
	}
	if (last_delta > 0)
		ox_batch_builder_set_last_delta(&b, last_delta);
	OX_ASSERT(ox_batch_builder_finish(&b, &len) == 0);
	OX_ASSERT(ox_batch_verify(s->buf + s->len, len, NULL) == 0);
	s->len += len;
}

static int save(const char *dir, const char *name, const struct seed *s)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (f == NULL)
		goto fail;
	if (fwrite(s->buf, 1, s->len, f) != s->len) {
		fclose(f);
		goto fail;
	}
	if (fclose(f) != 0)
		goto fail;
	return 0;
fail:;
	int err = errno; // fprintf may change it

	fprintf(stderr, "make-batch-seeds: %s: %s\n", path, strerror(err));
	return -err;
}

static void seed_headers(struct seed *s)
{
	static const struct ox_record_header hdrs[] = {
		{ (const uint8_t *)"trace-id", 8, (const uint8_t *)"abc123", 6 },
		{ (const uint8_t *)"null", 4, NULL, -1 },
		{ (const uint8_t *)"", 0, (const uint8_t *)"", 0 },
	};
	struct ox_record recs[] = {
		kv("user-1", "{\"clicks\":1}", 1700000000000),
		kv(NULL, "no key", 1699999999000),
		kv("user-2", NULL, 1700000000500),
		kv("", "", -1),
	};
	const struct ox_batch_params p = {
		.base_offset = 1000, .term = 7, .producer_id = 42,
		.producer_epoch = 3, .base_sequence = 99,
	};

	recs[0].headers = hdrs;
	recs[0].header_count = 3;
	batch(s, &p, recs, 4, NULL, 0);
}

static void seed_compacted(struct seed *s)
{
	const struct ox_record recs[] = { kv("a", "1", 10), kv("b", NULL, 20),
					  kv("c", "3", 5) };
	const uint32_t deltas[] = { 3, 200, 70000 };

	batch(s, &plain, recs, 3, deltas, 100000);
}

int main(int argc, char **argv)
{
	struct seed *s = calloc(1, sizeof(*s));
	const struct ox_record one = kv("key", "value", 1);
	struct ox_batch_params control = plain;
	int rc = 0;

	if (argc != 2 || s == NULL) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	batch(s, &plain, &one, 1, NULL, 0);
	rc |= save(argv[1], "one-record", s);
	s->len = 0;
	seed_headers(s);
	rc |= save(argv[1], "headers", s);
	s->len = 0;
	seed_compacted(s);
	rc |= save(argv[1], "compacted", s);
	s->len = 0;
	control.attributes = OX_BATCH_ATTR_CONTROL;
	batch(s, &control, &one, 1, NULL, 0);
	rc |= save(argv[1], "control", s);
	// Three batches back to back, for the ox_batch_next walk.
	seed_headers(s);
	seed_compacted(s);
	rc |= save(argv[1], "concatenated", s);
	free(s);
	return rc == 0 ? 0 : 1;
}
