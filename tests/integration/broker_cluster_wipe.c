// SPDX-License-Identifier: Apache-2.0
//
// A node whose data directory is wiped rejoins and catches up (raft.h R9).
// Three oxbowd processes form a cluster; a topic of replication factor 3,
// created through a node that does not lead the metadata (the request is
// forwarded), takes FIRST_RECORDS keyed records from an idempotent
// acks=all producer, every one acknowledged. Then, in two rounds, a node W
// is SIGKILLed, its data directory emptied (port and arguments kept) and
// W started again, while the producer goes on; round 1 picks a node that
// does not lead the metadata, round 2 one that leads a partition (the
// metadata leader when it leads one). In each round:
//   - W reports itself rejoining (CLUSTER_STATUS) when first asked;
//   - writes keep succeeding while it rejoins (the other two are a
//     majority): every record sent meanwhile is acknowledged (maybe once
//     it is done: the producer's retries back off) and no delivery fails;
//   - within REJOIN_TIMEOUT_MS W is done rejoining and the leader of every
//     partition counts it in sync; then, the producer stopped, every node
//     names one leader and one high watermark per partition;
//   - W's data directory holds the topic's partitions again.
// After round 2 every node stops cleanly and their partition logs are
// compared offline (log_digest.h): the replicas hold the same batches up
// to the high watermark at least, W's from the same start as the others,
// and every acknowledged record is in every replica at its offset. The
// cluster then starts again as a whole.
// The safety round: node X is SIGSTOPped while the producer goes on, so
// that records are acknowledged by W and a third node K alone; W is then
// killed, wiped and started, killed again moments later (its state now
// partly written), K is killed, X resumed and W started once more. Only W
// (rejoining, without those records) and X (without them too) run: W must
// neither vote nor count toward a commit, so for WINDOW_MS no running
// node may lead the metadata or a partition of the topic, W must report
// itself rejoining, and no record may be acknowledged. K then returns:
// the cluster must recover, W catch up, and every record acknowledged,
// before or after, be read back once, intact, at the offset its callback
// gave; the offline comparison runs once more at the end.
// It prints the time W took to rejoin and the records checked.
// A plain program (exit 0 pass, 1 fail, 77 skip): argv[1] is oxbowd.
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tests/integration/broker_common.h"
#include "tests/integration/ledger.h"
#include "tests/integration/log_digest.h"
#include "tests/integration/replicas.h"

#define NODES 3
#define PARTITIONS 3
#define WATCHDOG_S 110
#define FIRST_RECORDS 50000    // acknowledged before the first wipe
#define RECORDS_PER_MS 2       // the sender thread's rate during rounds
#define RECORDS_MAX 200000     // bounds the bookkeeping
#define KEYS 16
#define VALUE_BYTES 100
// Records queued or in flight the senders allow themselves: enough to
// keep every partition busy, few enough that a round is not all queued
// in its first milliseconds.
#define PENDING_MAX 4000
#define LOAD_MS 300            // the producer runs this long before a kill
#define REJOIN_TIMEOUT_MS 25000 // a wiped node is back in sync within this
#define SETTLE_TIMEOUT_MS 20000 // every replica in sync within this
#define LEADER_WAIT_MS 10000   // leaders elected without X within this
// While X sleeps, W and K acknowledge at least this many records that X
// never sees.
#define LAG_RECORDS_MIN 500
// The metadata replica of a wiped node cannot finish rejoining sooner
// than two metadata election timeouts (2 x 150 ms) after it first heard
// the leader: a CLUSTER_STATUS asked within this of its start must find
// it rejoining.
#define FIRST_LOOK_MS 200
// X resumed, a stale leader it may still think it is goes within an
// election timeout (0.5 to 1 s for partitions); a leader elected with
// W's vote would stay. The window is watched after this grace.
#define WINDOW_GRACE_MS 1500
#define WINDOW_MS 3000
#define STALL_MS 20000
#define FLUSH_TIMEOUT_MS 60000

