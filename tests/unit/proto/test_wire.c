// SPDX-License-Identifier: Apache-2.0
//
// proto/wire.h: payload split, error mapping both ways, retriable codes and
// the key partitioner.
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <xxhash.h>

#include "proto/envelope.pb-c.h"
#include "proto/error.h"
#include "proto/wire.h"

Test(wire, payload_split)
{
	uint8_t buf[16] = { 0 };
	const uint8_t *body, *raw;
	size_t body_len, raw_len;

	ox_payload_prefix_encode(buf, 5);
	memcpy(buf + 4, "hello", 5);
	memcpy(buf + 9, "RAW", 3);
	cr_assert_eq(ox_payload_split(buf, 12, &body, &body_len, &raw,
				      &raw_len), 0);
	cr_assert_eq(body_len, 5);
	cr_assert_eq(memcmp(body, "hello", 5), 0);
	cr_assert_eq(raw_len, 3);
	cr_assert_eq(memcmp(raw, "RAW", 3), 0);

	// Body length exactly to the end: no raw part.
	cr_assert_eq(ox_payload_split(buf, 9, &body, &body_len, &raw,
				      &raw_len), 0);
	cr_assert_eq(raw_len, 0);
	// Runs past the end, or a short prefix.
	cr_assert_eq(ox_payload_split(buf, 8, &body, &body_len, &raw,
				      &raw_len), -OX_ECORRUPT);
	cr_assert_eq(ox_payload_split(buf, 3, &body, &body_len, &raw,
				      &raw_len), -OX_ECORRUPT);
	ox_payload_prefix_encode(buf, 0xffffffffu);
	cr_assert_eq(ox_payload_split(buf, 16, &body, &body_len, &raw,
				      &raw_len), -OX_ECORRUPT);
	// Empty payload: empty body.
	cr_assert_eq(ox_payload_split(buf, 0, &body, &body_len, &raw,
				      &raw_len), 0);
	cr_assert_eq(body_len + raw_len, 0);
}

Test(wire, every_code_round_trips)
{
	for (int code = 1; code <= OXBOW__ERROR_CODE__SHUTTING_DOWN; code++) {
		int err = ox_error_from_wire(code);
		cr_assert_lt(err, 0, "code %d", code);
		cr_assert_eq(ox_error_to_wire(err), code, "code %d", code);
	}
	cr_assert_eq(ox_error_from_wire(0), 0);
	cr_assert_eq(ox_error_to_wire(0), 0);
	cr_assert_eq(ox_error_from_wire(9999), -OX_ESERVER);
}

Test(wire, errno_maps_to_nearest_code)
{
	cr_assert_eq(ox_error_to_wire(-EINVAL),
		     OXBOW__ERROR_CODE__INVALID_REQUEST);
	cr_assert_eq(ox_error_to_wire(-ENOSPC), OXBOW__ERROR_CODE__STORAGE_ERROR);
	cr_assert_eq(ox_error_to_wire(-OX_EFAILED),
		     OXBOW__ERROR_CODE__STORAGE_ERROR);
	cr_assert_eq(ox_error_to_wire(-ETIMEDOUT), OXBOW__ERROR_CODE__TIMEOUT);
	cr_assert_eq(ox_error_to_wire(-ENOMEM), OXBOW__ERROR_CODE__UNKNOWN);
}

Test(wire, retriable)
{
	cr_assert(ox_error_retriable(-OX_ENOTLEADER));
	cr_assert(ox_error_retriable(-ETIMEDOUT));
	cr_assert(ox_error_retriable(-ECONNREFUSED));
	cr_assert(ox_error_retriable(-OX_ESHUTDOWN));
	cr_assert_not(ox_error_retriable(-OX_EUNKNOWN_TOPIC));
	cr_assert_not(ox_error_retriable(-OX_ECORRUPT));
	cr_assert_not(ox_error_retriable(0));
}

Test(wire, partitioner_is_xxh3_modulo)
{
	cr_assert_eq(ox_partition_for_key("k", 1, 1), 0);
	for (int i = 0; i < 1000; i++) {
		char key[16];
		int n = snprintf(key, sizeof(key), "key-%d", i);
		uint32_t p = ox_partition_for_key(key, (size_t)n, 7);
		cr_assert_lt(p, 7);
		cr_assert_eq(p, XXH3_64bits(key, (size_t)n) % 7);
	}
	// A fixed value, so the documented function cannot change silently.
	cr_assert_eq(ox_partition_for_key("", 0, 1u << 31),
		     (uint32_t)(XXH3_64bits("", 0) % (1u << 31)));
}
