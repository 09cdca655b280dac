// SPDX-License-Identifier: Apache-2.0
//
// ox_strerror / ox_strerror_name for errno values and project codes, and
// OX_ASSERT's failure path (message and abort).
#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proto/assert.h"
#include "proto/error.h"

#define ERRNO_CASE(e) { e, #e }

static const struct {
	int err;
	const char *name;
} common_errnos[] = {
	ERRNO_CASE(EIO), ERRNO_CASE(ENOSPC), ERRNO_CASE(EINVAL),
	ERRNO_CASE(ENOMEM), ERRNO_CASE(EBUSY), ERRNO_CASE(EAGAIN),
	ERRNO_CASE(ENOENT), ERRNO_CASE(EEXIST), ERRNO_CASE(ECANCELED),
	ERRNO_CASE(EDEADLK), ERRNO_CASE(EALREADY), ERRNO_CASE(EBADF),
	ERRNO_CASE(ENOSYS), ERRNO_CASE(EPERM), ERRNO_CASE(ETIMEDOUT),
	ERRNO_CASE(ECONNREFUSED), ERRNO_CASE(ECONNRESET), ERRNO_CASE(EPIPE),
	ERRNO_CASE(EINTR), ERRNO_CASE(EACCES), ERRNO_CASE(EFBIG),
	ERRNO_CASE(EMSGSIZE), ERRNO_CASE(EADDRINUSE), ERRNO_CASE(ENOTCONN),
	ERRNO_CASE(EPROTO), ERRNO_CASE(EOVERFLOW), ERRNO_CASE(ENODATA),
	ERRNO_CASE(EROFS), ERRNO_CASE(EDQUOT), ERRNO_CASE(EUCLEAN),
	ERRNO_CASE(EHOSTUNREACH), ERRNO_CASE(EINPROGRESS),
	ERRNO_CASE(EOPNOTSUPP),
};

Test(error, names_common_errnos_with_either_sign)
{
	for (size_t i = 0; i < sizeof(common_errnos) / sizeof(common_errnos[0]); i++) {
		int e = common_errnos[i].err;

		cr_assert_str_eq(ox_strerror_name(-e), common_errnos[i].name);
		cr_assert_str_eq(ox_strerror_name(e), common_errnos[i].name);
		cr_assert_str_eq(ox_strerror(-e), strerror(e));
	}
}

Test(error, aliases_name_the_canonical_errno)
{
	cr_assert_str_eq(ox_strerror_name(-EWOULDBLOCK), "EAGAIN");
	cr_assert_str_eq(ox_strerror_name(-EDEADLOCK), "EDEADLK");
}

Test(error, errno_text_is_the_c_library_text)
{
	cr_assert_str_eq(ox_strerror(-EIO), "Input/output error");
	cr_assert_str_eq(ox_strerror(-ENOSPC), "No space left on device");
}

Test(error, every_errno_has_a_name_and_text)
{
	// Whatever the table misses, the fallback names (glibc knows all).
	for (int e = 1; e < 134; e++) {
		cr_assert_not_null(ox_strerror_name(-e));
		cr_assert_not_null(ox_strerror(-e));
		cr_assert_gt(strlen(ox_strerror(-e)), 0);
	}
	cr_assert_str_eq(ox_strerror_name(-EHWPOISON), "EHWPOISON");
}

