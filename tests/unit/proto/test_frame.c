// SPDX-License-Identifier: Apache-2.0
//
// The frame prefix (proto/frame.h) and the protobuf envelope headers
// (proto/envelope.proto) as FRAMING.md puts them together.
#include <criterion/criterion.h>
#include <string.h>

#include "proto/envelope.pb-c.h"
#include "proto/error.h"
#include "proto/frame.h"
#include "proto/varint.h"

Test(frame, prefix_round_trip)
{
	uint8_t buf[OX_FRAME_PREFIX_BYTES];
	uint32_t flen, hlen;

	cr_assert_eq(ox_frame_prefix_encode(buf, 20, 1000), 0);
	cr_assert_eq(ox_load_le32(buf), 4 + 20 + 1000);
	cr_assert_eq(ox_load_le32(buf + 4), 20);
	cr_assert_eq(ox_frame_prefix_decode(buf, sizeof(buf), &flen, &hlen), 0);
	cr_assert_eq(flen, 1024);
	cr_assert_eq(hlen, 20);

	cr_assert_eq(ox_frame_prefix_encode(buf, 0, 0), 0);
	cr_assert_eq(ox_frame_prefix_decode(buf, sizeof(buf), &flen, &hlen), 0);
	cr_assert_eq(flen, 4);
	cr_assert_eq(hlen, 0);
}

Test(frame, prefix_limits)
{
	uint8_t buf[OX_FRAME_PREFIX_BYTES];
	uint32_t flen = 7, hlen = 7;

	cr_assert_eq(ox_frame_prefix_encode(buf, OX_FRAME_HEADER_BYTES_MAX + 1, 0),
		     -OX_ETOOBIG);
	cr_assert_eq(ox_frame_prefix_encode(buf, 10, OX_FRAME_BYTES_MAX), -OX_ETOOBIG);
	cr_assert_eq(ox_frame_prefix_encode(buf, 10, SIZE_MAX), -OX_ETOOBIG);
	cr_assert_eq(ox_frame_prefix_encode(buf, 10, OX_FRAME_BYTES_MAX - 14), 0);
	cr_assert_eq(ox_frame_prefix_decode(buf, sizeof(buf), &flen, &hlen), 0);
	cr_assert_eq(flen, OX_FRAME_BYTES_MAX);
	// A whole maximum-size batch fits in one frame with its header.
	cr_assert_geq(OX_FRAME_BYTES_MAX,
		      OX_BATCH_BYTES_MAX + OX_FRAME_HEADER_BYTES_MAX + 4);

	ox_store_le32(buf, OX_FRAME_BYTES_MAX + 1);
	cr_assert_eq(ox_frame_prefix_decode(buf, 4, &flen, &hlen), -OX_ETOOBIG,
		     "known from the first four bytes");
	ox_store_le32(buf, 100);
	ox_store_le32(buf + 4, 97);
	cr_assert_eq(ox_frame_prefix_decode(buf, 8, &flen, &hlen), -OX_ECORRUPT);
	ox_store_le32(buf + 4, 96);
	cr_assert_eq(ox_frame_prefix_decode(buf, 8, &flen, &hlen), 0);
	ox_store_le32(buf, 3);
	ox_store_le32(buf + 4, 0);
	cr_assert_eq(ox_frame_prefix_decode(buf, 8, &flen, &hlen), -OX_ECORRUPT);
	ox_store_le32(buf, OX_FRAME_BYTES_MAX);
	ox_store_le32(buf + 4, OX_FRAME_HEADER_BYTES_MAX + 1);
	cr_assert_eq(ox_frame_prefix_decode(buf, 8, &flen, &hlen), -OX_ECORRUPT);
	for (size_t n = 0; n < 8; n++) {
		ox_store_le32(buf, 100);
		cr_assert_eq(ox_frame_prefix_decode(buf, n, &flen, &hlen),
			     -OX_ETRUNCATED, "%zu bytes", n);
	}
	// Outputs change only on success: still the 100/96 frame above.
	cr_assert_eq(flen, 100);
	cr_assert_eq(hlen, 96);
}

Test(envelope, request_header_round_trip)
{
	Oxbow__RequestHeader req = OXBOW__REQUEST_HEADER__INIT;
	uint8_t buf[256];

	req.api_key = OXBOW__API_KEY__PRODUCE;
	req.api_version = 3;
	req.correlation_id = UINT64_MAX - 1;
	req.client_id = "bench-1";
	size_t n = oxbow__request_header__get_packed_size(&req);
	cr_assert_leq(n + OX_FRAME_PREFIX_BYTES, sizeof(buf));
	cr_assert_eq(oxbow__request_header__pack(&req, buf + 8), n);
	cr_assert_eq(ox_frame_prefix_encode(buf, n, 0), 0);

	uint32_t flen, hlen;
	cr_assert_eq(ox_frame_prefix_decode(buf, n + 8, &flen, &hlen), 0);
	cr_assert_eq(hlen, n);
	Oxbow__RequestHeader *got = oxbow__request_header__unpack(NULL, hlen, buf + 8);
	cr_assert_not_null(got);
	cr_assert_eq(got->api_key, OXBOW__API_KEY__PRODUCE);
	cr_assert_eq(got->api_version, 3);
	cr_assert_eq(got->correlation_id, UINT64_MAX - 1);
	cr_assert_str_eq(got->client_id, "bench-1");
	oxbow__request_header__free_unpacked(got, NULL);
}

Test(envelope, response_header_round_trip_and_defaults)
{
	Oxbow__ResponseHeader resp = OXBOW__RESPONSE_HEADER__INIT;
	uint8_t buf[256];

	// Proto3 defaults encode to nothing: a zero-length header is valid.
	cr_assert_eq(oxbow__response_header__get_packed_size(&resp), 0);
	resp.correlation_id = 42;
	resp.error_code = OXBOW__ERROR_CODE__NOT_LEADER;
	resp.error_message = "partition 3 moved to node 2";
	size_t n = oxbow__response_header__pack(&resp, buf);
	Oxbow__ResponseHeader *got = oxbow__response_header__unpack(NULL, n, buf);
	cr_assert_not_null(got);
	cr_assert_eq(got->correlation_id, 42);
	cr_assert_eq(got->error_code, OXBOW__ERROR_CODE__NOT_LEADER);
	cr_assert_str_eq(got->error_message, "partition 3 moved to node 2");
	oxbow__response_header__free_unpacked(got, NULL);
	// Wire numbers are a contract (never renumbered).
	cr_assert_eq(OXBOW__ERROR_CODE__NONE, 0);
	cr_assert_eq(OXBOW__ERROR_CODE__UNKNOWN, 1);
	cr_assert_eq(OXBOW__ERROR_CODE__CORRUPT_MESSAGE, 2);
	cr_assert_eq(OXBOW__ERROR_CODE__UNSUPPORTED_VERSION, 10);
	cr_assert_eq(OXBOW__API_KEY__API_UNSPECIFIED, 0);
	cr_assert_eq(OXBOW__API_KEY__PRODUCE, 3);
	cr_assert_eq(OXBOW__API_KEY__FETCH, 4);
}

Test(envelope, garbage_does_not_unpack)
{
	// Field 1 as a length-delimited string running past the end.
	static const uint8_t bad[] = { 0x0a, 0x7f, 'x' };

	cr_assert_null(oxbow__request_header__unpack(NULL, sizeof(bad), bad));
}
