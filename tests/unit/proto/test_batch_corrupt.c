// SPDX-License-Identifier: Apache-2.0
//
// The decoders against bad bytes: flipped, truncated, hand-made batches that
// break one rule each of BATCH_FORMAT.md "Validation", concatenations with
// partial tails, and ox_batch_stamp.
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "proto/batch.h"
#include "proto/error.h"
#include "proto/varint.h"
#include "raw.h"

// A small batch with every kind of field: 3 records, headers, a null key,
// a tombstone, a gap in offsets.
static size_t sample_batch(uint8_t *buf, size_t cap)
{
	const struct ox_record_header hdrs[] = {
		{ (const uint8_t *)"h1", 2, (const uint8_t *)"x", 1 },
		{ (const uint8_t *)"h2", 2, NULL, -1 },
	};
	struct ox_record recs[] = {
		{ .key = (const uint8_t *)"key", .key_len = 3,
		  .value = (const uint8_t *)"value", .value_len = 5,
		  .timestamp = 1000, .headers = hdrs, .header_count = 2 },
		{ .key_len = -1, .value = (const uint8_t *)"v2", .value_len = 2,
		  .timestamp = 990 },
		{ .key = (const uint8_t *)"k3", .key_len = 2, .value_len = -1,
		  .timestamp = 1010 },
	};
	const struct ox_batch_params params = {
		.base_offset = 40, .term = 3, .producer_id = 9,
		.producer_epoch = 1, .base_sequence = 17,
	};
	struct ox_batch_builder b;
	size_t len;

	cr_assert_eq(ox_batch_builder_init(&b, buf, cap, &params), 0);
	cr_assert_eq(ox_batch_builder_add(&b, &recs[0]), 0);
	cr_assert_eq(ox_batch_builder_add_at(&b, &recs[1], 4), 0);
	cr_assert_eq(ox_batch_builder_add(&b, &recs[2]), 0);
	cr_assert_eq(ox_batch_builder_finish(&b, &len), 0);
	cr_assert_eq(ox_batch_verify(buf, len, NULL), 0);
	return len;
}

// Walks every record (and header) of buf with the iterator alone, as a
// reader of unverified bytes would; returns its final result.
static int iterate_all(const uint8_t *buf, size_t len)
{
	struct ox_batch_iter it;
	struct ox_record r;
	struct ox_record_header h;
	int rc = ox_batch_iter_init(&it, buf, len);

	if (rc < 0)
		return rc;
	while ((rc = ox_batch_iter_next(&it, &r)) == 1) {
		size_t pos = 0;
		int hrc;

		while ((hrc = ox_record_header_next(&r, &pos, &h)) == 1)
			;
		cr_assert_eq(hrc, 0, "the iterator checked the headers");
	}
	return rc;
}

