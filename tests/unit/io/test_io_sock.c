// SPDX-License-Identifier: Apache-2.0
//
// Unit tests of broker/io's socket operations (accept, connect, recv,
// send, sendv, poll), every case run under both backends like test_io.c
// (suites io_uring and io_sync). Sockets are socketpairs or TCP on
// 127.0.0.1 with ports chosen by the kernel. Invariant numbers refer to
// broker/io/io.c. Nothing here waits on a clock to decide pass or fail,
// except the one-sided check that a waiting loop does not spin.
#include "broker/io/io.h"

#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define MS 1000000ull

static void skip_without_uring(void)
{
	struct ox_io_opts o = { .backend = OX_IO_BACKEND_URING };
	struct ox_io *io = NULL;
	int rc = ox_io_create(&io, &o);

	if (rc < 0)
		cr_skip_test("io_uring unavailable here: %s", strerror(-rc));
	ox_io_destroy(io);
}

#define SOCK_TEST(name)                                \
	static void name(enum ox_io_backend be);       \
	Test(io_uring, name)                           \
	{                                              \
		skip_without_uring();                  \
		name(OX_IO_BACKEND_URING);             \
	}                                              \
	Test(io_sync, name)                            \
	{                                              \
		name(OX_IO_BACKEND_SYNC);              \
	}                                              \
	static void name(enum ox_io_backend be)

static struct ox_io *io_new(enum ox_io_backend be, unsigned ops_max)
{
	struct ox_io_opts o = { .backend = be, .ops_max = ops_max };
	struct ox_io *io = NULL;
	int rc = ox_io_create(&io, &o);

	cr_assert_eq(rc, 0, "ox_io_create: %s", strerror(-rc));
	return io;
}

struct done {
	int flag;
	int res;
	int calls;
};

static void done_cb(void *arg, int res)
{
	struct done *d = arg;

	d->calls++;
	d->res = res;
	d->flag = 1;
}

// Runs the loop until d's callback ran, checks it ran once and not inside
// the submitting call (invariant 1), returns its res.
static int wait_done(struct ox_io *io, struct done *d, int submit_rc)
{
	int rc;

	cr_assert_eq(submit_rc, 0, "submit: %s", strerror(-submit_rc));
	rc = ox_io_run_until(io, &d->flag);
	cr_assert_eq(rc, 0, "ox_io_run_until: %s", strerror(-rc));
	cr_assert_eq(d->calls, 1, "callback ran %d times", d->calls);
	return d->res;
}

static void pair_new(int sv[2])
{
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
				0, sv), 0);
}

// A non-blocking TCP listener on 127.0.0.1 and a kernel-chosen port.
static int listener_new(struct sockaddr_in *addr)
{
	socklen_t len = sizeof(*addr);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	cr_assert_geq(fd, 0);
	*addr = (struct sockaddr_in){ .sin_family = AF_INET };
	addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(bind(fd, (struct sockaddr *)addr, sizeof(*addr)), 0);
	cr_assert_eq(listen(fd, 16), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)addr, &len), 0);
	return fd;
}

// Connects and accepts through the loop: both operations pending at once.
static void tcp_pair(struct ox_io *io, int sv[2])
{
	struct sockaddr_in addr;
	struct done a = { 0 }, c = { 0 };
	int lfd = listener_new(&addr);
	int cfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	cr_assert_geq(cfd, 0);
	cr_assert_eq(ox_io_accept(io, lfd, done_cb, &a), 0);
	cr_assert_eq(ox_io_connect(io, cfd, (struct sockaddr *)&addr,
				   sizeof(addr), done_cb, &c), 0);
	cr_assert_eq(a.calls + c.calls, 0, "callback inside the submitting call");
	cr_assert_eq(wait_done(io, &c, 0), 0, "connect: %s", strerror(-c.res));
	cr_assert_geq(wait_done(io, &a, 0), 0, "accept: %s", strerror(-a.res));
	close(lfd);
	sv[0] = a.res;
	sv[1] = cfd;
}

