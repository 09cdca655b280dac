// SPDX-License-Identifier: Apache-2.0
//
// The plain system-call backend of the I/O loop: operations wait in a
// FIFO and run with pread/pwrite/pwritev/fdatasync/fsync/openat inside
// ox_io_run, in submission order, each followed at once by its callback.
// Timers sit in a list sorted by deadline and fire when the monotonic
// clock passes it; when only timers are left, run sleeps until the first.
// Socket operations are tried when their turn in the FIFO comes, without
// blocking (MSG_DONTWAIT; accept and poll go straight to waiting); those
// whose descriptor is not ready wait in a list that every pass polls with
// ppoll, without blocking when other work is queued, else until the first
// timer is due (or forever, with no timers): a loop with only sockets and
// timers pending sleeps in the kernel rather than spinning.
// It serves where io_uring is missing and as the baseline the benchmarks
// compare against. The pool and callbacks belong to io.c; invariant
// numbers refer to io.c.
#include "broker/io/io_int.h"

#include "proto/assert.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define NS_PER_S 1000000000ull

struct io_sync_be {
	struct io_op *head; // FIFO of operations to run (invariant 7)
	struct io_op *tail;
	struct io_op *timers; // by deadline, ties in submission order
	// Readiness operations whose descriptor was not ready, oldest first.
	struct io_op *waiting;
	struct io_op *waiting_tail;
	// ppoll's arguments for the waiting list: ops_max entries each,
	// allocated at create so that a pass never allocates.
	struct pollfd *pfds;
	struct io_op **polled;
};

static int sync_create(struct ox_io *io)
{
	struct io_sync_be *sb = calloc(1, sizeof(*sb));

	if (!sb)
		return -ENOMEM;
	sb->pfds = calloc(io->ops_max, sizeof(*sb->pfds));
	sb->polled = calloc(io->ops_max, sizeof(*sb->polled));
	if (!sb->pfds || !sb->polled) {
		free(sb->pfds);
		free(sb->polled);
		free(sb);
		return -ENOMEM;
	}
	io->be_state.sync = sb;
	return 0;
}

static void sync_destroy(struct ox_io *io)
{
	struct io_sync_be *sb = io->be_state.sync;

	OX_ASSERT(io->inflight == 0 && !sb->head && !sb->timers &&
		  !sb->waiting);
	free(sb->pfds);
	free(sb->polled);
	free(sb);
	io->be_state.sync = NULL;
}

static void list_append(struct io_op **head, struct io_op **tail,
			struct io_op *op)
{
	op->next = NULL;
	if (*tail)
		(*tail)->next = op;
	else
		*head = op;
	*tail = op;
}

static void timer_insert(struct io_sync_be *sb, struct io_op *op)
{
	struct io_op **link = &sb->timers;

	// After every timer due no later: equal deadlines keep their
	// submission order (invariant 7).
	while (*link && (*link)->u.timer.deadline_ns <= op->u.timer.deadline_ns)
		link = &(*link)->next;
	op->next = *link;
	*link = op;
}

static void sync_start(struct ox_io *io, struct io_op *op)
{
	struct io_sync_be *sb = io->be_state.sync;

	if (op->kind == IO_OP_TIMER) {
		timer_insert(sb, op);
		return;
	}
	list_append(&sb->head, &sb->tail, op);
}

static int run_open(struct io_op *op)
{
	int fd;

	do {
		fd = openat(AT_FDCWD, op->u.open.path, op->u.open.flags,
			    op->u.open.mode);
	} while (fd < 0 && errno == EINTR);
	return fd < 0 ? -errno : fd;
}

static int run_read(struct io_op *op)
{
	ssize_t n;

	do {
		n = pread(op->fd, op->u.read.buf, op->u.read.len, (off_t)op->off);
	} while (n < 0 && errno == EINTR);
	// n <= OX_IO_LEN_MAX, checked at submission, so it fits in int.
	return n < 0 ? -errno : (int)n;
}

