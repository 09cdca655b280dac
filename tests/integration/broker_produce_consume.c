// SPDX-License-Identifier: Apache-2.0
//
// End-to-end test of one oxbowd through liboxbow. A topic with several
// partitions gets OX_TEST_RECORDS records (default 1,000,000) of random
// sizes (1..1000 bytes), random keys, keyless records and records sent to
// an explicit partition, with headers and explicit timestamps, through an
// ox_producer with acks=all. Every record's content is a function of the
// seed and its index (carried in its "ix" header), so nothing is kept but
// where each record was acknowledged. Checks:
//   - every send is accepted and every delivery callback succeeds;
//   - a consumer from the beginning gets every record exactly once, intact
//     (key, value, headers, timestamp), at the offset and partition its
//     callback reported, offsets increasing per partition, keyed records in
//     ox_partition_for_key's partition, explicit ones where they were sent;
//   - a consumer of a group that commits halfway is replaced by a new one
//     that resumes at the committed offsets and gets exactly the rest, and
//     again after oxbowd is stopped and restarted;
//   - seek by time lands on the first record at or after the timestamp.
// A plain program (exit 0 pass, 1 fail, 77 skip): argv[1] is oxbowd.
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "proto/varint.h"
#include "proto/wire.h"
#include "tests/integration/broker_common.h"

#define RECORDS_DEFAULT 1000000
#define PARTITIONS 6
#define VALUE_BYTES_MAX 1000
#define KEYS 5000            // distinct keys of keyed records
#define EXTRA_HEADERS_MAX 3  // besides "ix"
#define HEADER_VALUE_MAX 24
#define POLL_MAX 2000        // records per poll
// A consumer that gets nothing for this long while records are missing
// has stalled: the check fails rather than waiting for the watchdog.
#define STALL_MS 30000
#define FLUSH_TIMEOUT_MS 300000
#define WATCHDOG_S 900

static const char topic[] = "pc";
static size_t nrecords;
static int64_t ts_base;

// What the broker acknowledged for each record.
static int32_t *acked_part;
static int64_t *acked_off;
static uint8_t *seen;
static atomic_size_t acks_ok, acks_failed;
static atomic_int first_err;

enum kind { KEYED, KEYLESS, EXPLICIT };

// Everything about record i, recomputed from the seed.
struct spec {
	enum kind kind;
	char key[16];
	size_t key_len;
	int32_t partition; // EXPLICIT only
	size_t value_len;
	int64_t ts;
	size_t nheaders; // extra headers, after "ix"
};

static void spec_of(uint64_t i, struct spec *s)
{
	uint64_t h = bc_hash(i, 0x5eed);
	unsigned k = h % 10;

	memset(s, 0, sizeof(*s));
	s->kind = k < 4 ? KEYED : k < 7 ? KEYLESS : EXPLICIT;
	s->value_len = 1 + (h >> 8) % VALUE_BYTES_MAX;
	if (s->kind == KEYED)
		s->key_len = (size_t)snprintf(s->key, sizeof(s->key), "k%u",
					      (unsigned)((h >> 20) % KEYS));
	s->partition = (int32_t)((h >> 36) % PARTITIONS);
	s->nheaders = (h >> 44) % (EXTRA_HEADERS_MAX + 1);
	// Non-decreasing in i, several records per millisecond.
	s->ts = ts_base + (int64_t)(i / 16);
}

// Extra header j of record i: key "h<j>", a value of 0..23 bytes, and a
// null value for j == 2.
static size_t header_value_len(uint64_t i, size_t j)
{
	return bc_hash(i, 100 + j) % HEADER_VALUE_MAX;
}

static void delivered(void *opaque, int err, const char *t, int32_t part,
		      int64_t off)
{
	size_t i = (size_t)(uintptr_t)opaque;

	(void)t;
	if (err) {
		int zero = 0;
		atomic_compare_exchange_strong(&first_err, &zero, err);
		atomic_fetch_add(&acks_failed, 1);
		return;
	}
	acked_part[i] = part;
	acked_off[i] = off;
	atomic_fetch_add(&acks_ok, 1);
}

