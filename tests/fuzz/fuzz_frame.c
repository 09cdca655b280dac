// SPDX-License-Identifier: Apache-2.0
//
// libFuzzer harness for the start of every frame (proto/FRAMING.md): the
// 8-byte prefix and the protobuf envelope header after it. Whatever a peer
// sends, the prefix decoder returns one of its documented results within
// the limits, and protobuf-c either rejects the header or yields one that
// survives a pack/unpack round trip unchanged (and frees it cleanly).
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/envelope.pb-c.h"
#include "proto/error.h"
#include "proto/frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) \
	do { \
		if (!(cond)) { \
			fprintf(stderr, "fuzz_frame: check failed: %s (line %d)\n", \
				#cond, __LINE__); \
			abort(); \
		} \
	} while (0)

static void request_round_trip(const uint8_t *p, size_t n)
{
	Oxbow__RequestHeader *req = oxbow__request_header__unpack(NULL, n, p);

	if (req == NULL)
		return;
	// protobuf-c keeps unknown fields verbatim, even ones with field
	// number 0 that it then refuses to parse back: compare only
	// messages made of known fields.
	if (req->base.n_unknown_fields > 0) {
		oxbow__request_header__free_unpacked(req, NULL);
		return;
	}
	size_t len = oxbow__request_header__get_packed_size(req);
	uint8_t *buf = malloc(len + 1);
	CHECK(buf != NULL);
	CHECK(oxbow__request_header__pack(req, buf) == len);
	Oxbow__RequestHeader *again = oxbow__request_header__unpack(NULL, len, buf);
	CHECK(again != NULL);
	CHECK(again->api_key == req->api_key);
	CHECK(again->api_version == req->api_version);
	CHECK(again->correlation_id == req->correlation_id);
	CHECK(strcmp(again->client_id, req->client_id) == 0);
	oxbow__request_header__free_unpacked(again, NULL);
	oxbow__request_header__free_unpacked(req, NULL);
	free(buf);
}

static void response_round_trip(const uint8_t *p, size_t n)
{
	Oxbow__ResponseHeader *resp = oxbow__response_header__unpack(NULL, n, p);

	if (resp == NULL)
		return;
	// protobuf-c keeps unknown fields verbatim, even ones with field
	// number 0 that it then refuses to parse back: compare only
	// messages made of known fields.
	if (resp->base.n_unknown_fields > 0) {
		oxbow__response_header__free_unpacked(resp, NULL);
		return;
	}
	size_t len = oxbow__response_header__get_packed_size(resp);
	uint8_t *buf = malloc(len + 1);
	CHECK(buf != NULL);
	CHECK(oxbow__response_header__pack(resp, buf) == len);
	Oxbow__ResponseHeader *again = oxbow__response_header__unpack(NULL, len, buf);
	CHECK(again != NULL);
	CHECK(again->correlation_id == resp->correlation_id);
	CHECK(again->error_code == resp->error_code);
	CHECK(strcmp(again->error_message, resp->error_message) == 0);
	oxbow__response_header__free_unpacked(again, NULL);
	oxbow__response_header__free_unpacked(resp, NULL);
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint32_t flen = 0, hlen = 0;
	int rc = ox_frame_prefix_decode(data, size, &flen, &hlen);

	CHECK(rc == 0 || rc == -OX_ETRUNCATED || rc == -OX_ETOOBIG ||
	      rc == -OX_ECORRUPT);
	if (rc != 0)
		return 0;
	CHECK(flen <= OX_FRAME_BYTES_MAX && hlen <= OX_FRAME_HEADER_BYTES_MAX);
	CHECK(hlen <= flen - 4);
	// The header as far as the input holds it: a reader only parses a
	// header it has in full, but protobuf-c must cope with any length.
	size_t n = size - OX_FRAME_PREFIX_BYTES;
	if (n > hlen)
		n = hlen;
	request_round_trip(data + OX_FRAME_PREFIX_BYTES, n);
	response_round_trip(data + OX_FRAME_PREFIX_BYTES, n);
	return 0;
}
