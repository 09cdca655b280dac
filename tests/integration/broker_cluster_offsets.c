// SPDX-License-Identifier: Apache-2.0
//
// Consumer-group offsets of a three-node cluster: the metadata leader
// creates __offsets (16 partitions, three replicas), and each group's
// offsets are served by the leader of its partition, its coordinator.
// Several groups commit through one node's bootstrap (the client finds
// each group's coordinator); every node's bootstrap then reads the same
// offsets back, and lists every group. The coordinator of the first group
// is SIGKILLed: commits keep working once its partitions have new
// leaders, and what was committed before is intact. The killed node comes
// back, then the whole cluster restarts: every offset is still there.
// A plain program (exit 0 pass, 1 fail, 77 skip): argv[1] is oxbowd.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/integration/broker_common.h"

#define NODES 3
#define GROUPS 6
#define PARTS 4
#define TOPIC "orders"
// What one client call may take, retries included: an election after a
// SIGKILL and a loaded machine fit well inside it.
#define REQUEST_TIMEOUT_MS "20000"
#define SETUP_TIMEOUT_MS 30000

static struct bc_broker nodes[NODES];

static void group_name(int g, char *buf, size_t cap)
{
	snprintf(buf, cap, "grp-%d", g);
}

// The offset group g commits for partition p in round r (1 or 2).
static int64_t want(int g, int p, int r)
{
	return (int64_t)r * 1000 + g * 10 + p;
}

static struct ox_consumer *consumer(const char *bootstrap, int g)
{
	char name[32], err[256];
	struct ox_consumer *c = NULL;
	const char *kv[] = { "group.id", name, "request.timeout.ms",
			     REQUEST_TIMEOUT_MS, NULL };
	struct ox_conf *conf = ox_conf_create();

	group_name(g, name, sizeof(name));
	if (conf == NULL ||
	    ox_conf_set(conf, "bootstrap.servers", bootstrap, err,
			sizeof(err)) < 0)
		bc_dief("conf: %s", conf ? err : "out of memory");
	for (const char *const *k = kv; k[0]; k += 2)
		if (ox_conf_set(conf, k[0], k[1], err, sizeof(err)) < 0)
			bc_dief("conf %s: %s", k[0], err);
	if (ox_consumer_create(&c, conf, err, sizeof(err)) < 0)
		bc_dief("ox_consumer_create: %s", err);
	ox_conf_destroy(conf);
	return c;
}

static int commit_round(const char *bootstrap, int g, int round)
{
	struct ox_topic_partition tps[PARTS];
	struct ox_consumer *c = consumer(bootstrap, g);
	int64_t t0 = bc_now_ms();

	for (int p = 0; p < PARTS; p++)
		tps[p] = (struct ox_topic_partition){ .topic = TOPIC,
						      .partition = p,
						      .offset = want(g, p, round) };
	int rc = ox_consumer_commit(c, tps, PARTS);
	CHECK(rc == 0, "group %d round %d: commit through %s: %s (%s)", g,
	      round, bootstrap, ox_strerror(rc), ox_consumer_last_error(c));
	if (bc_now_ms() - t0 > 1000)
		printf("group %d round %d: commit took %lld ms\n", g, round,
		       (long long)(bc_now_ms() - t0));
	ox_consumer_destroy(c);
	return rc;
}

// Every group's committed offsets, read through `bootstrap`, are those of
// round rounds[g].
static void check_offsets(const char *when, const char *bootstrap,
			  const int *rounds)
{
	for (int g = 0; g < GROUPS; g++) {
		struct ox_consumer *c = consumer(bootstrap, g);
		for (int p = 0; p < PARTS; p++) {
			int64_t off = -2;
			int rc = ox_consumer_committed(c, TOPIC, p, &off);
			CHECK(rc == 0 && off == want(g, p, rounds[g]),
			      "%s: group %d partition %d through %s: rc %s "
			      "offset %lld, want %lld (%s)", when, g, p,
			      bootstrap, ox_strerror(rc), (long long)off,
			      (long long)want(g, p, rounds[g]),
			      ox_consumer_last_error(c));
		}
		ox_consumer_destroy(c);
	}
}

