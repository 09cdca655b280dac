// SPDX-License-Identifier: Apache-2.0
//
// The operations of the metadata state machine: for each entry type, the
// check that decides its verdict from the state alone (so every node
// decides alike, C1) and the change that applies it. A check allocates
// nothing; an application acquires all its memory before its first change
// (C2). cluster.c calls these after decoding an entry.
#include <errno.h>
#include <string.h>

#include "broker/cluster/cluster.h"
#include "broker/cluster/cluster_int.h"
#include "proto/assert.h"
#include "proto/error.h"

// protobuf-c leaves absent proto3 strings at "", but a NULL costs nothing
// to refuse.
static size_t str_len(const char *s, size_t max)
{
	return s ? strnlen(s, max + 1) : 0;
}

// Printable ASCII with no space: what text in the state may hold (the
// server's topics file separates fields with spaces).
static bool printable(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
			return false;
	return true;
}

// host:port with a port in 1..65535; the host is not resolved here.
static bool address_ok(const char *s)
{
	size_t n = str_len(s, OX_CLUSTER_ADDRESS_MAX);

	if (n < 3 || n > OX_CLUSTER_ADDRESS_MAX || !printable(s, n))
		return false;
	const char *colon = strrchr(s, ':');
	if (colon == NULL || colon == s)
		return false;
	size_t digits = n - (size_t)(colon + 1 - s);
	if (digits == 0 || digits > 5)
		return false;
	unsigned port = 0;
	for (const char *d = colon + 1; *d; d++) {
		if (*d < '0' || *d > '9')
			return false;
		port = port * 10 + (unsigned)(*d - '0');
	}
	return port >= 1 && port <= 65535;
}

int cluster_check_node(const Oxbow__MetaNode *n)
{
	if (n == NULL || n->id == 0 || n->id > OX_CLUSTER_NODE_ID_MAX)
		return -OX_EINVALID_REQUEST;
	if (!address_ok(n->client_address) || !address_ok(n->peer_address) ||
	    strcmp(n->client_address, n->peer_address) == 0)
		return -OX_EINVALID_REQUEST;
	size_t rack = str_len(n->rack, OX_CLUSTER_RACK_MAX);
	if (rack > OX_CLUSTER_RACK_MAX || !printable(n->rack, rack))
		return -OX_EINVALID_REQUEST;
	return 0;
}

static bool key_ok(const char *k)
{
	size_t n = str_len(k, OX_CLUSTER_CONFIG_KEY_MAX);

	if (n == 0 || n > OX_CLUSTER_CONFIG_KEY_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = k[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
		      ch == '.' || ch == '_' || ch == '-'))
			return false;
	}
	return true;
}

static bool value_ok(const char *v)
{
	size_t n = str_len(v, OX_CLUSTER_CONFIG_VALUE_MAX);

	return n > 0 && n <= OX_CLUSTER_CONFIG_VALUE_MAX && printable(v, n);
}

int cluster_check_configs(Oxbow__MetaConfig *const *kv, size_t n)
{
	if (n > OX_CLUSTER_CONFIGS_MAX)
		return -OX_EINVALID_CONFIG;
	for (size_t i = 0; i < n; i++) {
		if (kv[i] == NULL || !key_ok(kv[i]->key) ||
		    !value_ok(kv[i]->value))
			return -OX_EINVALID_CONFIG;
		for (size_t j = 0; j < i; j++)
			if (strcmp(kv[i]->key, kv[j]->key) == 0)
				return -OX_EINVALID_CONFIG;
	}
	return 0;
}

static bool rf_ok(uint32_t rf)
{
	return rf == 1 || rf == 3 || rf == 5;
}

int cluster_check_replicas(const struct ox_cluster *c, const uint64_t *r,
		      size_t n, uint32_t rf)
{
	if (n != rf || !rf_ok(rf))
		return -OX_EINVALID_REQUEST;
	for (size_t i = 0; i < n; i++) {
		if (cluster_node_find(c, r[i]) == NULL)
			return -OX_EINVALID_REQUEST;
		for (size_t j = 0; j < i; j++)
			if (r[i] == r[j])
				return -OX_EINVALID_REQUEST;
	}
	return 0;
}

// Replica counts a change adds to (or takes from) each node slot; the
// check passes when no node ends above OX_CLUSTER_NODE_REPLICAS_MAX.
struct load {
	int64_t delta[OX_CLUSTER_NODES_MAX];
};

