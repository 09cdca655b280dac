// SPDX-License-Identifier: Apache-2.0
//
// One client connection of broker/net: opening it on an accepted socket,
// reading into its fixed buffer, cutting frames (proto/FRAMING.md),
// parsing their RequestHeader with protobuf-c, handing requests to the
// handler under the back-pressure limits, and closing it. Responses are
// respond.c's. Invariant numbers refer to net.c.
//
// Reading: small frames arrive many to a recv in the 64 KiB read buffer
// and are copied once, each into its own request. A frame longer than
// OX_NET_DIRECT_BYTES that is not complete gets its request at once (as
// soon as its 8-byte prefix is in): what the buffer holds of it is
// copied, and the rest is received straight into the request, never past
// its end, so a 20 MiB produce is not copied through the buffer.
#include "broker/net/net_int.h"

#include "broker/io/io.h"
#include "broker/slog/slog.h"
#include "proto/assert.h"
#include "proto/envelope.pb-c.h"
#include "proto/error.h"
#include "proto/frame.h"
#include "proto/varint.h"
#include "proto/wire.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

// Whether conn may hand out one more request (invariants 2 and 6): under
// its own limits and, while the net is over its memory budget, only if it
// holds no request and no response (a partly received frame is already
// counted: finishing it adds nothing).
static bool can_take(const struct net_conn *conn)
{
	const struct ox_net_opts *o = &conn->net->opts;

	if (ox_net_mem_over(conn->net) &&
	    (conn->inflight > 0 || conn->out_bytes > 0))
		return false;
	return conn->inflight < o->inflight_max &&
	       conn->inflight_bytes <= o->inflight_bytes_max &&
	       conn->out_bytes <= o->send_bytes_max;
}

// Keeps conn->paused and the net's gauge in step with the connection.
static void pause_update(struct net_conn *conn)
{
	bool paused = conn->open && !conn->recv_armed && !can_take(conn);

	if (paused == conn->paused)
		return;
	conn->paused = paused;
	if (paused)
		conn->net->paused_count++;
	else
		conn->net->paused_count--;
}

static void peer_format(int fd, char *out, size_t cap)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	char host[INET_ADDRSTRLEN];

	if (getpeername(fd, (struct sockaddr *)&sa, &len) < 0 ||
	    sa.sin_family != AF_INET ||
	    !inet_ntop(AF_INET, &sa.sin_addr, host, sizeof(host))) {
		snprintf(out, cap, "fd %d", fd);
		return;
	}
	snprintf(out, cap, "%s:%u", host, (unsigned)ntohs(sa.sin_port));
}

void ox_net_conn_open(struct ox_net *net, int fd)
{
	char peer[OX_NET_PEER_MAX];
	struct net_conn *conn;
	int one = 1;

	peer_format(fd, peer, sizeof(peer));
	if (net->conn_count >= net->opts.conns_max) {
		ox_slog(OX_SLOG_WARN, "connection refused peer=%s conns=%u "
			"reason=\"conns_max reached\"", peer, net->conn_count);
		close(fd);
		return;
	}
	conn = calloc(1, sizeof(*conn));
	if (!conn || !(conn->rbuf = malloc(OX_NET_RBUF_BYTES))) {
		ox_slog(OX_SLOG_WARN, "connection refused peer=%s "
			"reason=\"out of memory\"", peer);
		free(conn);
		close(fd);
		return;
	}
	// Responses are gathered into one sendmsg already; Nagle would only
	// hold the last one of a burst back.
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	memcpy(conn->peer, peer, sizeof(peer));
	conn->net = net;
	conn->fd = fd;
	conn->id = ++net->next_conn_id;
	conn->open = true;
	conn->next = net->conns;
	if (net->conns)
		net->conns->prev = conn;
	net->conns = conn;
	net->conn_count++;
	ox_net_conn_kick(conn);
}

void ox_net_conn_close(struct net_conn *conn, const char *reason)
{
	struct ox_net *net = conn->net;

	if (!conn->open)
		return;
	if (reason)
		ox_slog(OX_SLOG_WARN, "connection closed peer=%s reason=\"%s\"",
			conn->peer, reason);
	if (conn->paused)
		net->paused_count--;
	conn->paused = false;
	conn->open = false;
	net->conn_count--;
	// Completes the recv and send in flight; the fd itself is closed
	// after their callbacks (invariant 1).
	(void)shutdown(conn->fd, SHUT_RDWR);
	ox_net_defer_cancel(conn);
	ox_net_out_drop_queued(conn);
	ox_net_conn_maybe_free(conn);
}

