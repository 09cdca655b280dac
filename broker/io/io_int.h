// SPDX-License-Identifier: Apache-2.0
//
// Private to broker/io: the loop and operation structs shared by the front
// (io.c) and the two backends (io_uring.c, io_sync.c), and the table of
// functions through which the front drives a backend. Nothing outside
// broker/io includes this header, except the module's own unit tests (for
// the fault-injection hook at the bottom). It must not include liburing:
// only io_uring.c does, so the uring backend keeps its ring behind an
// opaque pointer. The invariants cited in assertions are listed in io.c.
#ifndef OX_BROKER_IO_IO_INT_H
#define OX_BROKER_IO_IO_INT_H

#include "broker/io/io.h"

#include <linux/time_types.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

// Default submission queue size: deep enough to keep a few hundred writes
// in flight per shard, small enough that the rings of many shards fit in
// locked memory on kernels that still charge it (before 5.12).
#define OX_IO_ENTRIES_DEFAULT 256u

// io_uring caps a submission queue at 32768 entries (IORING_MAX_ENTRIES).
#define OX_IO_ENTRIES_LIMIT 32768u

// An operation has at most two completions outstanding (a write and its
// linked fdatasync, or a timer and its removal) and a completion queue
// holds at most 65536 entries, so 32768 operations never overflow it.
#define OX_IO_OPS_LIMIT 32768u

enum io_op_kind {
	IO_OP_OPEN = 1,
	IO_OP_READ,
	IO_OP_WRITE,
	IO_OP_FSYNC,
	IO_OP_TIMER,
	// Operations that wait for a file descriptor to become ready: they
	// may wait forever, so ox_io_destroy cancels them like timers.
	IO_OP_ACCEPT,
	IO_OP_CONNECT,
	IO_OP_RECV,
	IO_OP_SEND,
	IO_OP_POLL,
};

// Whether an operation of this kind waits on readiness (or a clock)
// rather than on a file operation: ox_io_destroy cancels those, and
// refuses new ones while it drains the loop.
static inline bool ox_io_kind_waits(enum io_op_kind kind)
{
	return kind >= IO_OP_TIMER;
}

enum io_op_state {
	IO_OP_FREE = 0, // on the pool's free list
	IO_OP_BUSY,     // accepted, its callback not run yet
};

struct io_op_open {
	char *path; // heap copy, freed when the operation completes
	int flags;
	mode_t mode;
};

struct io_op_read {
	void *buf;
	size_t len;
};

// The part of a write (or send) not yet written is iov[first..iovcnt),
// `left` bytes in all, at io_op.off (unused by sends); ox_io_op_advance
// consumes it after each call.
struct io_op_write {
	struct iovec iov[OX_IO_IOV_MAX];
	int first;
	int iovcnt;
	size_t left;
	size_t total; // the byte count the callback gets on success
	bool dsync;   // OX_IO_DSYNC: fdatasync once every byte is written
	// A send's message header for IORING_OP_SENDMSG and sendmsg(2): it
	// must stay put while the kernel may read it, so it lives here.
	struct msghdr msg;
};

struct io_op_connect {
	struct sockaddr_storage addr; // copied at submission
	socklen_t addrlen;
	bool started; // sync: connect(2) said EINPROGRESS, wait for POLLOUT
};

struct io_op_poll {
	unsigned events; // POLLIN, POLLOUT, POLLPRI, POLLRDHUP
};

struct io_op_fsync {
	bool datasync;
};

struct io_op_timer {
	uint64_t deadline_ns;        // CLOCK_MONOTONIC; the sync backend's key
	struct __kernel_timespec ts; // relative timeout for IORING_OP_TIMEOUT
};

// One operation, from acceptance to its callback. Lives in the pool that
// ox_io_create allocates: nothing is malloc'd per operation except the
// path copy of an open (opens are rare and paths are up to PATH_MAX).
struct io_op {
	struct io_op *next; // free list, backlog, FIFO or timer list
	ox_io_cb cb;
	void *arg;
	enum io_op_kind kind;
	enum io_op_state state;
	int fd;
	uint64_t off; // file offset of the next byte to read or write
	// Set by ox_io_destroy on timers and readiness operations: complete
	// with -ECANCELED rather than wait (or, for a send, go on).
	bool cancelled;
	short wait_events; // sync: the poll(2) events it waits for
	union {
		struct io_op_open open;
		struct io_op_read read; // reads and recvs
		struct io_op_write write; // writes and sends
		struct io_op_fsync fsync;
		struct io_op_timer timer;
		struct io_op_connect connect;
		struct io_op_poll poll;
	} u;
	// io_uring bookkeeping for the round of SQEs in flight.
	unsigned cqes_pending; // completions still expected this round
	int round_res;         // result of the main SQE of the round
	int sync_res;          // result of the linked fdatasync SQE
	bool round_linked;     // this round linked a write and an fdatasync
	bool round_nop;        // this round is the NOP of a cancelled op
};

// What the front asks of a backend. `start` always accepts the operation,
// queueing it when the kernel has no room; every failure reaches the
// caller through the operation's callback, from `run`.
struct io_backend {
	int (*create)(struct ox_io *io);
	void (*destroy)(struct ox_io *io);
	void (*start)(struct ox_io *io, struct io_op *op);
	// Runs until io->completed reaches `target` or nothing is in flight;
	// with target <= io->completed, makes one pass that does not block.
	int (*run)(struct ox_io *io, uint64_t target);
	// Makes every timer and readiness operation in flight complete soon
	// with -ECANCELED (unless it has already completed in the kernel).
	void (*cancel_waiting)(struct ox_io *io);
};

extern const struct io_backend ox_io_uring_backend;
extern const struct io_backend ox_io_sync_backend;

struct io_uring_be;
struct io_sync_be;

struct ox_io {
	const struct io_backend *be;
	enum ox_io_backend backend;
	unsigned entries;   // submission queue size (uring only)
	unsigned ops_max;   // pool size
	unsigned inflight;  // invariant 2: ops out of the pool
	uint64_t completed; // callbacks run since create
	bool running;       // inside ox_io_run: guards against re-entry
	bool draining;      // inside ox_io_destroy: no new waiting ops
	size_t write_max;   // fault injection (ox_io_short_write); 0: off
	struct io_op *ops;  // the pool: ops_max entries
	struct io_op *free; // free list through io_op.next
	union {
		struct io_uring_be *uring;
		struct io_sync_be *sync;
	} be_state;
};

// Returns op to the pool, then runs its callback with res: the callback
// can reuse the slot at once. The only place callbacks are called.
void ox_io_op_complete(struct ox_io *io, struct io_op *op, int res);

// Consumes n written bytes from the front of a write's remaining iovecs
// and moves its offset on.
void ox_io_op_advance(struct io_op *op, size_t n);

// The byte count a write call that wrote n bytes is taken to have
// written: n, or io->write_max when fault injection is on and n is above
// it. The rest is then written again from the same buffers at the same
// offsets, so the file ends up the same while the continuation runs.
size_t ox_io_short_write(const struct ox_io *io, size_t n);

// CLOCK_MONOTONIC in nanoseconds.
uint64_t ox_io_now_ns(void);

// Fault injection for the module's tests: from now on every write call
// that writes more than `bytes` counts as a short write of `bytes`, and
// its linked fdatasync as cancelled, as the kernel does after a short
// write. 0 turns it off.
void ox_io_set_write_max(struct ox_io *io, size_t bytes);

#endif
