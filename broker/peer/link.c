// SPDX-License-Identifier: Apache-2.0
//
// The outgoing side of broker/peer: one connection ("link") to each other
// node, connecting and reconnecting with back-off, the frames queued for
// it, and their sending. ox_peer_send (peer.c) appends messages to the
// link's open frame; the end-of-turn timer or ox_peer_flush finishes the
// frame and sends it, several ox_io_sendv calls of at most OX_IO_IOV_MAX
// pieces each when it carries many raw pieces, one frame at a time. The
// invariants cited here (P1..P5) are listed in peer.c.
#include "broker/peer/peer_int.h"

#include "broker/io/io.h"
#include "broker/slog/slog.h"
#include "proto/assert.h"
#include "proto/error.h"
#include "proto/frame.h"

#include <errno.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

// A frame whose buffers grew past this is freed rather than pooled: one
// burst of appends must not pin its memory for the link's life.
#define POOL_BUF_BYTES_MAX ((size_t)1 << 20)
// Frames kept for reuse per link.
#define POOL_MAX 2u
// Bytes a raw piece's iovec and release entry count in queued_bytes, so
// that many empty pieces are bounded too.
#define PIECE_OVERHEAD 32u

static void link_closed(struct peer_link *l);
static void link_fail(struct peer_link *l, const char *what, int err);

// --- frames ----------------------------------------------------------------

static struct peer_frame *frame_get(struct peer_link *l)
{
	struct peer_frame *f = l->pool;

	if (f) {
		l->pool = f->next;
		l->pool_n--;
	} else {
		f = calloc(1, sizeof(*f));
		if (!f)
			return NULL;
	}
	f->next = NULL;
	f->body_len = 0;
	f->iov_n = 2; // the head and the body come first
	f->raw_len = 0;
	f->rel_n = 0;
	f->msgs_n = 0;
	f->forwards_n = 0;
	f->bytes = OX_PEER_HEAD_MAX;
	f->head_len = 0;
	return f;
}

static void frame_free(struct peer_frame *f)
{
	free(f->body);
	free(f->iov);
	free(f->rel);
	free(f);
}

static void frame_put(struct peer_link *l, struct peer_frame *f)
{
	if (l->pool_n >= POOL_MAX || f->body_cap > POOL_BUF_BYTES_MAX ||
	    f->iov_cap * sizeof(struct iovec) > POOL_BUF_BYTES_MAX) {
		frame_free(f);
		return;
	}
	f->next = l->pool;
	l->pool = f;
	l->pool_n++;
}

// Grows *buf (of *cap elements of size sz) to hold need; false without
// memory.
static bool grow(void **buf, size_t *cap, size_t need, size_t sz)
{
	size_t n = *cap ? *cap : 16;
	void *nb;

	if (need <= *cap)
		return true;
	while (n < need)
		n *= 2;
	nb = realloc(*buf, n * sz);
	if (!nb)
		return false;
	*buf = nb;
	*cap = n;
	return true;
}

// Runs the releases of f (sent or dropped), counts it, and pools it.
// Called from io callbacks and destroy only, never from ox_peer_send.
static void frame_done(struct peer_link *l, struct peer_frame *f, bool sent)
{
	struct ox_peer *p = l->p;

	OX_ASSERT(l->queued_bytes >= f->bytes); // P3
	l->queued_bytes -= f->bytes;
	if (sent) {
		p->stats.frames_sent++;
		p->stats.msgs_sent += f->msgs_n;
		p->stats.forwards_sent += f->forwards_n;
	} else {
		p->stats.msgs_dropped += f->msgs_n + f->forwards_n;
	}
	// A release may call ox_peer_send or ox_peer_flush: the frame is off
	// every list by now.
	for (size_t i = 0; i < f->rel_n; i++)
		f->rel[i].cb(f->rel[i].arg, sent);
	frame_put(l, f);
}

// Drops every frame not lent to the loop (P4): the open one and the
// queued ones, but not the one whose send is in flight.
static void frames_drop(struct peer_link *l)
{
	struct peer_frame *list = l->head, *f;

	if (l->send_armed) {
		OX_ASSERT(list != NULL);
		list = list->next;
		l->head->next = NULL;
		l->tail = l->head;
	} else {
		l->head = l->tail = NULL;
	}
	if (l->open) {
		l->open->next = list;
		list = l->open;
		l->open = NULL;
	}
	while (list) {
		f = list;
		list = f->next;
		f->next = NULL;
		frame_done(l, f, false);
	}
}

