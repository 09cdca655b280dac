// SPDX-License-Identifier: Apache-2.0
//
// The producer against the fake broker: how records group into batches,
// the partitioner, retries and final errors, the buffer limit.
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "proto/error.h"
#include "client/include/oxbow/oxbow.h"
#include "proto/batch.h"
#include "proto/wire.h"
#include "tests/unit/client/fake_broker.h"

#define DL_MAX 20000

// Delivery reports, indexed by the opaque (the send order).
struct dl {
	pthread_mutex_t lock;
	int calls[DL_MAX];
	int err[DL_MAX];
	int32_t partition[DL_MAX];
	int64_t offset[DL_MAX];
	size_t total;
};

static struct dl dl = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void on_dl(void *opaque, int err, const char *topic, int32_t partition,
		  int64_t offset)
{
	size_t i = (size_t)(uintptr_t)opaque;

	pthread_mutex_lock(&dl.lock);
	// Criterion asserts belong on the test's thread: record and check
	// there.
	if (strcmp(topic, "t") != 0)
		err = -9999;
	dl.calls[i]++;
	dl.err[i] = err;
	dl.partition[i] = partition;
	dl.offset[i] = offset;
	dl.total++;
	pthread_mutex_unlock(&dl.lock);
}

static struct fb *fb;
static struct ox_conf *conf;

static void setup(void)
{
	memset(dl.calls, 0, sizeof(dl.calls));
	dl.total = 0;
	conf = ox_conf_create();
	cr_assert_not_null(conf);
}

static void teardown(void)
{
	ox_conf_destroy(conf);
	if (fb != NULL)
		fb_stop(fb);
	fb = NULL;
}

TestSuite(producer, .init = setup, .fini = teardown, .timeout = 30);

static void cset(const char *k, const char *v)
{
	char err[256];

	cr_assert_eq(ox_conf_set(conf, k, v, err, sizeof(err)), 0, "%s", err);
}

static struct ox_producer *start(uint32_t partitions)
{
	struct ox_producer *p = NULL;
	char err[256];

	fb = fb_start("t", partitions);
	cset("bootstrap.servers", fb->bootstrap);
	cr_assert_eq(ox_producer_create(&p, conf, err, sizeof(err)), 0, "%s",
		     err);
	return p;
}

static int send_one(struct ox_producer *p, size_t i, int32_t partition,
		    const char *key, size_t value_len)
{
	char value[256];
	struct ox_message m = {
		.topic = "t",
		.partition = partition,
		.key = key,
		.key_len = key != NULL ? strlen(key) : 0,
		.value = value,
		.value_len = value_len,
		.cb = on_dl,
		.opaque = (void *)(uintptr_t)i,
	};

	cr_assert(value_len <= sizeof(value));
	memset(value, 'a', value_len);
	snprintf(value, sizeof(value), "%zu", i);
	if (value_len < strlen(value))
		m.value_len = strlen(value);
	return ox_producer_send(p, &m);
}

// The values ("<send index>") of the records stored in one partition, in
// offset order.
static size_t stored_values(uint32_t part, long *out, size_t max,
			    size_t *batches)
{
	size_t n = 0;

	pthread_mutex_lock(&fb->lock);
	*batches = fb->parts[part].n;
	for (size_t b = 0; b < fb->parts[part].n; b++) {
		struct ox_batch_iter it;
		struct ox_record r;
		cr_assert_eq(ox_batch_iter_init(&it, fb->parts[part].batches[b].bytes,
						fb->parts[part].batches[b].len), 0);
		while (ox_batch_iter_next(&it, &r) == 1 && n < max)
			out[n++] = strtol((const char *)r.value, NULL, 10);
	}
	pthread_mutex_unlock(&fb->lock);
	return n;
}

