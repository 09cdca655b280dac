// SPDX-License-Identifier: Apache-2.0
//
// The 8-byte frame prefix (proto/FRAMING.md). Connections call the decoder
// on every frame they read, before buffering the rest of it, so it checks
// the limits that protect a node from a peer announcing a huge frame. It
// does not read sockets or parse the protobuf header.
#include "proto/frame.h"

#include "proto/assert.h"
#include "proto/error.h"
#include "proto/varint.h"

// The header length field is part of the frame length.
#define HEADER_LEN_FIELD 4u

int ox_frame_prefix_decode(const void *buf, size_t len, uint32_t *frame_len,
			   uint32_t *header_len)
{
	const uint8_t *p = buf;

	OX_ASSERT(p != NULL || len == 0);
	OX_ASSERT(frame_len != NULL && header_len != NULL);
	if (len < 4)
		return -OX_ETRUNCATED;
	uint32_t flen = ox_load_le32(p);
	if (flen > OX_FRAME_BYTES_MAX)
		return -OX_ETOOBIG;
	if (len < OX_FRAME_PREFIX_BYTES)
		return -OX_ETRUNCATED;
	uint32_t hlen = ox_load_le32(p + 4);
	if (flen < HEADER_LEN_FIELD || hlen > flen - HEADER_LEN_FIELD ||
	    hlen > OX_FRAME_HEADER_BYTES_MAX)
		return -OX_ECORRUPT;
	*frame_len = flen;
	*header_len = hlen;
	return 0;
}

int ox_frame_prefix_encode(void *buf, size_t header_len, size_t payload_len)
{
	uint8_t *p = buf;

	OX_ASSERT(p != NULL);
	if (header_len > OX_FRAME_HEADER_BYTES_MAX)
		return -OX_ETOOBIG;
	// header_len is small, so only the payload can overflow the sum.
	if (payload_len > OX_FRAME_BYTES_MAX - HEADER_LEN_FIELD - header_len)
		return -OX_ETOOBIG;
	ox_store_le32(p, (uint32_t)(HEADER_LEN_FIELD + header_len + payload_len));
	ox_store_le32(p + 4, (uint32_t)header_len);
	return 0;
}
