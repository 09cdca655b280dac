// SPDX-License-Identifier: Apache-2.0
//
// Retention and compaction through one oxbowd (retention checks every
// 100 ms). Three single-partition topics with small segments:
//   - ret-time: retention.ms of a minute, records stamped an hour ago, so
//     every sealed segment is past retention as soon as it is sealed. The
//     earliest offset (admin list_offsets) must move up; a consumer with
//     auto.offset.reset=none that seeks below it gets -OX_EOFFSET, one with
//     earliest is reset to it; what is left is intact at its offsets.
//   - ret-bytes: retention.bytes of 64 KiB; the earliest offset moves up
//     until what is kept fits the limit plus the active segment.
//   - compact: cleanup.policy=compact, many updates of a few keys (the last
//     update of some keys a tombstone); consumed from the beginning, each
//     key's last record is its last update, every record is intact at its
//     offset, and there are fewer records than were produced.
// Waits are bounded loops on the broker's state, never a verdict by time.
// A plain program (exit 0 pass, 1 fail, 77 skip): argv[1] is oxbowd.
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "tests/integration/broker_common.h"

#define SEGMENT_BYTES "16384"
#define VALUE_BYTES 200
#define RETAIN_RECORDS 3000
#define RETENTION_BYTES 65536
#define BATCH_BYTES "8192"   // producer batches, so segments roll finely
#define KEYS 20
#define TOMBSTONE_KEYS 5     // keys KEYS-5.. end with a tombstone
#define UPDATES 300
#define COMPACT_VALUE_BYTES 100
#define WAIT_MS 90000        // how long the broker may take to clean up
#define WATCHDOG_S 400

static struct bc_broker broker;
static struct ox_admin *admin;

// The acknowledged offset of each record of the current topic, by index.
static int64_t acked[KEYS * UPDATES + RETAIN_RECORDS];
static size_t failed;

static void delivered(void *opaque, int err, const char *t, int32_t part,
		      int64_t off)
{
	(void)t;
	(void)part;
	if (err) {
		failed++;
		return;
	}
	acked[(uintptr_t)opaque] = off;
}

static struct ox_producer *producer(void)
{
	static const char *const kv[] = { "batch.size", BATCH_BYTES,
					  "linger.ms", "1", NULL };
	struct ox_producer *p = NULL;
	struct ox_conf *c = bc_conf(&broker, kv);
	char err[256];

	if (ox_producer_create(&p, c, err, sizeof(err)) < 0)
		bc_dief("ox_producer_create: %s", err);
	ox_conf_destroy(c);
	return p;
}

static void finish_producing(struct ox_producer *p, const char *topic)
{
	int rc = ox_producer_flush(p, 60000);
	CHECK(rc == 0, "%s: flush: %s", topic, ox_strerror(rc));
	ox_producer_destroy(p);
	CHECK(failed == 0, "%s: %zu deliveries failed", topic, failed);
}

static int64_t list_offset(const char *topic, int64_t spec)
{
	int64_t off = -1;
	int rc = ox_admin_list_offsets(admin, topic, 0, spec, &off);

	CHECK(rc == 0, "%s: list_offsets(%" PRId64 "): %s (%s)", topic, spec,
	      ox_strerror(rc), ox_admin_last_error(admin));
	return off;
}

static void produce_values(const char *topic, size_t n, int64_t ts)
{
	uint8_t value[VALUE_BYTES];
	struct ox_producer *p = producer();

	failed = 0;
	for (size_t i = 0; i < n; i++) {
		acked[i] = -1;
		bc_value_fill(value, i, sizeof(value));
		struct ox_message m = { .topic = topic, .partition = 0,
					.value = value,
					.value_len = sizeof(value),
					.timestamp_ms = ts,
					.cb = delivered,
					.opaque = (void *)(uintptr_t)i };
		int rc = ox_producer_send(p, &m);
		CHECK(rc == 0, "%s: send: %s", topic, ox_strerror(rc));
	}
	finish_producing(p, topic);
}

