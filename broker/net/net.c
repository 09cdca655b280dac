// SPDX-License-Identifier: Apache-2.0
//
// The listener side of broker/net: address parsing, the listening socket,
// the accept loop, the retry timer, counters, and creation and
// destruction of the whole net. Reading and framing live in conn.c,
// responses in respond.c. oxbowd creates one net per shard on the shard's
// io loop; broker/server receives its requests through the handler.
//
// Design notes
//
// Everything runs on the loop's thread. Each io operation the net submits
// carries the net or a connection as its argument; net->ops counts them,
// and ox_net_destroy runs the loop until it drops to zero, so no callback
// can reach freed memory.
//
// Invariants (cited by number in assertions and tests):
//  1. A connection is freed only when it is closed, has no io operation
//     in flight (its fd is closed then, after the last callback: a
//     reused fd number must not receive a stale recv) and every request
//     it handed out has been ended. Requests outlive their connection
//     and the net itself; a response to a closed connection is dropped.
//  2. A connection hands out a request only while it holds fewer than
//     inflight_max requests, at most inflight_bytes_max bytes of them
//     and at most send_bytes_max bytes of responses; otherwise it is not
//     read either (paused), and the kernel's socket buffers push back on
//     the client. Ending a request or finishing a send resumes it.
//  3. A recv is in flight only when no complete frame waits in the read
//     buffer, and at most one per connection; a big frame's recv never
//     reads past the frame's end.
//  4. net->conns lists every connection not yet freed or detached;
//     conn_count counts the open ones, paused_count the open paused ones.
//  5. Responses go out in ox_net_respond order; one send per connection
//     is in flight, carrying up to OX_NET_SEND_BATCH responses.
//  6. net->memory_bytes is the sum over the net's connections of
//     inflight_bytes, the size of a partly received big frame and
//     out_bytes. While it is at or over memory_bytes_max, a connection
//     holding any of these is not read (invariant 2 applies to the sum);
//     one holding none may take a request, so a budget held by clients
//     that never read stalls nobody else. Dropping below the budget
//     kicks every paused connection.
#include "broker/net/net_int.h"

#include "broker/io/io.h"
#include "broker/slog/slog.h"
#include "proto/assert.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

// A listener's port in use is tried again this often, this many times
// (2 s in all).
#define LISTEN_RETRY_NS 20000000L
#define LISTEN_RETRIES 100u
#define CONNS_MAX_DEFAULT 1024u
#define INFLIGHT_MAX_DEFAULT 256u
#define INFLIGHT_BYTES_MAX_DEFAULT ((size_t)128 << 20)
#define SEND_BYTES_MAX_DEFAULT ((size_t)64 << 20)
// A node's request and response bytes: room for a few connections at
// their per-connection limits and many at ordinary sizes, a fraction of
// a small server's memory.
#define MEMORY_BYTES_MAX_DEFAULT ((size_t)512 << 20)

int ox_net_addr_parse(const char *s, struct sockaddr_in *out)
{
	const char *colon = s ? strrchr(s, ':') : NULL;
	char host[INET_ADDRSTRLEN];
	unsigned long port = 0;
	size_t host_len;

	if (!colon)
		return -EINVAL;
	host_len = (size_t)(colon - s);
	if (host_len == 0 || host_len >= sizeof(host))
		return -EINVAL;
	memcpy(host, s, host_len);
	host[host_len] = '\0';
	const char *p = colon + 1;
	if (*p == '\0' || strlen(p) > 5)
		return -EINVAL;
	for (; *p; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		port = port * 10 + (unsigned long)(*p - '0');
	}
	if (port > 65535)
		return -EINVAL;
	*out = (struct sockaddr_in){
		.sin_family = AF_INET,
		.sin_port = htons((uint16_t)port),
	};
	if (strcmp(host, "localhost") == 0)
		out->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	else if (inet_pton(AF_INET, host, &out->sin_addr) != 1)
		return -EINVAL;
	return 0;
}

// Binds fd to addr. A port in use is tried again for a while: a process
// that just died (a node restarted after a crash) may still hold it, as
// the kernel tears its io_uring instance down, with the sockets that
// instance holds, after the process is gone (about 15 ms here).
static int bind_patiently(int fd, const struct sockaddr_in *addr)
{
	const struct timespec pause = { 0, LISTEN_RETRY_NS };

	for (unsigned k = 0;; k++) {
		if (bind(fd, (const struct sockaddr *)addr, sizeof(*addr)) == 0)
			return 0;
		if (errno != EADDRINUSE || k == LISTEN_RETRIES)
			return -errno;
		if (k == 0)
			ox_slog(OX_SLOG_INFO, "address in use, waiting for it "
				"port=%u", (unsigned)ntohs(addr->sin_port));
		nanosleep(&pause, NULL);
	}
}

