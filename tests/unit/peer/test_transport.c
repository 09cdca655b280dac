// SPDX-License-Identifier: Apache-2.0
//
// Unit tests of broker/peer's transport on 127.0.0.1: three transports
// (nodes 1, 2, 3) on one io loop in the test's thread. Ports are reserved
// first: a socket bound with SO_REUSEADDR to port 0, never listening,
// holds each port for the test's life while the transport's listener binds
// the same port (Linux allows it while only one of them listens). So every
// transport knows the others' ports at create, and a transport created
// again gets its old port back. Each PEER_TEST runs under both io
// backends (suites peer_uring, skipped without io_uring, and peer_sync).
// The loop is run until a condition holds, with a 1 ms tick so it never
// blocks for long and a safety limit that fails the test rather than
// hang. Invariant numbers refer to peer.c.
#include "broker/io/io.h"
#include "broker/peer/peer.h"
#include "proto/envelope.pb-c.h"
#include "proto/frame.h"

#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define NODES 3
#define CLUSTER "c-peer"
#define MSGS_MAX 4096

struct node {
	struct ox_peer *p;
	uint64_t id;
	uint16_t port;
	int hold_fd; // keeps the port reserved
	char addr[32];
	char client_addr[32]; // what its frames tell the others
	// What was delivered to it.
	uint64_t got;
	uint64_t got_raw_bytes;
	uint64_t bad; // deliveries that did not match what was sent
	// Forwards delivered, their bytes, and those that did not match.
	uint64_t fwd;
	uint64_t fwd_bytes;
	uint64_t fwd_bad;
};

static struct ox_io *io;
static struct node nodes[NODES];
static struct ox_peer_node list[NODES];
static enum ox_io_backend backend;
static size_t send_bytes_max;
static bool owner_flushes;
static bool tick_armed;

// Releases, per message index: how many times, and with what.
static int released[MSGS_MAX];
static int released_sent[MSGS_MAX];

static void release_cb(void *arg, int sent)
{
	size_t i = (size_t)(uintptr_t)arg;

	cr_assert_lt(i, MSGS_MAX);
	released[i]++;
	released_sent[i] += sent ? 1 : 0;
}

// The raw bytes message i carries: none for every fifth, else 1..300
// bytes of a pattern of i.
static size_t raw_len_of(uint32_t i)
{
	return i % 5 == 0 ? 0 : 1 + (i * 37) % 300;
}

static uint8_t raw_byte(uint32_t i, size_t k)
{
	return (uint8_t)(i * 31 + k * 7 + 3);
}

static uint8_t raw_store[MSGS_MAX][300];

static void deliver(void *arg, const struct ox_peer_delivery *d)
{
	struct node *n = arg;
	uint32_t i = d->group.partition;

	char want[32];

	n->got++;
	n->got_raw_bytes += d->raw_len;
	// Every frame names its sender's client listener.
	snprintf(want, sizeof(want), "127.0.0.1:%u",
		 9000u + (unsigned)d->msg.from);
	if (strcmp(d->client_address, want) != 0) {
		n->bad++;
		return;
	}
	if (d->msg.to != n->id || d->group.topic_id != 42 ||
	    d->msg.type != OX_RAFT_MSG_APPEND || d->msg.term != i + 1u ||
	    d->raw_len != raw_len_of(i)) {
		n->bad++;
		return;
	}
	for (size_t k = 0; k < d->raw_len; k++)
		if (d->raw[k] != raw_byte(i, k)) {
			n->bad++;
			return;
		}
}

// Forward i holds fwd_len_of(i) bytes of fwd_byte(i, k), sent in order.
static size_t fwd_len_of(uint64_t i)
{
	return i == 5 ? OX_PEER_FORWARD_BYTES_MAX : 1 + (size_t)(i * 37 % 500);
}

static uint8_t fwd_byte(uint64_t i, size_t k)
{
	return (uint8_t)(i * 13 + k);
}

static void forwarded(void *arg, uint64_t from, const uint8_t *entry,
		      size_t len)
{
	struct node *n = arg;
	uint64_t i = n->fwd++;
	bool ok = from != n->id && len == fwd_len_of(i);

	for (size_t k = 0; ok && k < len; k++)
		ok = entry[k] == fwd_byte(i, k);
	n->fwd_bytes += len;
	n->fwd_bad += !ok;
}

