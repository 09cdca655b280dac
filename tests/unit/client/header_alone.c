// SPDX-License-Identifier: Apache-2.0
//
// The public header compiles on its own: this file includes nothing but
// <oxbow/oxbow.h> (no proto/ header first), and the test checks that its
// error codes agree with proto/error.h.
#include <oxbow/oxbow.h>

int header_alone_ecorrupt(void);
int header_alone_eunreachable(void);
const char *header_alone_version(void);

int header_alone_ecorrupt(void)
{
	return OX_ECORRUPT;
}

int header_alone_eunreachable(void)
{
	return OX_EUNREACHABLE;
}

const char *header_alone_version(void)
{
	struct ox_message m = { .topic = "t", .partition = OX_PARTITION_ANY };

	(void)m;
	return ox_version();
}
