// SPDX-License-Identifier: Apache-2.0
//
// Varints, zigzag and little-endian helpers of proto/varint.h.
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "proto/error.h"
#include "proto/varint.h"

static const uint64_t uvalues[] = {
	0, 1, 127, 128, 255, 300, 16383, 16384, (1u << 21) - 1, 1u << 21,
	UINT32_MAX, (uint64_t)UINT32_MAX + 1, (1ull << 56) - 1, 1ull << 56,
	(1ull << 63) - 1, 1ull << 63, UINT64_MAX,
};

Test(varint, uvarint_round_trip_and_length)
{
	for (size_t i = 0; i < sizeof(uvalues) / sizeof(uvalues[0]); i++) {
		uint8_t buf[OX_UVARINT_BYTES_MAX + 1];
		const uint8_t *p = buf;
		uint64_t got = 0;
		size_t n = ox_uvarint_put(buf, uvalues[i]);

		cr_assert_eq(n, ox_uvarint_len(uvalues[i]));
		cr_assert_leq(n, OX_UVARINT_BYTES_MAX);
		cr_assert_eq(ox_uvarint_get(&p, buf + n, &got), 0);
		cr_assert_eq(got, uvalues[i]);
		cr_assert_eq(p, buf + n, "must consume exactly the encoding");
	}
	cr_assert_eq(ox_uvarint_len(0), 1);
	cr_assert_eq(ox_uvarint_len(127), 1);
	cr_assert_eq(ox_uvarint_len(128), 2);
	cr_assert_eq(ox_uvarint_len(UINT64_MAX), 10);
}

Test(varint, known_encodings)
{
	uint8_t buf[OX_UVARINT_BYTES_MAX];
	static const uint8_t max[10] = { 0xff, 0xff, 0xff, 0xff, 0xff,
					 0xff, 0xff, 0xff, 0xff, 0x01 };

	cr_assert_eq(ox_uvarint_put(buf, 300), 2);
	cr_assert_eq(buf[0], 0xac);
	cr_assert_eq(buf[1], 0x02);
	cr_assert_eq(ox_uvarint_put(buf, UINT64_MAX), 10);
	cr_assert_arr_eq(buf, max, sizeof(max));
}

static int get(const uint8_t *bytes, size_t n, uint64_t *v, size_t *used)
{
	const uint8_t *p = bytes;
	int rc = ox_uvarint_get(&p, bytes + n, v);

	*used = (size_t)(p - bytes);
	return rc;
}

Test(varint, rejects_overlong_and_overflowing_forms)
{
	static const struct {
		uint8_t bytes[12];
		size_t n;
	} bad[] = {
		{ { 0x80, 0x00 }, 2 },               // 0 in two bytes
		{ { 0x81, 0x80, 0x00 }, 3 },         // 1 in three bytes
		{ { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02 }, 10 },
		{ { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f }, 10 },
		{ { 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01 }, 11 },
		{ { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00 }, 10 },
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint64_t v = 12345;
		size_t used;

		cr_assert_eq(get(bad[i].bytes, bad[i].n, &v, &used), -OX_ECORRUPT,
			     "case %zu", i);
		cr_assert_eq(used, 0, "position must not move on error");
		cr_assert_eq(v, 12345, "output must not change on error");
	}
}

Test(varint, running_out_of_bytes_is_truncated)
{
	static const uint8_t bytes[] = { 0x80, 0x80, 0x80 };
	uint64_t v = 7;
	size_t used;

	cr_assert_eq(get(bytes, 0, &v, &used), -OX_ETRUNCATED);
	for (size_t n = 1; n <= sizeof(bytes); n++) {
		cr_assert_eq(get(bytes, n, &v, &used), -OX_ETRUNCATED);
		cr_assert_eq(used, 0);
	}
	cr_assert_eq(v, 7);
}

Test(varint, accepts_exactly_the_canonical_two_byte_forms)
{
	// Every two-byte sequence: accepted iff it is the canonical
	// encoding of a value in [128, 16383].
	for (unsigned a = 0; a < 256; a++) {
		for (unsigned b = 0; b < 256; b++) {
			uint8_t bytes[2] = { (uint8_t)a, (uint8_t)b };
			uint64_t v;
			size_t used;
			int rc = get(bytes, 2, &v, &used);

			if (a < 0x80) {
				cr_assert(rc == 0 && used == 1 && v == a);
			} else if (b >= 0x80) {
				cr_assert_eq(rc, -OX_ETRUNCATED);
			} else if (b == 0) {
				cr_assert_eq(rc, -OX_ECORRUPT);
			} else {
				cr_assert(rc == 0 && used == 2);
				cr_assert_eq(v, (a & 0x7fu) | (uint64_t)b << 7);
			}
		}
	}
}

Test(varint, zigzag)
{
	static const struct {
		int64_t s;
		uint64_t u;
	} table[] = {
		{ 0, 0 }, { -1, 1 }, { 1, 2 }, { -2, 3 }, { 2, 4 },
		{ INT32_MAX, 4294967294u }, { INT32_MIN, 4294967295u },
		{ INT64_MAX, UINT64_MAX - 1 }, { INT64_MIN, UINT64_MAX },
	};

	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		cr_assert_eq(ox_zigzag_encode(table[i].s), table[i].u);
		cr_assert_eq(ox_zigzag_decode(table[i].u), table[i].s);
	}
}

Test(varint, svarint_round_trip)
{
	static const int64_t values[] = { 0, -1, 1, -64, 63, -65, 64,
					  INT32_MIN, INT32_MAX, INT64_MIN,
					  INT64_MAX };

	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		uint8_t buf[OX_UVARINT_BYTES_MAX];
		const uint8_t *p = buf;
		int64_t got;
		size_t n = ox_svarint_put(buf, values[i]);

		cr_assert_eq(n, ox_svarint_len(values[i]));
		cr_assert_eq(ox_svarint_get(&p, buf + n, &got), 0);
		cr_assert_eq(got, values[i]);
	}
	cr_assert_eq(ox_svarint_len(-1), 1, "-1 (null) takes one byte");
	cr_assert_eq(ox_svarint_len(-65), 2);
}

Test(varint, little_endian_at_any_alignment)
{
	uint8_t buf[16];

	for (size_t off = 0; off < 8; off++) {
		memset(buf, 0xee, sizeof(buf));
		ox_store_le64(buf + off, 0x0102030405060708ull);
		cr_assert_eq(buf[off], 0x08);
		cr_assert_eq(buf[off + 7], 0x01);
		cr_assert_eq(buf[off + 8], 0xee, "wrote past the field");
		cr_assert_eq(ox_load_le64(buf + off), 0x0102030405060708ull);

		ox_store_le32(buf + off, 0xa1b2c3d4u);
		cr_assert_eq(buf[off], 0xd4);
		cr_assert_eq(buf[off + 3], 0xa1);
		cr_assert_eq(ox_load_le32(buf + off), 0xa1b2c3d4u);

		ox_store_le16(buf + off, 0xbeef);
		cr_assert_eq(buf[off], 0xef);
		cr_assert_eq(buf[off + 1], 0xbe);
		cr_assert_eq(ox_load_le16(buf + off), 0xbeef);
	}
}