static void tick_done(void *arg, int res)
{
	tick_armed = false;
}

// Runs the loop until cond holds; fails after 20 s, a limit no passing
// run comes near.
#define RUN_UNTIL(cond)                                                      \
	do {                                                                 \
		struct timespec t0_, t_;                                     \
		clock_gettime(CLOCK_MONOTONIC, &t0_);                        \
		while (!(cond)) {                                            \
			if (!tick_armed) {                                   \
				cr_assert_eq(ox_io_timer(io, 1000000, tick_done, \
							 NULL), 0);          \
				tick_armed = true;                           \
			}                                                    \
			cr_assert_geq(ox_io_run(io, 1), 0);                  \
			clock_gettime(CLOCK_MONOTONIC, &t_);                 \
			cr_assert_lt(t_.tv_sec - t0_.tv_sec, 20,             \
				     "timed out waiting: " #cond);           \
		}                                                            \
	} while (0)

// Runs the loop for about ms milliseconds.
static void run_for(int ms)
{
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &t);
		if ((t.tv_sec - t0.tv_sec) * 1000 +
			    (t.tv_nsec - t0.tv_nsec) / 1000000 >= ms)
			return;
		if (!tick_armed) {
			cr_assert_eq(ox_io_timer(io, 1000000, tick_done, NULL), 0);
			tick_armed = true;
		}
		cr_assert_geq(ox_io_run(io, 1), 0);
	}
}

static int reserve_port(uint16_t *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int one = 1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(fd, 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)), 0);
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

static void node_create(int k)
{
	snprintf(nodes[k].client_addr, sizeof(nodes[k].client_addr),
		 "127.0.0.1:%u", 9000u + (unsigned)nodes[k].id);
	struct ox_peer_opts o = {
		.node_id = nodes[k].id,
		.cluster_id = CLUSTER,
		.client_address = nodes[k].client_addr,
		.listen = nodes[k].addr,
		.nodes = list,
		.nodes_n = NODES,
		.send_bytes_max = send_bytes_max,
		.reconnect_ms = 5,
		.reconnect_max_ms = 40,
		.owner_flushes = owner_flushes,
		.deliver = deliver,
		.forward = forwarded,
		.deliver_arg = &nodes[k],
	};
	int rc = ox_peer_create(&nodes[k].p, io, &o);

	cr_assert_eq(rc, 0, "ox_peer_create: %s", strerror(-rc));
	cr_assert_eq(ox_peer_port(nodes[k].p), nodes[k].port);
}

static void node_destroy(int k)
{
	ox_peer_destroy(nodes[k].p);
	nodes[k].p = NULL;
}

// Creates the io loop and the transports of nodes 1..up (the others are
// down, with their ports reserved).
static void cluster_start(int up)
{
	struct ox_io_opts io_opts = { .backend = backend };
	int rc = ox_io_create(&io, &io_opts);

	cr_assert_eq(rc, 0, "ox_io_create: %s", strerror(-rc));
	memset(released, 0, sizeof(released));
	memset(released_sent, 0, sizeof(released_sent));
	for (uint32_t i = 0; i < MSGS_MAX; i++)
		for (size_t k = 0; k < raw_len_of(i); k++)
			raw_store[i][k] = raw_byte(i, k);
	for (int k = 0; k < NODES; k++) {
		memset(&nodes[k], 0, sizeof(nodes[k]));
		nodes[k].id = (uint64_t)k + 1;
		nodes[k].hold_fd = reserve_port(&nodes[k].port);
		snprintf(nodes[k].addr, sizeof(nodes[k].addr), "127.0.0.1:%u",
			 nodes[k].port);
		list[k] = (struct ox_peer_node){ nodes[k].id, nodes[k].addr };
	}
	for (int k = 0; k < up; k++)
		node_create(k);
}

static void cluster_stop(void)
{
	for (int k = 0; k < NODES; k++) {
		node_destroy(k);
		close(nodes[k].hold_fd);
	}
	ox_io_destroy(io);
	io = NULL;
	tick_armed = false;
	send_bytes_max = 0;
	owner_flushes = false;
}

