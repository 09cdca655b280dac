// SPDX-License-Identifier: Apache-2.0
//
// Traffic between nodes: Raft messages of every group (partitions and
// __meta), in one-way RAFT frames (proto/FRAMING.md, proto/raft.proto).
// broker/peer listens on peer.listen (through broker/net), keeps one
// outgoing connection to each other node (connecting, and reconnecting
// with backoff, by itself), encodes struct ox_raft_msg into RaftMessage
// and back, and batches: every message queued for one node during one
// turn of the io loop goes out in one frame, heartbeats of a thousand
// partitions included. It knows nothing of what the messages mean; the
// replication layer above hands messages in and gets them delivered.
//
// Loss is fine (Raft retries), so the rules are simple: a message for a
// node that is not connected, or whose send queue is full, is dropped
// (and counted); a connection that breaks drops what it held; a frame
// that does not decode, or comes from another cluster, closes the
// connection that sent it (logged). Nothing a peer sends can crash the
// node (fuzzed).
//
// Everything runs on the thread that owns the io loop.
#ifndef OX_BROKER_PEER_PEER_H
#define OX_BROKER_PEER_PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "broker/raft/raft.h"

struct ox_io;
struct ox_peer;

// A Raft group: a topic's partition, or topic_id 0 for __meta.
struct ox_peer_group {
	uint64_t topic_id;
	uint32_t partition;
};

// A message that arrived. Everything is borrowed for the call only:
// `raw` (the APPEND's batches, or the SNAPSHOT's bytes; raw_len 0 for
// none) points into the frame, which is freed after the callback. The
// message passed the structural checks of decoding (fields in range, raw
// slice inside the frame, to == this node); ox_raft_step checks the rest.
struct ox_peer_delivery {
	struct ox_peer_group group;
	struct ox_raft_msg msg;
	const uint8_t *raw;
	size_t raw_len;
	const char *client_address; // the sender's, from its frame ("" none)
};

typedef void (*ox_peer_deliver_cb)(void *arg,
				   const struct ox_peer_delivery *d);

// An admin change another node forwarded (RaftBatch.forwards): the bytes
// of an encoded MetaEntry, at most OX_PEER_FORWARD_BYTES_MAX, borrowed
// for the call only. The transport does not look inside them.
typedef void (*ox_peer_forward_cb)(void *arg, uint64_t from,
				   const uint8_t *entry, size_t len);

// A forwarded entry's bytes: broker/cluster's OX_CLUSTER_ENTRY_BYTES_MAX
// (1 MiB; an entry over it is refused there anyway).
#define OX_PEER_FORWARD_BYTES_MAX (1u << 20)
// Forwards in one frame: admin changes are rare, and each may hold up to
// OX_PEER_FORWARD_BYTES_MAX, so a frame carries few; more wait for the
// next frame.
#define OX_PEER_FRAME_FORWARDS_MAX 16u

struct ox_peer_node {
	uint64_t id;
	const char *addr; // "host:port" of its peer listener
};

struct ox_peer_opts {
	uint64_t node_id;          // this node
	const char *cluster_id;    // frames naming another are refused
	const char *client_address; // this node's client listener, told to
				    // the others in every frame (NULL: none)
	const char *listen;        // "host:port"; port 0 picks one
	const struct ox_peer_node *nodes; // every node, this one included
	uint32_t nodes_n;          // 1..OX_RAFT_NODES_MAX * 2
	// Bytes queued for one node (encoded messages and raw bytes held)
	// before further messages to it are dropped; 0: 64 MiB, enough for
	// a round of appends of every partition at full batch size.
	size_t send_bytes_max;
	// First reconnect delay, doubled up to reconnect_max_ms; 0: 50 and
	// 1000.
	uint32_t reconnect_ms;
	uint32_t reconnect_max_ms;
	// Set when the owner calls ox_peer_flush after every pass of the io
	// loop (each ox_io_run): the pass is then the turn, and no 0 ns
	// end-of-turn timer is armed. A frame then goes out with the loop's
	// next submission instead of after that timer's trip through the
	// kernel, which costs a wake-up of the loop (and, on a busy machine,
	// a wait for the CPU) on the way of every APPEND and every answer.
	// A 1 ms timer remains as a backstop: messages queued while the loop
	// runs without the owner's flush (start-up, shutdown) go out within
	// about 1 ms. Unset: the transport ends turns with its own timer.
	bool owner_flushes;
	ox_peer_deliver_cb deliver;
	// Forwarded entries, with deliver_arg; NULL: they are dropped.
	ox_peer_forward_cb forward;
	void *deliver_arg;
};

