// SPDX-License-Identifier: Apache-2.0
//
// The consumer against the fake broker: decoding (control batches
// skipped, records below the position skipped, a corrupt batch stops the
// partition with -OX_ECORRUPT), positions from auto.offset.reset and
// committed offsets, seek, headers produced and consumed back, and group
// offsets routed to the group's coordinator.
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proto/error.h"
#include "client/include/oxbow/oxbow.h"
#include "proto/batch.h"
#include "tests/unit/client/fake_broker.h"

static struct fb *fb;
static struct ox_conf *conf;
static struct ox_consumer *c;

static void setup(void)
{
	char err[256];

	fb = fb_start("t", 2);
	conf = ox_conf_create();
	cr_assert_not_null(conf);
	cr_assert_eq(ox_conf_set(conf, "bootstrap.servers", fb->bootstrap, err,
				 sizeof(err)), 0);
	cr_assert_eq(ox_conf_set(conf, "auto.offset.reset", "earliest", err,
				 sizeof(err)), 0);
	c = NULL;
}

static void teardown(void)
{
	ox_consumer_destroy(c);
	ox_conf_destroy(conf);
	fb_stop(fb);
}

TestSuite(consumer, .init = setup, .fini = teardown, .timeout = 30);

static void append(uint32_t part, int64_t base, uint32_t n, bool control)
{
	uint8_t *b;
	size_t len = fb_make_batch(&b, base, n, control);

	fb_append_raw(fb, part, b, len, base, base + n - 1, n);
	free(b);
}

static void create(void)
{
	char err[256];

	cr_assert_eq(ox_consumer_create(&c, conf, err, sizeof(err)), 0, "%s",
		     err);
}

// Polls until `want` records came or a poll returns nothing.
static size_t drain(int64_t *offsets, size_t want, int *rc_out)
{
	const struct ox_consumer_record *r;
	size_t n = 0;
	int rc;

	while (n < want && (rc = ox_consumer_poll(c, 500, &r, 3)) > 0) {
		for (int i = 0; i < rc; i++) {
			char expect[32];
			snprintf(expect, sizeof(expect), "v%lld",
				 (long long)r[i].offset);
			cr_expect_eq(r[i].value_len, strlen(expect));
			cr_expect_eq(memcmp(r[i].value, expect, r[i].value_len),
				     0);
			cr_expect_null(r[i].key);
			offsets[n++] = r[i].offset;
		}
	}
	*rc_out = n < want ? rc : 0;
	return n;
}

Test(consumer, control_batches_are_skipped)
{
	int64_t off[32];
	int rc;

	append(0, 0, 5, false);
	append(0, 5, 1, true);
	append(0, 6, 4, false);
	create();
	struct ox_topic_partition tp = { .topic = "t", .partition = 0 };
	cr_assert_eq(ox_consumer_assign(c, &tp, 1), 0);
	size_t n = drain(off, 9, &rc);
	cr_assert_eq(n, 9, "rc %d", rc);
	for (size_t i = 0; i < 9; i++)
		cr_expect_eq(off[i], i < 5 ? (int64_t)i : (int64_t)i + 1);
	int64_t pos;
	cr_assert_eq(ox_consumer_position(c, "t", 0, &pos), 0);
	cr_expect_eq(pos, 10);
}

Test(consumer, records_below_the_position_are_skipped)
{
	int64_t off[32];
	int rc;

	append(0, 0, 10, false);
	create();
	struct ox_topic_partition tp = { .topic = "t", .partition = 0 };
	cr_assert_eq(ox_consumer_assign(c, &tp, 1), 0);
	cr_assert_eq(ox_consumer_seek(c, "t", 0, 7), 0);
	size_t n = drain(off, 3, &rc);
	cr_assert_eq(n, 3);
	cr_expect_eq(off[0], 7);
	cr_expect_eq(off[2], 9);
}

Test(consumer, corrupt_batch_stops_the_partition)
{
	int64_t off[32];
	uint8_t *b;
	int rc;

	append(0, 0, 4, false);
	size_t len = fb_make_batch(&b, 4, 3, false);
	b[len - 1] ^= 0x40; // a value byte: only the checksum notices
	fb_append_raw(fb, 0, b, len, 4, 6, 3);
	free(b);
	create();
	struct ox_topic_partition tp = { .topic = "t", .partition = 0 };
	cr_assert_eq(ox_consumer_assign(c, &tp, 1), 0);
	size_t n = drain(off, 100, &rc);
	cr_expect_eq(n, 4, "the good batch before it is returned");
	cr_expect_eq(rc, -OX_ECORRUPT);
	const struct ox_consumer_record *r;
	cr_expect_eq(ox_consumer_poll(c, 100, &r, 10), -OX_ECORRUPT,
		     "sticky until a seek");
	int64_t pos;
	cr_assert_eq(ox_consumer_position(c, "t", 0, &pos), 0);
	cr_expect_eq(pos, 4, "the position stays before the bad batch");
}

