// SPDX-License-Identifier: Apache-2.0
//
// Unit tests of broker/net. A net runs on its own io loop in a server
// thread, with a handler that echoes each request's body and raw bytes
// back (or holds requests until the test says how to answer them);
// clients are plain blocking sockets on 127.0.0.1 in the test thread.
// Every NET_TEST runs twice: in suite net_uring (skipped, saying why,
// without io_uring) and in suite net_sync. The server thread publishes
// its counters after every loop pass; the test waits for a counter to
// reach a state (never for a time), with a generous safety limit that
// fails the test rather than hang. Invariant numbers refer to net.c.
#include "broker/io/io.h"
#include "broker/net/net.h"
#include "proto/envelope.pb-c.h"
#include "proto/frame.h"
#include "proto/wire.h"

#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define API_ECHO 1u
#define API_HOLD 2u // held until the test sends CMD_ANSWER
#define HELD_MAX 1024

enum cmd {
	CMD_NONE = 0,
	CMD_STOP,
	CMD_ANSWER,         // answer every held request, in arrival order
	CMD_ANSWER_REVERSE, // ... newest first
	CMD_STOP_ACCEPTING,
};

struct srv {
	struct ox_io *io;
	struct ox_net *net;
	pthread_t thread;
	int efd;
	atomic_int cmd;
	atomic_int cmd_done; // commands executed
	bool stop;
	struct ox_net_req *held[HELD_MAX];
	int held_n;
	// Published by the server thread after every loop pass.
	atomic_uint conns, paused, held_pub;
	atomic_ullong requests;
	atomic_size_t memory;
	atomic_int answered;
};

static void answer(struct ox_net_req *req)
{
	const struct ox_net_req_info *in = ox_net_req_info(req);
	void *copy = in->raw_len ? malloc(in->raw_len) : NULL;
	struct ox_net_response resp = {
		.body = in->body,
		.body_len = in->body_len,
		.raw_owner = copy,
		.raw = copy,
		.raw_len = in->raw_len,
	};

	if (copy)
		memcpy(copy, in->raw, in->raw_len);
	ox_net_respond(req, &resp);
}

static void handler(void *arg, struct ox_net_req *req)
{
	struct srv *s = arg;
	const struct ox_net_req_info *in = ox_net_req_info(req);

	if (in->api_key == API_HOLD && s->held_n < HELD_MAX) {
		s->held[s->held_n++] = req;
		return;
	}
	answer(req);
}

static void answer_held(struct srv *s, bool reverse)
{
	for (int i = 0; i < s->held_n; i++)
		answer(s->held[reverse ? s->held_n - 1 - i : i]);
	atomic_fetch_add(&s->answered, s->held_n);
	s->held_n = 0;
}

static void cmd_cb(void *arg, int res);

static void cmd_arm(struct srv *s)
{
	int rc = ox_io_poll(s->io, s->efd, POLLIN, cmd_cb, s);

	cr_assert_eq(rc, 0, "ox_io_poll: %s", strerror(-rc));
}

static void cmd_cb(void *arg, int res)
{
	struct srv *s = arg;
	uint64_t v;

	cr_assert_gt(res, 0, "poll: %s", strerror(-res));
	cr_assert_eq(read(s->efd, &v, sizeof(v)), (ssize_t)sizeof(v));
	switch (atomic_exchange(&s->cmd, CMD_NONE)) {
	case CMD_STOP:
		s->stop = true;
		break;
	case CMD_ANSWER:
		answer_held(s, false);
		break;
	case CMD_ANSWER_REVERSE:
		answer_held(s, true);
		break;
	case CMD_STOP_ACCEPTING:
		ox_net_stop_accepting(s->net);
		break;
	default:
		break;
	}
	atomic_fetch_add(&s->cmd_done, 1);
	if (!s->stop)
		cmd_arm(s);
}

static void publish(struct srv *s)
{
	atomic_store(&s->conns, ox_net_conn_count(s->net));
	atomic_store(&s->paused, ox_net_conns_paused(s->net));
	atomic_store(&s->requests, ox_net_requests_total(s->net));
	atomic_store(&s->memory, ox_net_memory_bytes(s->net));
	atomic_store(&s->held_pub, (unsigned)s->held_n);
}

