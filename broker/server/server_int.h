// SPDX-License-Identifier: Apache-2.0
//
// Private structs of the server module, shared by its .c files and its
// unit tests only. server.c has the design notes and the invariants
// (S1..S7) that the other files cite.
#ifndef OX_BROKER_SERVER_SERVER_INT_H
#define OX_BROKER_SERVER_SERVER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/log/log.h"
#include "broker/net/net.h"
#include "broker/replica/replica.h"
#include "broker/server/config.h"
#include "broker/server/offsets.h"
#include "broker/server/server.h"
#include "broker/server/topics.h"
#include "proto/api.pb-c.h"

// Topic hash slots: a power of two at least OX_TOPICS_MAX / 2, so chains
// stay short at the topic limit.
#define OX_TOPIC_SLOTS 8192u
// Fetches waiting for data at once; more are answered at once with what
// there is (each holds a request and its connection's budget).
#define OX_PARKED_FETCHES_MAX 4096u
// A long-poll waits at most this long whatever the client asks.
#define OX_FETCH_WAIT_MS_MAX 60000u
// Raw bytes of one fetch response: well under OX_FRAME_BYTES_MAX, so a
// response with one maximal batch still fits a frame.
#define OX_FETCH_RESPONSE_BYTES_MAX (32u << 20)
// max_bytes of a fetch that gives none.
#define OX_FETCH_DEFAULT_BYTES (1u << 20)
// Housekeeping period: parked fetches of closed connections, compaction
// passes to swap in, the retention schedule, and each partition's Raft
// tick (election and heartbeat timeouts count these).
#define OX_TICK_MS 50u
// Ids of cluster topics on this node (directories, Raft groups between
// nodes): the cluster's id plus this, so they never meet the ids this
// node gives its own topics (a counter from 1).
#define OX_CLUSTER_TOPIC_ID_BASE (UINT64_C(1) << 40)
// Raft timeouts in ticks: an election after 0.5 to 1 s without a leader,
// heartbeats every 100 ms. (A partition whose only voter is this node
// elects itself at once.)
#define OX_RAFT_ELECTION_TICKS 10u
#define OX_RAFT_HEARTBEAT_TICKS 2u
#define OX_RAFT_INFLIGHT_MAX 8u
// Reading __offsets at start: the first buffer (grown for a larger batch).
#define OX_REPLAY_BUF_BYTES (1u << 20)

struct ox_topic;

struct ox_partition {
	struct ox_server *srv;
	struct ox_topic *topic;
	uint32_t index;
	struct ox_log *log;
	// The partition's Raft group over its log (this node alone, or the
	// replicas a cluster topic assigns). Appends go through it and its
	// high watermark is what consumers read up to (S2).
	struct ox_replica *rep;
	// Bytes of batches below the high watermark since open: long-polls
	// compare it with the value they saw when they parked.
	uint64_t acked_bytes;
	// Leader of a moving partition: when it last asked the metadata
	// group to record the move done, and when it last said it waits for
	// a learner (moves.c).
	uint64_t moved_asked_ns;
	uint64_t waiting_noted_ns;
	// Moved away from this node: the list ox_server_poll closes, and the
	// topic's id (the topic may be deleted meanwhile).
	struct ox_partition *parting_next;
	uint64_t parting_topic_id;
};

struct ox_topic {
	struct ox_topic_meta meta;
	// meta.partitions of them; NULL for a partition of a cluster topic
	// that has no replica on this node.
	struct ox_partition **parts;
	// A topic of the cluster's metadata (several nodes): each
	// partition's replicas, meta.replicas of them per partition,
	// preferred leader first (malloc'd); NULL for a topic of this node
	// alone.
	uint64_t *assignment;
	// A cluster topic: the metadata entry that created it (raft.h R9:
	// whether this node may have held its replicas before its disk was
	// wiped).
	int64_t created_index;
	bool internal;               // name starts with "__"
	struct ox_topic *next;       // hash chain, or the doomed list
};

// One batch on its way into a partition log (S3): started at once, or
// queued in order while the log or the loop is full.
struct ox_append {
	struct ox_append *next; // the busy queue
	struct ox_server *srv;
	struct ox_partition *part;
	void *batch;
	size_t len;
	enum ox_replica_acks acks; // when done runs (replica.h)
	// Called exactly once: res 0 with the base offset, or an error.
	void (*done)(struct ox_append *a, int res, int64_t base_offset);
};