static struct ox_consumer *consumer(const char *topic, const char *reset)
{
	const char *kv[] = { "auto.offset.reset", reset, NULL };
	struct ox_consumer *c = NULL;
	char err[256];
	struct ox_conf *conf = bc_conf(&broker, kv);

	if (ox_consumer_create(&c, conf, err, sizeof(err)) < 0)
		bc_dief("ox_consumer_create: %s", err);
	ox_conf_destroy(conf);
	struct ox_topic_partition tp = { topic, 0, 0 };
	int rc = ox_consumer_assign(c, &tp, 1);
	if (rc < 0)
		bc_dief("assign %s: %s", topic, ox_strerror(rc));
	return c;
}

// Consumes topic from `from` to `end`, checking every record is intact and
// at its acknowledged offset. Fills the first offset read and the sum of
// value bytes; returns the number of records.
static size_t read_range(const char *topic, int64_t from, int64_t end,
			 int64_t *first, size_t *value_bytes)
{
	struct ox_consumer *c = consumer(topic, "earliest");
	size_t got = 0;
	int64_t pos = from, idle_since = bc_now_ms();

	*first = -1;
	*value_bytes = 0;
	ox_consumer_seek(c, topic, 0, from);
	while (pos < end && bc_now_ms() - idle_since < 30000) {
		const struct ox_consumer_record *rs;
		int n = ox_consumer_poll(c, 1000, &rs, 1000);
		if (n < 0) {
			CHECK(0, "%s: poll: %s", topic, ox_strerror(n));
			break;
		}
		if (n)
			idle_since = bc_now_ms();
		for (int k = 0; k < n; k++) {
			int64_t i = bc_value_check(rs[k].value,
						   rs[k].value_len);
			CHECK(i >= 0 && i < RETAIN_RECORDS &&
				      acked[i] == rs[k].offset,
			      "%s: record at %" PRId64 " damaged or moved "
			      "(index %" PRId64 ")", topic, rs[k].offset, i);
			if (*first < 0)
				*first = rs[k].offset;
			*value_bytes += rs[k].value_len;
			pos = rs[k].offset + 1;
			got++;
		}
	}
	CHECK(pos >= end, "%s: read stopped at %" PRId64 " of %" PRId64,
	      topic, pos, end);
	ox_consumer_destroy(c);
	return got;
}

static void retention_by_time(void)
{
	static const char topic[] = "ret-time";
	static const char *const cfg[] = { "segment.bytes", SEGMENT_BYTES,
					   "retention.ms", "60000", NULL };

	bc_topic_create(admin, topic, 1, cfg);
	produce_values(topic, RETAIN_RECORDS, bc_wall_ms() - 3600 * 1000);
	int64_t end = list_offset(topic, OX_OFFSET_END);
	int64_t deadline = bc_now_ms() + WAIT_MS, earliest = 0;
	while ((earliest = list_offset(topic, OX_OFFSET_BEGINNING)) <= 0 &&
	       bc_now_ms() < deadline)
		bc_sleep_ms(100);
	printf("%s: earliest %" PRId64 ", end %" PRId64 "\n", topic, earliest,
	       end);
	CHECK(earliest > 0 && earliest <= end, "%s: earliest offset %" PRId64
	      " did not move up (end %" PRId64 ")", topic, earliest, end);
	if (earliest <= 0)
		return;

	// Below the start with no reset allowed: an out-of-range error, from
	// assign (which may check the committed offset) or from the fetch.
	struct ox_topic_partition tp = { topic, 0, 0 };
	int rc = ox_admin_group_commit(admin, "ret-none", &tp, 1);
	CHECK(rc == 0, "group commit of offset 0: %s", ox_strerror(rc));
	static const char *const kv[] = { "auto.offset.reset", "none",
					  "group.id", "ret-none", NULL };
	struct ox_consumer *c = NULL;
	char err[256];
	struct ox_conf *conf = bc_conf(&broker, kv);
	if (ox_consumer_create(&c, conf, err, sizeof(err)) < 0)
		bc_dief("ox_consumer_create: %s", err);
	ox_conf_destroy(conf);
	int n = ox_consumer_assign(c, &tp, 1);
	const struct ox_consumer_record *rs;
	for (int k = 0; k < 10 && n == 0; k++)
		n = ox_consumer_poll(c, 1000, &rs, 10);
	CHECK(n == -OX_EOFFSET, "%s: a fetch below the earliest offset with "
	      "auto.offset.reset=none returned %d (%s), not OX_EOFFSET",
	      topic, n, n < 0 ? ox_strerror(n) : "records");
	ox_consumer_destroy(c);

	// With reset=earliest: back on the first offset still stored.
	int64_t first;
	size_t bytes;
	size_t got = read_range(topic, 0, end, &first, &bytes);
	int64_t earliest2 = list_offset(topic, OX_OFFSET_BEGINNING);
	CHECK(first >= earliest && first <= earliest2, "%s: a fetch from 0 "
	      "was reset to %" PRId64 ", not the earliest offset %" PRId64,
	      topic, first, earliest2);
	CHECK(got > 0, "%s: nothing left after retention", topic);
}

