// SPDX-License-Identifier: Apache-2.0
//
// Snapshots of the metadata state (proto/meta.proto MetaSnapshot): the
// whole state in a fixed order, so that equal states encode to equal
// bytes (C1), and its restore, which checks every invariant on a fresh
// state before it replaces the old one. The metadata replica takes one to
// compact the __meta log and to send to a follower that is too far
// behind; it restores one at start and when Raft installs one.
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "broker/cluster/cluster.h"
#include "broker/cluster/cluster_int.h"
#include "proto/assert.h"
#include "proto/error.h"

// Everything the snapshot message points to, allocated in a few arrays.
struct snap_bufs {
	Oxbow__MetaNode nodes[OX_CLUSTER_NODES_MAX];
	Oxbow__MetaNode *node_ptrs[OX_CLUSTER_NODES_MAX];
	Oxbow__MetaTopic *topics;
	Oxbow__MetaTopic **topic_ptrs;
	Oxbow__MetaConfig *kvs;
	Oxbow__MetaConfig **kv_ptrs;
	Oxbow__MetaPartition *parts;
	Oxbow__MetaPartition **part_ptrs;
};

static void bufs_free(struct snap_bufs *b)
{
	cluster_free(b->topics);
	cluster_free(b->topic_ptrs);
	cluster_free(b->kvs);
	cluster_free(b->kv_ptrs);
	cluster_free(b->parts);
	cluster_free(b->part_ptrs);
}

static int bufs_alloc(const struct ox_cluster *c, struct snap_bufs *b)
{
	size_t kvs = 0;

	for (uint32_t i = 0; i < c->topics_n; i++)
		kvs += c->by_id[i]->configs_n;
	b->topics = cluster_calloc(c->topics_n, sizeof(*b->topics));
	b->topic_ptrs = cluster_calloc(c->topics_n, sizeof(*b->topic_ptrs));
	b->kvs = cluster_calloc(kvs, sizeof(*b->kvs));
	b->kv_ptrs = cluster_calloc(kvs, sizeof(*b->kv_ptrs));
	b->parts = cluster_calloc(c->parts_total, sizeof(*b->parts));
	b->part_ptrs = cluster_calloc(c->parts_total, sizeof(*b->part_ptrs));
	if (!b->topics || !b->topic_ptrs || !b->kvs || !b->kv_ptrs ||
	    !b->parts || !b->part_ptrs)
		return -ENOMEM;
	return 0;
}

static void fill_nodes(const struct ox_cluster *c, struct snap_bufs *b,
		       Oxbow__MetaSnapshot *s)
{
	for (uint32_t i = 0; i < c->nodes_n; i++) {
		Oxbow__MetaNode *n = &b->nodes[i];
		oxbow__meta_node__init(n);
		n->id = c->nodes[i].id;
		// Packing only reads these.
		n->client_address = (char *)(uintptr_t)c->nodes[i].client;
		n->peer_address = (char *)(uintptr_t)c->nodes[i].peer;
		n->rack = (char *)(uintptr_t)c->nodes[i].rack;
		b->node_ptrs[i] = n;
	}
	s->nodes = b->node_ptrs;
	s->n_nodes = c->nodes_n;
}

static void fill_topics(const struct ox_cluster *c, struct snap_bufs *b,
			Oxbow__MetaSnapshot *s)
{
	size_t kv = 0, part = 0;

	for (uint32_t i = 0; i < c->topics_n; i++) {
		struct cluster_topic *t = c->by_id[i];
		Oxbow__MetaTopic *mt = &b->topics[i];
		oxbow__meta_topic__init(mt);
		mt->name = t->name;
		mt->id = t->id;
		mt->replication_factor = t->rf;
		mt->created_index = t->created_index;
		mt->configs = &b->kv_ptrs[kv];
		mt->n_configs = t->configs_n;
		for (uint32_t k = 0; k < t->configs_n; k++, kv++) {
			oxbow__meta_config__init(&b->kvs[kv]);
			b->kvs[kv].key = t->configs[k].key;
			b->kvs[kv].value = t->configs[k].value;
			b->kv_ptrs[kv] = &b->kvs[kv];
		}
		mt->partitions = &b->part_ptrs[part];
		mt->n_partitions = t->parts_n;
		for (uint32_t p = 0; p < t->parts_n; p++, part++) {
			oxbow__meta_partition__init(&b->parts[part]);
			b->parts[part].replicas = t->parts[p].replicas;
			b->parts[part].n_replicas = t->rf;
			b->parts[part].epoch = t->parts[p].epoch;
			b->parts[part].moving = t->parts[p].moving;
			if (t->parts[p].moving) {
				b->parts[part].from = (uint64_t *)t->parts[p].from;
				b->parts[part].n_from = t->rf;
			}
			b->part_ptrs[part] = &b->parts[part];
		}
		b->topic_ptrs[i] = mt;
	}
	OX_ASSERT(part == c->parts_total);
	s->topics = b->topic_ptrs;
	s->n_topics = c->topics_n;
}

