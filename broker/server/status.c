// SPDX-License-Identifier: Apache-2.0
//
// CLUSTER_STATUS: the cluster at a glance as this node sees it (oxbowctl
// cluster status): the nodes, who leads the metadata, and every
// partition this node holds with its leader, replicas, the replicas that
// hold the log up to the high watermark, and that high watermark. A node
// without peers is a cluster of one and leads its own metadata.
#include "broker/server/server_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/cluster/cluster.h"
#include "broker/raft/raft.h"

struct status_build {
	Oxbow__PartitionStatus *parts;
	Oxbow__PartitionStatus **pptrs;
	int32_t *ids; // replicas and in_sync of every partition, two runs each
	size_t n;
};

// Whether replica `id` of the group counts as in sync, as this node
// knows it. Only a leader knows its followers' progress: a follower is in
// sync when it holds the log up to the high watermark and answered
// within the last election timeout (a killed follower keeps its last
// match, so the match alone would vouch for it long after it died). A
// node that does not lead names only the leader it follows.
static bool in_sync_here(const struct ox_raft *r, uint64_t id, int64_t hw)
{
	if (ox_raft_role(r) != OX_RAFT_LEADER)
		return id != OX_RAFT_NONE && id == ox_raft_leader(r);
	if (ox_raft_match(r, id) < hw)
		return false;
	return ox_raft_leader(r) == id || ox_raft_heard(r, id);
}

static void status_partition(struct ox_server *srv, struct status_build *b,
			     struct ox_topic *t, uint32_t i, int32_t *ids)
{
	struct ox_cluster_partition cp;
	const struct ox_raft *r = ox_replica_raft(t->parts[i]->rep);
	const struct ox_raft_conf *c = ox_raft_conf(r);
	int64_t hw = ox_replica_high_watermark(t->parts[i]->rep);
	Oxbow__PartitionStatus init = OXBOW__PARTITION_STATUS__INIT;
	Oxbow__PartitionStatus *p = &b->parts[b->n];
	size_t in_sync = 0;

	*p = init;
	p->topic = t->meta.name;
	p->partition = (int32_t)i;
	p->leader = ox_raft_leader(r) ? (int32_t)ox_raft_leader(r) : -1;
	p->high_watermark = hw;
	p->n_replicas = c->voters_n;
	p->replicas = ids;
	p->in_sync = ids + c->voters_n;
	for (uint32_t k = 0; k < c->voters_n; k++) {
		p->replicas[k] = (int32_t)c->voters[k];
		if (in_sync_here(r, c->voters[k], hw))
			p->in_sync[in_sync++] = (int32_t)c->voters[k];
	}
	p->n_in_sync = in_sync;
	// Moving (moves.c): the replicas are the group's voters now.
	p->moving = ox_srv_cluster_partition(srv, t, i, &cp) == 0 &&
		    cp.moving;
	b->pptrs[b->n++] = p;
}

// With several nodes: the metadata group's leader and term, and its node
// table (this node alone until the leader registered it).
static int cluster_nodes(struct ox_server *srv,
			 Oxbow__ClusterStatusResponse *resp,
			 Oxbow__NodeStatus **nodes, Oxbow__NodeStatus ***nptrs)
{
	uint32_t n = ox_meta_nodes_n(srv);
	uint64_t term;

	resp->meta_leader = (int32_t)ox_meta_leader(srv, &term);
	resp->meta_term = term;
	resp->rejoining = ox_meta_rejoining(srv);
	if (n == 0)
		return 0;
	*nodes = calloc(n, sizeof(**nodes));
	*nptrs = calloc(n, sizeof(**nptrs));
	if (*nodes == NULL || *nptrs == NULL)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		Oxbow__NodeStatus init = OXBOW__NODE_STATUS__INIT;
		const char *client, *peer;
		uint64_t id;
		bool reachable;

		(*nodes)[i] = init;
		if (ox_meta_node_at(srv, i, &id, &client, &peer,
				    &reachable) < 0)
			return -ENOMEM;
		(*nodes)[i].node_id = (int32_t)id;
		(*nodes)[i].address = (char *)client;
		(*nodes)[i].peer_address = (char *)peer;
		(*nodes)[i].reachable = reachable;
		(*nptrs)[i] = &(*nodes)[i];
	}
	resp->n_nodes = n;
	resp->nodes = *nptrs;
	return 0;
}

void ox_srv_cluster_status(struct ox_server *srv, struct ox_net_req *req)
{
	Oxbow__ClusterStatusRequest *m = ox_srv_body_unpack(
		req, &oxbow__cluster_status_request__descriptor,
		"CLUSTER_STATUS");
	Oxbow__ClusterStatusResponse resp = OXBOW__CLUSTER_STATUS_RESPONSE__INIT;
	Oxbow__NodeStatus self = OXBOW__NODE_STATUS__INIT, *sp = &self;
	struct status_build b = { 0 };
	char addr[OX_CONFIG_ADDR_MAX + 8];
	Oxbow__NodeStatus *nodes = NULL, **nptrs = NULL;
	size_t k = 0;

	if (!m)
		return; // rejected
	oxbow__cluster_status_request__free_unpacked(m, NULL);
	b.parts = calloc(srv->npartitions + 1, sizeof(*b.parts));
	b.pptrs = calloc(srv->npartitions + 1, sizeof(*b.pptrs));
	b.ids = calloc(2 * OX_RAFT_NODES_MAX * (srv->npartitions + 1),
		       sizeof(*b.ids));
	if (!b.parts || !b.pptrs || !b.ids) {
		ox_srv_respond_error(req, -ENOMEM, "out of memory");
		goto out;
	}
	for (size_t s = 0; s < OX_TOPIC_SLOTS; s++)
		for (struct ox_topic *t = srv->topics[s]; t; t = t->next)
			for (uint32_t i = 0; i < t->meta.partitions; i++) {
				if (t->parts[i] == NULL)
					continue; // reported by its replicas
				status_partition(srv, &b, t, i, b.ids + k);
				k += 2 * OX_RAFT_NODES_MAX;
			}
	snprintf(addr, sizeof(addr), "%s:%u", srv->adv_host, srv->adv_port);
	self.node_id = srv->cfg.node_id;
	self.address = addr;
	self.peer_address = srv->cfg.peer_listen;
	self.reachable = true;
	resp.answering_node = srv->cfg.node_id;
	resp.meta_leader = srv->cfg.node_id;
	resp.n_nodes = 1;
	resp.nodes = &sp;
	if (srv->meta && cluster_nodes(srv, &resp, &nodes, &nptrs) < 0) {
		ox_srv_respond_error(req, -ENOMEM, "out of memory");
		goto out;
	}
	resp.n_partitions = b.n;
	resp.partitions = b.pptrs;
	ox_srv_respond_msg(req, &resp.base);
out:
	free(b.parts);
	free(b.pptrs);
	free(b.ids);
	free(nodes);
	free(nptrs);
}