Test(corrupt, bad_checksum)
{
	uint8_t buf[512];
	size_t len = sample_batch(buf, sizeof(buf));

	for (int bit = 0; bit < 64; bit++) {
		buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		cr_assert_eq(ox_batch_verify(buf, len, NULL), -OX_ECORRUPT);
		// Structure alone is fine: the iterator does not hash.
		cr_assert_eq(iterate_all(buf, len), 0);
		buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	cr_assert_eq(ox_batch_verify(buf, len, NULL), 0);
}

Test(corrupt, every_single_byte_flip_is_rejected)
{
	static const uint8_t masks[] = { 1, 2, 4, 8, 16, 32, 64, 128, 0xff, 0x55 };
	uint8_t orig[512], buf[512];
	size_t len = sample_batch(orig, sizeof(orig));

	for (size_t i = 0; i < len; i++) {
		for (size_t m = 0; m < sizeof(masks); m++) {
			memcpy(buf, orig, len);
			buf[i] ^= masks[m];
			int rc = ox_batch_verify(buf, len, NULL);

			cr_assert(rc == -OX_ECORRUPT || rc == -OX_ETRUNCATED,
				  "byte %zu mask %#x: %d", i, masks[m], rc);
			// A larger length field is the only way to "truncate".
			if (rc == -OX_ETRUNCATED)
				cr_assert(i >= 8 && i < 12, "byte %zu", i);
			// The iterator must survive the same bytes.
			(void)iterate_all(buf, len);
		}
	}
}

// Length to hash for a possibly edited batch, so that the fixed checksum
// stays inside the buffer.
static size_t hash_len(const uint8_t *buf, size_t len)
{
	uint32_t l = ox_load_le32(buf + 8);

	return l >= OX_BATCH_HEADER_BYTES && l <= len ? l : len;
}

Test(corrupt, flips_with_a_fixed_checksum_are_rejected_or_canonical)
{
	uint8_t orig[512], buf[512], again[512];
	size_t len = sample_batch(orig, sizeof(orig));
	unsigned accepted = 0, rejected = 0;

	for (size_t i = 8; i < len; i++) {
		for (unsigned bit = 0; bit < 8; bit++) {
			memcpy(buf, orig, len);
			buf[i] ^= (uint8_t)(1u << bit);
			fix_checksum(buf, hash_len(buf, len));
			if (ox_batch_verify(buf, len, NULL) != 0) {
				rejected++;
				continue;
			}
			// Accepted: then it must be what the builder would
			// write for the records it holds (invariant B3).
			accepted++;
			cr_assert_eq(reencode(buf, len, again, sizeof(again)), len);
			cr_assert_arr_eq(again, buf, len, "byte %zu bit %u", i, bit);
		}
	}
	cr_assert_gt(accepted, 0, "flips in keys and values stay valid");
	cr_assert_gt(rejected, 0);
	// The fixed bytes of the format are never accepted flipped.
	const size_t fixed[] = { 12, 13, 66, 67 };
	for (size_t f = 0; f < 4; f++) {
		memcpy(buf, orig, len);
		buf[fixed[f]] ^= 0x01;
		fix_checksum(buf, len);
		cr_assert_eq(ox_batch_verify(buf, len, NULL), -OX_ECORRUPT);
	}
}

Test(corrupt, every_truncation_is_rejected)
{
	uint8_t buf[512];
	size_t len = sample_batch(buf, sizeof(buf));

	for (size_t l = 0; l < len; l++) {
		struct ox_batch_header h;
		struct ox_batch_iter it;
		size_t pos = 0;

		cr_assert_eq(ox_batch_verify(buf, l, NULL), -OX_ETRUNCATED, "len %zu", l);
		cr_assert_eq(ox_batch_iter_init(&it, buf, l), -OX_ETRUNCATED);
		cr_assert_eq(ox_batch_next(buf, l, &pos, &h), l ? -OX_ETRUNCATED : 0);
		cr_assert_eq(pos, 0);
	}
	cr_assert_eq(ox_batch_verify(buf, len, NULL), 0);
}

Test(corrupt, bytes_after_the_batch_are_not_its_business)
{
	uint8_t buf[600];
	size_t len = sample_batch(buf, sizeof(buf));
	struct ox_batch_header h;

	memset(buf + len, 0xa5, sizeof(buf) - len);
	cr_assert_eq(ox_batch_verify(buf, sizeof(buf), &h), 0);
	cr_assert_eq(h.length, len);
}

static int header_rc(const uint8_t *buf, size_t len)
{
	struct ox_batch_header h;

	return ox_batch_header_decode(buf, len, &h);
}

Test(corrupt, length_field_out_of_bounds)
{
	const uint32_t bad[] = { 0, 1, OX_BATCH_HEADER_BYTES,
				 OX_BATCH_BYTES_MAX + 1, UINT32_MAX };
	uint8_t orig[512], buf[512];
	size_t len = sample_batch(orig, sizeof(orig));

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memcpy(buf, orig, len);
		ox_store_le32(buf + 8, bad[i]);
		fix_checksum(buf, len);
		cr_assert_eq(header_rc(buf, len), -OX_ECORRUPT, "length %u", bad[i]);
		cr_assert_eq(ox_batch_verify(buf, len, NULL), -OX_ECORRUPT);
		cr_assert_eq(iterate_all(buf, len), -OX_ECORRUPT);
	}
	// In bounds but more than the buffer holds: not all there.
	memcpy(buf, orig, len);
	ox_store_le32(buf + 8, (uint32_t)len + 100);
	cr_assert_eq(header_rc(buf, len), 0);
	cr_assert_eq(ox_batch_verify(buf, len, NULL), -OX_ETRUNCATED);
	cr_assert_eq(iterate_all(buf, len), -OX_ETRUNCATED);
}

