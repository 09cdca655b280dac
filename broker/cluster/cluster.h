// SPDX-License-Identifier: Apache-2.0
//
// The cluster metadata state machine: the state of the `__meta` Raft
// group (nodes, topics with their ids, partition assignments, topic
// configuration overrides), the entries that change it
// (proto/meta.proto), placement of new partitions, and snapshots. It is
// pure: no I/O, no clock, no network, no threads; it allocates only inside
// its own functions (through one allocator that the unit tests can make
// fail). The host (the broker's metadata replica, or a test) applies the
// entries Raft committed, in log order, with ox_cluster_apply; the
// metadata leader builds entries with the ox_cluster_entry_* encoders
// after checking requests with ox_cluster_check and choosing replicas with
// ox_cluster_place. Group offsets live in the internal topic `__offsets`;
// ox_cluster_group_partition says which of its partitions holds a group.
//
// Design notes. An entry is decoded, checked against the state, and only
// then applied; everything the application needs (memory) is acquired
// before the first change, so an entry is applied whole or not at all.
// A committed entry that does not fit the state is not an error of the
// host: every node reaches the same verdict from the same state, records
// it in the result and moves the applied index past it.
//
// Invariants (the unit tests and the fuzz harness cite them):
//   C1  Determinism: states that applied the same entries in the same
//       order (or restored the same snapshot and applied the same entries
//       after it) produce byte-identical snapshots. Nothing in the state
//       depends on time, addresses of memory or allocation success.
//   C2  Atomicity: ox_cluster_apply either applies an entry whole (or
//       refuses it with a verdict) and advances the applied index, or
//       fails with -ENOMEM and leaves the state exactly as it was.
//   C3  Topic ids are unique for the cluster's life: each created topic
//       takes next_topic_id, which only grows; ids are never reused.
//   C4  Topic names are unique and valid (ox_cluster_name_check).
//   C5  Every partition of a topic has exactly its replication factor
//       (1, 3 or 5) of distinct replicas, each a registered node.
//   C6  Bounds: at most OX_CLUSTER_NODES_MAX nodes, OX_CLUSTER_TOPICS_MAX
//       topics, OX_CLUSTER_TOPIC_PARTITIONS_MAX partitions per topic,
//       OX_CLUSTER_PARTITIONS_MAX in all, OX_CLUSTER_NODE_REPLICAS_MAX
//       replicas on a node, OX_CLUSTER_CONFIGS_MAX overrides per topic.
//   C7  The applied index only grows; a snapshot records it.
//
// Thread-safety: none; the metadata replica's thread owns the state.
// Queries return pointers into the state: they stay valid until the next
// ox_cluster_apply, ox_cluster_restore or ox_cluster_destroy.
#ifndef OX_BROKER_CLUSTER_CLUSTER_H
#define OX_BROKER_CLUSTER_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

// Voter and broker nodes: each holds a slot in every per-node array.
#define OX_CLUSTER_NODES_MAX 64u
// Node ids: 1 .. 2^31 - 1, since clients see them as int32.
#define OX_CLUSTER_NODE_ID_MAX 0x7fffffffu
// Topics, and partitions of one topic (the single-node server's limits).
#define OX_CLUSTER_TOPICS_MAX 10000u
#define OX_CLUSTER_TOPIC_PARTITIONS_MAX 10000u
// Partitions in the whole cluster: bounds the state (~60 bytes each) and
// the snapshot (~20 bytes each) to a few MiB.
#define OX_CLUSTER_PARTITIONS_MAX 100000u
// Replicas one node holds: a node opens a log per replica (memory and
// file descriptors), as the server's OX_NODE_PARTITIONS_MAX says.
#define OX_CLUSTER_NODE_REPLICAS_MAX 10000u
// Replication factors are 1, 3 or 5 (odd: a Raft majority).
#define OX_CLUSTER_RF_MAX 5u
// Kafka's limit, so topic names move between the two systems.
#define OX_CLUSTER_TOPIC_NAME_MAX 249u
// host:port of a node; rack names.
#define OX_CLUSTER_ADDRESS_MAX 255u
#define OX_CLUSTER_RACK_MAX 64u
// Configuration overrides: the server knows fewer than ten keys, and
// values are numbers or policy names.
#define OX_CLUSTER_CONFIGS_MAX 16u
#define OX_CLUSTER_CONFIG_KEY_MAX 64u
#define OX_CLUSTER_CONFIG_VALUE_MAX 64u
// One encoded entry: a topic of the most partitions at RF 5 takes about
// 300 KiB; a longer entry is refused (as corrupt) without decoding.
#define OX_CLUSTER_ENTRY_BYTES_MAX (1u << 20)
// One snapshot: every bound at once stays well below this.
#define OX_CLUSTER_SNAPSHOT_BYTES_MAX (64u << 20)
// The snapshot format written by this version.
#define OX_CLUSTER_SNAPSHOT_VERSION 1u
// The internal topic of consumer-group offsets.
#define OX_CLUSTER_OFFSETS_TOPIC "__offsets"

