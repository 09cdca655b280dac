// SPDX-License-Identifier: Apache-2.0
//
// The public header and proto/error.h define the same error codes: the
// same names with the same values, contiguous from OX_EBASE to OX_EMAX
// (so a code added to one header alone shows up as a count or value
// mismatch), and including both in either order compiles and agrees.
#include <criterion/criterion.h>
#include <string.h>

#include "error_codes.h"

static void check_table(const struct error_code_entry *t, size_t n)
{
	cr_assert_gt(n, 2);
	cr_assert_str_eq(t[0].name, "OX_EBASE");
	cr_assert_str_eq(t[n - 1].name, "OX_EMAX");
	// Contiguous: no gap where a header has a code the list lacks.
	for (size_t i = 1; i < n; i++)
		cr_assert_eq(t[i].value, t[i - 1].value + 1,
			     "%s = %d does not follow %s = %d", t[i].name,
			     t[i].value, t[i - 1].name, t[i - 1].value);
}

Test(error_codes, each_header_lists_every_code_contiguously)
{
	check_table(error_codes_public, error_codes_public_n);
	check_table(error_codes_proto, error_codes_proto_n);
}

Test(error_codes, public_header_and_proto_agree)
{
	cr_assert_eq(error_codes_public_n, error_codes_proto_n);
	for (size_t i = 0; i < error_codes_public_n; i++) {
		cr_assert_str_eq(error_codes_public[i].name,
				 error_codes_proto[i].name);
		cr_assert_eq(error_codes_public[i].value,
			     error_codes_proto[i].value, "%s: %d vs %d",
			     error_codes_public[i].name,
			     error_codes_public[i].value,
			     error_codes_proto[i].value);
	}
}

Test(error_codes, both_headers_in_either_order)
{
	const char *a = NULL, *b = NULL;
	int max = error_codes_proto[error_codes_proto_n - 1].value;

	cr_assert_eq(error_codes_public_first(&a), max);
	cr_assert_eq(error_codes_proto_first(&b), max);
	cr_assert_str_eq(a, "OX_ENOTFOUND");
	cr_assert_str_eq(b, "OX_ENOTFOUND");
}
