// SPDX-License-Identifier: Apache-2.0
//
// Three oxbowd processes on 127.0.0.1 whose `peers` name each other form
// a cluster: their `__meta` Raft group elects a leader and the leader
// registers every node (with the client address each announces). Then,
// in bounded rounds, the test SIGKILLs the metadata leader (the other two
// elect a new one, and the node table stays whole), restarts it (it
// rejoins and agrees), and SIGSTOPs a node for longer than an election
// timeout before resuming it. After every step every running node must
// agree on one leader and show all three nodes; it reads CLUSTER_STATUS
// over raw connections. It prints how long each new leader took. Then
// topics are created, altered, grown and deleted through nodes that do
// not lead the metadata group (admin_anywhere).
// A plain program (exit 0 pass, 1 fail, 77 skip): argv[1] is oxbowd.
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto/api.pb-c.h"
#include "tests/integration/broker_common.h"

#define NODES 3
#define ROUNDS 3
#define AGREE_TIMEOUT_MS 20000 // a leader, agreed on, within this
#define STOP_MS 1500           // SIGSTOP longer than the election timeout
// Directories of cluster topics are named from this id on (the server's
// OX_CLUSTER_TOPIC_ID_BASE).
#define CLUSTER_ID_BASE (UINT64_C(1) << 40)

static struct bc_broker nodes[NODES];

struct view {
	int leader;   // -1: none
	int nodes;    // in the node table
};

// CLUSTER_STATUS of node i; false when it does not answer.
static bool status_of(int i, struct view *v)
{
	Oxbow__ClusterStatusResponse *m = bc_cluster_status(&nodes[i]);

	if (m == NULL)
		return false;
	v->leader = m->meta_leader;
	v->nodes = (int)m->n_nodes;
	oxbow__cluster_status_response__free_unpacked(m, NULL);
	return true;
}

// Waits until every node in `up` names the same leader (one of `up`),
// with the whole node table; returns it and the time taken, or -1.
static int agree(const bool *up, int64_t *took_ms)
{
	int64_t start = bc_now_ms();

	while (bc_now_ms() - start < AGREE_TIMEOUT_MS) {
		int leader = -2;
		bool same = true;

		for (int i = 0; i < NODES && same; i++) {
			struct view v;

			if (!up[i])
				continue;
			if (!status_of(i, &v) || v.leader < 1 ||
			    v.nodes != NODES || !up[v.leader - 1] ||
			    (leader != -2 && v.leader != leader))
				same = false;
			leader = v.leader;
		}
		if (same && leader > 0) {
			*took_ms = bc_now_ms() - start;
			return leader;
		}
		bc_sleep_ms(20);
	}
	return -1;
}

// Cluster topic directories (ids from 2^40) under node i's data.dir:
// their ids into ids[0, max), and how many there are.
static int cluster_dirs(int i, uint64_t *ids, int max)
{
	char path[BC_PATH_MAX + 16];
	struct dirent *de;
	int n = 0;

	snprintf(path, sizeof(path), "%s/topics", nodes[i].data_dir);
	DIR *d = opendir(path);
	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		char *end;
		unsigned long long id = strtoull(de->d_name, &end, 10);

		char dir[BC_PATH_MAX + 300];

		snprintf(dir, sizeof(dir), "%s/%s", path, de->d_name);
		if (de->d_name[0] >= '0' && de->d_name[0] <= '9' && !*end &&
		    id >= CLUSTER_ID_BASE && n < max &&
		    bc_dir_partitions(dir) != BC_OFFSETS_PARTITIONS)
			ids[n++] = id; // the cluster's __offsets left out
	}
	closedir(d);
	return n;
}

static bool has_dir(int i, uint64_t id)
{
	uint64_t ids[16];
	int n = cluster_dirs(i, ids, 16);

	for (int k = 0; k < n; k++)
		if (ids[k] == id)
			return true;
	return false;
}

