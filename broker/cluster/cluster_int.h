// SPDX-License-Identifier: Apache-2.0
//
// Private structures of broker/cluster, shared by its .c files (and read
// by its unit tests); no other module includes this.
#ifndef OX_BROKER_CLUSTER_CLUSTER_INT_H
#define OX_BROKER_CLUSTER_CLUSTER_INT_H

#include <stddef.h>
#include <stdint.h>

#include "broker/cluster/cluster.h"
#include "proto/meta.pb-c.h"

struct cluster_node {
	uint64_t id;
	// Derived from the topics (not in snapshots): replicas on this node
	// and partitions it is the preferred leader of.
	uint32_t replicas;
	uint32_t leaders;
	char client[OX_CLUSTER_ADDRESS_MAX + 1];
	char peer[OX_CLUSTER_ADDRESS_MAX + 1];
	char rack[OX_CLUSTER_RACK_MAX + 1];
};

struct cluster_kv {
	char key[OX_CLUSTER_CONFIG_KEY_MAX + 1];
	char value[OX_CLUSTER_CONFIG_VALUE_MAX + 1];
};

struct cluster_part {
	uint64_t epoch;
	uint64_t replicas[OX_CLUSTER_RF_MAX];
	bool moving; // reassigned, and its leader has not said it is done
	uint64_t from[OX_CLUSTER_RF_MAX]; // moving: replicas before the change
};

struct cluster_topic {
	uint64_t id;
	int64_t created_index;
	uint32_t rf;
	uint32_t parts_n;
	uint32_t configs_n;
	struct cluster_part *parts;  // parts_n, owned
	struct cluster_kv *configs;  // configs_n, by key, owned (or NULL)
	char name[OX_CLUSTER_TOPIC_NAME_MAX + 1];
};

struct ox_cluster {
	int64_t applied;
	uint64_t next_topic_id;
	uint32_t nodes_n;
	uint32_t topics_n;
	uint32_t parts_total;
	struct cluster_node nodes[OX_CLUSTER_NODES_MAX]; // sorted by id
	// Both hold the same topics_n owned topics; allocated at create with
	// room for OX_CLUSTER_TOPICS_MAX, so adding a topic never fails.
	struct cluster_topic **by_id;   // sorted by id
	struct cluster_topic **by_name; // sorted by name (strcmp)
};

// The module's allocator: every allocation goes through these, and so
// does protobuf-c's (an allocator from cluster_pb_allocator_init, which sets
// *failed when one of its allocations fails, so a decoder's NULL can be
// told apart from corrupt bytes). A test sets cluster_alloc_fail_after to make
// the n-th allocation from now on fail (-1: never), to check C2; the
// broker never touches it.
extern long cluster_alloc_fail_after;
void *cluster_malloc(size_t n);
void *cluster_calloc(size_t n, size_t size);
void cluster_free(void *p);
void cluster_pb_allocator_init(ProtobufCAllocator *a, int *failed);

// Lookups (cluster.c).
struct cluster_node *cluster_node_find(const struct ox_cluster *c, uint64_t id);
struct cluster_topic *cluster_topic_by_name(const struct ox_cluster *c,
				  const char *name);
struct cluster_topic *cluster_topic_by_id(const struct ox_cluster *c,
					   uint64_t id);
void cluster_topic_free(struct cluster_topic *t);
// A topic named `name` with room for its partitions and configs, the
// rest zero (apply and restore fill it). NULL when out of memory.
struct cluster_topic *cluster_topic_alloc(const char *name, size_t parts_n,
					  size_t configs_n);
// Inserts t (owned from now) into both indexes; room is guaranteed.
void cluster_topic_insert(struct ox_cluster *c, struct cluster_topic *t);
void cluster_topic_remove(struct ox_cluster *c, struct cluster_topic *t);
// Adds (sign 1) or removes (sign -1) a partition's counts on its nodes.
void cluster_part_count(struct ox_cluster *c, const struct cluster_part *p,
		   uint32_t rf, int sign);

// Field rules shared by entries and snapshots (ops.c). Each returns 0 or
// the verdict.
int cluster_check_node(const Oxbow__MetaNode *n);
int cluster_check_configs(Oxbow__MetaConfig *const *kv, size_t n);
int cluster_check_replicas(const struct ox_cluster *c, const uint64_t *r,
		      size_t n, uint32_t rf);

// Checks a decoded entry against the state (ops.c): the verdict.
int cluster_entry_check(const struct ox_cluster *c, const Oxbow__MetaEntry *e,
		   struct ox_cluster_result *res);
// Applies an entry cluster_entry_check accepted: 0 or -ENOMEM (C2).
int cluster_entry_apply(struct ox_cluster *c, int64_t index,
		   const Oxbow__MetaEntry *e, struct ox_cluster_result *res);

// Empties the state's contents (topics and nodes) without freeing it.
void cluster_state_clear(struct ox_cluster *c);

#endif
