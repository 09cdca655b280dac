// SPDX-License-Identifier: Apache-2.0
//
// Moving a partition's replicas (REASSIGN_PARTITION, moves.c) on three
// oxbowd processes. The topic has one partition and one replica, so every
// move changes which node holds it:
//   1. Requests that cannot be carried out are refused, each with its
//      reason: an unknown node, a node listed twice, a list of the wrong
//      length, a partition or a topic that does not exist.
//   2. The partition moves from its node A to another node B while an
//      idempotent acks=all producer writes to it (its own thread): the
//      move finishes (CLUSTER_STATUS: not moving, B leads alone), A
//      removes its copy (the log directory and the Raft state file), and
//      B holds every record.
//   3. It moves back to A, and B (its only voter, leading) gets SIGKILL
//      early in the move: the move waits for B, goes on once B is
//      restarted, and finishes with B's copy removed.
//   4. A partition of an RF 3 topic moves one replica, its leader's, to
//      the fourth node under writes: the leader hands its leadership to a
//      listed voter, the group never has fewer than three voters and
//      ends with the listed three, and the old leader removes its copy.
// At the end no delivery may have failed, and every acknowledged record
// must be stored once, intact, at the offset its callback gave.
// A plain program (exit 0 pass, 1 fail, 77 skip): argv[1] is oxbowd.
#include <dirent.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/integration/broker_common.h"
#include "tests/integration/ledger.h"

#define NODES 4
#define WATCHDOG_S 150
#define MOVE_WAIT_MS 30000   // a move finishes within this
#define RECORDS_PER_MS 1     // the producer's steady rate
#define RECORDS_MAX 100000
#define KEYS 8
#define VALUE_BYTES 64
#define STALL_MS 20000

static const char solo[] = "solo", trio[] = "trio";
static struct bc_broker nodes[NODES];
static char bootstrap[256];

static struct bc_sender snd = {
	.topic = solo,
	.partition = 0,
	.per_ms = RECORDS_PER_MS,
	.keys = KEYS,
	.value_bytes = VALUE_BYTES,
};

// What the checks look at: where the sender writes (switched once the
// next topic is listed everywhere).
static const char *cur_topic(void)
{
	return atomic_load(&snd.topic);
}

// What node b says of partition 0: its leader, whether it is moving, and
// its replicas (the group's voters). False when b does not answer or
// holds no replica of it.
static bool part_seen(const struct bc_broker *b, int *leader, bool *moving,
		      int *replicas, int *n)
{
	Oxbow__ClusterStatusResponse *st = bc_cluster_status(b);
	bool found = false;

	if (st == NULL)
		return false;
	for (size_t k = 0; k < st->n_partitions; k++) {
		const Oxbow__PartitionStatus *p = st->partitions[k];

		if (strcmp(p->topic, cur_topic()) != 0 || p->partition != 0)
			continue;
		*leader = p->leader;
		*moving = p->moving;
		*n = (int)(p->n_replicas < NODES ? p->n_replicas : NODES);
		for (int i = 0; i < *n; i++)
			replicas[i] = p->replicas[i];
		found = true;
	}
	oxbow__cluster_status_response__free_unpacked(st, NULL);
	return found;
}

// The node that leads the partition, as it says itself (-1: none).
static int holder(void)
{
	for (int i = 0; i < NODES; i++) {
		int leader, ids[NODES], n;
		bool moving;

		if (nodes[i].pid > 0 && part_seen(&nodes[i], &leader, &moving,
						  ids, &n) &&
		    leader == i + 1)
			return i + 1;
	}
	return -1;
}

// Whether ids[0, n) holds exactly the nodes of want[0, want_n).
static bool same_nodes(const int *ids, int n, const int32_t *want, int want_n)
{
	if (n != want_n)
		return false;
	for (int i = 0; i < n; i++) {
		bool found = false;

		for (int k = 0; k < want_n; k++)
			found |= ids[i] == want[k];
		if (!found)
			return false;
	}
	return true;
}

