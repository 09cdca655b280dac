// SPDX-License-Identifier: Apache-2.0
//
// A whole cluster going down and coming back. Three oxbowd processes whose
// `peers` name each other; on the metadata leader the test creates three
// topics of replication factor 3 (one with topic configs set), notes what
// every node describes of them, and produces keyed records (acks=all,
// retries=0). Then, twice, every node goes down at once and all start
// again on their data directories and ports:
//   1. SIGTERM to each (a clean shutdown, exit status 0);
//   2. SIGKILL to each while records are still in flight (the producer
//      then flushes the rest against the restarted nodes).
// After each restart:
//   - every node describes every topic as before: partition count, the
//     replicas of each partition, every config (the ones set included);
//   - every record acknowledged so far, in either phase, is read back
//     intact at the partition and offset its callback reported, and every
//     record stored is one that was sent, stored once;
//   - new writes work: each partition takes a record within a bound.
// A plain program (exit 0 pass, 1 fail, 77 skip): argv[1] is oxbowd.
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "tests/integration/broker_common.h"
#include "tests/integration/ledger.h"

#define NODES 3
#define TOPICS 3
#define PARTS_MAX 3            // partitions of the largest topic
#define PHASE_RECORDS 20000    // sent before each whole-cluster stop
#define PHASES 2               // SIGTERM, then SIGKILL
// Indexes new writes after a restart may take: 6 partitions, a try every
// 100 ms for WAIT_MS, each try skipping up to TOPICS - 1 indexes.
#define NEW_RECORDS_MAX 6000
#define RECORDS_MAX (PHASES * PHASE_RECORDS + PHASES * NEW_RECORDS_MAX)
#define KEYS 8
#define VALUE_BYTES_MIN 8      // the index
#define VALUE_BYTES_SPAN 600
#define PENDING_MAX 3000
#define WAIT_MS 30000          // a leader, a topic applied, a write
#define FLUSH_TIMEOUT_MS 60000
#define STALL_MS 30000
#define WATCHDOG_S 280

struct topic_spec {
	const char *name;
	int partitions;
	const char *const *configs; // key, value pairs, NULL-terminated
};

static const char *const events_configs[] = { "retention.ms", "86400000",
					      "segment.bytes", "1048576",
					      NULL };
static const struct topic_spec topics[TOPICS] = {
	{ "orders", 3, NULL },
	{ "events", 2, events_configs },
	{ "audit", 1, NULL },
};

static struct bc_broker nodes[NODES];
static char bootstrap_all[256];

static size_t nsent;

// What every node must describe of a topic, as noted before the stops.
struct topic_seen {
	int partitions;
	int replicas[PARTS_MAX][NODES]; // sorted node ids
	int replica_count[PARTS_MAX];
	char configs[1024];             // "k=v;k=v;..." sorted by key
};
static struct topic_seen seen[TOPICS];

static int topic_of(uint64_t i)
{
	return (int)(i % TOPICS);
}

static size_t value_len_of(uint64_t i)
{
	return VALUE_BYTES_MIN + bc_hash(i, 3) % VALUE_BYTES_SPAN;
}

static size_t key_of(uint64_t i, char *buf, size_t cap)
{
	return (size_t)snprintf(buf, cap, "key-%u", (unsigned)(i % KEYS));
}

// Whether a stored record is record i's, intact, of topic *(int *)arg.
static bool record_ok(void *arg, int64_t i, const void *key, size_t key_len,
		      size_t value_len)
{
	char want[16];
	size_t n = key_of((uint64_t)i, want, sizeof(want));

	return topic_of((uint64_t)i) == *(const int *)arg &&
	       value_len == value_len_of((uint64_t)i) && key != NULL &&
	       key_len == n && memcmp(key, want, n) == 0;
}