static void fill(unsigned char *buf, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (unsigned char)(seed * 131u + i * 7u + (i >> 11));
}

SOCK_TEST(accept_gives_a_nonblocking_cloexec_fd)
{
	struct ox_io *io = io_new(be, 0);
	int sv[2];

	tcp_pair(io, sv);
	cr_assert(fcntl(sv[0], F_GETFL) & O_NONBLOCK);
	cr_assert(fcntl(sv[0], F_GETFD) & FD_CLOEXEC);
	cr_assert_eq(write(sv[1], "hi", 2), 2);
	char b[2];
	struct done d = { 0 };
	cr_assert_eq(wait_done(io, &d, ox_io_recv(io, sv[0], b, 2, done_cb, &d)), 2);
	cr_assert_eq(memcmp(b, "hi", 2), 0);
	close(sv[0]);
	close(sv[1]);
	ox_io_destroy(io);
}

SOCK_TEST(connect_to_a_closed_port_is_refused)
{
	struct ox_io *io = io_new(be, 0);
	struct sockaddr_in addr;
	struct done d = { 0 };
	int lfd = listener_new(&addr);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	close(lfd); // nothing listens on addr any more
	cr_assert_eq(wait_done(io, &d, ox_io_connect(io, fd, (struct sockaddr *)&addr,
						     sizeof(addr), done_cb, &d)),
		     -ECONNREFUSED);
	close(fd);
	ox_io_destroy(io);
}

SOCK_TEST(recv_waits_for_data_then_gets_it)
{
	struct ox_io *io = io_new(be, 0);
	unsigned char buf[100];
	struct done d = { 0 };
	int sv[2];

	pair_new(sv);
	cr_assert_eq(ox_io_recv(io, sv[0], buf, sizeof(buf), done_cb, &d), 0);
	cr_assert_eq(ox_io_run(io, 0), 0); // nothing to read yet
	cr_assert_eq(d.calls, 0);
	cr_assert_eq(ox_io_inflight(io), 1);
	cr_assert_eq(write(sv[1], "abcdef", 6), 6);
	cr_assert_eq(wait_done(io, &d, 0), 6);
	cr_assert_eq(memcmp(buf, "abcdef", 6), 0);
	close(sv[0]);
	close(sv[1]);
	ox_io_destroy(io);
}

SOCK_TEST(recv_gets_zero_at_end_of_stream)
{
	struct ox_io *io = io_new(be, 0);
	char buf[16];
	struct done d = { 0 }, e = { 0 };
	int sv[2];

	pair_new(sv);
	cr_assert_eq(write(sv[1], "xy", 2), 2);
	cr_assert_eq(shutdown(sv[1], SHUT_WR), 0);
	cr_assert_eq(wait_done(io, &d, ox_io_recv(io, sv[0], buf, sizeof(buf),
						  done_cb, &d)), 2);
	cr_assert_eq(wait_done(io, &e, ox_io_recv(io, sv[0], buf, sizeof(buf),
						  done_cb, &e)), 0);
	close(sv[0]);
	close(sv[1]);
	ox_io_destroy(io);
}

