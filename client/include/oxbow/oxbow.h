// SPDX-License-Identifier: Apache-2.0
//
// liboxbow: the C client of Oxbow. A producer (asynchronous sends with
// delivery callbacks, per-partition batching, bounded buffer memory), a
// consumer (assign, poll, seek, commit) and an admin handle (topics,
// configs, replica moves, offsets, groups, the cluster's status).
//
// Errors. Every function returning int returns >= 0 on success or a
// negative code: a -errno (-EINVAL for bad arguments, -ENOMEM, -ETIMEDOUT,
// -ENOBUFS) or a -OX_E* code listed below. ox_strerror() gives a sentence
// for any of them, ox_strerror_name() its symbol; both return static
// strings. Functions that talk to a broker also keep the broker's own
// error message, read with the handle's *_last_error() function.
//
// Threads. A producer is thread-safe: any thread may call send and flush
// at once. Its delivery callbacks run on the producer's own I/O thread,
// one at a time, in the order the broker acknowledged them (per partition,
// the order of send); a callback must return quickly and must not call
// ox_producer_flush or ox_producer_destroy. A consumer and an admin handle
// are not thread-safe: use each from one thread at a time.
//
// Ownership. Functions borrow the pointers they are given for the duration
// of the call unless a comment says otherwise; what a function returns
// through a pointer is the caller's to free with the named function.
//
// This header compiles on its own with a C11 (or C++) compiler.
#ifndef OXBOW_OXBOW_H
#define OXBOW_OXBOW_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// Error codes (negated when returned), shared with the broker: the same
// names and values as proto/error.h. Both headers guard the list with
// OX_ERROR_CODES_DEFINED, so inside the Oxbow tree whichever of them is
// included first defines the codes and the other skips them; an installed
// copy of this header stands alone. OX_EBASE and OX_EMAX bound the range
// and are not codes themselves.
#ifndef OX_ERROR_CODES_DEFINED
#define OX_ERROR_CODES_DEFINED
enum ox_error_code {
	OX_EBASE = 5000,
	OX_ECORRUPT = 5001,   // a batch failed its checksum or structure
	OX_ETOOBIG = 5002,    // a record or batch over its limit
	OX_EOFFSET = 5003,    // offset out of range
	OX_EFAILED = 5004,    // broker log failed after an I/O error
	OX_ENOTLEADER = 5005, // broker does not lead the partition (retried)
	OX_ETRUNCATED = 5006, // input ends inside a structure
	OX_ECLOSED = 5007,    // handle closing or closed
	OX_ESERVER = 5008,    // server error with no better code
	OX_EUNKNOWN_TOPIC = 5009,
	OX_EINVALID_REQUEST = 5010,
	OX_ESTORAGE = 5011,   // broker disk full or I/O error
	OX_EUNSUPPORTED = 5012,
	OX_ETOPIC_EXISTS = 5013,
	OX_EREPLICAS = 5014,  // not enough replicas in sync (retried)
	OX_ESEQUENCE = 5015,
	OX_EDUPLICATE = 5016,
	OX_EINVALID_CONFIG = 5017,
	OX_EAUTH = 5018,
	OX_EDENIED = 5019,
	OX_EUNKNOWN_PROCESSOR = 5020,
	OX_EUNKNOWN_TABLE = 5021,
	OX_ENOT_CAUGHT_UP = 5022,
	OX_ESHUTDOWN = 5023,  // broker shutting down (retried)
	OX_EUNREACHABLE = 5024, // no broker of the bootstrap list answered
	OX_ENOTFOUND = 5025,
	OX_EMAX = 5026,
};
#endif

// A sentence and a symbol for any code, either sign; static strings.
const char *ox_strerror(int err);
const char *ox_strerror_name(int err);

// The library's version, "0.1.0".
const char *ox_version(void);

