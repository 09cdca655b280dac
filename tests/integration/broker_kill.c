// SPDX-License-Identifier: Apache-2.0
//
// Kill -9 test of one oxbowd under load. A producer (acks=all, retries=0,
// so that no record is ever sent twice) sends records to a topic without
// pause; for a bounded number of rounds oxbowd is SIGKILLed at a random
// moment and restarted on the same data directory and port, while the
// same producer keeps going. At the end a consumer reads every partition
// from its start to its end offset and checks:
//   - every record whose delivery callback reported success is there,
//     intact, at the partition and offset the callback reported;
//   - every record stored is one that was sent, intact (its value names
//     its index and the rest is recomputed from the seed), and stored once;
//   - the broker shuts down cleanly after all of it.
// Records whose callback failed may or may not be stored.
//
// With OX_TEST_CLUSTER=3 the same runs against three nodes whose `peers`
// name each other, on a topic of replication factor 3: each round SIGKILLs
// the current leader of a random partition, keeps producing while it is
// down (the group elects another leader; the producer follows it through
// NOT_LEADER and metadata), then restarts it, and it catches up. It prints
// how long each partition went without a leader, as the producer saw it.
// A plain program (exit 0 pass, 1 fail, 77 skip): argv[1] is oxbowd.
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "tests/integration/broker_common.h"

#define ROUNDS 10
#define CLUSTER_ROUNDS 6
#define DOWN_MS 800 // how long a killed leader stays down, writes going on
#define ELECT_TIMEOUT_MS 10000
#define PARTITIONS 3
#define KILL_MS_MIN 100
#define KILL_MS_SPAN 900     // a round's kill comes 100..1000 ms after start
#define ROUND_RECORDS_MAX 150000 // bounds the memory of the bookkeeping
// Records queued or in flight the sender allows itself: the load stays on
// until the kill instead of the whole round being queued (and acknowledged)
// in its first milliseconds.
#define PENDING_MAX 3000
#define RECORDS_MAX (ROUNDS * ROUND_RECORDS_MAX)
#define VALUE_BYTES_MIN 8    // the index
#define VALUE_BYTES_SPAN 1200
#define POLL_MAX 2000
#define STALL_MS 30000
#define FLUSH_TIMEOUT_MS 120000
#define WATCHDOG_S 600

static const char topic[] = "kill";

// Per record: 0 not answered yet, 1 acknowledged, 2 failed.
static _Atomic uint8_t state[RECORDS_MAX];
static int32_t acked_part[RECORDS_MAX];
static int64_t acked_off[RECORDS_MAX];
static int32_t found_part[RECORDS_MAX];
static int64_t found_off[RECORDS_MAX];

static size_t value_len_of(uint64_t i)
{
	return VALUE_BYTES_MIN + bc_hash(i, 7) % VALUE_BYTES_SPAN;
}

static void delivered(void *opaque, int err, const char *t, int32_t part,
		      int64_t off)
{
	size_t i = (size_t)(uintptr_t)opaque;

	(void)t;
	if (err == 0) {
		acked_part[i] = part;
		acked_off[i] = off;
	}
	atomic_store(&state[i], err == 0 ? 1 : 2);
}

static char bootstrap_all[256]; // the cluster's nodes, when clustered
// Clustered: where each partition ends (its leader's high watermark).
static int64_t cluster_end[PARTITIONS];

static struct ox_producer *producer(const struct bc_broker *b)
{
	static const char *const kv[] = {
		"acks", "all", "retries", "0", "linger.ms", "2",
		"request.timeout.ms", "5000", "delivery.timeout.ms", "15000",
		"max.block.ms", "3000", "buffer.memory", "8388608",
		"socket.connect.timeout.ms", "2000", NULL
	};
	struct ox_producer *p = NULL;
	struct ox_conf *c = bc_conf(b, kv);
	char err[256];

	if (bootstrap_all[0] &&
	    ox_conf_set(c, "bootstrap.servers", bootstrap_all, err,
			sizeof(err)) < 0)
		bc_dief("bootstrap.servers: %s", err);
	if (ox_producer_create(&p, c, err, sizeof(err)) < 0)
		bc_dief("ox_producer_create: %s", err);
	ox_conf_destroy(c);
	return p;
}

