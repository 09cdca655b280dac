// SPDX-License-Identifier: Apache-2.0
//
// The log lines of broker/net: one line per event on stderr, such as
//
//   oxbowd net: closed 127.0.0.1:5555: frame length 4294967295 over limit
//
// formatted on the stack and written with a single write(2), so that it
// never allocates (it runs when memory is short) and lines from other
// threads never interleave. It does not timestamp or filter: the
// process's supervisor (systemd, the local cluster launcher) does. Only
// broker/net calls it.
#include "broker/net/net_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

// Log lines name a peer and a reason, never payloads.
#define LINE_MAX_BYTES 512

void ox_net_logf(const char *fmt, ...)
{
	static const char prefix[] = "oxbowd net: ";
	char line[LINE_MAX_BYTES];
	size_t len = sizeof(prefix) - 1;
	va_list ap;
	int n;

	memcpy(line, prefix, len);
	va_start(ap, fmt);
	n = vsnprintf(line + len, sizeof(line) - len - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	len += (size_t)n < sizeof(line) - len - 1 ? (size_t)n :
						    sizeof(line) - len - 2;
	line[len++] = '\n';
	for (size_t off = 0; off < len;) {
		ssize_t w = write(STDERR_FILENO, line + off, len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return; // nowhere to report a broken stderr
		off += (size_t)w;
	}
}
