// SPDX-License-Identifier: Apache-2.0
//
// The project error codes as a list, for the test that keeps the two
// definitions of them (the public client header and proto/error.h) from
// drifting apart. error_codes_table.c expands the list against the public
// header alone and, built again, against proto/error.h alone; each
// exports a table of {name, value}. A name missing from either header fails
// that file's build; a value that differs, or a code added to one header
// (which moves its OX_EMAX), fails the comparison in test_error_codes.c.
// This header includes neither definition itself.
#ifndef OX_TESTS_UNIT_CLIENT_ERROR_CODES_H
#define OX_TESTS_UNIT_CLIENT_ERROR_CODES_H

#include <stddef.h>

#define OX_ERROR_CODE_LIST(X)                                              \
	X(OX_EBASE) X(OX_ECORRUPT) X(OX_ETOOBIG) X(OX_EOFFSET) X(OX_EFAILED) \
	X(OX_ENOTLEADER) X(OX_ETRUNCATED) X(OX_ECLOSED) X(OX_ESERVER)        \
	X(OX_EUNKNOWN_TOPIC) X(OX_EINVALID_REQUEST) X(OX_ESTORAGE)           \
	X(OX_EUNSUPPORTED) X(OX_ETOPIC_EXISTS) X(OX_EREPLICAS)               \
	X(OX_ESEQUENCE) X(OX_EDUPLICATE) X(OX_EINVALID_CONFIG) X(OX_EAUTH)   \
	X(OX_EDENIED) X(OX_EUNKNOWN_PROCESSOR) X(OX_EUNKNOWN_TABLE)          \
	X(OX_ENOT_CAUGHT_UP) X(OX_ESHUTDOWN) X(OX_EUNREACHABLE)             \
	X(OX_ENOTFOUND) X(OX_EMAX)

#define OX_ERROR_CODE_ENTRY(code) { #code, (int)(code) },

struct error_code_entry {
	const char *name;
	int value;
};

// One table per header, in list order.
extern const struct error_code_entry error_codes_public[];
extern const size_t error_codes_public_n;
extern const struct error_code_entry error_codes_proto[];
extern const size_t error_codes_proto_n;

// Both headers in one translation unit, each order: the codes and the
// ox_strerror prototypes must agree whichever comes first. Each returns
// OX_EMAX as that unit saw it and writes ox_strerror_name(-OX_ENOTFOUND).
int error_codes_public_first(const char **name_out);
int error_codes_proto_first(const char **name_out);

#endif