// Waits until a node of want[0, n) leads the partition, saying it is not
// moving and its voters are exactly want; returns that leader or -1.
// Meanwhile the fewest voters any leader named goes into *fewest.
static int move_done(const int32_t *want, int want_n, int *fewest)
{
	int64_t start = bc_now_ms();

	*fewest = NODES + 1;
	while (bc_now_ms() - start < MOVE_WAIT_MS) {
		for (int i = 1; i <= NODES; i++) {
			int leader, ids[NODES], n;
			bool moving;

			if (nodes[i - 1].pid <= 0 ||
			    !part_seen(&nodes[i - 1], &leader, &moving, ids,
				       &n) ||
			    leader != i)
				continue;
			if (n < *fewest)
				*fewest = n;
			if (!moving && same_nodes(ids, n, want, want_n)) {
				printf("move of %s done after %" PRId64 " ms, "
				       "led by node %d, %d voters at the "
				       "fewest\n", cur_topic(),
				       bc_now_ms() - start, i, *fewest);
				return i;
			}
		}
		bc_sleep_ms(10);
	}
	return -1;
}

// The log directory of partition 0 of the newest topic on node b:
// topics/<id>/0 with the highest id (ids only grow, and this program
// creates its topics one after the other). False when b has none.
static bool part_dir(const struct bc_broker *b, char *out, size_t cap)
{
	char root[BC_PATH_MAX + 16];
	unsigned long long best = 0;
	struct dirent *de;
	DIR *d;

	snprintf(root, sizeof(root), "%s/topics", b->data_dir);
	d = opendir(root);
	if (d == NULL)
		return false;
	while ((de = readdir(d)) != NULL) {
		unsigned long long id = strtoull(de->d_name, NULL, 10);

		if (id > best)
			best = id;
	}
	closedir(d);
	return best > 0 &&
	       snprintf(out, cap, "%s/%llu/0", root, best) < (int)cap;
}

static bool exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

// Waits until node b's copy of the partition (dir, and its Raft state
// file dir.raft) is gone.
static bool copy_removed(int node, const char *dir)
{
	char state[BC_PATH_MAX + 340];
	int64_t start = bc_now_ms();

	snprintf(state, sizeof(state), "%s.raft", dir);
	while (bc_now_ms() - start < MOVE_WAIT_MS) {
		if (!exists(dir) && !exists(state)) {
			printf("node %d removed its copy %" PRId64 " ms after "
			       "the move\n", node, bc_now_ms() - start);
			return true;
		}
		bc_sleep_ms(20);
	}
	return false;
}

static int reassign(struct ox_admin *a, const char *name, int partition,
		    const int32_t *ids, size_t n)
{
	int rc = ox_admin_partition_reassign(a, name, partition, ids, n);

	printf("reassign %s/%d to %d node(s): %s%s%s\n", name, partition,
	       (int)n, rc == 0 ? "accepted" : ox_strerror(rc),
	       rc == 0 ? "" : ": ", rc == 0 ? "" : ox_admin_last_error(a));
	return rc;
}

// 1: what cannot be carried out is refused, saying why.
static void refusals(struct ox_admin *a, int from)
{
	int32_t other = from % NODES + 1;

	CHECK(reassign(a, solo, 0, (const int32_t[]){ 9 }, 1) ==
		      -OX_EINVALID_REQUEST &&
	      strstr(ox_admin_last_error(a), "node 9") != NULL,
	      "an unknown node was not refused by name");
	CHECK(reassign(a, solo, 0, (const int32_t[]){ other, other }, 2) ==
		      -OX_EINVALID_REQUEST,
	      "a list of the wrong length was not refused");
	CHECK(reassign(a, solo, 1, (const int32_t[]){ other }, 1) ==
		      -OX_EUNKNOWN_TOPIC,
	      "a partition that does not exist was not refused");
	CHECK(reassign(a, "nothing-here", 0, (const int32_t[]){ other }, 1) ==
		      -OX_EUNKNOWN_TOPIC,
	      "a topic that does not exist was not refused");
}

// Waits until every node lists the topic: a producer asking any of them
// then finds it.
static void wait_listed(const char *name)
{
	for (int i = 0; i < NODES; i++) {
		struct ox_admin *a = bc_admin(&nodes[i]);
		struct ox_topic_info *info = NULL;
		int64_t start = bc_now_ms();

		while (ox_admin_topic_describe(a, name, &info) < 0) {
			if (bc_now_ms() - start > MOVE_WAIT_MS)
				bc_dief("node %d does not list %s", i + 1, name);
			bc_sleep_ms(20);
		}
		ox_topic_infos_free(info, 1);
		ox_admin_destroy(a);
	}
}

