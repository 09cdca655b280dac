// SPDX-License-Identifier: Apache-2.0
//
// broker/peer: the transport of Raft messages between nodes (peer.h).
// This file holds the transport as a whole: options, creation and
// destruction, the listener's handler (inbound frames go through
// broker/net, are decoded by codec.c and delivered), ox_peer_send's
// checks, and the two timers that drive the links (link.c). The
// replication layer above creates one transport per node.
//
// Design notes
//
// Everything runs on the loop's thread. Inbound, each connection another
// node opened is a broker/net connection; every RAFT frame is decoded and
// delivered whole, then ended with ox_net_finish; anything else closes the
// connection (ox_net_reject, logged). Outbound, each other node has one
// link, whose states are
//
//   WAIT --(reconnect timer, or at create)--> CONNECTING
//   CONNECTING --(connected)--> UP;  --(refused)--> WAIT (back-off doubled)
//   UP --(send or recv error, end of stream, bytes received)--> CLOSING
//   CLOSING --(last operation ended; fd closed)--> WAIT
//   any --(ox_peer_destroy)--> DEAD
//
// ox_peer_send appends the encoded message to the link's open frame and
// arms a 0 ns timer: its callback, at the end of the loop's turn, closes
// every open frame and starts sending. So every message queued for a node
// in one turn goes out in one frame (more when the frame limits cut it).
// An owner that calls ox_peer_flush after every pass of the loop says so
// (owner_flushes), and the pass is the turn: the 0 ns timer is not armed,
// only the 1 ms retry timer as a backstop for loops the owner runs
// without flushing (start-up, shutdown). The 0 ns timer costs a trip
// through the kernel and a wake-up of the loop before the frame's send is
// even submitted; on the path of an acks=all produce (the leader's
// APPEND, the follower's answer) that wait is paid twice.
//
// Invariants (cited by number in assertions and tests):
//  P1. A release callback runs exactly once per message queued with one,
//      with sent = 1 once its whole frame went out, else 0; only from an
//      io callback or ox_peer_destroy, never inside ox_peer_send or
//      ox_peer_flush.
//  P2. A frame holds at most OX_PEER_FRAME_MSGS_MAX messages and is at
//      most OX_FRAME_BYTES_MAX long: a frame is cut before a message that
//      would not fit, and a message that could not fit alone is refused
//      (-EMSGSIZE).
//  P3. A link's queued_bytes is the sum of its frames' counted bytes
//      (each message's encoding, its raw bytes and PIECE_OVERHEAD per raw
//      piece; each frame its head bound) and stays at or under
//      send_bytes_max: a message is taken only if it fits at its
//      encoding's bound, OX_PEER_MSG_BYTES_MAX.
//  P4. A frame whose send is in flight is neither released nor reused
//      until the send's callback: its head, body and the callers' raw
//      buffers are lent to the loop.
//  P5. A link's socket is closed only after the callback of its last
//      operation (a reused fd number must not get a stale send or recv).
//  D1, D2: the decoder's, in codec.c.
#include "broker/peer/peer_int.h"

#include "broker/io/io.h"
#include "broker/net/net.h"
#include "broker/slog/slog.h"
#include "proto/assert.h"
#include "proto/error.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SEND_BYTES_MAX_DEFAULT ((size_t)64 << 20)
#define RECONNECT_MS_DEFAULT 50u
#define RECONNECT_MAX_MS_DEFAULT 1000u
// When the loop's pool is full, sends, receives and connects are tried
// again after this long.
#define RETRY_NS 1000000ull

// --- timers --------------------------------------------------------------

// Finishes the open frame of every link on the dirty list and starts
// sending; may_fail as for ox_peer_link_flush.
static void flush_dirty(struct ox_peer *p, bool may_fail)
{
	struct peer_link *list = p->dirty;

	p->dirty = NULL;
	while (list) {
		struct peer_link *l = list;

		list = l->dirty_next;
		l->dirty_next = NULL;
		l->dirty = false;
		ox_peer_link_flush(l, may_fail);
	}
}