int ox_cluster_snapshot(const struct ox_cluster *c, uint8_t **out,
			size_t *len)
{
	Oxbow__MetaSnapshot s = OXBOW__META_SNAPSHOT__INIT;
	struct snap_bufs *b;
	int rc;

	OX_ASSERT(c != NULL && out != NULL && len != NULL);
	b = cluster_calloc(1, sizeof(*b));
	if (b == NULL)
		return -ENOMEM;
	rc = bufs_alloc(c, b);
	if (rc < 0)
		goto fail;
	s.version = OX_CLUSTER_SNAPSHOT_VERSION;
	s.index = c->applied;
	s.next_topic_id = c->next_topic_id;
	// The state's strings and ids are only read while packing; the
	// structure types want them writable.
	fill_nodes(c, b, &s);
	fill_topics(c, b, &s);
	size_t n = oxbow__meta_snapshot__get_packed_size(&s);
	OX_ASSERT(n <= OX_CLUSTER_SNAPSHOT_BYTES_MAX); // C6 bounds it
	uint8_t *buf = cluster_malloc(n);
	if (buf == NULL) {
		rc = -ENOMEM;
		goto fail;
	}
	size_t w = oxbow__meta_snapshot__pack(&s, buf);
	OX_ASSERT(w == n);
	*out = buf;
	*len = n;
	rc = 0;
fail:
	bufs_free(b);
	cluster_free(b);
	return rc;
}

// ---- Restore ------------------------------------------------------------

static int restore_nodes(struct ox_cluster *c, const Oxbow__MetaSnapshot *s)
{
	if (s->n_nodes > OX_CLUSTER_NODES_MAX)
		return -OX_ECORRUPT;
	for (size_t i = 0; i < s->n_nodes; i++) {
		const Oxbow__MetaNode *n = s->nodes[i];
		if (cluster_check_node(n) < 0 ||
		    (i > 0 && n->id <= s->nodes[i - 1]->id))
			return -OX_ECORRUPT;
		for (size_t j = 0; j < i; j++) {
			const Oxbow__MetaNode *o = s->nodes[j];
			if (strcmp(o->client_address, n->client_address) == 0 ||
			    strcmp(o->peer_address, n->client_address) == 0 ||
			    strcmp(o->client_address, n->peer_address) == 0 ||
			    strcmp(o->peer_address, n->peer_address) == 0)
				return -OX_ECORRUPT;
		}
		struct cluster_node *node = &c->nodes[i];
		memset(node, 0, sizeof(*node));
		node->id = n->id;
		strcpy(node->client, n->client_address);
		strcpy(node->peer, n->peer_address);
		strcpy(node->rack, n->rack ? n->rack : "");
		c->nodes_n++;
	}
	return 0;
}

// Checks one topic of a snapshot against the state restored so far.
static int topic_check(const struct ox_cluster *c, const Oxbow__MetaSnapshot *s,
		       size_t i)
{
	const Oxbow__MetaTopic *m = s->topics[i];
	uint32_t rf = m->replication_factor;

	if (ox_cluster_name_check(m->name,
		strnlen(m->name, OX_CLUSTER_TOPIC_NAME_MAX + 1)) < 0 ||
	    cluster_topic_by_name(c, m->name) != NULL)
		return -OX_ECORRUPT; // C4
	if (m->id == 0 || m->id >= s->next_topic_id ||
	    (i > 0 && m->id <= s->topics[i - 1]->id))
		return -OX_ECORRUPT; // C3
	if (m->created_index <= 0 || m->created_index > s->index)
		return -OX_ECORRUPT;
	if (m->n_partitions == 0 ||
	    m->n_partitions > OX_CLUSTER_TOPIC_PARTITIONS_MAX ||
	    c->parts_total + m->n_partitions > OX_CLUSTER_PARTITIONS_MAX)
		return -OX_ECORRUPT; // C6
	if (cluster_check_configs(m->configs, m->n_configs) < 0)
		return -OX_ECORRUPT;
	for (size_t k = 1; k < m->n_configs; k++)
		if (strcmp(m->configs[k - 1]->key, m->configs[k]->key) >= 0)
			return -OX_ECORRUPT; // keys in order, or C1 breaks
	for (size_t p = 0; p < m->n_partitions; p++) {
		const Oxbow__MetaPartition *mp = m->partitions[p];
		if (cluster_check_replicas(c, mp->replicas, mp->n_replicas,
					   rf) < 0 ||
		    mp->n_from != (mp->moving ? rf : 0))
			return -OX_ECORRUPT; // C5
	}
	return 0;
}

