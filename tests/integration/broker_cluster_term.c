// SPDX-License-Identifier: Apache-2.0
//
// SIGTERM of a leader hands its groups over. Three oxbowd processes form a
// cluster; a topic of replication factor 3 takes a steady stream of keyed
// records from an idempotent acks=all producer (its own thread). Then:
//   1. the leader of one partition gets SIGTERM: another node must lead
//      that partition well within the partitions' minimum election
//      timeout of the signal (the stopping node transfers leadership; a
//      new leader found by timeout takes longer), the node must exit 0
//      within a few seconds, and the new leader must stop counting it in
//      sync once it is gone; restarted, it must be counted in sync again;
//   2. the same for the metadata leader: a new metadata leader within the
//      metadata group's minimum election timeout;
// and at the end no delivery may have failed, and every acknowledged
// record must be stored once, intact, at the offset its callback gave.
// It prints each hand-over's time. Every node then stops with status 0.
// A plain program (exit 0 pass, 1 fail, 77 skip): argv[1] is oxbowd.
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/integration/broker_common.h"
#include "tests/integration/ledger.h"

#define NODES 3
#define PARTITIONS 3
#define WATCHDOG_S 120
// The minimum election timeouts of the cluster (10 and 15 ticks of the
// 10 ms metadata tick): without a hand-over nobody campaigns sooner.
#define PARTITION_ELECTION_MIN_MS 100
#define META_ELECTION_MIN_MS 150
#define EXIT_MAX_MS 5000       // a SIGTERM'd node is gone within this
#define LEADER_WAIT_MS 10000   // looked for this long before failing
#define OUT_OF_SYNC_MAX_MS 3000 // a gone follower leaves in_sync within
#define SETTLE_TIMEOUT_MS 20000 // every replica in sync within this
#define RECORDS_PER_MS 1       // the producer's steady rate
#define RECORDS_MAX 200000
#define KEYS 16
#define VALUE_BYTES 64
#define STALL_MS 20000

static const char topic[] = "term";
static struct bc_broker nodes[NODES];
static char bootstrap[256];

static struct bc_sender snd = {
	.topic = topic,
	.partition = OX_PARTITION_ANY,
	.per_ms = RECORDS_PER_MS,
	.keys = KEYS,
	.value_bytes = VALUE_BYTES,
};

static struct ox_producer *producer(void)
{
	static const char *const kv[] = {
		"acks", "all", "enable.idempotence", "true", "linger.ms", "2",
		"request.timeout.ms", "5000", "delivery.timeout.ms", "30000",
		"max.block.ms", "10000", "socket.connect.timeout.ms", "2000",
		NULL
	};

	return bc_producer(&nodes[0], bootstrap, kv);
}

// The leader of partition q as a running node other than index `skip`
// names it (-1: none known).
static int leader_seen(int q, int skip)
{
	for (int i = 0; i < NODES; i++) {
		int leader = -1, ids[NODES], n;
		int64_t hw;

		if (i != skip && nodes[i].pid > 0 &&
		    bc_partition_status(&nodes[i], topic, q, &leader, &hw, ids,
					NODES, &n) &&
		    leader > 0)
			return leader;
	}
	return -1;
}

// The metadata leader as a running node other than index `skip` names it.
static int meta_seen(int skip)
{
	for (int i = 0; i < NODES; i++) {
		int leader;

		if (i != skip && nodes[i].pid > 0 &&
		    (leader = bc_meta_leader(&nodes[i])) > 0)
			return leader;
	}
	return -1;
}

// Every node names one metadata leader and knows every node.
static int meta_agreed(void)
{
	return bc_meta_agreed(nodes, NODES, SETTLE_TIMEOUT_MS);
}

// Every partition's replicas in sync, on every node's word (the high
// watermarks into end, may be NULL).
static bool all_in_sync(int64_t *end)
{
	return bc_partitions_in_sync(nodes, NODES, topic, PARTITIONS,
				     SETTLE_TIMEOUT_MS, NULL, end);
}

