// SPDX-License-Identifier: Apache-2.0
//
// `oxbow-bench e2e`: end-to-end latency. The main thread produces N
// records at --rate; a consumer thread in the same process, positioned at
// the end of every partition before the first send, reads them back. Each
// value starts with the CLOCK_MONOTONIC nanosecond it was handed to the
// producer and a tag of this run, so the consumer measures
// produce-to-consume latency with the same clock, and skips records of
// any other run. Reports the consumer's throughput, the latency
// percentiles, and the send-to-acknowledgement percentiles as extras.
// Not a test: it prints figures and judges nothing.
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "perf/bench.h"
#include "perf/bench_client.h"
#include "proto/assert.h"
#include "proto/varint.h"

// Each value begins with the send time (u64 LE) and the run tag (u64 LE).
#define E2E_HEADER_BYTES 16u
#define E2E_POLL_MAX 4096
#define E2E_POLL_WAIT_MS 100

_Static_assert(UINTPTR_MAX >= UINT64_MAX, "send times ride in a pointer");

struct e2e_run {
	const struct ox_bench_client_opts *o;
	struct ox_consumer *consumer;
	uint64_t tag;
	struct ox_hist latency;   // consumer thread only
	struct ox_hist ack;       // producer callback thread only
	atomic_uint_fast64_t received; // written by the consumer thread
	uint64_t bytes;
	uint64_t last_receive_ns;
	uint64_t stale;           // records of other runs skipped
	atomic_int consumer_err;
	atomic_int producer_err;
	atomic_int stop;          // main thread gives up on the consumer
};

static struct e2e_run *e2e_current;

static void e2e_delivered(void *opaque, int err, const char *topic,
			  int32_t partition, int64_t offset)
{
	struct e2e_run *run = e2e_current;
	if (err != 0) {
		int expected = 0;
		atomic_compare_exchange_strong(&run->producer_err, &expected,
					       err);
		return;
	}
	ox_hist_record(&run->ack, ox_bench_now_ns() - (uintptr_t)opaque);
}

static void take_record(struct e2e_run *run,
			const struct ox_consumer_record *r, uint64_t now)
{
	if (r->value == NULL || r->value_len < E2E_HEADER_BYTES ||
	    ox_load_le64((const uint8_t *)r->value + 8) != run->tag) {
		run->stale++;
		return;
	}
	uint64_t sent = ox_load_le64(r->value);
	ox_hist_record(&run->latency, now > sent ? now - sent : 0);
	atomic_fetch_add(&run->received, 1);
	run->bytes += r->key_len + r->value_len;
	run->last_receive_ns = now;
}

static void *e2e_consume(void *arg)
{
	struct e2e_run *run = arg;
	const struct ox_bench_client_opts *o = run->o;
	while (atomic_load(&run->received) < o->records &&
	       !atomic_load(&run->stop)) {
		const struct ox_consumer_record *recs = NULL;
		int n = ox_consumer_poll(run->consumer, E2E_POLL_WAIT_MS, &recs,
					 E2E_POLL_MAX);
		if (n < 0) {
			atomic_store(&run->consumer_err, n);
			break;
		}
		uint64_t now = ox_bench_now_ns();
		for (int i = 0; i < n; i++)
			take_record(run, &recs[i], now);
	}
	return NULL;
}

// Assigns every partition at its current end, found through the admin
// API so no record sent after this point can be missed.
static int position_at_end(struct e2e_run *run, int partitions)
{
	const struct ox_bench_client_opts *o = run->o;
	char errstr[256];
	struct ox_admin *admin = NULL;
	struct ox_conf *conf = ox_bench_client_conf(o);
	if (conf == NULL)
		return -EINVAL;
	int rc = ox_admin_create(&admin, conf, errstr, sizeof(errstr));
	ox_conf_destroy(conf);
	if (rc != 0) {
		ox_bench_client_error(o, "admin client", rc, errstr);
		return rc;
	}
	rc = ox_consumer_assign_topic(run->consumer, o->topic);
	for (int i = 0; rc == 0 && i < partitions; i++) {
		int64_t end = 0;
		rc = ox_admin_list_offsets(admin, o->topic, i, OX_OFFSET_END,
					   &end);
		if (rc == 0)
			rc = ox_consumer_seek(run->consumer, o->topic, i, end);
	}
	if (rc != 0)
		ox_bench_client_error(o, "positioning the consumer", rc,
				      ox_admin_last_error(admin));
	ox_admin_destroy(admin);
	return rc;
}

static int e2e_produce(struct e2e_run *run, struct ox_producer *p,
		       uint8_t *pool)
{
	const struct ox_bench_client_opts *o = run->o;
	uint8_t *value = malloc(o->size);
	if (value == NULL)
		return -ENOMEM;
	int rc = 0;
	uint64_t start = ox_bench_now_ns();
	for (uint64_t i = 0; i < o->records && rc == 0; i++) {
		ox_bench_client_pace(start, i, o->rate);
		rc = atomic_load(&run->producer_err);
		if (rc != 0)
			break;
		uint64_t now = ox_bench_now_ns();
		memcpy(value, pool + (i * 7919u) % OX_BENCH_POOL_EXTRA, o->size);
		ox_store_le64(value, now);
		ox_store_le64(value + 8, run->tag);
		struct ox_message m = {
			.topic = o->topic,
			.partition = OX_PARTITION_ANY,
			.value = value,
			.value_len = o->size,
			.cb = e2e_delivered,
			.opaque = (void *)(uintptr_t)now,
		};
		rc = ox_producer_send(p, &m);
	}
	free(value);
	int flushed = ox_producer_flush(p, -1);
	if (rc == 0)
		rc = flushed;
	if (rc == 0)
		rc = atomic_load(&run->producer_err);
	if (rc != 0)
		ox_bench_client_error(o, "produce", rc, NULL);
	return rc;
}