// Sends records until kill_at (monotonic ms) or the round's cap. Returns
// the next index.
static size_t send_until(struct ox_producer *p, size_t next, int64_t kill_at,
			 size_t *refused)
{
	uint8_t value[VALUE_BYTES_MIN + VALUE_BYTES_SPAN];
	size_t cap = next + ROUND_RECORDS_MAX;

	while (next < cap && next < RECORDS_MAX && bc_now_ms() < kill_at) {
		if (ox_producer_pending(p) > PENDING_MAX) {
			bc_sleep_ms(1);
			continue;
		}
		size_t len = value_len_of(next);
		bc_value_fill(value, next, len);
		struct ox_message m = {
			.topic = topic,
			.partition = OX_PARTITION_ANY,
			.value = value,
			.value_len = len,
			.cb = delivered,
			.opaque = (void *)(uintptr_t)next,
		};
		int rc = ox_producer_send(p, &m);
		if (rc < 0) {
			// Refused at once: no callback will come, and the
			// record cannot be stored. Expected while the broker
			// is down (metadata or buffer timeouts).
			atomic_store(&state[next], 2);
			(*refused)++;
		}
		next++;
	}
	return next;
}

// Reads every partition from its start to its end offset, recording where
// each record is. Returns the number of records read.
static size_t read_back(const struct bc_broker *b, size_t nsent)
{
	static const char *const kv[] = { "auto.offset.reset", "earliest",
					  NULL };
	struct ox_admin *a = bc_admin(b);
	int64_t end[PARTITIONS], last[PARTITIONS];
	struct ox_consumer *c = NULL;
	char err[256];
	size_t got = 0, bad = 0, dups = 0;

	for (int p = 0; p < PARTITIONS; p++) {
		int rc = bootstrap_all[0] ? 0 :
			 ox_admin_list_offsets(a, topic, p, OX_OFFSET_END,
					       &end[p]);
		if (bootstrap_all[0])
			end[p] = cluster_end[p];
		if (rc < 0)
			bc_dief("list_offsets end: %s", ox_strerror(rc));
		last[p] = -1;
	}
	ox_admin_destroy(a);
	struct ox_conf *conf = bc_conf(b, kv);
	if (bootstrap_all[0] &&
	    ox_conf_set(conf, "bootstrap.servers", bootstrap_all, err,
			sizeof(err)) < 0)
		bc_dief("bootstrap.servers: %s", err);
	if (ox_consumer_create(&c, conf, err, sizeof(err)) < 0)
		bc_dief("ox_consumer_create: %s", err);
	ox_conf_destroy(conf);
	int rc = ox_consumer_assign_topic(c, topic);
	if (rc < 0)
		bc_dief("assign: %s", ox_strerror(rc));

	int64_t idle_since = bc_now_ms();
	for (;;) {
		bool done = true;
		for (int p = 0; p < PARTITIONS; p++) {
			int64_t pos = 0;
			ox_consumer_position(c, topic, p, &pos);
			if (pos < end[p])
				done = false;
		}
		if (done)
			break;
		const struct ox_consumer_record *rs;
		int n = ox_consumer_poll(c, 1000, &rs, POLL_MAX);
		if (n < 0) {
			CHECK(0, "poll: %s (%s)", ox_strerror(n),
			      ox_consumer_last_error(c));
			break;
		}
		if (n == 0 && bc_now_ms() - idle_since > STALL_MS) {
			CHECK(0, "consumer stalled below the end offsets");
			break;
		}
		if (n)
			idle_since = bc_now_ms();
		for (int k = 0; k < n; k++) {
			const struct ox_consumer_record *r = &rs[k];
			int p = r->partition;
			got++;
			if (p < 0 || p >= PARTITIONS) {
				CHECK(0, "record in partition %d", p);
				continue;
			}
			CHECK(r->offset > last[p], "partition %d: offset %"
			      PRId64 " after %" PRId64, p, r->offset, last[p]);
			last[p] = r->offset;
			int64_t i = bc_value_check(r->value, r->value_len);
			if (i < 0 || (size_t)i >= nsent ||
			    r->value_len != value_len_of((uint64_t)i)) {
				if (bad++ < 5)
					CHECK(0, "record at %d/%" PRId64 " is "
					      "not one that was sent, or is "
					      "damaged (%zu bytes)", p,
					      r->offset, r->value_len);
				continue;
			}
			if (found_off[i] >= 0) {
				if (dups++ < 5)
					CHECK(0, "record %" PRId64 " stored "
					      "twice: %d/%" PRId64 " and %d/%"
					      PRId64, i, found_part[i],
					      found_off[i], p, r->offset);
				continue;
			}
			found_part[i] = p;
			found_off[i] = r->offset;
		}
	}
	ox_consumer_destroy(c);
	return got;
}