// Opens a non-blocking listener on addr; *port_out is the port bound.
static int listener_open(const struct sockaddr_in *addr, int *fd_out,
			 uint16_t *port_out)
{
	struct sockaddr_in bound;
	socklen_t len = sizeof(bound);
	int one = 1, fd, rc;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0) {
		rc = -errno;
		goto fail;
	}
	rc = bind_patiently(fd, addr);
	if (rc < 0)
		goto fail;
	if (listen(fd, OX_NET_LISTEN_BACKLOG) < 0 ||
	    getsockname(fd, (struct sockaddr *)&bound, &len) < 0) {
		rc = -errno;
		goto fail;
	}
	*fd_out = fd;
	*port_out = ntohs(bound.sin_port);
	return 0;

fail:
	close(fd);
	return rc;
}

static int opts_resolve(const struct ox_net_opts *opts, struct ox_net_opts *o)
{
	if (!opts || !opts->listen || !opts->handler)
		return -EINVAL;
	*o = *opts;
	o->listen = NULL; // not kept: the caller's string may go away
	if (o->conns_max == 0)
		o->conns_max = CONNS_MAX_DEFAULT;
	if (o->inflight_max == 0)
		o->inflight_max = INFLIGHT_MAX_DEFAULT;
	if (o->inflight_bytes_max == 0)
		o->inflight_bytes_max = INFLIGHT_BYTES_MAX_DEFAULT;
	if (o->send_bytes_max == 0)
		o->send_bytes_max = SEND_BYTES_MAX_DEFAULT;
	if (o->memory_bytes_max == 0)
		o->memory_bytes_max = MEMORY_BYTES_MAX_DEFAULT;
	return 0;
}

static void accept_arm(struct ox_net *net);

// Kicks every deferred connection. The list is taken whole first: a kick
// may defer its connection again (-EBUSY), for a later pass.
static void deferred_run(struct ox_net *net)
{
	struct net_conn *list = net->deferred;

	net->deferred = NULL;
	while (list) {
		struct net_conn *conn = list;

		list = conn->deferred_next;
		conn->deferred_next = NULL;
		conn->deferred = false;
		ox_net_conn_kick(conn);
	}
}

static void kick_timer_done(void *arg, int res)
{
	struct ox_net *net = arg;

	OX_ASSERT(net->ops > 0 && net->kick_armed);
	net->ops--;
	net->kick_armed = false;
	deferred_run(net);
}

static void retry_timer_done(void *arg, int res)
{
	struct ox_net *net = arg;

	OX_ASSERT(net->ops > 0 && net->retry_armed);
	net->ops--;
	net->retry_armed = false;
	net->accept_resting = false;
	deferred_run(net);
	accept_arm(net);
}

// Arms one of the net's two timers if it is not armed. When even a timer
// cannot be submitted (the loop's pool is full), ox_net_poke tries again
// from the net's next callback.
static void timer_arm(struct ox_net *net, bool retry, uint64_t ns)
{
	bool *armed = retry ? &net->retry_armed : &net->kick_armed;

	if (*armed)
		return;
	if (ox_io_timer(net->io, ns, retry ? retry_timer_done : kick_timer_done,
			net) == 0) {
		*armed = true;
		net->ops++;
	}
}

void ox_net_defer(struct net_conn *conn, bool retry)
{
	struct ox_net *net = conn->net;

	OX_ASSERT(net != NULL && conn->open);
	if (!conn->deferred) {
		conn->deferred = true;
		conn->deferred_next = net->deferred;
		net->deferred = conn;
	}
	if (retry)
		timer_arm(net, true, OX_NET_RETRY_NS);
	else
		timer_arm(net, false, 0);
}

void ox_net_defer_cancel(struct net_conn *conn)
{
	struct net_conn **link;

	if (!conn->deferred)
		return;
	for (link = &conn->net->deferred; *link; link = &(*link)->deferred_next) {
		if (*link == conn) {
			*link = conn->deferred_next;
			break;
		}
	}
	conn->deferred = false;
	conn->deferred_next = NULL;
}

void ox_net_poke(struct ox_net *net)
{
	if (net->deferred && !net->kick_armed && !net->retry_armed)
		timer_arm(net, true, OX_NET_RETRY_NS);
}

bool ox_net_mem_over(const struct ox_net *net)
{
	return net->memory_bytes >= net->opts.memory_bytes_max;
}

void ox_net_mem_add(struct net_conn *conn, size_t bytes)
{
	struct ox_net *net = conn->net;

	if (!net)
		return; // detached: the net is gone
	OX_ASSERT(net->memory_bytes <= SIZE_MAX - bytes); // invariant 6
	net->memory_bytes += bytes;
}

void ox_net_mem_sub(struct net_conn *conn, size_t bytes)
{
	struct ox_net *net = conn->net;

	if (!net)
		return;
	OX_ASSERT(net->memory_bytes >= bytes); // invariant 6
	bool was_over = ox_net_mem_over(net);
	net->memory_bytes -= bytes;
	if (!was_over || ox_net_mem_over(net) || net->destroying)
		return;
	// Back under the budget: every connection it held back may read.
	for (struct net_conn *c = net->conns; c; c = c->next)
		if (c->open && c->paused)
			ox_net_defer(c, false);
}