// ---------------------------------------------------------------------
// Configuration: string keys and values, as in Kafka clients.
//
// Common keys (defaults in brackets):
//   bootstrap.servers     host:port[,host:port...]   [127.0.0.1:7400]
//   client.id             free text sent to brokers  [oxbow]
//   request.timeout.ms    one request's deadline     [30000]
//   socket.connect.timeout.ms                        [10000]
// Producer keys:
//   acks                  all | leader | none        [all]
//   linger.ms             wait this long to fill a batch [5]
//   batch.size            bytes per partition batch  [262144]
//   buffer.memory         bytes of records held before send blocks [67108864]
//   max.block.ms          how long send blocks when the buffer is full;
//                         0: fail at once with -ENOBUFS [60000]
//   retries               resends of a failed batch  [2147483647]
//   retry.backoff.ms      first backoff, doubled up to retry.backoff.max.ms
//                         [100]; retry.backoff.max.ms [1000]
//   delivery.timeout.ms   from send to a final callback, retries included
//                         [120000]
//   max.in.flight.requests.per.connection           [5]
//   max.request.size      bytes of one produce request [1048576]
//   enable.idempotence    true | false [true]: the broker gives the
//                         producer an id, each batch carries its sequence
//                         numbers, and a partition leader stores a retried
//                         batch once, even across a leader change (the
//                         retry's callback gets the first copy's offsets;
//                         -1 when the leader no longer knows them). A
//                         producer then sends one batch per partition per
//                         request. Off with acks=none, which never retries.
// Consumer keys:
//   group.id              commit and resume offsets under this group [none]
//   auto.offset.reset     earliest | latest | none: where to start a
//                         partition with no committed offset [latest]
//   fetch.min.bytes [1], fetch.max.wait.ms [500], fetch.max.bytes
//   [52428800], max.partition.fetch.bytes [8388608]
//   check.crcs            true | false: verify batch checksums [true]
struct ox_conf;

// Returns a configuration with every default, or NULL when out of memory.
// Free it with ox_conf_destroy; handles copy it at create.
struct ox_conf *ox_conf_create(void);
void ox_conf_destroy(struct ox_conf *conf);

// Sets key to value (both copied). Returns 0, or -OX_EINVALID_CONFIG for an
// unknown key or a bad value, writing a sentence into errstr (if non-NULL,
// errstr_size > 0, always NUL-terminated).
int ox_conf_set(struct ox_conf *conf, const char *key, const char *value,
		char *errstr, size_t errstr_size);

// ---------------------------------------------------------------------
// Records

// OX_PARTITION_ANY: let the producer choose (the key's hash, or for
// keyless records one partition per batch, rotating).
#define OX_PARTITION_ANY (-1)
// Special offsets for seek and list offsets.
#define OX_OFFSET_END (-1)       // the next offset to be written
#define OX_OFFSET_BEGINNING (-2) // the first offset still stored
#define OX_OFFSET_INVALID (-1001)

struct ox_header {
	const char *key;     // NUL-terminated
	const void *value;   // NULL: a null value
	size_t value_len;
};

// ---------------------------------------------------------------------
// Producer

struct ox_producer;

// Delivery report: err is 0 and offset the record's offset once the broker
// acknowledged it as `acks` asks (with acks=none, offset is -1 once the
// request was written to the socket); otherwise the final error after
// retries. `opaque` is ox_message.opaque.
typedef void (*ox_delivery_cb)(void *opaque, int err, const char *topic,
			       int32_t partition, int64_t offset);

struct ox_message {
	const char *topic;
	int32_t partition;        // OX_PARTITION_ANY or an explicit partition
	const void *key;          // NULL: a null key
	size_t key_len;
	const void *value;        // NULL: a null value (a tombstone)
	size_t value_len;
	int64_t timestamp_ms;     // 0: now
	const struct ox_header *headers;
	size_t header_count;
	ox_delivery_cb cb;        // may be NULL
	void *opaque;
};

// Creates a producer from conf (copied). It connects lazily: bootstrap
// problems surface as send timeouts and delivery errors, not here.
// Returns 0, -OX_EINVALID_CONFIG, or -ENOMEM; on error writes a sentence
// into errstr. The caller frees *out with ox_producer_destroy.
int ox_producer_create(struct ox_producer **out, const struct ox_conf *conf,
		       char *errstr, size_t errstr_size);

