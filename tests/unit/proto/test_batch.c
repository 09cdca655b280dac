// SPDX-License-Identifier: Apache-2.0
//
// The batch builder and what the decoders read back: every field round
// trips, limits (headers, records, sizes, offsets) are enforced, and a
// failed add leaves the builder as it was (invariant B1 of proto/batch.c).
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto/batch.h"
#include "proto/error.h"
#include "raw.h"

static const struct ox_batch_params plain = {
	.producer_id = OX_PRODUCER_NONE,
	.producer_epoch = -1,
	.base_sequence = OX_SEQUENCE_NONE,
};

static struct ox_record rec_kv(const char *key, const char *value, int64_t ts)
{
	return (struct ox_record){
		.key = (const uint8_t *)key,
		.key_len = key ? (int32_t)strlen(key) : -1,
		.value = (const uint8_t *)value,
		.value_len = value ? (int32_t)strlen(value) : -1,
		.timestamp = ts,
	};
}

static void assert_bytes(const uint8_t *p, int32_t len, const uint8_t *want,
			 int32_t want_len)
{
	cr_assert_eq(len, want_len);
	if (want_len < 0) {
		cr_assert_null(p);
		return;
	}
	cr_assert_not_null(p, "a non-null field must point into the batch");
	if (want_len > 0) // memcmp with NULL is undefined even for 0 bytes
		cr_assert_arr_eq(p, want, (size_t)want_len);
}

static void assert_header_eq(const struct ox_record_header *got,
			     const struct ox_record_header *want)
{
	cr_assert_eq(got->key_len, want->key_len);
	if (want->key_len > 0)
		cr_assert_arr_eq(got->key, want->key, want->key_len);
	assert_bytes(got->value, got->value_len, want->value, want->value_len);
}

// Decoded record `got` must equal the encoded `want` at `offset`.
static void assert_record_eq(const struct ox_record *got,
			     const struct ox_record *want, int64_t offset)
{
	struct ox_record_header h;
	size_t pos = 0;

	assert_bytes(got->key, got->key_len, want->key, want->key_len);
	assert_bytes(got->value, got->value_len, want->value, want->value_len);
	cr_assert_eq(got->timestamp, want->timestamp);
	cr_assert_eq(got->offset, offset);
	cr_assert_eq(got->header_count, want->header_count);
	cr_assert_null(got->headers);
	for (uint32_t i = 0; i < want->header_count; i++) {
		cr_assert_eq(ox_record_header_next(got, &pos, &h), 1);
		assert_header_eq(&h, &want->headers[i]);
	}
	cr_assert_eq(ox_record_header_next(got, &pos, &h), 0);
	cr_assert_eq(pos, got->headers_raw_len);
}

// Verifies buf and checks its records against want[] at offsets[].
static struct ox_batch_header check_batch(const uint8_t *buf, size_t len,
					  const struct ox_record *want,
					  const int64_t *offsets, size_t n)
{
	struct ox_batch_header hdr;
	struct ox_batch_iter it;
	struct ox_record got;
	uint8_t *again = malloc(len);

	cr_assert_eq(ox_batch_verify(buf, len, &hdr), 0);
	cr_assert_eq(hdr.length, len);
	cr_assert_eq(hdr.record_count, n);
	cr_assert_eq(ox_batch_iter_init(&it, buf, len), 0);
	for (size_t i = 0; i < n; i++) {
		cr_assert_eq(ox_batch_iter_next(&it, &got), 1, "record %zu", i);
		assert_record_eq(&got, &want[i], offsets[i]);
	}
	cr_assert_eq(ox_batch_iter_next(&it, &got), 0);
	cr_assert_eq(ox_batch_iter_next(&it, &got), 0, "the end stays the end");
	// B3: the builder re-encodes the decoded records to the same bytes.
	cr_assert_not_null(again);
	cr_assert_eq(reencode(buf, len, again, len), len);
	cr_assert_arr_eq(again, buf, len);
	free(again);
	return hdr;
}