static void load_add(const struct ox_cluster *c, struct load *l,
		     const uint64_t *r, size_t n, int sign)
{
	for (size_t i = 0; i < n; i++) {
		const struct cluster_node *node = cluster_node_find(c, r[i]);
		OX_ASSERT(node != NULL); // checked by cluster_check_replicas
		l->delta[node - c->nodes] += sign;
	}
}

static int load_check(const struct ox_cluster *c, const struct load *l)
{
	for (uint32_t i = 0; i < c->nodes_n; i++)
		if ((int64_t)c->nodes[i].replicas + l->delta[i] >
		    (int64_t)OX_CLUSTER_NODE_REPLICAS_MAX)
			return -OX_ETOOBIG; // C6
	return 0;
}

// Checks assignments of a topic of replication factor rf, and that the
// nodes can hold them beside `old` (a partition leaving, or NULL).
static int check_assignments(const struct ox_cluster *c,
			     Oxbow__MetaAssignment *const *a, size_t n,
			     uint32_t rf, const struct cluster_part *old)
{
	struct load l;

	memset(&l, 0, sizeof(l));
	for (size_t i = 0; i < n; i++) {
		if (a[i] == NULL)
			return -OX_EINVALID_REQUEST;
		int rc = cluster_check_replicas(c, a[i]->replicas,
						 a[i]->n_replicas, rf);
		if (rc < 0)
			return rc;
		load_add(c, &l, a[i]->replicas, a[i]->n_replicas, 1);
	}
	if (old != NULL)
		load_add(c, &l, old->replicas, rf, -1);
	return load_check(c, &l);
}

static bool name_ok(const char *name)
{
	size_t n = str_len(name, OX_CLUSTER_TOPIC_NAME_MAX);

	return ox_cluster_name_check(name, n) == 0;
}

// A named topic that exists: 0 with *t set, or the verdict.
static int find_topic(const struct ox_cluster *c, const char *name,
		      struct cluster_topic **t, struct ox_cluster_result *res)
{
	if (!name_ok(name))
		return -OX_EINVALID_REQUEST;
	*t = cluster_topic_by_name(c, name);
	if (*t == NULL)
		return -OX_EUNKNOWN_TOPIC;
	res->topic_id = (*t)->id;
	return 0;
}

static int check_register(const struct ox_cluster *c,
			  const Oxbow__MetaRegisterNode *m,
			  struct ox_cluster_result *res)
{
	int rc = cluster_check_node(m->node);
	if (rc < 0)
		return rc;
	const Oxbow__MetaNode *n = m->node;
	res->node_id = n->id;
	for (uint32_t i = 0; i < c->nodes_n; i++) {
		const struct cluster_node *o = &c->nodes[i];
		if (o->id == n->id)
			continue;
		if (strcmp(o->client, n->client_address) == 0 ||
		    strcmp(o->peer, n->client_address) == 0 ||
		    strcmp(o->client, n->peer_address) == 0 ||
		    strcmp(o->peer, n->peer_address) == 0)
			return -OX_EINVALID_REQUEST;
	}
	if (cluster_node_find(c, n->id) == NULL &&
	    c->nodes_n >= OX_CLUSTER_NODES_MAX)
		return -OX_ETOOBIG;
	return 0;
}

static int check_create(const struct ox_cluster *c,
			const Oxbow__MetaCreateTopic *m,
			struct ox_cluster_result *res)
{
	if (!name_ok(m->name))
		return -OX_EINVALID_REQUEST;
	const struct cluster_topic *old = cluster_topic_by_name(c, m->name);
	if (old != NULL) {
		res->topic_id = old->id;
		return -OX_ETOPIC_EXISTS;
	}
	if (!rf_ok(m->replication_factor) || m->partitions == 0 ||
	    m->n_assignments != m->partitions)
		return -OX_EINVALID_REQUEST;
	if (m->partitions > OX_CLUSTER_TOPIC_PARTITIONS_MAX ||
	    c->topics_n >= OX_CLUSTER_TOPICS_MAX ||
	    c->parts_total + (uint64_t)m->partitions >
		    OX_CLUSTER_PARTITIONS_MAX)
		return -OX_ETOOBIG;
	int rc = cluster_check_configs(m->configs, m->n_configs);
	if (rc < 0)
		return rc;
	return check_assignments(c, m->assignments, m->n_assignments,
				 m->replication_factor, NULL);
}