// Waits for the consumer to see every record, giving up after timeout_s
// without progress.
static void wait_for_consumer(struct e2e_run *run, pthread_t thread)
{
	uint64_t seen = 0, since = ox_bench_now_ns();
	while (!atomic_load(&run->stop)) {
		struct timespec ts = { 0, 20 * 1000 * 1000 };
		nanosleep(&ts, NULL);
		uint64_t got = atomic_load(&run->received);
		if (got >= run->o->records ||
		    atomic_load(&run->consumer_err) != 0)
			break;
		if (got != seen) {
			seen = got;
			since = ox_bench_now_ns();
		} else if (ox_bench_now_ns() - since >
			   run->o->timeout_s * 1000000000u) {
			atomic_store(&run->stop, 1);
		}
	}
	pthread_join(thread, NULL);
}

static void e2e_print(const struct e2e_run *run, uint64_t start_ns)
{
	char extra[256];
	snprintf(extra, sizeof(extra),
		 "\"rate\":%llu,\"acks\":\"%s\",\"ack_p50_ms\":%.3f,"
		 "\"ack_p99_ms\":%.3f",
		 (unsigned long long)run->o->rate,
		 run->o->acks != NULL ? run->o->acks : "all",
		 (double)ox_hist_quantile(&run->ack, 0.5) / 1e6,
		 (double)ox_hist_quantile(&run->ack, 0.99) / 1e6);
	struct ox_bench_result r = {
		.mode = "e2e",
		.records = run->received,
		.bytes = run->bytes,
		.seconds = (double)(run->last_receive_ns - start_ns) / 1e9,
		.latency = &run->latency,
	};
	ox_bench_print(&r, extra);
}

static int e2e_run_with(struct e2e_run *run, struct ox_producer *p,
			uint8_t *pool, int partitions)
{
	pthread_t thread;
	int rc = position_at_end(run, partitions);
	if (rc != 0)
		return rc;
	uint64_t start = ox_bench_now_ns();
	run->last_receive_ns = start;
	rc = pthread_create(&thread, NULL, e2e_consume, run);
	if (rc != 0) {
		fprintf(stderr, "oxbow-bench e2e: thread: %s\n", strerror(rc));
		return -rc;
	}
	rc = e2e_produce(run, p, pool);
	if (rc != 0)
		atomic_store(&run->stop, 1);
	wait_for_consumer(run, thread);
	if (rc != 0)
		return rc;
	if (run->consumer_err != 0) {
		ox_bench_client_error(run->o, "consume", run->consumer_err,
				      ox_consumer_last_error(run->consumer));
		return run->consumer_err;
	}
	if (run->received < run->o->records) {
		fprintf(stderr, "oxbow-bench e2e: consumed %llu of %llu records "
			"before %llu s without progress\n",
			(unsigned long long)run->received,
			(unsigned long long)run->o->records,
			(unsigned long long)run->o->timeout_s);
		return -ETIMEDOUT;
	}
	e2e_print(run, start);
	return 0;
}

int ox_bench_e2e(int argc, char **argv)
{
	struct ox_bench_client_opts o;
	struct ox_producer *p = NULL;
	char errstr[256];
	int done;
	int rc = ox_bench_client_parse(argc, argv, "e2e", "sr", &o, &done);
	if (rc >= 0)
		return done ? 0 : rc;
	if (o.size < E2E_HEADER_BYTES) {
		fprintf(stderr, "oxbow-bench e2e: --size must be at least %u\n",
			E2E_HEADER_BYTES);
		return OX_BENCH_EXIT_USAGE;
	}
	int partitions = ox_bench_client_topic(&o);
	if (partitions < 0)
		return OX_BENCH_EXIT_FAIL;

	struct e2e_run *run = calloc(1, sizeof(*run));
	uint8_t *pool = ox_bench_client_pool(o.size);
	struct ox_conf *conf = ox_bench_client_conf(&o);
	rc = -ENOMEM;
	if (run == NULL || pool == NULL || conf == NULL)
		goto out;
	run->o = &o;
	run->tag = ((uint64_t)random() << 32) ^ (uint64_t)random() ^
		   ox_bench_now_ns();
	ox_hist_init(&run->latency);
	ox_hist_init(&run->ack);
	e2e_current = run;
	rc = ox_consumer_create(&run->consumer, conf, errstr, sizeof(errstr));
	if (rc != 0) {
		ox_bench_client_error(&o, "consumer", rc, errstr);
		goto out;
	}
	rc = ox_producer_create(&p, conf, errstr, sizeof(errstr));
	if (rc != 0) {
		ox_bench_client_error(&o, "producer", rc, errstr);
		goto out;
	}
	rc = e2e_run_with(run, p, pool, partitions);
out:
	ox_producer_destroy(p);
	if (run != NULL)
		ox_consumer_destroy(run->consumer);
	ox_conf_destroy(conf);
	free(pool);
	free(run);
	return rc == 0 ? 0 : OX_BENCH_EXIT_FAIL;
}
