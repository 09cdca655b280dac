// SPDX-License-Identifier: Apache-2.0
//
// The little JSON oxbowctl needs: checking that a line is one JSON value
// and pulling a field out of it by a dotted path (`produce --key-field`),
// and writing bytes as a JSON string (`consume --format json`). It is no
// general JSON library: it builds no tree and allocates nothing; callers
// hand it their buffers.
#ifndef OX_CLIENT_CTL_JSON_H
#define OX_CLIENT_CTL_JSON_H

#include <stddef.h>
#include <stdio.h>

// Nesting deeper than this is refused: a line of a million '[' must not
// exhaust the stack, and real records nest a few levels.
#define OX_CTL_JSON_DEPTH_MAX 64

// Why a lookup failed, for the message naming the line.
enum ox_ctl_json_error {
	OX_CTL_JSON_OK = 0,
	OX_CTL_JSON_INVALID = 1, // the line is not one JSON value
	OX_CTL_JSON_NOT_OBJECT = 2, // valid, but not an object where the path goes
	OX_CTL_JSON_MISSING = 3, // no field of that path
};

// Looks up `path` ("a.b.c": each part a member name, so names holding a '.'
// cannot be reached) in the JSON text json[0..len). On success writes the
// field into out (capacity at least len + 1 bytes; the result is
// NUL-terminated) and its length into *out_len: a string's decoded bytes,
// a number, true or false as written, an object or array as its JSON text;
// a JSON null sets *is_null and an empty out. Returns an
// enum ox_ctl_json_error.
int ox_ctl_json_field(const char *json, size_t len, const char *path,
		      char *out, size_t *out_len, int *is_null);

// Writes bytes as a JSON string with its quotes: '"', '\\' and control
// characters escaped, valid UTF-8 passed through, and every byte that is
// not part of valid UTF-8 written as \u00XX (its Latin-1 reading), so the
// output is always valid JSON. Returns 0 or -EIO when the write failed.
int ox_ctl_json_write_string(FILE *f, const void *bytes, size_t len);

#endif