static const char topic[] = "wipe";
static struct bc_broker nodes[NODES];
static char bootstrap[256];

static atomic_bool stop_sending;
static size_t sent;    // records handed to the producer
static atomic_size_t sent_now; // sent, for the test while the sender runs
static size_t refused; // refused at send: no callback comes
static pthread_t sender_thread;

static size_t key_of(uint64_t i, char *buf, size_t cap)
{
	return (size_t)snprintf(buf, cap, "key-%u", (unsigned)(i % KEYS));
}

// Whether a stored record (value, key) is record i's, intact.
static bool record_is(void *arg, int64_t i, const void *key,
		      size_t key_len, size_t value_len)
{
	char want[16];
	size_t n;

	(void)arg;
	if (i < 0 || (size_t)i >= sent || value_len != VALUE_BYTES)
		return false;
	n = key_of((uint64_t)i, want, sizeof(want));
	return key != NULL && key_len == n && memcmp(key, want, n) == 0;
}

// Hands record `sent` to the producer.
static void send_next(struct ox_producer *p)
{
	uint8_t value[VALUE_BYTES];
	char key[16];

	bc_value_fill(value, sent, sizeof(value));
	struct ox_message m = {
		.topic = topic,
		.partition = OX_PARTITION_ANY,
		.key = key,
		.key_len = key_of(sent, key, sizeof(key)),
		.value = value,
		.value_len = sizeof(value),
		.cb = bc_delivered,
		.opaque = (void *)(uintptr_t)sent,
	};
	if (ox_producer_send(p, &m) < 0) {
		atomic_store(&bc_led.state[sent], BC_FAILED);
		refused++;
	}
	sent++;
	atomic_store(&sent_now, sent);
}

// Sends RECORDS_PER_MS records a millisecond until told to stop.
static void *sender(void *arg)
{
	struct ox_producer *p = arg;
	int64_t start = bc_now_ms();
	size_t from = sent;

	while (!atomic_load(&stop_sending) && sent < RECORDS_MAX) {
		int64_t due = (bc_now_ms() - start + 1) * RECORDS_PER_MS;

		if ((int64_t)(sent - from) > due ||
		    ox_producer_pending(p) > PENDING_MAX) {
			bc_sleep_ms(1);
			continue;
		}
		send_next(p);
	}
	return NULL;
}

static void sender_start(struct ox_producer *p)
{
	atomic_store(&stop_sending, false);
	if (pthread_create(&sender_thread, NULL, sender, p) != 0)
		bc_dief("pthread_create failed");
}

// Stops the sender and waits for every callback.
static void sender_stop(struct ox_producer *p)
{
	atomic_store(&stop_sending, true);
	pthread_join(sender_thread, NULL);
	int rc = ox_producer_flush(p, FLUSH_TIMEOUT_MS);
	CHECK(rc == 0, "flush: %s", ox_strerror(rc));
}

static struct ox_producer *producer(void)
{
	static const char *const kv[] = {
		"acks", "all", "enable.idempotence", "true", "linger.ms", "2",
		"request.timeout.ms", "5000", "delivery.timeout.ms", "40000",
		"max.block.ms", "10000", "socket.connect.timeout.ms", "2000",
		NULL
	};

	return bc_producer(&nodes[0], bootstrap, kv);
}

// The leader of partition q as a running node other than id `skip` names
// it (-1: none known).
static int leader_seen(int q, int skip)
{
	for (int i = 0; i < NODES; i++) {
		int leader = -1, ids[NODES], n;
		int64_t hw;

		if (i + 1 != skip && nodes[i].pid > 0 &&
		    bc_partition_status(&nodes[i], topic, q, &leader, &hw, ids,
					NODES, &n) &&
		    leader > 0)
			return leader;
	}
	return -1;
}

// Every node names one metadata leader and knows every node.
static int meta_agreed(void)
{
	return bc_meta_agreed(nodes, NODES, SETTLE_TIMEOUT_MS);
}

