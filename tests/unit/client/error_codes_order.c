// SPDX-License-Identifier: Apache-2.0
//
// Both definitions of the error codes in one translation unit, the public
// header first (or, with OX_TEST_PROTO_FIRST, proto/error.h first): the
// shared guard must let exactly one of them define the codes, and the two
// ox_strerror prototypes must be compatible. Built twice by meson.build.
#ifdef OX_TEST_PROTO_FIRST
#include "proto/error.h"
#include <oxbow/oxbow.h>
#define ERROR_CODES_ORDER_FN error_codes_proto_first
#else
#include <oxbow/oxbow.h>
#include "proto/error.h"
#define ERROR_CODES_ORDER_FN error_codes_public_first
#endif

#include "error_codes.h"

int ERROR_CODES_ORDER_FN(const char **name_out)
{
	enum ox_error_code code = OX_ENOTFOUND;

	*name_out = ox_strerror_name(-(int)code);
	return OX_EMAX;
}