static struct ox_producer *producer(void)
{
	static const char *const kv[] = {
		"acks", "all", "retries", "0", "linger.ms", "2",
		"request.timeout.ms", "5000", "delivery.timeout.ms", "15000",
		"max.block.ms", "3000", "socket.connect.timeout.ms", "2000",
		NULL
	};

	return bc_producer(&nodes[0], bootstrap_all, kv);
}

// Sends record nsent to `partition` (OX_PARTITION_ANY: by its key) of its
// topic. Returns ox_producer_send's result.
static int send_one(struct ox_producer *p, int32_t partition)
{
	uint8_t value[VALUE_BYTES_MIN + VALUE_BYTES_SPAN];
	char key[16];
	size_t i = nsent, len = value_len_of(i);

	if (i >= RECORDS_MAX)
		bc_dief("more than %d records", RECORDS_MAX);
	bc_value_fill(value, i, len);
	struct ox_message m = {
		.topic = topics[topic_of(i)].name,
		.partition = partition,
		.key = key,
		.key_len = key_of(i, key, sizeof(key)),
		.value = value,
		.value_len = len,
		.cb = bc_delivered,
		.opaque = (void *)(uintptr_t)i,
	};
	nsent++;
	int rc = ox_producer_send(p, &m);
	if (rc < 0)
		atomic_store(&bc_led.state[i], BC_FAILED); // no callback comes
	return rc;
}

// Every partition of every topic has a leader that every node names.
static bool leaders_agreed(void)
{
	int leader[TOPICS][PARTS_MAX] = { { 0 } };
	int seen_n[TOPICS][PARTS_MAX] = { { 0 } };

	for (int i = 0; i < NODES; i++) {
		Oxbow__ClusterStatusResponse *m = bc_cluster_status(&nodes[i]);

		if (m == NULL)
			return false;
		for (size_t k = 0; k < m->n_partitions; k++) {
			const Oxbow__PartitionStatus *ps = m->partitions[k];
			for (int t = 0; t < TOPICS; t++) {
				int q = ps->partition;
				if (strcmp(ps->topic, topics[t].name) != 0 ||
				    q < 0 || q >= topics[t].partitions ||
				    ps->leader <= 0)
					continue;
				if (seen_n[t][q] == 0 || leader[t][q] ==
							     ps->leader)
					seen_n[t][q]++;
				leader[t][q] = ps->leader;
			}
		}
		oxbow__cluster_status_response__free_unpacked(m, NULL);
	}
	for (int t = 0; t < TOPICS; t++)
		for (int q = 0; q < topics[t].partitions; q++)
			if (seen_n[t][q] != NODES)
				return false;
	return true;
}

static bool wait_leaders(const char *when)
{
	int64_t start = bc_now_ms();

	while (!leaders_agreed()) {
		if (bc_now_ms() - start > WAIT_MS) {
			CHECK(0, "%s: not every partition has a leader all "
			      "nodes name after %d ms", when, WAIT_MS);
			return false;
		}
		bc_sleep_ms(20);
	}
	printf("%s: every partition has a leader (%" PRId64 " ms)\n", when,
	       bc_now_ms() - start);
	return true;
}

// The metadata leader's node index, waiting for one with every node.
static int meta_leader(void)
{
	int64_t until = bc_now_ms() + WAIT_MS;

	while (bc_now_ms() < until) {
		for (int i = 0; i < NODES; i++) {
			Oxbow__ClusterStatusResponse *m =
				bc_cluster_status(&nodes[i]);
			int leader = m ? m->meta_leader : -1;
			int known = m ? (int)m->n_nodes : 0;

			if (m)
				oxbow__cluster_status_response__free_unpacked(
					m, NULL);
			if (leader > 0 && known == NODES)
				return leader - 1;
		}
		bc_sleep_ms(20);
	}
	bc_dief("no metadata leader with every node registered");
}

static int cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

// A topic as one node describes it (configs come sorted by key).
static void topic_from_info(const struct ox_topic_info *info,
			    struct topic_seen *out)
{
	size_t len = 0;

