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
// over raw connections. It prints how long each new leader took.
// A plain program (exit 0 pass, 1 fail, 77 skip): argv[1] is oxbowd.
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

// A topic of the cluster, created on the metadata leader, cannot be
// deleted or changed by one node alone: each node, once it knows the
// topic, refuses, and the topic stays whole.
static void cluster_topic_guarded(int lead)
{
	struct ox_config_entry e = { "retention.ms", "1000" };
	struct ox_topic_info *info = NULL;
	int rc;

	struct ox_admin *a = bc_admin(&nodes[lead]);
	rc = ox_admin_topic_create(a, "kept", 2, 3, NULL, 0);
	CHECK(rc == 0, "create on the metadata leader: %s (%s)",
	      ox_strerror(rc), ox_admin_last_error(a));
	ox_admin_destroy(a);
	for (int i = 0; i < NODES; i++) {
		a = bc_admin(&nodes[i]);
		// Followers apply the entry a moment after the leader answers.
		int64_t until = bc_now_ms() + AGREE_TIMEOUT_MS;
		while (ox_admin_topic_describe(a, "kept", &info) != 0 &&
		       bc_now_ms() < until)
			bc_sleep_ms(20);
		if (info)
			ox_topic_infos_free(info, 1);
		info = NULL;
		rc = ox_admin_topic_delete(a, "kept");
		CHECK(rc == -OX_EUNSUPPORTED, "node %d deleted a cluster topic "
		      "alone: %s", i + 1, ox_strerror(rc));
		rc = ox_admin_config_alter(a, "kept", &e, 1);
		CHECK(rc == -OX_EUNSUPPORTED, "node %d changed a cluster topic "
		      "alone: %s", i + 1, ox_strerror(rc));
		rc = ox_admin_topic_describe(a, "kept", &info);
		CHECK(rc == 0 && info != NULL, "node %d lost the topic: %s",
		      i + 1, ox_strerror(rc));
		if (info)
			ox_topic_infos_free(info, 1);
		info = NULL;
		ox_admin_destroy(a);
	}
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
		cluster_topic_guarded(leader - 1);
	for (int i = 0; i < NODES; i++)
		CHECK(bc_broker_stop(&nodes[i]) == 0, "node %d did not stop "
		      "cleanly", i + 1);
	bc_finish();
}
