// SPDX-License-Identifier: Apache-2.0
//
// The cluster state's lifecycle, its indexes and queries, the topic name
// rule, and the entry point for committed entries (decode, check, apply).
// The checks and changes of each operation are in ops.c, the encoders in
// entry.c, placement in placement.c, snapshots in snapshot.c.
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "broker/cluster/cluster.h"
#include "broker/cluster/cluster_int.h"
#include "proto/assert.h"
#include "proto/error.h"

long cluster_alloc_fail_after = -1;

// Counts allocations down when a test armed cluster_alloc_fail_after.
static bool alloc_should_fail(void)
{
	if (cluster_alloc_fail_after < 0)
		return false;
	if (cluster_alloc_fail_after == 0)
		return true;
	cluster_alloc_fail_after--;
	return false;
}

void *cluster_malloc(size_t n)
{
	if (alloc_should_fail())
		return NULL;
	return malloc(n ? n : 1);
}

void *cluster_calloc(size_t n, size_t size)
{
	if (alloc_should_fail())
		return NULL;
	if (n == 0 || size == 0)
		return calloc(1, 1);
	return calloc(n, size);
}

void cluster_free(void *p)
{
	free(p);
}

static void *pb_alloc(void *data, size_t size)
{
	void *p = cluster_malloc(size);

	if (p == NULL)
		*(int *)data = 1;
	return p;
}

static void pb_free(void *data, void *p)
{
	(void)data;
	cluster_free(p);
}

void cluster_pb_allocator_init(ProtobufCAllocator *a, int *failed)
{
	*failed = 0;
	a->alloc = pb_alloc;
	a->free = pb_free;
	a->allocator_data = failed;
}