static void turn_done(void *arg, int res)
{
	struct ox_peer *p = arg;

	OX_ASSERT(p->ops > 0 && p->turn_armed);
	p->ops--;
	p->turn_armed = false;
	flush_dirty(p, true);
}

static void retry_done(void *arg, int res)
{
	struct ox_peer *p = arg;

	OX_ASSERT(p->ops > 0 && p->retry_armed);
	p->ops--;
	p->retry_armed = false;
	flush_dirty(p, true);
	for (uint32_t i = 0; i < p->links_n; i++)
		ox_peer_link_flush(&p->links[i], true);
}

void ox_peer_arm_turn(struct ox_peer *p)
{
	if (p->turn_armed)
		return;
	if (p->owner_flushes) {
		// The owner's flush normally comes first; the retry timer is
		// the backstop for loops run without it.
		ox_peer_arm_retry(p);
		return;
	}
	if (ox_io_timer(p->io, 0, turn_done, p) == 0) {
		p->turn_armed = true;
		p->ops++;
	} else {
		ox_peer_arm_retry(p);
	}
}

void ox_peer_arm_retry(struct ox_peer *p)
{
	if (p->retry_armed || p->destroying)
		return;
	// When even this fails (the loop is being destroyed), nothing is
	// left to retry for: the transport goes with it.
	if (ox_io_timer(p->io, RETRY_NS, retry_done, p) == 0) {
		p->retry_armed = true;
		p->ops++;
	}
}

void ox_peer_poke(struct ox_peer *p)
{
	if (p == NULL || p->destroying)
		return;
	if (p->net != NULL)
		ox_net_poke(p->net);
	// A flush or retry timer the loop refused: frames and reconnects
	// wait for one (a flush with nothing queued is a no-op).
	if (!p->turn_armed && !p->retry_armed)
		ox_peer_arm_retry(p);
}

// --- inbound -------------------------------------------------------------

static void peer_deliver(void *arg, const struct ox_peer_delivery *d)
{
	struct ox_peer *p = arg;

	p->stats.msgs_received++;
	p->deliver(p->deliver_arg, d);
}

static void peer_forward(void *arg, uint64_t from, const uint8_t *entry,
			 size_t len)
{
	struct ox_peer *p = arg;

	p->stats.forwards_received++;
	if (p->forward != NULL)
		p->forward(p->deliver_arg, from, entry, len);
}

static void peer_handle(void *arg, struct ox_net_req *req)
{
	struct ox_peer *p = arg;
	const struct ox_net_req_info *in = ox_net_req_info(req);
	char why[160];
	long n;

	if (in->api_key != OX_PEER_API_KEY) {
		snprintf(why, sizeof(why), "not a RAFT frame (api_key %u)",
			 in->api_key);
		goto refuse;
	}
	if (in->api_version != OX_PEER_API_VERSION) {
		snprintf(why, sizeof(why), "RAFT api_version %u not spoken",
			 in->api_version);
		goto refuse;
	}
	if (p->destroying) {
		ox_net_finish(req);
		return;
	}
	n = ox_peer_batch_decode(in->body, in->body_len, in->raw, in->raw_len,
				 p->self, p->cluster_id, p->node_ids,
				 p->nodes_n, peer_deliver, peer_forward, p, why,
				 sizeof(why));
	if (n < 0)
		goto refuse;
	p->stats.frames_received++;
	ox_net_finish(req);
	return;

refuse:
	p->stats.frames_refused++;
	ox_net_reject(req, why); // logged by broker/net
}

// --- create and destroy ----------------------------------------------------

