// SPDX-License-Identifier: Apache-2.0
//
// A log-linear latency histogram in the manner of HdrHistogram: values in
// nanoseconds, recorded in O(1) into fixed buckets with under 1% relative
// error, percentiles read back at the end. Fixed size, no allocation after
// init; the benchmarks record one value per batch or record.
#ifndef OX_PERF_HIST_H
#define OX_PERF_HIST_H

#include <stdint.h>

// 64 power-of-two ranges times 128 linear sub-buckets: every value of a
// uint64 has a bucket and the bucket width is under 1/128 of its value.
#define OX_HIST_SUB_BITS 7
#define OX_HIST_BUCKETS (64u << OX_HIST_SUB_BITS)

struct ox_hist {
	uint64_t counts[OX_HIST_BUCKETS];
	uint64_t total;
	uint64_t max;
};

void ox_hist_init(struct ox_hist *h);
void ox_hist_record(struct ox_hist *h, uint64_t value_ns);
// The value at quantile q in [0, 1] (upper edge of its bucket, capped at
// the largest value seen); 0 for an empty histogram.
uint64_t ox_hist_quantile(const struct ox_hist *h, double q);

#endif
