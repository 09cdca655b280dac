// SPDX-License-Identifier: Apache-2.0
//
// The record ledger (ledger.h).
#include "tests/integration/ledger.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// Reported one by one, at most, per kind of failure.
#define REPORT_MAX 5
// Records one poll returns at most.
#define POLL_MAX 2000

struct bc_ledger bc_led;

void bc_ledger_init(size_t cap)
{
	bc_led.cap = cap;
	bc_led.state = calloc(cap, sizeof(*bc_led.state));
	bc_led.acked_part = malloc(cap * sizeof(*bc_led.acked_part));
	bc_led.acked_off = malloc(cap * sizeof(*bc_led.acked_off));
	bc_led.found_part = malloc(cap * sizeof(*bc_led.found_part));
	bc_led.found_off = malloc(cap * sizeof(*bc_led.found_off));
	if (bc_led.state == NULL || bc_led.acked_part == NULL ||
	    bc_led.acked_off == NULL || bc_led.found_part == NULL ||
	    bc_led.found_off == NULL)
		bc_dief("a ledger of %zu records: out of memory", cap);
	for (size_t i = 0; i < cap; i++) {
		bc_led.acked_part[i] = -1;
		bc_led.acked_off[i] = -1;
	}
	bc_ledger_forget_found(cap);
}

void bc_delivered(void *opaque, int err, const char *topic, int32_t part,
		  int64_t off)
{
	size_t i = (size_t)(uintptr_t)opaque;
	int none = 0;

	(void)topic;
	if (err == 0) {
		bc_led.acked_part[i] = part;
		bc_led.acked_off[i] = off;
		atomic_fetch_add(&bc_led.acked_n, 1);
	} else {
		atomic_compare_exchange_strong(&bc_led.first_err, &none, err);
		atomic_store(&bc_led.last_err, err);
		atomic_fetch_add(&bc_led.failed_n, 1);
	}
	atomic_store(&bc_led.state[i], err == 0 ? BC_ACKED : BC_FAILED);
}

struct bc_tally bc_ledger_tally(size_t n)
{
	struct bc_tally t = { 0 };

	for (size_t i = 0; i < n && i < bc_led.cap; i++) {
		uint8_t s = atomic_load(&bc_led.state[i]);

		t.acked += s == BC_ACKED;
		t.failed += s == BC_FAILED;
		t.unanswered += s == BC_UNANSWERED;
	}
	return t;
}

void bc_ledger_forget_found(size_t n)
{
	for (size_t i = 0; i < n && i < bc_led.cap; i++) {
		bc_led.found_part[i] = -1;
		bc_led.found_off[i] = -1;
	}
}

static struct ox_consumer *consumer(const struct bc_broker *b,
				    const char *bootstrap, const char *topic)
{
	static const char *const kv[] = { "auto.offset.reset", "earliest",
					  NULL };
	struct ox_conf *conf = bc_conf(b, kv);
	struct ox_consumer *c = NULL;
	char err[256];
	int rc;

	if (bootstrap != NULL &&
	    ox_conf_set(conf, "bootstrap.servers", bootstrap, err,
			sizeof(err)) < 0)
		bc_dief("bootstrap.servers: %s", err);
	if (ox_consumer_create(&c, conf, err, sizeof(err)) < 0)
		bc_dief("ox_consumer_create: %s", err);
	ox_conf_destroy(conf);
	rc = ox_consumer_assign_topic(c, topic);
	if (rc < 0)
		bc_dief("assign %s: %s", topic, ox_strerror(rc));
	return c;
}

static bool read_all(struct ox_consumer *c, const char *topic,
		     int partitions, const int64_t *end)
{
	for (int q = 0; q < partitions; q++) {
		int64_t pos = 0;

		ox_consumer_position(c, topic, q, &pos);
		if (pos < end[q])
			return false;
	}
	return true;
}

// Notes one record read back.
static void note(const char *topic, const struct ox_consumer_record *r,
		 size_t sent, bc_record_ok ok, void *arg, struct bc_read *out)
{
	int64_t i = bc_value_check(r->value, r->value_len);

	out->got++;
	if (i < 0 || (size_t)i >= sent ||
	    !ok(arg, i, r->key, r->key_len, r->value_len)) {
		if (out->bad++ < REPORT_MAX)
			CHECK(0, "%s: the record at %d/%" PRId64 " is not one "
			      "that was sent, or is damaged (%zu bytes)",
			      topic, r->partition, r->offset, r->value_len);
		return;
	}
	if (bc_led.found_off[i] >= 0) {
		if (out->dups++ < REPORT_MAX)
			CHECK(0, "%s: record %" PRId64 " stored twice: at %d/%"
			      PRId64 " and %d/%" PRId64, topic, i,
			      bc_led.found_part[i], bc_led.found_off[i],
			      r->partition, r->offset);
		return;
	}
	bc_led.found_part[i] = r->partition;
	bc_led.found_off[i] = r->offset;
}