// Whether node `leader`, leading q, counts node `id` in sync (1), not
// (0), or does not answer or lead q (-1).
static int counts_in_sync(int leader, int q, int id)
{
	return bc_counts_in_sync(nodes, leader, topic, q, id);
}

// Every partition's replicas in sync, on every node's word (the high
// watermarks into end, may be NULL).
static bool all_in_sync(int64_t *end)
{
	return bc_partitions_in_sync(nodes, NODES, topic, PARTITIONS,
				     SETTLE_TIMEOUT_MS, NULL, end);
}

// Whether node id w answers CLUSTER_STATUS now: -1 no answer, else 1
// when it says it is rejoining, 0 when not; its metadata leader goes
// into *leader.
static int rejoining(int w, int *leader)
{
	Oxbow__ClusterStatusResponse *m = bc_cluster_status(&nodes[w - 1]);
	int r;

	*leader = -1;
	if (m == NULL)
		return -1;
	r = m->rejoining ? 1 : 0;
	*leader = m->meta_leader;
	oxbow__cluster_status_response__free_unpacked(m, NULL);
	return r;
}

// Waits until node w, started at started_ms on an empty data directory,
// is done rejoining (CLUSTER_STATUS) and the leader of every partition
// counts it in sync. Prints both times; returns whether it happened
// within REJOIN_TIMEOUT_MS.
static bool wait_rejoined(const char *what, int w, int64_t started_ms)
{
	int64_t meta_ms = -1, sync_ms = -1;

	while (bc_now_ms() - started_ms < REJOIN_TIMEOUT_MS && sync_ms < 0) {
		int leader, q = 0;

		if (meta_ms < 0 && rejoining(w, &leader) == 0 && leader > 0)
			meta_ms = bc_now_ms() - started_ms;
		for (; meta_ms >= 0 && q < PARTITIONS; q++) {
			int l = leader_seen(q, -1);

			if (l <= 0 || nodes[l - 1].pid <= 0 ||
			    counts_in_sync(l, q, w) != 1)
				break;
		}
		if (meta_ms >= 0 && q == PARTITIONS)
			sync_ms = bc_now_ms() - started_ms;
		else
			bc_sleep_ms(20);
	}
	printf("%s: node %d done rejoining the metadata after %" PRId64
	       " ms, in sync on every partition after %" PRId64 " ms (-1: "
	       "not within %d ms)\n", what, w, meta_ms, sync_ms,
	       REJOIN_TIMEOUT_MS);
	fflush(stdout);
	return sync_ms >= 0;
}

static uint64_t tree_bytes; // dir_bytes' sum (nftw has no argument)

static int add_file(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	(void)path;
	(void)ftw;
	if (flag == FTW_F)
		tree_bytes += (uint64_t)st->st_size;
	return 0;
}

// Bytes of the files under dir.
static uint64_t dir_bytes(const char *dir)
{
	tree_bytes = 0;
	if (nftw(dir, add_file, 16, FTW_PHYS) != 0)
		return 0;
	return tree_bytes;
}

// Records acknowledged so far and the bytes their values take.
static size_t acked_count(uint64_t *bytes)
{
	size_t n = atomic_load(&bc_led.acked_n);

	*bytes = (uint64_t)n * VALUE_BYTES;
	return n;
}

// W's data directory holds the topic's partitions again, with at least
// the bytes of the values acknowledged so far.
static void check_on_disk(const char *what, int w)
{
	char dir[LD_PATH_MAX];
	uint64_t want, have = 0;
	int parts = 0;

	acked_count(&want);
	int rc = ld_cluster_topic_dir(nodes[w - 1].data_dir, dir, sizeof(dir));
	if (rc == 0) {
		parts = bc_dir_partitions(dir);
		have = dir_bytes(dir);
	}
	printf("%s: node %d holds %d partitions, %" PRIu64 " bytes (values "
	       "acknowledged: %" PRIu64 " bytes)\n", what, w, parts, have,
	       want);
	CHECK(rc == 0, "%s: node %d has no directory of the topic: %s", what,
	      w, ox_strerror(rc));
	CHECK(parts == PARTITIONS, "%s: node %d holds %d partitions of the "
	      "topic, not %d", what, w, parts, PARTITIONS);
	CHECK(have >= want, "%s: node %d holds %" PRIu64 " bytes of the "
	      "topic, less than the %" PRIu64 " bytes of values acknowledged",
	      what, w, have, want);
}