static bool all_connected(int up)
{
	for (int a = 0; a < up; a++)
		for (int b = 0; b < up; b++)
			if (a != b && !ox_peer_connected(nodes[a].p, nodes[b].id))
				return false;
	return true;
}

static struct ox_peer_stats stats(int k)
{
	struct ox_peer_stats s;

	ox_peer_stats(nodes[k].p, &s);
	return s;
}

// Queues message i (group 42/i) from node a to node b with its raw bytes
// in two pieces when it has more than one byte.
static int send_msg(int a, int b, uint32_t i)
{
	struct ox_raft_msg m = {
		.type = OX_RAFT_MSG_APPEND,
		.from = nodes[a].id,
		.to = nodes[b].id,
		.term = i + 1u,
	};
	struct ox_peer_group g = { 42, i };
	size_t len = raw_len_of(i), half = len / 2;
	struct iovec iov[2] = {
		{ raw_store[i], half },
		{ raw_store[i] + half, len - half },
	};

	return ox_peer_send(nodes[a].p, &g, &m, len ? iov : NULL, len ? 2 : 0,
			    release_cb, (void *)(uintptr_t)i);
}

static void skip_without_uring(void)
{
	struct ox_io_opts o = { .backend = OX_IO_BACKEND_URING };
	struct ox_io *probe = NULL;
	int rc = ox_io_create(&probe, &o);

	if (rc < 0)
		cr_skip_test("io_uring unavailable here: %s", strerror(-rc));
	ox_io_destroy(probe);
}

TestSuite(peer_uring);
TestSuite(peer_sync);
TestSuite(peer_api);

#define PEER_TEST(name)                                \
	static void name(void);                        \
	Test(peer_uring, name)                         \
	{                                              \
		skip_without_uring();                  \
		backend = OX_IO_BACKEND_URING;         \
		name();                                \
	}                                              \
	Test(peer_sync, name)                          \
	{                                              \
		backend = OX_IO_BACKEND_SYNC;          \
		name();                                \
	}                                              \
	static void name(void)

// --- forwards ------------------------------------------------------------

#define FORWARDS 40

PEER_TEST(forwards_go_with_the_messages_and_arrive_whole)
{
	uint8_t *buf = malloc(OX_PEER_FORWARD_BYTES_MAX + 1);
	uint64_t bytes = 0;

	cr_assert_not_null(buf);
	cluster_start(2); // node 3 is down
	RUN_UNTIL(all_connected(2));
	cr_assert_eq(send_msg(0, 1, 0), 0);
	for (uint64_t i = 0; i < FORWARDS; i++) {
		size_t len = fwd_len_of(i);

		for (size_t k = 0; k < len; k++)
			buf[k] = fwd_byte(i, k);
		cr_assert_eq(ox_peer_forward(nodes[0].p, nodes[1].id, buf, len),
			     0);
		bytes += len;
	}
	cr_assert_eq(ox_peer_forward(nodes[0].p, nodes[0].id, buf, 1), -EINVAL);
	cr_assert_eq(ox_peer_forward(nodes[0].p, 99, buf, 1), -EINVAL);
	cr_assert_eq(ox_peer_forward(nodes[0].p, nodes[1].id, buf, 0),
		     -EMSGSIZE);
	cr_assert_eq(ox_peer_forward(nodes[0].p, nodes[1].id, buf,
				     OX_PEER_FORWARD_BYTES_MAX + 1), -EMSGSIZE);
	cr_assert_eq(ox_peer_forward(nodes[0].p, nodes[2].id, buf, 1),
		     -ENOTCONN);
	RUN_UNTIL(nodes[1].fwd == FORWARDS && nodes[1].got == 1);
	struct ox_peer_stats a = stats(0), b = stats(1);
	cr_assert_eq(nodes[1].fwd_bad, 0);
	cr_assert_eq(nodes[1].fwd_bytes, bytes);
	cr_assert_eq(a.forwards_sent, FORWARDS);
	cr_assert_eq(b.forwards_received, FORWARDS);
	// At most OX_PEER_FRAME_FORWARDS_MAX forwards a frame.
	cr_assert_geq(a.frames_sent, (FORWARDS + OX_PEER_FRAME_FORWARDS_MAX - 1) /
					     OX_PEER_FRAME_FORWARDS_MAX);
	cr_assert_eq(nodes[0].fwd, 0);
	cluster_stop();
	free(buf);
}

