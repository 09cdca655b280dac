// SPDX-License-Identifier: Apache-2.0
//
// Kill -9 test of one oxbowd under load. An idempotent producer (acks=all,
// retrying within delivery.timeout.ms: a retry may reach a leader that
// stored the batch already, and must not store it twice) sends keyed
// records to a topic without pause; for a bounded number of rounds oxbowd is SIGKILLed at a
// random moment and restarted on the same data directory and port, while
// the same producer keeps going. At the end a consumer reads every
// partition from its start to its end offset and checks:
//   - every record whose delivery callback reported success is there,
//     intact, at the partition and offset the callback reported;
//   - every record stored is one that was sent, intact (its value names
//     its index and the rest, key included, is recomputed from the seed),
//     and stored once;
//   - per key, acknowledged records are stored in the order they were sent
//     (the key is the record's index modulo KEYS);
//   - the broker shuts down cleanly after all of it.
// Records whose callback failed may or may not be stored.
//
// With OX_TEST_CLUSTER=3 the same runs against three nodes whose `peers`
// name each other, on a topic of replication factor 3, in rounds that
// alternate two faults on the current leader of a random partition:
//   - SIGKILL: keep producing while it is down (the group elects another
//     leader; the producer follows it through NOT_LEADER and metadata),
//     then restart it, and it catches up;
//   - SIGSTOP for longer than an election timeout while producing (the
//     others elect a leader), then SIGCONT: the old leader must find the
//     new term and step down, and every node agree on one leader.
// It prints how long each partition went without a leader, as the test saw
// it. After the rounds it waits until every replica of every partition
// holds the log up to one high watermark (CLUSTER_STATUS of each node),
// reads it back as above, stops every node cleanly and opens each node's
// partition logs offline (log_digest.h): the replicas must hold the same
// batches (offsets, term, XXH3-64 of the bytes) wherever all of them hold
// data, and that part must reach the high watermark; every acknowledged
// record must be in every replica at its offset, and every record stored
// on any node must be one that was sent, once.
// A plain program (exit 0 pass, 1 fail, 77 skip): argv[1] is oxbowd.
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "tests/integration/broker_common.h"
#include "tests/integration/ledger.h"
#include "tests/integration/replicas.h"

#define ROUNDS 10
#define CLUSTER_ROUNDS 8     // even rounds SIGKILL, odd ones SIGSTOP
#define DOWN_MS 800 // how long a killed leader stays down, writes going on
// How long a leader stays stopped: well past an election timeout (10 to
// 20 ticks of 10 ms), so the others elect while it sleeps.
#define STOP_MS 1500
#define STOP_SLICE_MS 20 // while stopped, how often it looks for a leader
#define ELECT_TIMEOUT_MS 10000
#define AGREE_TIMEOUT_MS 20000 // a resumed leader steps down within this
#define SETTLE_TIMEOUT_MS 60000 // every replica in sync within this
#define PARTITIONS 3
#define KEYS 16              // record i has key i % KEYS
#define KILL_MS_MIN 100
#define KILL_MS_SPAN 900     // a round's kill comes 100..1000 ms after start
#define ROUND_RECORDS_MAX 150000 // bounds the memory of the bookkeeping
// Records queued or in flight the sender allows itself: the load stays on
// until the kill instead of the whole round being queued (and acknowledged)
// in its first milliseconds.
#define PENDING_MAX 3000
// Records per millisecond a cluster round sends at most, so that the load
// lasts through every round (the bookkeeping holds RECORDS_MAX) and the
// three logs stay a few hundred MB each.
#define CLUSTER_RECORDS_PER_MS 40
#define RECORDS_MAX (ROUNDS * ROUND_RECORDS_MAX)
#define VALUE_BYTES_MIN 8    // the index
#define VALUE_BYTES_SPAN 1200
#define STALL_MS 30000
#define FLUSH_TIMEOUT_MS 120000
#define WATCHDOG_S 600

static const char topic[] = "kill";

// Records per millisecond send_until allows itself (0: no limit).
static int64_t pace_per_ms;