SOCK_TEST(recv_reports_a_peer_reset)
{
	struct ox_io *io = io_new(be, 0);
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	struct done d = { 0 };
	char buf[16];
	int sv[2];

	tcp_pair(io, sv);
	cr_assert_eq(ox_io_recv(io, sv[0], buf, sizeof(buf), done_cb, &d), 0);
	// Linger 0: close sends a reset rather than a FIN.
	cr_assert_eq(setsockopt(sv[1], SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
	close(sv[1]);
	cr_assert_eq(wait_done(io, &d, 0), -ECONNRESET);
	close(sv[0]);
	ox_io_destroy(io);
}

struct reader {
	int fd;
	unsigned char *buf;
	size_t want;
	size_t got;
};

// Reads `want` bytes with blocking poll + read, in small pieces, so the
// sender meets a full socket buffer many times.
static void *reader_main(void *arg)
{
	struct reader *r = arg;

	while (r->got < r->want) {
		struct pollfd p = { r->fd, POLLIN, 0 };
		size_t n = r->want - r->got < 65536 ? r->want - r->got : 65536;
		ssize_t k;

		if (poll(&p, 1, -1) < 0)
			break;
		k = read(r->fd, r->buf + r->got, n);
		if (k == 0 || (k < 0 && errno != EAGAIN && errno != EINTR))
			break;
		if (k > 0)
			r->got += (size_t)k;
	}
	return NULL;
}

// Invariant 8: a send far bigger than the socket buffer goes out in many
// short sends, continued by the loop; the callback sees the whole length
// and the peer every byte, in order.
SOCK_TEST(short_sends_are_continued)
{
	enum { A = 1000, B = 3 << 20, C = 777 };
	struct ox_io *io = io_new(be, 0);
	unsigned char *src = malloc(A + B + C), *dst = malloc(A + B + C);
	struct reader r = { .buf = dst, .want = A + B + C };
	int small = 65536, sv[2];
	struct done d = { 0 };
	pthread_t t;

	cr_assert(src && dst);
	fill(src, A + B + C, 9);
	tcp_pair(io, sv);
	// Fixed small buffers (no autotuning): the send cannot fit at once.
	cr_assert_eq(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
	cr_assert_eq(setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
	struct iovec iov[4] = {
		{ src, A }, { src + A, 0 }, { src + A, B }, { src + A + B, C },
	};
	r.fd = sv[1];
	cr_assert_eq(pthread_create(&t, NULL, reader_main, &r), 0);
	cr_assert_eq(wait_done(io, &d, ox_io_sendv(io, sv[0], iov, 4, done_cb, &d)),
		     A + B + C);
	pthread_join(t, NULL);
	cr_assert_eq(r.got, (size_t)(A + B + C));
	cr_assert_eq(memcmp(src, dst, A + B + C), 0);
	free(src);
	free(dst);
	close(sv[0]);
	close(sv[1]);
	ox_io_destroy(io);
}

SOCK_TEST(send_to_a_closed_peer_is_epipe_not_sigpipe)
{
	struct ox_io *io = io_new(be, 0);
	struct done d = { 0 }, z = { 0 };
	int sv[2];

	pair_new(sv);
	cr_assert_eq(wait_done(io, &z, ox_io_send(io, sv[0], "", 0, done_cb, &z)), 0);
	close(sv[1]);
	cr_assert_eq(wait_done(io, &d, ox_io_send(io, sv[0], "abc", 3, done_cb, &d)),
		     -EPIPE);
	close(sv[0]);
	ox_io_destroy(io);
}

SOCK_TEST(poll_on_an_eventfd)
{
	struct ox_io *io = io_new(be, 0);
	int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	uint64_t one = 1;
	struct done d = { 0 }, w = { 0 };

	cr_assert_geq(efd, 0);
	cr_assert_eq(ox_io_poll(io, efd, POLLIN, done_cb, &d), 0);
	cr_assert_eq(ox_io_run(io, 0), 0);
	cr_assert_eq(d.calls, 0, "an empty eventfd is not readable");
	cr_assert_eq(write(efd, &one, sizeof(one)), (ssize_t)sizeof(one));
	cr_assert(wait_done(io, &d, 0) & POLLIN);
	// Writable at once; readable still (nothing read it).
	cr_assert(wait_done(io, &w, ox_io_poll(io, efd, POLLOUT | POLLIN,
						 done_cb, &w)) & (POLLIN | POLLOUT));
	close(efd);
	ox_io_destroy(io);
}

SOCK_TEST(bad_fds_and_arguments)
{
	struct ox_io *io = io_new(be, 0);
	struct sockaddr_in addr = { .sin_family = AF_INET };
	struct iovec v = { "a", 1 };
	struct done d[4] = { { 0 } };
	char buf[4];
	int bad = 1000000;

	cr_assert_eq(wait_done(io, &d[0], ox_io_recv(io, bad, buf, 4, done_cb, &d[0])),
		     -EBADF);
	cr_assert_eq(wait_done(io, &d[1], ox_io_poll(io, -1, POLLIN, done_cb, &d[1])),
		     -EBADF);
	cr_assert_eq(wait_done(io, &d[2], ox_io_accept(io, bad, done_cb, &d[2])),
		     -EBADF);
	cr_assert_eq(wait_done(io, &d[3], ox_io_send(io, bad, "x", 1, done_cb, &d[3])),
		     -EBADF);
	cr_assert_eq(ox_io_recv(io, 0, buf, 0, done_cb, d), -EINVAL);
	cr_assert_eq(ox_io_recv(io, 0, NULL, 4, done_cb, d), -EINVAL);
	cr_assert_eq(ox_io_poll(io, 0, 0, done_cb, d), -EINVAL);
	cr_assert_eq(ox_io_poll(io, 0, 0x8000, done_cb, d), -EINVAL);
	cr_assert_eq(ox_io_connect(io, 0, (struct sockaddr *)&addr, 0, done_cb, d),
		     -EINVAL);
	cr_assert_eq(ox_io_connect(io, 0, NULL, 16, done_cb, d), -EINVAL);
	cr_assert_eq(ox_io_sendv(io, 0, &v, 0, done_cb, d), -EINVAL);
	cr_assert_eq(ox_io_sendv(io, 0, &v, OX_IO_IOV_MAX + 1, done_cb, d), -EINVAL);
	cr_assert_eq(ox_io_inflight(io), 0);
	ox_io_destroy(io);
}

SOCK_TEST(full_pool_gives_ebusy)
{
	struct ox_io *io = io_new(be, 1);
	struct done d = { 0 }, e = { 0 };
	char buf[4];
	int sv[2];

	pair_new(sv);
	cr_assert_eq(ox_io_recv(io, sv[0], buf, 4, done_cb, &d), 0);
	cr_assert_eq(ox_io_poll(io, sv[0], POLLIN, done_cb, &e), -EBUSY);
	cr_assert_eq(ox_io_recv(io, sv[0], buf, 4, done_cb, &e), -EBUSY);
	cr_assert_eq(write(sv[1], "1234", 4), 4);
	cr_assert_eq(wait_done(io, &d, 0), 4);
	cr_assert_eq(e.calls, 0);
	close(sv[0]);
	close(sv[1]);
	ox_io_destroy(io);
}

// io.h's way to close a socket with operations pending: shutdown first,
// then close once the callbacks have run.
SOCK_TEST(shutdown_completes_pending_recv_send_and_accept)
{
	struct ox_io *io = io_new(be, 0);
	struct sockaddr_in addr;
	struct done r = { 0 }, s = { 0 }, a = { 0 };
	static unsigned char big[8 << 20];
	int sv[2], tv[2], small = 4096;
	int lfd = listener_new(&addr);
	char buf[16];

	pair_new(sv);
	cr_assert_eq(ox_io_recv(io, sv[0], buf, sizeof(buf), done_cb, &r), 0);
	cr_assert_eq(ox_io_accept(io, lfd, done_cb, &a), 0);
	// A send nobody reads: it waits for room once the buffers are full.
	tcp_pair(io, tv);
	cr_assert_eq(setsockopt(tv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
	cr_assert_eq(ox_io_send(io, tv[0], big, sizeof(big), done_cb, &s), 0);
	cr_assert_eq(ox_io_run(io, 0), 0);
	cr_assert_eq(r.calls + s.calls + a.calls, 0, "nothing is ready yet");
	cr_assert_eq(shutdown(sv[0], SHUT_RDWR), 0);
	cr_assert_eq(shutdown(lfd, SHUT_RDWR), 0);
	cr_assert_eq(shutdown(tv[0], SHUT_RDWR), 0);
	cr_assert_eq(wait_done(io, &r, 0), 0);
	cr_assert_lt(wait_done(io, &a, 0), 0);
	cr_assert_eq(wait_done(io, &s, 0), -EPIPE);
	cr_assert_eq(ox_io_inflight(io), 0);
	close(sv[0]);
	close(sv[1]);
	close(lfd);
	close(tv[0]);
	close(tv[1]);
	ox_io_destroy(io);
}

struct rearm {
	struct ox_io *io;
	int fd;
	char buf[8];
	int calls;
	int last;
	int resubmit;
};

static void rearm_cb(void *arg, int res)
{
	struct rearm *r = arg;

	r->calls++;
	r->last = res;
	r->resubmit = ox_io_recv(r->io, r->fd, r->buf, sizeof(r->buf), rearm_cb, r);
}

// Invariant 9: destroy cancels what waits on sockets and refuses new
// waits, so a recv that re-arms itself cannot hold it up.
SOCK_TEST(destroy_cancels_pending_socket_operations)
{
	struct ox_io *io = io_new(be, 0);
	struct sockaddr_in addr;
	struct done p = { 0 }, a = { 0 };
	int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	int lfd = listener_new(&addr);
	int sv[2];
	struct rearm r = { .io = io };

	pair_new(sv);
	r.fd = sv[0];
	cr_assert_eq(ox_io_recv(io, sv[0], r.buf, sizeof(r.buf), rearm_cb, &r), 0);
	cr_assert_eq(ox_io_poll(io, efd, POLLIN, done_cb, &p), 0);
	cr_assert_eq(ox_io_accept(io, lfd, done_cb, &a), 0);
	cr_assert_eq(ox_io_run(io, 0), 0);
	ox_io_destroy(io);
	cr_assert_eq(p.calls, 1);
	cr_assert_eq(p.res, -ECANCELED);
	cr_assert_eq(a.calls, 1);
	cr_assert_eq(a.res, -ECANCELED);
	cr_assert_eq(r.calls, 1);
	cr_assert_eq(r.last, -ECANCELED);
	cr_assert_eq(r.resubmit, -ECANCELED);
	close(efd);
	close(lfd);
	close(sv[0]);
	close(sv[1]);
}

static double thread_cpu_s(void)
{
	struct rusage u;

	cr_assert_eq(getrusage(RUSAGE_THREAD, &u), 0);
	return (double)(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
	       (double)(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

static double wall_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

// With only a recv and a timer pending, ox_io_run(io, 1) sleeps in the
// kernel until the timer. One-sided: a loop that spins burns about as
// much CPU as the wait lasts; a sleeping one almost none.
SOCK_TEST(waiting_on_sockets_and_timers_does_not_spin)
{
	struct ox_io *io = io_new(be, 0);
	struct done r = { 0 }, t = { 0 };
	double cpu0, wall0, cpu, wall;
	char buf[4];
	int sv[2];

	pair_new(sv);
	cr_assert_eq(ox_io_recv(io, sv[0], buf, sizeof(buf), done_cb, &r), 0);
	cr_assert_eq(ox_io_timer(io, 300 * MS, done_cb, &t), 0);
	cpu0 = thread_cpu_s();
	wall0 = wall_s();
	cr_assert_eq(wait_done(io, &t, 0), 0);
	cpu = thread_cpu_s() - cpu0;
	wall = wall_s() - wall0;
	cr_assert_geq(wall, 0.3 - 1e-3, "the timer fired early");
	cr_assert_lt(cpu, wall / 2, "the loop spun: %.3f s CPU in %.3f s", cpu, wall);
	cr_assert_eq(r.calls, 0);
	shutdown(sv[0], SHUT_RDWR);
	cr_assert_eq(wait_done(io, &r, 0), 0);
	close(sv[0]);
	close(sv[1]);
	ox_io_destroy(io);
}