Test(producer, flush_sends_one_batch_when_linger_is_long)
{
	long vals[64];
	size_t nb;

	cset("linger.ms", "600000");
	struct ox_producer *p = start(1);
	for (size_t i = 0; i < 10; i++)
		cr_assert_eq(send_one(p, i, OX_PARTITION_ANY, NULL, 20), 0);
	cr_expect_eq(ox_producer_pending(p), 10);
	cr_assert_eq(ox_producer_flush(p, 10000), 0);
	cr_expect_eq(ox_producer_pending(p), 0);
	cr_assert_eq(stored_values(0, vals, 64, &nb), 10);
	cr_expect_eq(nb, 1, "linger: all ten records in one batch");
	for (size_t i = 0; i < 10; i++) {
		cr_expect_eq(vals[i], (long)i);
		cr_expect_eq(dl.calls[i], 1);
		cr_expect_eq(dl.err[i], 0);
		cr_expect_eq(dl.offset[i], (int64_t)i);
	}
	ox_producer_destroy(p);
}

Test(producer, batch_size_splits_batches_in_order)
{
	enum { N = 500 };
	static long vals[N];
	size_t nb;

	cset("linger.ms", "600000");
	cset("batch.size", "1024");
	struct ox_producer *p = start(1);
	for (size_t i = 0; i < N; i++)
		cr_assert_eq(send_one(p, i, 0, NULL, 100), 0);
	cr_assert_eq(ox_producer_flush(p, 10000), 0);
	cr_assert_eq(stored_values(0, vals, N, &nb), N);
	// About nine 100-byte records fit 1024 bytes: many batches, each
	// within batch.size, order kept.
	cr_expect_geq(nb, N * 100 / 1024);
	pthread_mutex_lock(&fb->lock);
	for (size_t b = 0; b < fb->parts[0].n; b++)
		cr_expect_leq(fb->parts[0].batches[b].len, 1024);
	cr_expect_eq(fb->bad_batches, 0);
	pthread_mutex_unlock(&fb->lock);
	for (size_t i = 0; i < N; i++) {
		cr_expect_eq(vals[i], (long)i);
		cr_expect_eq(dl.offset[i], (int64_t)i);
	}
	ox_producer_destroy(p);
}

Test(producer, keys_follow_the_partitioner)
{
	char key[32];

	struct ox_producer *p = start(4);
	for (size_t i = 0; i < 200; i++) {
		snprintf(key, sizeof(key), "key-%zu", i);
		cr_assert_eq(send_one(p, i, OX_PARTITION_ANY, key, 10), 0);
	}
	cr_assert_eq(ox_producer_flush(p, 10000), 0);
	for (size_t i = 0; i < 200; i++) {
		snprintf(key, sizeof(key), "key-%zu", i);
		cr_expect_eq(dl.calls[i], 1);
		cr_expect_eq(dl.partition[i],
			     (int32_t)ox_partition_for_key(key, strlen(key), 4));
	}
	ox_producer_destroy(p);
}

Test(producer, explicit_partition_wins_and_is_checked)
{
	struct ox_producer *p = start(4);

	for (size_t i = 0; i < 20; i++)
		cr_assert_eq(send_one(p, i, 3, "some-key", 10), 0);
	cr_expect_eq(send_one(p, 99, 4, NULL, 10), -OX_EUNKNOWN_TOPIC);
	cr_expect_eq(send_one(p, 99, -7, NULL, 10), -EINVAL);
	cr_assert_eq(ox_producer_flush(p, 10000), 0);
	for (size_t i = 0; i < 20; i++)
		cr_expect_eq(dl.partition[i], 3);
	cr_expect_eq(dl.calls[99], 0);
	ox_producer_destroy(p);
}

Test(producer, keyless_records_rotate_per_batch)
{
	enum { N = 300 };
	int used[4] = { 0 };
	size_t runs = 1;

	cset("linger.ms", "600000");
	cset("batch.size", "1024");
	struct ox_producer *p = start(4);
	for (size_t i = 0; i < N; i++)
		cr_assert_eq(send_one(p, i, OX_PARTITION_ANY, NULL, 100), 0);
	cr_assert_eq(ox_producer_flush(p, 10000), 0);
	for (size_t i = 0; i < N; i++) {
		cr_assert_eq(dl.err[i], 0);
		used[dl.partition[i]]++;
		if (i > 0 && dl.partition[i] != dl.partition[i - 1])
			runs++;
	}
	// Runs of one partition as long as a batch, moving on each time.
	for (int k = 0; k < 4; k++)
		cr_expect_gt(used[k], 0, "partition %d never used", k);
	cr_expect_geq(runs, N * 100 / 1024 - 1);
	cr_expect_leq(runs, N / 5);
	ox_producer_destroy(p);
}