static void produce_all(const struct bc_broker *b)
{
	static const char *const kv[] = { "acks", "all", "linger.ms", "5",
					  NULL };
	uint8_t value[VALUE_BYTES_MAX], ix[8];
	uint8_t hv[EXTRA_HEADERS_MAX][HEADER_VALUE_MAX];
	char hk[EXTRA_HEADERS_MAX][24];
	struct ox_header hdrs[1 + EXTRA_HEADERS_MAX];
	struct ox_producer *p = NULL;
	struct ox_conf *c = bc_conf(b, kv);
	char err[256];
	size_t send_failed = 0;
	int64_t t0 = bc_now_ms();

	if (ox_producer_create(&p, c, err, sizeof(err)) < 0)
		bc_dief("ox_producer_create: %s", err);
	ox_conf_destroy(c);
	for (size_t i = 0; i < nrecords; i++) {
		struct spec s;
		spec_of(i, &s);
		bc_fill(value, i, s.value_len);
		ox_store_le64(ix, i);
		hdrs[0] = (struct ox_header){ "ix", ix, 8 };
		for (size_t j = 0; j < s.nheaders; j++) {
			snprintf(hk[j], sizeof(hk[j]), "h%zu", j);
			size_t n = header_value_len(i, j);
			bc_fill(hv[j], i * 8 + j + 1, n);
			hdrs[1 + j] = (struct ox_header){
				hk[j], j == 2 ? NULL : hv[j], j == 2 ? 0 : n };
		}
		struct ox_message m = {
			.topic = topic,
			.partition = s.kind == EXPLICIT ? s.partition
							: OX_PARTITION_ANY,
			.key = s.kind == KEYED ? s.key : NULL,
			.key_len = s.key_len,
			.value = value,
			.value_len = s.value_len,
			.timestamp_ms = s.ts,
			.headers = hdrs,
			.header_count = 1 + s.nheaders,
			.cb = delivered,
			.opaque = (void *)(uintptr_t)i,
		};
		int rc = ox_producer_send(p, &m);
		if (rc < 0 && send_failed++ < 5)
			CHECK(0, "send of record %zu: %s", i, ox_strerror(rc));
	}
	int rc = ox_producer_flush(p, FLUSH_TIMEOUT_MS);
	CHECK(rc == 0, "flush: %s", ox_strerror(rc));
	ox_producer_destroy(p);
	printf("produced %zu records in %" PRId64 " ms: %zu acknowledged, "
	       "%zu failed, %zu sends refused\n",
	       nrecords, bc_now_ms() - t0, atomic_load(&acks_ok),
	       atomic_load(&acks_failed), send_failed);
	CHECK(send_failed == 0, "%zu sends refused", send_failed);
	CHECK(atomic_load(&acks_failed) == 0,
	      "%zu delivery callbacks failed, the first with %s",
	      atomic_load(&acks_failed), ox_strerror(atomic_load(&first_err)));
	CHECK(atomic_load(&acks_ok) == nrecords,
	      "%zu of %zu records acknowledged", atomic_load(&acks_ok),
	      nrecords);
}

