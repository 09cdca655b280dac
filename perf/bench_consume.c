// SPDX-License-Identifier: Apache-2.0
//
// `oxbow-bench consume`: reads N records from the beginning of every
// partition of a topic through a liboxbow consumer (no group, checksums
// verified as the library does by default) and reports the throughput
// from assignment to the Nth record. The topic must already hold N
// records (`oxbow-bench produce` writes them). Not a test: it prints
// figures and judges nothing.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "perf/bench.h"
#include "perf/bench_client.h"
#include "proto/assert.h"

// Records taken from one poll at most.
#define CONSUME_POLL_MAX 4096
// One poll waits this long at most, so the no-progress deadline is
// checked often.
#define CONSUME_POLL_WAIT_MS 200

static int seek_all_to_beginning(const struct ox_bench_client_opts *o,
				 struct ox_consumer *c, int partitions)
{
	int rc = ox_consumer_assign_topic(c, o->topic);
	if (rc != 0) {
		ox_bench_client_error(o, "assign", rc,
				      ox_consumer_last_error(c));
		return rc;
	}
	for (int i = 0; i < partitions; i++) {
		rc = ox_consumer_seek(c, o->topic, i, OX_OFFSET_BEGINNING);
		if (rc != 0) {
			ox_bench_client_error(o, "seek", rc,
					      ox_consumer_last_error(c));
			return rc;
		}
	}
	return 0;
}

// Polls until N records; fills *bytes and returns 0 or an error.
static int read_all(const struct ox_bench_client_opts *o,
		    struct ox_consumer *c, uint64_t *records, uint64_t *bytes)
{
	uint64_t last_progress = ox_bench_now_ns();
	while (*records < o->records) {
		const struct ox_consumer_record *recs = NULL;
		uint64_t left = o->records - *records;
		size_t max = left < CONSUME_POLL_MAX ? (size_t)left
						     : CONSUME_POLL_MAX;
		int n = ox_consumer_poll(c, CONSUME_POLL_WAIT_MS, &recs, max);
		if (n < 0) {
			ox_bench_client_error(o, "poll", n,
					      ox_consumer_last_error(c));
			return n;
		}
		for (int i = 0; i < n; i++)
			*bytes += recs[i].key_len + recs[i].value_len;
		*records += (uint64_t)n;
		uint64_t now = ox_bench_now_ns();
		if (n > 0) {
			last_progress = now;
		} else if (now - last_progress > o->timeout_s * 1000000000u) {
			fprintf(stderr, "oxbow-bench consume: only %llu of %llu "
				"records after %llu s without progress\n",
				(unsigned long long)*records,
				(unsigned long long)o->records,
				(unsigned long long)o->timeout_s);
			return -ETIMEDOUT;
		}
	}
	return 0;
}

int ox_bench_consume(int argc, char **argv)
{
	struct ox_bench_client_opts o;
	struct ox_consumer *c = NULL;
	char errstr[256];
	int done;
	int rc = ox_bench_client_parse(argc, argv, "consume", "", &o, &done);
	if (rc >= 0)
		return done ? 0 : rc;
	int partitions = ox_bench_client_topic(&o);
	if (partitions < 0)
		return OX_BENCH_EXIT_FAIL;
	struct ox_conf *conf = ox_bench_client_conf(&o);
	if (conf == NULL)
		return OX_BENCH_EXIT_FAIL;
	char errset[256];
	rc = ox_conf_set(conf, "auto.offset.reset", "earliest", errset,
			 sizeof(errset));
	OX_ASSERT(rc == 0);
	rc = ox_consumer_create(&c, conf, errstr, sizeof(errstr));
	ox_conf_destroy(conf);
	if (rc != 0) {
		ox_bench_client_error(&o, "consumer", rc, errstr);
		return OX_BENCH_EXIT_FAIL;
	}

	uint64_t records = 0, bytes = 0;
	uint64_t start = ox_bench_now_ns();
	rc = seek_all_to_beginning(&o, c, partitions);
	if (rc == 0)
		rc = read_all(&o, c, &records, &bytes);
	double seconds = (double)(ox_bench_now_ns() - start) / 1e9;
	ox_consumer_destroy(c);
	if (rc != 0)
		return OX_BENCH_EXIT_FAIL;

	char extra[64];
	snprintf(extra, sizeof(extra), "\"partitions\":%d", partitions);
	struct ox_bench_result r = {
		.mode = "consume",
		.records = records,
		.bytes = bytes,
		.seconds = seconds,
	};
	ox_bench_print(&r, extra);
	return 0;
}
