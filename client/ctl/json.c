// SPDX-License-Identifier: Apache-2.0
//
// JSON for oxbowctl (see json.h): a strict recursive-descent checker, a
// dotted-path field lookup over the checked text, and a string writer.
// The lookup runs in two passes: the first proves the whole line is one
// JSON value (so a broken line is reported as broken even when the field
// comes before the damage), the second walks to the field.
#include "client/ctl/json.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "proto/assert.h"

struct cursor {
	const char *p;
	const char *end;
};

static void skip_ws(struct cursor *c)
{
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' ||
				 *c->p == '\n' || *c->p == '\r'))
		c->p++;
}

static int peek(const struct cursor *c)
{
	return c->p < c->end ? (unsigned char)*c->p : -1;
}

static int hex4(const char *p, const char *end, uint32_t *out)
{
	uint32_t v = 0;
	if (end - p < 4)
		return -1;
	for (int i = 0; i < 4; i++) {
		char ch = p[i];
		v <<= 4;
		if (ch >= '0' && ch <= '9')
			v |= (uint32_t)(ch - '0');
		else if (ch >= 'a' && ch <= 'f')
			v |= (uint32_t)(ch - 'a' + 10);
		else if (ch >= 'A' && ch <= 'F')
			v |= (uint32_t)(ch - 'A' + 10);
		else
			return -1;
	}
	*out = v;
	return 0;
}

