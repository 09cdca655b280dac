// SPDX-License-Identifier: Apache-2.0
//
// The io_uring backend of the I/O loop: turns operations into SQEs,
// submits them, reaps CQEs in batches and turns them back into callbacks.
// It owns the ring and the backlog of operations waiting for SQ room; the
// pool, argument checks and callbacks belong to io.c. This is the only
// file in Oxbow that includes liburing. Invariant numbers refer to io.c.
//
// Each operation's SQEs carry its pointer in user_data, with a tag in the
// low bits saying which SQE of the operation completed. An operation goes
// through rounds: one SQE (or a write and its linked fdatasync) out, all
// their CQEs back, then either the callback or another round (the rest of
// a short write or send).
//
// Sockets use IORING_OP_ACCEPT, CONNECT, RECV, SEND, SENDMSG and
// POLL_ADD, all in Linux 5.6 and liburing 2.0; the kernel polls a socket
// that is not ready and retries the call itself, whether or not the
// socket is O_NONBLOCK. ox_io_destroy cancels them with ASYNC_CANCEL
// (5.5) by user_data.
#include "broker/io/io_int.h"

#include "proto/assert.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdlib.h>
#include <sys/socket.h>

// The set-up flags below appeared in kernels 5.18 (SUBMIT_ALL) and 5.19
// (COOP_TASKRUN, TASKRUN_FLAG); headers older than those lack them.
#ifndef IORING_SETUP_SUBMIT_ALL
#define IORING_SETUP_SUBMIT_ALL 0u
#endif
#ifndef IORING_SETUP_COOP_TASKRUN
#define IORING_SETUP_COOP_TASKRUN 0u
#endif
#ifndef IORING_SETUP_TASKRUN_FLAG
#define IORING_SETUP_TASKRUN_FLAG 0u
#endif

// user_data tags; operations are at least 8-byte aligned (they hold
// pointers and 64-bit offsets), so the two low bits are free.
#define TAG_MAIN 0u   // the operation's read/write/open/fsync/timer SQE
#define TAG_SYNC 1u   // the fdatasync linked after a write
#define TAG_REMOVE 2u // a removal or cancel: its CQE carries no result
#define TAG_MASK 3u
_Static_assert(_Alignof(struct io_op) > TAG_MASK, "tags need free low bits");

// CQEs taken per peek: enough to amortise the ring's memory barriers
// over many completions, small enough to keep on the stack.
#define REAP_BATCH 64u

struct io_uring_be {
	struct io_uring ring;
	// Operations accepted while the SQ was full and the kernel would not
	// take more, in submission order; they get SQEs before any newer one.
	struct io_op *backlog_head;
	struct io_op *backlog_tail;
	unsigned cqes_pending; // SQEs prepared whose CQE is not reaped yet
	unsigned cq_entries;
};

static uint64_t op_data(const struct io_op *op, unsigned tag)
{
	return (uint64_t)(uintptr_t)op | tag;
}

// Sets the ring up with the cheapest completion handling the kernel
// offers: cooperative task running (no interrupt of the thread per
// completion) where it exists, plain rings before 5.19. SINGLE_ISSUER and
// DEFER_TASKRUN are left out on purpose: they bind the ring to the thread
// that created it, a restriction io.h does not impose on callers.
static int ring_setup(struct io_uring_be *ur, unsigned entries,
		      unsigned cq_entries)
{
	static const unsigned flag_sets[] = {
		IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL |
			IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
		IORING_SETUP_CQSIZE,
	};
	int rc = -EINVAL;

	for (size_t i = 0; i < sizeof(flag_sets) / sizeof(flag_sets[0]); i++) {
		struct io_uring_params p = {
			.flags = flag_sets[i],
			.cq_entries = cq_entries,
		};

		// Older kernels reject flags they do not know with -EINVAL.
		rc = io_uring_queue_init_params(entries, &ur->ring, &p);
		if (rc != -EINVAL) {
			if (rc == 0)
				ur->cq_entries = p.cq_entries;
			if (rc == 0 && !(p.features & IORING_FEAT_NODROP)) {
				io_uring_queue_exit(&ur->ring);
				rc = -ENOSYS;
			}
			break;
		}
	}
	return rc;
}

