// SPDX-License-Identifier: Apache-2.0
//
// OX_ASSERT: assertions that stay on in release builds. They guard
// programmer errors and invariants, never input: bad input gets an error.
#ifndef OX_PROTO_ASSERT_H
#define OX_PROTO_ASSERT_H

_Noreturn void ox_assert_fail(const char *expr, const char *file, int line);

#define OX_ASSERT(expr) \
	((expr) ? (void)0 : ox_assert_fail(#expr, __FILE__, __LINE__))

#endif