Test(batch, round_trips_every_record_field)
{
	static const uint8_t empty[1];
	const struct ox_record_header hdrs[] = {
		{ (const uint8_t *)"trace", 5, (const uint8_t *)"abc", 3 },
		{ (const uint8_t *)"null-value", 10, NULL, -1 },
		{ (const uint8_t *)"", 0, empty, 0 },
		{ NULL, 0, (const uint8_t *)"x", 1 },
	};
	struct ox_record recs[] = {
		rec_kv("k1", "v1", 1000),
		rec_kv(NULL, "null key", 1001),
		rec_kv("tombstone", NULL, 999),   // negative timestamp delta
		{ .key = empty, .key_len = 0, .value = empty, .value_len = 0,
		  .timestamp = -5000 },          // empty key and value
		{ .key = NULL, .key_len = 0, .value = NULL, .value_len = 0,
		  .timestamp = 1000 },           // empty fields given as NULL
		rec_kv("h", "with headers", (int64_t)1 << 40),
		rec_kv(NULL, NULL, 1000),
	};
	const int64_t offsets[] = { 0, 1, 2, 3, 4, 5, 6 };
	size_t n = sizeof(recs) / sizeof(recs[0]);
	uint8_t buf[2048];
	struct ox_batch_builder b;
	size_t len;

	recs[5].headers = hdrs;
	recs[5].header_count = 4;
	cr_assert_eq(ox_batch_builder_init(&b, buf, sizeof(buf), &plain), 0);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(ox_batch_builder_add(&b, &recs[i]), 0, "record %zu", i);
	cr_assert_eq(ox_batch_builder_count(&b), n);
	cr_assert_eq(ox_batch_builder_finish(&b, &len), 0);

	struct ox_batch_header h = check_batch(buf, len, recs, offsets, n);
	cr_assert_eq(h.first_timestamp, 1000);
	cr_assert_eq(h.max_timestamp, (int64_t)1 << 40);
	cr_assert_eq(h.last_offset_delta, n - 1);
	cr_assert_eq(h.base_offset, 0);
	cr_assert_eq(h.term, 0);
	cr_assert_eq(h.attributes, 0);
	cr_assert_eq(h.producer_id, -1);
	cr_assert_eq(h.base_sequence, -1);
	cr_assert_eq(h.checksum, ox_batch_checksum(buf, len));
}

Test(batch, header_fields_round_trip)
{
	const struct ox_batch_params params = {
		.attributes = OX_BATCH_ATTR_CONTROL,
		.base_offset = 123456789012345,
		.term = UINT64_MAX - 1,
		.producer_id = 0x7001020304050607,
		.producer_epoch = -2,
		.base_sequence = INT32_MAX,
	};
	struct ox_record r = rec_kv("k", "v", -7);
	uint8_t buf[256];
	struct ox_batch_builder b;
	struct ox_batch_header h;
	size_t len;

	cr_assert_eq(ox_batch_builder_init(&b, buf, sizeof(buf), &params), 0);
	cr_assert_eq(ox_batch_builder_add(&b, &r), 0);
	cr_assert_eq(ox_batch_builder_finish(&b, &len), 0);
	cr_assert_eq(ox_batch_verify(buf, len, &h), 0);
	cr_assert_eq(h.attributes, OX_BATCH_ATTR_CONTROL);
	cr_assert_eq(h.base_offset, params.base_offset);
	cr_assert_eq(h.term, params.term);
	cr_assert_eq(h.producer_id, params.producer_id);
	cr_assert_eq(h.producer_epoch, -2);
	cr_assert_eq(h.base_sequence, INT32_MAX);
	cr_assert_eq(h.first_timestamp, -7);
	cr_assert_eq(h.max_timestamp, -7);
	cr_assert_eq(h.record_count, 1);
	cr_assert_eq(h.last_offset_delta, 0);
	// The wire bytes, for BATCH_FORMAT.md's sake: little-endian, magic 1.
	cr_assert_eq(buf[12], OX_BATCH_MAGIC);
	cr_assert_eq(buf[14], OX_BATCH_ATTR_CONTROL);
	cr_assert_eq(buf[16], 0x79); // 123456789012345 = 0x7048860DDF79
	cr_assert_eq(buf[8], (uint8_t)len);

	struct ox_batch_header again;
	cr_assert_eq(ox_batch_header_decode(buf, len, &again), 0);
	cr_assert_eq(again.checksum, h.checksum);
	cr_assert_eq(again.length, h.length);
	cr_assert_eq(again.base_offset, h.base_offset);
	cr_assert_eq(again.term, h.term);
	cr_assert_eq(again.producer_id, h.producer_id);
}