static void *srv_main(void *arg)
{
	struct srv *s = arg;

	cmd_arm(s);
	publish(s);
	while (!s->stop) {
		int rc = ox_io_run(s->io, 1);

		cr_assert_geq(rc, 0, "ox_io_run: %s", strerror(-rc));
		publish(s);
	}
	ox_net_destroy(s->net);
	// Requests still held outlive the net: ending them now frees them
	// without sending (invariant 1); ASan sees any leak.
	answer_held(s, false);
	ox_io_destroy(s->io);
	return NULL;
}

static enum ox_io_backend backend;

static void srv_start(struct srv *s, struct ox_net_opts *o)
{
	struct ox_io_opts io_opts = { .backend = backend };
	int rc;

	memset(s, 0, sizeof(*s));
	rc = ox_io_create(&s->io, &io_opts);
	cr_assert_eq(rc, 0, "ox_io_create: %s", strerror(-rc));
	s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	cr_assert_geq(s->efd, 0);
	o->listen = o->listen ? o->listen : "127.0.0.1:0";
	o->handler = handler;
	o->handler_arg = s;
	rc = ox_net_create(&s->net, s->io, o);
	cr_assert_eq(rc, 0, "ox_net_create: %s", strerror(-rc));
	cr_assert_gt(ox_net_port(s->net), 0);
	cr_assert_eq(pthread_create(&s->thread, NULL, srv_main, s), 0);
}

static void srv_cmd(struct srv *s, enum cmd c)
{
	uint64_t one = 1;
	int before = atomic_load(&s->cmd_done);

	atomic_store(&s->cmd, c);
	cr_assert_eq(write(s->efd, &one, sizeof(one)), (ssize_t)sizeof(one));
	if (c == CMD_STOP)
		return;
	while (atomic_load(&s->cmd_done) == before) {
		struct timespec ts = { 0, 1000000 };

		nanosleep(&ts, NULL);
	}
}

static void srv_stop(struct srv *s)
{
	srv_cmd(s, CMD_STOP);
	pthread_join(s->thread, NULL);
	close(s->efd);
}

// Waits until *v (published by the server thread) reaches want; fails
// after 20 s, a limit no passing run comes near.
#define WAIT_FOR(cond)                                                     \
	do {                                                               \
		for (int w_ = 0; !(cond); w_++) {                          \
			struct timespec ts_ = { 0, 1000000 };              \
			cr_assert_lt(w_, 20000, "timed out waiting: " #cond); \
			nanosleep(&ts_, NULL);                             \
		}                                                          \
	} while (0)

static void skip_without_uring(void)
{
	struct ox_io_opts o = { .backend = OX_IO_BACKEND_URING };
	struct ox_io *io = NULL;
	int rc = ox_io_create(&io, &o);

	if (rc < 0)
		cr_skip_test("io_uring unavailable here: %s", strerror(-rc));
	ox_io_destroy(io);
}

TestSuite(net_uring);
TestSuite(net_sync);
TestSuite(net_api);

#define NET_TEST(name)                                 \
	static void name(void);                        \
	Test(net_uring, name)                          \
	{                                              \
		skip_without_uring();                  \
		backend = OX_IO_BACKEND_URING;         \
		name();                                \
	}                                              \
	Test(net_sync, name)                           \
	{                                              \
		backend = OX_IO_BACKEND_SYNC;          \
		name();                                \
	}                                              \
	static void name(void)

// --- the client side -----------------------------------------------------

static int cli_connect(const struct srv *s)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	struct timeval tv = { .tv_sec = 20 }; // a safety limit, see WAIT_FOR
	int one = 1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(fd, 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons(ox_net_port(s->net));
	cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0,
		     "connect: %s", strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static void send_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		cr_assert_gt(n, 0, "send: %s", strerror(errno));
		p += n;
		len -= (size_t)n;
	}
}

