// SPDX-License-Identifier: Apache-2.0
//
// libFuzzer harness for the batch decoders (proto/batch.h). The input is
// taken as bytes off the wire or off a disk: verify, the ox_batch_next walk
// over concatenated batches, the record iterator and the header walk all
// run on it, verified or not, and must stay inside the buffer (ASan checks)
// and return one of their documented results.
//
// A checksum is out of a mutator's reach, so the input is also tried with
// its checksum fixed up: that lets the fuzzer explore the record decoder
// behind verify. Every batch verify accepts is decoded and written again
// with the builder; invariant B3 of proto/batch.c says the bytes are equal.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/batch.h"
#include "proto/error.h"
#include "proto/varint.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) \
	do { \
		if (!(cond)) { \
			fprintf(stderr, "fuzz_batch: check failed: %s (line %d)\n", \
				#cond, __LINE__); \
			abort(); \
		} \
	} while (0)

static struct ox_record_header headers[OX_RECORD_HEADERS_MAX];

static int is_decode_error(int rc)
{
	return rc == -OX_ECORRUPT || rc == -OX_ETRUNCATED;
}

// Walks every record and header; returns the iterator's final result.
static int walk(const uint8_t *buf, size_t len, uint32_t *records)
{
	struct ox_batch_iter it;
	struct ox_record r;
	int rc = ox_batch_iter_init(&it, buf, len);

	*records = 0;
	if (rc < 0)
		return rc;
	while ((rc = ox_batch_iter_next(&it, &r)) == 1) {
		struct ox_record_header h;
		size_t pos = 0;
		uint32_t n = 0;
		int hrc;

		CHECK(r.offset >= it.hdr.base_offset);
		CHECK(r.key_len >= -1 && r.value_len >= -1);
		CHECK(r.headers_raw_len <= len);
		while ((hrc = ox_record_header_next(&r, &pos, &h)) == 1)
			n++;
		// The iterator already walked the headers: no surprise here.
		CHECK(hrc == 0 && n == r.header_count);
		(*records)++;
	}
	CHECK(rc == 0 || rc == -OX_ECORRUPT);
	CHECK(*records <= it.hdr.record_count);
	return rc;
}

// Adds decoded record r again: as it is (headers copied from headers_raw)
// when raw, else with its headers walked into an array first.
static void add_again(struct ox_batch_builder *b, struct ox_record *r,
		      int64_t base_offset, int raw)
{
	struct ox_record_header h;
	size_t pos = 0;
	uint32_t n = 0;

	if (!raw) {
		while (ox_record_header_next(r, &pos, &h) == 1) {
			CHECK(n < OX_RECORD_HEADERS_MAX);
			headers[n++] = h;
		}
		r->headers = headers;
	}
	CHECK(ox_batch_builder_add_at(b, r, (uint32_t)(r->offset - base_offset)) == 0);
}

// buf[0, len) passed verify: re-encode it and compare (B3).
static void round_trip(const uint8_t *buf, size_t len, int raw)
{
	struct ox_batch_builder b;
	struct ox_batch_iter it;
	struct ox_record r;
	size_t out_len = 0;
	uint8_t *out = malloc(len);
	int rc;

	CHECK(out != NULL);
	CHECK(ox_batch_iter_init(&it, buf, len) == 0);
	const struct ox_batch_params params = {
		.attributes = it.hdr.attributes,
		.base_offset = it.hdr.base_offset,
		.term = it.hdr.term,
		.producer_id = it.hdr.producer_id,
		.producer_epoch = it.hdr.producer_epoch,
		.base_sequence = it.hdr.base_sequence,
	};
	CHECK(ox_batch_builder_init(&b, out, len, &params) == 0);
	while ((rc = ox_batch_iter_next(&it, &r)) == 1)
		add_again(&b, &r, it.hdr.base_offset, raw);
	CHECK(rc == 0);
	ox_batch_builder_set_last_delta(&b, it.hdr.last_offset_delta);
	CHECK(ox_batch_builder_finish(&b, &out_len) == 0);
	CHECK(out_len == len);
	CHECK(memcmp(out, buf, len) == 0);
	free(out);
}

// Full check of one candidate batch; on success, the paired checks.
static void verify_one(const uint8_t *buf, size_t len)
{
	struct ox_batch_header h;
	uint32_t records;
	int rc = ox_batch_verify(buf, len, &h);

	CHECK(rc == 0 || is_decode_error(rc));
	if (rc != 0)
		return;
	CHECK(h.length <= len && h.length > OX_BATCH_HEADER_BYTES);
	// B5: what verify accepts, the iterator decodes in full.
	CHECK(walk(buf, h.length, &records) == 0);
	CHECK(records == h.record_count);
	round_trip(buf, h.length, 0);
	round_trip(buf, h.length, 1);
}

// The same bytes with a correct checksum, in an exactly-sized heap copy
// so that ASan sees any read past the end.
static void verify_fixed(const uint8_t *data, size_t size)
{
	if (size < OX_BATCH_HEADER_BYTES)
		return;
	uint32_t length = ox_load_le32(data + 8);
	size_t n = length >= OX_BATCH_HEADER_BYTES && length <= size ? length : size;
	uint8_t *copy = malloc(n);

	CHECK(copy != NULL);
	memcpy(copy, data, n);
	ox_store_le64(copy, ox_batch_checksum(copy, n));
	verify_one(copy, n);
	free(copy);
}

static void walk_batches(const uint8_t *data, size_t size)
{
	struct ox_batch_header h;
	size_t pos = 0, start = 0;
	uint32_t records;
	int rc;

	while ((rc = ox_batch_next(data, size, &pos, &h)) == 1) {
		CHECK(pos - start == h.length && pos <= size);
		(void)walk(data + start, h.length, &records);
		start = pos;
	}
	CHECK(rc == 0 || is_decode_error(rc));
	CHECK(pos == start && pos <= size);
	CHECK(rc != 0 || pos == size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint32_t records;

	verify_one(data, size);
	verify_fixed(data, size);
	walk_batches(data, size);
	// The whole input as one batch, unverified, as a careless reader
	// would take it.
	(void)walk(data, size, &records);
	return 0;
}