Test(batch, explicit_offset_deltas_with_gaps)
{
	struct ox_record recs[] = { rec_kv("a", "1", 10), rec_kv("b", "2", 20),
				    rec_kv("c", "3", 30), rec_kv("d", "4", 40) };
	const int64_t offsets[] = { 1007, 1012, 1020, 1021 };
	struct ox_batch_params params = plain;
	uint8_t buf[512];
	struct ox_batch_builder b;
	size_t len;

	params.base_offset = 1000;
	cr_assert_eq(ox_batch_builder_init(&b, buf, sizeof(buf), &params), 0);
	cr_assert_eq(ox_batch_builder_add_at(&b, &recs[0], 7), 0);
	cr_assert_eq(ox_batch_builder_add_at(&b, &recs[1], 12), 0);
	cr_assert_eq(ox_batch_builder_add_at(&b, &recs[2], 20), 0);
	cr_assert_eq(ox_batch_builder_add(&b, &recs[3]), 0); // next: 21
	ox_batch_builder_set_last_delta(&b, 25);
	cr_assert_eq(ox_batch_builder_finish(&b, &len), 0);

	struct ox_batch_header h = check_batch(buf, len, recs, offsets, 4);
	cr_assert_eq(h.last_offset_delta, 25, "set_last_delta widens the span");
	cr_assert_eq(h.base_offset, 1000);
}

Test(batch, add_after_set_last_delta_continues_above_it)
{
	struct ox_record recs[] = { rec_kv("a", "1", 1), rec_kv("b", "2", 2) };
	const int64_t offsets[] = { 0, 10 };
	uint8_t buf[256];
	struct ox_batch_builder b;
	size_t len;

	cr_assert_eq(ox_batch_builder_init(&b, buf, sizeof(buf), &plain), 0);
	cr_assert_eq(ox_batch_builder_add(&b, &recs[0]), 0);
	ox_batch_builder_set_last_delta(&b, 9);
	cr_assert_eq(ox_batch_builder_add_at(&b, &recs[1], 9), -EINVAL);
	cr_assert_eq(ox_batch_builder_add(&b, &recs[1]), 0);
	cr_assert_eq(ox_batch_builder_finish(&b, &len), 0);
	check_batch(buf, len, recs, offsets, 2);
}

Test(batch, add_at_rejects_non_increasing_deltas_unchanged)
{
	struct ox_record r = rec_kv("k", "v", 5);
	uint8_t buf[256];
	struct ox_batch_builder b;
	size_t len;

	cr_assert_eq(ox_batch_builder_init(&b, buf, sizeof(buf), &plain), 0);
	cr_assert_eq(ox_batch_builder_add_at(&b, &r, 5), 0);
	size_t len_before = b.len;
	cr_assert_eq(ox_batch_builder_add_at(&b, &r, 5), -EINVAL);
	cr_assert_eq(ox_batch_builder_add_at(&b, &r, 4), -EINVAL);
	cr_assert_eq(ox_batch_builder_add_at(&b, &r, 0), -EINVAL);
	cr_assert_eq(ox_batch_builder_count(&b), 1);
	cr_assert_eq(b.len, len_before);
	cr_assert_eq(ox_batch_builder_finish(&b, &len), 0);
	struct ox_batch_header h;
	cr_assert_eq(ox_batch_verify(buf, len, &h), 0);
	cr_assert_eq(h.last_offset_delta, 5);
	cr_assert_eq(h.record_count, 1);
}