static int check_delete(const struct ox_cluster *c,
			const Oxbow__MetaDeleteTopic *m,
			struct ox_cluster_result *res)
{
	struct cluster_topic *t;
	int rc = find_topic(c, m->name, &t, res);

	if (rc < 0)
		return rc;
	if (m->topic_id != 0 && m->topic_id != t->id)
		return -OX_EUNKNOWN_TOPIC;
	return 0;
}

static bool key_listed(const char *key, Oxbow__MetaConfig *const *set,
		       size_t set_n, char *const *reset, size_t reset_n)
{
	for (size_t i = 0; i < set_n; i++)
		if (strcmp(set[i]->key, key) == 0)
			return true;
	for (size_t i = 0; i < reset_n; i++)
		if (strcmp(reset[i], key) == 0)
			return true;
	return false;
}

static int check_alter(const struct ox_cluster *c,
		       const Oxbow__MetaAlterConfigs *m,
		       struct ox_cluster_result *res)
{
	struct cluster_topic *t;
	int rc = find_topic(c, m->name, &t, res);

	if (rc < 0)
		return rc;
	rc = cluster_check_configs(m->set, m->n_set);
	if (rc < 0)
		return rc;
	if (m->n_reset > OX_CLUSTER_CONFIGS_MAX)
		return -OX_EINVALID_CONFIG;
	for (size_t i = 0; i < m->n_reset; i++) {
		if (!key_ok(m->reset[i]) ||
		    key_listed(m->reset[i], m->set, m->n_set, NULL, 0))
			return -OX_EINVALID_CONFIG;
	}
	size_t kept = m->n_set;
	for (uint32_t i = 0; i < t->configs_n; i++)
		kept += !key_listed(t->configs[i].key, m->set, m->n_set,
				    m->reset, m->n_reset);
	return kept > OX_CLUSTER_CONFIGS_MAX ? -OX_EINVALID_CONFIG : 0;
}

static int check_add(const struct ox_cluster *c,
		     const Oxbow__MetaAddPartitions *m,
		     struct ox_cluster_result *res)
{
	struct cluster_topic *t;
	int rc = find_topic(c, m->name, &t, res);

	if (rc < 0)
		return rc;
	if (m->n_assignments == 0)
		return -OX_EINVALID_REQUEST;
	if (t->parts_n + (uint64_t)m->n_assignments >
		    OX_CLUSTER_TOPIC_PARTITIONS_MAX ||
	    c->parts_total + (uint64_t)m->n_assignments >
		    OX_CLUSTER_PARTITIONS_MAX)
		return -OX_ETOOBIG;
	return check_assignments(c, m->assignments, m->n_assignments, t->rf,
				 NULL);
}

static int check_reassign(const struct ox_cluster *c,
			  const Oxbow__MetaReassignPartition *m,
			  struct ox_cluster_result *res)
{
	struct cluster_topic *t;
	int rc = find_topic(c, m->name, &t, res);

	if (rc < 0)
		return rc;
	res->partition = m->partition;
	if (m->partition >= t->parts_n)
		return -OX_EINVALID_REQUEST;
	Oxbow__MetaAssignment a = OXBOW__META_ASSIGNMENT__INIT;
	Oxbow__MetaAssignment *ap = &a;
	a.replicas = m->replicas;
	a.n_replicas = m->n_replicas;
	return check_assignments(c, &ap, 1, t->rf, &t->parts[m->partition]);
}

static int check_moved(const struct ox_cluster *c,
		       const Oxbow__MetaPartitionMoved *m,
		       struct ox_cluster_result *res)
{
	struct cluster_topic *t;
	int rc = find_topic(c, m->name, &t, res);

	if (rc < 0)
		return rc;
	if (m->topic_id != t->id)
		return -OX_EUNKNOWN_TOPIC;
	res->partition = m->partition;
	if (m->partition >= t->parts_n || !t->parts[m->partition].moving ||
	    t->parts[m->partition].epoch != m->epoch)
		return -OX_EINVALID_REQUEST;
	return 0;
}