// -ENOSYS unless the kernel runs every opcode this backend issues.
static int ring_probe(struct io_uring *ring)
{
	static const int needed[] = {
		IORING_OP_NOP,	 IORING_OP_OPENAT, IORING_OP_READ,
		IORING_OP_WRITE, IORING_OP_WRITEV, IORING_OP_FSYNC,
		IORING_OP_TIMEOUT, IORING_OP_TIMEOUT_REMOVE,
		IORING_OP_ACCEPT, IORING_OP_CONNECT, IORING_OP_RECV,
		IORING_OP_SEND, IORING_OP_SENDMSG, IORING_OP_POLL_ADD,
		IORING_OP_ASYNC_CANCEL,
	};
	struct io_uring_probe *probe = io_uring_get_probe_ring(ring);
	int rc = 0;

	// Probing arrived in 5.6 together with IORING_OP_READ: a kernel
	// that cannot probe cannot run this backend either.
	if (!probe)
		return -ENOSYS;
	for (size_t i = 0; i < sizeof(needed) / sizeof(needed[0]); i++) {
		if (!io_uring_opcode_supported(probe, needed[i]))
			rc = -ENOSYS;
	}
	io_uring_free_probe(probe);
	return rc;
}

static int uring_create(struct ox_io *io)
{
	struct io_uring_be *ur;
	unsigned cq_entries;
	int rc;

	ur = calloc(1, sizeof(*ur));
	if (!ur)
		return -ENOMEM;
	// Invariant 3; the kernel also wants the CQ at least as big as the SQ.
	cq_entries = 2 * io->ops_max;
	if (cq_entries < io->entries)
		cq_entries = io->entries;
	rc = ring_setup(ur, io->entries, cq_entries);
	if (rc < 0)
		goto fail_free;
	rc = ring_probe(&ur->ring);
	if (rc < 0)
		goto fail_ring;
	OX_ASSERT(ur->cq_entries >= 2 * io->ops_max); // invariant 3
	io->be_state.uring = ur;
	return 0;

fail_ring:
	io_uring_queue_exit(&ur->ring);
fail_free:
	free(ur);
	return rc;
}

static void uring_destroy(struct ox_io *io)
{
	struct io_uring_be *ur = io->be_state.uring;

	OX_ASSERT(io->inflight == 0 && ur->backlog_head == NULL);
	io_uring_queue_exit(&ur->ring);
	free(ur);
	io->be_state.uring = NULL;
}

// True when the SQ has n free entries, submitting what is queued to make
// room if needed. A refused submission (-EBUSY, -EAGAIN under memory
// pressure) leaves the SQ full; ox_io_run retries it and reports errors.
static bool sq_room(struct io_uring_be *ur, unsigned n)
{
	if (io_uring_sq_space_left(&ur->ring) >= n)
		return true;
	(void)io_uring_submit(&ur->ring);
	return io_uring_sq_space_left(&ur->ring) >= n;
}

static void prep_write(struct io_uring_sqe *sqe, struct io_op *op)
{
	struct io_op_write *w = &op->u.write;
	int nr = w->iovcnt - w->first;

	// IORING_OP_WRITE skips importing an iovec: the common one-buffer
	// append takes it. w->left <= OX_IO_LEN_MAX fits in unsigned.
	if (nr == 1)
		io_uring_prep_write(sqe, op->fd, w->iov[w->first].iov_base,
				    (unsigned)w->left, op->off);
	else
		io_uring_prep_writev(sqe, op->fd, &w->iov[w->first],
				     (unsigned)nr, op->off);
}