struct ox_cluster;

enum ox_cluster_op {
	OX_CLUSTER_OP_NONE = 0, // the bytes held no operation (corrupt)
	OX_CLUSTER_OP_NOOP = 1,
	OX_CLUSTER_OP_REGISTER_NODE = 2,
	OX_CLUSTER_OP_CREATE_TOPIC = 3,
	OX_CLUSTER_OP_DELETE_TOPIC = 4,
	OX_CLUSTER_OP_ALTER_CONFIGS = 5,
	OX_CLUSTER_OP_ADD_PARTITIONS = 6,
	OX_CLUSTER_OP_REASSIGN_PARTITION = 7,
	OX_CLUSTER_OP_PARTITION_MOVED = 8,
};

// What applying (or checking) one entry decided. verdict is 0 when the
// entry changed the state as it says, or the reason it was refused and
// applied as a no-op:
//   -OX_ECORRUPT          the bytes do not decode, are over
//                         OX_CLUSTER_ENTRY_BYTES_MAX, or hold no operation
//   -OX_EINVALID_REQUEST  a malformed field: a bad name or address, a
//                         replication factor not 1, 3 or 5, counts that
//                         disagree, an assignment naming an unknown node
//                         or one node twice, a partition that does not
//                         exist, an address another node uses; moved: a
//                         partition not moving, or at another epoch
//   -OX_ETOPIC_EXISTS     create: the name is taken
//   -OX_EUNKNOWN_TOPIC    no such topic (or not of the id named)
//   -OX_EINVALID_CONFIG   a bad key or value, a key set twice or both set
//                         and reset, or more than OX_CLUSTER_CONFIGS_MAX
//   -OX_ETOOBIG           a bound of C6 would be passed
// topic_id names the topic created or changed (also when refused, if the
// entry named an existing one), node_id the node registered, request who
// asked for the entry (all zero when it names nobody, or does not decode).
struct ox_cluster_request {
	uint64_t node;  // the node whose client asked (0: none)
	uint64_t nonce; // drawn by that node at start
	uint64_t seq;   // that node's counter in that run
};

struct ox_cluster_result {
	enum ox_cluster_op op;
	int verdict;
	uint64_t topic_id;
	uint64_t node_id;
	uint32_t partition; // reassign and moved: the partition named
	struct ox_cluster_request request;
};

// A node as the state holds it. Strings are NUL-terminated and borrowed
// (see the pointer rule above); rack is "" when the node has none.
struct ox_cluster_node {
	uint64_t id;
	const char *client_address;
	const char *peer_address;
	const char *rack;
};

// A topic as the state holds it (strings borrowed likewise).
struct ox_cluster_topic {
	const char *name;
	uint64_t id;
	uint32_t partitions;
	uint32_t replication_factor;
	uint32_t configs_n;
	int64_t created_index; // the entry that created it
};

// One partition: its replicas (borrowed; replication_factor of them, the
// first the preferred leader), its epoch (0 at creation, one more at
// each reassignment), and whether the last reassignment is under way
// (replicas is then where it goes, `from` the list it had before that
// entry, replicas_n of them; nodes it leaves still hold copies).
struct ox_cluster_partition {
	const uint64_t *replicas;
	uint32_t replicas_n;
	uint64_t epoch;
	bool moving;
	const uint64_t *from; // NULL when not moving
};

// One configuration override, for the encoders (borrowed strings).
struct ox_cluster_kv {
	const char *key;
	const char *value;
};

// What a create-topic entry says. assignment holds partitions * rf node
// ids: partition p's replicas are [p * rf, p * rf + rf), preferred leader
// first (ox_cluster_place fills such an array).
struct ox_cluster_topic_spec {
	const char *name;
	uint32_t partitions;
	uint32_t replication_factor;
	const struct ox_cluster_kv *configs;
	uint32_t configs_n;
	const uint64_t *assignment;
};

// ---- Lifecycle ----------------------------------------------------------

// Creates an empty state: no nodes, no topics, applied index 0, next
// topic id 1. Returns 0 with *out set (the caller destroys it), or
// -ENOMEM.
int ox_cluster_create(struct ox_cluster **out);

// Frees the state and everything it owns; NULL is allowed.
void ox_cluster_destroy(struct ox_cluster *c);

