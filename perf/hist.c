// SPDX-License-Identifier: Apache-2.0
//
// Log-linear histogram (see hist.h). Values below 2^OX_HIST_SUB_BITS get
// exact buckets; above, the top OX_HIST_SUB_BITS bits below the leading one
// pick the sub-bucket.
#include "perf/hist.h"

#include <string.h>

#include "proto/assert.h"

#define SUB_COUNT (1u << OX_HIST_SUB_BITS)

static unsigned bucket_of(uint64_t v)
{
	if (v < SUB_COUNT)
		return (unsigned)v;
	unsigned msb = 63u - (unsigned)__builtin_clzll(v);
	unsigned shift = msb - OX_HIST_SUB_BITS;
	unsigned sub = (unsigned)(v >> shift) & (SUB_COUNT - 1);
	return (shift + 1) * SUB_COUNT + sub;
}

// The largest value that falls into bucket b.
static uint64_t bucket_top(unsigned b)
{
	if (b < SUB_COUNT)
		return b;
	unsigned shift = b / SUB_COUNT - 1;
	uint64_t base = (uint64_t)(SUB_COUNT + b % SUB_COUNT) << shift;
	return base + ((uint64_t)1 << shift) - 1;
}

void ox_hist_init(struct ox_hist *h)
{
	OX_ASSERT(h != NULL);
	memset(h, 0, sizeof(*h));
}

void ox_hist_record(struct ox_hist *h, uint64_t value_ns)
{
	unsigned b = bucket_of(value_ns);
	OX_ASSERT(b < OX_HIST_BUCKETS);
	h->counts[b]++;
	h->total++;
	if (value_ns > h->max)
		h->max = value_ns;
}

uint64_t ox_hist_quantile(const struct ox_hist *h, double q)
{
	OX_ASSERT(q >= 0.0 && q <= 1.0);
	if (h->total == 0)
		return 0;
	uint64_t rank = (uint64_t)(q * (double)h->total + 0.5);
	if (rank < 1)
		rank = 1;
	uint64_t seen = 0;
	for (unsigned b = 0; b < OX_HIST_BUCKETS; b++) {
		seen += h->counts[b];
		if (seen >= rank) {
			uint64_t top = bucket_top(b);
			return top < h->max ? top : h->max;
		}
	}
	return h->max;
}
