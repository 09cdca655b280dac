// SPDX-License-Identifier: Apache-2.0
//
// Private to broker/net: the listener, connection, request and response
// structs shared by net.c (listener, accept loop, lifecycle), conn.c
// (reading and framing) and respond.c (responses and the send queue).
// Nothing outside broker/net includes it, except the module's unit tests.
// The invariants cited in assertions are listed in net.c.
#ifndef OX_BROKER_NET_NET_INT_H
#define OX_BROKER_NET_NET_INT_H

#include "broker/net/net.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

// Each connection reads into a fixed buffer of this size: big enough that
// one recv takes many small frames (or a big frame's first 64 KiB) at
// once, small enough that a thousand idle connections cost 64 MiB.
#define OX_NET_RBUF_BYTES (64u << 10)

// A frame that is not complete in the read buffer and is longer than
// this gets its own buffer at once, and the rest of it is received
// straight into that buffer: no copy through the read buffer. Shorter
// ones wait in the read buffer, which always has room for them.
#define OX_NET_DIRECT_BYTES (OX_NET_RBUF_BYTES / 2)

// Responses gathered into one sendmsg: two buffers each (the head and the
// raw bytes) within the loop's OX_IO_IOV_MAX.
#define OX_NET_SEND_BATCH 8u

// An error message longer than this is cut: the response header must stay
// far below OX_FRAME_HEADER_BYTES_MAX whatever a handler passes.
#define OX_NET_ERROR_MESSAGE_MAX 1024u

// The listen(2) backlog: connections the kernel queues while the loop is
// busy; more are refused by the kernel.
#define OX_NET_LISTEN_BACKLOG 1024

// When the loop's pool is full (-EBUSY), the recv, send or accept that
// could not be submitted is tried again after this long (the pool drains
// meanwhile).
#define OX_NET_RETRY_NS 1000000ull
// After accept fails for want of descriptors or memory (EMFILE, ENFILE,
// ENOBUFS, ENOMEM), the listener rests this long rather than spin on the
// connection the kernel keeps queued.
#define OX_NET_ACCEPT_BACKOFF_NS 100000000ull

// "255.255.255.255:65535" and a NUL.
#define OX_NET_PEER_MAX 24

// A response waiting to be sent, or being sent: head[] holds the frame
// prefix, the ResponseHeader, the body length prefix and the body copy;
// raw bytes follow it on the wire without being copied.
struct net_out {
	struct net_out *next;
	void *raw_owner; // free()d once sent or dropped
	const void *raw;
	size_t raw_len;
	size_t head_len;
	uint8_t head[];
};

struct net_conn {
	struct net_conn *prev, *next; // the net's list (invariant 4)
	struct net_conn *deferred_next; // the net's deferred list
	struct ox_net *net; // NULL once the net is destroyed (detached)
	int fd;             // -1 once closed (after its last callback)
	uint64_t id;
	char peer[OX_NET_PEER_MAX];
	bool open;         // false once closed: no reads, responses dropped
	bool recv_armed;   // a recv is in flight (into rbuf or big)
	bool send_armed;   // a send of the `sending` chain is in flight
	bool busy;         // inside conn_kick or a delivery: not freed
	bool deferred;     // on the net's deferred list
	bool paused;       // not read because of back-pressure (counted)
	unsigned ops;      // io operations in flight (recv and send)
	// Requests handed to the handler and not ended, and their frames'
	// bytes: the inflight limits (invariant 2).
	uint32_t inflight;
	size_t inflight_bytes;
	// Read side: rbuf[rpos, rlen) is received and not yet framed; a big
	// frame is received into its own request (invariant 3).
	uint8_t *rbuf;
	size_t rpos, rlen;
	struct ox_net_req *big;
	size_t big_have, big_total;
	// Send side: responses in ox_net_respond order, the first
	// `sending_n` of them in flight (invariant 5).
	struct net_out *out_head, *out_tail;
	unsigned sending_n;
	size_t out_bytes; // queued and in flight: the send limit
};

// A request: the struct, then the whole frame (from its length field),
// then room for the client id and its NUL, in one allocation.
struct ox_net_req {
	struct net_conn *conn;
	struct ox_net_req_info info;
	size_t frame_bytes; // what it counts in conn->inflight_bytes
	uint32_t header_len;
	uint8_t *frame;
	char *client_id;
};

struct ox_net {
	struct ox_io *io;
	struct ox_net_opts opts; // defaults resolved; listen not kept
	int lfd;                 // the listener, -1 once closed
	uint16_t port;
	bool accepting;          // the accept loop should run
	bool accept_armed;
	bool accept_resting;     // waiting out OX_NET_ACCEPT_BACKOFF_NS
	bool kick_armed;         // the 0 ns kick timer is in flight
	bool retry_armed;        // the retry / back-off timer is in flight
	bool destroying;
	// io operations in flight whose callback gets this net or one of
	// its connections: destroy runs the loop until it is 0.
	unsigned ops;
	uint32_t conn_count;     // open connections
	uint32_t paused_count;   // open connections held by back-pressure
	// Request bytes held (frames handed out and not ended, partly
	// received big frames) and response bytes queued, over every
	// connection: what opts.memory_bytes_max bounds (invariant 6).
	size_t memory_bytes;
	uint64_t requests_total;
	uint64_t next_conn_id;
	struct net_conn *conns;  // every connection not freed nor detached
	// Connections to kick from a timer callback: resumed after a
	// request ended (never from inside the handler's call), or retried
	// after the loop's pool was full.
	struct net_conn *deferred;
};

// net.c
// Kicks conn from a timer callback: at the loop's next pass, or with
// `retry` after OX_NET_RETRY_NS (its recv or send met a full pool).
void ox_net_defer(struct net_conn *conn, bool retry);
// Takes conn off the deferred list (it is closing).
void ox_net_defer_cancel(struct net_conn *conn);

// Counts bytes conn now holds in net->memory_bytes, or stops counting
// them; a no-op once the connection is detached (conn->net NULL). When
// the sum drops below the budget, every paused connection is kicked from
// a timer callback (never inside the caller, which may be the handler).
void ox_net_mem_add(struct net_conn *conn, size_t bytes);
void ox_net_mem_sub(struct net_conn *conn, size_t bytes);
// Whether the net's sum is at or over opts.memory_bytes_max.
bool ox_net_mem_over(const struct ox_net *net);

// conn.c
// Opens a connection on an accepted socket (taking fd).
void ox_net_conn_open(struct ox_net *net, int fd);
// Reads, frames and sends what conn can now: the one place that submits
// recvs and sends and that delivers requests.
void ox_net_conn_kick(struct net_conn *conn);
// Closes conn (idempotent), logging "connection closed" with reason if
// it is not NULL. Safe from any callback or handler.
void ox_net_conn_close(struct net_conn *conn, const char *reason);
// After submitting a recv or send for conn (rc from the loop): counts the
// operation and returns true, or retries later on -EBUSY, or closes conn
// ("cannot WHAT: ERR"), returning false.
bool ox_net_submitted(struct net_conn *conn, int rc, const char *what);
// Frees conn if it is closed and nothing refers to it any more.
void ox_net_conn_maybe_free(struct net_conn *conn);
// Ends a request: frees it, updates its connection's limits, starts
// sending, and resumes a paused connection (deferred: never inside the
// caller, which may be the handler).
void ox_net_req_end(struct ox_net_req *req);

// respond.c
// Submits a send of the queued responses if none is in flight.
void ox_net_send_start(struct net_conn *conn);
// Frees queued responses that are not in flight (a closed connection).
void ox_net_out_drop_queued(struct net_conn *conn);

#endif
