// SPDX-License-Identifier: Apache-2.0
//
// The plain system-call backend of the I/O loop: operations wait in a
// FIFO and run with pread/pwrite/pwritev/fdatasync/fsync/openat inside
// ox_io_run, in submission order, each followed at once by its callback.
// Timers sit in a list sorted by deadline and fire when the monotonic
// clock passes it; when only timers are left, run sleeps until the first.
// It serves where io_uring is missing and as the baseline the benchmarks
// compare against. The pool and callbacks belong to io.c; invariant
// numbers refer to io.c.
#include "broker/io/io_int.h"

#include "proto/assert.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define NS_PER_S 1000000000ull

struct io_sync_be {
	struct io_op *head; // FIFO of operations to run (invariant 7)
	struct io_op *tail;
	struct io_op *timers; // by deadline, ties in submission order
};

static int sync_create(struct ox_io *io)
{
	struct io_sync_be *sb = calloc(1, sizeof(*sb));

	if (!sb)
		return -ENOMEM;
	io->be_state.sync = sb;
	return 0;
}

static void sync_destroy(struct ox_io *io)
{
	struct io_sync_be *sb = io->be_state.sync;

	OX_ASSERT(io->inflight == 0 && !sb->head && !sb->timers);
	free(sb);
	io->be_state.sync = NULL;
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
	op->next = NULL;
	if (sb->tail)
		sb->tail->next = op;
	else
		sb->head = op;
	sb->tail = op;
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
	}
	OX_ASSERT(!"timers never enter the FIFO");
	return -EINVAL;
}

// Runs the operations queued when the pass began. Those that callbacks
// submit meanwhile wait for the next pass, which bounds a pass and keeps
// submission order (invariant 7).
static void run_fifo(struct ox_io *io, struct io_sync_be *sb)
{
	struct io_op *op = sb->head;

	sb->head = NULL;
	sb->tail = NULL;
	while (op) {
		// The callback may reuse op at once: read the link first.
		struct io_op *next = op->next;

		ox_io_op_complete(io, op, run_op(io, op));
		op = next;
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

		ox_io_op_complete(io, due,
				  due->u.timer.cancelled ? -ECANCELED : 0);
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
		if (io->completed >= target || io->inflight == 0)
			return 0;
		if (!sb->head) {
			// Only timers are left: nothing completes before the
			// first of them.
			OX_ASSERT(sb->timers != NULL); // invariant 2
			sleep_until(sb->timers->u.timer.deadline_ns);
		}
	}
}

// Timers due later are cancelled and made due now; the list stays sorted
// because the ones already due sort before "now".
static void sync_cancel_timers(struct ox_io *io)
{
	struct io_sync_be *sb = io->be_state.sync;
	uint64_t now = ox_io_now_ns();

	for (struct io_op *op = sb->timers; op; op = op->next) {
		if (op->u.timer.deadline_ns <= now)
			continue;
		op->u.timer.cancelled = true;
		op->u.timer.deadline_ns = now;
	}
}

const struct io_backend ox_io_sync_backend = {
	.create = sync_create,
	.destroy = sync_destroy,
	.start = sync_start,
	.run = sync_run,
	.cancel_timers = sync_cancel_timers,
};