// Kills node w, empties its data directory and starts it again; returns
// when it is ready, with its start time in *started_ms. Checks that it
// says it is rejoining when first asked (FIRST_LOOK_MS).
static void wipe_restart(const char *what, int w, int64_t *started_ms)
{
	struct bc_broker *b = &nodes[w - 1];
	int leader, r;

	bc_broker_kill(b);
	bc_broker_wipe(b);
	bc_broker_start(b);
	*started_ms = b->spawned_ms;
	int64_t ready_ms = bc_now_ms();
	r = rejoining(w, &leader);
	int64_t looked_ms = bc_now_ms() - ready_ms;
	printf("%s: node %d wiped and started (ready after %" PRId64 " ms); "
	       "asked %" PRId64 " ms later: %s\n", what, w,
	       ready_ms - *started_ms, looked_ms,
	       r < 0 ? "no answer" : r ? "rejoining" : "not rejoining");
	fflush(stdout);
	if (looked_ms <= FIRST_LOOK_MS)
		CHECK(r == 1, "%s: node %d, started on an empty data "
		      "directory, does not say it is rejoining %" PRId64
		      " ms after it was ready", what, w, looked_ms);
}

// One wipe round: W is killed under load, wiped and started again; it
// must catch up while writes go on.
static void wipe_round(const char *what, int w, struct ox_producer *p)
{
	size_t failed0 = atomic_load(&bc_led.failed_n), acked0;
	uint64_t bytes;
	int64_t started;

	sender_start(p);
	bc_sleep_ms(LOAD_MS);
	wipe_restart(what, w, &started);
	acked0 = acked_count(&bytes);
	size_t from = atomic_load(&sent_now);
	CHECK(wait_rejoined(what, w, started), "%s: node %d did not rejoin "
	      "within %d ms", what, w, REJOIN_TIMEOUT_MS);
	size_t during = acked_count(&bytes) - acked0;
	size_t to = atomic_load(&sent_now);
	sender_stop(p);
	size_t failed = atomic_load(&bc_led.failed_n) - failed0;
	// Records sent while W rejoined are acknowledged, maybe only after
	// it is done: the producer finds the new leaders after a backoff
	// that doubles from retry.backoff.ms, which may outlast the rejoin.
	size_t later = 0;
	for (size_t i = from; i < to; i++)
		later += atomic_load(&bc_led.state[i]) == BC_ACKED;
	printf("%s: %zu records sent while node %d rejoined, %zu of them "
	       "acknowledged (%zu acknowledged meanwhile), %zu failed\n",
	       what, to - from, w, later, during, failed);
	CHECK(to > from, "%s: no record was sent while node %d rejoined", what,
	      w);
	CHECK(later == to - from, "%s: %zu of the %zu records sent while "
	      "node %d rejoined were not acknowledged", what,
	      to - from - later, to - from, w);
	CHECK(failed == 0, "%s: %zu deliveries failed while node %d rejoined "
	      "(first: %s)", what, failed, w,
	      ox_strerror(atomic_load(&bc_led.first_err)));
	CHECK(all_in_sync(NULL), "%s: the replicas did not settle", what);
	check_on_disk(what, w);
}