static void retention_by_bytes(void)
{
	static const char topic[] = "ret-bytes";
	char limit[32];
	snprintf(limit, sizeof(limit), "%d", RETENTION_BYTES);
	const char *const cfg[] = { "segment.bytes", SEGMENT_BYTES,
				    "retention.bytes", limit, NULL };
	// What may stay: the limit, plus the active segment and one batch
	// past a segment's size.
	const size_t bound = RETENTION_BYTES + 2 * 16384 + 2 * 8192;

	bc_topic_create(admin, topic, 1, cfg);
	produce_values(topic, RETAIN_RECORDS, 0);
	int64_t end = list_offset(topic, OX_OFFSET_END);
	int64_t deadline = bc_now_ms() + WAIT_MS, earliest = 0;
	while (bc_now_ms() < deadline) {
		earliest = list_offset(topic, OX_OFFSET_BEGINNING);
		if (earliest > 0 &&
		    (size_t)(end - earliest) * VALUE_BYTES <= bound)
			break;
		bc_sleep_ms(100);
	}
	printf("%s: earliest %" PRId64 ", end %" PRId64 "\n", topic, earliest,
	       end);
	CHECK(earliest > 0, "%s: earliest offset did not move up", topic);
	int64_t first;
	size_t bytes;
	read_range(topic, earliest, end, &first, &bytes);
	CHECK(bytes <= bound, "%s: %zu value bytes kept, retention.bytes %d",
	      topic, bytes, RETENTION_BYTES);
	CHECK(first == earliest, "%s: first record at %" PRId64 ", earliest "
	      "%" PRId64, topic, first, earliest);
}

// One pass over the compacted topic: the last record of each key and how
// many records there are. Checks each record is intact and in place.
static size_t compacted_pass(const char *topic, int64_t end,
			     int64_t last[KEYS], bool last_null[KEYS])
{
	struct ox_consumer *c = consumer(topic, "earliest");
	size_t got = 0;
	int64_t pos = 0, idle_since = bc_now_ms();

	for (int k = 0; k < KEYS; k++)
		last[k] = -1;
	while (pos < end && bc_now_ms() - idle_since < 30000) {
		const struct ox_consumer_record *rs;
		int n = ox_consumer_poll(c, 1000, &rs, 1000);
		if (n < 0) {
			CHECK(0, "%s: poll: %s", topic, ox_strerror(n));
			break;
		}
		if (n)
			idle_since = bc_now_ms();
		for (int j = 0; j < n; j++) {
			const struct ox_consumer_record *r = &rs[j];
			unsigned k = KEYS;
			if (r->key && r->key_len > 4 &&
			    !memcmp(r->key, "key-", 4))
				k = (unsigned)atoi((const char *)r->key + 4);
			pos = r->offset + 1;
			got++;
			if (k >= KEYS) {
				CHECK(0, "%s: record at %" PRId64 " has an "
				      "unknown key", topic, r->offset);
				continue;
			}
			int64_t i = r->value ? bc_value_check(r->value,
							     r->value_len)
					     : (int64_t)(k * UPDATES +
							 UPDATES - 1);
			CHECK(i >= 0 && (uint64_t)i / UPDATES == k &&
				      acked[i] == r->offset,
			      "%s: record at %" PRId64 " damaged or moved",
			      topic, r->offset);
			last[k] = i;
			last_null[k] = r->value == NULL;
		}
	}
	CHECK(pos >= end, "%s: read stopped at %" PRId64 " of %" PRId64,
	      topic, pos, end);
	ox_consumer_destroy(c);
	return got;
}