Test(corrupt, length_with_trailing_bytes)
{
	struct raw b;
	struct raw_header h = raw_header_default(2);

	raw_batch_init(&b);
	raw_simple_record(&b, 0, 0);
	raw_simple_record(&b, 0, 1);
	size_t len = raw_finish(&b, &h);
	cr_assert_eq(ox_batch_verify(b.buf, len, NULL), 0, "baseline");

	raw_u8(&b, 0);
	raw_u8(&b, 0);
	len = raw_finish(&b, &h);
	cr_assert_eq(ox_batch_verify(b.buf, len, NULL), -OX_ECORRUPT);
	cr_assert_eq(iterate_all(b.buf, len), -OX_ECORRUPT);
}

// Builds a batch of simple records with the given offset deltas and returns
// verify's result.
static int verify_deltas(const uint64_t *deltas, uint32_t n, uint32_t last)
{
	struct raw b;
	struct raw_header h = raw_header_default(n);

	raw_batch_init(&b);
	for (uint32_t i = 0; i < n; i++)
		raw_simple_record(&b, 0, deltas[i]);
	h.last_offset_delta = last;
	size_t len = raw_finish(&b, &h);
	int rc = ox_batch_verify(b.buf, len, NULL);

	cr_assert_eq(iterate_all(b.buf, len), rc, "verify and iterator agree");
	return rc;
}

Test(corrupt, offset_deltas_must_strictly_increase)
{
	cr_assert_eq(verify_deltas((const uint64_t[]){ 0, 1 }, 2, 1), 0);
	cr_assert_eq(verify_deltas((const uint64_t[]){ 3, 9 }, 2, 12), 0);
	cr_assert_eq(verify_deltas((const uint64_t[]){ 0, 0 }, 2, 1), -OX_ECORRUPT);
	cr_assert_eq(verify_deltas((const uint64_t[]){ 1, 0 }, 2, 1), -OX_ECORRUPT);
	cr_assert_eq(verify_deltas((const uint64_t[]){ 0, 2, 1 }, 3, 2),
		     -OX_ECORRUPT);
	// Above last_offset_delta.
	cr_assert_eq(verify_deltas((const uint64_t[]){ 0, 2 }, 2, 1), -OX_ECORRUPT);
	cr_assert_eq(verify_deltas((const uint64_t[]){ 1ull << 32 }, 1, 0),
		     -OX_ECORRUPT);
}

Test(corrupt, record_count_must_match)
{
	struct raw b;
	struct raw_header h = raw_header_default(3);

	raw_batch_init(&b);
	raw_simple_record(&b, 0, 0);
	raw_simple_record(&b, 0, 1);
	h.last_offset_delta = 5;
	size_t len = raw_finish(&b, &h);
	cr_assert_eq(ox_batch_verify(b.buf, len, NULL), -OX_ECORRUPT, "too few");
	cr_assert_eq(iterate_all(b.buf, len), -OX_ECORRUPT);

	h.record_count = 1;
	len = raw_finish(&b, &h);
	cr_assert_eq(ox_batch_verify(b.buf, len, NULL), -OX_ECORRUPT, "too many");

	h.record_count = 2;
	len = raw_finish(&b, &h);
	cr_assert_eq(ox_batch_verify(b.buf, len, NULL), 0);
}

