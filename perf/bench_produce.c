// SPDX-License-Identifier: Apache-2.0
//
// `oxbow-bench produce`: N keyless records of B bytes sent through a
// liboxbow producer to a running broker, as fast as the producer takes
// them or at --rate. It reports throughput from the first send to the
// last acknowledgement and the latency from each send to its delivery
// callback (batching linger included, as an application sees it). Not a
// test: it prints figures and judges nothing.
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "perf/bench.h"
#include "perf/bench_client.h"
#include "proto/assert.h"

// The send time travels to the callback in the opaque pointer: no table of
// timestamps, whatever N is.
_Static_assert(UINTPTR_MAX >= UINT64_MAX, "send times ride in a pointer");

struct produce_run {
	struct ox_hist hist;        // written by the callback thread only
	atomic_uint_fast64_t acked;
	atomic_uint_fast64_t failed;
	atomic_int first_err;
};

// One run per process: the callback finds it here.
static struct produce_run *produce_current;

static void produce_delivered(void *opaque, int err, const char *topic,
			      int32_t partition, int64_t offset)
{
	struct produce_run *run = produce_current;
	if (err != 0) {
		int expected = 0;
		atomic_compare_exchange_strong(&run->first_err, &expected, err);
		atomic_fetch_add(&run->failed, 1);
		return;
	}
	ox_hist_record(&run->hist, ox_bench_now_ns() - (uintptr_t)opaque);
	atomic_fetch_add(&run->acked, 1);
}

static int send_all(const struct ox_bench_client_opts *o,
		    struct ox_producer *p, const uint8_t *pool,
		    struct produce_run *run)
{
	uint64_t start = ox_bench_now_ns();
	for (uint64_t i = 0; i < o->records; i++) {
		ox_bench_client_pace(start, i, o->rate);
		if (atomic_load(&run->first_err) != 0)
			return atomic_load(&run->first_err);
		struct ox_message m = {
			.topic = o->topic,
			.partition = OX_PARTITION_ANY,
			.value = pool + (i * 7919u) % OX_BENCH_POOL_EXTRA,
			.value_len = o->size,
			.cb = produce_delivered,
			.opaque = (void *)(uintptr_t)ox_bench_now_ns(),
		};
		int rc = ox_producer_send(p, &m);
		if (rc != 0) {
			ox_bench_client_error(o, "send", rc, NULL);
			return rc;
		}
	}
	return 0;
}

int ox_bench_produce(int argc, char **argv)
{
	struct ox_bench_client_opts o;
	struct ox_producer *p = NULL;
	char errstr[256];
	int done;
	int rc = ox_bench_client_parse(argc, argv, "produce", "s", &o, &done);
	if (rc >= 0)
		return done ? 0 : rc;
	if (ox_bench_client_topic(&o) < 0)
		return OX_BENCH_EXIT_FAIL;

	struct produce_run *run = calloc(1, sizeof(*run));
	uint8_t *pool = ox_bench_client_pool(o.size);
	struct ox_conf *conf = ox_bench_client_conf(&o);
	if (run == NULL || pool == NULL || conf == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	ox_hist_init(&run->hist);
	produce_current = run;
	rc = ox_producer_create(&p, conf, errstr, sizeof(errstr));
	if (rc != 0) {
		ox_bench_client_error(&o, "producer", rc, errstr);
		goto out;
	}

	uint64_t start = ox_bench_now_ns();
	rc = send_all(&o, p, pool, run);
	int flushed = ox_producer_flush(p, -1);
	double seconds = (double)(ox_bench_now_ns() - start) / 1e9;
	// Destroying the producer joins its thread: the histogram is ours.
	ox_producer_destroy(p);
	p = NULL;
	if (rc == 0)
		rc = flushed;
	if (rc == 0)
		rc = atomic_load(&run->first_err);
	if (rc != 0) {
		ox_bench_client_error(&o, "delivery", rc, NULL);
		goto out;
	}

	char extra[128];
	snprintf(extra, sizeof(extra), "\"acks\":\"%s\",\"rate\":%llu",
		 o.acks != NULL ? o.acks : "all", (unsigned long long)o.rate);
	uint64_t acked = atomic_load(&run->acked);
	struct ox_bench_result r = {
		.mode = "produce",
		.records = acked,
		.bytes = acked * o.size,
		.seconds = seconds,
		.latency = &run->hist,
	};
	ox_bench_print(&r, extra);
out:
	ox_producer_destroy(p);
	ox_conf_destroy(conf);
	free(pool);
	free(run);
	return rc == 0 ? 0 : OX_BENCH_EXIT_FAIL;
}
