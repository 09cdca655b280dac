// SPDX-License-Identifier: Apache-2.0
//
// Hand-written batch bytes for the decoder tests (see raw.h).
#include "raw.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/varint.h"

struct raw_header raw_header_default(uint32_t count)
{
	return (struct raw_header){
		.magic = OX_BATCH_MAGIC,
		.last_offset_delta = count > 0 ? count - 1 : 0,
		.record_count = count,
		.first_timestamp = 1000,
		.max_timestamp = 1000,
		.producer_id = OX_PRODUCER_NONE,
		.producer_epoch = -1,
		.base_sequence = OX_SEQUENCE_NONE,
	};
}

void raw_init(struct raw *r)
{
	r->len = 0;
}

void raw_batch_init(struct raw *b)
{
	memset(b->buf, 0, OX_BATCH_HEADER_BYTES);
	b->len = OX_BATCH_HEADER_BYTES;
}

void raw_bytes(struct raw *r, const void *p, size_t n)
{
	cr_assert_leq(r->len + n, sizeof(r->buf), "raw buffer overflow");
	memcpy(r->buf + r->len, p, n);
	r->len += n;
}

void raw_u8(struct raw *r, uint8_t v)
{
	raw_bytes(r, &v, 1);
}

void raw_uv(struct raw *r, uint64_t v)
{
	uint8_t tmp[OX_UVARINT_BYTES_MAX];

	raw_bytes(r, tmp, ox_uvarint_put(tmp, v));
}

void raw_sv(struct raw *r, int64_t v)
{
	raw_uv(r, ox_zigzag_encode(v));
}

void raw_record(struct raw *b, const struct raw *rec)
{
	raw_uv(b, rec->len);
	raw_bytes(b, rec->buf, rec->len);
}

void raw_simple_record(struct raw *b, int64_t ts_delta, uint64_t delta)
{
	struct raw rec;
	char key[32];
	int n = snprintf(key, sizeof(key), "k%llu", (unsigned long long)delta);

	raw_init(&rec);
	raw_u8(&rec, 0);
	raw_sv(&rec, ts_delta);
	raw_uv(&rec, delta);
	raw_sv(&rec, n);
	raw_bytes(&rec, key, (size_t)n);
	raw_sv(&rec, 1);
	raw_bytes(&rec, "v", 1);
	raw_uv(&rec, 0);
	raw_record(b, &rec);
}

void fix_checksum(uint8_t *buf, size_t length)
{
	ox_store_le64(buf, ox_batch_checksum(buf, length));
}

size_t raw_finish(struct raw *b, const struct raw_header *h)
{
	uint8_t *p = b->buf;
	uint32_t length = h->length ? h->length : (uint32_t)b->len;

	ox_store_le32(p + 8, length);
	p[12] = h->magic;
	p[13] = h->reserved13;
	ox_store_le16(p + 14, h->attributes);
	ox_store_le64(p + 16, (uint64_t)h->base_offset);
	ox_store_le64(p + 24, h->term);
	ox_store_le32(p + 32, h->last_offset_delta);
	ox_store_le32(p + 36, h->record_count);
	ox_store_le64(p + 40, (uint64_t)h->first_timestamp);
	ox_store_le64(p + 48, (uint64_t)h->max_timestamp);
	ox_store_le64(p + 56, (uint64_t)h->producer_id);
	ox_store_le16(p + 64, (uint16_t)h->producer_epoch);
	ox_store_le16(p + 66, h->reserved66);
	ox_store_le32(p + 68, (uint32_t)h->base_sequence);
	// Checksum what is there: a length field beyond the written bytes
	// must fail on the length, not on the checksum or a read overflow.
	fix_checksum(p, length <= b->len ? length : b->len);
	return b->len;
}

static void reencode_one(struct ox_batch_builder *bld, struct ox_record *rec,
			 struct ox_record_header *hdrs, int64_t base_offset)
{
	struct ox_record_header h;
	size_t pos = 0;
	uint32_t n = 0;
	int rc;

	while ((rc = ox_record_header_next(rec, &pos, &h)) == 1) {
		cr_assert_lt(n, OX_RECORD_HEADERS_MAX);
		hdrs[n++] = h;
	}
	cr_assert_eq(rc, 0);
	cr_assert_eq(n, rec->header_count);
	rec->headers = hdrs;
	rc = ox_batch_builder_add_at(bld, rec,
				     (uint32_t)(rec->offset - base_offset));
	cr_assert_eq(rc, 0, "re-adding a decoded record failed: %d", rc);
}

size_t reencode(const uint8_t *buf, size_t len, uint8_t *out, size_t cap)
{
	struct ox_record_header *hdrs = calloc(OX_RECORD_HEADERS_MAX, sizeof(*hdrs));
	struct ox_batch_builder bld;
	struct ox_batch_iter it;
	struct ox_record rec;
	size_t out_len = 0;
	int rc;

	cr_assert_not_null(hdrs);
	cr_assert_eq(ox_batch_iter_init(&it, buf, len), 0);
	struct ox_batch_params params = {
		.attributes = it.hdr.attributes,
		.base_offset = it.hdr.base_offset,
		.term = it.hdr.term,
		.producer_id = it.hdr.producer_id,
		.producer_epoch = it.hdr.producer_epoch,
		.base_sequence = it.hdr.base_sequence,
	};
	cr_assert_eq(ox_batch_builder_init(&bld, out, cap, &params), 0);
	while ((rc = ox_batch_iter_next(&it, &rec)) == 1)
		reencode_one(&bld, &rec, hdrs, it.hdr.base_offset);
	cr_assert_eq(rc, 0);
	ox_batch_builder_set_last_delta(&bld, it.hdr.last_offset_delta);
	cr_assert_eq(ox_batch_builder_finish(&bld, &out_len), 0);
	free(hdrs);
	return out_len;
}