void ox_net_conn_maybe_free(struct net_conn *conn)
{
	if (conn->open || conn->busy || conn->ops > 0)
		return;
	if (conn->fd >= 0) {
		close(conn->fd);
		conn->fd = -1;
		if (conn->big) // a frame not complete: never handed out
			ox_net_mem_sub(conn, conn->big_total);
		free(conn->big);
		conn->big = NULL;
		free(conn->rbuf);
		conn->rbuf = NULL;
	}
	if (conn->inflight > 0)
		return; // requests still out (invariant 1)
	OX_ASSERT(conn->out_head == NULL && conn->inflight_bytes == 0);
	if (conn->net) { // invariant 4
		if (conn->prev)
			conn->prev->next = conn->next;
		else
			conn->net->conns = conn->next;
		if (conn->next)
			conn->next->prev = conn->prev;
	}
	free(conn);
}

static struct ox_net_req *req_alloc(struct net_conn *conn, size_t total,
				    uint32_t header_len)
{
	// The client id is at most as long as the header that carries it.
	struct ox_net_req *req = malloc(sizeof(*req) + total + header_len + 1);

	if (!req)
		return NULL;
	*req = (struct ox_net_req){
		.conn = conn,
		.frame_bytes = total,
		.header_len = header_len,
		.frame = (uint8_t *)(req + 1),
	};
	req->client_id = (char *)req->frame + total;
	return req;
}

// Parses the header of a complete frame and hands the request on; a
// header that does not parse closes the connection, a payload whose body
// prefix is malformed is answered INVALID_REQUEST here.
static void deliver(struct net_conn *conn, struct ox_net_req *req)
{
	struct ox_net *net = conn->net;
	struct ox_net_req_info *info = &req->info;
	const uint8_t *payload = req->frame + OX_FRAME_PREFIX_BYTES + req->header_len;
	size_t payload_len = req->frame_bytes - OX_FRAME_PREFIX_BYTES - req->header_len;
	Oxbow__RequestHeader *h;
	size_t id_len = 0;

	net->requests_total++;
	h = oxbow__request_header__unpack(NULL, req->header_len,
					  req->frame + OX_FRAME_PREFIX_BYTES);
	if (!h) {
		free(req);
		ox_net_conn_close(conn, "request header does not parse");
		return;
	}
	if (h->client_id)
		id_len = strlen(h->client_id);
	OX_ASSERT(id_len <= req->header_len); // its bytes are in the header
	memcpy(req->client_id, h->client_id ? h->client_id : "", id_len);
	req->client_id[id_len] = '\0';
	info->api_key = (uint32_t)h->api_key;
	info->api_version = h->api_version;
	info->correlation_id = h->correlation_id;
	info->client_id = req->client_id;
	info->conn_id = conn->id;
	oxbow__request_header__free_unpacked(h, NULL);
	conn->inflight++;
	conn->inflight_bytes += req->frame_bytes;
	ox_net_mem_add(conn, req->frame_bytes);
	if (ox_payload_split(payload, payload_len, &info->body, &info->body_len,
			     (const uint8_t **)&info->raw, &info->raw_len) < 0) {
		struct ox_net_response resp = {
			.error = -EINVAL,
			.error_message = "malformed payload: the body length "
					 "prefix runs past the frame",
		};

		info->body = NULL;
		info->body_len = 0;
		info->raw = NULL;
		info->raw_len = 0;
		ox_net_respond(req, &resp);
		return;
	}
	net->opts.handler(net->opts.handler_arg, req);
}

// Closes conn for a bad frame prefix; rc from ox_frame_prefix_decode.
static void prefix_reject(struct net_conn *conn, const uint8_t *p, int rc)
{
	char reason[96];

	if (rc == -OX_ETOOBIG)
		snprintf(reason, sizeof(reason), "frame length %u over limit",
			 ox_load_le32(p));
	else
		snprintf(reason, sizeof(reason),
			 "header length %u does not fit frame length %u",
			 ox_load_le32(p + 4), ox_load_le32(p));
	ox_net_conn_close(conn, reason);
}

// Takes the next frame out of the read buffer. Returns true if a request
// was delivered (more may follow), false when more bytes are needed or
// the connection closed.
static bool frame_next(struct net_conn *conn)
{
	const uint8_t *p = conn->rbuf + conn->rpos;
	size_t avail = conn->rlen - conn->rpos, total;
	uint32_t frame_len, header_len;
	struct ox_net_req *req;
	int rc;

	rc = ox_frame_prefix_decode(p, avail, &frame_len, &header_len);
	if (rc == -OX_ETRUNCATED)
		return false;
	if (rc < 0) {
		prefix_reject(conn, p, rc);
		return false;
	}
	total = (size_t)frame_len + 4;
	if (avail < total && total <= OX_NET_DIRECT_BYTES)
		return false; // it will fit: wait in the read buffer
	req = req_alloc(conn, total, header_len);
	if (!req) {
		ox_net_conn_close(conn, "out of memory for a frame");
		return false;
	}
	if (avail < total) { // invariant 3: the rest goes straight in
		memcpy(req->frame, p, avail);
		conn->rpos = conn->rlen;
		conn->big = req;
		conn->big_have = avail;
		conn->big_total = total;
		ox_net_mem_add(conn, total);
		return false;
	}
	memcpy(req->frame, p, total);
	conn->rpos += total;
	deliver(conn, req);
	return true;
}