// The admin API through node i: every group is listed, and describing
// one gives its offsets.
static void check_admin(const char *when, int i, const int *rounds)
{
	struct ox_admin *a = bc_admin(&nodes[i]);
	char **names = NULL, name[32];
	size_t n = 0;
	int rc = ox_admin_group_list(a, &names, &n);

	CHECK(rc == 0, "%s: group list through node %d: %s (%s)", when, i + 1,
	      ox_strerror(rc), ox_admin_last_error(a));
	for (int g = 0; rc == 0 && g < GROUPS; g++) {
		bool found = false;
		group_name(g, name, sizeof(name));
		for (size_t k = 0; k < n; k++)
			found = found || strcmp(names[k], name) == 0;
		CHECK(found, "%s: node %d lists %zu groups, not %s", when,
		      i + 1, n, name);
	}
	ox_strings_free(names, n);
	struct ox_group_offset *offs = NULL;
	group_name(GROUPS - 1, name, sizeof(name));
	rc = ox_admin_group_describe(a, name, &offs, &n);
	CHECK(rc == 0 && n == PARTS, "%s: describe %s through node %d: %s, "
	      "%zu offsets", when, name, i + 1, ox_strerror(rc), n);
	for (size_t k = 0; rc == 0 && k < n; k++)
		CHECK(offs[k].offset ==
			      want(GROUPS - 1, offs[k].partition,
				   rounds[GROUPS - 1]),
		      "%s: describe %s partition %d: offset %lld", when, name,
		      offs[k].partition, (long long)offs[k].offset);
	ox_group_offsets_free(offs, n);
	ox_admin_destroy(a);
}

static void create_topic(void)
{
	struct ox_admin *a = bc_admin(&nodes[0]);
	int64_t start = bc_now_ms();
	int rc;

	// The metadata group may still be electing: retry what is retriable.
	do {
		rc = ox_admin_topic_create(a, TOPIC, PARTS, NODES, NULL, 0);
		if (rc == 0 || rc == -OX_ETOPIC_EXISTS)
			break;
		bc_sleep_ms(100);
	} while (bc_now_ms() - start < SETUP_TIMEOUT_MS);
	if (rc < 0 && rc != -OX_ETOPIC_EXISTS)
		bc_dief("create %s: %s (%s)", TOPIC, ox_strerror(rc),
			ox_admin_last_error(a));
	ox_admin_destroy(a);
}

// The coordinator of group 0 as the live nodes name it, once they agree.
static int coordinator_of_group0(void)
{
	int64_t start = bc_now_ms();

	while (bc_now_ms() - start < SETUP_TIMEOUT_MS) {
		int id = -2;
		bool same = true;
		for (int i = 0; i < NODES && same; i++) {
			if (nodes[i].pid <= 0)
				continue;
			int c = bc_find_coordinator(&nodes[i], "grp-0");
			same = c > 0 && (id == -2 || c == id);
			id = c;
		}
		if (same && id > 0)
			return id;
		bc_sleep_ms(50);
	}
	return -1;
}

int main(int argc, char **argv)
{
	char all[512];
	int rounds[GROUPS];

	bc_start("broker-cluster-offsets", argc, argv, 58);
	bc_cluster_start(nodes, NODES, "coffs", NULL);
	bc_cluster_bootstrap(nodes, NODES, all, sizeof(all));
	create_topic();

	// Round 1: every group commits through node 1's bootstrap.
	for (int g = 0; g < GROUPS; g++) {
		rounds[g] = 1;
		if (commit_round(nodes[0].bootstrap, g, 1) < 0)
			bc_finish();
	}
	for (int i = 0; i < NODES; i++) {
		check_offsets("after round 1", nodes[i].bootstrap, rounds);
		check_admin("after round 1", i, rounds);
	}

	// SIGKILL the coordinator of group 0; half the groups commit again
	// through the whole bootstrap list.
	int victim = coordinator_of_group0();
	CHECK(victim >= 1 && victim <= NODES, "no coordinator for grp-0");
	if (victim < 1 || victim > NODES)
		bc_finish();
	printf("killing node %d, coordinator of grp-0\n", victim);
	bc_broker_kill(&nodes[victim - 1]);
	int64_t t0 = bc_now_ms();
	for (int g = 0; g < GROUPS; g += 2) {
		rounds[g] = 2;
		commit_round(all, g, 2);
	}
	printf("round 2 committed %lld ms after the kill\n",
	       (long long)(bc_now_ms() - t0));
	int moved = coordinator_of_group0();
	CHECK(moved > 0 && moved != victim, "grp-0's coordinator is %d after "
	      "node %d was killed", moved, victim);
	for (int i = 0; i < NODES; i++)
		if (nodes[i].pid > 0)
			check_offsets("after the kill", nodes[i].bootstrap,
				      rounds);

	// The killed node comes back, then the whole cluster restarts.
	bc_broker_start(&nodes[victim - 1]);
	check_offsets("after the victim's restart", nodes[victim - 1].bootstrap,
		      rounds);
	for (int i = 0; i < NODES; i++)
		bc_broker_stop(&nodes[i]);
	bc_cluster_restart(nodes, NODES);
	for (int i = 0; i < NODES; i++)
		check_offsets("after a full restart", nodes[i].bootstrap,
			      rounds);
	check_admin("after a full restart", victim % NODES, rounds);
	commit_round(all, 1, 2);
	rounds[1] = 2;
	check_offsets("after a commit past the restart", all, rounds);
	bc_finish();
}