// Queues one record (key, value and headers are copied before it returns)
// into its partition's batch. Blocks up to max.block.ms while the topic's
// metadata is fetched or buffer.memory is full. Returns 0 (the callback
// will run exactly once), or, with no callback to come: -EINVAL (bad
// message), -OX_ETOOBIG (the record cannot fit max.request.size),
// -OX_EUNKNOWN_TOPIC, -OX_EUNKNOWN_TOPIC for a partition out of range,
// -ENOBUFS (buffer full and max.block.ms passed), -ETIMEDOUT (metadata
// not available within max.block.ms), -OX_ECLOSED.
int ox_producer_send(struct ox_producer *p, const struct ox_message *m);

// Sends everything queued now (ignoring linger.ms) and waits until every
// record sent before the call got its callback. timeout_ms < 0 waits
// without limit. Returns 0 or -ETIMEDOUT.
int ox_producer_flush(struct ox_producer *p, int timeout_ms);

// Records queued or in flight, without a callback yet.
size_t ox_producer_pending(const struct ox_producer *p);

// Flushes for up to delivery.timeout.ms, fails what is left with
// -OX_ECLOSED through its callback, stops the I/O thread and frees p.
// NULL is a no-op.
void ox_producer_destroy(struct ox_producer *p);

// ---------------------------------------------------------------------
// Consumer

struct ox_consumer;

struct ox_topic_partition {
	const char *topic;
	int32_t partition;
	int64_t offset; // for commit: next offset to consume; else ignored
};

// A record returned by poll. Every pointer points into the consumer's
// buffers and is valid until the next poll, seek, assign or destroy.
struct ox_consumer_record {
	const char *topic;
	int32_t partition;
	int64_t offset;
	int64_t timestamp_ms;
	const void *key;      // NULL: a null key
	size_t key_len;
	const void *value;    // NULL: a null value
	size_t value_len;
	const struct ox_header *headers;
	size_t header_count;
};

// Creates a consumer (conf copied). Returns 0, -OX_EINVALID_CONFIG or
// -ENOMEM. The caller frees *out with ox_consumer_destroy.
int ox_consumer_create(struct ox_consumer **out, const struct ox_conf *conf,
		       char *errstr, size_t errstr_size);

// Replaces the assignment with these partitions (the offset fields are
// ignored). Each starts at the group's committed offset when group.id is
// set and one exists, otherwise as auto.offset.reset says. Returns 0,
// -EINVAL, -OX_EUNKNOWN_TOPIC (a topic or partition that does not exist),
// -OX_EOFFSET (no committed offset and auto.offset.reset=none), or a
// connection error.
int ox_consumer_assign(struct ox_consumer *c,
		       const struct ox_topic_partition *tps, size_t n);

// Assigns every partition of topic. Same returns as assign.
int ox_consumer_assign_topic(struct ox_consumer *c, const char *topic);

// Returns up to max records through *out (an array the consumer owns, see
// struct ox_consumer_record), waiting up to timeout_ms (< 0: no limit)
// when none is ready. Returns the number of records (0 after the
// timeout), or a negative error: -OX_ECORRUPT when a batch fails its
// checksum (the position stays before it), -OX_EOFFSET when a position
// fell out of range and auto.offset.reset=none, or a connection error
// after retries. Records come in offset order per partition; control
// batches are skipped. Also runs async commit callbacks.
int ox_consumer_poll(struct ox_consumer *c, int timeout_ms,
		     const struct ox_consumer_record **out, size_t max);

// Sets the next offset to fetch: an offset, OX_OFFSET_BEGINNING or
// OX_OFFSET_END. The partition must be assigned (-EINVAL otherwise).
int ox_consumer_seek(struct ox_consumer *c, const char *topic,
		     int32_t partition, int64_t offset);

// Seeks to the first record whose timestamp is >= timestamp_ms (the end
// when none is). Returns 0, -EINVAL, or a broker error.
int ox_consumer_seek_time(struct ox_consumer *c, const char *topic,
			  int32_t partition, int64_t timestamp_ms);

// The next offset poll will return for the partition.
int ox_consumer_position(const struct ox_consumer *c, const char *topic,
			 int32_t partition, int64_t *offset_out);

// Commits the current positions of every assigned partition (or the n
// given offsets when tps is non-NULL) for group.id, waiting until they
// are durable. Returns 0, -EINVAL (no group.id), or an error.
int ox_consumer_commit(struct ox_consumer *c,
		       const struct ox_topic_partition *tps, size_t n);

