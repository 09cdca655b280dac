// SPDX-License-Identifier: Apache-2.0
//
// Consumer-group offsets: the record encoding of the internal compacted
// topic `__offsets` and the in-memory map that serves OFFSET_FETCH and
// LIST_GROUPS. A commit is a record in __offsets first (groups.c appends
// it and waits until it is durable) and enters the map after; at start
// the map is rebuilt by reading the topic from its start, so the topic is
// the truth and the map a cache of its latest value per key. No I/O here.
//
// Record layout (all integers little-endian; README.md repeats it):
//   key   = u8 version (1) | u8 group length | group | u8 topic length |
//           topic | u32 partition
//   value = u8 version (1) | i64 offset | u16 metadata length | metadata
//   a null value (tombstone) deletes the key (topic deleted).
// The key holds the whole identity, so compaction keeps the latest commit
// of each (group, topic, partition).
#ifndef OX_BROKER_SERVER_OFFSETS_H
#define OX_BROKER_SERVER_OFFSETS_H

#include <stddef.h>
#include <stdint.h>

#include "broker/server/topics.h"

#define OX_OFFSETS_TOPIC "__offsets"
#define OX_OFFSETS_VERSION 1u
// Group names: 1..255 bytes (the key stores the length in a byte).
#define OX_GROUP_NAME_MAX 255u
// Free-text metadata per commit: enough for a host name and a note,
// small enough that a commit of many partitions stays one small batch.
#define OX_OFFSET_METADATA_MAX 4096u
// Committed (group, topic, partition) entries held in memory: with names
// and metadata an entry takes a few hundred bytes, so this bounds the map
// to well under a GiB in the worst case.
#define OX_GROUP_OFFSETS_MAX (1u << 18)

#define OX_OFFSET_KEY_MAX (1 + 1 + OX_GROUP_NAME_MAX + 1 + OX_TOPIC_NAME_MAX + 4)
#define OX_OFFSET_VALUE_MAX (1 + 8 + 2 + OX_OFFSET_METADATA_MAX)

struct ox_offset_key {
	const char *group;
	size_t group_len;
	const char *topic;
	size_t topic_len;
	uint32_t partition;
};

// Encodes into buf (OX_OFFSET_KEY_MAX / OX_OFFSET_VALUE_MAX bytes) and
// returns the length, or -EINVAL when a length is out of range.
int ox_offset_key_encode(const struct ox_offset_key *k, uint8_t *buf);
int ox_offset_value_encode(int64_t offset, const char *meta, size_t meta_len,
			   uint8_t *buf);

// Decodes; the outputs point into buf. -OX_ECORRUPT for a bad version,
// a length that runs past the end, or trailing bytes.
int ox_offset_key_decode(const uint8_t *buf, size_t len,
			 struct ox_offset_key *out);
int ox_offset_value_decode(const uint8_t *buf, size_t len, int64_t *offset,
			   const char **meta, size_t *meta_len);

// 0 when group[0, len) is a valid group name (1..255 bytes, no NUL).
int ox_group_name_check(const char *group, size_t len);

struct ox_offsets;

struct ox_offset_entry {
	const char *group;
	const char *topic;
	uint32_t partition;
	int64_t offset;
	const char *metadata; // NUL-terminated
};

int ox_offsets_create(struct ox_offsets **out);
void ox_offsets_destroy(struct ox_offsets *m);

// Inserts or replaces; copies every string. -ENOMEM, or -OX_ETOOBIG
// beyond OX_GROUP_OFFSETS_MAX entries.
int ox_offsets_put(struct ox_offsets *m, const struct ox_offset_key *k,
		   int64_t offset, const char *meta, size_t meta_len);
void ox_offsets_remove(struct ox_offsets *m, const struct ox_offset_key *k);

// Looks one key up: 1 with *out (borrowed until the next change), 0.
int ox_offsets_get(const struct ox_offsets *m, const struct ox_offset_key *k,
		   struct ox_offset_entry *out);

// Applies one __offsets record (key, value or tombstone). Returns 0, or
// -OX_ECORRUPT for a record that does not decode (it is skipped).
int ox_offsets_apply(struct ox_offsets *m, const uint8_t *key, size_t key_len,
		     const uint8_t *value, int32_t value_len);

// Calls fn for every entry (of `group` when non-NULL, of `topic` when
// non-NULL); fn may not change the map. Returns the number of calls.
size_t ox_offsets_each(const struct ox_offsets *m, const char *group,
		       const char *topic,
		       void (*fn)(void *arg, const struct ox_offset_entry *e),
		       void *arg);

size_t ox_offsets_count(const struct ox_offsets *m);

// ---- shards: the partitions of __offsets ----
//
// In a cluster __offsets has several partitions and a group's offsets
// live in one of them, its shard: FNV-1a (32 bits) of the group name
// modulo the partition count, the rule of ox_cluster_group_partition, so
// every node and every client finds the same one. The map then holds the
// shards this node coordinates (leads, with their records replayed) and
// remembers, per shard, the Raft term it was loaded in: 0 while it is not
// held. A node alone has one shard, held for good.

// Partitions of the cluster's __offsets: enough that groups spread over
// the nodes, few enough that a node replays a shard in one go.
#define OX_OFFSETS_PARTITIONS 16u
#define OX_OFFSETS_SHARDS_MAX 1024u

uint32_t ox_offsets_shard_of(const char *group, size_t len, uint32_t shards);

// Sets the number of shards (1..OX_OFFSETS_SHARDS_MAX) of an empty map;
// every shard starts not held. -EINVAL, -EBUSY (entries present), -ENOMEM.
int ox_offsets_set_shards(struct ox_offsets *m, uint32_t shards);
uint32_t ox_offsets_shards(const struct ox_offsets *m);
// The shard of a group under this map's shard count.
uint32_t ox_offsets_shard(const struct ox_offsets *m, const char *group);
// The term shard s was loaded in (0: not held); holding marks it loaded.
uint64_t ox_offsets_shard_term(const struct ox_offsets *m, uint32_t s);
void ox_offsets_shard_hold(struct ox_offsets *m, uint32_t s, uint64_t term);
// Lets shard s go: removes its entries and marks it not held.
void ox_offsets_shard_drop(struct ox_offsets *m, uint32_t s);

// ---- handlers (groups.c) ----
//
// Declared here, beside the map they serve, for server.c's dispatch and
// meta.c.
struct ox_server;
struct ox_net_req;

// FIND_COORDINATOR: the node that serves a group's offsets.
void ox_srv_find_coordinator(struct ox_server *srv, struct ox_net_req *req);

#endif