// Header rules: each edit alone must turn a good batch bad.
Test(corrupt, header_rules)
{
	struct raw b;
	struct raw_header good = raw_header_default(2);

	raw_batch_init(&b);
	raw_simple_record(&b, 0, 0);
	raw_simple_record(&b, 0, 1);
	size_t len = raw_finish(&b, &good);
	cr_assert_eq(ox_batch_verify(b.buf, len, NULL), 0);

	struct raw_header bad[16];
	size_t n = 0;
	for (size_t i = 0; i < 16; i++)
		bad[i] = good;
	bad[n++].magic = 0;
	bad[n++].magic = 2;
	bad[n++].reserved13 = 1;
	bad[n++].reserved66 = 0x100;
	bad[n++].attributes = 0x10;      // unknown bit
	bad[n++].attributes = 0x8000;
	bad[n++].attributes = 1;         // codec 1: reserved
	bad[n++].base_offset = -1;
	bad[n].base_offset = INT64_MAX;  // + last delta 1 overflows
	n++;
	bad[n++].record_count = 0;
	bad[n].last_offset_delta = 0;    // 2 records need a span of 2
	n++;
	bad[n++].record_count = OX_BATCH_RECORDS_MAX + 1;
	bad[n++].record_count = UINT32_MAX;
	bad[n].max_timestamp = 999;      // below first_timestamp
	n++;
	cr_assert_leq(n, 16);
	for (size_t i = 0; i < n; i++) {
		raw_finish(&b, &bad[i]);
		cr_assert_eq(header_rc(b.buf, len), -OX_ECORRUPT, "case %zu", i);
		cr_assert_eq(ox_batch_verify(b.buf, len, NULL), -OX_ECORRUPT);
		cr_assert_eq(iterate_all(b.buf, len), -OX_ECORRUPT);
	}
	// Control is the one attribute bit with a meaning.
	good.attributes = OX_BATCH_ATTR_CONTROL;
	raw_finish(&b, &good);
	cr_assert_eq(ox_batch_verify(b.buf, len, NULL), 0);
	good.base_offset = INT64_MAX - 1;
	raw_finish(&b, &good);
	cr_assert_eq(ox_batch_verify(b.buf, len, NULL), 0, "last offset INT64_MAX");
}

Test(corrupt, more_records_than_bytes_allow)
{
	struct raw b;
	struct raw_header h = raw_header_default(2);

	raw_batch_init(&b);
	raw_simple_record(&b, 0, 0);
	raw_simple_record(&b, 0, 1);
	size_t len = raw_finish(&b, &h);
	// count * 7 bytes must fit: claim as many records as would need
	// one byte more than there is.
	h.record_count = (uint32_t)((len - OX_BATCH_HEADER_BYTES) / 7 + 1);
	h.last_offset_delta = h.record_count;
	raw_finish(&b, &h);
	cr_assert_eq(header_rc(b.buf, len), -OX_ECORRUPT);
	cr_assert_eq(h.record_count, 3, "two 10-byte records: 20 / 7 + 1");
	h.record_count--;
	raw_finish(&b, &h);
	cr_assert_eq(header_rc(b.buf, len), 0, "the bound itself is allowed");
	cr_assert_eq(ox_batch_verify(b.buf, len, NULL), 0);
}

// One hand-written record in a one-record batch; returns verify's result.
static int verify_one(const struct raw *rec, const struct raw_header *hdr)
{
	struct raw b;
	struct raw_header h = hdr ? *hdr : raw_header_default(1);

	raw_batch_init(&b);
	raw_record(&b, rec);
	size_t len = raw_finish(&b, &h);
	int rc = ox_batch_verify(b.buf, len, NULL);

	cr_assert_eq(iterate_all(b.buf, len), rc, "verify and iterator agree");
	return rc;
}

// Writes the fields of a record after its length: attributes, deltas,
// key "k", value "v" (lengths given), header count.
static void rec_fields(struct raw *r, uint8_t attr, int64_t ts_delta,
		       int64_t key_len, int64_t value_len, uint64_t headers)
{
	raw_init(r);
	raw_u8(r, attr);
	raw_sv(r, ts_delta);
	raw_uv(r, 0);
	raw_sv(r, key_len);
	if (key_len > 0)
		raw_bytes(r, "kkkkkkkk", (size_t)key_len);
	raw_sv(r, value_len);
	if (value_len > 0)
		raw_bytes(r, "vvvvvvvv", (size_t)value_len);
	raw_uv(r, headers);
}