// The high watermark of partition 0 of `name` as node `id` says it.
static int64_t stored_end(const char *name, int id)
{
	Oxbow__ClusterStatusResponse *st = bc_cluster_status(&nodes[id - 1]);
	int64_t end = -1;

	for (size_t k = 0; st != NULL && k < st->n_partitions; k++)
		if (strcmp(st->partitions[k]->topic, name) == 0)
			end = st->partitions[k]->high_watermark;
	if (st != NULL)
		oxbow__cluster_status_response__free_unpacked(st, NULL);
	CHECK(end >= 0, "node %d does not say the high watermark of %s", id,
	      name);
	return end;
}

static int trio_leader = 1;

// 4: the sender moves on to trio (RF 3 over three of the four nodes),
// whose leader's replica goes to the fourth node.
static void trio_move(struct ox_admin *a, char *dir, size_t cap)
{
	int32_t want[3];
	int leader = -1, ids[NODES], n = 0, fourth = 0, k = 0, fewest;
	bool moving;

	if (ox_admin_topic_create(a, trio, 1, 3, NULL, 0) < 0)
		bc_dief("create %s: %s", trio, ox_admin_last_error(a));
	wait_listed(trio);
	atomic_store(&snd.topic, trio);
	for (int64_t t0 = bc_now_ms(); bc_now_ms() - t0 < MOVE_WAIT_MS;) {
		if ((leader = holder()) > 0 &&
		    part_seen(&nodes[leader - 1], &leader, &moving, ids, &n) &&
		    n == 3)
			break;
		bc_sleep_ms(20);
	}
	if (leader <= 0 || n != 3)
		bc_dief("%s has no leader with three voters", trio);
	for (int i = 1; i <= NODES; i++)
		if (i != ids[0] && i != ids[1] && i != ids[2])
			fourth = i;
	for (int i = 0; i < 3; i++)
		want[k++] = ids[i] == leader ? fourth : ids[i];
	printf("%s: voters %d %d %d led by %d; moving %d's replica to %d\n",
	       trio, ids[0], ids[1], ids[2], leader, leader, fourth);
	CHECK(part_dir(&nodes[leader - 1], dir, cap) && exists(dir),
	      "node %d has no directory of %s", leader, trio);
	bc_sleep_ms(500); // writes go on meanwhile
	CHECK(reassign(a, trio, 0, want, 3) == 0, "the move of %s was refused",
	      trio);
	trio_leader = move_done(want, 3, &fewest);
	CHECK(trio_leader > 0, "the move of %s did not finish", trio);
	CHECK(fewest >= 3, "the group of %s had %d voters during the move",
	      trio, fewest); // V4
	CHECK(copy_removed(leader, dir), "node %d kept its copy %s", leader,
	      dir);
	if (trio_leader < 0)
		trio_leader = want[0];
	bc_sleep_ms(500);
}