static int restore_topic(struct ox_cluster *c, const Oxbow__MetaTopic *m)
{
	struct cluster_topic *t = cluster_topic_alloc(m->name, m->n_partitions,
						      m->n_configs);

	if (t == NULL)
		return -ENOMEM;
	t->id = m->id;
	t->created_index = m->created_index;
	t->rf = m->replication_factor;
	t->parts_n = (uint32_t)m->n_partitions;
	t->configs_n = (uint32_t)m->n_configs;
	for (uint32_t k = 0; k < t->configs_n; k++) {
		strcpy(t->configs[k].key, m->configs[k]->key);
		strcpy(t->configs[k].value, m->configs[k]->value);
	}
	for (uint32_t p = 0; p < t->parts_n; p++) {
		memcpy(t->parts[p].replicas, m->partitions[p]->replicas,
		       t->rf * sizeof(uint64_t));
		t->parts[p].epoch = m->partitions[p]->epoch;
		t->parts[p].moving = m->partitions[p]->moving;
		if (t->parts[p].moving)
			memcpy(t->parts[p].from, m->partitions[p]->from,
			       t->rf * sizeof(uint64_t));
		cluster_part_count(c, &t->parts[p], t->rf, 1);
	}
	c->parts_total += t->parts_n;
	cluster_topic_insert(c, t);
	return 0;
}

static int restore_into(struct ox_cluster *c, const Oxbow__MetaSnapshot *s)
{
	if (s->index < 0 || s->next_topic_id == 0 ||
	    s->n_topics > OX_CLUSTER_TOPICS_MAX)
		return -OX_ECORRUPT;
	c->applied = s->index;
	c->next_topic_id = s->next_topic_id;
	int rc = restore_nodes(c, s);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < s->n_topics; i++) {
		rc = topic_check(c, s, i);
		if (rc < 0)
			return rc;
		rc = restore_topic(c, s->topics[i]);
		if (rc < 0)
			return rc;
	}
	for (uint32_t i = 0; i < c->nodes_n; i++)
		if (c->nodes[i].replicas > OX_CLUSTER_NODE_REPLICAS_MAX)
			return -OX_ECORRUPT; // C6
	return 0;
}

int ox_cluster_restore(struct ox_cluster *c, const uint8_t *p, size_t n)
{
	ProtobufCAllocator a;
	Oxbow__MetaSnapshot *s = NULL;
	struct ox_cluster *fresh = NULL;
	int failed, rc;

	OX_ASSERT(c != NULL);
	if ((p == NULL && n > 0) || n > OX_CLUSTER_SNAPSHOT_BYTES_MAX)
		return -OX_ECORRUPT;
	cluster_pb_allocator_init(&a, &failed);
	s = oxbow__meta_snapshot__unpack(&a, n, p);
	if (s == NULL)
		return failed ? -ENOMEM : -OX_ECORRUPT;
	if (s->version != OX_CLUSTER_SNAPSHOT_VERSION) {
		rc = -OX_EUNSUPPORTED;
		goto fail;
	}
	rc = ox_cluster_create(&fresh);
	if (rc < 0)
		goto fail;
	rc = restore_into(fresh, s);
	if (rc < 0)
		goto fail;
	// Swap contents, so the caller's pointer stays the state's.
	struct ox_cluster old = *c;
	*c = *fresh;
	*fresh = old;
	rc = 0;
fail:
	ox_cluster_destroy(fresh);
	oxbow__meta_snapshot__free_unpacked(s, &a);
	return rc;
}