static int opts_check(const struct ox_peer_opts *o)
{
	bool self_found = false;

	if (!o || o->node_id == OX_RAFT_NONE || !o->cluster_id ||
	    strlen(o->cluster_id) > OX_PEER_CLUSTER_ID_MAX || !o->listen ||
	    (o->client_address &&
	     strlen(o->client_address) > OX_PEER_ADDRESS_MAX) ||
	    !o->nodes || o->nodes_n < 1 || o->nodes_n > 2 * OX_RAFT_NODES_MAX ||
	    !o->deliver)
		return -EINVAL;
	if (o->reconnect_max_ms > 0 && o->reconnect_ms > o->reconnect_max_ms)
		return -EINVAL;
	for (uint32_t i = 0; i < o->nodes_n; i++) {
		struct sockaddr_in a;

		if (o->nodes[i].id == OX_RAFT_NONE)
			return -EINVAL;
		for (uint32_t j = 0; j < i; j++)
			if (o->nodes[j].id == o->nodes[i].id)
				return -EINVAL;
		if (o->nodes[i].id == o->node_id) {
			self_found = true;
			continue;
		}
		if (ox_net_addr_parse(o->nodes[i].addr, &a) < 0 ||
		    strlen(o->nodes[i].addr) >= OX_PEER_ADDR_MAX)
			return -EINVAL;
	}
	return self_found ? 0 : -EINVAL;
}

static int links_init(struct ox_peer *p, const struct ox_peer_opts *o)
{
	uint32_t k = 0;

	p->node_ids = calloc(o->nodes_n, sizeof(*p->node_ids));
	p->links = calloc(o->nodes_n, sizeof(*p->links));
	if (!p->node_ids || !p->links)
		return -ENOMEM;
	p->nodes_n = o->nodes_n;
	for (uint32_t i = 0; i < o->nodes_n; i++) {
		p->node_ids[i] = o->nodes[i].id;
		if (o->nodes[i].id == p->self)
			continue;
		struct peer_link *l = &p->links[k++];

		ox_peer_link_init(p, l);
		l->id = o->nodes[i].id;
		snprintf(l->addr_str, sizeof(l->addr_str), "%s", o->nodes[i].addr);
		OX_ASSERT(ox_net_addr_parse(o->nodes[i].addr, &l->addr) == 0);
		l->ticket = calloc(1, sizeof(*l->ticket));
		if (!l->ticket)
			return -ENOMEM;
		l->ticket->link = l;
		p->links_n = k;
	}
	OX_ASSERT(k == o->nodes_n - 1);
	return 0;
}

static void peer_free(struct ox_peer *p)
{
	for (uint32_t i = 0; i < p->links_n; i++)
		ox_peer_link_free(&p->links[i]);
	free(p->links);
	free(p->node_ids);
	free(p);
}

int ox_peer_create(struct ox_peer **out, struct ox_io *io,
		   const struct ox_peer_opts *opts)
{
	struct ox_net_opts nopts = { 0 };
	struct timespec ts;
	struct ox_peer *p;
	int rc;

	OX_ASSERT(out != NULL && io != NULL);
	*out = NULL;
	rc = opts_check(opts);
	if (rc < 0)
		return rc;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->io = io;
	p->self = opts->node_id;
	snprintf(p->cluster_id, sizeof(p->cluster_id), "%s", opts->cluster_id);
	snprintf(p->client_address, sizeof(p->client_address), "%s",
		 opts->client_address ? opts->client_address : "");
	p->send_bytes_max = opts->send_bytes_max ? opts->send_bytes_max :
						   SEND_BYTES_MAX_DEFAULT;
	p->reconnect_ms = opts->reconnect_ms ? opts->reconnect_ms :
					       RECONNECT_MS_DEFAULT;
	p->reconnect_max_ms = opts->reconnect_max_ms ? opts->reconnect_max_ms :
						       RECONNECT_MAX_MS_DEFAULT;
	if (p->reconnect_max_ms < p->reconnect_ms)
		p->reconnect_max_ms = p->reconnect_ms;
	p->owner_flushes = opts->owner_flushes;
	p->deliver = opts->deliver;
	p->forward = opts->forward;
	p->deliver_arg = opts->deliver_arg;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	p->rng = (opts->node_id * 0x9e3779b97f4a7c15ull) ^
		 (uint64_t)ts.tv_nsec ^ 1u;
	rc = links_init(p, opts);
	if (rc < 0)
		goto fail;
	// Each other node keeps one connection here, and a restarted one
	// may briefly have two; the rest is room for tools and strays.
	nopts.listen = opts->listen;
	nopts.conns_max = 2 * opts->nodes_n + 8;
	nopts.handler = peer_handle;
	nopts.handler_arg = p;
	rc = ox_net_create(&p->net, io, &nopts);
	if (rc < 0)
		goto fail;
	for (uint32_t i = 0; i < p->links_n; i++)
		ox_peer_link_start(&p->links[i]);
	*out = p;
	return 0;

fail:
	peer_free(p);
	return rc;
}