// The leader of partition p as any running node sees it (-1: none yet).
static int partition_leader(struct bc_broker *nodes, int n, int p)
{
	for (int i = 0; i < n; i++) {
		Oxbow__ClusterStatusResponse *m = bc_cluster_status(&nodes[i]);
		int leader = -1;

		if (m == NULL)
			continue;
		for (size_t k = 0; k < m->n_partitions; k++)
			if (strcmp(m->partitions[k]->topic, topic) == 0 &&
			    m->partitions[k]->partition == p)
				leader = m->partitions[k]->leader;
		oxbow__cluster_status_response__free_unpacked(m, NULL);
		if (leader > 0)
			return leader;
	}
	return -1;
}

// The metadata leader's node index, waiting for one (bounded).
static int meta_leader(struct bc_broker *nodes, int n)
{
	int64_t until = bc_now_ms() + 20000;

	while (bc_now_ms() < until) {
		for (int i = 0; i < n; i++) {
			Oxbow__ClusterStatusResponse *m =
				bc_cluster_status(&nodes[i]);
			int leader = m ? m->meta_leader : -1;
			int known = m ? (int)m->n_nodes : 0;

			if (m)
				oxbow__cluster_status_response__free_unpacked(
					m, NULL);
			if (leader > 0 && known == n)
				return leader - 1;
		}
		bc_sleep_ms(20);
	}
	bc_dief("no metadata leader with every node registered");
}

static void check_stored(struct bc_broker *b, size_t next, size_t refused);

static void run_cluster(int n)
{
	struct bc_broker nodes[BC_CLUSTER_MAX];
	static const char *const args[] = { "--log.segment.bytes", "1048576",
					    NULL };

	bc_cluster_start(nodes, n, "killc", args);
	bc_cluster_bootstrap(nodes, n, bootstrap_all, sizeof(bootstrap_all));
	int ml = meta_leader(nodes, n), rc;
	struct ox_admin *a = bc_admin(&nodes[ml]);
	rc = ox_admin_topic_create(a, topic, PARTITIONS, 3, NULL, 0);
	if (rc < 0)
		bc_dief("create topic: %s (%s)", ox_strerror(rc),
			ox_admin_last_error(a));
	ox_admin_destroy(a);

	struct ox_producer *p = producer(&nodes[ml]);
	size_t next = 0, refused = 0;
	for (int round = 0; round < CLUSTER_ROUNDS; round++) {
		int64_t kill_at = bc_now_ms() + KILL_MS_MIN +
				  (int64_t)bc_rng_below(KILL_MS_SPAN);
		int part = (int)bc_rng_below(PARTITIONS);
		size_t from = next;

		next = send_until(p, next, kill_at, &refused);
		int leader = partition_leader(nodes, n, part);
		CHECK(leader > 0, "round %d: partition %d has no leader", round,
		      part);
		if (leader <= 0)
			continue;
		bc_broker_kill(&nodes[leader - 1]);
		int64_t killed = bc_now_ms(), elected = -1;
		int now_leader = -1;
		// The producer keeps its queue while the others elect.
		while (bc_now_ms() - killed < ELECT_TIMEOUT_MS) {
			now_leader = partition_leader(nodes, n, part);
			if (now_leader > 0 && now_leader != leader) {
				elected = bc_now_ms() - killed;
				break;
			}
			bc_sleep_ms(5);
		}
		printf("round %d: killed node %d (leader of partition %d) after "
		       "%zu records; node %d leads it %" PRId64 " ms later\n",
		       round, leader, part, next - from, now_leader, elected);
		fflush(stdout);
		CHECK(elected >= 0, "round %d: partition %d has no new leader",
		      round, part);
		// Writes go on while it is down, then it comes back and
		// catches up.
		next = send_until(p, next, bc_now_ms() + DOWN_MS, &refused);
		bc_broker_start(&nodes[leader - 1]);
	}
	next = send_until(p, next, bc_now_ms() + 500, &refused);
	rc = ox_producer_flush(p, FLUSH_TIMEOUT_MS);
	CHECK(rc == 0, "flush: %s", ox_strerror(rc));
	ox_producer_destroy(p);
	// Read up to each partition's end on its leader: the highest high
	// watermark any node reports (a restarted follower may lag).
	for (int i = 0; i < n; i++) {
		Oxbow__ClusterStatusResponse *m = bc_cluster_status(&nodes[i]);

		for (size_t k = 0; m && k < m->n_partitions; k++) {
			const Oxbow__PartitionStatus *ps = m->partitions[k];

			if (strcmp(ps->topic, topic) == 0 &&
			    ps->partition >= 0 && ps->partition < PARTITIONS &&
			    ps->high_watermark > cluster_end[ps->partition])
				cluster_end[ps->partition] = ps->high_watermark;
		}
		if (m)
			oxbow__cluster_status_response__free_unpacked(m, NULL);
	}
	for (int q = 0; q < PARTITIONS; q++)
		printf("partition %d: read up to %" PRId64 "\n", q,
		       cluster_end[q]);
	check_stored(&nodes[meta_leader(nodes, n)], next, refused);
	for (int i = 0; i < n; i++)
		CHECK(bc_broker_alive(&nodes[i]), "node %d died", i + 1);
	bc_finish();
}