static void prep_send(struct io_uring_sqe *sqe, struct io_op *op)
{
	struct io_op_write *w = &op->u.write;
	int nr = w->iovcnt - w->first;

	// IORING_OP_SEND skips the message header: one buffer takes it.
	if (nr <= 1) {
		io_uring_prep_send(sqe, op->fd, w->iov[w->first].iov_base,
				   w->left, MSG_NOSIGNAL);
		return;
	}
	w->msg = (struct msghdr){
		.msg_iov = &w->iov[w->first],
		.msg_iovlen = (size_t)nr,
	};
	io_uring_prep_sendmsg(sqe, op->fd, &w->msg, MSG_NOSIGNAL);
}

// The SQE of a socket operation.
static void prep_socket(struct io_uring_sqe *sqe, struct io_op *op)
{
	switch (op->kind) {
	case IO_OP_ACCEPT:
		io_uring_prep_accept(sqe, op->fd, NULL, NULL,
				     SOCK_NONBLOCK | SOCK_CLOEXEC);
		break;
	case IO_OP_CONNECT:
		io_uring_prep_connect(sqe, op->fd,
				      (struct sockaddr *)&op->u.connect.addr,
				      op->u.connect.addrlen);
		break;
	case IO_OP_RECV:
		io_uring_prep_recv(sqe, op->fd, op->u.read.buf,
				   op->u.read.len, 0);
		break;
	case IO_OP_SEND:
		prep_send(sqe, op);
		break;
	case IO_OP_POLL:
		io_uring_prep_poll_add(sqe, op->fd, op->u.poll.events);
		break;
	default:
		OX_ASSERT(!"not a socket operation");
	}
}

static void prep_main(struct io_uring_sqe *sqe, struct io_op *op)
{
	// A cancelled operation still owes its callback: a NOP brings it
	// back through the ring like any other completion.
	op->round_nop = op->cancelled;
	if (op->cancelled) {
		io_uring_prep_nop(sqe);
		io_uring_sqe_set_data64(sqe, op_data(op, TAG_MAIN));
		return;
	}
	switch (op->kind) {
	case IO_OP_OPEN:
		io_uring_prep_openat(sqe, AT_FDCWD, op->u.open.path,
				     op->u.open.flags, op->u.open.mode);
		break;
	case IO_OP_READ:
		io_uring_prep_read(sqe, op->fd, op->u.read.buf,
				   (unsigned)op->u.read.len, op->off);
		break;
	case IO_OP_WRITE:
		prep_write(sqe, op);
		break;
	case IO_OP_FSYNC:
		io_uring_prep_fsync(sqe, op->fd,
				    op->u.fsync.datasync ? IORING_FSYNC_DATASYNC : 0);
		break;
	case IO_OP_TIMER:
		io_uring_prep_timeout(sqe, &op->u.timer.ts, 0, 0);
		break;
	default:
		prep_socket(sqe, op);
		break;
	}
	io_uring_sqe_set_data64(sqe, op_data(op, TAG_MAIN));
}

// Prepares the next round of op: one SQE, or a write linked to an
// fdatasync so that one submission covers both. False if the SQ has no
// room even after submitting.
static bool prep_op(struct io_uring_be *ur, struct io_op *op)
{
	bool linked = op->kind == IO_OP_WRITE && op->u.write.dsync;
	unsigned n = linked ? 2 : 1;
	struct io_uring_sqe *sqe;

	if (!sq_room(ur, n)) // invariant 5: room for the pair first
		return false;
	sqe = io_uring_get_sqe(&ur->ring);
	OX_ASSERT(sqe != NULL);
	prep_main(sqe, op);
	if (linked) {
		sqe->flags |= IOSQE_IO_LINK;
		sqe = io_uring_get_sqe(&ur->ring);
		OX_ASSERT(sqe != NULL);
		io_uring_prep_fsync(sqe, op->fd, IORING_FSYNC_DATASYNC);
		io_uring_sqe_set_data64(sqe, op_data(op, TAG_SYNC));
	}
	op->cqes_pending = n;
	op->round_linked = linked;
	op->round_res = 0;
	op->sync_res = 0;
	ur->cqes_pending += n;
	return true;
}

static void backlog_push(struct io_uring_be *ur, struct io_op *op)
{
	op->next = NULL;
	if (ur->backlog_tail)
		ur->backlog_tail->next = op;
	else
		ur->backlog_head = op;
	ur->backlog_tail = op;
}