// Like ox_consumer_commit without waiting; cb (may be NULL) runs from a
// later ox_consumer_poll, commit or destroy with the result. Returns 0 once
// the request is queued.
typedef void (*ox_commit_cb)(void *opaque, int err);
int ox_consumer_commit_async(struct ox_consumer *c,
			     const struct ox_topic_partition *tps, size_t n,
			     ox_commit_cb cb, void *opaque);

// The group's committed offset for a partition (-1 in *offset_out: none).
int ox_consumer_committed(struct ox_consumer *c, const char *topic,
			  int32_t partition, int64_t *offset_out);

// The broker's message for the last failed call (static "" if none);
// valid until the next call on c.
const char *ox_consumer_last_error(const struct ox_consumer *c);

// Waits for async commits in flight (running their callbacks), closes
// connections, frees c. NULL is a no-op.
void ox_consumer_destroy(struct ox_consumer *c);

// ---------------------------------------------------------------------
// Admin

struct ox_admin;

struct ox_config_entry {
	const char *key;
	const char *value;
};

struct ox_partition_info {
	int32_t partition;
	int32_t leader;           // node id, -1 when none
	int32_t *replicas;
	size_t replica_count;
	int32_t *in_sync;
	size_t in_sync_count;
	int64_t start_offset;     // earliest stored
	int64_t end_offset;       // high watermark
};

struct ox_topic_info {
	char *name;
	int internal;
	struct ox_partition_info *partitions;
	size_t partition_count;
	struct ox_config_entry *configs; // describe only; sorted by key
	size_t config_count;
};

struct ox_group_offset {
	char *topic;
	int32_t partition;
	int64_t offset;           // committed: next to consume
	int64_t end_offset;       // the partition's high watermark
	int64_t lag;              // end_offset - offset (>= 0)
	char *metadata;
};

// Creates an admin handle (conf copied; only the common keys matter).
// Returns 0, -OX_EINVALID_CONFIG or -ENOMEM; the caller frees *out with
// ox_admin_destroy. Connects on first use.
int ox_admin_create(struct ox_admin **out, const struct ox_conf *conf,
		    char *errstr, size_t errstr_size);
void ox_admin_destroy(struct ox_admin *a);

// The broker's message for the last failed call; valid until the next
// call on a.
const char *ox_admin_last_error(const struct ox_admin *a);

// Creates a topic. replicas 0: the broker's default. configs may be NULL
// with n 0. Returns 0, -OX_ETOPIC_EXISTS, -OX_EINVALID_CONFIG,
// -OX_EINVALID_REQUEST (bad name or counts), -OX_EUNREACHABLE, ...
int ox_admin_topic_create(struct ox_admin *a, const char *name,
			  int32_t partitions, int32_t replicas,
			  const struct ox_config_entry *configs, size_t n);
int ox_admin_topic_delete(struct ox_admin *a, const char *name);

// Lists topics (without configs; internal ones too when include_internal)
// sorted by name. Free with ox_topic_infos_free.
int ox_admin_topic_list(struct ox_admin *a, int include_internal,
			struct ox_topic_info **out, size_t *n_out);

// One topic with partitions, leaders, start/end offsets and every config.
// Free with ox_topic_infos_free(*out, 1). -OX_EUNKNOWN_TOPIC if missing.
int ox_admin_topic_describe(struct ox_admin *a, const char *name,
			    struct ox_topic_info **out);
void ox_topic_infos_free(struct ox_topic_info *infos, size_t n);

// Sets topic configs, all or nothing (see proto/api.proto
// AlterConfigsRequest: `partitions` may grow).
int ox_admin_config_alter(struct ox_admin *a, const char *topic,
			  const struct ox_config_entry *set, size_t n);

