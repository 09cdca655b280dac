// SPDX-License-Identifier: Apache-2.0
//
// The failure path of OX_ASSERT. It prints the failed expression with its
// location and aborts, so a core dump or a sanitizer report shows the stack.
// It does not log through any logging module: an assertion may fire inside
// one, and stderr is the one channel that is always there.
#include "proto/assert.h"

#include <stdio.h>
#include <stdlib.h>

_Noreturn void ox_assert_fail(const char *expr, const char *file, int line)
{
	// One fprintf call, so that lines from two threads failing at once
	// are not interleaved mid-line.
	fprintf(stderr, "assertion failed: %s (%s:%d)\n", expr, file, line);
	fflush(stderr);
	abort();
}