void ox_peer_destroy(struct ox_peer *p)
{
	if (!p)
		return;
	p->destroying = true;
	ox_net_destroy(p->net);
	for (uint32_t i = 0; i < p->links_n; i++)
		ox_peer_link_kill(&p->links[i]);
	// Shut-down sockets complete their operations; the turn and retry
	// timers expire within RETRY_NS; reconnect timers are left behind
	// (struct peer_ticket).
	while (p->ops > 0) {
		int rc = ox_io_run(p->io, 1);

		OX_ASSERT(rc >= 0); // a broken ring: callbacks would hit freed memory
	}
	for (uint32_t i = 0; i < p->links_n; i++)
		OX_ASSERT(p->links[i].state == LINK_DEAD);
	peer_free(p);
}

// --- the rest of the interface ----------------------------------------------

uint16_t ox_peer_port(const struct ox_peer *p)
{
	OX_ASSERT(p != NULL);
	return ox_net_port(p->net);
}

static struct peer_link *link_find(const struct ox_peer *p, uint64_t node)
{
	for (uint32_t i = 0; i < p->links_n; i++)
		if (p->links[i].id == node)
			return &p->links[i];
	return NULL;
}

int ox_peer_send(struct ox_peer *p, const struct ox_peer_group *group,
		 const struct ox_raft_msg *msg, const struct iovec *raw,
		 int iovcnt, ox_peer_release_cb release, void *release_arg)
{
	struct peer_link *l;
	int rc;

	OX_ASSERT(p != NULL && group != NULL && msg != NULL);
	l = link_find(p, msg->to);
	if (!l || msg->from != p->self || ox_peer_msg_check(msg) < 0 ||
	    iovcnt < 0 || iovcnt > OX_PEER_MSG_IOV_MAX ||
	    (iovcnt > 0 && !raw) || p->destroying)
		return -EINVAL;
	rc = ox_peer_link_send(l, group, msg, raw, iovcnt, release,
			       release_arg);
	if (rc == -ENOTCONN || rc == -ENOBUFS)
		p->stats.msgs_dropped++;
	return rc;
}

int ox_peer_forward(struct ox_peer *p, uint64_t node, const uint8_t *entry,
		    size_t len)
{
	struct peer_link *l;
	int rc;

	OX_ASSERT(p != NULL);
	l = link_find(p, node);
	if (!l || p->destroying || (entry == NULL && len > 0))
		return -EINVAL;
	if (len == 0 || len > OX_PEER_FORWARD_BYTES_MAX)
		return -EMSGSIZE;
	rc = ox_peer_link_forward(l, entry, len);
	if (rc == -ENOTCONN || rc == -ENOBUFS)
		p->stats.msgs_dropped++;
	return rc;
}

void ox_peer_flush(struct ox_peer *p)
{
	OX_ASSERT(p != NULL);
	flush_dirty(p, false);
}

int ox_peer_connected(const struct ox_peer *p, uint64_t node)
{
	const struct peer_link *l;

	OX_ASSERT(p != NULL);
	l = link_find(p, node);
	return l && l->state == LINK_UP;
}

void ox_peer_stats(const struct ox_peer *p, struct ox_peer_stats *out)
{
	OX_ASSERT(p != NULL && out != NULL);
	*out = p->stats;
}