struct bc_read bc_read_back(const struct bc_broker *b, const char *bootstrap,
			    const char *topic, int partitions,
			    const int64_t *end, size_t sent, bc_record_ok ok,
			    void *arg, int64_t stall_ms)
{
	struct ox_consumer *c = consumer(b, bootstrap, topic);
	int64_t *last = calloc((size_t)partitions, sizeof(*last));
	int64_t idle_since = bc_now_ms();
	struct bc_read out = { 0 };

	if (last == NULL || sent > bc_led.cap)
		bc_dief("reading back %zu records: out of memory, or more "
			"than the ledger holds", sent);
	for (int q = 0; q < partitions; q++)
		last[q] = -1;
	while (!read_all(c, topic, partitions, end)) {
		const struct ox_consumer_record *rs;
		int n = ox_consumer_poll(c, 1000, &rs, POLL_MAX);

		if (n < 0 || (n == 0 && bc_now_ms() - idle_since > stall_ms)) {
			CHECK(0, "%s: reading back stopped below the ends: %s "
			      "(%s)", topic, n < 0 ? ox_strerror(n) : "stalled",
			      ox_consumer_last_error(c));
			break;
		}
		if (n > 0)
			idle_since = bc_now_ms();
		for (int k = 0; k < n; k++) {
			const struct ox_consumer_record *r = &rs[k];
			int q = r->partition;

			if (q < 0 || q >= partitions) {
				CHECK(0, "%s: a record in partition %d", topic,
				      q);
				continue;
			}
			if (r->offset >= end[q])
				continue; // past the end read then
			CHECK(r->offset > last[q], "%s: partition %d: offset %"
			      PRId64 " after %" PRId64, topic, q, r->offset,
			      last[q]);
			last[q] = r->offset;
			note(topic, r, sent, ok, arg, &out);
		}
	}
	ox_consumer_destroy(c);
	free(last);
	return out;
}

size_t bc_ledger_missing(const char *what, size_t n, size_t *acked)
{
	size_t lost = 0, ack = 0;

	for (size_t i = 0; i < n && i < bc_led.cap; i++) {
		if (atomic_load(&bc_led.state[i]) != BC_ACKED)
			continue;
		ack++;
		if (bc_led.found_part[i] == bc_led.acked_part[i] &&
		    bc_led.found_off[i] == bc_led.acked_off[i])
			continue;
		if (lost++ >= 2 * REPORT_MAX)
			continue;
		if (bc_led.found_off[i] < 0)
			CHECK(0, "%s: record %zu acknowledged at %d/%" PRId64
			      " is not there", what, i, bc_led.acked_part[i],
			      bc_led.acked_off[i]);
		else
			CHECK(0, "%s: record %zu acknowledged at %d/%" PRId64
			      " but found at %d/%" PRId64, what, i,
			      bc_led.acked_part[i], bc_led.acked_off[i],
			      bc_led.found_part[i], bc_led.found_off[i]);
	}
	if (acked != NULL)
		*acked = ack;
	return lost;
}

// ---- the paced sender ----

#define SENDER_VALUE_MAX 256

size_t bc_sender_key(uint64_t i, unsigned keys, char *buf, size_t cap)
{
	return (size_t)snprintf(buf, cap, "key-%u", (unsigned)(i % keys));
}

static void *sender_run(void *arg)
{
	struct bc_sender *s = arg;
	uint8_t value[SENDER_VALUE_MAX];
	char key[16];
	int64_t start = bc_now_ms();

	while (!atomic_load(&s->stop) && s->sent < bc_led.cap) {
		int64_t due = (bc_now_ms() - start + 1) * s->per_ms;

		if ((int64_t)s->sent > due) {
			bc_sleep_ms(1);
			continue;
		}
		bc_value_fill(value, s->sent, s->value_bytes);
		struct ox_message m = {
			.topic = atomic_load(&s->topic),
			.partition = s->partition,
			.key = key,
			.key_len = bc_sender_key(s->sent, s->keys, key,
						 sizeof(key)),
			.value = value,
			.value_len = s->value_bytes,
			.cb = bc_delivered,
			.opaque = (void *)(uintptr_t)s->sent,
		};
		int rc = ox_producer_send(s->p, &m);

		if (rc < 0) {
			if (s->refused++ == 0)
				printf("record %zu refused at send: %s\n",
				       s->sent, ox_strerror(rc));
			atomic_store(&bc_led.state[s->sent], BC_FAILED);
		}
		s->sent++;
	}
	return NULL;
}

void bc_sender_start(struct bc_sender *s)
{
	if (s->value_bytes < 16 || s->value_bytes > SENDER_VALUE_MAX ||
	    s->keys == 0 || s->per_ms == 0)
		bc_dief("a sender with %zu-byte values, %u keys, %u a ms",
			s->value_bytes, s->keys, s->per_ms);
	atomic_store(&s->stop, false);
	s->sent = 0;
	s->refused = 0;
	if (pthread_create(&s->th, NULL, sender_run, s) != 0)
		bc_dief("pthread_create failed");
}

void bc_sender_stop(struct bc_sender *s)
{
	atomic_store(&s->stop, true);
	pthread_join(s->th, NULL);
}

bool bc_sender_record_ok(void *arg, int64_t i, const void *key,
			 size_t key_len, size_t value_len)
{
	const struct bc_sender *s = arg;
	char want[16];
	size_t n = bc_sender_key((uint64_t)i, s->keys, want, sizeof(want));

	return value_len == s->value_bytes && key != NULL && key_len == n &&
	       memcmp(key, want, n) == 0;
}