Test(consumer, latest_starts_at_the_end_and_none_refuses)
{
	char err[256];
	const struct ox_consumer_record *r;
	int64_t pos;

	append(0, 0, 3, false);
	cr_assert_eq(ox_conf_set(conf, "auto.offset.reset", "latest", err,
				 sizeof(err)), 0);
	create();
	struct ox_topic_partition tp = { .topic = "t", .partition = 0 };
	cr_assert_eq(ox_consumer_assign(c, &tp, 1), 0);
	cr_assert_eq(ox_consumer_position(c, "t", 0, &pos), 0);
	cr_expect_eq(pos, 3);
	cr_expect_eq(ox_consumer_poll(c, 50, &r, 10), 0);
	cr_assert_eq(ox_consumer_seek(c, "t", 0, OX_OFFSET_BEGINNING), 0);
	cr_expect_eq(ox_consumer_poll(c, 2000, &r, 10), 3);
	ox_consumer_destroy(c);
	c = NULL;

	cr_assert_eq(ox_conf_set(conf, "auto.offset.reset", "none", err,
				 sizeof(err)), 0);
	create();
	cr_expect_eq(ox_consumer_assign(c, &tp, 1), -OX_EOFFSET);
}

Test(consumer, committed_offsets_are_the_start)
{
	char err[256];
	int64_t off[8], got;
	int rc;

	append(1, 0, 6, false);
	cr_assert_eq(ox_conf_set(conf, "group.id", "g", err, sizeof(err)), 0);
	create();
	struct ox_topic_partition tp = { .topic = "t", .partition = 1,
					 .offset = 4 };
	cr_assert_eq(ox_consumer_commit(c, &tp, 1), 0);
	cr_assert_eq(ox_consumer_committed(c, "t", 1, &got), 0);
	cr_expect_eq(got, 4);
	cr_assert_eq(ox_consumer_assign(c, &tp, 1), 0);
	size_t n = drain(off, 2, &rc);
	cr_assert_eq(n, 2);
	cr_expect_eq(off[0], 4);
	cr_assert_eq(ox_consumer_commit(c, NULL, 0), 0);
	cr_expect_eq(fb->committed[1], 6);
}

static int async_err = 1;

static void on_commit(void *opaque, int err)
{
	*(int *)opaque = err;
}

Test(consumer, async_commit_runs_its_callback)
{
	char err[256];

	cr_assert_eq(ox_conf_set(conf, "group.id", "g", err, sizeof(err)), 0);
	create();
	struct ox_topic_partition tp = { .topic = "t", .partition = 0,
					 .offset = 2 };
	cr_assert_eq(ox_consumer_commit_async(c, &tp, 1, on_commit, &async_err),
		     0);
	ox_consumer_destroy(c);
	c = NULL;
	cr_expect_eq(async_err, 0);
	cr_expect_eq(fb->committed[0], 2);
}

Test(consumer, assign_checks_partitions)
{
	create();
	struct ox_topic_partition tp = { .topic = "t", .partition = 2 };
	cr_expect_eq(ox_consumer_assign(c, &tp, 1), -OX_EUNKNOWN_TOPIC);
	tp.topic = "other";
	tp.partition = 0;
	cr_expect_eq(ox_consumer_assign(c, &tp, 1), -OX_EUNKNOWN_TOPIC);
	cr_expect_eq(ox_consumer_assign_topic(c, "other"), -OX_EUNKNOWN_TOPIC);
	cr_expect_eq(ox_consumer_seek(c, "t", 0, 0), -EINVAL, "not assigned");
	cr_expect_eq(ox_consumer_commit(c, NULL, 0), -EINVAL, "no group.id");
}

Test(consumer, produced_headers_come_back)
{
	struct ox_producer *p = NULL;
	char err[256];
	struct ox_header h[2] = {
		{ .key = "trace", .value = "abc", .value_len = 3 },
		{ .key = "empty", .value = NULL },
	};
	struct ox_message m = { .topic = "t", .partition = 1, .key = "k",
				.key_len = 1, .value = "hello", .value_len = 5,
				.headers = h, .header_count = 2,
				.timestamp_ms = 12345 };

	cr_assert_eq(ox_producer_create(&p, conf, err, sizeof(err)), 0);
	cr_assert_eq(ox_producer_send(p, &m), 0);
	cr_assert_eq(ox_producer_flush(p, 10000), 0);
	ox_producer_destroy(p);
	create();
	cr_assert_eq(ox_consumer_assign_topic(c, "t"), 0);
	const struct ox_consumer_record *r;
	int n = ox_consumer_poll(c, 2000, &r, 10);
	cr_assert_eq(n, 1);
	cr_expect_eq(r[0].partition, 1);
	cr_expect_eq(r[0].offset, 0);
	cr_expect_eq(r[0].timestamp_ms, 12345);
	cr_expect_eq(r[0].key_len, 1);
	cr_expect_eq(memcmp(r[0].value, "hello", 5), 0);
	cr_assert_eq(r[0].header_count, 2);
	cr_expect_str_eq(r[0].headers[0].key, "trace");
	cr_expect_eq(r[0].headers[0].value_len, 3);
	cr_expect_eq(memcmp(r[0].headers[0].value, "abc", 3), 0);
	cr_expect_str_eq(r[0].headers[1].key, "empty");
	cr_expect_null(r[0].headers[1].value);
}