	memset(out, 0, sizeof(*out));
	out->partitions = (int)info->partition_count;
	for (size_t q = 0; q < info->partition_count && q < PARTS_MAX; q++) {
		const struct ox_partition_info *pi = &info->partitions[q];
		size_t n = pi->replica_count < NODES ? pi->replica_count
						     : NODES;
		for (size_t k = 0; k < n; k++)
			out->replicas[q][k] = pi->replicas[k];
		qsort(out->replicas[q], n, sizeof(int), cmp_int);
		out->replica_count[q] = (int)pi->replica_count;
	}
	for (size_t k = 0; k < info->config_count; k++)
		len += (size_t)snprintf(out->configs + len,
					len < sizeof(out->configs) ?
					sizeof(out->configs) - len : 0,
					"%s=%s;", info->configs[k].key,
					info->configs[k].value);
}

// What node i describes of topic t, waiting for it to have applied it.
static bool describe(int i, int t, struct topic_seen *out)
{
	struct ox_admin *a = bc_admin(&nodes[i]);
	struct ox_topic_info *info = NULL;
	int64_t until = bc_now_ms() + WAIT_MS;
	int rc;

	while ((rc = ox_admin_topic_describe(a, topics[t].name, &info)) != 0 &&
	       bc_now_ms() < until)
		bc_sleep_ms(20);
	CHECK(rc == 0, "node %d does not describe topic %s: %s (%s)", i + 1,
	      topics[t].name, ox_strerror(rc), ox_admin_last_error(a));
	if (rc == 0)
		topic_from_info(info, out);
	ox_topic_infos_free(info, rc == 0 ? 1 : 0);
	ox_admin_destroy(a);
	return rc == 0;
}

// Whether configs ("k=v;...") hold k=v.
static bool has_config(const char *configs, const char *k, const char *v)
{
	char want[128];
	size_t n = (size_t)snprintf(want, sizeof(want), ";%s=%s;", k, v);

	// The list starts without its ';': match its head without ours.
	return strncmp(configs, want + 1, n - 1) == 0 ||
	       strstr(configs, want) != NULL;
}

// Every node describes every topic as noted in seen[] (or, with note set,
// as created, noting it).
static void check_metadata(const char *when, bool note)
{
	for (int t = 0; t < TOPICS; t++) {
		for (int i = 0; i < NODES; i++) {
			struct topic_seen d;

			if (!describe(i, t, &d))
				continue;
			if (note && i == 0) {
				seen[t] = d;
				printf("topic %s: %d partitions, configs %s\n",
				       topics[t].name, d.partitions, d.configs);
				CHECK(d.partitions == topics[t].partitions,
				      "topic %s: %d partitions, created with "
				      "%d", topics[t].name, d.partitions,
				      topics[t].partitions);
				for (int q = 0; q < d.partitions &&
						q < PARTS_MAX; q++)
					CHECK(d.replica_count[q] == NODES,
					      "topic %s partition %d: %d "
					      "replicas", topics[t].name, q,
					      d.replica_count[q]);
				for (const char *const *c = topics[t].configs;
				     c && c[0]; c += 2)
					CHECK(has_config(d.configs, c[0], c[1]),
					      "topic %s: %s=%s not among its "
					      "configs: %s", topics[t].name,
					      c[0], c[1], d.configs);
			}
			CHECK(memcmp(&d, &seen[t], sizeof(d)) == 0,
			      "%s: node %d describes topic %s as %d partitions "
			      "with configs %s; before: %d partitions with "
			      "configs %s (or other replicas)", when, i + 1,
			      topics[t].name, d.partitions, d.configs,
			      seen[t].partitions, seen[t].configs);
		}
	}
}

static void restart_all(bool clean);