static void compaction(void)
{
	static const char topic[] = "compact";
	static const char *const cfg[] = { "segment.bytes", SEGMENT_BYTES,
					   "cleanup.policy", "compact",
					   "delete.retention.ms", "100", NULL };
	uint8_t value[COMPACT_VALUE_BYTES];
	char key[16];
	unsigned order[KEYS];
	const size_t produced = KEYS * UPDATES;

	bc_topic_create(admin, topic, 1, cfg);
	struct ox_producer *p = producer();
	failed = 0;
	for (unsigned u = 0; u < UPDATES; u++) {
		for (unsigned k = 0; k < KEYS; k++)
			order[k] = k;
		for (unsigned k = KEYS - 1; k > 0; k--) {
			unsigned j = (unsigned)bc_rng_below(k + 1), t = order[k];
			order[k] = order[j];
			order[j] = t;
		}
		for (unsigned o = 0; o < KEYS; o++) {
			unsigned k = order[o];
			uint64_t i = (uint64_t)k * UPDATES + u;
			bool tomb = u == UPDATES - 1 &&
				    k >= KEYS - TOMBSTONE_KEYS;
			acked[i] = -1;
			bc_value_fill(value, i, sizeof(value));
			int kl = snprintf(key, sizeof(key), "key-%u", k);
			struct ox_message m = {
				.topic = topic, .partition = 0,
				.key = key, .key_len = (size_t)kl,
				.value = tomb ? NULL : value,
				.value_len = tomb ? 0 : sizeof(value),
				.cb = delivered,
				.opaque = (void *)(uintptr_t)i };
			int rc = ox_producer_send(p, &m);
			CHECK(rc == 0, "%s: send: %s", topic, ox_strerror(rc));
		}
	}
	finish_producing(p, topic);
	int64_t end = list_offset(topic, OX_OFFSET_END);

	int64_t last[KEYS];
	bool last_null[KEYS];
	size_t got = produced;
	int64_t deadline = bc_now_ms() + WAIT_MS;
	while (bc_now_ms() < deadline && !bc_failures) {
		got = compacted_pass(topic, end, last, last_null);
		if (got < produced / 2)
			break;
		bc_sleep_ms(500);
	}
	printf("%s: %zu records produced, %zu after compaction\n", topic,
	       produced, got);
	CHECK(got < produced, "%s: no record was compacted away", topic);
	for (unsigned k = 0; k < KEYS; k++) {
		bool tomb = k >= KEYS - TOMBSTONE_KEYS;
		if (tomb)
			CHECK(last[k] == -1 ||
				      (last[k] == (int64_t)(k * UPDATES +
							    UPDATES - 1) &&
				       last_null[k]),
			      "%s: key-%u ended with a tombstone but reads "
			      "as record %" PRId64, topic, k, last[k]);
		else
			CHECK(last[k] == (int64_t)(k * UPDATES + UPDATES - 1),
			      "%s: key-%u's last record is update %" PRId64
			      ", not its last one", topic, k,
			      last[k] < 0 ? -1 : last[k] % UPDATES);
	}
}

int main(int argc, char **argv)
{
	bc_start("broker-retention", argc, argv, WATCHDOG_S);
	static const char *const args[] = {
		"--node.id", "1", "--log.retention.check.interval.ms", "100",
		NULL
	};
	bc_broker_init(&broker, "ret", args);
	bc_broker_start(&broker);
	admin = bc_admin(&broker);
	retention_by_time();
	retention_by_bytes();
	compaction();
	ox_admin_destroy(admin);
	CHECK(bc_broker_alive(&broker), "oxbowd died");
	bc_finish();
}