struct ox_fetch;
struct ox_meta;
struct ox_cluster;
struct ox_peer;
struct ox_cluster_partition;

struct ox_server {
	struct ox_io *io;
	struct ox_config cfg;
	struct ox_net *net;
	int lock_fd;
	char adv_host[OX_CONFIG_ADDR_MAX];
	uint16_t adv_port;
	char listen_host[OX_CONFIG_ADDR_MAX];

	struct ox_topic *topics[OX_TOPIC_SLOTS];
	size_t ntopics;
	uint32_t npartitions;
	uint64_t next_topic_id;
	struct ox_topic *doomed; // deleted: logs closed by ox_server_poll
	struct ox_partition *parting; // moved away: closed by ox_server_poll
	struct ox_topic *offsets_topic;
	struct ox_offsets *offsets;

	struct ox_append *busy_head, *busy_tail;
	unsigned appends_inflight; // accepted by a log, callback not yet run
	unsigned appends_queued;
	unsigned held;             // produce, commit and delete contexts alive

	struct ox_fetch *parked; // doubly linked
	unsigned nparked;
	bool wake;               // a partition's acked bytes moved

	struct ox_tick *tick;
	struct ox_meta *meta; // with several peers: the cluster layer
	uint64_t next_retention_ns;
	bool shutting_down;
};

// config.c
// Parses a whole-string decimal integer in [lo, hi] (no spaces, no sign
// other than '-', no suffix) into *out. Returns 0 or -EINVAL. config.c
// and topics.c parse every number with it.
int ox_srv_parse_i64(const char *v, int64_t lo, int64_t hi, int64_t *out);