int cluster_entry_check(const struct ox_cluster *c, const Oxbow__MetaEntry *e,
		   struct ox_cluster_result *res)
{
	// A oneof member of a decoded message is never NULL.
	switch (e->op_case) {
	case OXBOW__META_ENTRY__OP_NOOP:
		return 0;
	case OXBOW__META_ENTRY__OP_REGISTER_NODE:
		return check_register(c, e->register_node, res);
	case OXBOW__META_ENTRY__OP_CREATE_TOPIC:
		return check_create(c, e->create_topic, res);
	case OXBOW__META_ENTRY__OP_DELETE_TOPIC:
		return check_delete(c, e->delete_topic, res);
	case OXBOW__META_ENTRY__OP_ALTER_CONFIGS:
		return check_alter(c, e->alter_configs, res);
	case OXBOW__META_ENTRY__OP_ADD_PARTITIONS:
		return check_add(c, e->add_partitions, res);
	case OXBOW__META_ENTRY__OP_REASSIGN_PARTITION:
		return check_reassign(c, e->reassign_partition, res);
	case OXBOW__META_ENTRY__OP_PARTITION_MOVED:
		return check_moved(c, e->partition_moved, res);
	default:
		return -OX_ECORRUPT;
	}
}

// ---- Applying -----------------------------------------------------------

static void apply_register(struct ox_cluster *c, const Oxbow__MetaNode *n)
{
	struct cluster_node *node = cluster_node_find(c, n->id);

	if (node == NULL) {
		OX_ASSERT(c->nodes_n < OX_CLUSTER_NODES_MAX); // C6
		uint32_t i = c->nodes_n;
		while (i > 0 && c->nodes[i - 1].id > n->id)
			i--;
		memmove(&c->nodes[i + 1], &c->nodes[i],
			(c->nodes_n - i) * sizeof(c->nodes[0]));
		node = &c->nodes[i];
		memset(node, 0, sizeof(*node));
		node->id = n->id;
		c->nodes_n++;
	}
	// Lengths were checked (cluster_check_node), so each copy fits.
	strcpy(node->client, n->client_address);
	strcpy(node->peer, n->peer_address);
	strcpy(node->rack, n->rack ? n->rack : "");
}

static void kv_sort(struct cluster_kv *kv, uint32_t n)
{
	for (uint32_t i = 1; i < n; i++) {
		struct cluster_kv tmp = kv[i];
		uint32_t j = i;
		while (j > 0 && strcmp(kv[j - 1].key, tmp.key) > 0) {
			kv[j] = kv[j - 1];
			j--;
		}
		kv[j] = tmp;
	}
}

static void kv_set(struct cluster_kv *kv, const char *key, const char *value)
{
	strcpy(kv->key, key);
	strcpy(kv->value, value);
}

static void parts_fill(struct cluster_part *p, Oxbow__MetaAssignment *const *a,
		       size_t n, uint32_t rf)
{
	for (size_t i = 0; i < n; i++) {
		memset(&p[i], 0, sizeof(p[i]));
		OX_ASSERT(a[i]->n_replicas == rf); // C5
		memcpy(p[i].replicas, a[i]->replicas, rf * sizeof(uint64_t));
	}
}

static int apply_create(struct ox_cluster *c, int64_t index,
			const Oxbow__MetaCreateTopic *m,
			struct ox_cluster_result *res)
{
	struct cluster_topic *t = cluster_topic_alloc(m->name, m->partitions,
						      m->n_configs);

	if (t == NULL)
		return -ENOMEM;
	t->id = c->next_topic_id++; // C3
	t->created_index = index;
	t->rf = m->replication_factor;
	t->parts_n = m->partitions;
	t->configs_n = (uint32_t)m->n_configs;
	for (size_t i = 0; i < m->n_configs; i++)
		kv_set(&t->configs[i], m->configs[i]->key,
		       m->configs[i]->value);
	kv_sort(t->configs, t->configs_n);
	parts_fill(t->parts, m->assignments, m->n_assignments, t->rf);
	for (uint32_t p = 0; p < t->parts_n; p++)
		cluster_part_count(c, &t->parts[p], t->rf, 1);
	c->parts_total += t->parts_n;
	cluster_topic_insert(c, t);
	res->topic_id = t->id;
	return 0;
}

static void apply_delete(struct ox_cluster *c, const Oxbow__MetaDeleteTopic *m)
{
	struct cluster_topic *t = cluster_topic_by_name(c, m->name);

	OX_ASSERT(t != NULL);
	for (uint32_t p = 0; p < t->parts_n; p++)
		cluster_part_count(c, &t->parts[p], t->rf, -1);
	OX_ASSERT(c->parts_total >= t->parts_n);
	c->parts_total -= t->parts_n;
	cluster_topic_remove(c, t);
	cluster_topic_free(t);
}