Test(corrupt, record_fields)
{
	struct raw r;

	rec_fields(&r, 0, 0, 1, 1, 0);
	cr_assert_eq(verify_one(&r, NULL), 0, "baseline");
	rec_fields(&r, 0, 0, -1, -1, 0);
	cr_assert_eq(verify_one(&r, NULL), 0, "null key and value");
	rec_fields(&r, 1, 0, 1, 1, 0);
	cr_assert_eq(verify_one(&r, NULL), -OX_ECORRUPT, "record attributes");
	rec_fields(&r, 0, 1, 1, 1, 0);
	cr_assert_eq(verify_one(&r, NULL), -OX_ECORRUPT, "first ts delta != 0");
	rec_fields(&r, 0, 0, -2, 1, 0);
	cr_assert_eq(verify_one(&r, NULL), -OX_ECORRUPT, "key length -2");
	rec_fields(&r, 0, 0, 1, -3, 0);
	cr_assert_eq(verify_one(&r, NULL), -OX_ECORRUPT, "value length -3");
	rec_fields(&r, 0, 0, 1, 1, 1);
	cr_assert_eq(verify_one(&r, NULL), -OX_ECORRUPT, "a header is missing");
	rec_fields(&r, 0, 0, 1, 1, OX_RECORD_HEADERS_MAX + 1);
	cr_assert_eq(verify_one(&r, NULL), -OX_ECORRUPT, "too many headers");

	// A key length past the record's end.
	raw_init(&r);
	raw_u8(&r, 0), raw_sv(&r, 0), raw_uv(&r, 0), raw_sv(&r, 5);
	raw_bytes(&r, "kk", 2);
	cr_assert_eq(verify_one(&r, NULL), -OX_ECORRUPT, "key past the end");
	// A value length reaching exactly to the end leaves no header count.
	raw_init(&r);
	raw_u8(&r, 0), raw_sv(&r, 0), raw_uv(&r, 0), raw_sv(&r, -1), raw_sv(&r, 2);
	raw_bytes(&r, "vv", 2);
	cr_assert_eq(verify_one(&r, NULL), -OX_ECORRUPT, "no header count");
	// Fields shorter than the record's length.
	rec_fields(&r, 0, 0, 1, 1, 0);
	raw_u8(&r, 0);
	cr_assert_eq(verify_one(&r, NULL), -OX_ECORRUPT, "bytes left in record");
}

Test(corrupt, record_headers)
{
	struct raw r;

	// One header, key "a", value given by the bytes after.
	const struct {
		uint8_t bytes[4];
		size_t n;
		int want;
	} cases[] = {
		{ { 0x01, 'a', 0x01 }, 3, 0 },               // value null
		{ { 0x01, 'a', 0x02, 'b' }, 4, 0 },          // value "b"
		{ { 0x00, 0x00 }, 2, 0 },                    // empty key, empty value
		{ { 0x01, 'a', 0x03 }, 3, -OX_ECORRUPT },    // value length -2
		{ { 0x01, 'a', 0x04, 'b' }, 4, -OX_ECORRUPT }, // value past end
		{ { 0x05, 'a' }, 2, -OX_ECORRUPT },          // key past end
		{ { 0x01, 'a' }, 2, -OX_ECORRUPT },          // no value length
		{ { 0x80, 0x00, 0x00 }, 3, -OX_ECORRUPT },   // overlong key length
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		rec_fields(&r, 0, 0, 1, 1, 1);
		raw_bytes(&r, cases[i].bytes, cases[i].n);
		cr_assert_eq(verify_one(&r, NULL), cases[i].want, "case %zu", i);
	}
}