// Commits and committed offsets go to the group's coordinator, which the
// bootstrap broker names; a NOT_LEADER answer makes the client ask again
// and retry, and asynchronous commits follow the coordinator too.
Test(consumer, offsets_go_to_the_coordinator)
{
	struct fb *coord = fb_start("t", 2);
	char err[256];
	int64_t got = -5;

	pthread_mutex_lock(&fb->lock);
	fb->coordinator_port = coord->port;
	fb->coordinator_id = 2;
	pthread_mutex_unlock(&fb->lock);
	cr_assert_eq(ox_conf_set(conf, "group.id", "g", err, sizeof(err)), 0);
	cr_assert_eq(ox_conf_set(conf, "retry.backoff.ms", "10", err,
				 sizeof(err)), 0);
	create();
	struct ox_topic_partition tp = { .topic = "t", .partition = 1,
					 .offset = 9 };
	cr_assert_eq(ox_consumer_commit(c, &tp, 1), 0);
	cr_assert_eq(ox_consumer_committed(c, "t", 1, &got), 0);
	cr_expect_eq(got, 9);
	pthread_mutex_lock(&fb->lock);
	pthread_mutex_lock(&coord->lock);
	cr_expect_eq(coord->committed[1], 9);
	cr_expect_eq(fb->committed[1], -1, "the bootstrap broker got no commit");
	cr_expect_eq(fb->offset_requests, 0);
	cr_expect_eq(fb->find_coordinator_requests, 1, "the answer is kept");
	coord->offsets_not_leader = 2; // the coordinator moved (twice)
	pthread_mutex_unlock(&coord->lock);
	pthread_mutex_unlock(&fb->lock);

	tp.offset = 11;
	cr_assert_eq(ox_consumer_commit(c, &tp, 1), 0);
	pthread_mutex_lock(&fb->lock);
	pthread_mutex_lock(&coord->lock);
	cr_expect_eq(coord->committed[1], 11);
	cr_expect_eq(coord->offset_requests, 5);
	cr_expect_eq(fb->find_coordinator_requests, 3);
	pthread_mutex_unlock(&coord->lock);
	pthread_mutex_unlock(&fb->lock);

	tp.offset = 12;
	cr_assert_eq(ox_consumer_commit_async(c, &tp, 1, on_commit, &async_err),
		     0);
	ox_consumer_destroy(c);
	c = NULL;
	cr_expect_eq(async_err, 0);
	cr_expect_eq(coord->committed[1], 12);
	cr_expect_eq(fb->committed[1], -1);
	fb_stop(coord);
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

// A coordinator that keeps answering NOT_LEADER fails the commit with the
// retriable error once the next backoff would pass request.timeout.ms.
Test(consumer, coordinator_retries_end_at_the_request_timeout)
{
	struct fb *coord = fb_start("t", 2);
	char err[256];

	pthread_mutex_lock(&fb->lock);
	fb->coordinator_port = coord->port;
	fb->coordinator_id = 2;
	pthread_mutex_unlock(&fb->lock);
	pthread_mutex_lock(&coord->lock);
	coord->offsets_not_leader = 1 << 30;
	pthread_mutex_unlock(&coord->lock);
	cr_assert_eq(ox_conf_set(conf, "group.id", "g", err, sizeof(err)), 0);
	cr_assert_eq(ox_conf_set(conf, "request.timeout.ms", "300", err,
				 sizeof(err)), 0);
	cr_assert_eq(ox_conf_set(conf, "retry.backoff.ms", "20", err,
				 sizeof(err)), 0);
	create();
	struct ox_topic_partition tp = { .topic = "t", .partition = 0,
					 .offset = 3 };
	int64_t t0 = mono_ms();
	cr_expect_eq(ox_consumer_commit(c, &tp, 1), -OX_ENOTLEADER);
	int64_t took = mono_ms() - t0;
	cr_expect(took >= 100 && took <= 1500, "took %lld ms", (long long)took);
	pthread_mutex_lock(&coord->lock);
	cr_expect_gt(coord->offset_requests, 2);
	cr_expect_eq(coord->committed[0], -1);
	pthread_mutex_unlock(&coord->lock);
	ox_consumer_destroy(c);
	c = NULL;
	fb_stop(coord);
}