// Reads exactly len bytes; returns false at end of stream or reset.
static bool recv_all(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = recv(fd, p, len, 0);

		if (n < 0 && errno == EINTR)
			continue;
		cr_assert(n >= 0 || errno == ECONNRESET, "recv: %s", strerror(errno));
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

// A request frame in a malloc'd buffer (*len bytes).
static uint8_t *frame_new(uint32_t api_key, uint64_t corr, const void *body,
			  size_t body_len, const void *raw, size_t raw_len,
			  size_t *len)
{
	Oxbow__RequestHeader h = OXBOW__REQUEST_HEADER__INIT;
	size_t hl, total;
	uint8_t *f;

	h.api_key = (Oxbow__ApiKey)api_key;
	h.api_version = 1;
	h.correlation_id = corr;
	h.client_id = "test-client";
	hl = oxbow__request_header__get_packed_size(&h);
	total = 8 + hl + 4 + body_len + raw_len;
	f = malloc(total);
	cr_assert_not_null(f);
	cr_assert_eq(ox_frame_prefix_encode(f, hl, 4 + body_len + raw_len), 0);
	oxbow__request_header__pack(&h, f + 8);
	ox_payload_prefix_encode(f + 8 + hl, (uint32_t)body_len);
	if (body_len)
		memcpy(f + 8 + hl + 4, body, body_len);
	if (raw_len)
		memcpy(f + 8 + hl + 4 + body_len, raw, raw_len);
	*len = total;
	return f;
}

struct resp {
	uint64_t corr;
	int error_code;
	uint8_t *payload; // malloc'd: body prefix, body, raw
	size_t payload_len;
	const uint8_t *body, *raw;
	size_t body_len, raw_len;
};

// Reads one response; false if the connection ended first.
static bool resp_read(int fd, struct resp *r)
{
	uint8_t prefix[8], *rest;
	uint32_t flen, hl;
	Oxbow__ResponseHeader *h;

	if (!recv_all(fd, prefix, 4))
		return false;
	flen = (uint32_t)prefix[0] | (uint32_t)prefix[1] << 8 |
	       (uint32_t)prefix[2] << 16 | (uint32_t)prefix[3] << 24;
	cr_assert(flen >= 4 && flen <= OX_FRAME_BYTES_MAX);
	rest = malloc(flen);
	cr_assert_not_null(rest);
	cr_assert(recv_all(fd, rest, flen), "response cut short");
	memcpy(prefix + 4, rest, 4);
	cr_assert_eq(ox_frame_prefix_decode(prefix, 8, &flen, &hl), 0);
	h = oxbow__response_header__unpack(NULL, hl, rest + 4);
	cr_assert_not_null(h, "response header does not parse");
	r->corr = h->correlation_id;
	r->error_code = h->error_code;
	oxbow__response_header__free_unpacked(h, NULL);
	r->payload_len = flen - 4 - hl;
	r->payload = malloc(r->payload_len + 1);
	memcpy(r->payload, rest + 4 + hl, r->payload_len);
	free(rest);
	cr_assert_eq(ox_payload_split(r->payload, r->payload_len, &r->body,
				      &r->body_len, &r->raw, &r->raw_len), 0);
	return true;
}

static void fill(uint8_t *buf, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(seed * 131u + i * 7u + (i >> 10));
}

// Reads one echo response and checks it against what was sent.
static void expect_echo(int fd, uint64_t corr, const uint8_t *body,
			size_t body_len, const uint8_t *raw, size_t raw_len)
{
	struct resp r;

	cr_assert(resp_read(fd, &r), "no response %llu", (unsigned long long)corr);
	cr_assert_eq(r.corr, corr, "got %llu for %llu", (unsigned long long)r.corr,
		     (unsigned long long)corr);
	cr_assert_eq(r.error_code, 0);
	cr_assert_eq(r.body_len, body_len);
	cr_assert_eq(r.raw_len, raw_len);
	cr_assert(body_len == 0 || memcmp(r.body, body, body_len) == 0);
	cr_assert(raw_len == 0 || memcmp(r.raw, raw, raw_len) == 0);
	free(r.payload);
}

static void echo_once(int fd, uint64_t corr)
{
	size_t len;
	uint8_t *f = frame_new(API_ECHO, corr, "ping", 4, "raw!", 4, &len);

	send_all(fd, f, len);
	expect_echo(fd, corr, (const uint8_t *)"ping", 4, (const uint8_t *)"raw!", 4);
	free(f);
}

// True once the server has closed fd (recv sees the end or a reset).
static bool closed_by_server(int fd)
{
	uint8_t b[64];

	for (;;) {
		ssize_t n = recv(fd, b, sizeof(b), 0);

		if (n > 0)
			continue;
		if (n < 0 && errno == EINTR)
			continue;
		cr_assert(n == 0 || errno == ECONNRESET, "recv: %s", strerror(errno));
		return true;
	}
}

// --- the tests -----------------------------------------------------------

#define MANY 200

NET_TEST(many_frames_in_one_send)
{
	struct ox_net_opts o = { 0 };
	static uint8_t body[MANY][40], raw[MANY][300];
	uint8_t *all = NULL;
	size_t all_len = 0;
	struct srv s;
	int fd;

	srv_start(&s, &o);
	fd = cli_connect(&s);
	for (int i = 0; i < MANY; i++) {
		size_t len;
		uint8_t *f;

		fill(body[i], sizeof(body[i]), (unsigned)i);
		fill(raw[i], sizeof(raw[i]), (unsigned)i + 1000);
		f = frame_new(API_ECHO, (uint64_t)i + 1, body[i], (size_t)i % 40,
			      raw[i], (size_t)(i * 7) % 300, &len);
		all = realloc(all, all_len + len);
		memcpy(all + all_len, f, len);
		all_len += len;
		free(f);
	}
	send_all(fd, all, all_len);
	for (int i = 0; i < MANY; i++)
		expect_echo(fd, (uint64_t)i + 1, body[i], (size_t)i % 40, raw[i],
			    (size_t)(i * 7) % 300);
	free(all);
	close(fd);
	srv_stop(&s);
	cr_assert_eq(atomic_load(&s.requests), MANY);
}

NET_TEST(frame_split_byte_by_byte)
{
	struct ox_net_opts o = { 0 };
	uint8_t body[100], raw[200];
	struct srv s;
	size_t len;
	uint8_t *f;
	int fd;

	fill(body, sizeof(body), 1);
	fill(raw, sizeof(raw), 2);
	srv_start(&s, &o);
	fd = cli_connect(&s);
	f = frame_new(API_ECHO, 42, body, sizeof(body), raw, sizeof(raw), &len);
	for (size_t i = 0; i < len; i++)
		send_all(fd, f + i, 1);
	expect_echo(fd, 42, body, sizeof(body), raw, sizeof(raw));
	free(f);
	close(fd);
	srv_stop(&s);
}

struct sender {
	int fd;
	const uint8_t *buf;
	size_t len;
};

static void *sender_main(void *arg)
{
	struct sender *sd = arg;

	send_all(sd->fd, sd->buf, sd->len);
	return NULL;
}

NET_TEST(frame_of_20_mib)
{
	const size_t raw_len = 20u << 20;
	struct ox_net_opts o = { 0 };
	uint8_t *raw = malloc(raw_len);
	struct sender sd;
	pthread_t t;
	struct srv s;
	size_t len;

	cr_assert_not_null(raw);
	fill(raw, raw_len, 3);
	srv_start(&s, &o);
	sd.fd = cli_connect(&s);
	sd.buf = frame_new(API_ECHO, 7, "big", 3, raw, raw_len, &len);
	sd.len = len;
	// The echo comes back while the frame is still going out.
	cr_assert_eq(pthread_create(&t, NULL, sender_main, &sd), 0);
	expect_echo(sd.fd, 7, (const uint8_t *)"big", 3, raw, raw_len);
	pthread_join(t, NULL);
	echo_once(sd.fd, 8); // the connection reads small frames again after it
	free((void *)sd.buf);
	free(raw);
	close(sd.fd);
	srv_stop(&s);
}

NET_TEST(garbage_prefix_closes_and_the_next_client_is_served)
{
	static const uint8_t too_big[8] = { 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0 };
	// Frame length 10, header length 200: the header does not fit.
	static const uint8_t no_fit[18] = { 10, 0, 0, 0, 200, 0, 0, 0 };
	struct ox_net_opts o = { 0 };
	struct srv s;
	int fd;

	srv_start(&s, &o);
	fd = cli_connect(&s);
	send_all(fd, too_big, 4); // four bytes are enough to refuse it
	cr_assert(closed_by_server(fd));
	close(fd);
	fd = cli_connect(&s);
	send_all(fd, no_fit, sizeof(no_fit));
	cr_assert(closed_by_server(fd));
	close(fd);
	fd = cli_connect(&s);
	echo_once(fd, 1);
	close(fd);
	WAIT_FOR(atomic_load(&s.conns) == 0);
	srv_stop(&s);
}

NET_TEST(bad_header_protobuf_closes)
{
	// Field 1 as a length-delimited value running past the header.
	static const uint8_t bad[] = { 12, 0, 0, 0, 4, 0, 0, 0, 0x0a, 0x7f, 1, 2,
				       0, 0, 0, 0 };
	struct ox_net_opts o = { 0 };
	struct srv s;
	int fd;

	srv_start(&s, &o);
	fd = cli_connect(&s);
	send_all(fd, bad, sizeof(bad));
	cr_assert(closed_by_server(fd));
	close(fd);
	fd = cli_connect(&s);
	echo_once(fd, 2);
	close(fd);
	srv_stop(&s);
}

NET_TEST(bad_body_prefix_is_answered_invalid_request)
{
	struct ox_net_opts o = { 0 };
	struct resp r;
	struct srv s;
	size_t len;
	uint8_t *f;
	int fd;

	srv_start(&s, &o);
	fd = cli_connect(&s);
	f = frame_new(API_ECHO, 77, "abc", 3, NULL, 0, &len);
	// Claim a 1000-byte body where 3 bytes follow.
	ox_payload_prefix_encode(f + len - 3 - 4, 1000);
	send_all(fd, f, len);
	cr_assert(resp_read(fd, &r));
	cr_assert_eq(r.corr, 77);
	cr_assert_eq(r.error_code, OXBOW__ERROR_CODE__INVALID_REQUEST);
	free(r.payload);
	free(f);
	echo_once(fd, 78); // the connection stays open
	close(fd);
	srv_stop(&s);
	cr_assert_eq(atomic_load(&s.requests), 2);
}

static void send_holds(int fd, int n, uint64_t first_corr)
{
	for (int i = 0; i < n; i++) {
		size_t len;
		uint8_t *f = frame_new(API_HOLD, first_corr + (uint64_t)i, "h", 1,
				       "r", 1, &len);

		send_all(fd, f, len);
		free(f);
	}
}

NET_TEST(held_requests_answered_later_out_of_order)
{
	struct ox_net_opts o = { 0 };
	struct srv s;
	int fd;

	srv_start(&s, &o);
	fd = cli_connect(&s);
	send_holds(fd, 10, 100);
	WAIT_FOR(atomic_load(&s.held_pub) == 10);
	echo_once(fd, 1); // answered while ten are held
	srv_cmd(&s, CMD_ANSWER_REVERSE);
	for (int i = 9; i >= 0; i--)
		expect_echo(fd, 100 + (uint64_t)i, (const uint8_t *)"h", 1,
			    (const uint8_t *)"r", 1);
	close(fd);
	srv_stop(&s);
}

NET_TEST(responses_after_the_client_left_are_dropped)
{
	struct ox_net_opts o = { 0 };
	struct srv s;
	int fd;

	srv_start(&s, &o);
	fd = cli_connect(&s);
	send_holds(fd, 5, 1);
	WAIT_FOR(atomic_load(&s.held_pub) == 5);
	close(fd);
	WAIT_FOR(atomic_load(&s.conns) == 0);
	srv_cmd(&s, CMD_ANSWER); // to a connection that is gone
	cr_assert_eq(atomic_load(&s.answered), 5);
	// Held over the net's destruction too: answered after it.
	fd = cli_connect(&s);
	send_holds(fd, 3, 10);
	WAIT_FOR(atomic_load(&s.held_pub) == 3);
	srv_stop(&s);
	cr_assert(closed_by_server(fd));
	close(fd);
}

// Invariant 2, inflight limit: with inflight_max 4 and a handler that
// holds everything, exactly 4 requests are taken, the rest wait in the
// socket; answering them lets the rest in.
NET_TEST(inflight_limit_stops_reading)
{
	struct ox_net_opts o = { .inflight_max = 4 };
	struct srv s;
	bool seen[20] = { false };
	int fd;

	srv_start(&s, &o);
	fd = cli_connect(&s);
	send_holds(fd, 20, 0);
	WAIT_FOR(atomic_load(&s.paused) == 1);
	cr_assert_eq(atomic_load(&s.requests), 4);
	cr_assert_eq(atomic_load(&s.held_pub), 4);
	for (int got = 0; got < 20;) {
		struct resp r;

		WAIT_FOR(atomic_load(&s.held_pub) > 0);
		cr_assert_leq(atomic_load(&s.held_pub), 4);
		srv_cmd(&s, CMD_ANSWER);
		while (got < atomic_load(&s.answered)) {
			cr_assert(resp_read(fd, &r));
			cr_assert_lt(r.corr, 20);
			cr_assert(!seen[r.corr], "answered twice");
			seen[r.corr] = true;
			free(r.payload);
			got++;
		}
	}
	close(fd);
	srv_stop(&s);
	cr_assert_eq(atomic_load(&s.requests), 20);
}

// Invariant 2, send limit: a client that sends many requests and reads
// no response. The net must stop reading once its queued responses pass
// send_bytes_max, long before it has taken every request; once the
// client reads, everything is answered, in order.
#define BP_N 160
#define BP_RAW (256u << 10)
NET_TEST(send_limit_stops_a_client_that_does_not_read)
{
	struct ox_net_opts o = { .send_bytes_max = 1u << 20 };
	uint8_t *raw = malloc(BP_RAW), *all = NULL;
	size_t all_len = 0;
	struct sender sd;
	pthread_t t;
	struct srv s;

	fill(raw, BP_RAW, 5);
	for (int i = 0; i < BP_N; i++) {
		size_t len;
		uint8_t *f = frame_new(API_ECHO, (uint64_t)i, NULL, 0, raw, BP_RAW, &len);

		// Frames differ only by the correlation id's varint length.
		if (!all)
			all = malloc((len + 16) * BP_N);
		cr_assert_not_null(all);
		memcpy(all + all_len, f, len);
		all_len += len;
		free(f);
	}
	srv_start(&s, &o);
	sd = (struct sender){ cli_connect(&s), all, all_len };
	cr_assert_eq(pthread_create(&t, NULL, sender_main, &sd), 0);
	WAIT_FOR(atomic_load(&s.paused) == 1);
	cr_assert_lt(atomic_load(&s.requests), BP_N,
		     "the net took every request from a client that reads nothing");
	for (int i = 0; i < BP_N; i++)
		expect_echo(sd.fd, (uint64_t)i, NULL, 0, raw, BP_RAW);
	pthread_join(t, NULL);
	close(sd.fd);
	srv_stop(&s);
	cr_assert_eq(atomic_load(&s.requests), BP_N);
	free(all);
	free(raw);
}

// Answers held requests as they come and reads n echo responses from fd,
// correlation ids first, first + 1, ... in order.
static void answer_and_read(struct srv *s, int fd, int n, uint64_t first,
			    const uint8_t *body, size_t body_len,
			    const uint8_t *raw, size_t raw_len)
{
	for (int got = 0, w = 0; got < n; w++) {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		cr_assert_lt(w, 2000, "timed out: %d of %d responses", got, n);
		if (atomic_load(&s->held_pub) > 0)
			srv_cmd(s, CMD_ANSWER);
		if (poll(&p, 1, 10) == 1) {
			expect_echo(fd, first + (uint64_t)got, body, body_len,
				    raw, raw_len);
			got++;
		}
	}
}

// Invariant 6, the node-wide memory budget (1 MiB here). Client A sends
// six held requests of 300 KiB: three are taken, the fourth is received
// (counted, 1.2 MiB in all) but not handed out, and A stops being read.
// Client B, under its own limits, may then take one request (it held
// none) and no more; client C, holding nothing, is still answered. Once
// the held requests are answered and A has read the responses, the sum
// drops below the budget and A's and B's remaining requests are taken.
#define MB_RAW (300u << 10)
#define MB_N 6
NET_TEST(memory_budget_stops_reading_node_wide)
{
	struct ox_net_opts o = { .memory_bytes_max = 1u << 20 };
	uint8_t *raw = malloc(MB_RAW), *all = NULL;
	size_t all_len = 0, frame_len = 0;
	struct sender sd;
	pthread_t t;
	struct srv s;
	int b, c;

	cr_assert_not_null(raw);
	fill(raw, MB_RAW, 9);
	for (int i = 0; i < MB_N; i++) {
		uint8_t *f = frame_new(API_HOLD, (uint64_t)i + 1, NULL, 0, raw,
				       MB_RAW, &frame_len);

		// Correlation ids 1 to 127 (0 is not encoded at all): every
		// frame has the same length.
		if (!all)
			all = malloc(frame_len * MB_N);
		cr_assert_not_null(all);
		memcpy(all + all_len, f, frame_len);
		all_len += frame_len;
		free(f);
	}
	srv_start(&s, &o);
	sd = (struct sender){ cli_connect(&s), all, all_len };
	cr_assert_eq(pthread_create(&t, NULL, sender_main, &sd), 0);
	WAIT_FOR(atomic_load(&s.paused) == 1);
	cr_assert_eq(atomic_load(&s.requests), 3);
	cr_assert_eq(atomic_load(&s.held_pub), 3);
	cr_assert_eq(atomic_load(&s.memory), 4 * frame_len,
		     "three held and one received: %zu bytes counted, frames "
		     "of %zu", (size_t)atomic_load(&s.memory), frame_len);

	b = cli_connect(&s);
	send_holds(b, 3, 100);
	WAIT_FOR(atomic_load(&s.paused) == 2);
	cr_assert_eq(atomic_load(&s.requests), 4,
		     "a connection holding a request was read over the budget");
	cr_assert_eq(atomic_load(&s.held_pub), 4);
	c = cli_connect(&s);
	echo_once(c, 7); // holds nothing: served over the budget
	close(c);
	WAIT_FOR(atomic_load(&s.requests) == 5);
	// Answering A's requests and reading its responses lets the rest of
	// them in; B's follow once the budget has room.
	answer_and_read(&s, sd.fd, MB_N, 1, NULL, 0, raw, MB_RAW);
	answer_and_read(&s, b, 3, 100, (const uint8_t *)"h", 1,
			(const uint8_t *)"r", 1);
	close(b);
	pthread_join(t, NULL);
	WAIT_FOR(atomic_load(&s.memory) == 0);
	cr_assert_eq(atomic_load(&s.requests), MB_N + 3 + 1);
	cr_assert_eq(atomic_load(&s.paused), 0);
	close(sd.fd);
	srv_stop(&s);
	free(all);
	free(raw);
}

NET_TEST(conns_over_the_limit_are_closed_at_once)
{
	struct ox_net_opts o = { .conns_max = 1 };
	struct srv s;
	int a, b;

	srv_start(&s, &o);
	a = cli_connect(&s);
	echo_once(a, 1);
	b = cli_connect(&s);
	cr_assert(closed_by_server(b));
	close(b);
	echo_once(a, 2);
	close(a);
	WAIT_FOR(atomic_load(&s.conns) == 0);
	b = cli_connect(&s); // room again
	echo_once(b, 3);
	close(b);
	srv_stop(&s);
}

NET_TEST(stop_accepting_keeps_serving_open_connections)
{
	struct ox_net_opts o = { 0 };
	struct sockaddr_in a = { .sin_family = AF_INET };
	struct srv s;
	int fd, late;

	srv_start(&s, &o);
	fd = cli_connect(&s);
	echo_once(fd, 1);
	srv_cmd(&s, CMD_STOP_ACCEPTING);
	late = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons(ox_net_port(s.net));
	cr_assert_neq(connect(late, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(errno, ECONNREFUSED);
	close(late);
	echo_once(fd, 2);
	close(fd);
	srv_stop(&s);
}

static void nop_handler(void *arg, struct ox_net_req *req)
{
	ox_net_finish(req);
}

Test(net_api, create_rejects_bad_options)
{
	static const char *const bad[] = {
		"", "127.0.0.1", ":80", "127.0.0.1:", "127.0.0.1:65536",
		"127.0.0.1:12a", "256.0.0.1:80", "example.com:80",
		"127.0.0.1:-1", "127.0.0.1:123456",
	};
	struct ox_net_opts o = { .handler = nop_handler };
	struct ox_net *net = NULL;
	struct ox_io *io = NULL;

	cr_assert_eq(ox_io_create(&io, &(struct ox_io_opts){
					       .backend = OX_IO_BACKEND_SYNC }), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		o.listen = bad[i];
		cr_assert_eq(ox_net_create(&net, io, &o), -EINVAL, "%s", bad[i]);
		cr_assert_null(net);
	}
	o.listen = NULL;
	cr_assert_eq(ox_net_create(&net, io, &o), -EINVAL);
	o = (struct ox_net_opts){ .listen = "127.0.0.1:0" };
	cr_assert_eq(ox_net_create(&net, io, &o), -EINVAL); // no handler
	cr_assert_eq(ox_net_create(&net, io, NULL), -EINVAL);
	ox_io_destroy(io);
}

Test(net_api, localhost_and_port_in_use)
{
	struct ox_net_opts o = { .listen = "localhost:0", .handler = nop_handler };
	struct ox_net *a = NULL, *b = NULL;
	struct ox_io *io = NULL;
	char addr[32];

	cr_assert_eq(ox_io_create(&io, &(struct ox_io_opts){
					       .backend = OX_IO_BACKEND_SYNC }), 0);
	cr_assert_eq(ox_net_create(&a, io, &o), 0);
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", ox_net_port(a));
	o.listen = addr;
	cr_assert_eq(ox_net_create(&b, io, &o), -EADDRINUSE);
	cr_assert_eq(ox_net_conn_count(a), 0);
	cr_assert_eq(ox_net_requests_total(a), 0);
	ox_net_destroy(a);
	ox_net_destroy(NULL);
	ox_io_destroy(io);
}

struct closer {
	int fd;
	int delay_ms;
};

static void *close_later(void *arg)
{
	struct closer *c = arg;
	struct timespec ts = { 0, (long)c->delay_ms * 1000000L };

	nanosleep(&ts, NULL);
	close(c->fd);
	return NULL;
}

// A port held for a moment (as by a process that just died) is waited
// for: the net listens on it once it is free.
Test(net_api, a_port_freed_meanwhile_is_taken)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	struct ox_net_opts o = { .handler = nop_handler };
	struct closer c = { .delay_ms = 150 };
	struct ox_net *net = NULL;
	struct ox_io *io = NULL;
	struct timespec t0, t1;
	pthread_t th;
	char addr[32];

	c.fd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_geq(c.fd, 0);
	cr_assert_eq(bind(c.fd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(listen(c.fd, 1), 0);
	cr_assert_eq(getsockname(c.fd, (struct sockaddr *)&a, &len), 0);
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", ntohs(a.sin_port));
	o.listen = addr;
	cr_assert_eq(ox_io_create(&io, &(struct ox_io_opts){
					       .backend = OX_IO_BACKEND_SYNC }), 0);
	cr_assert_eq(pthread_create(&th, NULL, close_later, &c), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	cr_assert_eq(ox_net_create(&net, io, &o), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	pthread_join(th, NULL);
	cr_assert_eq(ox_net_port(net), ntohs(a.sin_port));
	cr_assert_geq((t1.tv_sec - t0.tv_sec) * 1000 +
			      (t1.tv_nsec - t0.tv_nsec) / 1000000, 100,
		      "it waited for the port");
	ox_net_destroy(net);
	ox_io_destroy(io);
}
