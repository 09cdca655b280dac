// SPDX-License-Identifier: Apache-2.0
//
// Private to broker/peer: the limits of RAFT frames, the codec shared by
// the transport (peer.c, link.c), the unit tests and the fuzz harness
// (codec.c), and the structs of the transport. Nothing outside
// broker/peer includes it, except the module's unit tests. The invariants
// cited in assertions are listed in peer.c.
#ifndef OX_BROKER_PEER_PEER_INT_H
#define OX_BROKER_PEER_PEER_INT_H

#include "broker/peer/peer.h"

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

// --- limits ------------------------------------------------------------

// Messages in one frame: a round of heartbeats of 65536 partitions led by
// one node for another fits in one frame; more take several. A decoder
// refuses more (protobuf-c allocates per message, so this bounds what one
// frame makes us allocate).
#define OX_PEER_FRAME_MSGS_MAX 65536u
// The cluster id is a short name; bounding it bounds the frame head.
#define OX_PEER_CLUSTER_ID_MAX 255u
// A node's client address as frames carry it (host:port).
#define OX_PEER_ADDRESS_MAX 255u
// One encoded RaftMessage, with its field tag and length in the batch:
// every scalar field at its widest (11 or 12 bytes each, 14 fields),
// OX_RAFT_MSG_RUNS_MAX runs of 24 bytes and a full conf of 148 bytes come
// to about 400.
#define OX_PEER_MSG_BYTES_MAX 512u
// A frame's head: the 8-byte prefix, a RequestHeader (api_key,
// api_version, correlation_id: at most 15 bytes), the body length and
// RaftBatch's from_node and cluster_id (at most 269 bytes): under 300.
#define OX_PEER_HEAD_MAX 1024u
// Raw pieces one message may carry: an APPEND's batches come from a few
// segment reads, a SNAPSHOT from one buffer.
#define OX_PEER_MSG_IOV_MAX 1024
// Field occurrences the decoder accepts, unknown fields included: in one
// RaftMessage (18 fields, runs repeated), one RaftRun or RaftConf, and
// RaftBatch's fields other than its messages. A sane encoder writes each
// field once; the bounds keep what protobuf-c allocates per message small
// whatever a peer sends.
#define OX_PEER_MSG_FIELDS_MAX 48u
#define OX_PEER_SUB_FIELDS_MAX (2u * OX_RAFT_NODES_MAX + 16u)
#define OX_PEER_BATCH_FIELDS_MAX 16u
// A node's "host:port" and its NUL (a dotted quad and a port need 22).
#define OX_PEER_ADDR_MAX 64u
// The RAFT api version this code speaks.
#define OX_PEER_API_VERSION 1u
// oxbow.ApiKey RAFT (proto/envelope.proto).
#define OX_PEER_API_KEY 19u

// --- codec.c -------------------------------------------------------------

// Encodes msg of group g as one `messages` entry of a RaftBatch (field
// tag, length, RaftMessage) naming raw[raw_offset, raw_offset + raw_len)
// of the frame, into buf (room for OX_PEER_MSG_BYTES_MAX bytes). Returns
// the bytes written. msg must be structurally valid
// (ox_peer_msg_check() == 0).
size_t ox_peer_msg_encode(uint8_t *buf, const struct ox_peer_group *g,
			  const struct ox_raft_msg *msg, uint64_t raw_offset,
			  uint64_t raw_len);

// Whether msg can be encoded: type known, runs and conf lists within
// their bounds. Returns 0 or -EINVAL.
int ox_peer_msg_check(const struct ox_raft_msg *msg);

// Writes the head of a frame whose body's messages take msgs_len bytes
// and whose raw part takes raw_len bytes: the frame prefix, the
// RequestHeader (RAFT, OX_PEER_API_VERSION, correlation_id), the body
// length and RaftBatch's from_node, cluster_id (at most
// OX_PEER_CLUSTER_ID_MAX bytes) and client_address (NULL for none; at most
// OX_PEER_ADDRESS_MAX bytes). buf has room for OX_PEER_HEAD_MAX bytes.
// Returns the head's length, or -OX_ETOOBIG when the frame would be over
// OX_FRAME_BYTES_MAX.
long ox_peer_head_encode(uint8_t *buf, uint64_t correlation_id,
			 uint64_t from_node, const char *cluster_id,
			 const char *client_address, size_t msgs_len,
			 size_t raw_len);

// ox_peer_frame_decode on a payload already split into body and raw (as
// broker/net hands it over). nodes (nodes_n ids; NULL for any) lists the
// senders accepted.
long ox_peer_batch_decode(const uint8_t *body, size_t body_len,
			  const uint8_t *raw, size_t raw_len, uint64_t self,
			  const char *cluster_id, const uint64_t *nodes,
			  uint32_t nodes_n, ox_peer_deliver_cb deliver,
			  ox_peer_forward_cb forward, void *arg, char *why,
			  size_t why_len);

// Encodes one `forwards` entry of a RaftBatch (field tag, length, the
// bytes) into buf (room for len + OX_PEER_FORWARD_HEAD_MAX bytes).
// Returns the bytes written.
#define OX_PEER_FORWARD_HEAD_MAX 8u
size_t ox_peer_forward_encode(uint8_t *buf, const uint8_t *entry,
			      size_t len);