// Reads every partition up to end and checks each record: one that was
// sent, intact, stored once; then that every acknowledged record is where
// its callback said.
static void check_stored(const int64_t *end)
{
	int64_t start = bc_now_ms();
	struct bc_read rd;
	size_t acked, lost;

	bc_ledger_forget_found(sent);
	rd = bc_read_back(&nodes[0], bootstrap, topic, PARTITIONS, end, sent,
			  record_is, NULL, STALL_MS);
	lost = bc_ledger_missing("read back", sent, &acked);
	printf("read back %zu records in %" PRId64 " ms: %zu acknowledged "
	       "checked, %zu missing or moved, %zu damaged, %zu stored "
	       "twice\n", rd.got, bc_now_ms() - start, acked, lost, rd.bad,
	       rd.dups);
	CHECK(acked >= FIRST_RECORDS, "only %zu records acknowledged", acked);
	CHECK(rd.got >= acked, "read %zu records, fewer than the %zu "
	      "acknowledged", rd.got, acked);
	CHECK(lost == 0 && rd.bad == 0 && rd.dups == 0, "the partitions do not "
	      "hold exactly what was acknowledged");
}

// Stops every node cleanly (exit 0) and compares their logs offline.
static void stop_and_compare(const char *what, const int64_t *end)
{
	for (int i = 0; i < NODES; i++) {
		int st = bc_broker_stop(&nodes[i]);

		CHECK(st == 0, "%s: node %d exited with status %d on SIGTERM",
		      what, i + 1, st);
	}
	bc_check_replicas(what, nodes, NODES, PARTITIONS, end, sent, record_is,
			  NULL);
}

// Waits until every partition and the metadata group are led by node a
// or b, as that leader itself says (X, the third, sleeps). Returns
// whether that happened within LEADER_WAIT_MS.
static bool led_by(int a, int b)
{
	int64_t start = bc_now_ms();

	while (bc_now_ms() - start < LEADER_WAIT_MS) {
		int q = 0, ml = bc_meta_leader(&nodes[a - 1]);

		if ((ml == a || ml == b) && bc_meta_leader(&nodes[ml - 1]) == ml)
			for (; q < PARTITIONS; q++) {
				int l = -1, ids[NODES], n;
				int64_t hw;

				if (!bc_partition_status(&nodes[a - 1], topic,
							 q, &l, &hw, ids,
							 NODES, &n) ||
				    (l != a && l != b) ||
				    counts_in_sync(l, q, l) != 1)
					break;
			}
		if ((ml == a || ml == b) && q == PARTITIONS) {
			printf("safety: nodes %d and %d lead everything %"
			       PRId64 " ms after the stop\n", a, b,
			       bc_now_ms() - start);
			return true;
		}
		bc_sleep_ms(20);
	}
	return false;
}

// While only W (rejoining) and X run: nobody may lead the metadata or a
// partition of the topic (a leader would need W's vote), W must say it is
// rejoining, and no record may be acknowledged (a commit would need W's
// copy).
static void watch_window(int w, int x)
{
	size_t acked0 = atomic_load(&bc_led.acked_n);
	int64_t start = bc_now_ms();
	int w_answers = 0, w_rejoining = 0, x_answers = 0, led = 0;

	while (bc_now_ms() - start < WINDOW_MS) {
		int ids[2] = { w, x };

		for (int k = 0; k < 2; k++) {
			Oxbow__ClusterStatusResponse *m =
				bc_cluster_status(&nodes[ids[k] - 1]);

			if (m == NULL)
				continue;
			w_answers += k == 0;
			w_rejoining += k == 0 && m->rejoining;
			x_answers += k == 1;
			if ((m->meta_leader == w || m->meta_leader == x) &&
			    led++ < 5)
				CHECK(0, "safety: node %d names node %d the "
				      "metadata leader (term %" PRIu64 ") "
				      "while only nodes %d and %d run", ids[k],
				      m->meta_leader, m->meta_term, w, x);
			for (size_t i = 0; i < m->n_partitions; i++) {
				const Oxbow__PartitionStatus *ps =
					m->partitions[i];

				if (strcmp(ps->topic, topic) != 0 ||
				    (ps->leader != w && ps->leader != x))
					continue;
				if (led++ < 5)
					CHECK(0, "safety: node %d names node %d"
					      " the leader of partition %d "
					      "while only nodes %d and %d run",
					      ids[k], ps->leader,
					      ps->partition, w, x);
			}
			oxbow__cluster_status_response__free_unpacked(m, NULL);
		}
		bc_sleep_ms(50);
	}
	size_t acked = atomic_load(&bc_led.acked_n) - acked0;
	printf("safety: %d ms with nodes %d and %d alone: %d and %d answers, "
	       "node %d rejoining in %d; %d leaders seen, %zu records "
	       "acknowledged\n", WINDOW_MS, w, x, w_answers, x_answers, w,
	       w_rejoining, led, acked);
	fflush(stdout);
	CHECK(w_answers > 0 && x_answers > 0, "safety: nodes %d and %d did "
	      "not both answer CLUSTER_STATUS", w, x);
	CHECK(w_rejoining == w_answers, "safety: node %d said it was not "
	      "rejoining in %d of %d answers", w, w_answers - w_rejoining,
	      w_answers);
	CHECK(led == 0, "safety: %d leaders elected without a majority", led);
	CHECK(acked == 0, "safety: %zu records acknowledged while only nodes "
	      "%d and %d ran", acked, w, x);
}