Test(batch, init_rejects_bad_arguments)
{
	uint8_t buf[256];
	struct ox_batch_builder b;
	struct ox_batch_params p = plain;

	cr_assert_eq(ox_batch_builder_init(&b, buf, OX_BATCH_HEADER_BYTES - 1, &p),
		     -EINVAL);
	cr_assert_eq(ox_batch_builder_init(&b, buf, OX_BATCH_HEADER_BYTES, &p), 0);
	p.attributes = 0x10; // unknown bit
	cr_assert_eq(ox_batch_builder_init(&b, buf, sizeof(buf), &p), -EINVAL);
	p.attributes = 1; // a codec: the builder writes uncompressed records
	cr_assert_eq(ox_batch_builder_init(&b, buf, sizeof(buf), &p), -EINVAL);
	p.attributes = 0;
	p.base_offset = -1;
	cr_assert_eq(ox_batch_builder_init(&b, buf, sizeof(buf), &p), -EINVAL);
}

Test(batch, finish_without_records_is_invalid)
{
	uint8_t buf[256];
	struct ox_batch_builder b;
	size_t len = 99;

	cr_assert_eq(ox_batch_builder_init(&b, buf, sizeof(buf), &plain), 0);
	cr_assert_eq(ox_batch_builder_finish(&b, &len), -EINVAL);
	cr_assert_eq(len, 99);
}

Test(batch, invalid_records_are_rejected_unchanged)
{
	static const uint8_t x[4] = "xyz";
	const struct ox_record_header bad_value = { x, 1, x, -2 };
	const struct ox_record_header bad_key = { NULL, 3, x, 1 };
	const struct ox_record_header huge_key = { x, (uint32_t)INT32_MAX + 1, x, 1 };
	struct ox_record bad[] = {
		{ .key = x, .key_len = -2, .value = x, .value_len = 1 },
		{ .key = x, .key_len = 1, .value = x, .value_len = -9 },
		{ .key = NULL, .key_len = 3, .value = x, .value_len = 1 },
		{ .key = x, .key_len = 1, .value = NULL, .value_len = 2 },
		{ .key = x, .key_len = 1, .header_count = 1, .headers = NULL },
		{ .key = x, .key_len = 1, .header_count = 1, .headers = &bad_value },
		{ .key = x, .key_len = 1, .header_count = 1, .headers = &bad_key },
		{ .key = x, .key_len = 1, .header_count = 1, .headers = &huge_key },
		{ .key = x, .key_len = 1, .header_count = OX_RECORD_HEADERS_MAX + 1,
		  .headers = &bad_value },
	};
	uint8_t buf[256];
	struct ox_batch_builder b;

	cr_assert_eq(ox_batch_builder_init(&b, buf, sizeof(buf), &plain), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(ox_batch_builder_add(&b, &bad[i]), -EINVAL, "case %zu", i);
		cr_assert_eq(ox_batch_builder_add_at(&b, &bad[i], 3), -EINVAL);
		cr_assert_eq(ox_record_bytes_max(&bad[i]), SIZE_MAX);
	}
	cr_assert_eq(ox_batch_builder_count(&b), 0);
	cr_assert_eq(b.len, OX_BATCH_HEADER_BYTES);
}

Test(batch, timestamp_delta_overflow_is_invalid)
{
	struct ox_record lo = rec_kv("a", "b", INT64_MIN);
	struct ox_record hi = rec_kv("a", "b", INT64_MAX);
	uint8_t buf[256];
	struct ox_batch_builder b;
	size_t len;

	cr_assert_eq(ox_batch_builder_init(&b, buf, sizeof(buf), &plain), 0);
	cr_assert_eq(ox_batch_builder_add(&b, &lo), 0);
	cr_assert_eq(ox_batch_builder_add(&b, &hi), -EINVAL);
	cr_assert_eq(ox_batch_builder_add(&b, &lo), 0);
	cr_assert_eq(ox_batch_builder_finish(&b, &len), 0);
	cr_assert_eq(ox_batch_verify(buf, len, NULL), 0);
}