// Moves the open frame to the send queue with its head written.
static void frame_finish(struct peer_link *l)
{
	struct ox_peer *p = l->p;
	struct peer_frame *f = l->open;
	long head_len;

	if (!f)
		return;
	l->open = NULL;
	if (f->msgs_n == 0 && f->forwards_n == 0) {
		// Left empty by a message that found no memory.
		l->queued_bytes -= f->bytes;
		frame_put(l, f);
		return;
	}
	head_len = ox_peer_head_encode(f->head, ++l->correlation_id, p->self,
				       p->cluster_id, p->client_address,
				       f->body_len, f->raw_len);
	OX_ASSERT(head_len > 0); // P2: frames are cut before the limit
	f->head_len = (size_t)head_len;
	f->iov[0] = (struct iovec){ f->head, f->head_len };
	f->iov[1] = (struct iovec){ f->body, f->body_len };
	if (l->tail)
		l->tail->next = f;
	else
		l->head = f;
	l->tail = f;
}

// --- sending -----------------------------------------------------------------

static void send_start(struct peer_link *l, bool may_fail);

static void send_done(void *arg, int res)
{
	struct peer_link *l = arg;
	struct ox_peer *p = l->p;
	struct peer_frame *f = l->head;

	OX_ASSERT(l->ops > 0 && p->ops > 0 && l->send_armed && f != NULL);
	l->ops--;
	p->ops--;
	l->send_armed = false;
	if (res < 0 || l->state != LINK_UP) {
		if (l->state == LINK_UP)
			link_fail(l, "send failed", res);
		else if (l->state == LINK_CLOSING && l->ops == 0)
			link_closed(l);
		return;
	}
	l->sent_iov += l->chunk_iov;
	l->chunk_iov = 0;
	if (l->sent_iov == f->iov_n) {
		l->head = f->next;
		if (!l->head)
			l->tail = NULL;
		f->next = NULL;
		l->sent_iov = 0;
		frame_done(l, f, true);
	}
	send_start(l, true);
}

// Submits the next chunk of the first queued frame (one in flight).
static void send_start(struct peer_link *l, bool may_fail)
{
	struct peer_frame *f = l->head;
	size_t n;
	int rc;

	if (l->state != LINK_UP || l->send_armed || !f)
		return;
	OX_ASSERT(l->sent_iov < f->iov_n);
	n = f->iov_n - l->sent_iov;
	if (n > OX_IO_IOV_MAX)
		n = OX_IO_IOV_MAX;
	rc = ox_io_sendv(l->p->io, l->fd, f->iov + l->sent_iov, (int)n,
			 send_done, l);
	if (rc == 0) {
		l->send_armed = true;
		l->chunk_iov = n;
		l->ops++;
		l->p->ops++;
	} else if (rc == -EBUSY || !may_fail) {
		ox_peer_arm_retry(l->p);
	} else {
		link_fail(l, "cannot send", rc);
	}
}

static void recv_done(void *arg, int res);

static void recv_start(struct peer_link *l, bool may_fail)
{
	int rc;

	if (l->state != LINK_UP || l->recv_armed)
		return;
	rc = ox_io_recv(l->p->io, l->fd, l->rbuf, sizeof(l->rbuf), recv_done, l);
	if (rc == 0) {
		l->recv_armed = true;
		l->ops++;
		l->p->ops++;
	} else if (rc == -EBUSY || !may_fail) {
		ox_peer_arm_retry(l->p);
	} else {
		link_fail(l, "cannot receive", rc);
	}
}

static void recv_done(void *arg, int res)
{
	struct peer_link *l = arg;
	struct ox_peer *p = l->p;

	OX_ASSERT(l->ops > 0 && p->ops > 0 && l->recv_armed);
	l->ops--;
	p->ops--;
	l->recv_armed = false;
	if (l->state == LINK_UP) {
		// The connection is one-way: bytes from the other end break the
		// protocol, the end of the stream means it went away.
		if (res > 0)
			link_fail(l, "bytes received on a one-way connection", 0);
		else
			link_fail(l, res == 0 ? "closed by the other end" :
						"receive failed", res);
		return;
	}
	if (l->state == LINK_CLOSING && l->ops == 0)
		link_closed(l);
}

// --- connecting --------------------------------------------------------------

static void reconnect_done(void *arg, int res);

// A delay in [ms, 1.25 ms): nodes that lost each other at the same time
// do not all retry in step.
static uint64_t jitter_ns(struct ox_peer *p, uint32_t ms)
{
	uint64_t x = p->rng;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	p->rng = x;
	return (uint64_t)ms * 1000000u + x % ((uint64_t)ms * 250000u + 1);
}

// Arms the reconnect timer (LINK_WAIT), doubling the next delay.
static void reconnect_arm(struct peer_link *l)
{
	struct ox_peer *p = l->p;
	uint64_t ns = jitter_ns(p, l->backoff_ms);
	int rc;

	l->state = LINK_WAIT;
	rc = ox_io_timer(p->io, ns, reconnect_done, l->ticket);
	if (rc == 0) {
		l->ticket->armed = true;
	} else {
		// The loop is full or being destroyed: the retry timer tries
		// again (ox_peer_retry_run), and destroy does not need it.
		ox_peer_arm_retry(p);
	}
	l->backoff_ms = l->backoff_ms > p->reconnect_max_ms / 2 ?
				p->reconnect_max_ms :
				l->backoff_ms * 2;
}

