// SPDX-License-Identifier: Apache-2.0
//
// The front of the I/O loop: argument checks, the pool of operations, the
// one place callbacks run, and dispatch to a backend (io_uring.c or
// io_sync.c) through struct io_backend. It does no I/O itself. Everything
// above broker/io calls the functions declared in io.h, all of them on the
// thread that owns the loop.
//
// Design notes
//
// An operation is taken from the pool when submitted, handed to the
// backend, and returned to the pool just before its callback runs, so a
// callback may reuse the slot at once: a chain of operations runs in a
// pool of one. The pool is sized at create and never grows; a full pool is
// back-pressure (-EBUSY), and the caller runs the loop to drain it.
//
// Invariants (cited by number in assertions and tests):
//  1. Every accepted operation completes exactly once: its callback runs
//     once, from ox_io_run (or ox_io_destroy), never from the call that
//     submitted it. Only ox_io_op_complete moves an op from BUSY to FREE.
//  2. io->inflight is the number of operations out of the pool: exactly
//     those in state BUSY.
//  3. (uring) The completion queue has room for every completion the
//     kernel can owe: at least 2 * ops_max entries, and an operation has
//     at most two SQEs out at once. (Timer removals sent by
//     ox_io_destroy may exceed it for a moment; the kernel then keeps the
//     extra CQEs aside, a feature (NODROP) that create insists on.)
//  4. A write's callback gets the full length or a negative errno, never a
//     short count: short writes are continued inside the loop.
//  5. (uring) A write and its linked fdatasync are prepared back to back
//     in one submission: room for both is made before either is prepared.
//  6. ox_io_run does not nest: callbacks may submit operations but must not
//     run or destroy the loop.
//  7. (sync) Operations execute in submission order; timers fire in
//     deadline order, ties in submission order. Readiness operations
//     (accept, connect, recv, send, poll) are tried in that order and,
//     when their descriptor is not ready, wait in a list polled by run:
//     they complete in the order their descriptors become ready.
//  8. A send's callback, like a write's, gets its full length or a
//     negative errno: short sends are continued inside the loop.
//  9. Once ox_io_destroy has begun, no new waiting operation (timer or
//     readiness operation) is accepted and every one in flight is
//     cancelled, so destruction always ends.
#include "broker/io/io_int.h"

#include "proto/assert.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NS_PER_S 1000000000ull

static int opts_resolve(const struct ox_io_opts *opts, struct ox_io_opts *out)
{
	struct ox_io_opts o = { .backend = OX_IO_BACKEND_URING };

	if (opts)
		o = *opts;
	if ((unsigned)o.backend > (unsigned)OX_IO_BACKEND_SYNC)
		return -EINVAL;
	if (o.entries == 0)
		o.entries = OX_IO_ENTRIES_DEFAULT;
	if (o.entries > OX_IO_ENTRIES_LIMIT)
		return -EINVAL;
	if (o.ops_max == 0)
		o.ops_max = o.entries <= OX_IO_OPS_LIMIT / 4 ?
				    4 * o.entries : OX_IO_OPS_LIMIT;
	if (o.ops_max > OX_IO_OPS_LIMIT)
		return -EINVAL;
	*out = o;
	return 0;
}

static void pool_init(struct ox_io *io)
{
	io->free = NULL;
	for (unsigned i = io->ops_max; i-- > 0;) {
		io->ops[i].state = IO_OP_FREE;
		io->ops[i].next = io->free;
		io->free = &io->ops[i];
	}
}

int ox_io_create(struct ox_io **out, const struct ox_io_opts *opts)
{
	struct ox_io_opts o;
	struct ox_io *io;
	int rc;

	OX_ASSERT(out != NULL);
	*out = NULL;
	rc = opts_resolve(opts, &o);
	if (rc < 0)
		return rc;
	io = calloc(1, sizeof(*io));
	if (!io)
		return -ENOMEM;
	io->backend = o.backend;
	io->entries = o.entries;
	io->ops_max = o.ops_max;
	io->be = o.backend == OX_IO_BACKEND_URING ? &ox_io_uring_backend :
						    &ox_io_sync_backend;
	io->ops = calloc(o.ops_max, sizeof(*io->ops));
	if (!io->ops) {
		rc = -ENOMEM;
		goto fail_io;
	}
	pool_init(io);
	rc = io->be->create(io);
	if (rc < 0)
		goto fail_ops;
	*out = io;
	return 0;

fail_ops:
	free(io->ops);
fail_io:
	free(io);
	return rc;
}