// --- batching ------------------------------------------------------------

#define MANY 1000

PEER_TEST(messages_of_many_groups_in_one_turn_go_in_one_frame)
{
	cluster_start(NODES);
	RUN_UNTIL(all_connected(NODES));
	for (uint32_t i = 0; i < MANY; i++)
		cr_assert_eq(send_msg(0, 1, i), 0);
	// Another node's messages go in a frame of their own.
	for (uint32_t i = MANY; i < MANY + 10; i++)
		cr_assert_eq(send_msg(0, 2, i), 0);
	for (uint32_t i = 0; i < MANY + 10; i++)
		cr_assert_eq(released[i], 0); // P1: never inside send
	RUN_UNTIL(nodes[1].got == MANY && nodes[2].got == 10);
	RUN_UNTIL(stats(0).msgs_sent == MANY + 10);
	struct ox_peer_stats a = stats(0), b = stats(1);
	cr_assert_eq(a.frames_sent, 2);
	cr_assert_eq(a.msgs_sent, MANY + 10);
	cr_assert_eq(a.msgs_dropped, 0);
	cr_assert_eq(b.frames_received, 1);
	cr_assert_eq(b.msgs_received, MANY);
	cr_assert_eq(nodes[1].bad, 0);
	cr_assert_eq(nodes[2].bad, 0);
	uint64_t raw = 0;
	for (uint32_t i = 0; i < MANY; i++)
		raw += raw_len_of(i);
	cr_assert_eq(nodes[1].got_raw_bytes, raw);
	for (uint32_t i = 0; i < MANY + 10; i++) {
		cr_assert_eq(released[i], 1, "message %u released %d times", i,
			     released[i]);
		cr_assert_eq(released_sent[i], 1);
	}
	// Another turn, another frame.
	cr_assert_eq(send_msg(1, 0, 5), 0);
	cr_assert_eq(send_msg(1, 0, 6), 0);
	RUN_UNTIL(nodes[0].got == 2);
	RUN_UNTIL(stats(1).frames_sent == 1);
	cr_assert_eq(stats(1).msgs_sent, 2);
	cluster_stop();
}

// An owner that ends turns itself (P1 holds): its flush sends the turn
// in one frame, and without a flush only the 1 ms backstop sends, never
// the end of the loop's pass.
PEER_TEST(an_owner_that_flushes_ends_the_turn)
{
	struct timespec t0, t1;

	owner_flushes = true;
	cluster_start(2);
	RUN_UNTIL(all_connected(2));
	for (uint32_t i = 0; i < MANY; i++)
		cr_assert_eq(send_msg(0, 1, i), 0);
	ox_peer_flush(nodes[0].p);
	for (uint32_t i = 0; i < MANY; i++)
		cr_assert_eq(released[i], 0); // P1: never inside flush
	RUN_UNTIL(nodes[1].got == MANY);
	RUN_UNTIL(stats(0).msgs_sent == MANY);
	cr_assert_eq(stats(0).frames_sent, 1);
	cr_assert_eq(stats(1).frames_received, 1);
	cr_assert_eq(nodes[1].bad, 0);
	for (uint32_t i = 0; i < MANY; i++)
		cr_assert_eq(released_sent[i], 1);
	// No flush: the backstop, armed at the send, cannot fire sooner
	// (the one the first sends armed has fired by then).
	run_for(5);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	cr_assert_eq(send_msg(0, 1, 7), 0);
	RUN_UNTIL(nodes[1].got == MANY + 1);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	cr_assert_geq((t1.tv_sec - t0.tv_sec) * 1000000000ll +
			      (t1.tv_nsec - t0.tv_nsec),
		      1000000ll);
	cr_assert_eq(stats(0).frames_sent, 2);
	cluster_stop();
}

PEER_TEST(flush_sends_before_the_end_of_the_turn)
{
	cluster_start(2);
	RUN_UNTIL(all_connected(2));
	cr_assert_eq(send_msg(0, 1, 1), 0);
	ox_peer_flush(nodes[0].p);
	cr_assert_eq(send_msg(0, 1, 2), 0);
	RUN_UNTIL(nodes[1].got == 2);
	RUN_UNTIL(stats(0).msgs_sent == 2);
	cr_assert_eq(stats(0).frames_sent, 2);
	cr_assert_eq(nodes[1].bad, 0);
	cluster_stop();
}