static void connect_done(void *arg, int res)
{
	struct peer_link *l = arg;
	struct ox_peer *p = l->p;

	OX_ASSERT(l->ops > 0 && p->ops > 0 && l->state != LINK_WAIT);
	l->ops--;
	p->ops--;
	if (l->state != LINK_CONNECTING) {
		if (l->state == LINK_CLOSING && l->ops == 0)
			link_closed(l);
		return;
	}
	if (res < 0) {
		// Refused or unreachable: a node that is down. Not logged each
		// time: it would repeat every back-off while the node is away.
		close(l->fd);
		l->fd = -1;
		reconnect_arm(l);
		return;
	}
	l->state = LINK_UP;
	l->backoff_ms = p->reconnect_ms;
	p->stats.connects++;
	ox_slog(OX_SLOG_INFO, "peer connected node=%llu addr=%s",
		(unsigned long long)l->id, l->addr_str);
	recv_start(l, true);
}

void ox_peer_link_start(struct peer_link *l)
{
	struct ox_peer *p = l->p;
	int one = 1, rc;

	OX_ASSERT(l->state == LINK_WAIT && l->fd < 0 && l->ops == 0);
	l->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (l->fd < 0) {
		reconnect_arm(l);
		return;
	}
	(void)setsockopt(l->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	rc = ox_io_connect(p->io, l->fd, (const struct sockaddr *)&l->addr,
			   sizeof(l->addr), connect_done, l);
	if (rc < 0) {
		close(l->fd);
		l->fd = -1;
		reconnect_arm(l);
		return;
	}
	l->state = LINK_CONNECTING;
	l->ops++;
	p->ops++;
}

static void reconnect_done(void *arg, int res)
{
	struct peer_ticket *t = arg;
	struct peer_link *l = t->link;

	t->armed = false;
	if (!l) {
		free(t); // the transport is gone (see struct peer_ticket)
		return;
	}
	if (l->state == LINK_WAIT && !l->p->destroying)
		ox_peer_link_start(l);
}

// --- closing -----------------------------------------------------------------

// Shuts the connection down: what it held is dropped now, except what is
// lent to the loop, dropped once the last operation ends (link_closed).
static void link_fail(struct peer_link *l, const char *what, int err)
{
	OX_ASSERT(l->state == LINK_UP || l->state == LINK_CONNECTING);
	if (l->state == LINK_UP && !l->p->destroying)
		ox_slog(OX_SLOG_WARN, "peer connection lost node=%llu addr=%s "
			"reason=\"%s%s%s\"", (unsigned long long)l->id,
			l->addr_str, what, err < 0 ? ": " : "",
			err < 0 ? ox_strerror(err) : "");
	l->state = LINK_CLOSING;
	(void)shutdown(l->fd, SHUT_RDWR);
	frames_drop(l);
	if (l->ops == 0)
		link_closed(l);
}

// The last operation of a closing connection ended: the fd can go (P5).
static void link_closed(struct peer_link *l)
{
	OX_ASSERT(l->state == LINK_CLOSING && l->ops == 0);
	close(l->fd);
	l->fd = -1;
	l->sent_iov = l->chunk_iov = 0;
	frames_drop(l); // the frame that was in flight, if any
	OX_ASSERT(!l->head && !l->open && l->queued_bytes == 0);
	if (l->p->destroying) {
		l->state = LINK_DEAD;
		return;
	}
	reconnect_arm(l);
}

void ox_peer_link_kill(struct peer_link *l)
{
	if (l->state == LINK_UP || l->state == LINK_CONNECTING)
		link_fail(l, "shutting down", 0);
	else if (l->state == LINK_WAIT)
		l->state = LINK_DEAD;
	if (l->ticket->armed) {
		l->ticket->link = NULL; // its callback frees it
		l->ticket = NULL;
	}
}

// --- the interface to peer.c -------------------------------------------------

void ox_peer_link_init(struct ox_peer *p, struct peer_link *l)
{
	l->p = p;
	l->fd = -1;
	l->state = LINK_WAIT;
	l->backoff_ms = p->reconnect_ms;
}

void ox_peer_link_free(struct peer_link *l)
{
	struct peer_frame *f;

	OX_ASSERT(l->ops == 0 && !l->head && !l->open);
	while ((f = l->pool) != NULL) {
		l->pool = f->next;
		frame_free(f);
	}
	free(l->ticket);
}

void ox_peer_link_flush(struct peer_link *l, bool may_fail)
{
	frame_finish(l);
	send_start(l, may_fail);
	recv_start(l, may_fail);
	if (!l->p->destroying && l->state == LINK_WAIT && !l->ticket->armed)
		ox_peer_link_start(l); // its timer could not be armed
}

// Room in the open frame (starting a new one when full, P2), then the
// message and its raw pieces appended. Returns 0, -ENOBUFS or -ENOMEM.
static int frame_room(struct peer_link *l, size_t entry_max, uint64_t raw,
		      int iovcnt, bool rel)
{
	struct peer_frame *f = l->open;

	if (f && (f->msgs_n >= OX_PEER_FRAME_MSGS_MAX ||
		  f->forwards_n >= OX_PEER_FRAME_FORWARDS_MAX ||
		  OX_PEER_HEAD_MAX + f->body_len + entry_max + f->raw_len + raw >
			  OX_FRAME_BYTES_MAX)) {
		frame_finish(l);
		send_start(l, false);
		f = NULL;
	}
	if (!f) {
		if (l->queued_bytes + OX_PEER_HEAD_MAX > l->p->send_bytes_max)
			return -ENOBUFS;
		f = frame_get(l);
		if (!f)
			return -ENOMEM;
		l->open = f;
		l->queued_bytes += f->bytes;
	}
	if (!grow((void **)&f->body, &f->body_cap, f->body_len + entry_max, 1) ||
	    !grow((void **)&f->iov, &f->iov_cap, f->iov_n + (size_t)iovcnt,
		  sizeof(struct iovec)) ||
	    !grow((void **)&f->rel, &f->rel_cap, f->rel_n + (rel ? 1 : 0),
		  sizeof(struct peer_release)))
		return -ENOMEM;
	return 0;
}

// need bytes went into frame f: the link counts them and is flushed at
// the end of the turn.
static void queued(struct peer_link *l, struct peer_frame *f, size_t need)
{
	f->bytes += need;
	l->queued_bytes += need;
	if (!l->dirty) {
		l->dirty = true;
		l->dirty_next = l->p->dirty;
		l->p->dirty = l;
	}
	ox_peer_arm_turn(l->p);
}

int ox_peer_link_send(struct peer_link *l, const struct ox_peer_group *g,
		      const struct ox_raft_msg *msg, const struct iovec *raw,
		      int iovcnt, ox_peer_release_cb release, void *arg)
{
	struct peer_frame *f;
	uint64_t raw_len = 0;
	size_t need;
	int rc;

	if (l->state != LINK_UP)
		return -ENOTCONN;
	for (int i = 0; i < iovcnt; i++) {
		if (raw[i].iov_len > OX_FRAME_BYTES_MAX)
			return -EMSGSIZE;
		raw_len += raw[i].iov_len;
	}
	if (OX_PEER_HEAD_MAX + OX_PEER_MSG_BYTES_MAX + raw_len > OX_FRAME_BYTES_MAX)
		return -EMSGSIZE;
	// Counted at their bound: the exact size is known once encoded.
	need = OX_PEER_MSG_BYTES_MAX + raw_len + (size_t)iovcnt * PIECE_OVERHEAD;
	if (l->queued_bytes + need > l->p->send_bytes_max)
		return -ENOBUFS;
	rc = frame_room(l, OX_PEER_MSG_BYTES_MAX, raw_len, iovcnt,
			release != NULL);
	if (rc < 0)
		return rc;
	f = l->open;
	need = ox_peer_msg_encode(f->body + f->body_len, g, msg, f->raw_len,
				  raw_len);
	f->body_len += need;
	need += raw_len + (size_t)iovcnt * PIECE_OVERHEAD;
	for (int i = 0; i < iovcnt; i++)
		if (raw[i].iov_len > 0)
			f->iov[f->iov_n++] = raw[i];
	f->raw_len += raw_len;
	if (release)
		f->rel[f->rel_n++] = (struct peer_release){ release, arg };
	f->msgs_n++;
	queued(l, f, need);
	return 0;
}

int ox_peer_link_forward(struct peer_link *l, const uint8_t *entry,
			 size_t len)
{
	size_t need = OX_PEER_FORWARD_HEAD_MAX + len;
	struct peer_frame *f;
	int rc;

	OX_ASSERT(len > 0 && len <= OX_PEER_FORWARD_BYTES_MAX);
	if (l->state != LINK_UP)
		return -ENOTCONN;
	if (l->queued_bytes + need > l->p->send_bytes_max)
		return -ENOBUFS;
	rc = frame_room(l, need, 0, 0, false);
	if (rc < 0)
		return rc;
	f = l->open;
	f->body_len += ox_peer_forward_encode(f->body + f->body_len, entry,
					      len);
	f->forwards_n++;
	queued(l, f, need); // P3: counted at its bound, like a message
	return 0;
}