void ox_io_destroy(struct ox_io *io)
{
	if (!io)
		return;
	OX_ASSERT(!io->running); // invariant 6
	io->draining = true;
	io->be->cancel_waiting(io); // invariant 9
	while (io->inflight > 0) {
		int rc = ox_io_run(io, io->inflight);

		// The loop fails only when its ring is broken. Freeing the
		// pool then would let the kernel complete into freed memory
		// and lose callbacks (invariant 1): stop here instead.
		OX_ASSERT(rc >= 0);
	}
	io->be->destroy(io);
	free(io->ops);
	free(io);
}

enum ox_io_backend ox_io_backend(const struct ox_io *io)
{
	OX_ASSERT(io != NULL);
	return io->backend;
}

int ox_io_backend_parse(const char *name, enum ox_io_backend *out)
{
	OX_ASSERT(out != NULL);
	if (!name)
		return -EINVAL;
	if (strcmp(name, "uring") == 0) {
		*out = OX_IO_BACKEND_URING;
		return 0;
	}
	if (strcmp(name, "sync") == 0) {
		*out = OX_IO_BACKEND_SYNC;
		return 0;
	}
	return -EINVAL;
}

unsigned ox_io_inflight(const struct ox_io *io)
{
	OX_ASSERT(io != NULL);
	return io->inflight;
}

// Takes an operation from the pool, or NULL when the pool is empty.
static struct io_op *op_get(struct ox_io *io, enum io_op_kind kind,
			    ox_io_cb cb, void *arg)
{
	struct io_op *op = io->free;

	if (!op)
		return NULL;
	OX_ASSERT(op->state == IO_OP_FREE); // invariant 2
	io->free = op->next;
	*op = (struct io_op){
		.cb = cb,
		.arg = arg,
		.kind = kind,
		.state = IO_OP_BUSY,
		.fd = -1,
	};
	io->inflight++;
	return op;
}

static void op_put(struct ox_io *io, struct io_op *op)
{
	OX_ASSERT(op->state == IO_OP_BUSY && io->inflight > 0); // invariant 2
	op->state = IO_OP_FREE;
	op->next = io->free;
	io->free = op;
	io->inflight--;
}

void ox_io_op_complete(struct ox_io *io, struct io_op *op, int res)
{
	ox_io_cb cb = op->cb;
	void *arg = op->arg;

	// Invariants 4 and 8: a successful write or send reports every byte.
	OX_ASSERT((op->kind != IO_OP_WRITE && op->kind != IO_OP_SEND) ||
		  res < 0 || (size_t)res == op->u.write.total);
	if (op->kind == IO_OP_OPEN)
		free(op->u.open.path);
	op_put(io, op); // invariant 1: BUSY to FREE happens only here
	io->completed++;
	cb(arg, res);
}

void ox_io_op_advance(struct io_op *op, size_t n)
{
	struct io_op_write *w = &op->u.write;

	OX_ASSERT((op->kind == IO_OP_WRITE || op->kind == IO_OP_SEND) &&
		  n <= w->left);
	w->left -= n;
	op->off += n;
	while (n > 0) {
		struct iovec *v = &w->iov[w->first];

		if (n < v->iov_len) {
			v->iov_base = (char *)v->iov_base + n;
			v->iov_len -= n;
			break;
		}
		n -= v->iov_len;
		w->first++;
	}
	// Skip empty buffers so that the next call starts on data and a
	// finished write has no buffers left.
	while (w->first < w->iovcnt && w->iov[w->first].iov_len == 0)
		w->first++;
	OX_ASSERT((w->left == 0) == (w->first == w->iovcnt));
}

size_t ox_io_short_write(const struct ox_io *io, size_t n)
{
	if (io->write_max > 0 && n > io->write_max)
		return io->write_max;
	return n;
}

void ox_io_set_write_max(struct ox_io *io, size_t bytes)
{
	OX_ASSERT(io != NULL);
	io->write_max = bytes;
}