static size_t value_len_of(uint64_t i)
{
	return VALUE_BYTES_MIN + bc_hash(i, 7) % VALUE_BYTES_SPAN;
}

// Record i's key: "key-<i % KEYS>", with its length.
static size_t key_of(uint64_t i, char *buf, size_t cap)
{
	return (size_t)snprintf(buf, cap, "key-%u", (unsigned)(i % KEYS));
}

// Whether a stored record is record i's, intact.
static bool record_ok(void *arg, int64_t i, const void *key, size_t key_len,
		      size_t value_len)
{
	char want[16];
	size_t n = key_of((uint64_t)i, want, sizeof(want));

	(void)arg;
	return value_len == value_len_of((uint64_t)i) && key != NULL &&
	       key_len == n && memcmp(key, want, n) == 0;
}

static char bootstrap_all[256]; // the cluster's nodes, when clustered
// Clustered: where each partition ends (its leader's high watermark).
static int64_t cluster_end[PARTITIONS];

static struct ox_producer *producer(const struct bc_broker *b)
{
	static const char *const kv[] = {
		"acks", "all", "enable.idempotence", "true", "linger.ms", "2",
		"request.timeout.ms", "5000", "delivery.timeout.ms", "15000",
		"max.block.ms", "3000", "buffer.memory", "8388608",
		"socket.connect.timeout.ms", "2000", NULL
	};

	return bc_producer(b, bootstrap_all[0] ? bootstrap_all : NULL, kv);
}

// Sends records until kill_at (monotonic ms) or the round's cap, at most
// pace_per_ms a millisecond when that is set. Returns the next index.
static size_t send_until(struct ox_producer *p, size_t next, int64_t kill_at,
			 size_t *refused)
{
	uint8_t value[VALUE_BYTES_MIN + VALUE_BYTES_SPAN];
	char key[16];
	size_t cap = next + ROUND_RECORDS_MAX, from = next;
	int64_t start = bc_now_ms();

	while (next < cap && next < RECORDS_MAX && bc_now_ms() < kill_at) {
		if (ox_producer_pending(p) > PENDING_MAX ||
		    (pace_per_ms > 0 &&
		     (int64_t)(next - from) >
			     (bc_now_ms() - start + 1) * pace_per_ms)) {
			bc_sleep_ms(1);
			continue;
		}
		size_t len = value_len_of(next);
		bc_value_fill(value, next, len);
		struct ox_message m = {
			.topic = topic,
			.partition = OX_PARTITION_ANY,
			.key = key,
			.key_len = key_of(next, key, sizeof(key)),
			.value = value,
			.value_len = len,
			.cb = bc_delivered,
			.opaque = (void *)(uintptr_t)next,
		};
		int rc = ox_producer_send(p, &m);
		if (rc < 0) {
			// Refused at once: no callback will come, and the
			// record cannot be stored. Expected while the broker
			// is down (metadata or buffer timeouts).
			atomic_store(&bc_led.state[next], BC_FAILED);
			(*refused)++;
		}
		next++;
	}
	return next;
}

// Reads every partition from its start to its end offset (clustered:
// the settled high watermark), recording where each record is. Returns
// the number of records read.
static size_t read_back(const struct bc_broker *b, size_t nsent)
{
	int64_t end[PARTITIONS];
	struct bc_read rd;

	for (int p = 0; p < PARTITIONS; p++) {
		struct ox_admin *a;
		int rc;

		end[p] = cluster_end[p];
		if (bootstrap_all[0])
			continue;
		a = bc_admin(b);
		rc = ox_admin_list_offsets(a, topic, p, OX_OFFSET_END,
					   &end[p]);
		ox_admin_destroy(a);
		if (rc < 0)
			bc_dief("list_offsets end: %s", ox_strerror(rc));
	}
	rd = bc_read_back(b, bootstrap_all[0] ? bootstrap_all : NULL, topic,
			  PARTITIONS, end, nsent, record_ok, NULL, STALL_MS);
	CHECK(rd.bad == 0 && rd.dups == 0, "%zu records read back were not "
	      "sent or are damaged, %zu were stored twice", rd.bad, rd.dups);
	return rd.got;
}

