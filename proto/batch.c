// SPDX-License-Identifier: Apache-2.0
//
// The batch codec: the builder that producers (and compaction) use to write
// batches, and the decoders that the broker runs on every append and that
// readers run on every fetched batch. The byte layout is specified in
// proto/BATCH_FORMAT.md; the offsets below mirror its header table.
//
// It does no I/O and no allocation; it neither knows about segments nor
// about the network. Callers own every buffer; decoded records borrow
// pointers into the batch they came from.
//
// Design notes
//
// Invariants (tests and assertions cite them by number):
//  B1. A builder has HEADER <= len <= cap <= OX_BATCH_BYTES_MAX, and
//      buf[HEADER, len) holds exactly `count` complete records. A failed add
//      changes nothing, so a builder is always finishable.
//  B2. Offset deltas strictly increase across the records of a batch, and
//      last_offset_delta is >= every one of them.
//  B3. The encoding is canonical: varints have no overlong forms, the first
//      record's timestamp is first_timestamp, max_timestamp is the largest
//      record timestamp and reserved bytes are 0. Hence verify accepts a
//      batch only if the builder, fed its decoded records, writes the very
//      same bytes (the fuzz harness checks exactly that).
//  B4. Decoders read only inside [buf, buf + len) whatever the bytes say:
//      every length is compared with the bytes that remain before it is
//      used, in arithmetic that cannot overflow.
//  B5. ox_batch_verify checks the checksum first, then walks the records in
//      one pass with the same iterator readers use, so what verify accepts
//      the iterator decodes without error.
#include "proto/batch.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <xxhash.h>

#include "proto/assert.h"
#include "proto/error.h"
#include "proto/varint.h"

// Byte offsets of the header fields (BATCH_FORMAT.md, "Header").
enum {
	OFF_CHECKSUM = 0,
	OFF_LENGTH = 8,
	OFF_MAGIC = 12,
	OFF_RESERVED_13 = 13,
	OFF_ATTRIBUTES = 14,
	OFF_BASE_OFFSET = 16,
	OFF_TERM = 24,
	OFF_LAST_DELTA = 32,
	OFF_RECORD_COUNT = 36,
	OFF_FIRST_TS = 40,
	OFF_MAX_TS = 48,
	OFF_PRODUCER_ID = 56,
	OFF_PRODUCER_EPOCH = 64,
	OFF_RESERVED_66 = 66,
	OFF_BASE_SEQUENCE = 68,
};

_Static_assert(OFF_BASE_SEQUENCE + 4 == OX_BATCH_HEADER_BYTES,
	       "header fields must fill the header exactly");

#define HEADER OX_BATCH_HEADER_BYTES

// The smallest record: length, attributes, timestamp delta, offset delta,
// key length, value length and header count, one byte each.
#define RECORD_BYTES_MIN 7u

// Keys, values and header fields are at most INT32_MAX bytes so that their
// lengths fit the int32_t fields of struct ox_record.
#define FIELD_BYTES_MAX INT32_MAX

// The checksum covers everything after itself.
#define CHECKSUM_FROM (OFF_CHECKSUM + 8)

// Two's-complement reinterpretation, without the implementation-defined
// conversion of an out-of-range unsigned value to a signed type.
static int64_t as_i64(uint64_t u)
{
	int64_t v;

	memcpy(&v, &u, sizeof(v));
	return v;
}

static int32_t as_i32(uint32_t u)
{
	int32_t v;

	memcpy(&v, &u, sizeof(v));
	return v;
}

static int16_t as_i16(uint16_t u)
{
	int16_t v;

	memcpy(&v, &u, sizeof(v));
	return v;
}

uint64_t ox_batch_checksum(const void *buf, size_t length)
{
	OX_ASSERT(buf != NULL);
	OX_ASSERT(length >= HEADER);
	return XXH3_64bits((const uint8_t *)buf + CHECKSUM_FROM,
			   length - CHECKSUM_FROM);
}

// --- Field decoders (records and raw headers) --------------------------

// Reads a zigzag length and that many bytes; -1 reads as NULL (B4).
static int get_bytes(const uint8_t **pos, const uint8_t *end,
		     const uint8_t **data, int32_t *len)
{
	int64_t n;

	if (ox_svarint_get(pos, end, &n) < 0 || n < -1 || n > end - *pos)
		return -OX_ECORRUPT;
	// n <= end - *pos <= OX_BATCH_BYTES_MAX: it fits in int32_t.
	*len = (int32_t)n;
	*data = n < 0 ? NULL : *pos;
	*pos += n < 0 ? 0 : n;
	return 0;
}