// Binds peer.listen, starts connecting to every other node, and returns
// the transport. Borrows io (it must outlive the peer) and copies opts
// and the strings in it. Returns 0, -EINVAL (bad opts: this node not in
// nodes, duplicate ids, an unparsable address), -ENOMEM, or the errno of
// binding the listener (-EADDRINUSE). Free with ox_peer_destroy.
int ox_peer_create(struct ox_peer **out, struct ox_io *io,
		   const struct ox_peer_opts *opts);

// Closes the listener and every connection, dropping what they hold
// (running the io loop until their operations complete), and frees the
// transport. Not from a callback. NULL is a no-op.
void ox_peer_destroy(struct ox_peer *p);

// The port of the peer listener (useful with port 0).
uint16_t ox_peer_port(const struct ox_peer *p);

// Called when raw bytes given to ox_peer_send are no longer needed
// (sent, or dropped); `sent` says which.
typedef void (*ox_peer_release_cb)(void *arg, int sent);

// Queues msg for node msg->to, in the frame that goes out at the end of
// this turn of the loop (or at ox_peer_flush; with owner_flushes, at the
// owner's next ox_peer_flush, or the 1 ms backstop). The message is
// copied; raw (iovcnt pieces, the APPEND's batches; may be NULL with 0)
// is borrowed until release runs, exactly once, from the io loop or
// ox_peer_destroy (never from inside this call or ox_peer_flush).
// Returns 0 (queued), -ENOTCONN (no connection to that node now;
// dropped), -ENOBUFS (its queue is full; dropped), -EMSGSIZE (raw is too
// big for any frame: over OX_FRAME_BYTES_MAX with the message's
// encoding), -ENOMEM, -EINVAL (unknown node or this node, msg->from is
// not this node, an unknown type, runs or conf lists over their bounds,
// iovcnt negative or over 1024). On an error release is not called: the
// caller still owns raw.
int ox_peer_send(struct ox_peer *p, const struct ox_peer_group *group,
		 const struct ox_raft_msg *msg, const struct iovec *raw,
		 int iovcnt, ox_peer_release_cb release, void *release_arg);

// Queues a copy of entry[0, len) (borrowed for the call) for node `node`
// as one of the frame's forwards, sent like messages (same frame, same
// loss rules). Returns 0 (queued), -ENOTCONN, -ENOBUFS (dropped, as for
// ox_peer_send), -EMSGSIZE (len is 0 or over OX_PEER_FORWARD_BYTES_MAX),
// -ENOMEM, or -EINVAL (unknown node or this node).
int ox_peer_forward(struct ox_peer *p, uint64_t node, const uint8_t *entry,
		    size_t len);

// Sends what is queued now instead of at the end of the turn. With
// owner_flushes, the owner calls it after every pass of the loop, and
// that ends the turn. It never runs a release callback itself (P1).
void ox_peer_flush(struct ox_peer *p);

// Arms again what the transport could not when the io loop was full (see
// ox_net_poke); its owner calls it from a periodic timer.
void ox_peer_poke(struct ox_peer *p);

// Whether there is a working connection to `node` now.
int ox_peer_connected(const struct ox_peer *p, uint64_t node);

// Counters for metrics and tests.
struct ox_peer_stats {
	uint64_t frames_sent;
	uint64_t frames_received;
	uint64_t msgs_sent;
	uint64_t msgs_received;
	uint64_t msgs_dropped;   // not connected or queue full
	uint64_t forwards_sent;     // in frames that went out
	uint64_t forwards_received; // delivered to the forward callback
	uint64_t frames_refused; // did not decode, wrong cluster or node
	uint64_t connects;       // outgoing connections established
};
void ox_peer_stats(const struct ox_peer *p, struct ox_peer_stats *out);

// The decoder alone (pure, no I/O): peer.c uses it, and tests and the
// fuzz harness call it directly.

// Decodes a RAFT frame's payload (body + raw, as proto/wire.h splits it):
// checks the cluster id, from_node, each message (type known, node ids
// non-zero, to == self, runs and conf within OX_RAFT_* bounds, raw slice
// inside raw) and the forwards (at most OX_PEER_FRAME_FORWARDS_MAX, each
// 1..OX_PEER_FORWARD_BYTES_MAX bytes), then calls deliver for each
// message in order and forward (when not NULL) for each forward in
// order. Returns the number of messages and forwards delivered, or
// -OX_ECORRUPT (nothing delivered: the whole frame is refused) with a
// reason in why.
long ox_peer_frame_decode(const uint8_t *payload, size_t len,
			  uint64_t self, const char *cluster_id,
			  ox_peer_deliver_cb deliver,
			  ox_peer_forward_cb forward, void *arg,
			  char *why, size_t why_len);

#endif