// ---- Applying committed entries ---------------------------------------

// Decodes and applies one committed entry (borrowed bytes) whose Raft
// index is `index`, which must be above the applied index (-EINVAL
// otherwise, nothing changes). Returns 0 when the entry was consumed:
// the applied index is now `index` and *res says what happened (a refused
// entry is a no-op with a negative verdict; that is not a failure of
// apply). Returns -ENOMEM with the state unchanged (C2): the host retries
// or stops, since other nodes went on. res may be NULL.
int ox_cluster_apply(struct ox_cluster *c, int64_t index,
		     const uint8_t *entry, size_t len,
		     struct ox_cluster_result *res);

// The verdict ox_cluster_apply would give this entry now, without
// applying it: what the metadata leader runs before proposing. Entries
// already proposed and not yet applied are not counted, so apply remains
// the judge. Returns the verdict (0 or a negative code as above), or
// -ENOMEM. res may be NULL.
int ox_cluster_check(const struct ox_cluster *c, const uint8_t *entry,
		     size_t len, struct ox_cluster_result *res);

// The index of the last entry applied (or of the snapshot restored); 0
// for an empty state.
int64_t ox_cluster_applied_index(const struct ox_cluster *c);

// ---- Entries (the proposer's side) --------------------------------------
//
// Each encoder returns 0 with *out set to malloc'd bytes of *len (the
// caller frees them with free()), -EINVAL when an argument is NULL or a
// count is over its bound (so that encoded entries stay below
// OX_CLUSTER_ENTRY_BYTES_MAX), or -ENOMEM. Encoders do not check the
// arguments against any state: ox_cluster_check (and at last apply) does.
// Strings are NUL-terminated and borrowed.

int ox_cluster_entry_noop(uint8_t **out, size_t *len);

// Registers or updates node `n`.
int ox_cluster_entry_register_node(const struct ox_cluster_node *n,
				   uint8_t **out, size_t *len);

int ox_cluster_entry_create_topic(const struct ox_cluster_topic_spec *spec,
				  uint8_t **out, size_t *len);

// topic_id 0: whichever topic has the name.
int ox_cluster_entry_delete_topic(const char *name, uint64_t topic_id,
				  uint8_t **out, size_t *len);

// Sets set[0, set_n) and resets (removes the overrides of) the keys
// reset[0, reset_n).
int ox_cluster_entry_alter_configs(const char *name,
				   const struct ox_cluster_kv *set,
				   uint32_t set_n, const char *const *reset,
				   uint32_t reset_n, uint8_t **out,
				   size_t *len);

// Adds `added` partitions whose replicas are assignment[0, added * rf),
// laid out as in struct ox_cluster_topic_spec.
int ox_cluster_entry_add_partitions(const char *name, uint32_t added,
				    uint32_t rf, const uint64_t *assignment,
				    uint8_t **out, size_t *len);

// Copies entry[0, len) (an encoded MetaEntry, borrowed) with its request
// id set to *rq, replacing any it had: what a node does before it
// proposes or forwards an admin change, so that it knows the entry when
// it applies it. -OX_ECORRUPT when the bytes do not decode or are over
// OX_CLUSTER_ENTRY_BYTES_MAX, -EINVAL for a NULL argument, -ENOMEM.
int ox_cluster_entry_stamp(const uint8_t *entry, size_t len,
			   const struct ox_cluster_request *rq,
			   uint8_t **out, size_t *out_len);

int ox_cluster_entry_reassign_partition(const char *name,
					uint32_t partition,
					const uint64_t *replicas,
					uint32_t replicas_n, uint8_t **out,
					size_t *len);

// The leader of partition `partition` of topic `name` (id topic_id)
// finished the reassignment of epoch `epoch`.
int ox_cluster_entry_partition_moved(const char *name, uint64_t topic_id,
				     uint32_t partition, uint64_t epoch,
				     uint8_t **out, size_t *len);

// ---- Rules and placement ------------------------------------------------

// 0 when name[0, len) is a valid topic name: 1..249 bytes of
// [A-Za-z0-9._-], not "." or "..". Reserved names (leading "__") pass:
// the admin path refuses them with ox_cluster_name_reserved, the broker
// creates its own. -EINVAL otherwise.
int ox_cluster_name_check(const char *name, size_t len);
bool ox_cluster_name_reserved(const char *name, size_t len);