static ssize_t write_call(const struct io_op *op)
{
	const struct io_op_write *w = &op->u.write;
	int nr = w->iovcnt - w->first;

	if (nr == 1)
		return pwrite(op->fd, w->iov[w->first].iov_base, w->left,
			      (off_t)op->off);
	return pwritev(op->fd, &w->iov[w->first], nr, (off_t)op->off);
}

// Writes until every byte is written or a call fails (invariant 4). At
// least one call is made, so a bad fd fails even for zero bytes, as it
// does through io_uring.
static int run_write(struct ox_io *io, struct io_op *op)
{
	struct io_op_write *w = &op->u.write;
	ssize_t n;

	do {
		n = write_call(op);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		// A call that writes nothing makes no progress: fail rather
		// than spin.
		if (n == 0 && w->left > 0)
			return -EIO;
		ox_io_op_advance(op, ox_io_short_write(io, (size_t)n));
	} while (w->left > 0);
	// Not retried on failure: after a failed fdatasync the page cache
	// may have dropped the dirty pages, so a retry could report success
	// for data that never reached the disk.
	if (w->dsync && fdatasync(op->fd) < 0)
		return -errno;
	return (int)w->total;
}

static int run_fsync(struct io_op *op)
{
	int rc = op->u.fsync.datasync ? fdatasync(op->fd) : fsync(op->fd);

	return rc < 0 ? -errno : 0;
}

static int run_recv(struct io_op *op)
{
	ssize_t n;

	do {
		n = recv(op->fd, op->u.read.buf, op->u.read.len, MSG_DONTWAIT);
	} while (n < 0 && errno == EINTR);
	if (n < 0) {
		op->wait_events = POLLIN;
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	}
	return (int)n; // n <= len <= OX_IO_LEN_MAX
}

// Sends until every byte is out (invariant 8), or returns -EAGAIN to wait
// for POLLOUT with the rest. A cancelled send stops between calls.
static int run_send(struct io_op *op)
{
	struct io_op_write *w = &op->u.write;
	ssize_t n;

	do {
		if (op->cancelled)
			return -ECANCELED;
		w->msg = (struct msghdr){
			.msg_iov = &w->iov[w->first],
			.msg_iovlen = (size_t)(w->iovcnt - w->first),
		};
		n = sendmsg(op->fd, &w->msg, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EWOULDBLOCK) {
			op->wait_events = POLLOUT;
			return -EAGAIN;
		}
		if (n < 0)
			return -errno;
		if (n == 0 && w->left > 0)
			return -EIO; // no progress: fail rather than spin
		ox_io_op_advance(op, (size_t)n);
	} while (w->left > 0);
	return (int)w->total;
}