Test(corrupt, overlong_varints_in_records)
{
	struct raw b, r;
	struct raw_header h = raw_header_default(1);

	// Record length 0x0a written in two bytes.
	rec_fields(&r, 0, 0, 1, 1, 0);
	cr_assert_eq(verify_one(&r, NULL), 0);
	raw_batch_init(&b);
	raw_u8(&b, (uint8_t)(r.len | 0x80));
	raw_u8(&b, 0);
	raw_bytes(&b, r.buf, r.len);
	size_t len = raw_finish(&b, &h);
	cr_assert_eq(ox_batch_verify(b.buf, len, NULL), -OX_ECORRUPT, "length");

	// Offset delta 0 in two bytes.
	raw_init(&r);
	raw_u8(&r, 0), raw_sv(&r, 0), raw_u8(&r, 0x80), raw_u8(&r, 0x00);
	raw_sv(&r, -1), raw_sv(&r, -1), raw_uv(&r, 0);
	cr_assert_eq(verify_one(&r, NULL), -OX_ECORRUPT, "offset delta");
	// Timestamp delta 0 in three bytes.
	raw_init(&r);
	raw_u8(&r, 0), raw_u8(&r, 0x80), raw_u8(&r, 0x80), raw_u8(&r, 0x00);
	raw_uv(&r, 0), raw_sv(&r, -1), raw_sv(&r, -1), raw_uv(&r, 0);
	cr_assert_eq(verify_one(&r, NULL), -OX_ECORRUPT, "timestamp delta");
	// An 11-byte varint as the key length.
	raw_init(&r);
	raw_u8(&r, 0), raw_sv(&r, 0), raw_uv(&r, 0);
	for (int i = 0; i < 10; i++)
		raw_u8(&r, 0xff);
	raw_u8(&r, 0x01);
	raw_sv(&r, -1), raw_uv(&r, 0);
	cr_assert_eq(verify_one(&r, NULL), -OX_ECORRUPT, "key length");
}

Test(corrupt, record_length_past_the_batch)
{
	struct raw b, r;
	struct raw_header h = raw_header_default(1);

	rec_fields(&r, 0, 0, 1, 1, 0);
	raw_batch_init(&b);
	raw_uv(&b, r.len + 1);
	raw_bytes(&b, r.buf, r.len);
	size_t len = raw_finish(&b, &h);
	cr_assert_eq(ox_batch_verify(b.buf, len, NULL), -OX_ECORRUPT);
	cr_assert_eq(iterate_all(b.buf, len), -OX_ECORRUPT);

	raw_batch_init(&b);
	raw_uv(&b, UINT64_MAX);
	raw_bytes(&b, r.buf, r.len);
	len = raw_finish(&b, &h);
	cr_assert_eq(ox_batch_verify(b.buf, len, NULL), -OX_ECORRUPT);
}

Test(corrupt, timestamps)
{
	struct raw b;
	struct raw_header h = raw_header_default(2);

	// The second record is later than max_timestamp says.
	raw_batch_init(&b);
	raw_simple_record(&b, 0, 0);
	raw_simple_record(&b, 5, 1);
	h.max_timestamp = 1004;
	size_t len = raw_finish(&b, &h);
	cr_assert_eq(ox_batch_verify(b.buf, len, NULL), -OX_ECORRUPT);
	cr_assert_eq(iterate_all(b.buf, len), -OX_ECORRUPT);
	h.max_timestamp = 1005;
	raw_finish(&b, &h);
	cr_assert_eq(ox_batch_verify(b.buf, len, NULL), 0);
	// max_timestamp above every record: verify catches what the
	// iterator cannot know until the end.
	h.max_timestamp = 1006;
	raw_finish(&b, &h);
	cr_assert_eq(ox_batch_verify(b.buf, len, NULL), -OX_ECORRUPT);
	cr_assert_eq(iterate_all(b.buf, len), 0);

	// first + delta overflows int64.
	raw_batch_init(&b);
	raw_simple_record(&b, 0, 0);
	raw_simple_record(&b, 5, 1);
	h.first_timestamp = INT64_MAX - 1;
	h.max_timestamp = INT64_MAX;
	len = raw_finish(&b, &h);
	cr_assert_eq(ox_batch_verify(b.buf, len, NULL), -OX_ECORRUPT);
	raw_batch_init(&b);
	raw_simple_record(&b, 0, 0);
	raw_simple_record(&b, -5, 1);
	h.first_timestamp = INT64_MIN + 1;
	len = raw_finish(&b, &h);
	cr_assert_eq(ox_batch_verify(b.buf, len, NULL), -OX_ECORRUPT);
}

