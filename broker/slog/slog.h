// SPDX-License-Identifier: Apache-2.0
//
// Structured log lines of oxbowd on stderr, one per event:
//
//   2026-11-22T10:00:00.123Z INFO topic created name=orders partitions=3
//
// UTC time with milliseconds, a level, a message in words, then key=value
// pairs (a value with spaces in double quotes). It is the one logger of
// oxbowd: broker/net, broker/server and broker/main.c call it, and it
// depends on nothing but libc. It does no buffering beyond one line
// (formatted on the stack, never allocating, and written with a single
// write(2), so lines from other threads never interleave), does not
// filter by level, and never fails the caller.
#ifndef OX_BROKER_SLOG_SLOG_H
#define OX_BROKER_SLOG_SLOG_H

enum ox_slog_level {
	OX_SLOG_DEBUG = 0,
	OX_SLOG_INFO = 1,
	OX_SLOG_WARN = 2,
	OX_SLOG_ERROR = 3,
};

// A line longer than this is cut (and ends with "..."): log lines carry
// names and short values, never payloads.
#define OX_SLOG_LINE_MAX 1024

// Writes one line: the timestamp, the level, then fmt formatted (the
// message followed by its key=value pairs). Borrows fmt and its arguments.
void ox_slog(enum ox_slog_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
