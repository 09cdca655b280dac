// SPDX-License-Identifier: Apache-2.0
//
// The fuzz input as a stream of bytes that harnesses draw their choices
// from; past its end every byte reads as 0, so any input drives a whole
// run. Header only: each harness compiles its own copy.
#ifndef OX_TESTS_FUZZ_FUZZ_INPUT_H
#define OX_TESTS_FUZZ_FUZZ_INPUT_H

#include <stddef.h>
#include <stdint.h>

struct input {
	const uint8_t *p;
	size_t n;
};

static inline uint8_t take(struct input *in)
{
	uint8_t b;

	if (in->n == 0)
		return 0;
	b = *in->p++;
	in->n--;
	return b;
}

#endif