// --- the transport -------------------------------------------------------

// Who gets a raw piece's release.
struct peer_release {
	ox_peer_release_cb cb;
	void *arg;
};

// A frame being filled, waiting to be sent, or being sent. Its buffers
// are kept when it goes back to its link's pool.
struct peer_frame {
	struct peer_frame *next;
	uint8_t *body; // the encoded `messages` entries
	size_t body_len, body_cap;
	// iov[0] is the head, iov[1] the body, iov[2..] the raw pieces.
	struct iovec *iov;
	size_t iov_n, iov_cap;
	uint64_t raw_len;
	struct peer_release *rel;
	size_t rel_n, rel_cap;
	uint32_t msgs_n;
	uint32_t forwards_n;
	size_t bytes; // what it counts in its link's queued_bytes
	size_t head_len;
	uint8_t head[OX_PEER_HEAD_MAX];
};

enum link_state {
	LINK_WAIT = 0,   // not connected: a reconnect timer is armed
	LINK_CONNECTING, // a connect is in flight
	LINK_UP,         // connected: messages are queued and sent
	LINK_CLOSING,    // shut down: waiting for its operations to end
	LINK_DEAD,       // the transport is being destroyed
};

struct peer_link;

// The argument of a link's reconnect timer. It outlives the transport
// when the transport is destroyed with the timer armed (link NULL then):
// the timer's callback frees it, so destroy need not wait a whole
// back-off.
struct peer_ticket {
	struct peer_link *link;
	bool armed;
};

// The outgoing connection to one other node.
struct peer_link {
	struct ox_peer *p;
	uint64_t id;
	char addr_str[OX_PEER_ADDR_MAX];
	struct sockaddr_in addr;
	enum link_state state;
	int fd;            // -1 unless CONNECTING, UP or CLOSING
	unsigned ops;      // connect, recv and send in flight
	bool recv_armed;
	bool send_armed;
	struct peer_ticket *ticket;
	uint32_t backoff_ms; // the next reconnect delay (before jitter)
	// The frame being filled this turn, then the finished ones in order;
	// the first of those is in flight while send_armed.
	struct peer_frame *open;
	struct peer_frame *head, *tail;
	size_t sent_iov;  // iovecs of `head` sent so far
	size_t chunk_iov; // iovecs in the send in flight
	size_t queued_bytes; // open, queued and in-flight frames (limit)
	struct peer_frame *pool; // frames to reuse
	unsigned pool_n;
	bool dirty; // on the transport's dirty list (an open frame)
	struct peer_link *dirty_next;
	uint64_t correlation_id;
	uint8_t rbuf[64]; // a one-way connection receives nothing
};

struct ox_peer {
	struct ox_io *io;
	struct ox_net *net;
	uint64_t self;
	char cluster_id[OX_PEER_CLUSTER_ID_MAX + 1];
	char client_address[OX_PEER_ADDRESS_MAX + 1];
	size_t send_bytes_max;
	uint32_t reconnect_ms, reconnect_max_ms;
	ox_peer_deliver_cb deliver;
	ox_peer_forward_cb forward;
	void *deliver_arg;
	uint64_t *node_ids; // every node, for the decoder's sender check
	uint32_t nodes_n;
	struct peer_link *links; // every other node
	uint32_t links_n;
	struct peer_link *dirty; // links with an open frame
	bool owner_flushes; // the owner ends turns (no end-of-turn timer)
	bool turn_armed;   // the 0 ns end-of-turn timer
	bool retry_armed;  // the retry timer (the loop's pool was full)
	bool destroying;
	unsigned ops;      // timers, and every link's operations
	uint64_t rng;      // jitter
	struct ox_peer_stats stats;
};

// link.c
void ox_peer_link_init(struct ox_peer *p, struct peer_link *l);
// Starts connecting (from create: no timer yet).
void ox_peer_link_start(struct peer_link *l);
// Queues an encoded message; see ox_peer_send.
int ox_peer_link_send(struct peer_link *l, const struct ox_peer_group *g,
		      const struct ox_raft_msg *msg, const struct iovec *raw,
		      int iovcnt, ox_peer_release_cb release, void *arg);
// Queues a forward; see ox_peer_forward.
int ox_peer_link_forward(struct peer_link *l, const uint8_t *entry,
			 size_t len);
// Finishes the open frame and starts sending. may_fail: from an io
// callback, where a link whose send cannot be submitted is closed (and
// releases run); otherwise the failure is retried from a timer.
void ox_peer_link_flush(struct peer_link *l, bool may_fail);
// Closes the link for good (destroy): drops what it holds.
void ox_peer_link_kill(struct peer_link *l);
// After the transport's operations are done: frees the link's frames.
void ox_peer_link_free(struct peer_link *l);
// peer.c
// Arms the 0 ns end-of-turn timer, or the retry timer when the loop is
// full or the owner ends turns with ox_peer_flush (a backstop).
void ox_peer_arm_turn(struct ox_peer *p);
void ox_peer_arm_retry(struct ox_peer *p);

#endif
