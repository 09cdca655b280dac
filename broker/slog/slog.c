// SPDX-License-Identifier: Apache-2.0
//
// Structured log lines (slog.h). Formats into a stack buffer and writes
// the whole line with one write(2) on stderr; a short or failed write is
// dropped: a log line must never stop the broker. No allocation: it runs
// when memory is short too.
#include "broker/slog/slog.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *level_name(enum ox_slog_level level)
{
	switch (level) {
	case OX_SLOG_DEBUG:
		return "DEBUG";
	case OX_SLOG_INFO:
		return "INFO";
	case OX_SLOG_WARN:
		return "WARN";
	case OX_SLOG_ERROR:
		return "ERROR";
	}
	return "INFO";
}

void ox_slog(enum ox_slog_level level, const char *fmt, ...)
{
	char line[OX_SLOG_LINE_MAX];
	struct timespec ts;
	struct tm tm;
	va_list ap;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	int n = snprintf(line, sizeof(line),
			 "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s ",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
			 tm.tm_hour, tm.tm_min, tm.tm_sec,
			 ts.tv_nsec / 1000000, level_name(level));
	if (n < 0 || (size_t)n >= sizeof(line))
		return;
	va_start(ap, fmt);
	int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		return;
	size_t len = (size_t)n + (size_t)m;
	if (len > sizeof(line) - 2) {
		// Cut: say so, so nobody takes a cut line for the whole.
		len = sizeof(line) - 2;
		memcpy(line + len - 3, "...", 3);
	}
	line[len++] = '\n';
	ssize_t w;
	do
		w = write(STDERR_FILENO, line, len);
	while (w < 0 && errno == EINTR);
	(void)w; // nowhere to report a broken stderr
}