// Sends PHASE_RECORDS records by key, then takes the whole cluster down
// and back up: phase 0 once every record has its callback (SIGTERM),
// phase 1 at once, with records still in flight (SIGKILL); the producer
// then flushes what it still holds against the restarted nodes.
static void phase_run(int phase)
{
	struct ox_producer *p = producer();
	size_t from = nsent, acked = 0, refused = 0;
	int rc;

	for (int k = 0; k < PHASE_RECORDS; k++) {
		while (ox_producer_pending(p) > PENDING_MAX)
			bc_sleep_ms(1);
		refused += send_one(p, OX_PARTITION_ANY) < 0;
	}
	if (phase == 0) {
		rc = ox_producer_flush(p, FLUSH_TIMEOUT_MS);
		CHECK(rc == 0, "phase %d: flush: %s", phase, ox_strerror(rc));
	}
	printf("phase %d: %zu records pending at the stop\n", phase,
	       ox_producer_pending(p));
	restart_all(phase == 0);
	rc = ox_producer_flush(p, FLUSH_TIMEOUT_MS);
	CHECK(rc == 0, "phase %d: flush: %s", phase, ox_strerror(rc));
	ox_producer_destroy(p);
	for (size_t i = from; i < nsent; i++)
		acked += atomic_load(&bc_led.state[i]) == BC_ACKED;
	printf("phase %d: sent %zu records, %zu acknowledged, %zu refused at "
	       "send\n", phase, nsent - from, acked, refused);
	CHECK(acked > 0, "phase %d: no record acknowledged", phase);
}

// After a restart: every partition of every topic takes a new record
// within WAIT_MS (a record may fail while leadership settles; another is
// sent then).
static void new_writes(const char *when)
{
	struct ox_producer *p = producer();

	for (int t = 0; t < TOPICS; t++) {
		for (int q = 0; q < topics[t].partitions; q++) {
			int64_t until = bc_now_ms() + WAIT_MS;
			bool ok = false;

			while (!ok && bc_now_ms() < until) {
				// Records of topic t are the indexes = t mod
				// TOPICS; skip to the next one.
				while (topic_of(nsent) != t) {
					atomic_store(&bc_led.state[nsent],
						     BC_FAILED);
					nsent++;
				}
				size_t i = nsent;
				if (send_one(p, q) == 0)
					ox_producer_flush(p, FLUSH_TIMEOUT_MS);
				ok = atomic_load(&bc_led.state[i]) == BC_ACKED;
				if (!ok)
					bc_sleep_ms(100);
			}
			CHECK(ok, "%s: topic %s partition %d takes no new "
			      "record within %d ms", when, topics[t].name, q,
			      WAIT_MS);
		}
	}
	ox_producer_destroy(p);
}

// The offset after the last acknowledged record of partition q of t.
static int64_t acked_end(int t, int q)
{
	int64_t end = 0;

	for (size_t i = 0; i < nsent; i++)
		if (topic_of(i) == t &&
		    atomic_load(&bc_led.state[i]) == BC_ACKED &&
		    bc_led.acked_part[i] == q && bc_led.acked_off[i] + 1 > end)
			end = bc_led.acked_off[i] + 1;
	return end;
}

// Where partition q of topic t ends: the highest high watermark a node
// reports, once it covers every acknowledged record (a leader learns its
// high watermark when its first entry of the term commits), or after
// WAIT_MS whatever it is then.
static int64_t partition_end(int t, int q)
{
	int64_t want = acked_end(t, q), until = bc_now_ms() + WAIT_MS, hw;

	do {
		hw = 0;
		for (int i = 0; i < NODES; i++) {
			Oxbow__ClusterStatusResponse *m =
				bc_cluster_status(&nodes[i]);
			for (size_t k = 0; m && k < m->n_partitions; k++) {
				const Oxbow__PartitionStatus *ps =
					m->partitions[k];
				if (strcmp(ps->topic, topics[t].name) == 0 &&
				    ps->partition == q &&
				    ps->high_watermark > hw)
					hw = ps->high_watermark;
			}
			if (m)
				oxbow__cluster_status_response__free_unpacked(
					m, NULL);
		}
		if (hw >= want)
			break;
		bc_sleep_ms(20);
	} while (bc_now_ms() < until);
	CHECK(hw >= want, "topic %s partition %d: high watermark %" PRId64
	      ", below the acknowledged end %" PRId64, topics[t].name, q, hw,
	      want);
	return hw;
}