Test(corrupt, iterator_keeps_failing_after_an_error)
{
	struct raw b;
	struct raw_header h = raw_header_default(2);
	struct ox_batch_iter it;
	struct ox_record r;

	raw_batch_init(&b);
	raw_simple_record(&b, 0, 1);
	raw_simple_record(&b, 0, 1);
	size_t len = raw_finish(&b, &h);
	cr_assert_eq(ox_batch_iter_init(&it, b.buf, len), 0);
	cr_assert_eq(ox_batch_iter_next(&it, &r), 1);
	cr_assert_eq(r.offset, 1);
	cr_assert_eq(r.key_len, 2);
	cr_assert_arr_eq(r.key, "k1", 2);
	cr_assert_eq(ox_batch_iter_next(&it, &r), -OX_ECORRUPT);
	cr_assert_eq(ox_batch_iter_next(&it, &r), -OX_ECORRUPT);
}

Test(corrupt, header_walk_is_bounded_on_its_own)
{
	static const uint8_t junk[] = { 0x01, 'a', 0x02, 'b', 0x05, 'c' };
	struct ox_record r = { .headers_raw = junk, .headers_raw_len = sizeof(junk) };
	struct ox_record_header h;
	size_t pos = 0;

	cr_assert_eq(ox_record_header_next(&r, &pos, &h), 1);
	cr_assert_eq(h.key_len, 1);
	cr_assert_eq(h.key[0], 'a');
	cr_assert_eq(h.value_len, 1);
	cr_assert_eq(h.value[0], 'b');
	cr_assert_eq(pos, 4);
	cr_assert_eq(ox_record_header_next(&r, &pos, &h), -OX_ECORRUPT);
	cr_assert_eq(pos, 4, "no progress on error");

	// A value one byte longer than what is left.
	static const uint8_t short_value[] = { 0x01, 'a', 0x04, 'b' };
	struct ox_record r2 = { .headers_raw = short_value,
				.headers_raw_len = sizeof(short_value) };
	pos = 0;
	cr_assert_eq(ox_record_header_next(&r2, &pos, &h), -OX_ECORRUPT);
	r2.headers_raw_len = 3; // a value length with no value after it
	cr_assert_eq(ox_record_header_next(&r2, &pos, &h), -OX_ECORRUPT);
	r2.headers_raw_len = 1; // a key length with no key after it
	cr_assert_eq(ox_record_header_next(&r2, &pos, &h), -OX_ECORRUPT);

	struct ox_record none = { 0 };
	pos = 0;
	cr_assert_eq(ox_record_header_next(&none, &pos, &h), 0);
}