Test(batch, enospc_leaves_builder_finishable)
{
	struct ox_record r = rec_kv("key", "0123456789abcdef", 1);
	uint8_t buf[300];
	struct ox_batch_builder b;
	int rc;
	size_t len, before;

	cr_assert_eq(ox_batch_builder_init(&b, buf, sizeof(buf), &plain), 0);
	while ((rc = ox_batch_builder_add(&b, &r)) == 0)
		;
	cr_assert_eq(rc, -ENOSPC);
	uint32_t n = ox_batch_builder_count(&b);
	before = b.len;
	cr_assert_gt(n, 1);
	cr_assert_eq(ox_batch_builder_add(&b, &r), -ENOSPC);
	cr_assert_eq(ox_batch_builder_add_at(&b, &r, 1000), -ENOSPC);
	cr_assert_eq(ox_batch_builder_count(&b), n);
	cr_assert_eq(b.len, before);
	cr_assert_eq(ox_batch_builder_finish(&b, &len), 0);
	cr_assert_leq(len, sizeof(buf));
	// A record takes 1 + 25 bytes here; less than that must be left.
	cr_assert_lt(sizeof(buf) - len, 26);
	struct ox_batch_header h;
	cr_assert_eq(ox_batch_verify(buf, len, &h), 0);
	cr_assert_eq(h.record_count, n);
}

Test(batch, record_fits_exactly_at_cap)
{
	struct ox_record r = rec_kv("key", "value", 1);
	uint8_t buf[512];
	struct ox_batch_builder b;
	size_t len, one;

	cr_assert_eq(ox_batch_builder_init(&b, buf, sizeof(buf), &plain), 0);
	cr_assert_eq(ox_batch_builder_add(&b, &r), 0);
	cr_assert_eq(ox_batch_builder_finish(&b, &one), 0);

	cr_assert_eq(ox_batch_builder_init(&b, buf, one, &plain), 0);
	cr_assert_eq(ox_batch_builder_add(&b, &r), 0, "exact fit");
	cr_assert_eq(ox_batch_builder_finish(&b, &len), 0);
	cr_assert_eq(len, one);
	cr_assert_eq(ox_batch_verify(buf, len, NULL), 0);

	cr_assert_eq(ox_batch_builder_init(&b, buf, one - 1, &plain), 0);
	cr_assert_eq(ox_batch_builder_add(&b, &r), -ENOSPC, "one byte short");
	cr_assert_geq(ox_record_bytes_max(&r), one - OX_BATCH_HEADER_BYTES);
}

Test(batch, record_bytes_max_bounds_the_real_size)
{
	static uint8_t big[70000];
	const struct ox_record_header hdrs[] = {
		{ big, 300, big, 20000 }, { big, 0, NULL, -1 },
	};
	struct ox_record recs[] = {
		rec_kv(NULL, NULL, 0),
		rec_kv("k", "v", INT64_MIN / 2),
		{ .key = big, .key_len = 65536, .value = big, .value_len = 1,
		  .timestamp = INT64_MAX / 2, .headers = hdrs, .header_count = 2 },
	};
	static uint8_t buf[200000];
	struct ox_batch_builder b;

	cr_assert_eq(ox_batch_builder_init(&b, buf, sizeof(buf), &plain), 0);
	for (size_t i = 0; i < sizeof(recs) / sizeof(recs[0]); i++) {
		size_t before = b.len;

		cr_assert_eq(ox_batch_builder_add_at(&b, &recs[i],
			(uint32_t)i * 1000000u), 0);
		cr_assert_geq(ox_record_bytes_max(&recs[i]), b.len - before);
		cr_assert_lt(ox_record_bytes_max(&recs[i]), b.len - before + 64,
			     "a bound should stay close to the size");
	}
}

Test(batch, huge_lengths_fail_without_reading)
{
	// The lengths claim far more than the 8 bytes behind the pointers:
	// the builder must size the record before touching them.
	static const uint8_t small[8];
	const struct ox_record_header hdr = { small, (uint32_t)INT32_MAX, small,
					      INT32_MAX };
	struct ox_record recs[] = {
		{ .key = small, .key_len = INT32_MAX, .value = small, .value_len = 1 },
		{ .key = small, .key_len = 1, .value = small, .value_len = INT32_MAX },
		{ .key = small, .key_len = 1, .headers = &hdr, .header_count = 1 },
	};
	uint8_t buf[256];
	struct ox_batch_builder b;

	cr_assert_eq(ox_batch_builder_init(&b, buf, sizeof(buf), &plain), 0);
	for (size_t i = 0; i < 3; i++) {
		cr_assert_eq(ox_batch_builder_add(&b, &recs[i]), -ENOSPC);
		cr_assert_geq(ox_record_bytes_max(&recs[i]), (size_t)INT32_MAX);
	}
	cr_assert_eq(ox_batch_builder_count(&b), 0);
}