Test(producer, not_leader_is_retried_and_delivered_once)
{
	cset("retry.backoff.ms", "1");
	struct ox_producer *p = start(1);
	fb->produce_fail_code = 5; // NOT_LEADER
	fb->produce_fail_times = 2;
	cr_assert_eq(send_one(p, 0, 0, NULL, 10), 0);
	cr_assert_eq(ox_producer_flush(p, 10000), 0);
	cr_expect_eq(dl.calls[0], 1);
	cr_expect_eq(dl.err[0], 0);
	cr_expect_eq(dl.offset[0], 0);
	pthread_mutex_lock(&fb->lock);
	cr_expect_eq(fb->parts[0].n, 1, "stored exactly once");
	cr_expect_eq(fb->produce_requests, 3);
	cr_expect_geq(fb->metadata_requests, 2, "NOT_LEADER refreshes metadata");
	pthread_mutex_unlock(&fb->lock);
	ox_producer_destroy(p);
}

Test(producer, non_retriable_error_fails_the_records)
{
	struct ox_producer *p = start(1);
	fb->produce_fail_code = 3; // MESSAGE_TOO_LARGE
	fb->produce_fail_times = -1;
	for (size_t i = 0; i < 5; i++)
		cr_assert_eq(send_one(p, i, 0, NULL, 10), 0);
	cr_assert_eq(ox_producer_flush(p, 10000), 0);
	for (size_t i = 0; i < 5; i++) {
		cr_expect_eq(dl.calls[i], 1);
		cr_expect_eq(dl.err[i], -OX_ETOOBIG);
		cr_expect_eq(dl.offset[i], -1);
	}
	cr_expect_eq(fb->produce_requests, 1, "not retried");
	ox_producer_destroy(p);
}

Test(producer, delivery_timeout_gives_up)
{
	cset("retry.backoff.ms", "5");
	cset("retry.backoff.max.ms", "20");
	cset("delivery.timeout.ms", "200");
	struct ox_producer *p = start(1);
	fb->produce_fail_code = 21; // SHUTTING_DOWN, retriable
	fb->produce_fail_times = -1;
	cr_assert_eq(send_one(p, 0, 0, NULL, 10), 0);
	cr_assert_eq(ox_producer_flush(p, 20000), 0);
	cr_expect_eq(dl.calls[0], 1);
	cr_expect(dl.err[0] == -OX_ESHUTDOWN || dl.err[0] == -ETIMEDOUT,
		  "err %d", dl.err[0]);
	cr_expect_gt(fb->produce_requests, 1, "retried before giving up");
	ox_producer_destroy(p);
}

Test(producer, retries_zero_fails_at_first_error)
{
	cset("retries", "0");
	struct ox_producer *p = start(1);
	fb->produce_fail_code = 5;
	fb->produce_fail_times = -1;
	cr_assert_eq(send_one(p, 0, 0, NULL, 10), 0);
	cr_assert_eq(ox_producer_flush(p, 10000), 0);
	cr_expect_eq(dl.err[0], -OX_ENOTLEADER);
	cr_expect_eq(fb->produce_requests, 1);
	ox_producer_destroy(p);
}

Test(producer, full_buffer_blocks_then_fails)
{
	size_t i, sent = 0;
	int rc = 0;

	cset("batch.size", "4096");
	cset("buffer.memory", "32768");
	cset("max.block.ms", "50");
	cset("linger.ms", "0");
	cset("delivery.timeout.ms", "300");
	cset("request.timeout.ms", "200");
	struct ox_producer *p = start(1);
	fb->produce_silent = true;
	for (i = 0; i < 10000; i++) {
		rc = send_one(p, i, 0, NULL, 100);
		if (rc < 0)
			break;
		sent++;
	}
	cr_expect_eq(rc, -ENOBUFS);
	// 32 KiB of 4 KiB batches hold a few hundred 100-byte records.
	cr_expect_leq(sent, 32768 / 100);
	cr_expect_leq(ox_producer_pending(p), sent);
	ox_producer_destroy(p);
	for (size_t j = 0; j < sent; j++) {
		cr_expect_eq(dl.calls[j], 1);
		cr_expect_neq(dl.err[j], 0);
	}
}