// server.c
// Formats one error line into err (cut to err_len); NULL or 0 writes
// nothing. Used by config.c, topics.c and server.c alike.
void ox_srv_fmt_err(char *err, size_t err_len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
uint64_t ox_srv_now_ns(void);
struct ox_topic *ox_srv_topic_find(struct ox_server *srv, const char *name);
struct ox_partition *ox_srv_partition(struct ox_server *srv,
				      const char *topic, uint32_t partition);
// As ox_srv_partition, saying why there is none: -OX_EUNKNOWN_TOPIC (no
// such topic or partition) or -OX_ENOTLEADER (a partition of a cluster
// topic with no replica here: another node serves it).
int ox_srv_partition_lookup(struct ox_server *srv, const char *topic,
			    uint32_t partition, struct ox_partition **out);
// Opens, from the cluster's metadata, the topic `topic_id` just created:
// the partitions with a replica on this node, each a Raft group over its
// replicas. 0 or a negative error (logged).
int ox_srv_cluster_topic_open(struct ox_server *srv, uint64_t topic_id);
struct ox_topic *ox_srv_topic_by_id(struct ox_server *srv, uint64_t id);
// The high watermark: what consumers may read (S2).
int64_t ox_srv_hw(const struct ox_server *srv, const struct ox_partition *p);
// Starts or queues an append (S3); done runs later, exactly once, unless
// this returns an error (then it never runs).
int ox_srv_append(struct ox_server *srv, struct ox_append *a);
int ox_srv_topic_open(struct ox_server *srv, const struct ox_topic_meta *m,
		      struct ox_topic **out);
int ox_srv_partitions_grow(struct ox_server *srv, struct ox_topic *t,
			   uint32_t partitions);
void ox_srv_topic_close(struct ox_topic *t, bool remove_dir,
			const char *data_dir);
void ox_srv_topic_insert(struct ox_server *srv, struct ox_topic *t);
void ox_srv_topic_unlink(struct ox_server *srv, struct ox_topic *t);
// Closes and removes partitions [from, to) of t, opened moments ago
// (nothing in flight: closing them does not run the loop).
void ox_srv_partitions_drop_fresh(struct ox_server *srv, struct ox_topic *t,
				  uint32_t from, uint32_t to);
// Takes a deleted topic, already unlinked, out of service: fails its queued appends, ends
// its long-polls, and leaves its logs for ox_server_poll to close.
void ox_srv_topic_doom(struct ox_server *srv, struct ox_topic *t);
// Partition i of cluster topic t as the metadata state holds it: 0, or
// an error of ox_cluster_partition_get (t is not the state's, or this
// node has no cluster layer: -OX_EUNKNOWN_TOPIC).
int ox_srv_cluster_partition(const struct ox_server *srv,
			     const struct ox_topic *t, uint32_t i,
			     struct ox_cluster_partition *out);
// Calls fn for every partition of a cluster topic that has a replica on
// this node (fn must not close topics or partitions).
void ox_srv_each_replica(struct ox_server *srv,
			 void (*fn)(struct ox_server *srv, struct ox_topic *t,
				    uint32_t i));
// Whether partition i of topic id topic_id is among those moved away and
// not yet closed.
bool ox_srv_parting(const struct ox_server *srv, uint64_t topic_id,
		    uint32_t i);
// Takes partition i of t, which moved away from this node, out of
// service: fails its queued appends, ends its long-polls, and leaves it
// for ox_server_poll to close and remove (its log directory and Raft
// state file).
void ox_srv_partition_doom(struct ox_server *srv, struct ox_topic *t,
			   uint32_t i);
// Opens the replica of partition i of t if this node hosts it (t->parts[i]
// stays NULL otherwise). 0 or a negative error (logged).
int ox_srv_partition_open(struct ox_server *srv, struct ox_topic *t,
			  uint32_t i);
// Whether this node hosts partition i of t: a replica of its assignment,
// or (a cluster topic) a copy it still serves while the partition moves
// away from it.
bool ox_srv_hosted(const struct ox_server *srv, const struct ox_topic *t,
		   uint32_t i);
// Removes a directory and everything under it; what cannot be removed is
// logged and left.
void ox_srv_rm_tree(const char *path);
int ox_srv_meta_save(struct ox_server *srv);
void ox_srv_respond_msg(struct ox_net_req *req, const ProtobufCMessage *msg);
// Unpacks the request's body as a message of type d; the caller frees it
// with protobuf_c_message_free_unpacked (or the type's free_unpacked).
// A body that does not parse ends the request: the connection is closed
// with "API body does not parse" and NULL is returned.
void *ox_srv_body_unpack(struct ox_net_req *req,
			 const ProtobufCMessageDescriptor *d, const char *api);
void ox_srv_respond_error(struct ox_net_req *req, int err, const char *why);
void ox_srv_partition_dir(const struct ox_server *srv, uint64_t topic_id,
			  int64_t partition, char *buf, size_t cap);

// admin.c
void ox_srv_api_versions(struct ox_server *srv, struct ox_net_req *req);
void ox_srv_metadata(struct ox_server *srv, struct ox_net_req *req);
void ox_srv_create_topics(struct ox_server *srv, struct ox_net_req *req);
void ox_srv_delete_topics(struct ox_server *srv, struct ox_net_req *req);
void ox_srv_describe_configs(struct ox_server *srv, struct ox_net_req *req);
void ox_srv_alter_configs(struct ox_server *srv, struct ox_net_req *req);

// meta.c: the cluster layer, started when `peers` names other nodes.
int ox_meta_start(struct ox_server *srv, char *err, size_t err_len);
void ox_meta_stop(struct ox_server *srv);
// Arms again the metadata tick if the loop could not take it.
void ox_meta_poke(struct ox_server *srv);
// The metadata leader (-1: none known) and the group's term.
int64_t ox_meta_leader(const struct ox_server *srv, uint64_t *term);
// raft.h R9: whether a replica of a topic created by the metadata entry at
// created_index may have been on this node before it started with an
// empty metadata log (its disk wiped): the topic predates what the
// metadata leader held when this node first heard from it.
bool ox_meta_may_have_held(struct ox_server *srv, int64_t created_index);
// Whether this node's metadata replica is still rejoining (raft.h R9).
bool ox_meta_rejoining(const struct ox_server *srv);
// The node table, in id order; reachable: this node, or one it has a
// link to.
uint32_t ox_meta_nodes_n(const struct ox_server *srv);
int ox_meta_node_at(const struct ox_server *srv, uint32_t i, uint64_t *id,
		    const char **client, const char **peer, bool *reachable);

// The cluster's state (only with srv->meta), for METADATA and the
// server's own topic table.
const struct ox_cluster *ox_meta_state(const struct ox_server *srv);
struct ox_peer *ox_meta_peer(const struct ox_server *srv);
// Admin writes of a cluster (CREATE_TOPICS, DELETE_TOPICS, ALTER_CONFIGS
// of its topics): one metadata entry per topic, proposed here on the
// metadata leader or forwarded to it. The request is answered once this
// node applied every entry (with the verdict every node reaches), or
// NOT_LEADER / TIMEOUT when there is no leader or an entry did not come
// back within OX_META_ADMIN_WAIT_MS.
#define OX_META_ADMIN_WAIT_MS 10000u
// Topics one admin request of a cluster may name.
#define OX_META_ADMIN_ITEMS_MAX 64u
#define OX_META_WHY_MAX 192u
enum ox_meta_api {
	OX_META_CREATE,
	OX_META_DELETE,
	OX_META_ALTER,
	OX_META_REASSIGN,
};
struct ox_meta_change {
	const char *name; // the topic, borrowed from the request message
	uint8_t *entry;   // its MetaEntry (malloc'd; taken), or NULL
	size_t len;
	int err;          // without an entry: the answer (0 or negative)
	char why[OX_META_WHY_MAX];
};
// Takes req, msg (the unpacked request, freed once answered) and every
// change's entry; borrows changes (n of them, 1..OX_META_ADMIN_ITEMS_MAX).
void ox_meta_admin(struct ox_server *srv, struct ox_net_req *req,
		   enum ox_meta_api api, ProtobufCMessage *msg,
		   struct ox_meta_change *changes, uint32_t n);

// An entry this node writes on its own (not an admin request): proposed
// here on the metadata leader or forwarded to it, without waiting for
// it. 0, -OX_ENOTLEADER (no leader known), or the error of proposing or
// forwarding (forwarding is lossy: the caller asks again if it must).
int ox_meta_submit(struct ox_server *srv, const uint8_t *entry, size_t len);

// moves.c: moving a partition's replicas (REASSIGN_PARTITION).
void ox_srv_reassign_partition(struct ox_server *srv, struct ox_net_req *req);
// Every partition of every cluster topic follows the metadata (moves.c
// V5: call it only once caught up): its assignment row, its replica here
// opened or, once moved away, closed and removed, and a copy of a
// partition that neither lists nor moves away from this node removed.
// Returns false when something must wait (a copy still being removed):
// call it again later.
bool ox_srv_partitions_follow(struct ox_server *srv);
// The leaders of moving partitions take their next step.
void ox_srv_moves_tick(struct ox_server *srv);

// status.c
void ox_srv_cluster_status(struct ox_server *srv, struct ox_net_req *req);

// produce.c: INIT_PRODUCER_ID, an id for an idempotent producer.
void ox_srv_init_producer_id(struct ox_server *srv, struct ox_net_req *req);

// produce.c
void ox_srv_produce(struct ox_server *srv, struct ox_net_req *req);

// fetch.c
void ox_srv_fetch(struct ox_server *srv, struct ox_net_req *req);
void ox_srv_list_offsets(struct ox_server *srv, struct ox_net_req *req);
void ox_srv_fetch_wake(struct ox_server *srv);
void ox_srv_fetch_tick(struct ox_server *srv);
void ox_srv_fetch_answer_all(struct ox_server *srv);
// Ends the long-polls waiting on topic t (on its partition `only`, if not
// NULL): they answer without it.
void ox_srv_fetch_forget(struct ox_server *srv, const struct ox_topic *t,
			 const struct ox_partition *only);

// groups.c
int ox_srv_offsets_replay(struct ox_server *srv);
void ox_srv_offset_commit(struct ox_server *srv, struct ox_net_req *req);
void ox_srv_offset_fetch(struct ox_server *srv, struct ox_net_req *req);
void ox_srv_list_groups(struct ox_server *srv, struct ox_net_req *req);
// Removes the topic's group offsets from the map and appends tombstones
// for them to __offsets (not waited for).
void ox_srv_offsets_drop_topic(struct ox_server *srv, const char *topic);

#endif