Test(batch, cap_is_clamped_to_the_format_limit)
{
	size_t cap = OX_BATCH_BYTES_MAX + (1u << 20);
	uint8_t *buf = malloc(cap);
	uint8_t *val = calloc(1, OX_BATCH_BYTES_MAX);
	struct ox_batch_builder b;
	struct ox_batch_header h;
	size_t len;

	cr_assert(buf && val);
	struct ox_record r = { .key_len = -1, .value = val,
			       .value_len = OX_BATCH_BYTES_MAX - OX_BATCH_HEADER_BYTES };
	cr_assert_eq(ox_batch_builder_init(&b, buf, cap, &plain), 0);
	cr_assert_eq(b.cap, OX_BATCH_BYTES_MAX);
	// Fits the 1 MiB of extra buffer but not the format's limit.
	cr_assert_eq(ox_batch_builder_add(&b, &r), -ENOSPC);
	r.value_len -= 16; // room for the record's own fields
	cr_assert_eq(ox_batch_builder_add(&b, &r), 0);
	cr_assert_eq(ox_batch_builder_finish(&b, &len), 0);
	cr_assert_leq(len, OX_BATCH_BYTES_MAX);
	cr_assert_gt(len, OX_BATCH_BYTES_MAX - 16);
	cr_assert_eq(ox_batch_verify(buf, len, &h), 0);
	free(val);
	free(buf);
}

Test(batch, max_headers_per_record)
{
	struct ox_record_header *hdrs = calloc(OX_RECORD_HEADERS_MAX + 1,
					       sizeof(*hdrs));
	static uint8_t buf[64 << 10];
	struct ox_batch_builder b;
	size_t len;

	cr_assert_not_null(hdrs);
	for (uint32_t i = 0; i <= OX_RECORD_HEADERS_MAX; i++) {
		hdrs[i].key = (const uint8_t *)"hk";
		hdrs[i].key_len = 2;
		hdrs[i].value = i % 2 ? NULL : (const uint8_t *)"hv";
		hdrs[i].value_len = i % 2 ? -1 : 2;
	}
	struct ox_record r = rec_kv("k", "v", 1);
	r.headers = hdrs;
	r.header_count = OX_RECORD_HEADERS_MAX + 1;
	cr_assert_eq(ox_batch_builder_init(&b, buf, sizeof(buf), &plain), 0);
	cr_assert_eq(ox_batch_builder_add(&b, &r), -EINVAL);
	r.header_count = OX_RECORD_HEADERS_MAX;
	cr_assert_eq(ox_batch_builder_add(&b, &r), 0);
	cr_assert_eq(ox_batch_builder_finish(&b, &len), 0);

	const int64_t offsets[] = { 0 };
	check_batch(buf, len, &r, offsets, 1);
	free(hdrs);
}

Test(batch, max_records_per_batch)
{
	uint8_t *buf = malloc(OX_BATCH_BYTES_MAX);
	struct ox_record r = rec_kv(NULL, NULL, 0);
	struct ox_batch_builder b;
	struct ox_batch_header h;
	struct ox_batch_iter it;
	struct ox_record got;
	uint32_t n = 0;
	size_t len;
	int rc;

	cr_assert_not_null(buf);
	cr_assert_eq(ox_batch_builder_init(&b, buf, OX_BATCH_BYTES_MAX, &plain), 0);
	for (uint32_t i = 0; i < OX_BATCH_RECORDS_MAX; i++) {
		if (ox_batch_builder_add(&b, &r) != 0)
			cr_assert_fail("record %u refused", i);
	}
	cr_assert_gt(OX_BATCH_BYTES_MAX - b.len, 1000, "room left, yet...");
	cr_assert_eq(ox_batch_builder_add(&b, &r), -ENOSPC, "...the count is full");
	cr_assert_eq(ox_batch_builder_finish(&b, &len), 0);
	cr_assert_eq(ox_batch_verify(buf, len, &h), 0);
	cr_assert_eq(h.record_count, OX_BATCH_RECORDS_MAX);
	cr_assert_eq(h.last_offset_delta, OX_BATCH_RECORDS_MAX - 1);
	cr_assert_eq(ox_batch_iter_init(&it, buf, len), 0);
	while ((rc = ox_batch_iter_next(&it, &got)) == 1) {
		if (got.offset != n++)
			cr_assert_fail("offset %lld at %u", (long long)got.offset, n);
	}
	cr_assert_eq(rc, 0);
	cr_assert_eq(n, OX_BATCH_RECORDS_MAX);
	free(buf);
}

