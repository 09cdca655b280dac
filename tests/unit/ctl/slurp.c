// SPDX-License-Identifier: Apache-2.0
#include "tests/unit/ctl/slurp.h"

#include <criterion/criterion.h>
#include <stdlib.h>

char *ctl_slurp(FILE *f)
{
	size_t cap = 1 << 16, n;
	char *buf = malloc(cap);

	cr_assert_not_null(f);
	cr_assert_not_null(buf);
	n = fread(buf, 1, cap - 1, f);
	buf[n] = '\0';
	return buf;
}
