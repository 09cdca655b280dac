// SPDX-License-Identifier: Apache-2.0
//
// oxbow-bench: measures Oxbow's layers and prints one JSON line per run
// (INTERFACES.md). This file holds the mode dispatch and the helpers the
// modes share; each mode lives in its own bench_<mode>.c.
#include "perf/bench.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proto/assert.h"

uint64_t ox_bench_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int ox_bench_parse_u64(const char *s, uint64_t *out)
{
	char *end = NULL;
	if (s == NULL || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno != 0)
		return -EINVAL;
	uint64_t mul = 1;
	if (*end == 'k')
		mul = 1000, end++;
	else if (*end == 'm')
		mul = 1000000, end++;
	if (*end != '\0' || (mul > 1 && v > UINT64_MAX / mul))
		return -EINVAL;
	*out = (uint64_t)v * mul;
	return 0;
}

void ox_bench_print(const struct ox_bench_result *r, const char *extra)
{
	OX_ASSERT(r != NULL && r->mode != NULL);
	double secs = r->seconds > 0 ? r->seconds : 1e-9;
	printf("{\"mode\":\"%s\",\"records\":%" PRIu64 ",\"bytes\":%" PRIu64
	       ",\"seconds\":%.3f,\"records_per_s\":%.0f,\"mb_per_s\":%.1f",
	       r->mode, r->records, r->bytes, r->seconds,
	       (double)r->records / secs, (double)r->bytes / secs / 1e6);
	if (r->latency != NULL) {
		printf(",\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"p999_ms\":%.3f",
		       (double)ox_hist_quantile(r->latency, 0.5) / 1e6,
		       (double)ox_hist_quantile(r->latency, 0.99) / 1e6,
		       (double)ox_hist_quantile(r->latency, 0.999) / 1e6);
	}
	if (extra != NULL && extra[0] != '\0')
		printf(",%s", extra);
	printf("}\n");
	fflush(stdout);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: oxbow-bench MODE [flags]\n"
		"modes:\n"
		"  log --dir D --records N --size B   append through the partition log\n"
		"      [--read] [--batch-records K] [--fsync always|interval]\n"
		"      [--io uring|sync] [--inflight-mb M] [--segment-mb S] [--cold]\n"
		"  produce --bootstrap L --topic T --records N --size B\n"
		"      [--acks all|leader|none] [--rate R]   producer throughput, send-to-ack latency\n"
		"  consume --bootstrap L --topic T --records N   read N records from the beginning\n"
		"  e2e --bootstrap L --topic T --records N --size B --rate R\n"
		"      produce-to-consume latency at a fixed rate\n"
		"  failover --bootstrap L --topic T --pid-file-pattern P [--rate R]\n"
		"      SIGKILL partition 0's leader; time from the kill to the\n"
		"      first write a new leader acknowledges\n"
		"run `oxbow-bench MODE --help` for a mode's flags.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return OX_BENCH_EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "log") == 0)
		return ox_bench_log(argc - 1, argv + 1);
	if (strcmp(argv[1], "produce") == 0)
		return ox_bench_produce(argc - 1, argv + 1);
	if (strcmp(argv[1], "consume") == 0)
		return ox_bench_consume(argc - 1, argv + 1);
	if (strcmp(argv[1], "e2e") == 0)
		return ox_bench_e2e(argc - 1, argv + 1);
	if (strcmp(argv[1], "failover") == 0)
		return ox_bench_failover(argc - 1, argv + 1);
	fprintf(stderr, "oxbow-bench: unknown mode '%s'\n", argv[1]);
	usage(stderr);
	return OX_BENCH_EXIT_USAGE;
}