// The safety round (see the top of the file): X sleeps while W and K
// take records; W is wiped, started, killed again, K killed, X resumed
// and W started again; then K returns and everything must be back.
static void safety_round(int w, struct ox_producer *p, int64_t *end)
{
	int x = w % NODES + 1, k = x % NODES + 1;
	struct bc_broker *bx = &nodes[x - 1];
	size_t acked0;
	uint64_t bytes;
	int64_t started;

	sender_start(p);
	bc_sleep_ms(LOAD_MS);
	CHECK(kill(bx->pid, SIGSTOP) == 0, "SIGSTOP node %d: %s", x,
	      strerror(errno));
	acked0 = acked_count(&bytes);
	CHECK(led_by(w, k), "safety: nodes %d and %d do not lead everything "
	      "within %d ms of node %d's stop", w, k, LEADER_WAIT_MS, x);
	int64_t until = bc_now_ms() + LEADER_WAIT_MS;
	while (acked_count(&bytes) - acked0 < LAG_RECORDS_MIN &&
	       bc_now_ms() < until)
		bc_sleep_ms(10);
	size_t lag = acked_count(&bytes) - acked0;
	printf("safety: %zu records acknowledged by nodes %d and %d while "
	       "node %d sleeps\n", lag, w, k, x);
	CHECK(lag >= LAG_RECORDS_MIN, "safety: only %zu records acknowledged "
	      "without node %d", lag, x);

	wipe_restart("safety", w, &started);
	int pause_ms = (int)bc_rng_below(300);
	bc_sleep_ms(pause_ms);
	bc_broker_kill(&nodes[w - 1]);
	bc_broker_kill(&nodes[k - 1]);
	CHECK(kill(bx->pid, SIGCONT) == 0, "SIGCONT node %d: %s", x,
	      strerror(errno));
	bc_broker_start(&nodes[w - 1]);
	printf("safety: node %d killed again %d ms after its start, node %d "
	       "killed, node %d resumed, node %d started on what it had "
	       "written\n", w, pause_ms, k, x, w);
	fflush(stdout);
	bc_sleep_ms(WINDOW_GRACE_MS);
	watch_window(w, x);

	bc_broker_start(&nodes[k - 1]);
	started = nodes[k - 1].spawned_ms;
	CHECK(wait_rejoined("safety", w, started), "safety: node %d did not "
	      "rejoin within %d ms of node %d's return", w, REJOIN_TIMEOUT_MS,
	      k);
	sender_stop(p);
	CHECK(all_in_sync(end), "safety: the replicas did not settle");
	check_on_disk("safety", w);
}