// Whether node `leader`, leading q, counts node `id` in sync (1), not
// (0), or does not answer or lead q (-1).
static int counts_in_sync(int leader, int q, int id)
{
	return bc_counts_in_sync(nodes, leader, topic, q, id);
}

// Waits until the leader of every partition counts node `victim` in
// sync again (while the producer goes on, so the high watermarks move).
static bool back_in_sync(const char *what, int victim)
{
	int64_t start = bc_now_ms();

	while (bc_now_ms() - start < SETTLE_TIMEOUT_MS) {
		int q = 0;

		for (; q < PARTITIONS; q++) {
			int leader = leader_seen(q, -1);

			if (leader <= 0 || nodes[leader - 1].pid <= 0 ||
			    counts_in_sync(leader, q, victim) != 1)
				break;
		}
		if (q == PARTITIONS) {
			printf("%s: node %d back in sync on every partition "
			       "%" PRId64 " ms after its restart\n", what,
			       victim, bc_now_ms() - start);
			return true;
		}
		bc_sleep_ms(20);
	}
	return false;
}

// Sends SIGTERM to node `victim` (an id) and follows what happens: the
// time until another node leads partition q (q < 0: until another node
// leads the metadata group), and the time until the process exits with
// its status. Then checks the new partition leader stops counting the
// gone node in sync, and restarts it.
static void term_round(const char *what, int victim, int q, int bound_ms)
{
	struct bc_broker *b = &nodes[victim - 1];
	int64_t sent_at, led_ms = -1, exit_ms = -1;
	int now_leader = -1, status = -1;

	sent_at = bc_now_ms();
	CHECK(kill(b->pid, SIGTERM) == 0, "SIGTERM node %d: %s", victim,
	      strerror(errno));
	while (bc_now_ms() - sent_at < LEADER_WAIT_MS &&
	       (led_ms < 0 || exit_ms < 0)) {
		if (led_ms < 0) {
			int l = q >= 0 ? leader_seen(q, victim - 1) :
					 meta_seen(victim - 1);

			if (l > 0 && l != victim) {
				led_ms = bc_now_ms() - sent_at;
				now_leader = l;
			}
		}
		if (exit_ms < 0 && (status = bc_broker_reap(b)) >= 0)
			exit_ms = bc_now_ms() - sent_at;
		bc_sleep_ms(1);
	}
	if (exit_ms < 0) {
		status = bc_broker_stop(b);
		exit_ms = bc_now_ms() - sent_at;
	}
	printf("%s: SIGTERM node %d; node %d leads %" PRId64 " ms later; "
	       "node %d exited with status %d after %" PRId64 " ms\n", what,
	       victim, now_leader, led_ms, victim, status, exit_ms);
	fflush(stdout);
	CHECK(now_leader > 0, "%s: no other node leads within %d ms", what,
	      LEADER_WAIT_MS);
	CHECK(led_ms >= 0 && led_ms < bound_ms, "%s: a new leader took %"
	      PRId64 " ms, not under the minimum election timeout (%d ms): "
	      "leadership was not handed over", what, led_ms, bound_ms);
	CHECK(status == 0, "%s: node %d exited with status %d on SIGTERM",
	      what, victim, status);
	CHECK(exit_ms < EXIT_MAX_MS, "%s: node %d took %" PRId64 " ms to "
	      "exit", what, victim, exit_ms);
	if (q >= 0 && now_leader > 0) {
		int64_t gone = bc_now_ms();

		while (counts_in_sync(now_leader, q, victim) != 0 &&
		       bc_now_ms() - gone < OUT_OF_SYNC_MAX_MS)
			bc_sleep_ms(10);
		printf("%s: node %d no longer in sync on node %d after %"
		       PRId64 " ms\n", what, victim, now_leader,
		       bc_now_ms() - gone);
		CHECK(counts_in_sync(now_leader, q, victim) == 0, "%s: node %d "
		      "still counts node %d in sync (or does not answer) %d "
		      "ms after it stopped", what, now_leader, victim,
		      OUT_OF_SYNC_MAX_MS);
	}
	bc_sleep_ms(500); // the producer carries on without it
	bc_broker_start(b);
	CHECK(back_in_sync(what, victim), "%s: node %d is not back in sync "
	      "within %d ms of its restart", what, victim, SETTLE_TIMEOUT_MS);
}

