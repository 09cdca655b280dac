// SPDX-License-Identifier: Apache-2.0
//
// Placement of new partitions (ox_cluster_place): which nodes hold the
// replicas of each, and which of them is its preferred leader. The
// metadata leader calls it before proposing a create-topic or
// add-partitions entry; the entry carries the result, so placement never
// runs while applying and may change between versions without breaking
// C1. It reads the state's per-node counts and changes nothing.
//
// Greedy and deterministic: partition by partition, first the leader,
// the least loaded node (replicas held) that leads fewest partitions,
// then rf - 1 followers, least loaded first, preferring among equals the
// nodes that already lead most (then the lower id). Each partition thus
// takes rf least loaded nodes, so when the nodes start equal, their
// replica counts never differ by more than one; the follower preference
// keeps nodes that lead little among the least loaded, where the next
// leader is drawn, which keeps leaderships even as well. Loads include
// what earlier partitions of the same call took.
#include <errno.h>
#include <string.h>

#include "broker/cluster/cluster.h"
#include "broker/cluster/cluster_int.h"
#include "proto/assert.h"
#include "proto/error.h"

struct cand {
	uint64_t id;
	uint32_t replicas;
	uint32_t leaders;
	bool taken; // already a replica of the partition being placed
};

// Fills cands from live (or every node): 0 or -EINVAL.
static int cands_init(const struct ox_cluster *c, const uint64_t *live,
		      uint32_t live_n, struct cand *cands, uint32_t *n)
{
	if (live == NULL) {
		for (uint32_t i = 0; i < c->nodes_n; i++) {
			cands[i].id = c->nodes[i].id;
			cands[i].replicas = c->nodes[i].replicas;
			cands[i].leaders = c->nodes[i].leaders;
		}
		*n = c->nodes_n;
		return 0;
	}
	if (live_n > OX_CLUSTER_NODES_MAX)
		return -EINVAL;
	for (uint32_t i = 0; i < live_n; i++) {
		const struct cluster_node *node = cluster_node_find(c, live[i]);
		if (node == NULL)
			return -EINVAL;
		for (uint32_t j = 0; j < i; j++)
			if (live[j] == live[i])
				return -EINVAL;
		cands[i].id = node->id;
		cands[i].replicas = node->replicas;
		cands[i].leaders = node->leaders;
	}
	*n = live_n;
	return 0;
}

// The leader: among the least loaded nodes, the one leading fewest
// partitions (then the lower id). Taking it from the least loaded keeps
// the partition's replicas a least-loaded choice.
static bool better_leader(const struct cand *a, const struct cand *b)
{
	if (a->replicas != b->replicas)
		return a->replicas < b->replicas;
	if (a->leaders != b->leaders)
		return a->leaders < b->leaders;
	return a->id < b->id;
}

// Followers: the least loaded; among equals, those that lead the most
// already, so that nodes leading few stay free to lead the next ones.
static bool better_follower(const struct cand *a, const struct cand *b)
{
	if (a->replicas != b->replicas)
		return a->replicas < b->replicas;
	if (a->leaders != b->leaders)
		return a->leaders > b->leaders;
	return a->id < b->id;
}

static uint32_t best_free(const struct cand *cands, uint32_t n,
			  bool (*better)(const struct cand *,
					 const struct cand *))
{
	uint32_t best = n;

	for (uint32_t i = 0; i < n; i++)
		if (!cands[i].taken &&
		    (best == n || better(&cands[i], &cands[best])))
			best = i;
	OX_ASSERT(best < n); // rf <= n
	return best;
}

// Places one partition: out[0, rf), the preferred leader first.
static int place_one(struct cand *cands, uint32_t n, uint32_t rf,
		     uint64_t *out)
{
	uint32_t chosen[OX_CLUSTER_RF_MAX];

	for (uint32_t r = 0; r < rf; r++) {
		uint32_t best = best_free(cands, n, r == 0 ? better_leader :
						    better_follower);
		if (cands[best].replicas >= OX_CLUSTER_NODE_REPLICAS_MAX)
			return -OX_ETOOBIG;
		cands[best].taken = true;
		chosen[r] = best;
	}
	cands[chosen[0]].leaders++;
	for (uint32_t r = 0; r < rf; r++) {
		struct cand *x = &cands[chosen[r]];
		x->taken = false;
		x->replicas++;
		out[r] = x->id;
	}
	return 0;
}

int ox_cluster_place(const struct ox_cluster *c, const uint64_t *live,
		     uint32_t live_n, uint32_t partitions, uint32_t rf,
		     uint64_t *out)
{
	struct cand cands[OX_CLUSTER_NODES_MAX];
	uint32_t n = 0;

	OX_ASSERT(c != NULL);
	if (out == NULL || (rf != 1 && rf != 3 && rf != 5) ||
	    partitions == 0 || partitions > OX_CLUSTER_TOPIC_PARTITIONS_MAX)
		return -EINVAL;
	memset(cands, 0, sizeof(cands));
	int rc = cands_init(c, live, live_n, cands, &n);
	if (rc < 0)
		return rc;
	if (rf > n)
		return -EINVAL;
	for (uint32_t p = 0; p < partitions; p++) {
		rc = place_one(cands, n, rf, &out[(size_t)p * rf]);
		if (rc < 0)
			return rc;
	}
	return 0;
}
