// SPDX-License-Identifier: Apache-2.0
//
// What oxbow-bench's broker modes (produce, consume, e2e, failover) share: their
// flags, liboxbow configuration built from them, the topic they create
// when asked, the payload pool and the pacing of a fixed send rate. These
// modes measure a running broker through the public client API only.
#ifndef OX_PERF_BENCH_CLIENT_H
#define OX_PERF_BENCH_CLIENT_H

#include <stdint.h>

// proto/error.h first: oxbow.h then skips its copy of the error codes.
#include "proto/error.h"
#include <oxbow/oxbow.h>

// Payload bytes come from a random pool this much larger than a record,
// each record starting elsewhere in it, so batches differ from each other.
#define OX_BENCH_POOL_EXTRA 4096u
// The largest record a run may ask for: the broker's default
// message.max.bytes.
#define OX_BENCH_SIZE_MAX (1u << 20)

struct ox_bench_client_opts {
	const char *mode;
	const char *bootstrap;
	const char *topic;
	const char *acks;       // NULL: the library's default (all)
	const char *linger_ms;  // NULL: the library's default
	const char *batch_size; // NULL: the library's default
	const char *idempotence; // NULL: the library's default
	uint64_t records;
	uint64_t size;
	uint64_t rate;          // records per second; 0: as fast as possible
	uint64_t partitions;    // > 0: create the topic if it is missing
	uint64_t replicas;      // ... with this many replicas; 0: the broker's
	uint64_t timeout_s;     // give up after this long without progress
};

// Parses the flags of a broker mode. `needs` lists what the mode requires
// among 's' (--size) and 'r' (--rate); --topic and --records are always
// required. Prints usage and returns OX_BENCH_EXIT_USAGE on misuse, 0
// after --help (with *done set), or -1 to go on.
int ox_bench_client_parse(int argc, char **argv, const char *mode,
			  const char *needs, struct ox_bench_client_opts *o,
			  int *done);

// A configuration from the options (bootstrap, acks, linger, batch size),
// or NULL after printing why. The caller destroys it.
struct ox_conf *ox_bench_client_conf(const struct ox_bench_client_opts *o);

// Makes sure the topic exists (creating it with o->partitions and
// o->replicas when partitions is > 0 and it is missing) and returns its partition count. Returns the
// count or a negative error after printing it.
int ox_bench_client_topic(const struct ox_bench_client_opts *o);

// Fills a payload pool of size + OX_BENCH_POOL_EXTRA random bytes; NULL
// when out of memory. The caller frees it.
uint8_t *ox_bench_client_pool(uint64_t size);

// Sleeps until record i of a run started at start_ns is due at rate
// records per second (no-op at rate 0).
void ox_bench_client_pace(uint64_t start_ns, uint64_t i, uint64_t rate);

// Prints "oxbow-bench MODE: what: reason" on stderr.
void ox_bench_client_error(const struct ox_bench_client_opts *o,
			   const char *what, int err, const char *detail);

#endif