// Checks one consumed record against its spec and its acknowledgement.
// Returns its index, or -1 when it is not one of ours.
static int64_t check_record(const struct ox_consumer_record *r)
{
	int64_t i = -1;

	for (size_t h = 0; h < r->header_count; h++)
		if (!strcmp(r->headers[h].key, "ix") &&
		    r->headers[h].value_len == 8 && r->headers[h].value)
			i = (int64_t)ox_load_le64(r->headers[h].value);
	if (i < 0 || (uint64_t)i >= nrecords) {
		CHECK(0, "record at %d/%" PRId64 " has no valid ix header",
		      r->partition, r->offset);
		return -1;
	}
	struct spec s;
	spec_of((uint64_t)i, &s);
	CHECK(r->partition == acked_part[i] && r->offset == acked_off[i],
	      "record %" PRId64 " read at %d/%" PRId64 ", acknowledged at "
	      "%d/%" PRId64, i, r->partition, r->offset, acked_part[i],
	      acked_off[i]);
	CHECK(r->value_len == s.value_len &&
		      bc_fill_check(r->value, (uint64_t)i, s.value_len),
	      "record %" PRId64 ": value differs (%zu bytes, sent %zu)", i,
	      r->value_len, s.value_len);
	CHECK(r->timestamp_ms == s.ts, "record %" PRId64 ": timestamp %" PRId64
	      ", sent %" PRId64, i, r->timestamp_ms, s.ts);
	if (s.kind == KEYED) {
		CHECK(r->key && r->key_len == s.key_len &&
			      !memcmp(r->key, s.key, s.key_len),
		      "record %" PRId64 ": key differs", i);
		CHECK((uint32_t)r->partition ==
			      ox_partition_for_key(s.key, s.key_len,
						   PARTITIONS),
		      "record %" PRId64 " (key %s) in partition %d, not the "
		      "key's %u", i, s.key, r->partition,
		      ox_partition_for_key(s.key, s.key_len, PARTITIONS));
	} else {
		CHECK(r->key == NULL, "record %" PRId64 ": a key appeared", i);
	}
	if (s.kind == EXPLICIT)
		CHECK(r->partition == s.partition, "record %" PRId64 " in "
		      "partition %d, sent to %d", i, r->partition,
		      s.partition);
	CHECK(r->header_count == 1 + s.nheaders, "record %" PRId64 ": %zu "
	      "headers, sent %zu", i, r->header_count, 1 + s.nheaders);
	for (size_t j = 0; j < s.nheaders && 1 + j < r->header_count; j++) {
		const struct ox_header *h = &r->headers[1 + j];
		char want[24];
		snprintf(want, sizeof(want), "h%zu", j);
		size_t n = header_value_len((uint64_t)i, j);
		bool ok = !strcmp(h->key, want) &&
			  (j == 2 ? h->value == NULL
				  : h->value_len == n &&
					    (n == 0 || h->value) &&
					    bc_fill_check(h->value,
							  (uint64_t)i * 8 + j +
								  1,
							  n));
		CHECK(ok, "record %" PRId64 ": header %zu differs", i, j);
	}
	return i;
}

static struct ox_consumer *consumer(const struct bc_broker *b,
				    const char *group)
{
	const char *kv[] = { "auto.offset.reset", "earliest", group ? "group.id"
								   : NULL,
			     group, NULL };
	struct ox_consumer *c = NULL;
	char err[256];
	struct ox_conf *conf = bc_conf(b, kv);

	if (ox_consumer_create(&c, conf, err, sizeof(err)) < 0)
		bc_dief("ox_consumer_create: %s", err);
	ox_conf_destroy(conf);
	int rc = ox_consumer_assign_topic(c, topic);
	if (rc < 0)
		bc_dief("assign %s: %s (%s)", topic, ox_strerror(rc),
			ox_consumer_last_error(c));
	return c;
}

// Polls c until `want` records came (or `stop_after` when non-zero, which
// may stop inside a poll's results: the rest are left unread and
// uncounted), checking each. Records must be at or above from[p] and
// above the last one seen in their partition. Returns how many came, and
// in next[p] (when non-NULL) the offset after the last one counted.
static size_t consume(struct ox_consumer *c, size_t want,
		      const int64_t from[PARTITIONS], size_t stop_after,
		      int64_t next[PARTITIONS])
{
	int64_t last[PARTITIONS];
	size_t got = 0, dups = 0;
	int64_t idle_since = bc_now_ms();

	for (int p = 0; p < PARTITIONS; p++)
		last[p] = from[p] - 1;
	memset(seen, 0, nrecords);
	while (got < want && (!stop_after || got < stop_after)) {
		const struct ox_consumer_record *rs;
		int n = ox_consumer_poll(c, 1000, &rs, POLL_MAX);
		if (n < 0) {
			CHECK(0, "poll: %s (%s)", ox_strerror(n),
			      ox_consumer_last_error(c));
			break;
		}
		if (n == 0 && bc_now_ms() - idle_since > STALL_MS) {
			CHECK(0, "consumer stalled at %zu of %zu records", got,
			      want);
			break;
		}
		if (n)
			idle_since = bc_now_ms();
		for (int k = 0; k < n; k++) {
			const struct ox_consumer_record *r = &rs[k];
			if (r->partition < 0 || r->partition >= PARTITIONS) {
				CHECK(0, "record in partition %d", r->partition);
				continue;
			}
			CHECK(r->offset > last[r->partition],
			      "partition %d: offset %" PRId64 " after %" PRId64,
			      r->partition, r->offset, last[r->partition]);
			last[r->partition] = r->offset;
			int64_t i = check_record(r);
			if (i >= 0 && seen[i]++ && dups++ < 5)
				CHECK(0, "record %" PRId64 " consumed twice", i);
			got++;
			if (stop_after && got == stop_after)
				break;
		}
	}
	for (int p = 0; next && p < PARTITIONS; p++)
		next[p] = last[p] + 1;
	return got;
}