static int run_accept(struct io_op *op)
{
	int fd;

	do {
		fd = accept4(op->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	} while (fd < 0 && errno == EINTR);
	if (fd < 0) {
		op->wait_events = POLLIN;
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	}
	return fd;
}

// The first call starts the connection; once it is in progress, POLLOUT
// says it ended and SO_ERROR says how.
static int run_connect(struct io_op *op)
{
	struct io_op_connect *c = &op->u.connect;
	socklen_t len = sizeof(int);
	int err = 0;

	op->wait_events = POLLOUT;
	if (c->started) {
		if (getsockopt(op->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			return -errno;
		return -err;
	}
	if (connect(op->fd, (const struct sockaddr *)&c->addr, c->addrlen) == 0)
		return 0;
	// An interrupted connect goes on in the background, like one in
	// progress; a unix socket whose peer's backlog is full says EAGAIN
	// and is tried again when writable.
	if (errno == EINPROGRESS || errno == EINTR || errno == EALREADY) {
		c->started = true;
		return -EAGAIN;
	}
	return errno == EAGAIN ? -EAGAIN : -errno;
}

// Runs a readiness operation's system call once; -EAGAIN: not ready, wait
// for op->wait_events.
static int run_ready(struct io_op *op, short revents)
{
	switch (op->kind) {
	case IO_OP_ACCEPT:
		return run_accept(op);
	case IO_OP_CONNECT:
		return run_connect(op);
	case IO_OP_RECV:
		return run_recv(op);
	case IO_OP_SEND:
		return run_send(op);
	case IO_OP_POLL:
		if (revents & POLLNVAL)
			return -EBADF; // as IORING_OP_POLL_ADD reports it
		return revents;
	default:
		break;
	}
	OX_ASSERT(!"not a readiness operation");
	return -EINVAL;
}

// The first attempt of an operation from the FIFO. Accepts and polls wait
// for readiness before their first call: accept4 on a blocking listener
// would block the loop.
static int run_op(struct ox_io *io, struct io_op *op)
{
	switch (op->kind) {
	case IO_OP_OPEN:
		return run_open(op);
	case IO_OP_READ:
		return run_read(op);
	case IO_OP_WRITE:
		return run_write(io, op);
	case IO_OP_FSYNC:
		return run_fsync(op);
	case IO_OP_TIMER:
		break;
	case IO_OP_ACCEPT:
	case IO_OP_POLL:
		if (op->cancelled)
			return -ECANCELED;
		// poll(2) ignores negative descriptors: they would wait forever.
		if (op->fd < 0)
			return -EBADF;
		op->wait_events = op->kind == IO_OP_POLL ?
					  (short)op->u.poll.events : POLLIN;
		return -EAGAIN;
	case IO_OP_CONNECT:
	case IO_OP_RECV:
	case IO_OP_SEND:
		if (op->cancelled)
			return -ECANCELED;
		return run_ready(op, 0);
	}
	OX_ASSERT(!"timers never enter the FIFO");
	return -EINVAL;
}

// Runs the operations queued when the pass began. Those that callbacks
// submit meanwhile wait for the next pass, which bounds a pass and keeps
// submission order (invariant 7). Readiness operations that are not
// ready move to the waiting list.
static void run_fifo(struct ox_io *io, struct io_sync_be *sb)
{
	struct io_op *op = sb->head;

	sb->head = NULL;
	sb->tail = NULL;
	while (op) {
		// The callback may reuse op at once: read the link first.
		struct io_op *next = op->next;
		int res = run_op(io, op);

		if (res == -EAGAIN && ox_io_kind_waits(op->kind))
			list_append(&sb->waiting, &sb->waiting_tail, op);
		else
			ox_io_op_complete(io, op, res);
		op = next;
	}
}

// ppoll's timeout for a pass: none when it must not block, until the first
// timer when there is one, else NULL (wait for a descriptor).
static const struct timespec *poll_timeout(const struct io_sync_be *sb,
					   bool block, struct timespec *ts)
{
	uint64_t now, left = 0;

	if (block && !sb->timers)
		return NULL;
	if (block) {
		now = ox_io_now_ns();
		if (sb->timers->u.timer.deadline_ns > now)
			left = sb->timers->u.timer.deadline_ns - now;
	}
	ts->tv_sec = (time_t)(left / NS_PER_S);
	ts->tv_nsec = (long)(left % NS_PER_S);
	return ts;
}

// Polls the waiting operations once (blocking if asked) and completes
// those that are done: ready and run, failed, or cancelled. The list is
// taken whole first; callbacks only ever add to the FIFO.
static void wait_pass(struct ox_io *io, struct io_sync_be *sb, bool block)
{
	struct io_op *op = sb->waiting, *next, *done = NULL, *done_tail = NULL;
	struct timespec ts;
	nfds_t n = 0;
	int rc;

	sb->waiting = NULL;
	sb->waiting_tail = NULL;
	for (; op; op = next) {
		next = op->next; // list_append rewrites it
		if (op->cancelled) {
			op->round_res = -ECANCELED;
			list_append(&done, &done_tail, op);
			block = false;
			continue;
		}
		OX_ASSERT(n < io->ops_max); // invariant 2
		sb->pfds[n] = (struct pollfd){ op->fd, op->wait_events, 0 };
		sb->polled[n++] = op;
	}
	rc = n > 0 ? ppoll(sb->pfds, n, poll_timeout(sb, block, &ts), NULL) : 0;
	for (nfds_t i = 0; i < n; i++) {
		short revents = rc > 0 ? sb->pfds[i].revents : 0;
		int res = revents ? run_ready(sb->polled[i], revents) : -EAGAIN;

		if (res == -EAGAIN) {
			list_append(&sb->waiting, &sb->waiting_tail, sb->polled[i]);
			continue;
		}
		sb->polled[i]->round_res = res;
		list_append(&done, &done_tail, sb->polled[i]);
	}
	while (done) {
		next = done->next; // the callback may reuse the op at once
		ox_io_op_complete(io, done, done->round_res);
		done = next;
	}
}

// Fires the timers due at `now`. They are unlinked before any callback
// runs, so a timer armed by one of these callbacks waits for a later pass.
static void fire_timers(struct ox_io *io, struct io_sync_be *sb, uint64_t now)
{
	struct io_op **link = &sb->timers;
	struct io_op *rest, *due;

	while (*link && (*link)->u.timer.deadline_ns <= now)
		link = &(*link)->next;
	// Cut the list after the due prefix (which may be empty).
	rest = *link;
	*link = NULL;
	due = sb->timers;
	sb->timers = rest;
	while (due) {
		struct io_op *next = due->next;

		ox_io_op_complete(io, due, due->cancelled ? -ECANCELED : 0);
		due = next;
	}
}

static void sleep_until(uint64_t deadline_ns)
{
	struct timespec ts = {
		.tv_sec = (time_t)(deadline_ns / NS_PER_S),
		.tv_nsec = (long)(deadline_ns % NS_PER_S),
	};

	// An interrupted sleep returns early; the caller checks the clock
	// again before firing anything.
	(void)clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
}

static int sync_run(struct ox_io *io, uint64_t target)
{
	struct io_sync_be *sb = io->be_state.sync;

	for (;;) {
		fire_timers(io, sb, ox_io_now_ns());
		run_fifo(io, sb);
		// Block in ppoll only when nothing else can complete first.
		if (sb->waiting)
			wait_pass(io, sb, io->completed < target && !sb->head);
		if (io->completed >= target || io->inflight == 0)
			return 0;
		if (!sb->head && !sb->waiting) {
			// Only timers are left: nothing completes before the
			// first of them.
			OX_ASSERT(sb->timers != NULL); // invariant 2
			sleep_until(sb->timers->u.timer.deadline_ns);
		}
	}
}

// Timers due later are cancelled and made due now; the list stays sorted
// because the ones already due sort before "now". Readiness operations,
// in the FIFO or waiting, complete with -ECANCELED at the next pass.
static void sync_cancel_waiting(struct ox_io *io)
{
	struct io_sync_be *sb = io->be_state.sync;
	uint64_t now = ox_io_now_ns();

	for (struct io_op *op = sb->timers; op; op = op->next) {
		if (op->u.timer.deadline_ns <= now)
			continue;
		op->cancelled = true;
		op->u.timer.deadline_ns = now;
	}
	for (struct io_op *op = sb->head; op; op = op->next) {
		if (ox_io_kind_waits(op->kind))
			op->cancelled = true;
	}
	for (struct io_op *op = sb->waiting; op; op = op->next)
		op->cancelled = true;
}

const struct io_backend ox_io_sync_backend = {
	.create = sync_create,
	.destroy = sync_destroy,
	.start = sync_start,
	.run = sync_run,
	.cancel_waiting = sync_cancel_waiting,
};
