// SPDX-License-Identifier: Apache-2.0
//
// The I/O loop: one `struct ox_io` per thread, never shared between threads.
// Operations are submitted with a completion callback and complete later,
// inside ox_io_run(), on the thread that owns the loop. This is the only
// module that includes liburing.
//
// Two backends sit behind one interface: io_uring (the default) and a plain
// syscall backend (pread/pwrite/fdatasync run inside ox_io_run, in
// submission order; sockets made non-blocking and waited for with poll)
// used where io_uring is missing or blocked and as a baseline in
// benchmarks. Callers cannot tell them apart except by speed.
//
// Callback contract: `cb(arg, res)` runs exactly once per accepted
// operation, from ox_io_run() or ox_io_destroy() (never from the
// submitting call), with `res` the byte count (read/write/recv/send), 0
// (fsync, timer expiry, connect), a file descriptor (open, accept), the
// ready events (poll), or a negative errno. A callback
// may submit new operations, but must not call ox_io_run, ox_io_run_until
// or ox_io_destroy (they assert). Buffers passed to an operation are
// borrowed until its callback runs. A bad file descriptor is not a
// programmer error: it comes back as -EBADF through the callback.
//
// Every submission function returns 0 when the operation is accepted (its
// callback will run), -EBUSY when ops_max operations are already in
// flight (run the loop, then submit again), -EINVAL for arguments out of
// range, or an error noted at the function; nothing is accepted when it
// returns an error.
#ifndef OX_BROKER_IO_IO_H
#define OX_BROKER_IO_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

struct ox_io;

typedef void (*ox_io_cb)(void *arg, int res);

enum ox_io_backend {
	OX_IO_BACKEND_URING = 0,
	OX_IO_BACKEND_SYNC = 1,
};

struct ox_io_opts {
	enum ox_io_backend backend;
	// Submission queue entries; 0 means the default (256); at most
	// 32768. When the queue is full, submitting flushes it to the kernel.
	unsigned entries;
	// Operations in flight at once; 0 means the default (4 * entries,
	// capped at 32768); at most 32768. Submissions beyond it fail with
	// -EBUSY: the caller runs the loop. Allocated at create.
	unsigned ops_max;
};

// Flags for writes.
#define OX_IO_DSYNC 0x1u // follow the write with fdatasync; cb after both

// Byte counts travel back as an int: one read or write moves at most this
// many bytes (Linux's own limit per system call); larger ones get -EINVAL.
#define OX_IO_LEN_MAX 0x7ffff000u

// Creates a loop; opts NULL means all defaults (io_uring). Returns 0,
// -ENOMEM, -EINVAL, or the errno of ring set-up (-ENOSYS, -EPERM where
// io_uring is unavailable or lacks an operation we use: fall back to
// SYNC). The caller owns *out and frees it with ox_io_destroy; on failure
// *out is NULL.
int ox_io_create(struct ox_io **out, const struct ox_io_opts *opts);

// Waits for every operation in flight (running their callbacks), then frees
// the loop. Timers and socket operations (accept, connect, recv, send,
// poll) still pending are not waited for: their callbacks run with
// -ECANCELED (unless they completed first), and submitting one meanwhile
// (from a callback) returns -ECANCELED, so an operation that re-arms
// itself cannot hold destruction up. Must not be called from a callback.
// NULL is a no-op.
void ox_io_destroy(struct ox_io *io);

// The backend in use.
enum ox_io_backend ox_io_backend(const struct ox_io *io);

// Parses "uring" / "sync"; returns 0 or -EINVAL.
int ox_io_backend_parse(const char *name, enum ox_io_backend *out);

// openat(AT_FDCWD, path, flags, mode); res is the new fd, which the
// callback owns. Copies path (-ENOMEM if that fails).
int ox_io_open(struct ox_io *io, const char *path, int flags, mode_t mode,
	       ox_io_cb cb, void *arg);

// Positional read of up to len bytes; res is the bytes read (short at EOF,
// 0 at or past it). -EINVAL if len > OX_IO_LEN_MAX or off + len > INT64_MAX.
int ox_io_read(struct ox_io *io, int fd, void *buf, size_t len, uint64_t off,
	       ox_io_cb cb, void *arg);

// Positional write of all len bytes: short writes are continued inside the
// loop, so res is len or a negative errno. With OX_IO_DSYNC the write is
// followed by fdatasync and res is negative if either failed. -EINVAL for
// unknown flags, len > OX_IO_LEN_MAX or off + len > INT64_MAX.
int ox_io_write(struct ox_io *io, int fd, const void *buf, size_t len,
		uint64_t off, unsigned flags, ox_io_cb cb, void *arg);