// Per key, acknowledged records are stored in the order they were sent:
// one partition, offsets rising with the index.
static void check_key_order(size_t next)
{
	int32_t part[KEYS];
	int64_t last[KEYS];
	size_t last_i[KEYS], bad = 0;

	for (int k = 0; k < KEYS; k++)
		part[k] = -1;
	for (size_t i = 0; i < next; i++) {
		size_t k = i % KEYS;

		if (atomic_load(&bc_led.state[i]) != BC_ACKED ||
		    bc_led.found_off[i] < 0)
			continue;
		if (part[k] >= 0 &&
		    (bc_led.found_part[i] != part[k] || bc_led.found_off[i] <= last[k]) &&
		    bad++ < 5)
			CHECK(0, "key %zu: record %zu stored at %d/%" PRId64
			      ", not after record %zu (sent before it) at %d/%"
			      PRId64, k, i, bc_led.found_part[i], bc_led.found_off[i],
			      last_i[k], part[k], last[k]);
		part[k] = bc_led.found_part[i];
		last[k] = bc_led.found_off[i];
		last_i[k] = i;
	}
	CHECK(bad == 0, "%zu acknowledged records out of their key's order",
	      bad);
}

// The leader of partition p as any running node but node index `skip`
// sees it (-1: none yet). A stopped node is skipped: it would not answer.
static int partition_leader(struct bc_broker *nodes, int n, int p, int skip)
{
	for (int i = 0; i < n; i++) {
		int leader = -1, in_sync;
		int64_t hw;

		if (i != skip &&
		    bc_partition_status(&nodes[i], topic, p, &leader, &hw,
					NULL, 0, &in_sync) && leader > 0)
			return leader;
	}
	return -1;
}

// Waits (ELECT_TIMEOUT_MS from `since`) until a node other than node index
// `skip` names a leader of p other than `old`. Returns it with the time
// taken in *took_ms, or -1.
static int new_leader(struct bc_broker *nodes, int n, int p, int old,
		      int skip, int64_t since, int64_t *took_ms)
{
	*took_ms = -1;
	while (bc_now_ms() - since < ELECT_TIMEOUT_MS) {
		int leader = partition_leader(nodes, n, p, skip);

		if (leader > 0 && leader != old) {
			*took_ms = bc_now_ms() - since;
			return leader;
		}
		bc_sleep_ms(5);
	}
	return -1;
}