// What node i says of topic `name`: -1 unknown, else its partitions;
// with `key`, *value gets that config's value.
static int describe_on(int i, const char *name, const char *key,
		       char *value, size_t cap)
{
	struct ox_admin *a = bc_admin(&nodes[i]);
	struct ox_topic_info *info = NULL;
	int parts = -1;

	if (ox_admin_topic_describe(a, name, &info) == 0 && info != NULL) {
		parts = (int)info->partition_count;
		for (size_t k = 0; key && k < info->config_count; k++)
			if (strcmp(info->configs[k].key, key) == 0)
				snprintf(value, cap, "%s",
					 info->configs[k].value);
		ox_topic_infos_free(info, 1);
	}
	ox_admin_destroy(a);
	return parts;
}

// Waits until every node in `up` describes `name` with `parts`
// partitions (-1: unknown) and, with key, that value of it.
static bool visible_everywhere(const bool *up, const char *name, int parts,
			       const char *key, const char *want)
{
	int64_t until = bc_now_ms() + AGREE_TIMEOUT_MS;

	while (bc_now_ms() < until) {
		bool all = true;

		for (int i = 0; i < NODES && all; i++) {
			char v[64] = "";

			if (!up[i])
				continue;
			all = describe_on(i, name, key, v, sizeof(v)) == parts &&
			      (key == NULL || strcmp(v, want) == 0);
		}
		if (all)
			return true;
		bc_sleep_ms(50);
	}
	return false;
}

static bool dir_gone(int i, uint64_t id)
{
	int64_t until = bc_now_ms() + AGREE_TIMEOUT_MS;

	while (has_dir(i, id) && bc_now_ms() < until)
		bc_sleep_ms(50);
	return !has_dir(i, id);
}

// One admin call sent to node i; rc checked to be 0.
static void admin_on(int i, const char *what, int rc, struct ox_admin *a)
{
	CHECK(rc == 0, "%s on node %d (not the metadata leader): %s (%s)",
	      what, i + 1, ox_strerror(rc), ox_admin_last_error(a));
}

// Admin writes sent to nodes that do not lead the metadata group are
// forwarded to the leader and answered with their outcome; every node
// applies them to its own replicas: a created topic appears on all, an
// altered config and added partitions reach all, and a deleted topic's
// directories go from every node, also from one stopped during the
// delete once it is back. The name created again gets a fresh id.
static void admin_anywhere(int lead)
{
	bool up[NODES] = { true, true, true };
	int f = (lead + 1) % NODES, s = (lead + 2) % NODES;
	struct ox_config_entry ret = { "retention.ms", "3600000" };
	struct ox_config_entry grow = { "partitions", "3" };
	uint64_t ids[16], id;
	struct ox_admin *a;

	a = bc_admin(&nodes[f]);
	admin_on(f, "create", ox_admin_topic_create(a, "kept", 2, 3, NULL, 0),
		 a);
	CHECK(ox_admin_topic_create(a, "kept", 2, 3, NULL, 0) ==
		      -OX_ETOPIC_EXISTS,
	      "a second create of the topic on node %d was not refused", f + 1);
	ox_admin_destroy(a);
	CHECK(visible_everywhere(up, "kept", 2, NULL, NULL),
	      "the topic created on node %d is not on every node", f + 1);
	printf("broker-cluster: topic created through node %d (leader %d)\n",
	       f + 1, lead + 1);

	a = bc_admin(&nodes[s]);
	admin_on(s, "alter", ox_admin_config_alter(a, "kept", &ret, 1), a);
	ox_admin_destroy(a);
	CHECK(visible_everywhere(up, "kept", 2, "retention.ms", "3600000"),
	      "the config altered through node %d is not on every node", s + 1);
	a = bc_admin(&nodes[f]);
	admin_on(f, "add partitions", ox_admin_config_alter(a, "kept", &grow, 1),
		 a);
	ox_admin_destroy(a);
	CHECK(visible_everywhere(up, "kept", 3, "retention.ms", "3600000"),
	      "the partition added through node %d is not on every node", f + 1);

	// Every node holds a replica of every partition (3 replicas).
	CHECK(cluster_dirs(f, ids, 16) == 1, "node %d has %d cluster topic "
	      "directories, want 1", f + 1, cluster_dirs(f, ids, 16));
	id = ids[0];
	for (int i = 0; i < NODES; i++) {
		char p[BC_PATH_MAX + 64];
		int64_t until = bc_now_ms() + AGREE_TIMEOUT_MS;

		snprintf(p, sizeof(p), "%s/topics/%" PRIu64 "/2",
			 nodes[i].data_dir, id);
		while (access(p, F_OK) != 0 && bc_now_ms() < until)
			bc_sleep_ms(50);
		CHECK(access(p, F_OK) == 0, "node %d has no replica of the "
		      "added partition (%s)", i + 1, p);
	}

	// Node s is down while the topic is deleted through node f.
	CHECK(bc_broker_stop(&nodes[s]) == 0, "node %d did not stop", s + 1);
	up[s] = false;
	a = bc_admin(&nodes[f]);
	admin_on(f, "delete", ox_admin_topic_delete(a, "kept"), a);
	CHECK(ox_admin_topic_delete(a, "kept") == -OX_EUNKNOWN_TOPIC,
	      "a second delete on node %d was not refused", f + 1);
	ox_admin_destroy(a);
	CHECK(visible_everywhere(up, "kept", -1, NULL, NULL),
	      "the deleted topic is still described");
	for (int i = 0; i < NODES; i++)
		CHECK(!up[i] || dir_gone(i, id), "node %d kept the deleted "
		      "topic's directory", i + 1);
	CHECK(has_dir(s, id), "node %d lost the directory while stopped",
	      s + 1);
	bc_broker_start(&nodes[s]);
	up[s] = true;
	// The name again, through node f: a new id, so new directories.
	// Its entry also carries node s past the delete it missed.
	a = bc_admin(&nodes[f]);
	admin_on(f, "create again", ox_admin_topic_create(a, "kept", 1, 3,
							  NULL, 0), a);
	ox_admin_destroy(a);
	CHECK(dir_gone(s, id), "node %d, stopped during the delete, kept "
	      "the directory after its restart", s + 1);
	CHECK(visible_everywhere(up, "kept", 1, NULL, NULL),
	      "the topic created again is not on every node");
	CHECK(cluster_dirs(s, ids, 16) == 1 && ids[0] > id, "the topic "
	      "created again did not get a new id on node %d", s + 1);
	printf("broker-cluster: topic deleted through node %d; node %d, down "
	       "meanwhile, removed it after its restart\n", f + 1, s + 1);
}