// Every acknowledged record is stored, intact, once, where its callback
// said; records are only ones that were sent.
static void check_stored(struct bc_broker *b, size_t next, size_t refused)
{
	size_t acked = 0, failed = 0, unanswered = 0;
	for (size_t i = 0; i < next; i++) {
		uint8_t s = atomic_load(&state[i]);
		acked += s == 1;
		failed += s == 2;
		unanswered += s == 0;
	}
	printf("sent %zu records: %zu acknowledged, %zu failed (%zu refused "
	       "at send), %zu unanswered\n",
	       next, acked, failed, refused, unanswered);
	CHECK(unanswered == 0, "%zu records never got a callback", unanswered);
	CHECK(acked > 0, "no record was acknowledged in %d rounds", ROUNDS);

	size_t stored = read_back(b, next);
	size_t lost = 0, failed_stored = 0;
	for (size_t i = 0; i < next; i++) {
		if (atomic_load(&state[i]) != 1) {
			failed_stored += found_off[i] >= 0;
			continue;
		}
		if (found_part[i] == acked_part[i] &&
		    found_off[i] == acked_off[i])
			continue;
		if (lost++ < 10)
			CHECK(0, "record %zu acknowledged at %d/%" PRId64
			      " but found at %d/%" PRId64, i, acked_part[i],
			      acked_off[i], found_part[i], found_off[i]);
	}
	printf("read back %zu records; %zu acknowledged records missing or "
	       "moved; %zu failed records stored anyway\n",
	       stored, lost, failed_stored);
	CHECK(lost == 0, "%zu acknowledged records lost or moved", lost);
}

int main(int argc, char **argv)
{
	bc_start("broker-kill", argc, argv, WATCHDOG_S);
	for (size_t i = 0; i < RECORDS_MAX; i++) {
		acked_off[i] = -1;
		found_off[i] = -1;
		found_part[i] = -1;
	}
	if (getenv("OX_TEST_CLUSTER") != NULL)
		run_cluster(atoi(getenv("OX_TEST_CLUSTER")));

	struct bc_broker b;
	static const char *const args[] = { "--node.id", "1",
					    "--log.segment.bytes", "1048576",
					    NULL };
	bc_broker_init(&b, "kill", args);
	bc_broker_start(&b);
	struct ox_admin *a = bc_admin(&b);
	bc_topic_create(a, topic, PARTITIONS, NULL);
	ox_admin_destroy(a);

	struct ox_producer *p = producer(&b);
	size_t next = 0, refused = 0;
	for (int round = 0; round < ROUNDS; round++) {
		int64_t kill_at = bc_now_ms() + KILL_MS_MIN +
				  (int64_t)bc_rng_below(KILL_MS_SPAN);
		size_t from = next;
		next = send_until(p, next, kill_at, &refused);
		// A round that hit its cap first is killed at once, with its
		// last records still in flight.
		bc_broker_kill(&b);
		printf("round %d: killed oxbowd after %zu records sent\n",
		       round, next - from);
		fflush(stdout);
		bc_broker_start(&b);
	}
	// A last stretch after the final restart, so that the producer is
	// seen to recover and not only to fail.
	next = send_until(p, next, bc_now_ms() + 500, &refused);
	int rc = ox_producer_flush(p, FLUSH_TIMEOUT_MS);
	CHECK(rc == 0, "flush: %s", ox_strerror(rc));
	ox_producer_destroy(p);

	check_stored(&b, next, refused);
	CHECK(bc_broker_alive(&b), "oxbowd died");
	bc_finish();
}
