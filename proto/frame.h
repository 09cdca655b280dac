// SPDX-License-Identifier: Apache-2.0
//
// The frame prefix of the client and peer protocols (proto/FRAMING.md): a
// u32 LE frame length, a u32 LE header length, then the protobuf header
// (oxbow.RequestHeader or oxbow.ResponseHeader, proto/envelope.proto) and
// the raw payload. This header holds the limits and the 8-byte prefix codec;
// decoding the protobuf header is protobuf-c's job, reading sockets is
// broker/net's and the client's.
#ifndef OX_PROTO_FRAME_H
#define OX_PROTO_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "proto/batch.h"

// Frame length and header length fields.
#define OX_FRAME_PREFIX_BYTES 8u
// A header is a few ids and short strings; 64 KiB leaves room for long
// error messages and client ids while bounding what a peer can make us
// buffer before we know what the frame is.
#define OX_FRAME_HEADER_BYTES_MAX (64u << 10)
// The largest frame length (the bytes after the length field): one batch of
// the format's maximum size, its header and the request body around it must
// fit, so a fetch can always return at least one whole batch.
#define OX_FRAME_BYTES_MAX (OX_BATCH_BYTES_MAX + (1u << 20))

// Decodes the prefix at buf[0, len). Returns 0 with *frame_len (bytes after
// the length field, header length field included) and *header_len;
// -OX_ETOOBIG when the frame length is over OX_FRAME_BYTES_MAX (known as
// soon as 4 bytes are in, so a reader can drop the connection before
// buffering); -OX_ETRUNCATED when fewer than 8 bytes are present;
// -OX_ECORRUPT when the header length does not fit in the frame or is over
// OX_FRAME_HEADER_BYTES_MAX. Borrows buf for the call.
int ox_frame_prefix_decode(const void *buf, size_t len, uint32_t *frame_len,
			   uint32_t *header_len);

// Writes the 8-byte prefix of a frame carrying a header of header_len bytes
// and payload_len payload bytes into buf[0, 8). Returns 0, or -OX_ETOOBIG
// when the header or the whole frame is over its limit.
int ox_frame_prefix_encode(void *buf, size_t header_len, size_t payload_len);

#endif