int main(int argc, char **argv)
{
	bool up[NODES] = { true, true, true };
	int64_t took;
	int leader;

	bc_start("broker-cluster", argc, argv, 240);
	bc_cluster_start(nodes, NODES, "cluster", NULL);
	leader = agree(up, &took);
	CHECK(leader > 0, "no metadata leader agreed on at start");
	printf("broker-cluster: node %d leads the metadata (%" PRId64
	       " ms to agree)\n", leader, took);
	for (int round = 0; round < ROUNDS && leader > 0; round++) {
		int k = leader - 1, s;

		bc_broker_kill(&nodes[k]);
		up[k] = false;
		leader = agree(up, &took);
		CHECK(leader > 0 && leader != k + 1,
		      "round %d: no new leader after killing node %d", round,
		      k + 1);
		printf("round %d: killed leader %d; node %d leads after %" PRId64
		       " ms\n", round, k + 1, leader, took);
		bc_broker_start(&nodes[k]);
		up[k] = true;
		leader = agree(up, &took);
		CHECK(leader > 0, "round %d: node %d did not rejoin", round,
		      k + 1);
		// A stopped node misses its election timeouts; resumed, it
		// must not disturb the leader it finds.
		s = (int)bc_rng_below(NODES);
		kill(nodes[s].pid, SIGSTOP);
		bc_sleep_ms(STOP_MS);
		kill(nodes[s].pid, SIGCONT);
		leader = agree(up, &took);
		CHECK(leader > 0, "round %d: no agreement after node %d was "
		      "stopped and resumed", round, s + 1);
		printf("round %d: stopped node %d for %d ms; node %d leads\n",
		       round, s + 1, STOP_MS, leader);
	}
	if (leader > 0)
		admin_anywhere(leader - 1);
	for (int i = 0; i < NODES; i++)
		CHECK(bc_broker_stop(&nodes[i]) == 0, "node %d did not stop "
		      "cleanly", i + 1);
	bc_finish();
}
