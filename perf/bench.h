// SPDX-License-Identifier: Apache-2.0
//
// Shared helpers of oxbow-bench's modes: flag parsing, clocks and the JSON
// result line every mode prints last (INTERFACES.md).
#ifndef OX_PERF_BENCH_H
#define OX_PERF_BENCH_H

#include <stdint.h>

#include "perf/hist.h"

// Exit codes: 0 success, 1 the run failed, 2 misuse.
#define OX_BENCH_EXIT_FAIL 1
#define OX_BENCH_EXIT_USAGE 2

struct ox_bench_result {
	const char *mode;
	uint64_t records;
	uint64_t bytes;   // record payload bytes (keys and values)
	double seconds;
	const struct ox_hist *latency; // NULL when the mode measures none
};

uint64_t ox_bench_now_ns(void);

// Parses a non-negative decimal integer, optionally suffixed "k" (x1000)
// or "m" (x1000000). Returns 0 or -EINVAL.
int ox_bench_parse_u64(const char *s, uint64_t *out);

// Prints the result line, with `extra` (already JSON: `"k":v,...` or "")
// appended inside the object.
void ox_bench_print(const struct ox_bench_result *r, const char *extra);

// The modes; each returns the process's exit code.
int ox_bench_log(int argc, char **argv);
// Broker modes, through liboxbow.
int ox_bench_produce(int argc, char **argv);
int ox_bench_consume(int argc, char **argv);
int ox_bench_e2e(int argc, char **argv);
int ox_bench_failover(int argc, char **argv);

#endif