Test(producer, acks_none_completes_without_offsets)
{
	cset("acks", "none");
	struct ox_producer *p = start(1);
	for (size_t i = 0; i < 10; i++)
		cr_assert_eq(send_one(p, i, 0, NULL, 10), 0);
	cr_assert_eq(ox_producer_flush(p, 10000), 0);
	for (size_t i = 0; i < 10; i++) {
		cr_expect_eq(dl.calls[i], 1);
		cr_expect_eq(dl.err[i], 0);
		cr_expect_eq(dl.offset[i], -1);
	}
	ox_producer_destroy(p);
}

Test(producer, unknown_topic_and_bad_messages)
{
	struct ox_producer *p = start(1);
	struct ox_message m = { .topic = "nope", .partition = OX_PARTITION_ANY };

	cr_expect_eq(ox_producer_send(p, &m), -OX_EUNKNOWN_TOPIC);
	m.topic = NULL;
	cr_expect_eq(ox_producer_send(p, &m), -EINVAL);
	m.topic = "t";
	m.value_len = 5;
	cr_expect_eq(ox_producer_send(p, &m), -EINVAL, "NULL value, length 5");
	cr_expect_eq(ox_producer_send(p, NULL), -EINVAL);
	ox_producer_destroy(p);
	ox_producer_destroy(NULL);
}

Test(producer, too_big_record)
{
	static char big[70000];
	cset("max.request.size", "65536");
	struct ox_producer *p = start(1);
	struct ox_message m = { .topic = "t", .partition = 0, .value = big,
				.value_len = sizeof(big) };

	cr_expect_eq(ox_producer_send(p, &m), -OX_ETOOBIG);
	ox_producer_destroy(p);
}

Test(producer, unreachable_bootstrap_times_out)
{
	struct ox_producer *p = NULL;
	char err[256];

	cset("bootstrap.servers", "127.0.0.1:1");
	cset("max.block.ms", "100");
	cset("retry.backoff.ms", "10");
	cr_assert_eq(ox_producer_create(&p, conf, err, sizeof(err)), 0);
	struct ox_message m = { .topic = "t", .partition = OX_PARTITION_ANY };
	cr_expect_eq(ox_producer_send(p, &m), -ETIMEDOUT);
	ox_producer_destroy(p);
}

// The producer fields of stored batch b of partition part.
static struct ox_batch_header stored_header(uint32_t part, size_t b)
{
	struct ox_batch_header h;

	pthread_mutex_lock(&fb->lock);
	cr_assert_lt(b, fb->parts[part].n);
	cr_assert_eq(ox_batch_verify(fb->parts[part].batches[b].bytes,
				     fb->parts[part].batches[b].len, &h), 0);
	pthread_mutex_unlock(&fb->lock);
	return h;
}

Test(producer, idempotent_batches_are_numbered_per_partition)
{
	struct ox_producer *p = start(2);
	size_t i = 0;

	pthread_mutex_lock(&fb->lock);
	fb->producer_id = 77;
	pthread_mutex_unlock(&fb->lock);
	for (; i < 3; i++)
		cr_assert_eq(send_one(p, i, 0, NULL, 10), 0);
	cr_assert_eq(ox_producer_flush(p, 10000), 0);
	for (; i < 5; i++)
		cr_assert_eq(send_one(p, i, 0, NULL, 10), 0);
	for (; i < 9; i++)
		cr_assert_eq(send_one(p, i, 1, NULL, 10), 0);
	cr_assert_eq(ox_producer_flush(p, 10000), 0);
	for (size_t k = 0; k < i; k++)
		cr_expect_eq(dl.err[k], 0);
	struct ox_batch_header a = stored_header(0, 0);
	struct ox_batch_header b = stored_header(0, 1);
	struct ox_batch_header c = stored_header(1, 0);
	cr_expect_eq(a.producer_id, 77);
	cr_expect_eq(a.producer_epoch, 0);
	cr_expect_eq(a.base_sequence, 0);
	cr_expect_eq(b.producer_id, 77);
	cr_expect_eq(b.base_sequence, 3, "follows the 3 records before");
	cr_expect_eq(c.producer_id, 77);
	cr_expect_eq(c.base_sequence, 0, "each partition counts alone");
	cr_expect_eq(fb->init_producer_requests, 1);
	ox_producer_destroy(p);
}