static void backlog_flush(struct io_uring_be *ur)
{
	while (ur->backlog_head && prep_op(ur, ur->backlog_head)) {
		ur->backlog_head = ur->backlog_head->next;
		if (!ur->backlog_head)
			ur->backlog_tail = NULL;
	}
}

// Queues op's next round: behind the backlog if there is one, so that
// operations reach the kernel in submission order.
static void queue_round(struct io_uring_be *ur, struct io_op *op)
{
	if (ur->backlog_head || !prep_op(ur, op))
		backlog_push(ur, op);
}

static void uring_start(struct ox_io *io, struct io_op *op)
{
	queue_round(io->be_state.uring, op);
}

// Ends a round of a write: the callback if every byte is written (and
// synced, with OX_IO_DSYNC) or something failed, else a round for the
// rest. A short write breaks the link, so its fdatasync comes back
// -ECANCELED; the next round links a new one after the rest.
static void write_round_done(struct ox_io *io, struct io_op *op)
{
	int res = op->round_res;
	int sync = op->sync_res;
	size_t n;
	bool more;

	if (res < 0) {
		ox_io_op_complete(io, op, res);
		return;
	}
	OX_ASSERT((size_t)res <= op->u.write.left);
	// Fault injection applies to files only: a stream cannot take the
	// same bytes twice.
	n = op->kind == IO_OP_WRITE ? ox_io_short_write(io, (size_t)res) :
				      (size_t)res;
	if (n < (size_t)res && op->round_linked)
		sync = -ECANCELED; // injected short write: as the kernel does
	// A call that writes nothing makes no progress: fail rather than spin.
	if (n == 0 && op->u.write.left > 0) {
		ox_io_op_complete(io, op, -EIO);
		return;
	}
	ox_io_op_advance(op, n);
	more = op->u.write.left > 0;
	if (more && op->cancelled) { // a send that ox_io_destroy cancelled
		ox_io_op_complete(io, op, -ECANCELED);
		return;
	}
	if (op->round_linked && sync < 0 && !(more && sync == -ECANCELED)) {
		ox_io_op_complete(io, op, sync);
		return;
	}
	if (more) {
		queue_round(io->be_state.uring, op);
		return;
	}
	ox_io_op_complete(io, op, (int)op->u.write.total);
}

static int timer_result(int res)
{
	if (res == -ETIME) // how a timeout with count 0 expires
		return 0;
	return res;
}

static void handle_cqe(struct ox_io *io, uint64_t data, int res)
{
	struct io_uring_be *ur = io->be_state.uring;
	unsigned tag = (unsigned)(data & TAG_MASK);
	struct io_op *op = (struct io_op *)(uintptr_t)(data & ~(uint64_t)TAG_MASK);

	OX_ASSERT(ur->cqes_pending > 0);
	ur->cqes_pending--;
	// The timer's own CQE says whether it expired or was removed; its
	// op may even be reused by now, so it is not touched.
	if (tag == TAG_REMOVE)
		return;
	OX_ASSERT(op >= io->ops && op < io->ops + io->ops_max);
	OX_ASSERT(op->state == IO_OP_BUSY && op->cqes_pending > 0);
	if (tag == TAG_SYNC)
		op->sync_res = res;
	else
		op->round_res = res;
	if (--op->cqes_pending > 0)
		return; // the other half of a linked pair is still out
	if (op->round_nop)
		ox_io_op_complete(io, op, -ECANCELED);
	else if (op->kind == IO_OP_WRITE || op->kind == IO_OP_SEND)
		write_round_done(io, op);
	else if (op->kind == IO_OP_TIMER)
		ox_io_op_complete(io, op, timer_result(op->round_res));
	else
		ox_io_op_complete(io, op, op->round_res);
}