Test(batch, no_offset_delta_left)
{
	struct ox_record r = rec_kv("k", "v", 1);
	uint8_t buf[256];
	struct ox_batch_builder b;
	size_t len;

	cr_assert_eq(ox_batch_builder_init(&b, buf, sizeof(buf), &plain), 0);
	cr_assert_eq(ox_batch_builder_add_at(&b, &r, UINT32_MAX), 0);
	cr_assert_eq(ox_batch_builder_add(&b, &r), -ENOSPC);
	cr_assert_eq(ox_batch_builder_finish(&b, &len), 0);
	struct ox_batch_header h;
	cr_assert_eq(ox_batch_verify(buf, len, &h), 0);
	cr_assert_eq(h.last_offset_delta, UINT32_MAX);
	cr_assert_eq(h.record_count, 1);
}

Test(batch, offsets_must_not_overflow)
{
	struct ox_record r = rec_kv("k", "v", 1);
	struct ox_batch_params p = plain;
	uint8_t buf[256];
	struct ox_batch_builder b;
	size_t len;

	p.base_offset = INT64_MAX - 5;
	cr_assert_eq(ox_batch_builder_init(&b, buf, sizeof(buf), &p), 0);
	cr_assert_eq(ox_batch_builder_add_at(&b, &r, 6), -EINVAL);
	cr_assert_eq(ox_batch_builder_add_at(&b, &r, 5), 0);
	cr_assert_eq(ox_batch_builder_add(&b, &r), -EINVAL);
	cr_assert_eq(ox_batch_builder_finish(&b, &len), 0);
	struct ox_batch_header h;
	cr_assert_eq(ox_batch_verify(buf, len, &h), 0);
	cr_assert_eq(h.base_offset + h.last_offset_delta, INT64_MAX);
}

Test(batch, finish_twice_gives_the_same_batch)
{
	struct ox_record r = rec_kv("k", "v", 1);
	uint8_t buf[256], copy[256];
	struct ox_batch_builder b;
	size_t len, len2;

	cr_assert_eq(ox_batch_builder_init(&b, buf, sizeof(buf), &plain), 0);
	cr_assert_eq(ox_batch_builder_add(&b, &r), 0);
	cr_assert_eq(ox_batch_builder_finish(&b, &len), 0);
	memcpy(copy, buf, len);
	cr_assert_eq(ox_batch_builder_finish(&b, &len2), 0);
	cr_assert_eq(len, len2);
	cr_assert_arr_eq(buf, copy, len);
}

// The example of proto/BATCH_FORMAT.md, byte for byte.
Test(batch, format_example)
{
	static const uint8_t want[87] = {
		0xba, 0xb8, 0x08, 0x28, 0xcf, 0x1a, 0xe1, 0xde,
		0x57, 0x00, 0x00, 0x00,
		0x01, 0x00, 0x00, 0x00,
		0, 0, 0, 0, 0, 0, 0, 0,
		0, 0, 0, 0, 0, 0, 0, 0,
		0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
		0x01, 0, 0, 0, 0, 0, 0, 0,
		0x01, 0, 0, 0, 0, 0, 0, 0,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xff, 0xff, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff,
		0x0e,
		0x00, 0x00, 0x00,
		0x06, 'k', 'e', 'y',
		0x0a, 'v', 'a', 'l', 'u', 'e',
		0x00,
	};
	struct ox_record r = rec_kv("key", "value", 1);
	uint8_t buf[256];
	struct ox_batch_builder b;
	size_t len;

	cr_assert_eq(ox_batch_builder_init(&b, buf, sizeof(buf), &plain), 0);
	cr_assert_eq(ox_batch_builder_add(&b, &r), 0);
	cr_assert_eq(ox_batch_builder_finish(&b, &len), 0);
	cr_assert_eq(len, sizeof(want));
	cr_assert_arr_eq(buf, want, sizeof(want));
}