Test(producer, a_retry_keeps_its_sequence)
{
	cset("retry.backoff.ms", "1");
	struct ox_producer *p = start(1);

	pthread_mutex_lock(&fb->lock);
	fb->producer_id = 5;
	fb->lost_acks = 1; // stored, but the answer says NOT_LEADER
	pthread_mutex_unlock(&fb->lock);
	for (size_t i = 0; i < 4; i++)
		cr_assert_eq(send_one(p, i, 0, NULL, 10), 0);
	cr_assert_eq(ox_producer_flush(p, 10000), 0);
	for (size_t i = 0; i < 4; i++)
		cr_expect_eq(dl.err[i], 0);
	// This broker stores both copies; a real leader knows the second
	// for a retry by its numbers, which must be the first's.
	struct ox_batch_header a = stored_header(0, 0);
	struct ox_batch_header b = stored_header(0, 1);
	cr_expect_eq(a.producer_id, 5);
	cr_expect_eq(b.producer_id, 5);
	cr_expect_eq(a.base_sequence, 0);
	cr_expect_eq(b.base_sequence, 0, "the retry is numbered as before");
	cr_expect_eq(a.record_count, b.record_count);
	cr_assert_eq(send_one(p, 4, 0, NULL, 10), 0);
	cr_assert_eq(ox_producer_flush(p, 10000), 0);
	cr_expect_eq(stored_header(0, 2).base_sequence, 4);
	ox_producer_destroy(p);
}

Test(producer, without_the_api_idempotence_falls_back)
{
	struct ox_producer *p = start(1); // producer_id 0: UNSUPPORTED

	cr_assert_eq(send_one(p, 0, 0, NULL, 10), 0);
	cr_assert_eq(ox_producer_flush(p, 10000), 0);
	cr_expect_eq(dl.err[0], 0);
	cr_expect_eq(stored_header(0, 0).producer_id, OX_PRODUCER_NONE);
	cr_expect_eq(fb->init_producer_requests, 1);
	ox_producer_destroy(p);
}

Test(producer, idempotence_can_be_turned_off)
{
	cset("enable.idempotence", "false");
	struct ox_producer *p = start(1);

	pthread_mutex_lock(&fb->lock);
	fb->producer_id = 9;
	pthread_mutex_unlock(&fb->lock);
	cr_assert_eq(send_one(p, 0, 0, NULL, 10), 0);
	cr_assert_eq(ox_producer_flush(p, 10000), 0);
	cr_expect_eq(stored_header(0, 0).producer_id, OX_PRODUCER_NONE);
	cr_expect_eq(fb->init_producer_requests, 0);
	ox_producer_destroy(p);
}

// Requests of one partition fail while later ones are in flight: the
// retries go out again in the partition's order, numbered as before, so
// the records are stored in send order with contiguous sequences.
Test(producer, retries_keep_the_partitions_order)
{
	enum { N = 300 };
	static long vals[N];
	size_t nb;

	cset("linger.ms", "600000");
	cset("batch.size", "1024");
	cset("retry.backoff.ms", "1");
	struct ox_producer *p = start(1);
	pthread_mutex_lock(&fb->lock);
	fb->producer_id = 11;
	fb->produce_fail_code = 5; // NOT_LEADER
	fb->produce_fail_times = 4;
	pthread_mutex_unlock(&fb->lock);
	for (size_t i = 0; i < N; i++)
		cr_assert_eq(send_one(p, i, 0, NULL, 100), 0);
	cr_assert_eq(ox_producer_flush(p, 10000), 0);
	cr_assert_eq(stored_values(0, vals, N, &nb), N);
	for (size_t i = 0; i < N; i++) {
		cr_expect_eq(dl.err[i], 0);
		cr_expect_eq(vals[i], (long)i, "record %zu stored out of order",
			     i);
	}
	int32_t seq = 0;
	for (size_t b = 0; b < nb; b++) {
		struct ox_batch_header h = stored_header(0, b);
		cr_expect_eq(h.producer_id, 11);
		cr_expect_eq(h.base_sequence, seq, "batch %zu", b);
		seq += (int32_t)h.record_count;
	}
	cr_expect_gt(fb->produce_requests, 4, "the failures were retried");
	ox_producer_destroy(p);
}
