// SPDX-License-Identifier: Apache-2.0
//
// Unit tests of broker/slog: the shape of a line (UTC timestamp with
// milliseconds, level, message and key=value pairs, one newline), that the
// timestamp is now, each level's name, and that a line over
// OX_SLOG_LINE_MAX is cut to the limit and ends with "...". Each test
// points stderr at a temporary file, logs, and reads the file back.
#include "broker/slog/slog.h"

#include <criterion/criterion.h>

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

// Room for a whole line and then some, to see that nothing follows it.
#define CAPTURE_MAX (2 * OX_SLOG_LINE_MAX)

struct capture {
	int saved_fd; // the real stderr
	FILE *file;
};

static void capture_start(struct capture *c)
{
	c->file = tmpfile();
	cr_assert_not_null(c->file);
	fflush(stderr);
	c->saved_fd = dup(STDERR_FILENO);
	cr_assert_geq(c->saved_fd, 0);
	cr_assert_eq(dup2(fileno(c->file), STDERR_FILENO), STDERR_FILENO);
}

// Restores stderr and returns what was written, NUL-terminated.
static size_t capture_end(struct capture *c, char *buf, size_t cap)
{
	cr_assert_eq(dup2(c->saved_fd, STDERR_FILENO), STDERR_FILENO);
	close(c->saved_fd);
	rewind(c->file);
	size_t n = fread(buf, 1, cap - 1, c->file);
	buf[n] = '\0';
	fclose(c->file);
	return n;
}

static bool matches(const char *s, const char *pattern)
{
	regex_t re;

	cr_assert_eq(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
	bool ok = regexec(&re, s, 0, NULL, 0) == 0;
	regfree(&re);
	return ok;
}

#define STAMP "[0-9]{4}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-6][0-9]\\.[0-9]{3}Z"

Test(slog, line_shape)
{
	struct capture c;
	char buf[CAPTURE_MAX];

	capture_start(&c);
	ox_slog(OX_SLOG_INFO, "topic created name=%s partitions=%d", "orders", 3);
	capture_end(&c, buf, sizeof(buf));
	cr_expect(matches(buf, "^" STAMP " INFO topic created name=orders "
				"partitions=3\n$"),
		  "line: %s", buf);
}

Test(slog, timestamp_is_now_in_utc)
{
	struct capture c;
	char buf[CAPTURE_MAX];
	struct tm tm = {0};

	time_t before = time(NULL);
	capture_start(&c);
	ox_slog(OX_SLOG_WARN, "clock check");
	capture_end(&c, buf, sizeof(buf));
	time_t after = time(NULL);
	char *rest = strptime(buf, "%Y-%m-%dT%H:%M:%S", &tm);
	cr_assert_not_null(rest, "no timestamp in: %s", buf);
	time_t at = timegm(&tm);
	cr_expect(at >= before - 1 && at <= after + 1,
		  "stamp %lld outside [%lld, %lld]: %s", (long long)at,
		  (long long)before, (long long)after, buf);
}

Test(slog, level_names)
{
	static const struct {
		enum ox_slog_level level;
		const char *name;
	} cases[] = {
		{OX_SLOG_DEBUG, "DEBUG"},
		{OX_SLOG_INFO, "INFO"},
		{OX_SLOG_WARN, "WARN"},
		{OX_SLOG_ERROR, "ERROR"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct capture c;
		char buf[CAPTURE_MAX], want[64];

		capture_start(&c);
		ox_slog(cases[i].level, "connection closed peer=%s", "127.0.0.1:5555");
		capture_end(&c, buf, sizeof(buf));
		snprintf(want, sizeof(want), "Z %s connection closed peer=", cases[i].name);
		cr_expect_not_null(strstr(buf, want), "want '%s' in: %s", want, buf);
	}
}

Test(slog, long_line_is_cut)
{
	struct capture c;
	char buf[CAPTURE_MAX];
	char *value = malloc(OX_SLOG_LINE_MAX * 3);

	cr_assert_not_null(value);
	memset(value, 'v', OX_SLOG_LINE_MAX * 3 - 1);
	value[OX_SLOG_LINE_MAX * 3 - 1] = '\0';
	capture_start(&c);
	ox_slog(OX_SLOG_ERROR, "payload key=%s", value);
	ox_slog(OX_SLOG_INFO, "next line");
	size_t n = capture_end(&c, buf, sizeof(buf));
	free(value);
	char *nl = strchr(buf, '\n');
	cr_assert_not_null(nl);
	size_t first = (size_t)(nl - buf) + 1;
	// The cut line fills the buffer but for its NUL, newline included.
	cr_expect_eq(first, OX_SLOG_LINE_MAX - 1, "cut line is %zu bytes", first);
	cr_expect_eq(memcmp(nl - 3, "...", 3), 0, "cut line ends with '%.4s'",
		     nl - 4);
	cr_expect(matches(buf, "^" STAMP " ERROR payload key=v+\\.\\.\\.\n"));
	// The next line starts on its own, whole.
	cr_expect(matches(buf + first, "^" STAMP " INFO next line\n$"),
		  "second line: %s", buf + first);
	cr_expect_gt(n, first);
}

Test(slog, line_at_the_limit_is_not_cut)
{
	struct capture c;
	char buf[CAPTURE_MAX];
	// "YYYY-MM-DDTHH:MM:SS.mmmZ INFO " is 30 bytes; with the message and
	// the newline the line is exactly OX_SLOG_LINE_MAX - 1 bytes.
	size_t msg_len = OX_SLOG_LINE_MAX - 1 - 30 - 1;
	char *msg = malloc(msg_len + 1);

	cr_assert_not_null(msg);
	memset(msg, 'm', msg_len);
	msg[msg_len] = '\0';
	capture_start(&c);
	ox_slog(OX_SLOG_INFO, "%s", msg);
	size_t n = capture_end(&c, buf, sizeof(buf));
	free(msg);
	cr_expect_eq(n, OX_SLOG_LINE_MAX - 1);
	cr_expect_eq(buf[n - 1], '\n');
	cr_expect_eq(buf[n - 2], 'm', "a line that fits must not be cut: %s",
		     buf + n - 8);
}
