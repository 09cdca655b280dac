// SPDX-License-Identifier: Apache-2.0
//
// Byte-level helpers shared by every encoder and decoder: unsigned LEB128
// varints, zigzag for signed values, and little-endian loads and stores.
// All static inline: they sit in the innermost loops of batch encode and
// decode, where a call per field would show.
//
// The decoders take an end pointer and never read at or past it. They
// accept only the canonical encoding of a value (no overlong forms, nothing
// above 2^64 - 1), so every value has exactly one encoding and a checksum
// over encoded bytes pins the decoded values. Loads and stores go through
// memcpy: no unaligned or aliasing undefined behaviour, one instruction on
// the machines we build for.
#ifndef OX_PROTO_VARINT_H
#define OX_PROTO_VARINT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "proto/error.h"

// A uint64 takes at most ceil(64 / 7) = 10 bytes.
#define OX_UVARINT_BYTES_MAX 10u

// Bytes ox_uvarint_put() writes for v: 1 to 10.
static inline size_t ox_uvarint_len(uint64_t v)
{
	// Significant bits (at least 1, so 0 takes one byte), 7 per byte.
	unsigned bits = 64u - (unsigned)__builtin_clzll(v | 1u);

	return (bits + 6u) / 7u;
}

// Writes v at p, which must have room for ox_uvarint_len(v) bytes (callers
// size their buffer first; checking here would be a second branch per
// field on the encode hot path). Returns the bytes written.
static inline size_t ox_uvarint_put(uint8_t *p, uint64_t v)
{
	size_t n = 0;

	while (v >= 0x80u) {
		p[n++] = (uint8_t)(v | 0x80u);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

// Reads a varint from [*pos, end) and advances *pos past it. Returns 0,
// -OX_ETRUNCATED when the bytes end before the varint does (a caller
// holding a whole structure treats that as corruption), or -OX_ECORRUPT for
// a non-canonical encoding: an overlong form (a final zero group after the
// first byte), a value above 2^64 - 1, or more than 10 bytes. On error
// *pos and *out are left unchanged.
static inline int ox_uvarint_get(const uint8_t **pos, const uint8_t *end,
				 uint64_t *out)
{
	const uint8_t *p = *pos;
	uint64_t v = 0;

	// One-byte values are the common case: lengths and deltas of
	// small records.
	if (p < end && *p < 0x80u) {
		*out = *p;
		*pos = p + 1;
		return 0;
	}
	for (unsigned i = 0; i < OX_UVARINT_BYTES_MAX; i++) {
		if (p >= end)
			return -OX_ETRUNCATED;
		uint8_t byte = *p++;
		v |= (uint64_t)(byte & 0x7fu) << (7u * i);
		if (byte < 0x80u) {
			if (byte == 0 && i > 0)
				return -OX_ECORRUPT;
			// The tenth byte holds bit 63 alone.
			if (i == OX_UVARINT_BYTES_MAX - 1 && byte > 1)
				return -OX_ECORRUPT;
			*out = v;
			*pos = p;
			return 0;
		}
	}
	return -OX_ECORRUPT;
}

// Zigzag maps signed to unsigned so that small magnitudes of either sign
// encode short: 0, -1, 1, -2, 2 ... become 0, 1, 2, 3, 4 ...
static inline uint64_t ox_zigzag_encode(int64_t v)
{
	// Converting to uint64_t is defined (modulo 2^64); shifting a
	// negative signed value would not be.
	uint64_t u = (uint64_t)v << 1;

	return v < 0 ? ~u : u;
}

static inline int64_t ox_zigzag_decode(uint64_t u)
{
	// u >> 1 fits in int64_t; -(u & 1) is 0 or -1: no conversion of an
	// out-of-range value anywhere.
	return (int64_t)(u >> 1) ^ -(int64_t)(u & 1u);
}

static inline size_t ox_svarint_len(int64_t v)
{
	return ox_uvarint_len(ox_zigzag_encode(v));
}

static inline size_t ox_svarint_put(uint8_t *p, int64_t v)
{
	return ox_uvarint_put(p, ox_zigzag_encode(v));
}

// As ox_uvarint_get(), then zigzag-decoded.
static inline int ox_svarint_get(const uint8_t **pos, const uint8_t *end,
				 int64_t *out)
{
	uint64_t u;
	int rc = ox_uvarint_get(pos, end, &u);

	if (rc < 0)
		return rc;
	*out = ox_zigzag_decode(u);
	return 0;
}

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define OX_LE16(x) __builtin_bswap16(x)
#define OX_LE32(x) __builtin_bswap32(x)
#define OX_LE64(x) __builtin_bswap64(x)
#else
#define OX_LE16(x) (x)
#define OX_LE32(x) (x)
#define OX_LE64(x) (x)
#endif

static inline uint16_t ox_load_le16(const void *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof(v));
	return OX_LE16(v);
}

static inline uint32_t ox_load_le32(const void *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return OX_LE32(v);
}

static inline uint64_t ox_load_le64(const void *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return OX_LE64(v);
}

static inline void ox_store_le16(void *p, uint16_t v)
{
	v = OX_LE16(v);
	memcpy(p, &v, sizeof(v));
}

static inline void ox_store_le32(void *p, uint32_t v)
{
	v = OX_LE32(v);
	memcpy(p, &v, sizeof(v));
}

static inline void ox_store_le64(void *p, uint64_t v)
{
	v = OX_LE64(v);
	memcpy(p, &v, sizeof(v));
}

#endif