// Waits until every node names one leader of p; returns it, or -1.
static int agreed_leader(struct bc_broker *nodes, int n, int p)
{
	int64_t until = bc_now_ms() + AGREE_TIMEOUT_MS;

	while (bc_now_ms() < until) {
		int leader = -1;
		bool same = true;

		for (int i = 0; i < n && same; i++) {
			int l = -1, in_sync;
			int64_t hw;

			same = bc_partition_status(&nodes[i], topic, p, &l,
						   &hw, NULL, 0, &in_sync) &&
			       l > 0 &&
			       (leader < 0 || l == leader);
			leader = l;
		}
		if (same)
			return leader;
		bc_sleep_ms(20);
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

// A SIGKILL round: the leader of partition `part` dies, the others elect,
// writes go on while it is down, then it comes back and catches up.
static size_t kill_round(struct bc_broker *nodes, int n, struct ox_producer *p,
			 int round, int part, int leader, size_t from,
			 size_t next, size_t *refused)
{
	int64_t took;

	bc_broker_kill(&nodes[leader - 1]);
	int now_leader = new_leader(nodes, n, part, leader, leader - 1,
				    bc_now_ms(), &took);
	printf("round %d: killed node %d (leader of partition %d) after "
	       "%zu records; node %d leads it %" PRId64 " ms later\n",
	       round, leader, part, next - from, now_leader, took);
	fflush(stdout);
	CHECK(now_leader > 0, "round %d: partition %d has no new leader",
	      round, part);
	next = send_until(p, next, bc_now_ms() + DOWN_MS, refused);
	bc_broker_start(&nodes[leader - 1]);
	return next;
}

// A SIGSTOP round: the leader of partition `part` sleeps through election
// timeouts while the producer goes on; the others elect a leader. Resumed,
// it still believes it leads in its old term: it must learn the new term
// and step down (it must not acknowledge what the new leader overwrote),
// and every node must name one leader.
static size_t stop_round(struct bc_broker *nodes, int n, struct ox_producer *p,
			 int round, int part, int leader, size_t from,
			 size_t next, size_t *refused)
{
	struct bc_broker *b = &nodes[leader - 1];
	int64_t stopped = bc_now_ms(), took = -1;
	int now_leader = -1;

	CHECK(kill(b->pid, SIGSTOP) == 0, "SIGSTOP node %d: %s", leader,
	      strerror(errno));
	// Producing in slices, looking for the new leader in between.
	while (bc_now_ms() - stopped < STOP_MS) {
		int64_t until = bc_now_ms() + STOP_SLICE_MS;

		next = send_until(p, next, until < stopped + STOP_MS ? until :
					   stopped + STOP_MS, refused);
		if (now_leader > 0)
			continue;
		now_leader = partition_leader(nodes, n, part, leader - 1);
		if (now_leader == leader)
			now_leader = -1;
		took = bc_now_ms() - stopped;
	}
	if (now_leader < 0)
		now_leader = new_leader(nodes, n, part, leader, leader - 1,
					stopped, &took);
	// Stopped STOP_MS at least, whatever the wait for a leader took.
	int64_t slept = bc_now_ms() - stopped;
	CHECK(kill(b->pid, SIGCONT) == 0, "SIGCONT node %d: %s", leader,
	      strerror(errno));
	int64_t resumed = bc_now_ms();
	int agreed = agreed_leader(nodes, n, part);
	printf("round %d: stopped node %d (leader of partition %d) after "
	       "%zu records for %" PRId64 " ms; node %d led it %" PRId64
	       " ms after the stop (seen within %d ms); all agree on node "
	       "%d %" PRId64 " ms after the resume\n", round, leader, part,
	       next - from, slept, now_leader, took, STOP_SLICE_MS, agreed,
	       bc_now_ms() - resumed);
	fflush(stdout);
	CHECK(now_leader > 0, "round %d: partition %d has no new leader while "
	      "node %d is stopped", round, part, leader);
	CHECK(agreed > 0, "round %d: after node %d resumed, the nodes do not "
	      "agree on a leader of partition %d within %d ms", round, leader,
	      part, AGREE_TIMEOUT_MS);
	return next;
}

// The offset after the last acknowledged record of each partition.
static void acked_ends(size_t next, int64_t *end)
{
	for (int q = 0; q < PARTITIONS; q++)
		end[q] = 0;
	for (size_t i = 0; i < next; i++)
		if (atomic_load(&bc_led.state[i]) == BC_ACKED &&
		    bc_led.acked_part[i] >= 0 &&
		    bc_led.acked_part[i] < PARTITIONS &&
		    bc_led.acked_off[i] + 1 > end[bc_led.acked_part[i]])
			end[bc_led.acked_part[i]] = bc_led.acked_off[i] + 1;
}

static void run_cluster(int n)
{
	struct bc_broker nodes[BC_CLUSTER_MAX];
	static const char *const args[] = { "--log.segment.bytes", "1048576",
					    NULL };
	int64_t acked_end[PARTITIONS];

	if (n < 1 || n > BC_CLUSTER_MAX)
		bc_dief("OX_TEST_CLUSTER=%d: 1..%d nodes", n, BC_CLUSTER_MAX);
	bc_cluster_start(nodes, n, "killc", args);
	bc_cluster_bootstrap(nodes, n, bootstrap_all, sizeof(bootstrap_all));
	int ml = meta_leader(nodes, n), rc;
	struct ox_admin *a = bc_admin(&nodes[ml]);
	rc = ox_admin_topic_create(a, topic, PARTITIONS, n, NULL, 0);
	if (rc < 0)
		bc_dief("create topic: %s (%s)", ox_strerror(rc),
			ox_admin_last_error(a));
	ox_admin_destroy(a);

	struct ox_producer *p = producer(&nodes[ml]);
	size_t next = 0, refused = 0;
	pace_per_ms = CLUSTER_RECORDS_PER_MS;
	for (int round = 0; round < CLUSTER_ROUNDS; round++) {
		int64_t kill_at = bc_now_ms() + KILL_MS_MIN +
				  (int64_t)bc_rng_below(KILL_MS_SPAN);
		int part = (int)bc_rng_below(PARTITIONS);
		size_t from = next;

		next = send_until(p, next, kill_at, &refused);
		int leader = partition_leader(nodes, n, part, -1);
		CHECK(leader > 0, "round %d: partition %d has no leader", round,
		      part);
		if (leader <= 0)
			continue;
		if (round % 2 == 0)
			next = kill_round(nodes, n, p, round, part, leader,
					  from, next, &refused);
		else
			next = stop_round(nodes, n, p, round, part, leader,
					  from, next, &refused);
	}
	next = send_until(p, next, bc_now_ms() + 500, &refused);
	rc = ox_producer_flush(p, FLUSH_TIMEOUT_MS);
	CHECK(rc == 0, "flush: %s", ox_strerror(rc));
	ox_producer_destroy(p);
	// Every replica catches up with its leader; the consumer then reads
	// up to that high watermark.
	acked_ends(next, acked_end);
	CHECK(bc_partitions_in_sync(nodes, n, topic, PARTITIONS,
				    SETTLE_TIMEOUT_MS, acked_end, cluster_end),
	      "the replicas did not all catch up within %d ms",
	      SETTLE_TIMEOUT_MS);
	for (int q = 0; q < PARTITIONS; q++)
		printf("partition %d: read up to %" PRId64 " (acknowledged up "
		       "to %" PRId64 ")\n", q, cluster_end[q], acked_end[q]);
	check_stored(&nodes[meta_leader(nodes, n)], next, refused);
	for (int i = 0; i < n; i++)
		CHECK(bc_broker_alive(&nodes[i]), "node %d died", i + 1);
	for (int i = 0; i < n; i++) {
		int st = bc_broker_stop(&nodes[i]);
		CHECK(st == 0, "node %d exited with status %d on SIGTERM, "
		      "not 0", i + 1, st);
	}
	bc_check_replicas("at the end", nodes, n, PARTITIONS, cluster_end, next,
			  record_ok, NULL);
	bc_finish();
}

// Every acknowledged record is stored, intact, once, where its callback
// said, in its key's order; records are only ones that were sent.
static void check_stored(struct bc_broker *b, size_t next, size_t refused)
{
	struct bc_tally t = bc_ledger_tally(next);
	size_t stored, lost, failed_stored = 0;

	printf("sent %zu records: %zu acknowledged, %zu failed (%zu refused "
	       "at send), %zu unanswered\n",
	       next, t.acked, t.failed, refused, t.unanswered);
	if (t.failed > refused)
		printf("delivery errors: first %s, last %s\n",
		       ox_strerror(atomic_load(&bc_led.first_err)),
		       ox_strerror(atomic_load(&bc_led.last_err)));
	CHECK(t.unanswered == 0, "%zu records never got a callback",
	      t.unanswered);
	CHECK(t.acked > 0, "no record was acknowledged");

	stored = read_back(b, next);
	lost = bc_ledger_missing("read back", next, NULL);
	for (size_t i = 0; i < next; i++)
		failed_stored += atomic_load(&bc_led.state[i]) != BC_ACKED &&
				 bc_led.found_off[i] >= 0;
	printf("read back %zu records; %zu acknowledged records missing or "
	       "moved; %zu failed records stored anyway\n",
	       stored, lost, failed_stored);
	CHECK(lost == 0, "%zu acknowledged records lost or moved", lost);
	check_key_order(next);
}

int main(int argc, char **argv)
{
	bc_start("broker-kill", argc, argv, WATCHDOG_S);
	bc_ledger_init(RECORDS_MAX);
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
