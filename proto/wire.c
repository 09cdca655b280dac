// SPDX-License-Identifier: Apache-2.0
//
// Payload framing, error mapping and the key partitioner (proto/wire.h).
// The error table is checked against the generated ErrorCode enum at
// compile time, so envelope.proto and this file cannot drift apart.
#include "proto/wire.h"

#include <errno.h>
#include <xxhash.h>

#include "proto/assert.h"
#include "proto/envelope.pb-c.h"
#include "proto/error.h"
#include "proto/varint.h"

int ox_payload_split(const void *payload, size_t len, const uint8_t **body,
		     size_t *body_len, const uint8_t **raw, size_t *raw_len)
{
	const uint8_t *p = payload;

	if (len == 0) {
		*body = p;
		*body_len = 0;
		*raw = p;
		*raw_len = 0;
		return 0;
	}
	if (len < OX_PAYLOAD_PREFIX_BYTES)
		return -OX_ECORRUPT;
	uint32_t n = ox_load_le32(p);
	if (n > len - OX_PAYLOAD_PREFIX_BYTES)
		return -OX_ECORRUPT;
	*body = p + OX_PAYLOAD_PREFIX_BYTES;
	*body_len = n;
	*raw = *body + n;
	*raw_len = len - OX_PAYLOAD_PREFIX_BYTES - n;
	OX_ASSERT(*raw + *raw_len == p + len);
	return 0;
}

void ox_payload_prefix_encode(void *buf, uint32_t body_len)
{
	ox_store_le32(buf, body_len);
}

// Wire code -> project code, for the codes that have one of their own.
static const struct {
	int wire;
	int err;
} wire_codes[] = {
	{ OXBOW__ERROR_CODE__UNKNOWN, OX_ESERVER },
	{ OXBOW__ERROR_CODE__CORRUPT_MESSAGE, OX_ECORRUPT },
	{ OXBOW__ERROR_CODE__MESSAGE_TOO_LARGE, OX_ETOOBIG },
	{ OXBOW__ERROR_CODE__OFFSET_OUT_OF_RANGE, OX_EOFFSET },
	{ OXBOW__ERROR_CODE__NOT_LEADER, OX_ENOTLEADER },
	{ OXBOW__ERROR_CODE__UNKNOWN_TOPIC, OX_EUNKNOWN_TOPIC },
	{ OXBOW__ERROR_CODE__INVALID_REQUEST, OX_EINVALID_REQUEST },
	{ OXBOW__ERROR_CODE__TIMEOUT, ETIMEDOUT },
	{ OXBOW__ERROR_CODE__STORAGE_ERROR, OX_ESTORAGE },
	{ OXBOW__ERROR_CODE__UNSUPPORTED_VERSION, OX_EUNSUPPORTED },
	{ OXBOW__ERROR_CODE__TOPIC_ALREADY_EXISTS, OX_ETOPIC_EXISTS },
	{ OXBOW__ERROR_CODE__NOT_ENOUGH_REPLICAS, OX_EREPLICAS },
	{ OXBOW__ERROR_CODE__OUT_OF_ORDER_SEQUENCE, OX_ESEQUENCE },
	{ OXBOW__ERROR_CODE__DUPLICATE_SEQUENCE, OX_EDUPLICATE },
	{ OXBOW__ERROR_CODE__INVALID_CONFIG, OX_EINVALID_CONFIG },
	{ OXBOW__ERROR_CODE__AUTHENTICATION_FAILED, OX_EAUTH },
	{ OXBOW__ERROR_CODE__AUTHORIZATION_FAILED, OX_EDENIED },
	{ OXBOW__ERROR_CODE__UNKNOWN_PROCESSOR, OX_EUNKNOWN_PROCESSOR },
	{ OXBOW__ERROR_CODE__UNKNOWN_TABLE, OX_EUNKNOWN_TABLE },
	{ OXBOW__ERROR_CODE__NOT_CAUGHT_UP, OX_ENOT_CAUGHT_UP },
	{ OXBOW__ERROR_CODE__SHUTTING_DOWN, OX_ESHUTDOWN },
};

#define WIRE_CODES_N (sizeof(wire_codes) / sizeof(wire_codes[0]))

// Every ErrorCode but NONE has a row: a code added to envelope.proto
// without one here fails the build.
_Static_assert(WIRE_CODES_N == OXBOW__ERROR_CODE__SHUTTING_DOWN,
	       "every wire ErrorCode needs a row in wire_codes");

int ox_error_to_wire(int err)
{
	int e = err < 0 ? -err : err;

	if (err == 0)
		return OXBOW__ERROR_CODE__NONE;
	for (size_t i = 0; i < WIRE_CODES_N; i++)
		if (wire_codes[i].err == e)
			return wire_codes[i].wire;
	switch (e) {
	case EINVAL:
	case OX_ETRUNCATED:
		return OXBOW__ERROR_CODE__INVALID_REQUEST;
	case OX_EFAILED:
	case EIO:
	case ENOSPC:
	case EDQUOT:
	case EROFS:
		return OXBOW__ERROR_CODE__STORAGE_ERROR;
	case OX_ECLOSED:
		return OXBOW__ERROR_CODE__SHUTTING_DOWN;
	default:
		return OXBOW__ERROR_CODE__UNKNOWN;
	}
}

int ox_error_from_wire(int code)
{
	if (code == OXBOW__ERROR_CODE__NONE)
		return 0;
	for (size_t i = 0; i < WIRE_CODES_N; i++)
		if (wire_codes[i].wire == code)
			return -wire_codes[i].err;
	return -OX_ESERVER;
}

bool ox_error_retriable(int err)
{
	switch (err < 0 ? -err : err) {
	case OX_ENOTLEADER:
	case ETIMEDOUT:
	case OX_EREPLICAS:
	case OX_ESHUTDOWN:
	case OX_EUNREACHABLE:
	case ECONNREFUSED:
	case ECONNRESET:
	case ECONNABORTED:
	case EPIPE:
	case EHOSTUNREACH:
	case ENETUNREACH:
		return true;
	default:
		return false;
	}
}

uint32_t ox_partition_for_key(const void *key, size_t key_len,
			      uint32_t partitions)
{
	OX_ASSERT(partitions > 0);
	return (uint32_t)(XXH3_64bits(key, key_len) % partitions);
}
