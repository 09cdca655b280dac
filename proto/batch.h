// SPDX-License-Identifier: Apache-2.0
//
// The batch codec: encode records into a batch, decode and iterate them,
// verify the XXH3-64 checksum. A batch is the unit of write, replication,
// storage and fetch; its bytes are the same on the wire and on disk. The
// exact layout is specified in proto/BATCH_FORMAT.md; this header mirrors it.
//
// Shared by the broker and the client. It does no I/O and no allocation.
// Decoders never read outside the buffer they are given, whatever the bytes
// say: every length is checked against the bytes that are really there.
#ifndef OX_PROTO_BATCH_H
#define OX_PROTO_BATCH_H

#include <stddef.h>
#include <stdint.h>

// Fixed header size; records follow it.
#define OX_BATCH_HEADER_BYTES 72u
// Hard limit of the format. Topics set lower limits (max.message.bytes);
// 64 MiB keeps a whole batch comfortably in one buffer on every node.
#define OX_BATCH_BYTES_MAX (64u << 20)
// A record takes at least 7 bytes, so a full-size batch holds fewer than
// 10 M records; 4 M bounds iteration work per batch.
#define OX_BATCH_RECORDS_MAX (1u << 22)
// Headers per record: bounded so that walking one record is bounded work.
#define OX_RECORD_HEADERS_MAX 1024u
#define OX_BATCH_MAGIC 1u

// Attribute bits.
#define OX_BATCH_ATTR_CODEC_MASK 0x0007u // 0 = uncompressed; 1..7 reserved
#define OX_BATCH_ATTR_CONTROL 0x0008u    // control batch, invisible to consumers
#define OX_BATCH_ATTR_KNOWN (OX_BATCH_ATTR_CODEC_MASK | OX_BATCH_ATTR_CONTROL)

// Producer id / sequence meaning "none" (non-idempotent producer).
#define OX_PRODUCER_NONE (-1)
#define OX_SEQUENCE_NONE (-1)

struct ox_batch_header {
	uint64_t checksum;          // XXH3-64 of bytes [8, length)
	uint32_t length;            // whole batch, header included
	uint16_t attributes;
	int64_t base_offset;        // offset of the first record slot
	uint64_t term;              // Raft term of the leader that appended it
	uint32_t last_offset_delta; // last offset = base_offset + last_offset_delta
	uint32_t record_count;      // <= last_offset_delta + 1 (compaction leaves gaps)
	int64_t first_timestamp;    // ms; records store deltas from it
	int64_t max_timestamp;      // ms; the largest record timestamp
	int64_t producer_id;
	int16_t producer_epoch;
	int32_t base_sequence;
};

// One record header. On encode the caller owns the bytes; on decode they
// point into the batch buffer.
struct ox_record_header {
	const uint8_t *key;
	uint32_t key_len;
	const uint8_t *value; // NULL when value_len == -1
	int32_t value_len;    // -1: null
};

// One record. Encode reads key, value, timestamp and headers[]; decode fills
// every field with pointers into the batch buffer (borrowed: valid while the
// buffer is) and leaves `headers` NULL: walk the headers with
// ox_record_header_next(). A decoded record can be added to a builder as it
// is (compaction does): with `headers` NULL and header_count > 0, encode
// checks and copies the header_count encoded headers of headers_raw.
struct ox_record {
	const uint8_t *key;
	int32_t key_len;   // -1: null key
	const uint8_t *value;
	int32_t value_len; // -1: null value (a tombstone)
	int64_t timestamp; // ms
	int64_t offset;    // decode: absolute offset; ignored by encode
	uint32_t header_count;
	const struct ox_record_header *headers; // encode only (or NULL: raw)
	const uint8_t *headers_raw;             // decode: encoded headers;
	size_t headers_raw_len;                 // encode: used if headers NULL
};

// Header fields a writer chooses; the rest are derived from the records.
struct ox_batch_params {
	uint16_t attributes;
	int64_t base_offset; // 0 from clients: the broker assigns offsets
	uint64_t term;       // 0 from clients: the broker stamps its term
	int64_t producer_id;
	int16_t producer_epoch;
	int32_t base_sequence;
};

// Writes a batch into caller-provided memory. Plain struct so it lives on
// the stack; fields are private to batch.c.
struct ox_batch_builder {
	uint8_t *buf;
	size_t cap;
	size_t len;
	uint32_t count;
	uint32_t last_delta;
	int64_t first_ts;
	int64_t max_ts;
	struct ox_batch_params params;
};

// Starts a batch in buf[0, cap). Borrows buf until finish. Returns -EINVAL
// when cap cannot hold the header, params carry any attribute bit but
// OX_BATCH_ATTR_CONTROL (unknown bits, or a codec: the builder writes
// uncompressed records), or params->base_offset < 0.
// A cap above OX_BATCH_BYTES_MAX is clamped to it.
int ox_batch_builder_init(struct ox_batch_builder *b, void *buf, size_t cap,
			  const struct ox_batch_params *params);