// Handles the CQEs that are ready, in batches. Bounded by the CQ size per
// call so that callbacks that keep completing new operations at once
// cannot keep one pass going forever.
static void reap(struct ox_io *io)
{
	struct io_uring_be *ur = io->be_state.uring;
	struct io_uring_cqe *cqes[REAP_BATCH];
	unsigned budget = ur->cq_entries;
	unsigned n;

	while (budget > 0) {
		n = io_uring_peek_batch_cqe(&ur->ring, cqes,
					    budget < REAP_BATCH ? budget : REAP_BATCH);
		if (n == 0)
			break;
		// Callbacks may prepare and even submit SQEs here: that moves
		// the SQ only, and these CQEs stay put until the advance.
		for (unsigned i = 0; i < n; i++)
			handle_cqe(io, cqes[i]->user_data, cqes[i]->res);
		io_uring_cq_advance(&ur->ring, n);
		budget -= n;
	}
}

// How many CQEs to wait for: each operation still to complete needs at
// least one, so waiting for as many as are wanted never waits past the
// target; and never for more than the kernel owes.
static unsigned wait_count(const struct ox_io *io, const struct io_uring_be *ur,
			   uint64_t target)
{
	uint64_t want;

	if (io->completed >= target)
		return 0;
	want = target - io->completed;
	return want < ur->cqes_pending ? (unsigned)want : ur->cqes_pending;
}

// Errors after which submitting again later can succeed: a signal, a
// kernel short of memory, or a CQ backlog that reaping clears.
static bool transient(int rc)
{
	return rc == -EINTR || rc == -EAGAIN || rc == -EBUSY || rc == -ETIME;
}

static int uring_run(struct ox_io *io, uint64_t target)
{
	struct io_uring_be *ur = io->be_state.uring;
	int rc;

	for (;;) {
		backlog_flush(ur);
		// Every operation in flight is in the backlog or owes CQEs.
		OX_ASSERT(io->inflight == 0 || ur->cqes_pending > 0 ||
			  ur->backlog_head != NULL);
		rc = io_uring_submit_and_wait(&ur->ring,
					      wait_count(io, ur, target));
		if (rc < 0 && !transient(rc))
			return rc;
		reap(io);
		if (io->completed >= target || io->inflight == 0)
			break;
	}
	// Operations that callbacks submitted during the pass start now
	// rather than at the next call.
	backlog_flush(ur);
	if (io_uring_sq_ready(&ur->ring) > 0) {
		rc = io_uring_submit(&ur->ring);
		if (rc < 0 && !transient(rc))
			return rc;
	}
	return 0;
}

// Sends a removal for every timer in the kernel (or in the SQ: the
// removal follows it there) and a cancel for every readiness operation;
// those still in the backlog become NOPs when prepared. If the SQ cannot
// take a removal, that timer simply expires (and that socket operation
// waits for its descriptor, which the caller shuts down). The removals
// run when submitted, before any CQE is reaped, so they cannot hit an op
// that completed and was reused meanwhile.
static void uring_cancel_waiting(struct ox_io *io)
{
	struct io_uring_be *ur = io->be_state.uring;

	for (unsigned i = 0; i < io->ops_max; i++) {
		struct io_op *op = &io->ops[i];
		struct io_uring_sqe *sqe;

		if (op->state != IO_OP_BUSY || !ox_io_kind_waits(op->kind) ||
		    op->cancelled)
			continue;
		op->cancelled = true;
		if (op->cqes_pending == 0 || !sq_room(ur, 1))
			continue;
		sqe = io_uring_get_sqe(&ur->ring);
		OX_ASSERT(sqe != NULL);
		if (op->kind == IO_OP_TIMER)
			io_uring_prep_timeout_remove(sqe, op_data(op, TAG_MAIN), 0);
		else
			io_uring_prep_cancel64(sqe, op_data(op, TAG_MAIN), 0);
		io_uring_sqe_set_data64(sqe, op_data(op, TAG_REMOVE));
		ur->cqes_pending++;
	}
}

const struct io_backend ox_io_uring_backend = {
	.create = uring_create,
	.destroy = uring_destroy,
	.start = uring_start,
	.run = uring_run,
	.cancel_waiting = uring_cancel_waiting,
};