static int get_record_header(const uint8_t **pos, const uint8_t *end,
			     struct ox_record_header *out)
{
	uint64_t key_len;

	if (ox_uvarint_get(pos, end, &key_len) < 0 ||
	    key_len > (uint64_t)(end - *pos))
		return -OX_ECORRUPT;
	out->key = *pos;
	out->key_len = (uint32_t)key_len;
	*pos += key_len;
	return get_bytes(pos, end, &out->value, &out->value_len);
}

// --- Builder ---------------------------------------------------------

int ox_batch_builder_init(struct ox_batch_builder *b, void *buf, size_t cap,
			  const struct ox_batch_params *params)
{
	OX_ASSERT(b != NULL);
	OX_ASSERT(params != NULL);
	OX_ASSERT(buf != NULL || cap == 0);
	if (cap < HEADER)
		return -EINVAL;
	// The builder writes uncompressed records, so a codec is as wrong
	// as an unknown bit: verify would reject the result.
	if ((params->attributes & ~OX_BATCH_ATTR_CONTROL) != 0)
		return -EINVAL;
	if (params->base_offset < 0)
		return -EINVAL;
	*b = (struct ox_batch_builder){
		.buf = buf,
		.cap = cap < OX_BATCH_BYTES_MAX ? cap : OX_BATCH_BYTES_MAX,
		.len = HEADER,
		.params = *params,
	};
	return 0;
}

uint32_t ox_batch_builder_count(const struct ox_batch_builder *b)
{
	OX_ASSERT(b != NULL);
	return b->count;
}

static bool bytes_ok(const uint8_t *p, int64_t len)
{
	return len >= -1 && len <= FIELD_BYTES_MAX && (len <= 0 || p != NULL);
}

// The encoded headers of a decoded record, to be copied as they are: they
// must be header_count well-formed headers and nothing else.
static int raw_headers_check(const struct ox_record *r, uint64_t *headers_bytes)
{
	const uint8_t *p = r->headers_raw;
	struct ox_record_header h;

	if (p == NULL)
		return -EINVAL;
	const uint8_t *end = p + r->headers_raw_len;
	for (uint32_t i = 0; i < r->header_count; i++) {
		if (get_record_header(&p, end, &h) < 0)
			return -EINVAL;
	}
	if (p != end)
		return -EINVAL;
	*headers_bytes = r->headers_raw_len;
	return 0;
}

// Checks everything about `r` but its size against the batch, and sets
// *headers_bytes to the exact encoded size of its headers.
static int record_check(const struct ox_record *r, uint64_t *headers_bytes)
{
	uint64_t n = 0;

	if (!bytes_ok(r->key, r->key_len) || !bytes_ok(r->value, r->value_len))
		return -EINVAL;
	if (r->header_count > OX_RECORD_HEADERS_MAX)
		return -EINVAL;
	if (r->header_count > 0 && r->headers == NULL)
		return raw_headers_check(r, headers_bytes);
	for (uint32_t i = 0; i < r->header_count; i++) {
		const struct ox_record_header *h = &r->headers[i];

		// A header key is never null: key_len has no -1.
		if (!bytes_ok(h->key, h->key_len) || !bytes_ok(h->value, h->value_len))
			return -EINVAL;
		n += (uint64_t)ox_uvarint_len(h->key_len) + h->key_len +
		     ox_svarint_len(h->value_len) +
		     (h->value_len > 0 ? (uint64_t)h->value_len : 0);
	}
	*headers_bytes = n;
	return 0;
}

// Bytes of a record after its length varint. At most about 2^42 for the
// largest valid record (1024 headers of two 2 GiB fields): no overflow.
static uint64_t record_body_bytes(const struct ox_record *r, int64_t ts_delta,
				  uint32_t delta, uint64_t headers_bytes)
{
	return 1 + (uint64_t)ox_svarint_len(ts_delta) + ox_uvarint_len(delta) +
	       ox_svarint_len(r->key_len) +
	       (r->key_len > 0 ? (uint64_t)r->key_len : 0) +
	       ox_svarint_len(r->value_len) +
	       (r->value_len > 0 ? (uint64_t)r->value_len : 0) +
	       ox_uvarint_len(r->header_count) + headers_bytes;
}

