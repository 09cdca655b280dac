// SPDX-License-Identifier: Apache-2.0
//
// Names and sentences for error codes: errno values and the project codes
// of proto/error.h. Every module and the client print errors through these,
// so a code reads the same in a broker log, a test failure and oxbowctl.
//
// Both functions accept a code with either sign (functions return -EIO,
// logs often hold EIO) and return static strings, so they are safe to call
// from any thread and from error paths that must not allocate.
#include "proto/error.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

// glibc 2.32 added strerrordesc_np() and strerrorname_np(): unlike
// strerror() they return static strings and never a thread's buffer.
#if defined(__GLIBC__) && \
	(__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
#define OX_HAVE_STRERRORDESC_NP 1
#endif

// errno values are small positive integers on every platform we build on;
// the project codes start at OX_EBASE, far above them.
#define ERRNO_LIMIT 4096

#define NAME(e) [e] = #e

// The errnos the broker and client meet in practice. Aliases (EWOULDBLOCK,
// EDEADLOCK, ENOTSUP) share a value with a name below and are left out: a
// designated initializer may name each slot only once.
static const char *const errno_names[] = {
	NAME(EPERM), NAME(ENOENT), NAME(ESRCH), NAME(EINTR), NAME(EIO),
	NAME(ENXIO), NAME(E2BIG), NAME(ENOEXEC), NAME(EBADF), NAME(ECHILD),
	NAME(EAGAIN), NAME(ENOMEM), NAME(EACCES), NAME(EFAULT), NAME(EBUSY),
	NAME(EEXIST), NAME(EXDEV), NAME(ENODEV), NAME(ENOTDIR), NAME(EISDIR),
	NAME(EINVAL), NAME(ENFILE), NAME(EMFILE), NAME(ENOTTY), NAME(ETXTBSY),
	NAME(EFBIG), NAME(ENOSPC), NAME(ESPIPE), NAME(EROFS), NAME(EMLINK),
	NAME(EPIPE), NAME(EDOM), NAME(ERANGE), NAME(EDEADLK),
	NAME(ENAMETOOLONG), NAME(ENOLCK), NAME(ENOSYS), NAME(ENOTEMPTY),
	NAME(ELOOP), NAME(ENOMSG), NAME(EIDRM), NAME(ENODATA), NAME(ETIME),
	NAME(EPROTO), NAME(EBADMSG), NAME(EOVERFLOW), NAME(EILSEQ),
	NAME(ENOTSOCK), NAME(EDESTADDRREQ), NAME(EMSGSIZE), NAME(EPROTOTYPE),
	NAME(ENOPROTOOPT), NAME(EPROTONOSUPPORT), NAME(EOPNOTSUPP),
	NAME(EAFNOSUPPORT), NAME(EADDRINUSE), NAME(EADDRNOTAVAIL),
	NAME(ENETDOWN), NAME(ENETUNREACH), NAME(ENETRESET),
	NAME(ECONNABORTED), NAME(ECONNRESET), NAME(ENOBUFS), NAME(EISCONN),
	NAME(ENOTCONN), NAME(ESHUTDOWN), NAME(ETIMEDOUT), NAME(ECONNREFUSED),
	NAME(EHOSTDOWN), NAME(EHOSTUNREACH), NAME(EALREADY),
	NAME(EINPROGRESS), NAME(ESTALE), NAME(EUCLEAN), NAME(EDQUOT),
	NAME(ECANCELED), NAME(EOWNERDEAD), NAME(ENOTRECOVERABLE),
};

#undef NAME

struct ox_code_text {
	const char *name;
	const char *text;
};

// Indexed by code - OX_EBASE. Slot 0 (OX_EBASE itself) is not a code.
static const struct ox_code_text ox_codes[OX_EMAX - OX_EBASE] = {
	[OX_ECORRUPT - OX_EBASE] = { "OX_ECORRUPT",
		"Corrupt data: a checksum or structural check failed" },
	[OX_ETOOBIG - OX_EBASE] = { "OX_ETOOBIG", "Size over its limit" },
	[OX_EOFFSET - OX_EBASE] = { "OX_EOFFSET", "Offset out of range" },
	[OX_EFAILED - OX_EBASE] = { "OX_EFAILED",
		"Log failed after an I/O error; it must be reopened" },
	[OX_ENOTLEADER - OX_EBASE] = { "OX_ENOTLEADER",
		"Not the leader of this partition" },
	[OX_ETRUNCATED - OX_EBASE] = { "OX_ETRUNCATED",
		"Input ends inside a structure; more bytes are needed" },
	[OX_ECLOSED - OX_EBASE] = { "OX_ECLOSED", "Object closing or closed" },
	[OX_ESERVER - OX_EBASE] = { "OX_ESERVER",
		"Server error (see the broker's log)" },
	[OX_EUNKNOWN_TOPIC - OX_EBASE] = { "OX_EUNKNOWN_TOPIC",
		"Unknown topic or partition" },
	[OX_EINVALID_REQUEST - OX_EBASE] = { "OX_EINVALID_REQUEST",
		"Invalid request" },
	[OX_ESTORAGE - OX_EBASE] = { "OX_ESTORAGE",
		"Storage error on the broker (disk full or I/O error)" },
	[OX_EUNSUPPORTED - OX_EBASE] = { "OX_EUNSUPPORTED",
		"Request or version not supported by the broker" },
	[OX_ETOPIC_EXISTS - OX_EBASE] = { "OX_ETOPIC_EXISTS",
		"Topic already exists" },
	[OX_EREPLICAS - OX_EBASE] = { "OX_EREPLICAS",
		"Not enough replicas in sync" },
	[OX_ESEQUENCE - OX_EBASE] = { "OX_ESEQUENCE",
		"Out-of-order sequence number from an idempotent producer" },
	[OX_EDUPLICATE - OX_EBASE] = { "OX_EDUPLICATE",
		"Duplicate sequence number: the batch was already written" },
	[OX_EINVALID_CONFIG - OX_EBASE] = { "OX_EINVALID_CONFIG",
		"Invalid configuration" },
	[OX_EAUTH - OX_EBASE] = { "OX_EAUTH", "Authentication failed" },
	[OX_EDENIED - OX_EBASE] = { "OX_EDENIED",
		"Not authorized for this operation" },
	[OX_EUNKNOWN_PROCESSOR - OX_EBASE] = { "OX_EUNKNOWN_PROCESSOR",
		"Unknown processor" },
	[OX_EUNKNOWN_TABLE - OX_EBASE] = { "OX_EUNKNOWN_TABLE",
		"Unknown table" },
	[OX_ENOT_CAUGHT_UP - OX_EBASE] = { "OX_ENOT_CAUGHT_UP",
		"Version has not caught up with its input" },
	[OX_ESHUTDOWN - OX_EBASE] = { "OX_ESHUTDOWN",
		"Broker is shutting down" },
	[OX_EUNREACHABLE - OX_EBASE] = { "OX_EUNREACHABLE",
		"Broker unreachable" },
	[OX_ENOTFOUND - OX_EBASE] = { "OX_ENOTFOUND", "Not found" },
};

// Returns |err| without overflowing on INT_MIN (which is no code at all).
static int code_abs(int err)
{
	if (err == INT_MIN)
		return -1;
	return err < 0 ? -err : err;
}

static const struct ox_code_text *project_code(int code)
{
	if (code <= OX_EBASE || code >= OX_EMAX)
		return NULL;
	// A code added to error.h but not here reads as unknown rather than
	// as NULL; the unit tests check that every slot is filled.
	if (ox_codes[code - OX_EBASE].name == NULL)
		return NULL;
	return &ox_codes[code - OX_EBASE];
}

const char *ox_strerror(int err)
{
	int code = code_abs(err);
	const struct ox_code_text *c = project_code(code);

	if (c != NULL)
		return c->text;
	if (code == 0)
		return "Success";
	if (code < 0 || code >= ERRNO_LIMIT)
		return "Unknown error";
#ifdef OX_HAVE_STRERRORDESC_NP
	const char *desc = strerrordesc_np(code);
	return desc != NULL ? desc : "Unknown error";
#else
	return strerror(code);
#endif
}

const char *ox_strerror_name(int err)
{
	int code = code_abs(err);
	const struct ox_code_text *c = project_code(code);
	size_t n = sizeof(errno_names) / sizeof(errno_names[0]);

	if (c != NULL)
		return c->name;
	if (code == 0)
		return "OK";
	if (code < 0 || code >= ERRNO_LIMIT)
		return "UNKNOWN";
	if ((size_t)code < n && errno_names[code] != NULL)
		return errno_names[code];
#ifdef OX_HAVE_STRERRORDESC_NP
	// The table holds the common names; glibc knows the rest.
	const char *name = strerrorname_np(code);
	if (name != NULL)
		return name;
#endif
	return "UNKNOWN";
}