// Reads every partition up to end and checks each record: one that was
// sent, intact, stored once; then that every acknowledged record is where
// its callback said.
static void check_stored(const int64_t *end)
{
	struct bc_read rd = bc_read_back(&nodes[0], bootstrap, topic,
					 PARTITIONS, end, snd.sent,
					 bc_sender_record_ok, &snd, STALL_MS);
	size_t acked, lost = bc_ledger_missing("read back", snd.sent, &acked);

	printf("read back %zu records: %zu acknowledged, %zu missing, %zu "
	       "damaged, %zu stored twice\n", rd.got, acked, lost, rd.bad,
	       rd.dups);
	CHECK(lost == 0 && rd.bad == 0 && rd.dups == 0, "the partitions do not "
	      "hold exactly what was acknowledged");
}

// Every record got its callback, and none failed.
static void check_deliveries(void)
{
	struct bc_tally t = bc_ledger_tally(snd.sent);

	printf("sent %zu records: %zu acknowledged, %zu failed (%zu refused "
	       "at send), %zu unanswered\n", snd.sent, t.acked, t.failed,
	       snd.refused,
	       t.unanswered);
	CHECK(t.failed == 0, "%zu deliveries failed (first: %s)", t.failed,
	      ox_strerror(atomic_load(&bc_led.first_err)));
	CHECK(t.unanswered == 0, "%zu records never got a callback",
	      t.unanswered);
	CHECK(t.acked > 0, "nothing was acknowledged");
}

int main(int argc, char **argv)
{
	static const char *const args[] = { "--log.segment.bytes", "1048576",
					    NULL };
	int64_t end[PARTITIONS];
	struct ox_producer *p;
	struct ox_admin *a;
	int rc, victim;

	bc_start("broker-cluster-term", argc, argv, WATCHDOG_S);
	bc_ledger_init(RECORDS_MAX);
	bc_cluster_start(nodes, NODES, "term", args);
	bc_cluster_bootstrap(nodes, NODES, bootstrap, sizeof(bootstrap));
	a = bc_admin(&nodes[meta_agreed() - 1]);
	rc = ox_admin_topic_create(a, topic, PARTITIONS, NODES, NULL, 0);
	if (rc < 0)
		bc_dief("create %s: %s (%s)", topic, ox_strerror(rc),
			ox_admin_last_error(a));
	ox_admin_destroy(a);
	if (!all_in_sync(NULL))
		bc_dief("the new topic's replicas never came in sync");

	p = producer();
	snd.p = p;
	bc_sender_start(&snd);
	bc_sleep_ms(1000);

	victim = leader_seen(0, -1);
	CHECK(victim > 0, "partition 0 has no leader");
	if (victim > 0)
		term_round("partition 0 leader", victim, 0,
			   PARTITION_ELECTION_MIN_MS);
	bc_sleep_ms(500);
	victim = meta_agreed();
	term_round("metadata leader", victim, -1, META_ELECTION_MIN_MS);
	bc_sleep_ms(500);

	bc_sender_stop(&snd);
	rc = ox_producer_flush(p, 60000);
	CHECK(rc == 0, "flush: %s", ox_strerror(rc));
	ox_producer_destroy(p);
	check_deliveries();
	CHECK(all_in_sync(end), "the replicas did not settle");
	check_stored(end);
	for (int i = 0; i < NODES; i++) {
		int st = bc_broker_stop(&nodes[i]);

		CHECK(st == 0, "node %d exited with status %d on SIGTERM",
		      i + 1, st);
	}
	bc_finish();
}
