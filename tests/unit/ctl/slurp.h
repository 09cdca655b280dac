// SPDX-License-Identifier: Apache-2.0
//
// What the ctl unit tests share: reading back a redirected stream.
#ifndef OX_TESTS_UNIT_CTL_SLURP_H
#define OX_TESTS_UNIT_CTL_SLURP_H

#include <stdio.h>

// Everything the command wrote to the redirected stream (at most 64 KiB,
// NUL-terminated); the caller frees it.
char *ctl_slurp(FILE *f);

#endif
