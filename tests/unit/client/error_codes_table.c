// SPDX-License-Identifier: Apache-2.0
//
// The error codes as one header alone defines them, built twice by
// meson.build: with OX_TEST_PROTO_HEADER against proto/error.h (no client
// header on the include path), without it against the public header
// (nothing but client/include on the include path, so proto/error.h
// cannot be reached).
#ifdef OX_TEST_PROTO_HEADER
#include "proto/error.h"
#define ERROR_CODES_TABLE error_codes_proto
#define ERROR_CODES_TABLE_N error_codes_proto_n
#ifdef OXBOW_OXBOW_H
#error "the public client header must not be included here"
#endif
#else
#include <oxbow/oxbow.h>
#define ERROR_CODES_TABLE error_codes_public
#define ERROR_CODES_TABLE_N error_codes_public_n
#ifdef OX_PROTO_ERROR_H
#error "proto/error.h must not be reachable here"
#endif
#endif

#include "error_codes.h"

const struct error_code_entry ERROR_CODES_TABLE[] = {
	OX_ERROR_CODE_LIST(OX_ERROR_CODE_ENTRY)
};
const size_t ERROR_CODES_TABLE_N =
	sizeof(ERROR_CODES_TABLE) / sizeof(ERROR_CODES_TABLE[0]);
