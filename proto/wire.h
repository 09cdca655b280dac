// SPDX-License-Identifier: Apache-2.0
//
// Small rules of the client protocol that the broker and the client must
// apply identically: how a frame's payload splits into an API body and raw
// batches (proto/api.proto), how error codes cross the wire, and which
// partition a key belongs to. No I/O, no allocation.
#ifndef OX_PROTO_WIRE_H
#define OX_PROTO_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

// The u32 LE body length in front of every API body.
#define OX_PAYLOAD_PREFIX_BYTES 4u

// Splits payload[0, len) into the protobuf body and the raw part after it.
// Returns 0, or -OX_ECORRUPT when the payload is shorter than its prefix
// or the body length runs past the end. Outputs point into payload
// (borrowed). An empty payload is an empty body with no raw part.
int ox_payload_split(const void *payload, size_t len, const uint8_t **body,
		     size_t *body_len, const uint8_t **raw, size_t *raw_len);

// Writes the body length prefix into buf[0, 4).
void ox_payload_prefix_encode(void *buf, uint32_t body_len);

// The protocol ErrorCode (oxbow.ErrorCode, proto/envelope.proto) for an
// error: 0 maps to NONE, each wire code's OX_E* to itself, -EINVAL to
// INVALID_REQUEST, -ETIMEDOUT to TIMEOUT, -OX_EFAILED, -EIO, -ENOSPC and
// -EDQUOT to STORAGE_ERROR, and anything else to UNKNOWN.
int ox_error_to_wire(int err);

// The error (0 or a negative code) for a protocol ErrorCode; an unknown
// value maps to -OX_ESERVER.
int ox_error_from_wire(int code);

// Whether a client should retry after this error (NOT_LEADER, TIMEOUT,
// NOT_ENOUGH_REPLICAS, SHUTTING_DOWN, and connection failures).
bool ox_error_retriable(int err);

// The partition of a keyed record: XXH3-64 of the key bytes (seed 0)
// modulo the partition count. Every producer uses it, so a key's records
// always land in the same partition while the count stays the same.
// partitions must be > 0.
uint32_t ox_partition_for_key(const void *key, size_t key_len,
			      uint32_t partitions);

#endif