int main(int argc, char **argv)
{
	static const char *const args[] = { "--log.segment.bytes", "1048576",
					    NULL };
	static const char *const kv[] = {
		"acks", "all", "enable.idempotence", "true", "linger.ms", "2",
		"request.timeout.ms", "5000", "delivery.timeout.ms", "60000",
		"max.block.ms", "10000", "socket.connect.timeout.ms", "2000",
		NULL
	};
	char dir_a[BC_PATH_MAX + 320], dir_b[BC_PATH_MAX + 320];
	struct ox_producer *p;
	struct ox_admin *a;
	int64_t end[1];
	int rc, from, to, fewest;

	bc_start("broker-cluster-move", argc, argv, WATCHDOG_S);
	bc_ledger_init(RECORDS_MAX);
	bc_cluster_start(nodes, NODES, "move", args);
	bc_cluster_bootstrap(nodes, NODES, bootstrap, sizeof(bootstrap));
	a = bc_admin(&nodes[bc_meta_agreed(nodes, NODES, 20000) - 1]);
	rc = ox_admin_topic_create(a, solo, 1, 1, NULL, 0);
	if (rc < 0)
		bc_dief("create %s: %s (%s)", solo, ox_strerror(rc),
			ox_admin_last_error(a));
	for (int64_t t0 = bc_now_ms();
	     (from = holder()) < 0 && bc_now_ms() - t0 < 10000;)
		bc_sleep_ms(20);
	if (from < 0)
		bc_dief("the new partition has no leader");
	to = from % NODES + 1;
	printf("partition 0 of %s is on node %d\n", solo, from);
	refusals(a, from);
	wait_listed(solo);

	p = bc_producer(&nodes[0], bootstrap, kv);
	snd.p = p;
	bc_sender_start(&snd);
	bc_sleep_ms(500);

	// 2: a move under writes.
	CHECK(part_dir(&nodes[from - 1], dir_a, sizeof(dir_a)) &&
	      exists(dir_a), "node %d has no directory of the partition",
	      from);
	CHECK(reassign(a, solo, 0, (const int32_t[]){ to }, 1) == 0,
	      "the move to node %d was refused", to);
	CHECK(move_done((const int32_t[]){ to }, 1, &fewest) == to,
	      "the move to node %d did not finish", to);
	CHECK(copy_removed(from, dir_a),
	      "node %d kept its copy %s", from, dir_a);
	CHECK(part_dir(&nodes[to - 1], dir_b, sizeof(dir_b)),
	      "node %d has no directory of the partition", to);
	bc_sleep_ms(500);

	// 3: back, with the node it leaves killed early in the move.
	CHECK(reassign(a, solo, 0, (const int32_t[]){ from }, 1) == 0,
	      "the move back to node %d was refused", from);
	// A step takes a tick of 100 ms: killed within two, it is mid-move.
	bc_sleep_ms((int)bc_rng_below(150));
	{
		int leader, ids[NODES], n;
		bool moving = false;

		part_seen(&nodes[to - 1], &leader, &moving, ids, &n);
		bc_broker_kill(&nodes[to - 1]);
		printf("node %d killed, %s, voters:", to,
		       moving ? "moving" : "not moving any more");
		for (int k = 0; k < n; k++)
			printf(" %d", ids[k]);
		printf("\n");
		CHECK(moving || n != 1 || ids[0] != from,
		      "the kill came after the move");
	}
	bc_sleep_ms(1000);
	bc_broker_start(&nodes[to - 1]);
	CHECK(move_done((const int32_t[]){ from }, 1, &fewest) == from,
	      "the move back to node %d did not finish", from);
	CHECK(copy_removed(to, dir_b),
	      "node %d kept its copy %s", to, dir_b);
	bc_sleep_ms(500);

	// 4: an RF 3 partition swaps its leader's replica for the fourth node.
	trio_move(a, dir_a, sizeof(dir_a));

	bc_sender_stop(&snd);
	rc = ox_producer_flush(p, 60000);
	CHECK(rc == 0, "flush: %s", ox_strerror(rc));
	ox_producer_destroy(p);
	ox_admin_destroy(a);

	struct bc_tally t = bc_ledger_tally(snd.sent);
	printf("sent %zu records: %zu acknowledged, %zu failed (%zu refused "
	       "at send), %zu unanswered\n", snd.sent, t.acked, t.failed,
	       snd.refused,
	       t.unanswered);
	CHECK(t.failed == 0 && t.unanswered == 0 && t.acked > 0,
	      "deliveries failed or went unanswered (first error: %s)",
	      ox_strerror(atomic_load(&bc_led.first_err)));
	end[0] = stored_end(solo, from);
	struct bc_read rd = bc_read_back(&nodes[from - 1], bootstrap, solo, 1,
					 end, snd.sent, bc_sender_record_ok,
					 &snd, STALL_MS);
	end[0] = stored_end(trio, trio_leader);
	struct bc_read rd3 = bc_read_back(&nodes[trio_leader - 1], bootstrap,
					  trio, 1, end, snd.sent, bc_sender_record_ok,
					  &snd, STALL_MS);
	size_t acked, lost = bc_ledger_missing("read back", snd.sent, &acked);

	rd.got += rd3.got;
	rd.bad += rd3.bad;
	rd.dups += rd3.dups;
	printf("read back %zu records of both topics: %zu acknowledged, %zu "
	       "missing, %zu damaged, %zu stored twice\n", rd.got, acked,
	       lost, rd.bad, rd.dups);
	CHECK(lost == 0 && rd.bad == 0 && rd.dups == 0, "the partition does "
	      "not hold exactly what was acknowledged");
	for (int i = 0; i < NODES; i++)
		CHECK(bc_broker_stop(&nodes[i]) == 0, "node %d did not stop "
		      "cleanly", i + 1);
	bc_finish();
}