// Messages whose raw parts together pass the frame limit are cut into
// frames below it (P2); one that could never fit is refused.
#define BIG (20u << 20)

PEER_TEST(frames_are_cut_at_the_size_limit)
{
	uint8_t *big = malloc(BIG);
	struct ox_peer_group g = { 42, 0 };
	struct ox_raft_msg m = { .type = OX_RAFT_MSG_SNAPSHOT, .from = 1,
				 .to = 2, .term = 1 };
	struct iovec iov = { big, BIG };
	int rel = 0;

	cr_assert(big != NULL);
	memset(big, 0x5a, BIG);
	send_bytes_max = 256u << 20;
	cluster_start(2);
	RUN_UNTIL(all_connected(2));
	for (uint32_t i = 0; i < 4; i++) {
		g.partition = 100000 + i;
		cr_assert_eq(ox_peer_send(nodes[0].p, &g, &m, &iov, 1,
					  release_cb, (void *)(uintptr_t)i), 0);
	}
	iov.iov_len = OX_FRAME_BYTES_MAX;
	cr_assert_eq(ox_peer_send(nodes[0].p, &g, &m, &iov, 1, release_cb,
				  &rel), -EMSGSIZE);
	RUN_UNTIL(nodes[1].got == 4);
	RUN_UNTIL(stats(0).msgs_sent == 4);
	cr_assert_eq(stats(0).frames_sent, 2); // 3 x 20 MiB, then 1
	cr_assert_eq(nodes[1].got_raw_bytes, 4ull * BIG);
	for (uint32_t i = 0; i < 4; i++)
		cr_assert_eq(released_sent[i], 1);
	cluster_stop();
	free(big);
}

PEER_TEST(a_full_queue_drops_with_enobufs)
{
	int rc = 0;
	uint32_t i;

	send_bytes_max = 64u << 10;
	cluster_start(2);
	RUN_UNTIL(all_connected(2));
	for (i = 0; i < MSGS_MAX && rc == 0; i++)
		rc = send_msg(0, 1, i);
	cr_assert_eq(rc, -ENOBUFS);
	uint32_t queued = i - 1;
	cr_assert_gt(queued, 10);
	cr_assert_eq(released[queued], 0); // refused: the caller keeps raw
	cr_assert_eq(stats(0).msgs_dropped, 1);
	RUN_UNTIL(nodes[1].got == queued);
	cr_assert_eq(nodes[1].bad, 0);
	// The queue drained: sending works again.
	RUN_UNTIL(stats(0).msgs_sent == queued);
	cr_assert_eq(send_msg(0, 1, queued), 0);
	RUN_UNTIL(nodes[1].got == queued + 1);
	cluster_stop();
}

// --- connections -------------------------------------------------------------

PEER_TEST(a_down_node_gives_enotconn_and_a_restarted_one_is_reconnected)
{
	cluster_start(2); // node 3 down
	RUN_UNTIL(all_connected(2));
	cr_assert_eq(send_msg(0, 2, 1), -ENOTCONN);
	cr_assert_eq(released[1], 0);
	cr_assert_eq(stats(0).msgs_dropped, 1);
	cr_assert_eq(ox_peer_connected(nodes[0].p, 3), 0);
	cr_assert_eq(stats(0).connects, 1);

	// Node 2 goes away: node 1 notices, drops, and reconnects once it is
	// back on its port.
	node_destroy(1);
	RUN_UNTIL(!ox_peer_connected(nodes[0].p, 2));
	cr_assert_eq(send_msg(0, 1, 2), -ENOTCONN);
	run_for(50); // a few failed reconnects, backing off
	node_create(1);
	RUN_UNTIL(ox_peer_connected(nodes[0].p, 2) &&
		  ox_peer_connected(nodes[1].p, 1));
	cr_assert_eq(stats(0).connects, 2);
	cr_assert_eq(send_msg(0, 1, 3), 0);
	RUN_UNTIL(nodes[1].got == 1);
	cr_assert_eq(nodes[1].bad, 0);

	// Node 3 comes up late: both others connect to it.
	node_create(2);
	RUN_UNTIL(all_connected(NODES));
	cr_assert_eq(send_msg(1, 2, 4), 0);
	RUN_UNTIL(nodes[2].got == 1);
	cluster_stop();
}