uint64_t ox_io_now_ns(void)
{
	struct timespec ts;
	int rc = clock_gettime(CLOCK_MONOTONIC, &ts);

	// CLOCK_MONOTONIC always exists on Linux and ts is valid memory.
	OX_ASSERT(rc == 0);
	return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

int ox_io_open(struct ox_io *io, const char *path, int flags, mode_t mode,
	       ox_io_cb cb, void *arg)
{
	struct io_op *op;
	char *copy;

	OX_ASSERT(io != NULL && path != NULL && cb != NULL);
	op = op_get(io, IO_OP_OPEN, cb, arg);
	if (!op)
		return -EBUSY;
	copy = strdup(path);
	if (!copy) {
		op_put(io, op);
		return -ENOMEM;
	}
	op->u.open = (struct io_op_open){ copy, flags, mode };
	io->be->start(io, op);
	return 0;
}

int ox_io_read(struct ox_io *io, int fd, void *buf, size_t len, uint64_t off,
	       ox_io_cb cb, void *arg)
{
	struct io_op *op;

	OX_ASSERT(io != NULL && cb != NULL && (buf != NULL || len == 0));
	if (len > OX_IO_LEN_MAX || off > (uint64_t)INT64_MAX - len)
		return -EINVAL;
	op = op_get(io, IO_OP_READ, cb, arg);
	if (!op)
		return -EBUSY;
	op->fd = fd;
	op->off = off;
	op->u.read = (struct io_op_read){ buf, len };
	io->be->start(io, op);
	return 0;
}

int ox_io_write(struct ox_io *io, int fd, const void *buf, size_t len,
		uint64_t off, unsigned flags, ox_io_cb cb, void *arg)
{
	// The buffer is only read; iovec has no const member to say so.
	struct iovec v = { .iov_base = (void *)buf, .iov_len = len };

	return ox_io_writev(io, fd, &v, 1, off, flags, cb, arg);
}

// Sums the lengths of iov into *total; -EINVAL past OX_IO_LEN_MAX.
static int iov_total(const struct iovec *iov, int iovcnt, size_t *total)
{
	size_t sum = 0;

	for (int i = 0; i < iovcnt; i++) {
		OX_ASSERT(iov[i].iov_base != NULL || iov[i].iov_len == 0);
		if (iov[i].iov_len > OX_IO_LEN_MAX - sum)
			return -EINVAL;
		sum += iov[i].iov_len;
	}
	*total = sum;
	return 0;
}

// Copies a write's or send's buffers into the op, skipping empty leading
// ones so that a call always starts on data.
static void iov_load(struct io_op *op, const struct iovec *iov, int iovcnt,
		     size_t total)
{
	struct io_op_write *w = &op->u.write;

	memcpy(w->iov, iov, (size_t)iovcnt * sizeof(*iov));
	w->iovcnt = iovcnt;
	w->left = total;
	w->total = total;
	while (w->first < w->iovcnt - 1 && w->iov[w->first].iov_len == 0)
		w->first++;
}

int ox_io_writev(struct ox_io *io, int fd, const struct iovec *iov,
		 int iovcnt, uint64_t off, unsigned flags, ox_io_cb cb,
		 void *arg)
{
	struct io_op *op;
	size_t total;
	int rc;

	OX_ASSERT(io != NULL && cb != NULL && (iov != NULL || iovcnt <= 0));
	if (iovcnt < 1 || iovcnt > OX_IO_IOV_MAX || (flags & ~OX_IO_DSYNC))
		return -EINVAL;
	rc = iov_total(iov, iovcnt, &total);
	if (rc < 0)
		return rc;
	if (off > (uint64_t)INT64_MAX - total)
		return -EINVAL;
	op = op_get(io, IO_OP_WRITE, cb, arg);
	if (!op)
		return -EBUSY;
	op->fd = fd;
	op->off = off;
	iov_load(op, iov, iovcnt, total);
	op->u.write.dsync = (flags & OX_IO_DSYNC) != 0;
	io->be->start(io, op);
	return 0;
}

int ox_io_fsync(struct ox_io *io, int fd, int datasync, ox_io_cb cb,
		void *arg)
{
	struct io_op *op;

	OX_ASSERT(io != NULL && cb != NULL);
	op = op_get(io, IO_OP_FSYNC, cb, arg);
	if (!op)
		return -EBUSY;
	op->fd = fd;
	op->u.fsync.datasync = datasync != 0;
	io->be->start(io, op);
	return 0;
}

int ox_io_timer(struct ox_io *io, uint64_t timeout_ns, ox_io_cb cb,
		void *arg)
{
	struct io_op_timer *t;
	struct io_op *op;
	uint64_t now;

	OX_ASSERT(io != NULL && cb != NULL);
	// A timer armed while the loop is being destroyed would hold the
	// destruction up, or re-arm itself from its callback forever.
	if (io->draining)
		return -ECANCELED;
	op = op_get(io, IO_OP_TIMER, cb, arg);
	if (!op)
		return -EBUSY;
	t = &op->u.timer;
	now = ox_io_now_ns();
	t->deadline_ns = timeout_ns > UINT64_MAX - now ? UINT64_MAX :
							 now + timeout_ns;
	t->ts.tv_sec = (long long)(timeout_ns / NS_PER_S);
	t->ts.tv_nsec = (long long)(timeout_ns % NS_PER_S);
	io->be->start(io, op);
	return 0;
}

int ox_io_run(struct ox_io *io, unsigned wait_nr)
{
	uint64_t start, n;
	int rc;

	OX_ASSERT(io != NULL);
	OX_ASSERT(!io->running); // invariant 6
	start = io->completed;
	io->running = true;
	rc = io->be->run(io, start + wait_nr);
	io->running = false;
	if (rc < 0)
		return rc;
	n = io->completed - start;
	return n > INT_MAX ? INT_MAX : (int)n;
}

int ox_io_run_until(struct ox_io *io, const int *flag)
{
	OX_ASSERT(io != NULL && flag != NULL);
	while (*flag == 0) {
		int rc;

		if (io->inflight == 0)
			return -EDEADLK;
		rc = ox_io_run(io, 1);
		if (rc < 0)
			return rc;
	}
	return 0;
}

// Takes an op for a readiness operation, or fails: -ECANCELED while the
// loop is being destroyed (invariant 9), -EBUSY when the pool is empty.
static int waiting_get(struct ox_io *io, enum io_op_kind kind, int fd,
		       ox_io_cb cb, void *arg, struct io_op **out)
{
	OX_ASSERT(ox_io_kind_waits(kind));
	if (io->draining)
		return -ECANCELED;
	*out = op_get(io, kind, cb, arg);
	if (!*out)
		return -EBUSY;
	(*out)->fd = fd;
	return 0;
}

int ox_io_accept(struct ox_io *io, int fd, ox_io_cb cb, void *arg)
{
	struct io_op *op;
	int rc;

	OX_ASSERT(io != NULL && cb != NULL);
	rc = waiting_get(io, IO_OP_ACCEPT, fd, cb, arg, &op);
	if (rc < 0)
		return rc;
	io->be->start(io, op);
	return 0;
}

int ox_io_connect(struct ox_io *io, int fd, const struct sockaddr *addr,
		  socklen_t addrlen, ox_io_cb cb, void *arg)
{
	struct io_op *op;
	int rc;

	OX_ASSERT(io != NULL && cb != NULL);
	if (!addr || addrlen == 0 ||
	    addrlen > (socklen_t)sizeof(struct sockaddr_storage))
		return -EINVAL;
	rc = waiting_get(io, IO_OP_CONNECT, fd, cb, arg, &op);
	if (rc < 0)
		return rc;
	memcpy(&op->u.connect.addr, addr, addrlen);
	op->u.connect.addrlen = addrlen;
	op->u.connect.started = false;
	io->be->start(io, op);
	return 0;
}

int ox_io_recv(struct ox_io *io, int fd, void *buf, size_t len, ox_io_cb cb,
	       void *arg)
{
	struct io_op *op;
	int rc;

	OX_ASSERT(io != NULL && cb != NULL);
	// A zero-byte recv would complete with 0, which means end of stream.
	if (!buf || len == 0 || len > OX_IO_LEN_MAX)
		return -EINVAL;
	rc = waiting_get(io, IO_OP_RECV, fd, cb, arg, &op);
	if (rc < 0)
		return rc;
	op->u.read = (struct io_op_read){ buf, len };
	io->be->start(io, op);
	return 0;
}

int ox_io_send(struct ox_io *io, int fd, const void *buf, size_t len,
	       ox_io_cb cb, void *arg)
{
	// The buffer is only read; iovec has no const member to say so.
	struct iovec v = { .iov_base = (void *)buf, .iov_len = len };

	return ox_io_sendv(io, fd, &v, 1, cb, arg);
}

int ox_io_sendv(struct ox_io *io, int fd, const struct iovec *iov, int iovcnt,
		ox_io_cb cb, void *arg)
{
	struct io_op *op;
	size_t total;
	int rc;

	OX_ASSERT(io != NULL && cb != NULL && (iov != NULL || iovcnt <= 0));
	if (iovcnt < 1 || iovcnt > OX_IO_IOV_MAX)
		return -EINVAL;
	rc = iov_total(iov, iovcnt, &total);
	if (rc < 0)
		return rc;
	rc = waiting_get(io, IO_OP_SEND, fd, cb, arg, &op);
	if (rc < 0)
		return rc;
	iov_load(op, iov, iovcnt, total);
	io->be->start(io, op);
	return 0;
}

int ox_io_poll(struct ox_io *io, int fd, unsigned events, ox_io_cb cb,
	       void *arg)
{
	const unsigned known = POLLIN | POLLOUT | POLLPRI | POLLRDHUP;
	struct io_op *op;
	int rc;

	OX_ASSERT(io != NULL && cb != NULL);
	if (events == 0 || (events & ~known))
		return -EINVAL;
	rc = waiting_get(io, IO_OP_POLL, fd, cb, arg, &op);
	if (rc < 0)
		return rc;
	op->u.poll.events = events;
	io->be->start(io, op);
	return 0;
}