static uint8_t *put_bytes(uint8_t *p, const uint8_t *src, int32_t len)
{
	p += ox_svarint_put(p, len);
	// memcpy from NULL is undefined even for 0 bytes.
	if (len > 0) {
		memcpy(p, src, (size_t)len);
		p += len;
	}
	return p;
}

static uint8_t *put_record(uint8_t *p, const struct ox_record *r,
			   uint64_t body, int64_t ts_delta, uint32_t delta)
{
	p += ox_uvarint_put(p, body);
	*p++ = 0; // record attributes: none defined
	p += ox_svarint_put(p, ts_delta);
	p += ox_uvarint_put(p, delta);
	p = put_bytes(p, r->key, r->key_len);
	p = put_bytes(p, r->value, r->value_len);
	p += ox_uvarint_put(p, r->header_count);
	if (r->header_count > 0 && r->headers == NULL) {
		// A decoded record's headers, checked by raw_headers_check().
		memcpy(p, r->headers_raw, r->headers_raw_len);
		return p + r->headers_raw_len;
	}
	for (uint32_t i = 0; i < r->header_count; i++) {
		const struct ox_record_header *h = &r->headers[i];

		p += ox_uvarint_put(p, h->key_len);
		if (h->key_len > 0) {
			memcpy(p, h->key, h->key_len);
			p += h->key_len;
		}
		p = put_bytes(p, h->value, h->value_len);
	}
	return p;
}

// Adds `r` at `delta`, which the caller has checked is above every delta
// added before (B2). On error the builder is unchanged (B1).
static int add_record(struct ox_batch_builder *b, const struct ox_record *r,
		      uint32_t delta)
{
	uint64_t headers_bytes, body, total;
	int64_t first_ts = b->count > 0 ? b->first_ts : r->timestamp;
	int64_t ts_delta;
	int rc = record_check(r, &headers_bytes);

	if (rc < 0)
		return rc;
	// base_offset >= 0 (checked at init), so the subtraction is safe.
	if ((int64_t)delta > INT64_MAX - b->params.base_offset)
		return -EINVAL;
	if (__builtin_sub_overflow(r->timestamp, first_ts, &ts_delta))
		return -EINVAL;
	if (b->count >= OX_BATCH_RECORDS_MAX)
		return -ENOSPC;
	body = record_body_bytes(r, ts_delta, delta, headers_bytes);
	total = ox_uvarint_len(body) + body;
	if (total > b->cap - b->len)
		return -ENOSPC;

	uint8_t *end = put_record(b->buf + b->len, r, body, ts_delta, delta);
	OX_ASSERT(end == b->buf + b->len + total); // the size was exact
	b->len += total;
	if (b->count == 0 || r->timestamp > b->max_ts)
		b->max_ts = r->timestamp;
	b->first_ts = first_ts;
	b->last_delta = delta;
	b->count++;
	return 0;
}

int ox_batch_builder_add(struct ox_batch_builder *b, const struct ox_record *r)
{
	OX_ASSERT(b != NULL && r != NULL);
	OX_ASSERT(b->len >= HEADER && b->len <= b->cap); // B1
	if (b->count == 0)
		return add_record(b, r, 0);
	// No delta left above last_delta: the caller starts a new batch.
	if (b->last_delta == UINT32_MAX)
		return -ENOSPC;
	return add_record(b, r, b->last_delta + 1);
}

int ox_batch_builder_add_at(struct ox_batch_builder *b,
			    const struct ox_record *r, uint32_t offset_delta)
{
	OX_ASSERT(b != NULL && r != NULL);
	OX_ASSERT(b->len >= HEADER && b->len <= b->cap); // B1
	if (b->count > 0 && offset_delta <= b->last_delta)
		return -EINVAL; // B2
	return add_record(b, r, offset_delta);
}

void ox_batch_builder_set_last_delta(struct ox_batch_builder *b,
				     uint32_t delta)
{
	OX_ASSERT(b != NULL);
	OX_ASSERT(b->count > 0);
	OX_ASSERT(delta >= b->last_delta); // B2
	OX_ASSERT((int64_t)delta <= INT64_MAX - b->params.base_offset);
	b->last_delta = delta;
}