// Delivers what has been received, as long as the limits allow.
static void parse(struct net_conn *conn)
{
	while (conn->open && can_take(conn)) {
		if (conn->big) {
			struct ox_net_req *req = conn->big;

			if (conn->big_have < conn->big_total)
				return;
			conn->big = NULL;
			// Counted again as a request if its header parses.
			ox_net_mem_sub(conn, conn->big_total);
			deliver(conn, req);
			continue;
		}
		if (!frame_next(conn))
			return;
	}
}

static void recv_done(void *arg, int res)
{
	struct net_conn *conn = arg;
	struct ox_net *net = conn->net; // set while an op is in flight

	OX_ASSERT(conn->ops > 0 && conn->recv_armed && net->ops > 0);
	conn->ops--;
	net->ops--;
	conn->recv_armed = false;
	// Closing below must not free conn under our feet: busy holds it.
	conn->busy = true;
	if (!conn->open)
		; // shut down while the recv was in flight
	else if (res == 0 && (conn->big || conn->rpos < conn->rlen))
		ox_net_conn_close(conn, "end of stream inside a frame");
	else if (res <= 0)
		ox_net_conn_close(conn, NULL); // the client left or reset
	else if (conn->big)
		conn->big_have += (size_t)res;
	else
		conn->rlen += (size_t)res;
	conn->busy = false;
	ox_net_conn_kick(conn); // or frees it, once closed
	ox_net_poke(net);
}

static void recv_arm(struct net_conn *conn)
{
	void *buf;
	size_t len;
	int rc;

	OX_ASSERT(!conn->recv_armed); // invariant 3
	if (conn->big) {
		buf = conn->big->frame + conn->big_have;
		len = conn->big_total - conn->big_have;
	} else {
		// What is left is the start of one frame shorter than
		// OX_NET_DIRECT_BYTES: move it to the front to make room.
		conn->rlen -= conn->rpos;
		memmove(conn->rbuf, conn->rbuf + conn->rpos, conn->rlen);
		conn->rpos = 0;
		buf = conn->rbuf + conn->rlen;
		len = OX_NET_RBUF_BYTES - conn->rlen;
	}
	OX_ASSERT(len > 0);
	rc = ox_io_recv(conn->net->io, conn->fd, buf, len, recv_done, conn);
	if (ox_net_submitted(conn, rc, "read"))
		conn->recv_armed = true;
}

bool ox_net_submitted(struct net_conn *conn, int rc, const char *what)
{
	char reason[64];

	if (rc == 0) {
		conn->ops++;
		conn->net->ops++;
		return true;
	}
	if (rc == -EBUSY) {
		ox_net_defer(conn, true);
		return false;
	}
	snprintf(reason, sizeof(reason), "cannot %s: %s", what, strerror(-rc));
	ox_net_conn_close(conn, reason);
	return false;
}

void ox_net_conn_kick(struct net_conn *conn)
{
	if (!conn->open) {
		ox_net_conn_maybe_free(conn);
		return;
	}
	if (conn->busy)
		return; // a kick further up the stack sees the change
	conn->busy = true;
	if (!conn->recv_armed)
		parse(conn);
	ox_net_send_start(conn);
	if (conn->open && !conn->recv_armed && can_take(conn))
		recv_arm(conn);
	if (conn->open)
		pause_update(conn);
	conn->busy = false;
	ox_net_conn_maybe_free(conn);
}

void ox_net_req_end(struct ox_net_req *req)
{
	struct net_conn *conn = req->conn;

	OX_ASSERT(conn->inflight > 0 && conn->inflight_bytes >= req->frame_bytes);
	conn->inflight--;
	conn->inflight_bytes -= req->frame_bytes;
	ox_net_mem_sub(conn, req->frame_bytes);
	free(req);
	if (!conn->open) {
		ox_net_conn_maybe_free(conn);
		return;
	}
	// Inside a kick of this connection, the kick sends and reads on
	// once it has parsed what it can; otherwise send now, and resume
	// reading from a timer callback: delivering here would call the
	// handler from inside whatever ended this request.
	if (conn->busy)
		return;
	ox_net_send_start(conn);
	if (!conn->recv_armed && can_take(conn))
		ox_net_defer(conn, false);
}

const struct ox_net_req_info *ox_net_req_info(const struct ox_net_req *req)
{
	OX_ASSERT(req != NULL);
	return &req->info;
}

int ox_net_req_conn_open(const struct ox_net_req *req)
{
	OX_ASSERT(req != NULL);
	return req->conn->open;
}

void ox_net_finish(struct ox_net_req *req)
{
	OX_ASSERT(req != NULL);
	ox_net_req_end(req);
}

void ox_net_reject(struct ox_net_req *req, const char *reason)
{
	OX_ASSERT(req != NULL);
	ox_net_conn_close(req->conn, reason && *reason ? reason :
							  "request rejected");
	ox_net_req_end(req);
}
