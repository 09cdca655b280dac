// SPDX-License-Identifier: Apache-2.0
//
// oxbowctl's JSON: field lookup by dotted path (strings decoded, other
// values as their text, null, nesting, errors for broken or deep input)
// and the string writer (escapes, UTF-8 kept, bad bytes as \u00XX).
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/ctl/json.h"

// Looks path up in json; the field (or "") in a static buffer.
static char field_buf[4096];
static size_t field_len;
static int field_null;

static int field(const char *json, const char *path)
{
	size_t len = strlen(json);

	cr_assert_lt(len, sizeof(field_buf));
	memset(field_buf, 0x5a, sizeof(field_buf));
	field_len = 0;
	field_null = 0;
	return ox_ctl_json_field(json, len, path, field_buf, &field_len,
				 &field_null);
}

Test(json, string_field_is_decoded)
{
	cr_assert_eq(field("{\"user\":\"ann\"}", "user"), OX_CTL_JSON_OK);
	cr_assert_eq(field_len, 3);
	cr_assert_str_eq(field_buf, "ann");
	cr_assert_eq(field_null, 0);

	cr_assert_eq(field("{\"k\":\"a\\\"b\\\\c\\n\\/\"}", "k"),
		     OX_CTL_JSON_OK);
	cr_assert_str_eq(field_buf, "a\"b\\c\n/");
	cr_assert_eq(field_len, 7);
}

Test(json, unicode_escapes_become_utf8)
{
	cr_assert_eq(field("{\"k\":\"caf\\u00e9\"}", "k"), OX_CTL_JSON_OK);
	cr_assert_str_eq(field_buf, "caf\xc3\xa9");
	// A surrogate pair: U+1F600.
	cr_assert_eq(field("{\"k\":\"\\ud83d\\ude00\"}", "k"), OX_CTL_JSON_OK);
	cr_assert_str_eq(field_buf, "\xf0\x9f\x98\x80");
	cr_assert_eq(field_len, 4);
	// A lone high surrogate is not a character.
	cr_assert_eq(field("{\"k\":\"\\ud83d\"}", "k"), OX_CTL_JSON_INVALID);
}

Test(json, nested_path_and_other_values_as_text)
{
	const char *doc = " { \"a\" : { \"b\" : { \"c\" : 42 } , \"t\" : true },"
			  " \"arr\" : [1, {\"x\": 2}], \"n\": -1.5e3 } ";

	cr_assert_eq(field(doc, "a.b.c"), OX_CTL_JSON_OK);
	cr_assert_str_eq(field_buf, "42");
	cr_assert_eq(field(doc, "a.t"), OX_CTL_JSON_OK);
	cr_assert_str_eq(field_buf, "true");
	cr_assert_eq(field(doc, "n"), OX_CTL_JSON_OK);
	cr_assert_str_eq(field_buf, "-1.5e3");
	cr_assert_eq(field(doc, "arr"), OX_CTL_JSON_OK);
	cr_assert_str_eq(field_buf, "[1, {\"x\": 2}]");
	cr_assert_eq(field(doc, "a.b"), OX_CTL_JSON_OK);
	cr_assert_str_eq(field_buf, "{ \"c\" : 42 }");
}

Test(json, null_field_sets_is_null)
{
	cr_assert_eq(field("{\"k\":null}", "k"), OX_CTL_JSON_OK);
	cr_assert_eq(field_null, 1);
	cr_assert_eq(field_len, 0);
	cr_assert_str_eq(field_buf, "");
}

Test(json, missing_and_not_object)
{
	cr_assert_eq(field("{\"a\":1}", "b"), OX_CTL_JSON_MISSING);
	cr_assert_eq(field("{\"a\":{\"b\":1}}", "a.c"), OX_CTL_JSON_MISSING);
	cr_assert_eq(field("{\"a\":1}", "a.b"), OX_CTL_JSON_NOT_OBJECT);
	cr_assert_eq(field("[1,2]", "a"), OX_CTL_JSON_NOT_OBJECT);
	cr_assert_eq(field("\"text\"", "a"), OX_CTL_JSON_NOT_OBJECT);
}