// Moves partition `partition` of topic to the n nodes in replicas: node
// ids, distinct, as many as the topic's replication factor, the preferred
// leader first (see proto/api.proto ReassignPartitionRequest). Sent to the
// bootstrap brokers in turn, like ox_admin_config_alter (any node hands
// it to the metadata leader). Returns 0 once the metadata group has
// recorded the new list (the same list as now changes nothing); the move
// then runs in the background, and ox_admin_cluster_status shows the
// partition as `moving` until it is done. Otherwise -EINVAL (a NULL
// handle or replicas, an empty topic, a negative partition or node id,
// n 0), -OX_EUNREACHABLE, -OX_EUNSUPPORTED (a broker that predates the
// call), or the broker's error with its message in ox_admin_last_error:
// -OX_EUNKNOWN_TOPIC, -OX_EINVALID_REQUEST (a list it refuses, or a node
// without peers), -OX_ENOTLEADER (no metadata leader now, or it cannot
// be reached: not retried, call again), ...
int ox_admin_partition_reassign(struct ox_admin *a, const char *topic,
				int32_t partition, const int32_t *replicas,
				size_t n);

// The offset for OX_OFFSET_BEGINNING, OX_OFFSET_END, or a timestamp (ms,
// >= 0: the first offset whose record timestamp is >= it; the end when
// none is).
int ox_admin_list_offsets(struct ox_admin *a, const char *topic,
			  int32_t partition, int64_t spec,
			  int64_t *offset_out);

// Groups with committed offsets, sorted; free with ox_strings_free.
int ox_admin_group_list(struct ox_admin *a, char ***out, size_t *n_out);
void ox_strings_free(char **strings, size_t n);

// A group's committed offsets with lag, sorted by topic and partition;
// free with ox_group_offsets_free. -OX_ENOTFOUND when the group has none.
int ox_admin_group_describe(struct ox_admin *a, const char *group,
			    struct ox_group_offset **out, size_t *n_out);
void ox_group_offsets_free(struct ox_group_offset *offsets, size_t n);

// Commits offsets for a group (a reset). Each entry's offset must be >= 0.
int ox_admin_group_commit(struct ox_admin *a, const char *group,
			  const struct ox_topic_partition *tps, size_t n);

// The cluster as one node sees it (CLUSTER_STATUS, `oxbowctl cluster
// status`). Every string and array belongs to the struct and is freed
// with it by ox_cluster_status_free.

// A node of the cluster.
struct ox_node_status {
	int32_t node_id;
	char *address;            // its client listener, "host:port"
	char *peer_address;       // its peer listener; "" when it has none
	int reachable;            // 1: the answering node has a link to it
				  // (always 1 for the answering node)
};

// A partition and its replicas.
struct ox_partition_status {
	char *topic;
	int32_t partition;
	int32_t leader;           // node id, -1 when no leader is known
	int32_t *replicas;        // node ids of its replicas
	size_t replica_count;
	int32_t *in_sync;         // the replicas holding the log up to the
	size_t in_sync_count;     // high watermark; fewer than replica_count:
				  // under-replicated
	int64_t high_watermark;   // offset after the last committed record
	int moving;               // 1: a reassignment is under way and
				  // replicas lists its target (the replicas
				  // it leaves serve until it is done)
};

struct ox_cluster_status {
	int32_t answering_node;   // the node that answered
	int32_t meta_leader;      // the metadata group's leader, -1: none now
	uint64_t meta_term;       // the metadata group's Raft term
	// The answering node started with an empty metadata log (a new or
	// wiped disk) and holds its votes back until it has caught up.
	int rejoining;
	struct ox_node_status *nodes;             // sorted by node_id
	size_t node_count;
	struct ox_partition_status *partitions;   // sorted by topic, partition
	size_t partition_count;                   // (every one the node knows)
};

// Asks the bootstrap brokers in turn for the cluster's status as the
// first to answer sees it (each tried within socket.connect.timeout.ms
// and request.timeout.ms). Returns 0 with *out (the caller's, freed with
// ox_cluster_status_free; untouched on error), or -EINVAL (a NULL
// argument), -ENOMEM, -OX_EUNREACHABLE (no bootstrap broker answered;
// ox_admin_last_error names the last one tried), -OX_EUNSUPPORTED (a
// broker that does not serve the request), -OX_ECORRUPT (a response that
// does not parse), or the broker's error with its message in
// ox_admin_last_error.
int ox_admin_cluster_status(struct ox_admin *a, struct ox_cluster_status **out);
// Frees a status and everything in it. NULL is a no-op.
void ox_cluster_status_free(struct ox_cluster_status *status);

#ifdef __cplusplus
}
#endif

#endif