// Appends a record at the next offset delta (0 for the first record, then
// the last delta + 1). Copies the record's bytes; borrows r for the call.
// Returns 0, -ENOSPC when it does not fit (in cap bytes, in
// OX_BATCH_RECORDS_MAX records, or no delta is left above UINT32_MAX; the
// builder is unchanged and can still be finished), -EINVAL for an invalid
// record (lengths < -1 or > INT32_MAX, a NULL pointer with a positive
// length, header_count > OX_RECORD_HEADERS_MAX, headers NULL and
// headers_raw not header_count well-formed headers, a timestamp
// whose delta from the first record overflows int64, an offset past
// INT64_MAX). Validity is checked before space, and nothing is read from
// the record's buffers before both checks pass.
int ox_batch_builder_add(struct ox_batch_builder *b, const struct ox_record *r);

// Appends a record at an explicit offset delta, which must be greater than
// every delta added before and than a delta set by
// ox_batch_builder_set_last_delta (-EINVAL otherwise); the first record may
// take any delta. Compaction keeps original offsets this way. Other results
// as ox_batch_builder_add.
int ox_batch_builder_add_at(struct ox_batch_builder *b,
			    const struct ox_record *r, uint32_t offset_delta);

// Widens last_offset_delta beyond the last record added (a compacted batch
// keeps its original span). At least one record must have been added and
// `delta` must be >= the last delta (asserted). A record added afterwards
// goes above `delta`.
void ox_batch_builder_set_last_delta(struct ox_batch_builder *b,
				     uint32_t delta);

// Fills in the header and checksum. Returns 0 and the batch length, or
// -EINVAL when no record was added.
int ox_batch_builder_finish(struct ox_batch_builder *b, size_t *len_out);

// Records added so far.
uint32_t ox_batch_builder_count(const struct ox_batch_builder *b);

// Upper bound of the bytes `r` takes inside a batch, whatever its offset
// and timestamp deltas; SIZE_MAX for a record ox_batch_builder_add would
// reject with -EINVAL.
size_t ox_record_bytes_max(const struct ox_record *r);

// Decodes and checks the fixed header of the batch at buf[0, len): magic,
// reserved bytes, length bounds, attributes, counts, offsets, timestamps
// (BATCH_FORMAT.md, "Validation", rules 1-6). Does not check the checksum
// or records, nor that all `length` bytes are in buf. Returns 0,
// -OX_ETRUNCATED when len < OX_BATCH_HEADER_BYTES, or -OX_ECORRUPT.
int ox_batch_header_decode(const void *buf, size_t len,
			   struct ox_batch_header *out);

// Fully checks the batch at buf[0, len): header, that all `length` bytes are
// present (-OX_ETRUNCATED if not), checksum, and every record's structure
// (count, increasing offset deltas, timestamps, header bounds, no trailing
// bytes), in one pass after the checksum. Bytes of buf after `length` are
// not examined: walk concatenated batches with ox_batch_next. Returns 0,
// -OX_ETRUNCATED or -OX_ECORRUPT; fills *out (on success only) when
// non-NULL. The rules are listed in BATCH_FORMAT.md, "Validation".
int ox_batch_verify(const void *buf, size_t len, struct ox_batch_header *out);

// Computes the checksum of a batch of `length` bytes (length >= header size).
uint64_t ox_batch_checksum(const void *buf, size_t length);

// Rewrites base offset and term of a verified batch in place and recomputes
// its checksum (the broker does this when it assigns offsets). base_offset
// must be >= 0 and base_offset + last_offset_delta must not overflow
// (asserted: the caller checks offsets before it stamps).
void ox_batch_stamp(void *buf, int64_t base_offset, uint64_t term);

// Rewrites the producer fields of a finished batch in place and
// recomputes its checksum (an idempotent producer numbers a batch when it
// first sends it).
void ox_batch_stamp_producer(void *buf, int64_t producer_id,
			     int16_t producer_epoch, int32_t base_sequence);

// Next batch from a buffer of concatenated batches, starting at *pos. Checks
// the header and that the whole batch is present, not the checksum. Returns
// 1 with *hdr filled and *pos advanced past the batch, 0 at the end (*pos ==
// len), -OX_ETRUNCATED when a partial batch ends the buffer, -OX_ECORRUPT.
int ox_batch_next(const void *buf, size_t len, size_t *pos,
		  struct ox_batch_header *hdr);

// Iterates the records of one batch (call ox_batch_verify first; the
// iterator still checks every record rule and returns -OX_ECORRUPT on bad
// bytes, so it is safe on unverified input; it cannot check the checksum,
// nor that some record reaches max_timestamp: those need the whole batch).
struct ox_batch_iter {
	const uint8_t *pos;
	const uint8_t *end;
	struct ox_batch_header hdr;
	uint32_t left;
	int64_t prev_delta;
};

// Returns 0, the error of ox_batch_header_decode, or -OX_ETRUNCATED when
// len is less than the batch's length; borrows batch.
int ox_batch_iter_init(struct ox_batch_iter *it, const void *batch,
		       size_t len);

// Returns 1 with *out filled, 0 after the last record (when the records
// fill the batch exactly), -OX_ECORRUPT (again on every later call).
int ox_batch_iter_next(struct ox_batch_iter *it, struct ox_record *out);

// Walks a decoded record's headers: start with *pos = 0. Returns 1 with
// *out filled, 0 at the end, -OX_ECORRUPT.
int ox_record_header_next(const struct ox_record *r, size_t *pos,
			  struct ox_record_header *out);

#endif