PEER_TEST(queued_messages_are_released_unsent_when_the_node_goes_away)
{
	cluster_start(2);
	RUN_UNTIL(all_connected(2));
	for (uint32_t i = 0; i < 20; i++)
		cr_assert_eq(send_msg(0, 1, i), 0);
	// Destroying the sender drops its queue: every release runs once,
	// from destroy (P1), as not sent.
	node_destroy(0);
	for (uint32_t i = 0; i < 20; i++) {
		cr_assert_eq(released[i], 1);
		cr_assert_eq(released_sent[i], 0);
	}
	cluster_stop();
}

// A raw socket to node index k's listener.
static int raw_connect(int k)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons(nodes[k].port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	cr_assert_geq(fd, 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int rc = connect(fd, (struct sockaddr *)&a, sizeof(a));
	cr_assert(rc == 0 || errno == EINPROGRESS);
	return fd;
}

// Whether fd was closed by the other end (reads 0 or fails with a reset).
static bool closed_by_peer(int fd)
{
	char c;
	ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT);

	return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

// Sends a frame with the given header fields and body bytes.
static void send_frame(int fd, uint32_t api_key, uint32_t api_version,
		       const void *body, uint32_t body_len)
{
	Oxbow__RequestHeader h = OXBOW__REQUEST_HEADER__INIT;
	uint8_t buf[512];
	size_t hl;

	h.api_key = (Oxbow__ApiKey)api_key;
	h.api_version = api_version;
	hl = oxbow__request_header__get_packed_size(&h);
	cr_assert_lt(8 + hl + 4 + body_len, sizeof(buf));
	cr_assert_eq(ox_frame_prefix_encode(buf, hl, 4 + body_len), 0);
	oxbow__request_header__pack(&h, buf + 8);
	memcpy(buf + 8 + hl, &body_len, 4); // little-endian hosts
	memcpy(buf + 8 + hl + 4, body, body_len);
	RUN_UNTIL(send(fd, buf, 8 + hl + 4 + body_len, MSG_NOSIGNAL) ==
		  (ssize_t)(8 + hl + 4 + body_len));
}

PEER_TEST(garbage_closes_its_connection_and_others_keep_working)
{
	static const uint8_t junk[] = { 0x1a, 0x05, 0xff, 0xff };
	static const uint8_t ok_body[] = { 0 };

	cluster_start(2);
	RUN_UNTIL(all_connected(2));
	// A frame of another API, a RAFT frame whose body does not parse,
	// one of an unknown version, and bytes that are no frame at all:
	// each connection is closed, counted, and the node's own link from
	// node 1 is untouched.
	int fds[4];
	for (int j = 0; j < 4; j++)
		fds[j] = raw_connect(1);
	send_frame(fds[0], 3 /* PRODUCE */, 1, ok_body, 1);
	send_frame(fds[1], 19, 1, junk, sizeof(junk));
	send_frame(fds[2], 19, 9, ok_body, 0);
	RUN_UNTIL(send(fds[3], "\xff\xff\xff\xff garbage", 12, MSG_NOSIGNAL) == 12);
	for (int j = 0; j < 4; j++)
		RUN_UNTIL(closed_by_peer(fds[j]));
	cr_assert_eq(stats(1).frames_refused, 3); // the 4th never framed
	for (int j = 0; j < 4; j++)
		close(fds[j]);
	cr_assert(ox_peer_connected(nodes[0].p, 2));
	cr_assert_eq(send_msg(0, 1, 7), 0);
	RUN_UNTIL(nodes[1].got == 1);
	cr_assert_eq(nodes[1].bad, 0);
	cr_assert_eq(stats(0).connects, 1);
	cluster_stop();
}

PEER_TEST(bytes_on_the_one_way_connection_close_it_and_it_reconnects)
{
	// Node 1 listens on a plain socket in place of node 2: it accepts
	// node 1's connection and writes to it, which a one-way connection
	// never carries.
	cluster_start(0);
	close(nodes[1].hold_fd);
	int one = 1;
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons(nodes[1].port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)), 0);
	cr_assert_eq(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(listen(lfd, 8), 0);
	nodes[1].hold_fd = lfd;
	node_create(0);
	int cfd = -1;
	RUN_UNTIL((cfd = accept(lfd, NULL, NULL)) >= 0);
	RUN_UNTIL(ox_peer_connected(nodes[0].p, 2));
	cr_assert_eq(send(cfd, "x", 1, MSG_NOSIGNAL), 1);
	RUN_UNTIL(!ox_peer_connected(nodes[0].p, 2));
	RUN_UNTIL(closed_by_peer(cfd));
	close(cfd);
	// It connects again after its back-off.
	RUN_UNTIL((cfd = accept(lfd, NULL, NULL)) >= 0);
	RUN_UNTIL(stats(0).connects == 2);
	close(cfd);
	cluster_stop();
}

