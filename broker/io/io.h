// SPDX-License-Identifier: Apache-2.0
//
// The I/O loop: one `struct ox_io` per thread, never shared between threads.
// Operations are submitted with a completion callback and complete later,
// inside ox_io_run(), on the thread that owns the loop. This is the only
// module that includes liburing.
//
// Two backends sit behind one interface: io_uring (the default) and a plain
// syscall backend (pread/pwrite/fdatasync run inside ox_io_run, in
// submission order) used where io_uring is missing and as a baseline in
// benchmarks. Callers cannot tell them apart except by speed.
//
// Callback contract: `cb(arg, res)` runs exactly once per accepted
// operation, from ox_io_run() (never from the submitting call), with `res`
// the byte count (read/write), 0 (fsync, timer expiry), a file descriptor
// (open), or a negative errno. A callback may submit new operations.
// Buffers passed to an operation are borrowed until its callback runs.
#ifndef OX_BROKER_IO_IO_H
#define OX_BROKER_IO_IO_H

#include <stddef.h>
#include <stdint.h>
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
	// Submission queue entries; 0 means the default (256).
	unsigned entries;
	// Operations in flight at once; 0 means the default (4 * entries).
	// Submissions beyond it fail with -EBUSY: the caller runs the loop.
	unsigned ops_max;
};

// Flags for writes.
#define OX_IO_DSYNC 0x1u // follow the write with fdatasync; cb after both

// Creates a loop. Returns 0, -ENOMEM, -EINVAL, or the errno of ring set-up
// (-ENOSYS, -EPERM where io_uring is unavailable: fall back to SYNC).
int ox_io_create(struct ox_io **out, const struct ox_io_opts *opts);

// Waits for every operation in flight (running their callbacks), then frees
// the loop. NULL is a no-op.
void ox_io_destroy(struct ox_io *io);

// The backend in use.
enum ox_io_backend ox_io_backend(const struct ox_io *io);

// Parses "uring" / "sync"; returns 0 or -EINVAL.
int ox_io_backend_parse(const char *name, enum ox_io_backend *out);

// openat(AT_FDCWD, path, flags, mode); res is the new fd. Copies path.
int ox_io_open(struct ox_io *io, const char *path, int flags, mode_t mode,
	       ox_io_cb cb, void *arg);

// Positional read of up to len bytes; res is the bytes read (short at EOF).
int ox_io_read(struct ox_io *io, int fd, void *buf, size_t len, uint64_t off,
	       ox_io_cb cb, void *arg);

// Positional write of all len bytes: short writes are continued inside the
// loop, so res is len or a negative errno. With OX_IO_DSYNC the write is
// followed by fdatasync and res is negative if either failed.
int ox_io_write(struct ox_io *io, int fd, const void *buf, size_t len,
		uint64_t off, unsigned flags, ox_io_cb cb, void *arg);

// Like ox_io_write for iovcnt <= OX_IO_IOV_MAX buffers (copied: the iov
// array itself need not outlive the call, the buffers must).
#define OX_IO_IOV_MAX 16
int ox_io_writev(struct ox_io *io, int fd, const struct iovec *iov,
		 int iovcnt, uint64_t off, unsigned flags, ox_io_cb cb,
		 void *arg);

// fsync (datasync == 0) or fdatasync (datasync != 0).
int ox_io_fsync(struct ox_io *io, int fd, int datasync, ox_io_cb cb,
		void *arg);

// Calls cb(arg, 0) after timeout_ns nanoseconds (monotonic).
int ox_io_timer(struct ox_io *io, uint64_t timeout_ns, ox_io_cb cb,
		void *arg);

// Submits what is queued and runs completed callbacks. With wait_nr > 0
// blocks until at least wait_nr operations completed (or none is in
// flight). Returns the number of callbacks run or a negative errno.
int ox_io_run(struct ox_io *io, unsigned wait_nr);

// Runs the loop until *flag becomes non-zero (set by a callback) or nothing
// is in flight. Returns 0, or -EDEADLK when nothing is in flight and the
// flag is still zero. Convenience for synchronous callers and tests.
int ox_io_run_until(struct ox_io *io, const int *flag);

// Operations accepted and not yet completed.
unsigned ox_io_inflight(const struct ox_io *io);

#endif