Test(corrupt, next_walks_concatenated_batches)
{
	uint8_t buf[2048];
	size_t one = sample_batch(buf, sizeof(buf));
	size_t total = 3 * one;
	struct ox_batch_header h;
	size_t pos = 0;

	memcpy(buf + one, buf, one);
	memcpy(buf + 2 * one, buf, one);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(ox_batch_next(buf, total, &pos, &h), 1);
		cr_assert_eq(pos, (size_t)(i + 1) * one);
		cr_assert_eq(h.length, one);
		cr_assert_eq(h.record_count, 3);
		cr_assert_eq(h.base_offset, 40);
	}
	cr_assert_eq(ox_batch_next(buf, total, &pos, &h), 0);
	cr_assert_eq(pos, total);

	// Every cut inside the third batch: two batches, then a partial tail
	// that leaves pos at its start.
	for (size_t cut = 2 * one + 1; cut < total; cut++) {
		pos = 0;
		cr_assert_eq(ox_batch_next(buf, cut, &pos, &h), 1);
		cr_assert_eq(ox_batch_next(buf, cut, &pos, &h), 1);
		cr_assert_eq(ox_batch_next(buf, cut, &pos, &h), -OX_ETRUNCATED);
		cr_assert_eq(pos, 2 * one);
	}

	// A garbage tail is corruption, not truncation.
	memset(buf + one, 0xff, OX_BATCH_HEADER_BYTES);
	pos = 0;
	cr_assert_eq(ox_batch_next(buf, one + OX_BATCH_HEADER_BYTES, &pos, &h), 1);
	cr_assert_eq(ox_batch_next(buf, one + OX_BATCH_HEADER_BYTES, &pos, &h),
		     -OX_ECORRUPT);
	cr_assert_eq(pos, one);
}

Test(corrupt, next_does_not_check_the_checksum)
{
	uint8_t buf[512];
	size_t len = sample_batch(buf, sizeof(buf));
	struct ox_batch_header h;
	size_t pos = 0;

	buf[0] ^= 1;
	cr_assert_eq(ox_batch_next(buf, len, &pos, &h), 1);
	cr_assert_eq(ox_batch_verify(buf, len, NULL), -OX_ECORRUPT);
}

Test(stamp, rewrites_offset_and_term_and_checksum)
{
	uint8_t orig[512], buf[512];
	size_t len = sample_batch(orig, sizeof(orig));
	struct ox_batch_header h;
	struct ox_batch_iter it;
	struct ox_record r;

	memcpy(buf, orig, len);
	ox_batch_stamp(buf, 5000, 77);
	cr_assert_eq(ox_batch_verify(buf, len, &h), 0);
	cr_assert_eq(h.base_offset, 5000);
	cr_assert_eq(h.term, 77);
	cr_assert_neq(h.checksum, ox_load_le64(orig));
	// Only checksum, base offset and term changed.
	cr_assert_arr_eq(buf + 8, orig + 8, 8);
	cr_assert_arr_eq(buf + 32, orig + 32, len - 32);
	cr_assert_eq(ox_batch_iter_init(&it, buf, len), 0);
	const int64_t want[] = { 5000, 5004, 5005 };
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(ox_batch_iter_next(&it, &r), 1);
		cr_assert_eq(r.offset, want[i]);
	}
	// Stamping back restores the original bytes exactly.
	ox_batch_stamp(buf, 40, 3);
	cr_assert_arr_eq(buf, orig, len);
}

Test(stamp, producer_fields_and_checksum)
{
	uint8_t orig[512], buf[512];
	size_t len = sample_batch(orig, sizeof(orig));
	struct ox_batch_header h;

	memcpy(buf, orig, len);
	ox_batch_stamp_producer(buf, 123456789, 3, 1000);
	cr_assert_eq(ox_batch_verify(buf, len, &h), 0);
	cr_assert_eq(h.producer_id, 123456789);
	cr_assert_eq(h.producer_epoch, 3);
	cr_assert_eq(h.base_sequence, 1000);
	// Only checksum and the producer fields (56..71) changed.
	cr_assert_arr_eq(buf + 8, orig + 8, 48);
	cr_assert_arr_eq(buf + 72, orig + 72, len - 72);
}

Test(stamp, largest_base_offset)
{
	uint8_t buf[512];
	size_t len = sample_batch(buf, sizeof(buf));
	struct ox_batch_header h;

	ox_batch_stamp(buf, INT64_MAX - 5, 1); // last delta is 5
	cr_assert_eq(ox_batch_verify(buf, len, &h), 0);
	cr_assert_eq(h.base_offset + h.last_offset_delta, INT64_MAX);
}

Test(stamp, overflowing_offset_is_a_programmer_error, .signal = SIGABRT)
{
	uint8_t buf[512];

	sample_batch(buf, sizeof(buf));
	ox_batch_stamp(buf, INT64_MAX - 4, 1);
}