// Records acknowledged at or above from[p] in their partition.
static size_t count_from(const int64_t from[PARTITIONS])
{
	size_t n = 0;

	for (size_t i = 0; i < nrecords; i++)
		if (acked_part[i] >= 0 && acked_off[i] >= from[acked_part[i]])
			n++;
	return n;
}

static void check_positions(struct ox_consumer *c,
			    const int64_t want[PARTITIONS], const char *when)
{
	for (int p = 0; p < PARTITIONS; p++) {
		int64_t pos = -1, com = -1;
		int rc = ox_consumer_position(c, topic, p, &pos);
		CHECK(rc == 0 && pos == want[p], "%s: partition %d at %" PRId64
		      " (%s), committed %" PRId64, when, p, pos,
		      ox_strerror(rc), want[p]);
		rc = ox_consumer_committed(c, topic, p, &com);
		CHECK(rc == 0 && com == want[p], "%s: partition %d committed "
		      "%" PRId64 " (%s), expected %" PRId64, when, p, com,
		      ox_strerror(rc), want[p]);
	}
}

static void group_resume(struct bc_broker *b)
{
	char group[32];
	int64_t zero[PARTITIONS] = { 0 }, pos[PARTITIONS];

	snprintf(group, sizeof(group), "g%" PRIu64, bc_rng() % 100000);
	struct ox_consumer *c = consumer(b, group);
	size_t half = consume(c, nrecords, zero, nrecords / 2, pos);
	CHECK(half == nrecords / 2, "first group member read %zu", half);
	// The offsets after the last record counted, not the positions:
	// one poll may return more than half of a small run.
	struct ox_topic_partition tps[PARTITIONS];
	for (int p = 0; p < PARTITIONS; p++)
		tps[p] = (struct ox_topic_partition){ topic, p, pos[p] };
	int rc = ox_consumer_commit(c, tps, PARTITIONS);
	CHECK(rc == 0, "commit: %s (%s)", ox_strerror(rc),
	      ox_consumer_last_error(c));
	for (int p = 0; p < PARTITIONS; p++) {
		int64_t com = -1;
		rc = ox_consumer_committed(c, topic, p, &com);
		CHECK(rc == 0 && com == pos[p], "partition %d committed %"
		      PRId64 " (%s), expected %" PRId64, p, com,
		      ox_strerror(rc), pos[p]);
	}
	ox_consumer_destroy(c);

	size_t rest = count_from(pos);
	printf("group %s committed after %zu records; %zu left\n", group,
	       half, rest);
	for (int round = 0; round < 2; round++) {
		const char *when = round ? "after restart" : "new member";
		c = consumer(b, group);
		check_positions(c, pos, when);
		size_t got = consume(c, rest, pos, 0, NULL);
		CHECK(got == rest, "%s: read %zu of the %zu records after the "
		      "committed offsets", when, got, rest);
		ox_consumer_destroy(c);
		if (round == 0) {
			int st = bc_broker_stop(b);
			CHECK(st == 0, "oxbowd exited %d on SIGTERM", st);
			bc_broker_start(b);
		}
	}
}