Test(json, broken_input_is_invalid)
{
	static const char *const bad[] = {
		"", "   ", "{", "{\"a\":", "{\"a\":1", "{\"a\":1,}", "{a:1}",
		"{\"a\":1} x", "{\"a\":01}", "{\"a\":1.}", "{\"a\":tru}",
		"{\"a\":\"\\x\"}", "{\"a\":\"unterminated}", "{\"a\":\"\\u12\"}",
		"{\"a\" 1}", "[1,]", "nul", "{\"a\":\"tab\there\"}",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(field(bad[i], "a"), OX_CTL_JSON_INVALID,
			     "input %zu: '%s'", i, bad[i]);
	// Damage after the field still makes the line invalid.
	cr_assert_eq(field("{\"a\":1,\"b\":}", "a"), OX_CTL_JSON_INVALID);
}

Test(json, deep_nesting_is_refused_not_a_crash)
{
	size_t n = 100000;
	char *doc = malloc(2 * n + 16);
	size_t len = 0;
	char out[8];
	size_t out_len;
	int is_null;

	cr_assert_not_null(doc);
	len += (size_t)sprintf(doc, "{\"a\":");
	memset(doc + len, '[', n);
	len += n;
	memset(doc + len, ']', n);
	len += n;
	doc[len++] = '}';
	// out must hold len + 1 bytes only on success; the lookup fails first.
	char *big = malloc(len + 1);
	cr_assert_not_null(big);
	cr_assert_eq(ox_ctl_json_field(doc, len, "a", big, &out_len, &is_null),
		     OX_CTL_JSON_INVALID);
	free(big);
	free(doc);

	// Within the limit the same shape is fine.
	char ok[2 * OX_CTL_JSON_DEPTH_MAX + 16];
	len = (size_t)sprintf(ok, "{\"a\":");
	memset(ok + len, '[', OX_CTL_JSON_DEPTH_MAX - 2);
	len += OX_CTL_JSON_DEPTH_MAX - 2;
	memset(ok + len, ']', OX_CTL_JSON_DEPTH_MAX - 2);
	len += OX_CTL_JSON_DEPTH_MAX - 2;
	ok[len++] = '}';
	char *buf = malloc(len + 1);
	cr_assert_not_null(buf);
	cr_assert_eq(ox_ctl_json_field(ok, len, "a", buf, &out_len, &is_null),
		     OX_CTL_JSON_OK);
	cr_assert_eq(out_len, 2 * (size_t)(OX_CTL_JSON_DEPTH_MAX - 2));
	free(buf);
	(void)out;
}

// Writes bytes with ox_ctl_json_write_string; the text in a static buffer.
static char written[1024];

static const char *write_json(const void *bytes, size_t len)
{
	FILE *f = fmemopen(written, sizeof(written), "w");

	cr_assert_not_null(f);
	cr_assert_eq(ox_ctl_json_write_string(f, bytes, len), 0);
	cr_assert_eq(fclose(f), 0);
	return written;
}

Test(json, writer_escapes_quotes_backslashes_and_controls)
{
	cr_assert_str_eq(write_json("", 0), "\"\"");
	cr_assert_str_eq(write_json("plain", 5), "\"plain\"");
	cr_assert_str_eq(write_json("a\"b\\c", 5), "\"a\\\"b\\\\c\"");
	cr_assert_str_eq(write_json("l1\nl2\tx\r", 8), "\"l1\\nl2\\tx\\r\"");
	cr_assert_str_eq(write_json("\x01\x1f\x7f", 3),
			 "\"\\u0001\\u001f\\u007f\"");
	// An embedded NUL is a byte like any other.
	cr_assert_str_eq(write_json("a\0b", 3), "\"a\\u0000b\"");
}

Test(json, writer_keeps_utf8_and_escapes_bad_bytes)
{
	cr_assert_str_eq(write_json("caf\xc3\xa9", 5), "\"caf\xc3\xa9\"");
	cr_assert_str_eq(write_json("\xf0\x9f\x98\x80", 4),
			 "\"\xf0\x9f\x98\x80\"");
	// A lone continuation byte, a truncated sequence, an overlong NUL.
	cr_assert_str_eq(write_json("\x80", 1), "\"\\u0080\"");
	cr_assert_str_eq(write_json("x\xc3", 2), "\"x\\u00c3\"");
	cr_assert_str_eq(write_json("\xc0\x80", 2), "\"\\u00c0\\u0080\"");
	cr_assert_str_eq(write_json("\xff", 1), "\"\\u00ff\"");
}

Test(json, writer_output_reads_back)
{
	const char raw[] = "k\"\\\n\x01 caf\xc3\xa9";
	char doc[256];
	const char *s = write_json(raw, sizeof(raw) - 1);

	snprintf(doc, sizeof(doc), "{\"v\":%s}", s);
	cr_assert_eq(field(doc, "v"), OX_CTL_JSON_OK);
	cr_assert_eq(field_len, sizeof(raw) - 1);
	cr_assert_eq(memcmp(field_buf, raw, field_len), 0);
}

Test(json, writer_reports_a_failed_write)
{
	char tiny[4];
	FILE *f = fmemopen(tiny, sizeof(tiny), "w");

	cr_assert_not_null(f);
	setvbuf(f, NULL, _IONBF, 0);
	cr_assert_eq(ox_ctl_json_write_string(f, "far too long for it", 19),
		     -EIO);
	fclose(f);
}