static void listener_close(struct ox_net *net)
{
	if (net->lfd < 0)
		return;
	// A pending accept completes (-EINVAL) once the listener is shut
	// down; the fd is closed only after that callback.
	(void)shutdown(net->lfd, SHUT_RDWR);
	if (!net->accept_armed) {
		close(net->lfd);
		net->lfd = -1;
	}
}

// Whether accept failed for want of a resource the kernel may free soon.
static bool accept_starved(int res)
{
	return res == -EMFILE || res == -ENFILE || res == -ENOBUFS ||
	       res == -ENOMEM;
}

static void accept_done(void *arg, int res)
{
	struct ox_net *net = arg;

	OX_ASSERT(net->ops > 0 && net->accept_armed);
	net->ops--;
	net->accept_armed = false;
	if (res >= 0) {
		if (net->accepting)
			ox_net_conn_open(net, res);
		else
			close(res);
	} else if (accept_starved(res)) {
		ox_slog(OX_SLOG_WARN, "accept failed, retrying port=%u "
			"error=\"%s\" retry_ms=%llu", net->port, strerror(-res),
			OX_NET_ACCEPT_BACKOFF_NS / 1000000ull);
		net->accept_resting = true;
		timer_arm(net, true, OX_NET_ACCEPT_BACKOFF_NS);
	} else if (res != -ECONNABORTED && res != -EINTR && res != -EPERM &&
		   res != -EPROTO && res != -EAGAIN) {
		// The listener is shut down or broken: stop for good.
		if (net->accepting)
			ox_slog(OX_SLOG_ERROR, "stopped accepting port=%u "
				"error=\"%s\"", net->port, strerror(-res));
		net->accepting = false;
	}
	if (!net->accepting)
		listener_close(net);
	accept_arm(net);
	ox_net_poke(net);
}

static void accept_arm(struct ox_net *net)
{
	int rc;

	if (!net->accepting || net->accept_armed || net->accept_resting)
		return;
	rc = ox_io_accept(net->io, net->lfd, accept_done, net);
	if (rc == 0) {
		net->accept_armed = true;
		net->ops++;
	} else if (rc == -EBUSY) {
		timer_arm(net, true, OX_NET_RETRY_NS);
	} else {
		ox_slog(OX_SLOG_ERROR, "stopped accepting port=%u error=\"%s\"",
			net->port, strerror(-rc));
		net->accepting = false;
		listener_close(net);
	}
}

int ox_net_create(struct ox_net **out, struct ox_io *io,
		  const struct ox_net_opts *opts)
{
	struct sockaddr_in addr;
	struct ox_net *net;
	int rc;

	OX_ASSERT(out != NULL && io != NULL);
	*out = NULL;
	net = calloc(1, sizeof(*net));
	if (!net)
		return -ENOMEM;
	rc = opts_resolve(opts, &net->opts);
	if (rc < 0)
		goto fail;
	rc = ox_net_addr_parse(opts->listen, &addr);
	if (rc < 0)
		goto fail;
	rc = listener_open(&addr, &net->lfd, &net->port);
	if (rc < 0)
		goto fail;
	net->io = io;
	net->accepting = true;
	accept_arm(net);
	*out = net;
	return 0;

fail:
	free(net);
	return rc;
}

uint16_t ox_net_port(const struct ox_net *net)
{
	OX_ASSERT(net != NULL);
	return net->port;
}

void ox_net_stop_accepting(struct ox_net *net)
{
	OX_ASSERT(net != NULL);
	net->accepting = false;
	listener_close(net);
}

uint32_t ox_net_conn_count(const struct ox_net *net)
{
	OX_ASSERT(net != NULL);
	return net->conn_count;
}

uint32_t ox_net_conns_paused(const struct ox_net *net)
{
	OX_ASSERT(net != NULL);
	return net->paused_count;
}

size_t ox_net_memory_bytes(const struct ox_net *net)
{
	OX_ASSERT(net != NULL);
	return net->memory_bytes;
}

uint64_t ox_net_requests_total(const struct ox_net *net)
{
	OX_ASSERT(net != NULL);
	return net->requests_total;
}

void ox_net_destroy(struct ox_net *net)
{
	struct net_conn *conn, *next;

	if (!net)
		return;
	net->destroying = true;
	net->accepting = false;
	listener_close(net);
	for (conn = net->conns; conn; conn = next) {
		next = conn->next; // closing may free it
		ox_net_conn_close(conn, NULL);
	}
	// Shut-down sockets complete their recvs and sends, the listener
	// its accept; timers expire within OX_NET_ACCEPT_BACKOFF_NS.
	while (net->ops > 0) {
		int rc = ox_io_run(net->io, 1);

		// Only a broken ring fails; freeing the net then would let
		// its callbacks run on freed memory later.
		OX_ASSERT(rc >= 0);
	}
	OX_ASSERT(net->lfd < 0 && net->conn_count == 0);
	// What is left waits only for requests the handler holds: detach
	// it, and ending them frees it (invariant 1).
	for (conn = net->conns; conn; conn = next) {
		next = conn->next;
		OX_ASSERT(!conn->open && conn->ops == 0 && conn->inflight > 0);
		conn->net = NULL;
		conn->prev = conn->next = NULL;
	}
	free(net);
}