// Sends FIRST_RECORDS records as fast as the producer takes them; all
// must be acknowledged.
static void first_records(struct ox_producer *p)
{
	int64_t start = bc_now_ms();

	while (sent < FIRST_RECORDS) {
		if (ox_producer_pending(p) > PENDING_MAX) {
			bc_sleep_ms(1);
			continue;
		}
		send_next(p);
	}
	int rc = ox_producer_flush(p, FLUSH_TIMEOUT_MS);
	CHECK(rc == 0, "flush: %s", ox_strerror(rc));
	size_t acked = atomic_load(&bc_led.acked_n);
	printf("%d records sent in %" PRId64 " ms: %zu acknowledged, %zu "
	       "failed (%zu refused at send)\n", FIRST_RECORDS,
	       bc_now_ms() - start, acked, atomic_load(&bc_led.failed_n), refused);
	CHECK(acked == FIRST_RECORDS, "only %zu of the first %d records were "
	      "acknowledged (first error: %s)", acked, FIRST_RECORDS,
	      ox_strerror(atomic_load(&bc_led.first_err)));
}

// A node that leads some partition, the metadata leader when it does.
static int partition_leader_node(int meta)
{
	int first = -1;

	for (int q = 0; q < PARTITIONS; q++) {
		int l = leader_seen(q, -1);

		if (l == meta)
			return l;
		if (first < 0)
			first = l;
	}
	return first;
}

int main(int argc, char **argv)
{
	static const char *const args[] = { "--log.segment.bytes", "1048576",
					    NULL };
	int64_t end[PARTITIONS];
	int64_t t0;
	int rc, meta, w;

	bc_start("broker-cluster-wipe", argc, argv, WATCHDOG_S);
	t0 = bc_now_ms();
	bc_ledger_init(RECORDS_MAX);
	bc_cluster_start(nodes, NODES, "wipe", args);
	bc_cluster_bootstrap(nodes, NODES, bootstrap, sizeof(bootstrap));
	meta = meta_agreed();
	w = meta % NODES + 1; // round 1's W: not the metadata leader
	struct ox_admin *a = bc_admin(&nodes[w - 1]);
	rc = ox_admin_topic_create(a, topic, PARTITIONS, NODES, NULL, 0);
	if (rc < 0)
		bc_dief("create %s through node %d: %s (%s)", topic, w,
			ox_strerror(rc), ox_admin_last_error(a));
	ox_admin_destroy(a);
	if (!all_in_sync(NULL))
		bc_dief("the new topic's replicas never came in sync");

	struct ox_producer *p = producer();
	first_records(p);

	printf("round 1: node %d (the metadata leader is node %d)\n", w, meta);
	wipe_round("round 1", w, p);
	meta = meta_agreed();
	w = partition_leader_node(meta);
	if (w <= 0)
		bc_dief("no partition has a leader");
	printf("round 2: node %d (leads a partition; the metadata leader is "
	       "node %d)\n", w, meta);
	wipe_round("round 2", w, p);

	CHECK(all_in_sync(end), "the replicas did not settle after round 2");
	stop_and_compare("after round 2", end);
	bc_cluster_restart(nodes, NODES);
	bc_cluster_settle(nodes, NODES);
	CHECK(all_in_sync(NULL), "the replicas did not settle after the "
	      "restart");

	safety_round(w, p, end);
	ox_producer_destroy(p);
	printf("sent %zu records: %zu acknowledged, %zu failed (%zu refused "
	       "at send)\n", sent, atomic_load(&bc_led.acked_n),
	       atomic_load(&bc_led.failed_n), refused);
	CHECK(atomic_load(&bc_led.acked_n) + atomic_load(&bc_led.failed_n) + refused ==
	      sent, "%zu records never got a callback", sent -
	      atomic_load(&bc_led.acked_n) - atomic_load(&bc_led.failed_n) - refused);
	check_stored(end);
	stop_and_compare("at the end", end);
	printf("done in %" PRId64 " ms\n", bc_now_ms() - t0);
	bc_finish();
}