// Appends code point cp as UTF-8 at out + *n (when out is non-NULL).
static void put_utf8(char *out, size_t *n, uint32_t cp)
{
	char b[4];
	size_t k;
	if (cp < 0x80) {
		b[0] = (char)cp;
		k = 1;
	} else if (cp < 0x800) {
		b[0] = (char)(0xC0 | (cp >> 6));
		b[1] = (char)(0x80 | (cp & 0x3F));
		k = 2;
	} else if (cp < 0x10000) {
		b[0] = (char)(0xE0 | (cp >> 12));
		b[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		b[2] = (char)(0x80 | (cp & 0x3F));
		k = 3;
	} else {
		b[0] = (char)(0xF0 | (cp >> 18));
		b[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
		b[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
		b[3] = (char)(0x80 | (cp & 0x3F));
		k = 4;
	}
	if (out != NULL)
		memcpy(out + *n, b, k);
	*n += k;
}

// Reads a \u escape (c->p just past the 'u'), joining a surrogate pair.
static int parse_unicode_escape(struct cursor *c, uint32_t *cp)
{
	uint32_t hi, lo;
	if (hex4(c->p, c->end, &hi) != 0)
		return -1;
	c->p += 4;
	if (hi >= 0xDC00 && hi <= 0xDFFF)
		return -1;
	if (hi < 0xD800 || hi > 0xDBFF) {
		*cp = hi;
		return 0;
	}
	if (c->end - c->p < 6 || c->p[0] != '\\' || c->p[1] != 'u' ||
	    hex4(c->p + 2, c->end, &lo) != 0 || lo < 0xDC00 || lo > 0xDFFF)
		return -1;
	c->p += 6;
	*cp = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
	return 0;
}

// Parses a string at c->p (its opening quote), decoding it into out when
// out is non-NULL. Decoded text is never longer than its JSON form, so an
// out of the input's length always suffices.
static int parse_string(struct cursor *c, char *out, size_t *out_len)
{
	size_t n = 0;
	if (peek(c) != '"')
		return -1;
	c->p++;
	for (;;) {
		int ch = peek(c);
		if (ch < 0 || ch < 0x20)
			return -1;
		c->p++;
		if (ch == '"')
			break;
		if (ch != '\\') {
			if (out != NULL)
				out[n] = (char)ch;
			n++;
			continue;
		}
		int esc = peek(c);
		if (esc < 0)
			return -1;
		c->p++;
		uint32_t cp;
		switch (esc) {
		case '"': cp = '"'; break;
		case '\\': cp = '\\'; break;
		case '/': cp = '/'; break;
		case 'b': cp = '\b'; break;
		case 'f': cp = '\f'; break;
		case 'n': cp = '\n'; break;
		case 'r': cp = '\r'; break;
		case 't': cp = '\t'; break;
		case 'u':
			if (parse_unicode_escape(c, &cp) != 0)
				return -1;
			break;
		default:
			return -1;
		}
		put_utf8(out, &n, cp);
	}
	if (out_len != NULL)
		*out_len = n;
	return 0;
}

static int skip_digits(struct cursor *c)
{
	const char *start = c->p;
	while (peek(c) >= '0' && peek(c) <= '9')
		c->p++;
	return c->p > start ? 0 : -1;
}

static int parse_number(struct cursor *c)
{
	if (peek(c) == '-')
		c->p++;
	if (peek(c) == '0')
		c->p++;
	else if (skip_digits(c) != 0)
		return -1;
	if (peek(c) == '.') {
		c->p++;
		if (skip_digits(c) != 0)
			return -1;
	}
	if (peek(c) == 'e' || peek(c) == 'E') {
		c->p++;
		if (peek(c) == '+' || peek(c) == '-')
			c->p++;
		if (skip_digits(c) != 0)
			return -1;
	}
	return 0;
}

static int parse_word(struct cursor *c, const char *word)
{
	size_t n = strlen(word);
	if ((size_t)(c->end - c->p) < n || memcmp(c->p, word, n) != 0)
		return -1;
	c->p += n;
	return 0;
}

static int skip_value(struct cursor *c, int depth);

// Object or array at c->p; members are `string : value` in an object.
static int skip_container(struct cursor *c, int depth)
{
	int close = *c->p == '{' ? '}' : ']';
	c->p++;
	skip_ws(c);
	if (peek(c) == close) {
		c->p++;
		return 0;
	}
	for (;;) {
		skip_ws(c);
		if (close == '}') {
			if (parse_string(c, NULL, NULL) != 0)
				return -1;
			skip_ws(c);
			if (peek(c) != ':')
				return -1;
			c->p++;
		}
		if (skip_value(c, depth + 1) != 0)
			return -1;
		skip_ws(c);
		int ch = peek(c);
		if (ch < 0)
			return -1;
		c->p++;
		if (ch == close)
			return 0;
		if (ch != ',')
			return -1;
	}
}

static int skip_value(struct cursor *c, int depth)
{
	if (depth >= OX_CTL_JSON_DEPTH_MAX)
		return -1;
	skip_ws(c);
	switch (peek(c)) {
	case '{':
	case '[':
		return skip_container(c, depth);
	case '"':
		return parse_string(c, NULL, NULL);
	case 't':
		return parse_word(c, "true");
	case 'f':
		return parse_word(c, "false");
	case 'n':
		return parse_word(c, "null");
	default:
		return parse_number(c);
	}
}

// With c->p inside checked text at an object, moves c->p to the value of
// member `name`. `scratch` holds decoded keys.
static int find_member(struct cursor *c, const char *name, size_t name_len,
		       char *scratch)
{
	skip_ws(c);
	if (peek(c) != '{')
		return OX_CTL_JSON_NOT_OBJECT;
	c->p++;
	skip_ws(c);
	if (peek(c) == '}')
		return OX_CTL_JSON_MISSING;
	for (;;) {
		size_t key_len = 0;
		skip_ws(c);
		if (parse_string(c, scratch, &key_len) != 0)
			return OX_CTL_JSON_INVALID;
		skip_ws(c);
		c->p++; // the ':' the first pass saw
		skip_ws(c);
		if (key_len == name_len && memcmp(scratch, name, name_len) == 0)
			return OX_CTL_JSON_OK;
		if (skip_value(c, 0) != 0)
			return OX_CTL_JSON_INVALID;
		skip_ws(c);
		if (peek(c) != ',')
			return OX_CTL_JSON_MISSING;
		c->p++;
	}
}

int ox_ctl_json_field(const char *json, size_t len, const char *path,
		      char *out, size_t *out_len, int *is_null)
{
	OX_ASSERT(json != NULL && path != NULL && out != NULL);
	struct cursor c = { json, json + len };
	*out_len = 0;
	*is_null = 0;
	out[0] = '\0';
	if (skip_value(&c, 0) != 0)
		return OX_CTL_JSON_INVALID;
	skip_ws(&c);
	if (c.p != c.end)
		return OX_CTL_JSON_INVALID;

	c.p = json;
	const char *seg = path;
	for (;;) {
		const char *dot = strchr(seg, '.');
		size_t seg_len = dot != NULL ? (size_t)(dot - seg) : strlen(seg);
		int rc = find_member(&c, seg, seg_len, out);
		if (rc != OX_CTL_JSON_OK)
			return rc;
		if (dot == NULL)
			break;
		seg = dot + 1;
	}

	skip_ws(&c);
	if (peek(&c) == '"') {
		if (parse_string(&c, out, out_len) != 0)
			return OX_CTL_JSON_INVALID;
	} else if (parse_word(&c, "null") == 0) {
		*is_null = 1;
		*out_len = 0;
	} else {
		const char *start = c.p;
		if (skip_value(&c, 0) != 0)
			return OX_CTL_JSON_INVALID;
		*out_len = (size_t)(c.p - start);
		memcpy(out, start, *out_len);
	}
	OX_ASSERT(*out_len <= len);
	out[*out_len] = '\0';
	return OX_CTL_JSON_OK;
}

// Length of the valid UTF-8 sequence at s (of n bytes left), or 0 when
// the bytes there are not one: overlong forms, surrogates and code points
// past U+10FFFF are invalid too.
static size_t utf8_len(const unsigned char *s, size_t n)
{
	uint32_t cp;
	size_t k;
	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xC2 && s[0] <= 0xDF)
		k = 2, cp = s[0] & 0x1Fu;
	else if (s[0] >= 0xE0 && s[0] <= 0xEF)
		k = 3, cp = s[0] & 0x0Fu;
	else if (s[0] >= 0xF0 && s[0] <= 0xF4)
		k = 4, cp = s[0] & 0x07u;
	else
		return 0;
	if (n < k)
		return 0;
	for (size_t i = 1; i < k; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3Fu);
	}
	if ((k == 3 && cp < 0x800) || (k == 4 && cp < 0x10000) ||
	    (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
		return 0;
	return k;
}

int ox_ctl_json_write_string(FILE *f, const void *bytes, size_t len)
{
	const unsigned char *s = bytes;
	putc('"', f);
	for (size_t i = 0; i < len;) {
		unsigned char ch = s[i];
		size_t k = utf8_len(s + i, len - i);
		if (ch == '"' || ch == '\\') {
			putc('\\', f);
			putc(ch, f);
		} else if (ch == '\n') {
			fputs("\\n", f);
		} else if (ch == '\t') {
			fputs("\\t", f);
		} else if (ch == '\r') {
			fputs("\\r", f);
		} else if (ch < 0x20 || ch == 0x7F || k == 0) {
			fprintf(f, "\\u%04x", ch);
		} else {
			fwrite(s + i, 1, k, f);
			i += k;
			continue;
		}
		i++;
	}
	putc('"', f);
	return ferror(f) ? -EIO : 0;
}