// Reads topic t from its start to its end on every partition, noting
// where each record is and checking it is one that was sent to it, once.
static void read_topic(int t)
{
	int64_t end[PARTS_MAX];
	struct bc_read rd;

	for (int q = 0; q < topics[t].partitions; q++)
		end[q] = partition_end(t, q);
	rd = bc_read_back(&nodes[0], bootstrap_all, topics[t].name,
			  topics[t].partitions, end, nsent, record_ok, &t,
			  STALL_MS);
	CHECK(rd.bad == 0 && rd.dups == 0, "topic %s: %zu records read back "
	      "were not sent to it or are damaged, %zu were stored twice",
	      topics[t].name, rd.bad, rd.dups);
}

// Every record acknowledged so far is where its callback said.
static void check_acked(const char *when)
{
	size_t acked, lost;

	bc_ledger_forget_found(nsent);
	for (int t = 0; t < TOPICS; t++)
		read_topic(t);
	lost = bc_ledger_missing(when, nsent, &acked);
	printf("%s: %zu acknowledged records, %zu missing or moved\n", when,
	       acked, lost);
	CHECK(lost == 0, "%s: %zu acknowledged records lost or moved", when,
	      lost);
}

// Every node goes down (SIGTERM each, or SIGKILL each), then all start.
static void restart_all(bool clean)
{
	for (int i = 0; i < NODES; i++) {
		if (!clean) {
			bc_broker_kill(&nodes[i]);
			continue;
		}
		int st = bc_broker_stop(&nodes[i]);
		CHECK(st == 0, "node %d exited with status %d on SIGTERM, "
		      "not 0", i + 1, st);
	}
	int64_t start = bc_now_ms();
	bc_cluster_restart(nodes, NODES);
	printf("all nodes %s and restarted; ready after %" PRId64 " ms\n",
	       clean ? "stopped (SIGTERM)" : "killed (SIGKILL)",
	       bc_now_ms() - start);
}

int main(int argc, char **argv)
{
	bc_start("broker-cluster-restart", argc, argv, WATCHDOG_S);
	bc_ledger_init(RECORDS_MAX);
	bc_cluster_start(nodes, NODES, "crestart", NULL);
	bc_cluster_bootstrap(nodes, NODES, bootstrap_all,
			     sizeof(bootstrap_all));
	struct ox_admin *a = bc_admin(&nodes[meta_leader()]);
	for (int t = 0; t < TOPICS; t++) {
		struct ox_config_entry e[8];
		size_t n = 0;

		for (const char *const *c = topics[t].configs; c && c[0];
		     c += 2)
			e[n++] = (struct ox_config_entry){ c[0], c[1] };
		int rc = ox_admin_topic_create(a, topics[t].name,
					       topics[t].partitions, NODES,
					       n ? e : NULL, n);
		if (rc < 0)
			bc_dief("create topic %s: %s (%s)", topics[t].name,
				ox_strerror(rc), ox_admin_last_error(a));
	}
	ox_admin_destroy(a);
	check_metadata("created", true);
	for (int phase = 0; phase < PHASES; phase++) {
		const char *when = phase == 0 ? "after SIGTERM of all"
					      : "after SIGKILL of all";

		if (!wait_leaders("before the stop"))
			break;
		phase_run(phase);
		check_metadata(when, false);
		if (!wait_leaders(when))
			break;
		check_acked(when);
		new_writes(when);
	}
	check_acked("at the end");
	bc_finish();
}