static void put_header(uint8_t *p, const struct ox_batch_builder *b)
{
	const struct ox_batch_params *pa = &b->params;

	ox_store_le32(p + OFF_LENGTH, (uint32_t)b->len);
	p[OFF_MAGIC] = OX_BATCH_MAGIC;
	p[OFF_RESERVED_13] = 0;
	ox_store_le16(p + OFF_ATTRIBUTES, pa->attributes);
	ox_store_le64(p + OFF_BASE_OFFSET, (uint64_t)pa->base_offset);
	ox_store_le64(p + OFF_TERM, pa->term);
	ox_store_le32(p + OFF_LAST_DELTA, b->last_delta);
	ox_store_le32(p + OFF_RECORD_COUNT, b->count);
	ox_store_le64(p + OFF_FIRST_TS, (uint64_t)b->first_ts);
	ox_store_le64(p + OFF_MAX_TS, (uint64_t)b->max_ts);
	ox_store_le64(p + OFF_PRODUCER_ID, (uint64_t)pa->producer_id);
	ox_store_le16(p + OFF_PRODUCER_EPOCH, (uint16_t)pa->producer_epoch);
	ox_store_le16(p + OFF_RESERVED_66, 0);
	ox_store_le32(p + OFF_BASE_SEQUENCE, (uint32_t)pa->base_sequence);
}