// For each partition, a timestamp taken from a random record of it and
// one past every record: the consumer must land on the first offset whose
// timestamp is at or after it (the end for the second).
static void seek_by_time(const struct bc_broker *b)
{
	char err[256];

	for (int p = 0; p < PARTITIONS; p++) {
		size_t pick = bc_rng_below(nrecords), tries = 0;
		while (acked_part[pick] != p && tries++ < nrecords)
			pick = (pick + 1) % nrecords;
		if (acked_part[pick] != p)
			continue; // no record in this partition
		struct spec s;
		spec_of(pick, &s);
		int64_t targets[2] = { s.ts, ts_base + (int64_t)nrecords };
		for (int t = 0; t < 2; t++) {
			int64_t want = INT64_MAX, end = 0;
			for (size_t i = 0; i < nrecords; i++) {
				if (acked_part[i] != p)
					continue;
				struct spec si;
				spec_of(i, &si);
				if (si.ts >= targets[t] && acked_off[i] < want)
					want = acked_off[i];
				if (acked_off[i] + 1 > end)
					end = acked_off[i] + 1;
			}
			if (want == INT64_MAX)
				want = end;
			struct ox_consumer *c = NULL;
			struct ox_conf *conf = bc_conf(b, NULL);
			if (ox_consumer_create(&c, conf, err, sizeof(err)) < 0)
				bc_dief("ox_consumer_create: %s", err);
			ox_conf_destroy(conf);
			struct ox_topic_partition tp = { topic, p, 0 };
			int rc = ox_consumer_assign(c, &tp, 1);
			CHECK(rc == 0, "assign: %s", ox_strerror(rc));
			rc = ox_consumer_seek_time(c, topic, p, targets[t]);
			CHECK(rc == 0, "seek_time: %s", ox_strerror(rc));
			int64_t pos = -1;
			ox_consumer_position(c, topic, p, &pos);
			CHECK(pos == want, "partition %d: seek to time %" PRId64
			      " landed at %" PRId64 ", first record at or after "
			      "it is %" PRId64, p, targets[t], pos, want);
			if (t == 0) {
				const struct ox_consumer_record *r = NULL;
				int n = 0;
				for (int k = 0; k < 30 && n == 0; k++)
					n = ox_consumer_poll(c, 1000, &r, 1);
				CHECK(n == 1 && r->offset == want &&
					      r->timestamp_ms >= targets[t],
				      "partition %d: first record after seek "
				      "by time: n=%d offset %" PRId64, p, n,
				      n == 1 ? r->offset : -1);
			}
			ox_consumer_destroy(c);
		}
	}
}

int main(int argc, char **argv)
{
	bc_start("broker-produce-consume", argc, argv, WATCHDOG_S);
	nrecords = getenv("OX_TEST_RECORDS")
			   ? strtoull(getenv("OX_TEST_RECORDS"), NULL, 10)
			   : RECORDS_DEFAULT;
	if (nrecords < 100)
		bc_dief("OX_TEST_RECORDS must be at least 100");
	ts_base = bc_wall_ms() - 3600 * 1000;
	acked_part = malloc(nrecords * sizeof(*acked_part));
	acked_off = malloc(nrecords * sizeof(*acked_off));
	seen = malloc(nrecords);
	if (!acked_part || !acked_off || !seen)
		bc_die("malloc", -ENOMEM);
	for (size_t i = 0; i < nrecords; i++) {
		acked_part[i] = -1;
		acked_off[i] = -1;
	}

	struct bc_broker b;
	static const char *const args[] = { "--node.id", "1", NULL };
	bc_broker_init(&b, "pc", args);
	bc_broker_start(&b);
	struct ox_admin *a = bc_admin(&b);
	bc_topic_create(a, topic, PARTITIONS, NULL);
	ox_admin_destroy(a);

	produce_all(&b);
	if (bc_failures)
		bc_finish();

	int64_t zero[PARTITIONS] = { 0 };
	int64_t t0 = bc_now_ms();
	struct ox_consumer *c = consumer(&b, NULL);
	size_t got = consume(c, nrecords, zero, 0, NULL);
	CHECK(got == nrecords, "consumed %zu of %zu records", got, nrecords);
	const struct ox_consumer_record *extra;
	int n = ox_consumer_poll(c, 200, &extra, 1);
	CHECK(n == 0, "a record beyond those produced: poll returned %d", n);
	ox_consumer_destroy(c);
	printf("consumed %zu records in %" PRId64 " ms\n", got,
	       bc_now_ms() - t0);

	group_resume(&b);
	seek_by_time(&b);
	CHECK(bc_broker_alive(&b), "oxbowd died");
	free(acked_part);
	free(acked_off);
	free(seen);
	bc_finish();
}