static int apply_alter(struct ox_cluster *c, const Oxbow__MetaAlterConfigs *m)
{
	struct cluster_topic *t = cluster_topic_by_name(c, m->name);
	struct cluster_kv *kv = NULL;
	uint32_t n = 0;

	OX_ASSERT(t != NULL);
	size_t cap = t->configs_n + m->n_set;
	if (cap > 0) {
		kv = cluster_calloc(cap, sizeof(*kv));
		if (kv == NULL)
			return -ENOMEM;
	}
	for (uint32_t i = 0; i < t->configs_n; i++)
		if (!key_listed(t->configs[i].key, m->set, m->n_set, m->reset,
				m->n_reset))
			kv[n++] = t->configs[i];
	for (size_t i = 0; i < m->n_set; i++)
		kv_set(&kv[n++], m->set[i]->key, m->set[i]->value);
	OX_ASSERT(n <= OX_CLUSTER_CONFIGS_MAX); // C6, checked by check_alter
	kv_sort(kv, n);
	cluster_free(t->configs);
	t->configs = n ? kv : NULL;
	if (n == 0)
		cluster_free(kv);
	t->configs_n = n;
	return 0;
}

static int apply_add(struct ox_cluster *c, const Oxbow__MetaAddPartitions *m)
{
	struct cluster_topic *t = cluster_topic_by_name(c, m->name);

	OX_ASSERT(t != NULL);
	uint32_t n = t->parts_n + (uint32_t)m->n_assignments;
	struct cluster_part *parts = cluster_calloc(n, sizeof(*parts));
	if (parts == NULL)
		return -ENOMEM;
	memcpy(parts, t->parts, t->parts_n * sizeof(*parts));
	parts_fill(&parts[t->parts_n], m->assignments, m->n_assignments, t->rf);
	for (uint32_t p = t->parts_n; p < n; p++)
		cluster_part_count(c, &parts[p], t->rf, 1);
	c->parts_total += n - t->parts_n;
	cluster_free(t->parts);
	t->parts = parts;
	t->parts_n = n;
	return 0;
}

static void apply_reassign(struct ox_cluster *c,
			   const Oxbow__MetaReassignPartition *m)
{
	struct cluster_topic *t = cluster_topic_by_name(c, m->name);

	OX_ASSERT(t != NULL && m->partition < t->parts_n);
	OX_ASSERT(m->n_replicas == t->rf); // C5
	struct cluster_part *p = &t->parts[m->partition];
	if (memcmp(p->replicas, m->replicas, t->rf * sizeof(uint64_t)) == 0)
		return; // where it is (or going) already
	cluster_part_count(c, p, t->rf, -1);
	memcpy(p->from, p->replicas, t->rf * sizeof(uint64_t));
	memcpy(p->replicas, m->replicas, t->rf * sizeof(uint64_t));
	p->epoch++;
	p->moving = true;
	cluster_part_count(c, p, t->rf, 1);
}

static void apply_moved(struct ox_cluster *c,
			const Oxbow__MetaPartitionMoved *m)
{
	struct cluster_topic *t = cluster_topic_by_name(c, m->name);

	OX_ASSERT(t != NULL && m->partition < t->parts_n);
	t->parts[m->partition].moving = false;
	memset(t->parts[m->partition].from, 0,
	       sizeof(t->parts[m->partition].from));
}

int cluster_entry_apply(struct ox_cluster *c, int64_t index,
		   const Oxbow__MetaEntry *e, struct ox_cluster_result *res)
{
	switch (e->op_case) {
	case OXBOW__META_ENTRY__OP_NOOP:
		return 0;
	case OXBOW__META_ENTRY__OP_REGISTER_NODE:
		apply_register(c, e->register_node->node);
		return 0;
	case OXBOW__META_ENTRY__OP_CREATE_TOPIC:
		return apply_create(c, index, e->create_topic, res);
	case OXBOW__META_ENTRY__OP_DELETE_TOPIC:
		apply_delete(c, e->delete_topic);
		return 0;
	case OXBOW__META_ENTRY__OP_ALTER_CONFIGS:
		return apply_alter(c, e->alter_configs);
	case OXBOW__META_ENTRY__OP_ADD_PARTITIONS:
		return apply_add(c, e->add_partitions);
	case OXBOW__META_ENTRY__OP_REASSIGN_PARTITION:
		apply_reassign(c, e->reassign_partition);
		return 0;
	case OXBOW__META_ENTRY__OP_PARTITION_MOVED:
		apply_moved(c, e->partition_moved);
		return 0;
	default:
		OX_ASSERT(!"an entry cluster_entry_check refused");
		return 0;
	}
}