int ox_cluster_create(struct ox_cluster **out)
{
	struct ox_cluster *c;

	OX_ASSERT(out != NULL);
	c = cluster_calloc(1, sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	c->next_topic_id = 1;
	c->by_id = cluster_calloc(OX_CLUSTER_TOPICS_MAX, sizeof(*c->by_id));
	c->by_name = cluster_calloc(OX_CLUSTER_TOPICS_MAX, sizeof(*c->by_name));
	if (c->by_id == NULL || c->by_name == NULL)
		goto fail;
	*out = c;
	return 0;
fail:
	cluster_free(c->by_id);
	cluster_free(c->by_name);
	cluster_free(c);
	return -ENOMEM;
}

void cluster_topic_free(struct cluster_topic *t)
{
	if (t == NULL)
		return;
	cluster_free(t->parts);
	cluster_free(t->configs);
	cluster_free(t);
}

struct cluster_topic *cluster_topic_alloc(const char *name, size_t parts_n,
					  size_t configs_n)
{
	struct cluster_topic *t = cluster_calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	t->parts = cluster_calloc(parts_n, sizeof(*t->parts));
	t->configs = configs_n ? cluster_calloc(configs_n, sizeof(*t->configs)) :
				 NULL;
	if (t->parts == NULL || (configs_n && t->configs == NULL)) {
		cluster_topic_free(t);
		return NULL;
	}
	strcpy(t->name, name);
	return t;
}

void cluster_state_clear(struct ox_cluster *c)
{
	for (uint32_t i = 0; i < c->topics_n; i++)
		cluster_topic_free(c->by_id[i]);
	c->topics_n = 0;
	c->nodes_n = 0;
	c->parts_total = 0;
	c->applied = 0;
	c->next_topic_id = 1;
}

void ox_cluster_destroy(struct ox_cluster *c)
{
	if (c == NULL)
		return;
	cluster_state_clear(c);
	cluster_free(c->by_id);
	cluster_free(c->by_name);
	cluster_free(c);
}

// ---- Indexes ------------------------------------------------------------

struct cluster_node *cluster_node_find(const struct ox_cluster *c, uint64_t id)
{
	uint32_t lo = 0, hi = c->nodes_n;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (c->nodes[mid].id == id)
			return (struct cluster_node *)&c->nodes[mid];
		if (c->nodes[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

// The position of `name` in by_name, or where it would go; *found says.
static uint32_t name_pos(const struct ox_cluster *c, const char *name,
			 bool *found)
{
	uint32_t lo = 0, hi = c->topics_n;

	*found = false;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		int cmp = strcmp(c->by_name[mid]->name, name);
		if (cmp == 0) {
			*found = true;
			return mid;
		}
		if (cmp < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static uint32_t id_pos(const struct ox_cluster *c, uint64_t id, bool *found)
{
	uint32_t lo = 0, hi = c->topics_n;

	*found = false;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (c->by_id[mid]->id == id) {
			*found = true;
			return mid;
		}
		if (c->by_id[mid]->id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

struct cluster_topic *cluster_topic_by_name(const struct ox_cluster *c,
				  const char *name)
{
	bool found;
	uint32_t i;

	if (strnlen(name, OX_CLUSTER_TOPIC_NAME_MAX + 1) >
	    OX_CLUSTER_TOPIC_NAME_MAX)
		return NULL;
	i = name_pos(c, name, &found);
	return found ? c->by_name[i] : NULL;
}

struct cluster_topic *cluster_topic_by_id(const struct ox_cluster *c,
					   uint64_t id)
{
	bool found;
	uint32_t i = id_pos(c, id, &found);

	return found ? c->by_id[i] : NULL;
}

void cluster_topic_insert(struct ox_cluster *c, struct cluster_topic *t)
{
	bool found;
	uint32_t i;

	OX_ASSERT(c->topics_n < OX_CLUSTER_TOPICS_MAX); // C6
	i = name_pos(c, t->name, &found);
	OX_ASSERT(!found); // C4
	memmove(&c->by_name[i + 1], &c->by_name[i],
		(c->topics_n - i) * sizeof(*c->by_name));
	c->by_name[i] = t;
	i = id_pos(c, t->id, &found);
	OX_ASSERT(!found); // C3
	memmove(&c->by_id[i + 1], &c->by_id[i],
		(c->topics_n - i) * sizeof(*c->by_id));
	c->by_id[i] = t;
	c->topics_n++;
}

void cluster_topic_remove(struct ox_cluster *c, struct cluster_topic *t)
{
	bool found;
	uint32_t i = name_pos(c, t->name, &found);

	OX_ASSERT(found && c->by_name[i] == t);
	memmove(&c->by_name[i], &c->by_name[i + 1],
		(c->topics_n - i - 1) * sizeof(*c->by_name));
	i = id_pos(c, t->id, &found);
	OX_ASSERT(found && c->by_id[i] == t);
	memmove(&c->by_id[i], &c->by_id[i + 1],
		(c->topics_n - i - 1) * sizeof(*c->by_id));
	c->topics_n--;
}

void cluster_part_count(struct ox_cluster *c, const struct cluster_part *p,
			uint32_t rf, int sign)
{
	for (uint32_t r = 0; r < rf; r++) {
		struct cluster_node *n = cluster_node_find(c, p->replicas[r]);
		OX_ASSERT(n != NULL); // C5
		if (sign > 0) {
			n->replicas++;
			n->leaders += r == 0;
		} else {
			OX_ASSERT(n->replicas > 0 && (r > 0 || n->leaders > 0));
			n->replicas--;
			n->leaders -= r == 0;
		}
	}
}

// ---- Entries ------------------------------------------------------------

static enum ox_cluster_op op_of(const Oxbow__MetaEntry *e)
{
	switch (e->op_case) {
	case OXBOW__META_ENTRY__OP_NOOP:
		return OX_CLUSTER_OP_NOOP;
	case OXBOW__META_ENTRY__OP_REGISTER_NODE:
		return OX_CLUSTER_OP_REGISTER_NODE;
	case OXBOW__META_ENTRY__OP_CREATE_TOPIC:
		return OX_CLUSTER_OP_CREATE_TOPIC;
	case OXBOW__META_ENTRY__OP_DELETE_TOPIC:
		return OX_CLUSTER_OP_DELETE_TOPIC;
	case OXBOW__META_ENTRY__OP_ALTER_CONFIGS:
		return OX_CLUSTER_OP_ALTER_CONFIGS;
	case OXBOW__META_ENTRY__OP_ADD_PARTITIONS:
		return OX_CLUSTER_OP_ADD_PARTITIONS;
	case OXBOW__META_ENTRY__OP_REASSIGN_PARTITION:
		return OX_CLUSTER_OP_REASSIGN_PARTITION;
	case OXBOW__META_ENTRY__OP_PARTITION_MOVED:
		return OX_CLUSTER_OP_PARTITION_MOVED;
	default:
		return OX_CLUSTER_OP_NONE;
	}
}

// Decodes an entry: 0 with *out set (free it with the same allocator),
// -OX_ECORRUPT, or -ENOMEM.
static int decode(const uint8_t *p, size_t n, ProtobufCAllocator *a,
		  const int *failed, Oxbow__MetaEntry **out)
{
	*out = NULL;
	if (n > OX_CLUSTER_ENTRY_BYTES_MAX || (p == NULL && n > 0))
		return -OX_ECORRUPT;
	*out = oxbow__meta_entry__unpack(a, n, p);
	if (*out == NULL)
		return *failed ? -ENOMEM : -OX_ECORRUPT;
	return 0;
}

static int judge(const struct ox_cluster *c, const uint8_t *entry,
		 size_t len, ProtobufCAllocator *a, const int *failed,
		 Oxbow__MetaEntry **e, struct ox_cluster_result *res)
{
	memset(res, 0, sizeof(*res));
	int rc = decode(entry, len, a, failed, e);
	if (rc == -ENOMEM)
		return rc;
	if (rc < 0) {
		res->verdict = rc;
		return 0;
	}
	if ((*e)->request != NULL)
		res->request = (struct ox_cluster_request){
			(*e)->request->node, (*e)->request->nonce,
			(*e)->request->seq };
	res->op = op_of(*e);
	if (res->op == OX_CLUSTER_OP_NONE) {
		res->verdict = -OX_ECORRUPT;
		return 0;
	}
	res->verdict = cluster_entry_check(c, *e, res);
	OX_ASSERT(res->verdict <= 0);
	return 0;
}

int ox_cluster_check(const struct ox_cluster *c, const uint8_t *entry,
		     size_t len, struct ox_cluster_result *res)
{
	struct ox_cluster_result local;
	ProtobufCAllocator a;
	Oxbow__MetaEntry *e = NULL;
	int failed;

	OX_ASSERT(c != NULL);
	if (res == NULL)
		res = &local;
	cluster_pb_allocator_init(&a, &failed);
	int rc = judge(c, entry, len, &a, &failed, &e, res);
	if (e != NULL)
		oxbow__meta_entry__free_unpacked(e, &a);
	return rc < 0 ? rc : res->verdict;
}

int ox_cluster_apply(struct ox_cluster *c, int64_t index,
		     const uint8_t *entry, size_t len,
		     struct ox_cluster_result *res)
{
	struct ox_cluster_result local;
	ProtobufCAllocator a;
	Oxbow__MetaEntry *e = NULL;
	int failed;

	OX_ASSERT(c != NULL);
	if (index <= c->applied)
		return -EINVAL;
	if (res == NULL)
		res = &local;
	cluster_pb_allocator_init(&a, &failed);
	int rc = judge(c, entry, len, &a, &failed, &e, res);
	if (rc == 0 && res->verdict == 0)
		rc = cluster_entry_apply(c, index, e, res);
	if (e != NULL)
		oxbow__meta_entry__free_unpacked(e, &a);
	if (rc < 0)
		return rc; // C2: nothing changed
	c->applied = index; // C7
	return 0;
}

int64_t ox_cluster_applied_index(const struct ox_cluster *c)
{
	OX_ASSERT(c != NULL);
	return c->applied;
}

// ---- Names --------------------------------------------------------------

int ox_cluster_name_check(const char *name, size_t len)
{
	if (name == NULL || len == 0 || len > OX_CLUSTER_TOPIC_NAME_MAX)
		return -EINVAL;
	if ((len == 1 && name[0] == '.') ||
	    (len == 2 && name[0] == '.' && name[1] == '.'))
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		char ch = name[i];
		bool ok = (ch >= 'a' && ch <= 'z') ||
			  (ch >= 'A' && ch <= 'Z') ||
			  (ch >= '0' && ch <= '9') || ch == '.' ||
			  ch == '_' || ch == '-';
		if (!ok)
			return -EINVAL;
	}
	return 0;
}

bool ox_cluster_name_reserved(const char *name, size_t len)
{
	return name != NULL && len >= 2 && name[0] == '_' && name[1] == '_';
}

// ---- Queries ------------------------------------------------------------

uint32_t ox_cluster_nodes_n(const struct ox_cluster *c)
{
	return c->nodes_n;
}

static void node_out(const struct cluster_node *n, struct ox_cluster_node *out)
{
	out->id = n->id;
	out->client_address = n->client;
	out->peer_address = n->peer;
	out->rack = n->rack;
}

int ox_cluster_node_at(const struct ox_cluster *c, uint32_t i,
		       struct ox_cluster_node *out)
{
	OX_ASSERT(c != NULL && out != NULL);
	if (i >= c->nodes_n)
		return -ENOENT;
	node_out(&c->nodes[i], out);
	return 0;
}

int ox_cluster_node_by_id(const struct ox_cluster *c, uint64_t id,
			  struct ox_cluster_node *out)
{
	OX_ASSERT(c != NULL && out != NULL);
	const struct cluster_node *n = cluster_node_find(c, id);
	if (n == NULL)
		return -ENOENT;
	node_out(n, out);
	return 0;
}

uint32_t ox_cluster_node_replicas(const struct ox_cluster *c, uint64_t id)
{
	const struct cluster_node *n = cluster_node_find(c, id);

	return n ? n->replicas : 0;
}

uint32_t ox_cluster_node_leaders(const struct ox_cluster *c, uint64_t id)
{
	const struct cluster_node *n = cluster_node_find(c, id);

	return n ? n->leaders : 0;
}

uint32_t ox_cluster_topics_n(const struct ox_cluster *c)
{
	return c->topics_n;
}

uint32_t ox_cluster_partitions_total(const struct ox_cluster *c)
{
	return c->parts_total;
}

static void topic_out(const struct cluster_topic *t,
		      struct ox_cluster_topic *out)
{
	out->name = t->name;
	out->id = t->id;
	out->partitions = t->parts_n;
	out->replication_factor = t->rf;
	out->configs_n = t->configs_n;
	out->created_index = t->created_index;
}

int ox_cluster_topic_at(const struct ox_cluster *c, uint32_t i,
			struct ox_cluster_topic *out)
{
	OX_ASSERT(c != NULL && out != NULL);
	if (i >= c->topics_n)
		return -OX_EUNKNOWN_TOPIC;
	topic_out(c->by_id[i], out);
	return 0;
}

int ox_cluster_topic_by_name(const struct ox_cluster *c, const char *name,
			     struct ox_cluster_topic *out)
{
	OX_ASSERT(c != NULL && out != NULL);
	const struct cluster_topic *t =
		name ? cluster_topic_by_name(c, name) : NULL;
	if (t == NULL)
		return -OX_EUNKNOWN_TOPIC;
	topic_out(t, out);
	return 0;
}

int ox_cluster_topic_by_id(const struct ox_cluster *c, uint64_t id,
			   struct ox_cluster_topic *out)
{
	OX_ASSERT(c != NULL && out != NULL);
	const struct cluster_topic *t = cluster_topic_by_id(c, id);
	if (t == NULL)
		return -OX_EUNKNOWN_TOPIC;
	topic_out(t, out);
	return 0;
}

int ox_cluster_partition_get(const struct ox_cluster *c, uint64_t topic_id,
			     uint32_t partition,
			     struct ox_cluster_partition *out)
{
	OX_ASSERT(c != NULL && out != NULL);
	const struct cluster_topic *t = cluster_topic_by_id(c, topic_id);
	if (t == NULL)
		return -OX_EUNKNOWN_TOPIC;
	if (partition >= t->parts_n)
		return -ENOENT;
	out->replicas = t->parts[partition].replicas;
	out->replicas_n = t->rf;
	out->epoch = t->parts[partition].epoch;
	out->moving = t->parts[partition].moving;
	out->from = out->moving ? t->parts[partition].from : NULL;
	return 0;
}

int ox_cluster_config_at(const struct ox_cluster *c, uint64_t topic_id,
			 uint32_t i, struct ox_cluster_kv *out)
{
	OX_ASSERT(c != NULL && out != NULL);
	const struct cluster_topic *t = cluster_topic_by_id(c, topic_id);
	if (t == NULL)
		return -OX_EUNKNOWN_TOPIC;
	if (i >= t->configs_n)
		return -ENOENT;
	out->key = t->configs[i].key;
	out->value = t->configs[i].value;
	return 0;
}

int ox_cluster_config_get(const struct ox_cluster *c, uint64_t topic_id,
			  const char *key, const char **value)
{
	OX_ASSERT(c != NULL && value != NULL);
	const struct cluster_topic *t = cluster_topic_by_id(c, topic_id);
	if (t == NULL)
		return -OX_EUNKNOWN_TOPIC;
	for (uint32_t i = 0; key != NULL && i < t->configs_n; i++) {
		if (strcmp(t->configs[i].key, key) == 0) {
			*value = t->configs[i].value;
			return 0;
		}
	}
	return -ENOENT;
}

int ox_cluster_group_partition(const struct ox_cluster *c, const char *group,
			       size_t len, uint64_t *topic_id,
			       uint32_t *partition)
{
	OX_ASSERT(c != NULL && topic_id != NULL && partition != NULL);
	if (group == NULL || len == 0)
		return -EINVAL;
	const struct cluster_topic *t =
		cluster_topic_by_name(c, OX_CLUSTER_OFFSETS_TOPIC);
	if (t == NULL)
		return -OX_EUNKNOWN_TOPIC;
	OX_ASSERT(t->parts_n > 0);
	uint32_t h = 2166136261u; // FNV-1a, 32 bits
	for (size_t i = 0; i < len; i++) {
		h ^= (uint8_t)group[i];
		h *= 16777619u;
	}
	*topic_id = t->id;
	*partition = h % t->parts_n;
	return 0;
}