int ox_batch_builder_finish(struct ox_batch_builder *b, size_t *len_out)
{
	OX_ASSERT(b != NULL && len_out != NULL);
	OX_ASSERT(b->len >= HEADER && b->len <= b->cap); // B1
	if (b->count == 0)
		return -EINVAL;
	OX_ASSERT(b->len >= HEADER + (size_t)b->count * RECORD_BYTES_MIN);
	put_header(b->buf, b);
	ox_store_le64(b->buf + OFF_CHECKSUM, ox_batch_checksum(b->buf, b->len));
#if OX_EXPENSIVE_CHECKS
	// B3: what the builder writes, verify accepts.
	OX_ASSERT(ox_batch_verify(b->buf, b->len, NULL) == 0);
#endif
	*len_out = b->len;
	return 0;
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

size_t ox_record_bytes_max(const struct ox_record *r)
{
	// Widest varints: record length and timestamp delta 10 bytes,
	// offset delta, key and value lengths and header count 5.
	const uint64_t fixed = 10 + 1 + 10 + 5 + 5 + 5 + 5;
	uint64_t headers_bytes, n;

	OX_ASSERT(r != NULL);
	// An invalid record fits nowhere; the builder will say why.
	if (record_check(r, &headers_bytes) < 0)
		return SIZE_MAX;
	n = add_sat(fixed, headers_bytes);
	n = add_sat(n, r->key_len > 0 ? (uint64_t)r->key_len : 0);
	n = add_sat(n, r->value_len > 0 ? (uint64_t)r->value_len : 0);
	return n > SIZE_MAX ? SIZE_MAX : (size_t)n;
}

// --- Header ----------------------------------------------------------

static void get_header(const uint8_t *p, struct ox_batch_header *h)
{
	h->checksum = ox_load_le64(p + OFF_CHECKSUM);
	h->length = ox_load_le32(p + OFF_LENGTH);
	h->attributes = ox_load_le16(p + OFF_ATTRIBUTES);
	h->base_offset = as_i64(ox_load_le64(p + OFF_BASE_OFFSET));
	h->term = ox_load_le64(p + OFF_TERM);
	h->last_offset_delta = ox_load_le32(p + OFF_LAST_DELTA);
	h->record_count = ox_load_le32(p + OFF_RECORD_COUNT);
	h->first_timestamp = as_i64(ox_load_le64(p + OFF_FIRST_TS));
	h->max_timestamp = as_i64(ox_load_le64(p + OFF_MAX_TS));
	h->producer_id = as_i64(ox_load_le64(p + OFF_PRODUCER_ID));
	h->producer_epoch = as_i16(ox_load_le16(p + OFF_PRODUCER_EPOCH));
	h->base_sequence = as_i32(ox_load_le32(p + OFF_BASE_SEQUENCE));
}

// The header rules of BATCH_FORMAT.md, "Validation", in that order.
static bool header_ok(const uint8_t *p, const struct ox_batch_header *h)
{
	uint64_t count = h->record_count;

	if (h->length <= HEADER || h->length > OX_BATCH_BYTES_MAX)
		return false;
	if (p[OFF_MAGIC] != OX_BATCH_MAGIC || p[OFF_RESERVED_13] != 0 ||
	    ox_load_le16(p + OFF_RESERVED_66) != 0)
		return false;
	// Codecs 1..7 are reserved: nothing can decode them yet.
	if ((h->attributes & ~OX_BATCH_ATTR_CONTROL) != 0)
		return false;
	if (h->base_offset < 0 ||
	    (int64_t)h->last_offset_delta > INT64_MAX - h->base_offset)
		return false;
	if (count == 0 || count > OX_BATCH_RECORDS_MAX ||
	    count > (uint64_t)h->last_offset_delta + 1 ||
	    count * RECORD_BYTES_MIN > h->length - HEADER)
		return false;
	return h->max_timestamp >= h->first_timestamp;
}

int ox_batch_header_decode(const void *buf, size_t len,
			   struct ox_batch_header *out)
{
	OX_ASSERT(buf != NULL || len == 0);
	OX_ASSERT(out != NULL);
	if (len < HEADER)
		return -OX_ETRUNCATED;
	get_header(buf, out);
	return header_ok(buf, out) ? 0 : -OX_ECORRUPT;
}

void ox_batch_stamp(void *buf, int64_t base_offset, uint64_t term)
{
	uint8_t *p = buf;

	OX_ASSERT(p != NULL);
	OX_ASSERT(base_offset >= 0);
	uint32_t length = ox_load_le32(p + OFF_LENGTH);
	uint32_t last_delta = ox_load_le32(p + OFF_LAST_DELTA);
	// The caller verified the batch: these hold unless it did not.
	OX_ASSERT(length > HEADER && length <= OX_BATCH_BYTES_MAX);
	OX_ASSERT((int64_t)last_delta <= INT64_MAX - base_offset);
#if OX_EXPENSIVE_CHECKS
	// A second hash of every appended batch: too slow to keep on.
	OX_ASSERT(ox_batch_checksum(p, length) == ox_load_le64(p + OFF_CHECKSUM));
#endif
	ox_store_le64(p + OFF_BASE_OFFSET, (uint64_t)base_offset);
	ox_store_le64(p + OFF_TERM, term);
	ox_store_le64(p + OFF_CHECKSUM, ox_batch_checksum(p, length));
}

void ox_batch_stamp_producer(void *buf, int64_t producer_id,
			     int16_t producer_epoch, int32_t base_sequence)
{
	uint8_t *p = buf;

	OX_ASSERT(p != NULL);
	uint32_t length = ox_load_le32(p + OFF_LENGTH);
	OX_ASSERT(length > HEADER && length <= OX_BATCH_BYTES_MAX);
	ox_store_le64(p + OFF_PRODUCER_ID, (uint64_t)producer_id);
	ox_store_le16(p + OFF_PRODUCER_EPOCH, (uint16_t)producer_epoch);
	ox_store_le32(p + OFF_BASE_SEQUENCE, (uint32_t)base_sequence);
	ox_store_le64(p + OFF_CHECKSUM, ox_batch_checksum(p, length));
}

int ox_batch_next(const void *buf, size_t len, size_t *pos,
		  struct ox_batch_header *hdr)
{
	OX_ASSERT(buf != NULL || len == 0);
	OX_ASSERT(pos != NULL && hdr != NULL);
	OX_ASSERT(*pos <= len);
	size_t left = len - *pos;

	if (left == 0)
		return 0;
	int rc = ox_batch_header_decode((const uint8_t *)buf + *pos, left, hdr);
	if (rc < 0)
		return rc;
	if (hdr->length > left)
		return -OX_ETRUNCATED;
	*pos += hdr->length;
	return 1;
}

// --- Records ---------------------------------------------------------

int ox_record_header_next(const struct ox_record *r, size_t *pos,
			  struct ox_record_header *out)
{
	OX_ASSERT(r != NULL && pos != NULL && out != NULL);
	OX_ASSERT(r->headers_raw != NULL || r->headers_raw_len == 0);
	OX_ASSERT(*pos <= r->headers_raw_len);
	if (*pos == r->headers_raw_len)
		return 0;

	const uint8_t *p = r->headers_raw + *pos;
	const uint8_t *end = r->headers_raw + r->headers_raw_len;
	if (get_record_header(&p, end, out) < 0)
		return -OX_ECORRUPT;
	*pos = (size_t)(p - r->headers_raw);
	return 1;
}

int ox_batch_iter_init(struct ox_batch_iter *it, const void *batch,
		       size_t len)
{
	OX_ASSERT(it != NULL);
	int rc = ox_batch_header_decode(batch, len, &it->hdr);

	if (rc < 0)
		return rc;
	// Records are read up to `length`, so all of it must be there (B4).
	if (it->hdr.length > len)
		return -OX_ETRUNCATED;
	it->pos = (const uint8_t *)batch + HEADER;
	it->end = (const uint8_t *)batch + it->hdr.length;
	it->left = it->hdr.record_count;
	it->prev_delta = -1;
	return 0;
}

// Attributes, timestamp and offset of the record in [*pos, end) (B2, B3).
static int get_record_meta(struct ox_batch_iter *it, const uint8_t **pos,
			   const uint8_t *end, struct ox_record *out)
{
	const struct ox_batch_header *h = &it->hdr;
	bool first = it->left == h->record_count;
	int64_t ts_delta;
	uint64_t delta;

	if (*pos >= end || **pos != 0)
		return -OX_ECORRUPT; // record attributes: none defined
	(*pos)++;
	if (ox_svarint_get(pos, end, &ts_delta) < 0 || (first && ts_delta != 0))
		return -OX_ECORRUPT;
	if (__builtin_add_overflow(h->first_timestamp, ts_delta, &out->timestamp) ||
	    out->timestamp > h->max_timestamp)
		return -OX_ECORRUPT;
	if (ox_uvarint_get(pos, end, &delta) < 0 ||
	    delta > h->last_offset_delta || (int64_t)delta <= it->prev_delta)
		return -OX_ECORRUPT;
	// The header check bounds base_offset + last_offset_delta.
	out->offset = h->base_offset + (int64_t)delta;
	return 0;
}

// Key, value and headers of the record in [*pos, end); they must use up
// exactly the bytes its length announced.
static int get_record_body(const uint8_t **pos, const uint8_t *end,
			   struct ox_record *out)
{
	struct ox_record_header h;
	uint64_t count;

	if (get_bytes(pos, end, &out->key, &out->key_len) < 0 ||
	    get_bytes(pos, end, &out->value, &out->value_len) < 0)
		return -OX_ECORRUPT;
	if (ox_uvarint_get(pos, end, &count) < 0 || count > OX_RECORD_HEADERS_MAX)
		return -OX_ECORRUPT;
	out->header_count = (uint32_t)count;
	out->headers = NULL;
	out->headers_raw = *pos;
	// Walking the headers here bounds ox_record_header_next() and is
	// free for the common record without headers.
	for (uint64_t i = 0; i < count; i++) {
		if (get_record_header(pos, end, &h) < 0)
			return -OX_ECORRUPT;
	}
	if (*pos != end)
		return -OX_ECORRUPT;
	out->headers_raw_len = (size_t)(end - out->headers_raw);
	return 0;
}

int ox_batch_iter_next(struct ox_batch_iter *it, struct ox_record *out)
{
	OX_ASSERT(it != NULL && out != NULL);
	OX_ASSERT(it->pos <= it->end);
	// After the last record the batch must end: no trailing bytes.
	if (it->left == 0)
		return it->pos == it->end ? 0 : -OX_ECORRUPT;

	const uint8_t *p = it->pos;
	uint64_t rec_len;
	if (ox_uvarint_get(&p, it->end, &rec_len) < 0 ||
	    rec_len > (uint64_t)(it->end - p))
		return -OX_ECORRUPT;

	const uint8_t *rec_end = p + rec_len;
	if (get_record_meta(it, &p, rec_end, out) < 0 ||
	    get_record_body(&p, rec_end, out) < 0)
		return -OX_ECORRUPT;
	it->prev_delta = out->offset - it->hdr.base_offset;
	it->pos = rec_end;
	it->left--;
	return 1;
}

int ox_batch_verify(const void *buf, size_t len, struct ox_batch_header *out)
{
	struct ox_batch_iter it;
	struct ox_record rec;
	int64_t max_ts = INT64_MIN;
	int rc = ox_batch_iter_init(&it, buf, len);

	if (rc < 0)
		return rc;
	if (ox_batch_checksum(buf, it.hdr.length) != it.hdr.checksum)
		return -OX_ECORRUPT;
	while ((rc = ox_batch_iter_next(&it, &rec)) == 1) {
		if (rec.timestamp > max_ts)
			max_ts = rec.timestamp;
	}
	if (rc < 0)
		return rc;
	if (max_ts != it.hdr.max_timestamp)
		return -OX_ECORRUPT; // B3
	if (out != NULL)
		*out = it.hdr;
	return 0;
}