// Like ox_io_write for 1 <= iovcnt <= OX_IO_IOV_MAX buffers (copied: the
// iov array itself need not outlive the call, the buffers must); their
// total length is limited like len. Other counts get -EINVAL.
#define OX_IO_IOV_MAX 16
int ox_io_writev(struct ox_io *io, int fd, const struct iovec *iov,
		 int iovcnt, uint64_t off, unsigned flags, ox_io_cb cb,
		 void *arg);

// fsync (datasync == 0) or fdatasync (datasync != 0).
int ox_io_fsync(struct ox_io *io, int fd, int datasync, ox_io_cb cb,
		void *arg);

// Calls cb(arg, 0) after timeout_ns nanoseconds (monotonic), never
// earlier; cb(arg, -ECANCELED) if ox_io_destroy cancels it. Returns
// -ECANCELED (nothing accepted) while ox_io_destroy is draining the loop.
int ox_io_timer(struct ox_io *io, uint64_t timeout_ns, ox_io_cb cb,
		void *arg);

// Sockets. These work on any socket under both backends; under the sync
// backend, connect wants an O_NONBLOCK socket (a blocking one stalls the
// loop inside connect(2) for as long as the kernel takes), while accept
// waits for readiness first and recv and send pass MSG_DONTWAIT. Unlike file
// operations they complete when their descriptor is ready, not in
// submission order.
//
// Closing a socket with operations pending: call shutdown(fd, SHUT_RDWR)
// (which completes a pending recv with 0, a pending send with -EPIPE and
// a pending accept on a listener with -EINVAL, under both backends), run
// the loop until the last of the socket's callbacks has run, and only
// then close(fd): a closed descriptor number can be reused at once and a
// pending operation would then act on another file. ox_io_destroy
// cancels whatever is still pending.

// accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC); res is the new
// connection's fd, which the callback owns (getpeername gives its peer).
int ox_io_accept(struct ox_io *io, int fd, ox_io_cb cb, void *arg);

// Connects fd to addr (copied; addrlen 1 to sizeof(struct
// sockaddr_storage), else -EINVAL); res is 0 once connected, or the
// connection's error (-ECONNREFUSED, ...).
int ox_io_connect(struct ox_io *io, int fd, const struct sockaddr *addr,
		  socklen_t addrlen, ox_io_cb cb, void *arg);

// Receives up to len bytes (1 <= len <= OX_IO_LEN_MAX, else -EINVAL) once
// some are available; res is the byte count, 0 at the end of the stream
// (the peer shut down or closed, or this side shut down), or a negative
// errno (-ECONNRESET when the peer reset the connection).
int ox_io_recv(struct ox_io *io, int fd, void *buf, size_t len, ox_io_cb cb,
	       void *arg);

// Sends all len bytes (MSG_NOSIGNAL: a closed peer is -EPIPE, never
// SIGPIPE); short sends are continued inside the loop, so res is len or a
// negative errno (some bytes may have gone out before the error). len up
// to OX_IO_LEN_MAX; zero sends nothing and completes with 0.
int ox_io_send(struct ox_io *io, int fd, const void *buf, size_t len,
	       ox_io_cb cb, void *arg);

// Like ox_io_send for 1 <= iovcnt <= OX_IO_IOV_MAX buffers, sent in order
// as one stream (sendmsg); the iov array is copied, the buffers borrowed.
int ox_io_sendv(struct ox_io *io, int fd, const struct iovec *iov, int iovcnt,
		ox_io_cb cb, void *arg);

// Waits until fd (any pollable descriptor: socket, eventfd, signalfd,
// pipe) has one of `events` (a non-zero mix of POLLIN, POLLOUT, POLLPRI,
// POLLRDHUP; else -EINVAL); res is the ready events, as poll(2) reports
// them (POLLERR and POLLHUP may come with them), or -EBADF. One-shot:
// submit again to wait again.
int ox_io_poll(struct ox_io *io, int fd, unsigned events, ox_io_cb cb,
	       void *arg);

// Submits what is queued and runs completed callbacks. With wait_nr > 0
// blocks until at least wait_nr operations completed (or none is in
// flight); with 0 it does not wait for the kernel or for timers (the sync
// backend still runs the queued operations' system calls). Returns the
// number of callbacks run, or a negative errno if the ring failed (the
// operations stay in flight). Operations that callbacks submit are started
// before it returns (io_uring) or run at the next call (sync). Must not be
// called from a callback.
int ox_io_run(struct ox_io *io, unsigned wait_nr);

// Runs the loop until *flag becomes non-zero (set by a callback) or nothing
// is in flight. Returns 0, or -EDEADLK when nothing is in flight and the
// flag is still zero. Convenience for synchronous callers and tests.
int ox_io_run_until(struct ox_io *io, const int *flag);

// Operations accepted and not yet completed.
unsigned ox_io_inflight(const struct ox_io *io);

#endif