// Chooses replicas for `partitions` new partitions of replication factor
// rf among the nodes live[0, live_n) (all registered nodes when live is
// NULL), writing partitions * rf node ids to out (laid out as in struct
// ox_cluster_topic_spec; the caller provides the array). Each partition
// gets rf distinct nodes: first its preferred leader, the least loaded
// node (replicas held in the state plus those placed so far) leading the
// fewest partitions, then the least loaded others (among equals those
// leading most, then the lower id). Replica counts of nodes that start
// equal end within one of each other; leaderships stay close to even
// (placement.c). Deterministic.
// Returns 0, or -EINVAL when rf is not 1, 3 or 5 (RF 2 and 4 are refused:
// an even group tolerates no more failures than the odd one below it),
// rf is above the number of nodes to choose from, partitions is 0 or
// above OX_CLUSTER_TOPIC_PARTITIONS_MAX, or live names an unregistered
// node or one twice; -OX_ETOOBIG when a node would pass
// OX_CLUSTER_NODE_REPLICAS_MAX.
int ox_cluster_place(const struct ox_cluster *c, const uint64_t *live,
		     uint32_t live_n, uint32_t partitions, uint32_t rf,
		     uint64_t *out);

// ---- Queries ------------------------------------------------------------

// Nodes, in id order: i in [0, ox_cluster_nodes_n). Returns 0, or -ENOENT
// when i is past the end / the id is not registered.
uint32_t ox_cluster_nodes_n(const struct ox_cluster *c);
int ox_cluster_node_at(const struct ox_cluster *c, uint32_t i,
		       struct ox_cluster_node *out);
int ox_cluster_node_by_id(const struct ox_cluster *c, uint64_t id,
			  struct ox_cluster_node *out);
// Replicas on node `id`, and partitions it is the preferred leader of
// (0 for an unknown id).
uint32_t ox_cluster_node_replicas(const struct ox_cluster *c, uint64_t id);
uint32_t ox_cluster_node_leaders(const struct ox_cluster *c, uint64_t id);

// Topics, in id order (for METADATA): i in [0, ox_cluster_topics_n).
// Return 0, or -OX_EUNKNOWN_TOPIC when there is no such topic (i past the
// end, or a name of no topic: name is NUL-terminated).
uint32_t ox_cluster_topics_n(const struct ox_cluster *c);
uint32_t ox_cluster_partitions_total(const struct ox_cluster *c);
int ox_cluster_topic_at(const struct ox_cluster *c, uint32_t i,
			struct ox_cluster_topic *out);
int ox_cluster_topic_by_name(const struct ox_cluster *c, const char *name,
			     struct ox_cluster_topic *out);
int ox_cluster_topic_by_id(const struct ox_cluster *c, uint64_t id,
			   struct ox_cluster_topic *out);

// Partition `partition` of topic `topic_id`: 0, -OX_EUNKNOWN_TOPIC, or
// -ENOENT when the topic has no such partition.
int ox_cluster_partition_get(const struct ox_cluster *c, uint64_t topic_id,
			     uint32_t partition,
			     struct ox_cluster_partition *out);

// Configuration overrides of topic `topic_id`, in key order: i in
// [0, configs_n). 0, -OX_EUNKNOWN_TOPIC, or -ENOENT (i past the end; a
// key with no override).
int ox_cluster_config_at(const struct ox_cluster *c, uint64_t topic_id,
			 uint32_t i, struct ox_cluster_kv *out);
int ox_cluster_config_get(const struct ox_cluster *c, uint64_t topic_id,
			  const char *key, const char **value);

// The partition of OX_CLUSTER_OFFSETS_TOPIC that holds the offsets of
// group[0, len): FNV-1a (32 bits) of the name modulo the topic's
// partitions, so every node finds the same one. Adding partitions to the
// offsets topic moves groups: the broker never does. Returns 0 with
// *topic_id and *partition set, -OX_EUNKNOWN_TOPIC when the offsets topic
// does not exist yet, -EINVAL for an empty group name.
int ox_cluster_group_partition(const struct ox_cluster *c, const char *group,
			       size_t len, uint64_t *topic_id,
			       uint32_t *partition);

// ---- Snapshots ----------------------------------------------------------

// Encodes the whole state (MetaSnapshot, version
// OX_CLUSTER_SNAPSHOT_VERSION, taken at the applied index). Returns 0
// with *out malloc'd (the caller frees it with free()) and *len set, or
// -ENOMEM.
int ox_cluster_snapshot(const struct ox_cluster *c, uint8_t **out,
			size_t *len);

// Replaces the state with the snapshot in p[0, n) (borrowed). The
// snapshot is checked whole first (version, every invariant C3..C6), so
// on failure the state is unchanged: -OX_ECORRUPT (it does not decode or
// breaks an invariant), -OX_EUNSUPPORTED (another version), or -ENOMEM.
int ox_cluster_restore(struct ox_cluster *c, const uint8_t *p, size_t n);

#endif
