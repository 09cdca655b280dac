// SPDX-License-Identifier: Apache-2.0
//
// Test helpers that write batch bytes by hand, field by field, without the
// builder: the decoder tests need batches the builder refuses to write
// (decreasing offsets, overlong varints, bad counts). Also a helper that
// re-encodes a verified batch with the builder, for canonical-form checks.
#ifndef OX_TESTS_UNIT_PROTO_RAW_H
#define OX_TESTS_UNIT_PROTO_RAW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/batch.h"

#define RAW_BYTES_MAX 8192

struct raw {
	uint8_t buf[RAW_BYTES_MAX];
	size_t len;
};

// Every header field, reserved ones included, so tests can set any of them
// to anything. raw_header_default() gives a header that matches records
// written with raw_simple_record().
struct raw_header {
	uint32_t length; // 0: the bytes written
	uint8_t magic;
	uint8_t reserved13;
	uint16_t attributes;
	int64_t base_offset;
	uint64_t term;
	uint32_t last_offset_delta;
	uint32_t record_count;
	int64_t first_timestamp;
	int64_t max_timestamp;
	int64_t producer_id;
	int16_t producer_epoch;
	uint16_t reserved66;
	int32_t base_sequence;
};

struct raw_header raw_header_default(uint32_t count);

// A batch under construction: 72 header bytes are reserved first.
void raw_batch_init(struct raw *b);
// A record body under construction (no length prefix).
void raw_init(struct raw *r);

void raw_u8(struct raw *r, uint8_t v);
void raw_uv(struct raw *r, uint64_t v);
void raw_sv(struct raw *r, int64_t v);
void raw_bytes(struct raw *r, const void *p, size_t n);

// Appends record body `rec` to batch `b` with its uvarint length prefix.
void raw_record(struct raw *b, const struct raw *rec);

// Appends a record with attributes 0, the given timestamp and offset
// deltas, key "k<delta>" and value "v", no headers.
void raw_simple_record(struct raw *b, int64_t ts_delta, uint64_t delta);

// Writes the header and a correct checksum; returns the batch length.
size_t raw_finish(struct raw *b, const struct raw_header *h);

// Recomputes the checksum of the batch in buf (after a deliberate edit).
void fix_checksum(uint8_t *buf, size_t length);

// Decodes the verified batch at buf[0, len) and writes it again with the
// builder into out (cap bytes); returns the new length. The builder writes
// only canonical batches, so for a batch verify accepted the result must be
// byte-identical.
size_t reencode(const uint8_t *buf, size_t len, uint8_t *out, size_t cap);

#endif