Test(error, names_every_project_code)
{
	static const struct {
		int err;
		const char *name;
	} codes[] = {
		ERRNO_CASE(OX_ECORRUPT), ERRNO_CASE(OX_ETOOBIG),
		ERRNO_CASE(OX_EOFFSET), ERRNO_CASE(OX_EFAILED),
		ERRNO_CASE(OX_ENOTLEADER), ERRNO_CASE(OX_ETRUNCATED),
		ERRNO_CASE(OX_ECLOSED), ERRNO_CASE(OX_ESERVER),
		ERRNO_CASE(OX_EUNKNOWN_TOPIC), ERRNO_CASE(OX_EINVALID_REQUEST),
		ERRNO_CASE(OX_ESTORAGE), ERRNO_CASE(OX_EUNSUPPORTED),
		ERRNO_CASE(OX_ETOPIC_EXISTS), ERRNO_CASE(OX_EREPLICAS),
		ERRNO_CASE(OX_ESEQUENCE), ERRNO_CASE(OX_EDUPLICATE),
		ERRNO_CASE(OX_EINVALID_CONFIG), ERRNO_CASE(OX_EAUTH),
		ERRNO_CASE(OX_EDENIED), ERRNO_CASE(OX_EUNKNOWN_PROCESSOR),
		ERRNO_CASE(OX_EUNKNOWN_TABLE), ERRNO_CASE(OX_ENOT_CAUGHT_UP),
		ERRNO_CASE(OX_ESHUTDOWN), ERRNO_CASE(OX_EUNREACHABLE),
		ERRNO_CASE(OX_ENOTFOUND),
	};
	size_t n = sizeof(codes) / sizeof(codes[0]);

	// The list above must grow with error.h.
	cr_assert_eq(n, (size_t)(OX_EMAX - OX_EBASE - 1));
	for (size_t i = 0; i < n; i++) {
		cr_assert_str_eq(ox_strerror_name(-codes[i].err), codes[i].name);
		cr_assert_str_eq(ox_strerror_name(codes[i].err), codes[i].name);
		cr_assert_str_neq(ox_strerror(-codes[i].err), "Unknown error");
	}
	cr_assert_str_eq(ox_strerror(-OX_ENOTLEADER),
			 "Not the leader of this partition");
	for (int c = OX_EBASE + 1; c < OX_EMAX; c++)
		cr_assert_eq(strncmp(ox_strerror_name(-c), "OX_E", 4), 0);
}

Test(error, unknown_codes)
{
	const int unknown[] = { OX_EBASE, OX_EMAX, -OX_EBASE, -OX_EMAX, 4999,
				4096, 100000, INT_MAX, INT_MIN, -INT_MAX };

	for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
		cr_assert_str_eq(ox_strerror_name(unknown[i]), "UNKNOWN");
		cr_assert_str_eq(ox_strerror(unknown[i]), "Unknown error");
	}
	cr_assert_str_eq(ox_strerror_name(0), "OK");
	cr_assert_str_eq(ox_strerror(0), "Success");
}

static void assert_two_plus_two_is_five(void)
{
	int two = 2;

	OX_ASSERT(two + two == 5);
}
static const int failing_assert_line = __LINE__ - 2;

// Runs a failing OX_ASSERT in a child and returns what it wrote to stderr.
static void failing_child(char *out, size_t cap, int *status)
{
	int fds[2];
	pid_t pid;
	ssize_t n;
	size_t got = 0;

	cr_assert_eq(pipe(fds), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		dup2(fds[1], STDERR_FILENO);
		close(fds[0]);
		assert_two_plus_two_is_five();
	}
	close(fds[1]);
	while (got + 1 < cap && (n = read(fds[0], out + got, cap - 1 - got)) > 0)
		got += (size_t)n;
	out[got] = '\0';
	close(fds[0]);
	cr_assert_eq(waitpid(pid, status, 0), pid);
}

Test(assert, failure_prints_expression_and_location_then_aborts)
{
	char msg[512];
	char want[512];
	int status;

	failing_child(msg, sizeof(msg), &status);
	cr_assert(WIFSIGNALED(status), "the child must die, not exit");
	cr_assert_eq(WTERMSIG(status), SIGABRT);
	snprintf(want, sizeof(want), "assertion failed: two + two == 5 (%s:%d)\n",
		 __FILE__, failing_assert_line);
	cr_assert_str_eq(msg, want);
}

Test(assert, passing_assert_does_nothing)
{
	int calls = 0;

	OX_ASSERT(++calls == 1); // evaluated exactly once
	cr_assert_eq(calls, 1);
}