// Compaction adds decoded records as they are: their headers are copied
// from headers_raw without being walked by the caller.
Test(batch, decoded_records_are_added_as_they_are)
{
	const struct ox_record_header hdrs[] = {
		{ (const uint8_t *)"a", 1, (const uint8_t *)"1", 1 },
		{ (const uint8_t *)"b", 1, NULL, -1 },
	};
	struct ox_record recs[] = { rec_kv("k", "v", 5), rec_kv(NULL, "w", 3),
				    rec_kv("z", NULL, 9) };
	uint8_t buf[512], again[512];
	struct ox_batch_builder b;
	struct ox_batch_iter it;
	struct ox_record r;
	size_t len, len2;
	int rc;

	recs[0].headers = hdrs;
	recs[0].header_count = 2;
	recs[2].headers = hdrs;
	recs[2].header_count = 1;
	cr_assert_eq(ox_batch_builder_init(&b, buf, sizeof(buf), &plain), 0);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(ox_batch_builder_add_at(&b, &recs[i], (uint32_t)i * 2), 0);
	cr_assert_eq(ox_batch_builder_finish(&b, &len), 0);

	cr_assert_eq(ox_batch_builder_init(&b, again, sizeof(again), &plain), 0);
	cr_assert_eq(ox_batch_iter_init(&it, buf, len), 0);
	while ((rc = ox_batch_iter_next(&it, &r)) == 1) {
		cr_assert_null(r.headers);
		cr_assert_eq(ox_batch_builder_add_at(&b, &r, (uint32_t)r.offset), 0);
	}
	cr_assert_eq(rc, 0);
	cr_assert_eq(ox_batch_builder_finish(&b, &len2), 0);
	cr_assert_eq(len2, len);
	cr_assert_arr_eq(again, buf, len);
}

Test(batch, raw_headers_must_be_well_formed)
{
	// Two headers: "a" -> "1", "b" -> null.
	static const uint8_t two[] = { 0x01, 'a', 0x02, '1', 0x01, 'b', 0x01 };
	struct ox_record r = rec_kv("k", "v", 1);
	uint8_t buf[256];
	struct ox_batch_builder b;
	size_t len;

	r.header_count = 2;
	r.headers_raw = two;
	r.headers_raw_len = sizeof(two);
	cr_assert_eq(ox_batch_builder_init(&b, buf, sizeof(buf), &plain), 0);
	r.header_count = 3; // more headers than the bytes hold
	cr_assert_eq(ox_batch_builder_add(&b, &r), -EINVAL);
	r.header_count = 1; // bytes left after the headers
	cr_assert_eq(ox_batch_builder_add(&b, &r), -EINVAL);
	r.header_count = 2;
	r.headers_raw_len = sizeof(two) - 1; // the last one cut short
	cr_assert_eq(ox_batch_builder_add(&b, &r), -EINVAL);
	r.headers_raw = NULL;
	cr_assert_eq(ox_batch_builder_add(&b, &r), -EINVAL);
	cr_assert_eq(ox_record_bytes_max(&r), SIZE_MAX);
	cr_assert_eq(ox_batch_builder_count(&b), 0);

	r.headers_raw = two;
	r.headers_raw_len = sizeof(two);
	cr_assert_eq(ox_batch_builder_add(&b, &r), 0);
	cr_assert_eq(ox_batch_builder_finish(&b, &len), 0);

	const struct ox_record_header hdrs[] = {
		{ (const uint8_t *)"a", 1, (const uint8_t *)"1", 1 },
		{ (const uint8_t *)"b", 1, NULL, -1 },
	};
	struct ox_record want = rec_kv("k", "v", 1);
	const int64_t offsets[] = { 0 };
	want.headers = hdrs;
	want.header_count = 2;
	check_batch(buf, len, &want, offsets, 1);
}