// --- arguments ---------------------------------------------------------------

Test(peer_api, bad_options_and_messages_are_einval)
{
	struct ox_io *lio;
	struct ox_peer *p = NULL;
	struct ox_peer_node two[2] = { { 1, "127.0.0.1:1" }, { 2, "127.0.0.1:2" } };
	struct ox_peer_node dup[2] = { { 1, "127.0.0.1:1" }, { 1, "127.0.0.1:2" } };
	struct ox_peer_node bad[2] = { { 1, "127.0.0.1:1" }, { 2, "nohost" } };
	struct ox_peer_opts o = {
		.node_id = 1, .cluster_id = CLUSTER, .listen = "127.0.0.1:0",
		.nodes = two, .nodes_n = 2, .deliver = deliver,
	};

	cr_assert_eq(ox_io_create(&lio, &(struct ox_io_opts){
					      .backend = OX_IO_BACKEND_SYNC }), 0);
	o.node_id = 3; // not in nodes
	cr_assert_eq(ox_peer_create(&p, lio, &o), -EINVAL);
	o.node_id = 1;
	o.nodes = dup;
	cr_assert_eq(ox_peer_create(&p, lio, &o), -EINVAL);
	o.nodes = bad;
	cr_assert_eq(ox_peer_create(&p, lio, &o), -EINVAL);
	o.nodes = two;
	o.listen = "127.0.0.1:99999";
	cr_assert_eq(ox_peer_create(&p, lio, &o), -EINVAL);
	o.listen = "127.0.0.1:0";
	o.deliver = NULL;
	cr_assert_eq(ox_peer_create(&p, lio, &o), -EINVAL);
	o.deliver = deliver;
	cr_assert_eq(ox_peer_create(&p, lio, &o), 0);
	cr_assert_gt(ox_peer_port(p), 0);

	struct ox_peer_group g = { 1, 1 };
	struct ox_raft_msg m = { .type = OX_RAFT_MSG_VOTE, .from = 1, .to = 2 };
	m.from = 2;
	cr_assert_eq(ox_peer_send(p, &g, &m, NULL, 0, NULL, NULL), -EINVAL);
	m.from = 1;
	m.to = 1; // itself
	cr_assert_eq(ox_peer_send(p, &g, &m, NULL, 0, NULL, NULL), -EINVAL);
	m.to = 9; // unknown
	cr_assert_eq(ox_peer_send(p, &g, &m, NULL, 0, NULL, NULL), -EINVAL);
	m.to = 2;
	m.type = (enum ox_raft_msg_type)0;
	cr_assert_eq(ox_peer_send(p, &g, &m, NULL, 0, NULL, NULL), -EINVAL);
	m.type = OX_RAFT_MSG_APPEND;
	m.runs_n = OX_RAFT_MSG_RUNS_MAX + 1;
	cr_assert_eq(ox_peer_send(p, &g, &m, NULL, 0, NULL, NULL), -EINVAL);
	m.runs_n = 0;
	cr_assert_eq(ox_peer_send(p, &g, &m, NULL, 1, NULL, NULL), -EINVAL);
	// Node 2 is not listening: not connected.
	cr_assert_eq(ox_peer_send(p, &g, &m, NULL, 0, NULL, NULL), -ENOTCONN);
	ox_peer_destroy(p);
	ox_peer_destroy(NULL);
	ox_io_destroy(lio);
}
