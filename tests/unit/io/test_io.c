// SPDX-License-Identifier: Apache-2.0
//
// Unit tests of broker/io. Every IO_TEST body runs twice, once per
// backend: in suite io_uring (skipped, saying why, where the kernel has no
// usable io_uring) and in suite io_sync. Each test gets a fresh mkdtemp
// directory under /tmp, removed afterwards. Invariant numbers refer to
// the design notes in broker/io/io.c. Timing is asserted only one way
// ("not before its time", "does not block for seconds"), never tightly.
#include "broker/io/io.h"
#include "broker/io/io_int.h" // ox_io_set_write_max, ox_io_now_ns

#include <criterion/criterion.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MS 1000000ull
#define S (1000 * MS)

static char test_dir[64];

static void dir_create(void)
{
	snprintf(test_dir, sizeof(test_dir), "/tmp/ox-io-XXXXXX");
	cr_assert_not_null(mkdtemp(test_dir), "mkdtemp: %s", strerror(errno));
}

static void dir_remove(void)
{
	DIR *d = opendir(test_dir);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			unlinkat(dirfd(d), e->d_name, 0);
	}
	closedir(d);
	rmdir(test_dir);
}

TestSuite(io_uring, .init = dir_create, .fini = dir_remove);
TestSuite(io_sync, .init = dir_create, .fini = dir_remove);
TestSuite(io_api);

static void skip_without_uring(void)
{
	struct ox_io_opts o = { .backend = OX_IO_BACKEND_URING };
	struct ox_io *io = NULL;
	int rc = ox_io_create(&io, &o);

	if (rc < 0)
		cr_skip_test("io_uring unavailable here: %s", strerror(-rc));
	ox_io_destroy(io);
}

// Defines one body and runs it under both backends.
#define IO_TEST(name)                                  \
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

static struct ox_io *io_new(enum ox_io_backend be, unsigned entries,
			    unsigned ops_max)
{
	struct ox_io_opts o = {
		.backend = be,
		.entries = entries,
		.ops_max = ops_max,
	};
	struct ox_io *io = NULL;
	int rc = ox_io_create(&io, &o);

	cr_assert_eq(rc, 0, "ox_io_create: %s", strerror(-rc));
	cr_assert_eq(ox_io_backend(io), be);
	cr_assert_eq(ox_io_inflight(io), 0);
	return io;
}

static void path_of(char *out, size_t cap, const char *name)
{
	snprintf(out, cap, "%s/%s", test_dir, name);
}

static void fill(unsigned char *buf, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (unsigned char)(seed * 131u + i * 7u + (i >> 9));
}

// The outcome of one operation, as its callback saw it.
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

// Checks the callback did not run inside the submitting call, runs the
// loop until it has, checks it ran once (invariant 1), returns its res.
static int wait_done(struct ox_io *io, struct done *d, int submit_rc)
{
	int rc;

	cr_assert_eq(submit_rc, 0, "submit: %s", strerror(-submit_rc));
	cr_assert_eq(d->calls, 0, "callback ran inside the submitting call");
	rc = ox_io_run_until(io, &d->flag);
	cr_assert_eq(rc, 0, "ox_io_run_until: %s", strerror(-rc));
	cr_assert_eq(d->calls, 1, "callback ran %d times", d->calls);
	return d->res;
}

static int do_open(struct ox_io *io, const char *name, int flags)
{
	char path[PATH_MAX];
	struct done d = { 0 };

	path_of(path, sizeof(path), name);
	return wait_done(io, &d, ox_io_open(io, path, flags, 0644, done_cb, &d));
}

static int do_write(struct ox_io *io, int fd, const void *buf, size_t len,
		    uint64_t off, unsigned flags)
{
	struct done d = { 0 };

	return wait_done(io, &d,
			 ox_io_write(io, fd, buf, len, off, flags, done_cb, &d));
}

static int do_writev(struct ox_io *io, int fd, const struct iovec *iov,
		     int iovcnt, uint64_t off, unsigned flags)
{
	struct done d = { 0 };

	return wait_done(io, &d, ox_io_writev(io, fd, iov, iovcnt, off, flags,
					      done_cb, &d));
}

static int do_read(struct ox_io *io, int fd, void *buf, size_t len,
		   uint64_t off)
{
	struct done d = { 0 };

	return wait_done(io, &d, ox_io_read(io, fd, buf, len, off, done_cb, &d));
}

static int do_fsync(struct ox_io *io, int fd, int datasync)
{
	struct done d = { 0 };

	return wait_done(io, &d, ox_io_fsync(io, fd, datasync, done_cb, &d));
}

static int open_rw(struct ox_io *io, const char *name)
{
	int fd = do_open(io, name, O_CREAT | O_RDWR | O_CLOEXEC);

	cr_assert_geq(fd, 0, "open %s: %s", name, strerror(-fd));
	return fd;
}

// Reads the whole range back with plain pread and compares it.
static void expect_file(int fd, const unsigned char *want, size_t len,
			uint64_t off)
{
	unsigned char *got = malloc(len + 1);

	cr_assert_not_null(got);
	cr_assert_eq(pread(fd, got, len + 1, (off_t)off), (ssize_t)len,
		     "file length differs");
	cr_assert_eq(memcmp(got, want, len), 0, "file content differs");
	free(got);
}

// Runs the loop until nothing is in flight.
static void drain(struct ox_io *io)
{
	while (ox_io_inflight(io) > 0)
		cr_assert_geq(ox_io_run(io, ox_io_inflight(io)), 0);
}

IO_TEST(open_write_read)
{
	struct ox_io *io = io_new(be, 0, 0);
	unsigned char buf[8192], back[8192];
	struct stat st;
	int fd = open_rw(io, "a");

	fill(buf, sizeof(buf), 1);
	cr_assert_eq(do_write(io, fd, buf, sizeof(buf), 0, 0), (int)sizeof(buf));
	memset(back, 0, sizeof(back));
	cr_assert_eq(do_read(io, fd, back, sizeof(back), 0), (int)sizeof(back));
	cr_assert_arr_eq(back, buf, sizeof(buf));
	cr_assert_eq(fstat(fd, &st), 0);
	cr_assert_eq(st.st_size, (off_t)sizeof(buf));
	cr_assert_eq(ox_io_inflight(io), 0);
	close(fd);
	ox_io_destroy(io);
}

IO_TEST(writev_gathers_in_order)
{
	struct ox_io *io = io_new(be, 0, 0);
	unsigned char a[3] = { 'a', 'b', 'c' }, b[4096], c[5] = "wxyz";
	unsigned char want[3 + 4096 + 4];
	struct iovec iov[4] = {
		{ a, sizeof(a) }, { NULL, 0 }, { b, sizeof(b) }, { c, 4 },
	};
	struct done d = { 0 };
	int fd = open_rw(io, "v");

	fill(b, sizeof(b), 2);
	memcpy(want, a, 3);
	memcpy(want + 3, b, sizeof(b));
	memcpy(want + 3 + sizeof(b), c, 4);
	cr_assert_eq(ox_io_writev(io, fd, iov, 4, 100, 0, done_cb, &d), 0);
	// io.h: the iov array is copied, only the buffers are borrowed.
	memset(iov, 0, sizeof(iov));
	cr_assert_eq(wait_done(io, &d, 0), (int)sizeof(want));
	expect_file(fd, want, sizeof(want), 100);
	close(fd);
	ox_io_destroy(io);
}

IO_TEST(dsync_writes)
{
	struct ox_io *io = io_new(be, 0, 0);
	unsigned char buf[3 * 4096];
	struct iovec iov[2];
	int fd = open_rw(io, "d");

	fill(buf, sizeof(buf), 3);
	cr_assert_eq(do_write(io, fd, buf, 4096, 0, OX_IO_DSYNC), 4096);
	iov[0] = (struct iovec){ buf + 4096, 4096 };
	iov[1] = (struct iovec){ buf + 8192, 4096 };
	cr_assert_eq(do_writev(io, fd, iov, 2, 4096, OX_IO_DSYNC), 8192);
	cr_assert_eq(do_write(io, fd, buf, 0, 0, OX_IO_DSYNC), 0);
	expect_file(fd, buf, sizeof(buf), 0);
	close(fd);
	ox_io_destroy(io);
}

IO_TEST(fsync_and_fdatasync)
{
	struct ox_io *io = io_new(be, 0, 0);
	unsigned char buf[512];
	int fd = open_rw(io, "f");

	fill(buf, sizeof(buf), 4);
	cr_assert_eq(do_write(io, fd, buf, sizeof(buf), 0, 0), (int)sizeof(buf));
	cr_assert_eq(do_fsync(io, fd, 0), 0);
	cr_assert_eq(do_fsync(io, fd, 1), 0);
	expect_file(fd, buf, sizeof(buf), 0);
	close(fd);
	ox_io_destroy(io);
}

#define CONC_N 256
#define CONC_LEN 4096

struct conc {
	int res[CONC_N];
	int calls[CONC_N];
	int done;
};

struct conc_slot {
	struct conc *c;
	int i;
};

static void conc_cb(void *arg, int res)
{
	struct conc_slot *s = arg;

	s->c->res[s->i] = res;
	s->c->calls[s->i]++;
	s->c->done++;
}

// A queue of 8 entries for 256 writes: submissions must flush the full
// queue to make room rather than fail.
IO_TEST(concurrent_writes_at_distinct_offsets)
{
	struct ox_io *io = io_new(be, 8, 2 * CONC_N);
	static unsigned char buf[CONC_N * CONC_LEN], back[CONC_N * CONC_LEN];
	static struct conc c;
	static struct conc_slot slots[CONC_N];
	int fd = open_rw(io, "c");

	memset(&c, 0, sizeof(c));
	fill(buf, sizeof(buf), 5);
	for (int i = 0; i < CONC_N; i++) {
		unsigned flags = i % 16 == 0 ? OX_IO_DSYNC : 0;

		slots[i] = (struct conc_slot){ &c, i };
		cr_assert_eq(ox_io_write(io, fd, buf + (size_t)i * CONC_LEN,
					 CONC_LEN, (uint64_t)i * CONC_LEN, flags,
					 conc_cb, &slots[i]),
			     0);
	}
	cr_assert_eq(c.done, 0);
	cr_assert_eq(ox_io_inflight(io), CONC_N);
	// Exactly CONC_N are in flight, so waiting for CONC_N runs them all.
	cr_assert_eq(ox_io_run(io, CONC_N), CONC_N);
	for (int i = 0; i < CONC_N; i++) {
		cr_assert_eq(c.calls[i], 1, "write %d: %d callbacks", i, c.calls[i]);
		cr_assert_eq(c.res[i], CONC_LEN, "write %d: %d", i, c.res[i]);
	}
	cr_assert_eq(do_read(io, fd, back, sizeof(back), 0), (int)sizeof(back));
	cr_assert_eq(memcmp(back, buf, sizeof(buf)), 0);
	close(fd);
	ox_io_destroy(io);
}

IO_TEST(reads_at_eof_are_short)
{
	struct ox_io *io = io_new(be, 0, 0);
	unsigned char buf[100], back[4096];
	int fd = open_rw(io, "e");

	fill(buf, sizeof(buf), 6);
	cr_assert_eq(do_write(io, fd, buf, sizeof(buf), 0, 0), 100);
	cr_assert_eq(do_read(io, fd, back, sizeof(back), 0), 100);
	cr_assert_arr_eq(back, buf, 100);
	cr_assert_eq(do_read(io, fd, back, sizeof(back), 60), 40);
	cr_assert_arr_eq(back, buf + 60, 40);
	cr_assert_eq(do_read(io, fd, back, sizeof(back), 100), 0);
	cr_assert_eq(do_read(io, fd, back, sizeof(back), 1 << 20), 0);
	close(fd);
	ox_io_destroy(io);
}

IO_TEST(bad_fds_fail_through_the_callback)
{
	struct ox_io *io = io_new(be, 0, 0);
	unsigned char buf[64] = { 0 };
	struct iovec iov[2] = { { buf, 32 }, { buf + 32, 32 } };
	int fd = open_rw(io, "r");
	int ro = do_open(io, "r", O_RDONLY | O_CLOEXEC);
	int closed = dup(fd);

	cr_assert_geq(ro, 0);
	cr_assert_geq(closed, 0);
	cr_assert_eq(close(closed), 0);
	cr_assert_eq(do_write(io, ro, buf, sizeof(buf), 0, 0), -EBADF);
	cr_assert_eq(do_write(io, ro, buf, sizeof(buf), 0, OX_IO_DSYNC), -EBADF);
	cr_assert_eq(do_writev(io, ro, iov, 2, 0, 0), -EBADF);
	cr_assert_eq(do_read(io, closed, buf, sizeof(buf), 0), -EBADF);
	cr_assert_eq(do_read(io, -1, buf, sizeof(buf), 0), -EBADF);
	cr_assert_eq(do_write(io, closed, buf, sizeof(buf), 0, 0), -EBADF);
	cr_assert_eq(do_fsync(io, -1, 0), -EBADF);
	cr_assert_eq(do_fsync(io, closed, 1), -EBADF);
	cr_assert_eq(do_open(io, "missing/x", O_RDONLY), -ENOENT);
	cr_assert_eq(do_open(io, "r", O_CREAT | O_EXCL | O_RDWR), -EEXIST);
	cr_assert_eq(ox_io_inflight(io), 0);
	close(ro);
	close(fd);
	ox_io_destroy(io);
}

static void never_cb(void *arg, int res)
{
	(void)arg;
	cr_assert_fail("callback of a rejected operation ran (res %d)", res);
}

IO_TEST(out_of_range_arguments_are_rejected)
{
	struct ox_io *io = io_new(be, 0, 0);
	unsigned char buf[16] = { 0 };
	struct iovec iov[OX_IO_IOV_MAX + 1];

	for (int i = 0; i <= OX_IO_IOV_MAX; i++)
		iov[i] = (struct iovec){ buf, 1 };
	cr_assert_eq(ox_io_writev(io, 0, iov, 0, 0, 0, never_cb, NULL), -EINVAL);
	cr_assert_eq(ox_io_writev(io, 0, iov, OX_IO_IOV_MAX + 1, 0, 0,
				  never_cb, NULL),
		     -EINVAL);
	cr_assert_eq(ox_io_write(io, 0, buf, 1, 0, 0x80, never_cb, NULL), -EINVAL);
	cr_assert_eq(ox_io_read(io, 0, buf, (size_t)OX_IO_LEN_MAX + 1, 0,
				never_cb, NULL),
		     -EINVAL);
	cr_assert_eq(ox_io_read(io, 0, buf, 16, (uint64_t)INT64_MAX - 8,
				never_cb, NULL),
		     -EINVAL);
	cr_assert_eq(ox_io_write(io, 0, buf, 16, UINT64_MAX, 0, never_cb, NULL),
		     -EINVAL);
	cr_assert_eq(ox_io_inflight(io), 0);
	cr_assert_eq(ox_io_run(io, 0), 0);
	ox_io_destroy(io);
}

IO_TEST(full_pool_gives_ebusy_until_run)
{
	struct ox_io *io = io_new(be, 4, 4);
	struct done d[5] = { 0 };
	unsigned char buf[8];
	char path[PATH_MAX];

	path_of(path, sizeof(path), "b");
	for (int i = 0; i < 4; i++)
		cr_assert_eq(ox_io_timer(io, (uint64_t)(i + 1) * MS, done_cb, &d[i]), 0);
	cr_assert_eq(ox_io_inflight(io), 4);
	cr_assert_eq(ox_io_timer(io, MS, done_cb, &d[4]), -EBUSY);
	cr_assert_eq(ox_io_read(io, 0, buf, 8, 0, done_cb, &d[4]), -EBUSY);
	cr_assert_eq(ox_io_write(io, 0, buf, 8, 0, 0, done_cb, &d[4]), -EBUSY);
	cr_assert_eq(ox_io_fsync(io, 0, 0, done_cb, &d[4]), -EBUSY);
	cr_assert_eq(ox_io_open(io, path, O_RDONLY, 0, done_cb, &d[4]), -EBUSY);
	cr_assert_eq(ox_io_inflight(io), 4);
	cr_assert_geq(ox_io_run(io, 1), 1);
	cr_assert_lt(ox_io_inflight(io), 4);
	cr_assert_eq(ox_io_timer(io, MS, done_cb, &d[4]), 0);
	drain(io);
	for (int i = 0; i < 5; i++) {
		cr_assert_eq(d[i].calls, 1, "op %d: %d callbacks", i, d[i].calls);
		cr_assert_eq(d[i].res, 0);
	}
	ox_io_destroy(io);
}

#define CHAIN_N 100
#define CHAIN_LEN 512

struct chain {
	struct ox_io *io;
	int fd;
	int n;
	int flag;
	int err;
	const unsigned char *buf;
};

static void chain_cb(void *arg, int res)
{
	struct chain *c = arg;
	int rc;

	if (res != CHAIN_LEN) {
		c->err = res < 0 ? res : -EIO;
		c->flag = 1;
		return;
	}
	if (++c->n == CHAIN_N) {
		c->flag = 1;
		return;
	}
	rc = ox_io_write(c->io, c->fd, c->buf + c->n * CHAIN_LEN, CHAIN_LEN,
			 (uint64_t)c->n * CHAIN_LEN, 0, chain_cb, c);
	if (rc < 0) {
		c->err = rc;
		c->flag = 1;
	}
}

// A pool of one operation: each callback submits the next write, which
// works only because the slot is back in the pool before the callback.
IO_TEST(callbacks_chain_submissions)
{
	static unsigned char buf[CHAIN_N * CHAIN_LEN];
	struct chain c = { .buf = buf };
	struct ox_io *one = io_new(be, 1, 1);

	c.io = one;
	c.fd = open_rw(one, "chain");
	fill(buf, sizeof(buf), 7);
	cr_assert_eq(ox_io_write(one, c.fd, buf, CHAIN_LEN, 0, 0, chain_cb, &c), 0);
	cr_assert_eq(ox_io_run_until(one, &c.flag), 0);
	cr_assert_eq(c.err, 0, "chain failed: %s", strerror(-c.err));
	cr_assert_eq(c.n, CHAIN_N);
	cr_assert_eq(ox_io_inflight(one), 0);
	expect_file(c.fd, buf, sizeof(buf), 0);
	close(c.fd);
	ox_io_destroy(one);
}

#define FAN_N 32
#define FAN_LEN 4096

struct fan {
	struct ox_io *io;
	int dst;
	int reads;
	int writes;
	int errors;
	unsigned char bufs[FAN_N][FAN_LEN];
};

struct fan_slot {
	struct fan *f;
	int i;
};

static void fan_write_cb(void *arg, int res)
{
	struct fan *f = ((struct fan_slot *)arg)->f;

	f->writes++;
	f->errors += res != FAN_LEN;
}

static void fan_read_cb(void *arg, int res)
{
	struct fan_slot *s = arg;
	struct fan *f = s->f;

	f->reads++;
	if (res != FAN_LEN) {
		f->errors++;
		return;
	}
	// Submitted while the loop walks a batch of completions.
	if (ox_io_write(f->io, f->dst, f->bufs[s->i], FAN_LEN,
			(uint64_t)s->i * FAN_LEN, 0, fan_write_cb, s) < 0)
		f->errors++;
}

// Many completions at once, each of whose callbacks submits a write,
// with a queue of 4 entries so those submissions also flush it.
IO_TEST(callbacks_submit_while_completions_are_reaped)
{
	struct ox_io *io = io_new(be, 4, 2 * FAN_N);
	static unsigned char src[FAN_N * FAN_LEN];
	static struct fan f;
	static struct fan_slot slots[FAN_N];
	int src_fd = open_rw(io, "src");

	memset(&f, 0, sizeof(f));
	f.io = io;
	f.dst = open_rw(io, "dst");
	fill(src, sizeof(src), 8);
	cr_assert_eq(pwrite(src_fd, src, sizeof(src), 0), (ssize_t)sizeof(src));
	for (int i = 0; i < FAN_N; i++) {
		slots[i] = (struct fan_slot){ &f, i };
		cr_assert_eq(ox_io_read(io, src_fd, f.bufs[i], FAN_LEN,
					(uint64_t)i * FAN_LEN, fan_read_cb, &slots[i]),
			     0);
	}
	drain(io);
	cr_assert_eq(f.errors, 0);
	cr_assert_eq(f.reads, FAN_N);
	cr_assert_eq(f.writes, FAN_N);
	expect_file(f.dst, src, sizeof(src), 0);
	close(f.dst);
	close(src_fd);
	ox_io_destroy(io);
}

struct tick {
	int id;
	int *order;
	int *pos;
	uint64_t armed_ns;
	uint64_t fired_ns;
	int res;
	int calls;
};

static void tick_cb(void *arg, int res)
{
	struct tick *t = arg;

	t->fired_ns = ox_io_now_ns();
	t->res = res;
	t->calls++;
	t->order[(*t->pos)++] = t->id;
}

IO_TEST(timers_fire_in_deadline_order_never_early)
{
	static const uint64_t timeout_ns[4] = { 60 * MS, 20 * MS, 40 * MS, 0 };
	static const int want[4] = { 3, 1, 2, 0 };
	struct ox_io *io = io_new(be, 0, 0);
	struct tick t[4];
	int order[4] = { -1, -1, -1, -1 };
	int pos = 0;

	for (int i = 0; i < 4; i++) {
		t[i] = (struct tick){ .id = i, .order = order, .pos = &pos };
		t[i].armed_ns = ox_io_now_ns();
		cr_assert_eq(ox_io_timer(io, timeout_ns[i], tick_cb, &t[i]), 0);
	}
	cr_assert_eq(pos, 0);
	while (pos < 4)
		cr_assert_geq(ox_io_run(io, 1), 0);
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(order[i], want[i], "fired %d as #%d", order[i], i);
		cr_assert_eq(t[i].calls, 1);
		cr_assert_eq(t[i].res, 0);
		cr_assert_geq(t[i].fired_ns - t[i].armed_ns, timeout_ns[i],
			      "timer %d fired early", i);
	}
	ox_io_destroy(io);
}

// With wait_nr 0 the loop never blocks, yet completions still arrive.
IO_TEST(run_without_wait_does_not_block)
{
	struct ox_io *io = io_new(be, 0, 0);
	struct done slow = { 0 }, rd = { 0 };
	unsigned char buf[16];
	uint64_t t0 = ox_io_now_ns();
	int fd = open_rw(io, "n");

	cr_assert_eq(ox_io_timer(io, 30 * S, done_cb, &slow), 0);
	cr_assert_eq(ox_io_run(io, 0), 0);
	cr_assert_eq(ox_io_inflight(io), 1);
	cr_assert_eq(ox_io_read(io, fd, buf, sizeof(buf), 0, done_cb, &rd), 0);
	while (!rd.flag && ox_io_now_ns() - t0 < 20 * S)
		cr_assert_geq(ox_io_run(io, 0), 0);
	cr_assert_eq(rd.calls, 1);
	cr_assert_eq(rd.res, 0);
	cr_assert_lt(ox_io_now_ns() - t0, 20 * S, "ox_io_run(io, 0) blocked");
	cr_assert_eq(slow.calls, 0);
	ox_io_destroy(io);
	cr_assert_eq(slow.calls, 1);
	cr_assert_eq(slow.res, -ECANCELED);
	close(fd);
}

IO_TEST(run_counts_callbacks_and_stops_when_idle)
{
	struct ox_io *io = io_new(be, 0, 0);
	struct done d[3] = { 0 };
	unsigned char buf[3][8];
	int fd = open_rw(io, "k");

	for (int i = 0; i < 3; i++)
		cr_assert_eq(ox_io_read(io, fd, buf[i], 8, 0, done_cb, &d[i]), 0);
	// Asks for more than are in flight: returns once none is left.
	cr_assert_eq(ox_io_run(io, 100), 3);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(d[i].calls, 1);
	cr_assert_eq(ox_io_run(io, 5), 0);
	close(fd);
	ox_io_destroy(io);
}

IO_TEST(run_until_reports_deadlock)
{
	struct ox_io *io = io_new(be, 0, 0);
	struct done d = { 0 };
	int flag = 0;

	cr_assert_eq(ox_io_run_until(io, &flag), -EDEADLK);
	// The timer completes but never sets `flag`: the loop runs dry.
	cr_assert_eq(ox_io_timer(io, MS, done_cb, &d), 0);
	cr_assert_eq(ox_io_run_until(io, &flag), -EDEADLK);
	cr_assert_eq(d.calls, 1);
	flag = 1;
	cr_assert_eq(ox_io_run_until(io, &flag), 0);
	ox_io_destroy(io);
}

IO_TEST(destroy_runs_callbacks_of_ops_in_flight)
{
	enum { N = 16, LEN = 64 * 1024 };
	struct ox_io *io = io_new(be, 0, 0);
	static unsigned char buf[N * LEN];
	struct done d[N] = { 0 }, slow = { 0 };
	int fd = open_rw(io, "x");

	fill(buf, sizeof(buf), 9);
	for (int i = 0; i < N; i++)
		cr_assert_eq(ox_io_write(io, fd, buf + (size_t)i * LEN, LEN,
					 (uint64_t)i * LEN, i % 4 ? 0 : OX_IO_DSYNC,
					 done_cb, &d[i]),
			     0);
	cr_assert_eq(ox_io_timer(io, 60 * S, done_cb, &slow), 0);
	ox_io_destroy(io);
	for (int i = 0; i < N; i++) {
		cr_assert_eq(d[i].calls, 1, "write %d: %d callbacks", i, d[i].calls);
		cr_assert_eq(d[i].res, LEN);
	}
	cr_assert_eq(slow.calls, 1);
	cr_assert_eq(slow.res, -ECANCELED);
	expect_file(fd, buf, sizeof(buf), 0);
	close(fd);
}

struct rearm {
	struct ox_io *io;
	int fires;
	int last_res;
	int rearm_rc;
};

static void rearm_cb(void *arg, int res)
{
	struct rearm *r = arg;

	r->fires++;
	r->last_res = res;
	// Re-arms whatever res says: only the refusal during destroy ends it.
	r->rearm_rc = ox_io_timer(r->io, r->fires < 3 ? MS : 30 * S, rearm_cb, r);
}

IO_TEST(destroy_cancels_a_timer_that_rearms_itself)
{
	struct rearm r = { 0 };

	r.io = io_new(be, 0, 0);
	cr_assert_eq(ox_io_timer(r.io, MS, rearm_cb, &r), 0);
	while (r.fires < 3)
		cr_assert_geq(ox_io_run(r.io, 1), 0);
	cr_assert_eq(r.rearm_rc, 0);
	cr_assert_eq(ox_io_inflight(r.io), 1);
	ox_io_destroy(r.io);
	cr_assert_eq(r.fires, 4);
	cr_assert_eq(r.last_res, -ECANCELED);
	cr_assert_eq(r.rearm_rc, -ECANCELED);
}

IO_TEST(open_copies_its_path)
{
	struct ox_io *io = io_new(be, 0, 0);
	char path[PATH_MAX], kept[PATH_MAX];
	struct done d = { 0 };
	int fd;

	path_of(path, sizeof(path), "copied");
	memcpy(kept, path, sizeof(path));
	cr_assert_eq(ox_io_open(io, path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600,
				done_cb, &d),
		     0);
	memset(path, 'z', sizeof(path) - 1);
	path[sizeof(path) - 1] = '\0';
	fd = wait_done(io, &d, 0);
	cr_assert_geq(fd, 0, "open: %s", strerror(-fd));
	cr_assert_eq(access(kept, F_OK), 0);
	close(fd);
	ox_io_destroy(io);
}

// Fault injection turns every write into short ones of at most 1000
// bytes: the loop must continue them (and, with OX_IO_DSYNC, sync after
// the last piece) and report the full length (invariant 4).
IO_TEST(short_writes_are_continued)
{
	struct ox_io *io = io_new(be, 0, 0);
	static unsigned char buf[30000];
	struct iovec iov[3];
	int fd = open_rw(io, "s");

	fill(buf, sizeof(buf), 10);
	ox_io_set_write_max(io, 1000);
	cr_assert_eq(do_write(io, fd, buf, 10000, 0, 0), 10000);
	iov[0] = (struct iovec){ buf + 10000, 1500 };
	iov[1] = (struct iovec){ buf + 11500, 0 };
	iov[2] = (struct iovec){ buf + 11500, 2500 };
	cr_assert_eq(do_writev(io, fd, iov, 3, 10000, 0), 4000);
	cr_assert_eq(do_write(io, fd, buf + 14000, 7000, 14000, OX_IO_DSYNC), 7000);
	iov[0] = (struct iovec){ buf + 21000, 999 };
	iov[1] = (struct iovec){ buf + 21999, 8001 };
	cr_assert_eq(do_writev(io, fd, iov, 2, 21000, OX_IO_DSYNC), 9000);
	cr_assert_eq(do_write(io, fd, buf, 0, 0, 0), 0);
	ox_io_set_write_max(io, 0);
	expect_file(fd, buf, sizeof(buf), 0);
	close(fd);
	ox_io_destroy(io);
}

// A real short write: the file size limit lets the first call write 5000
// of 10000 bytes; the continuation then fails with EFBIG, which the
// callback must get instead of a short count (invariant 4). With
// OX_IO_DSYNC the short write also cancels the linked fdatasync.
IO_TEST(short_write_then_error_reports_the_error)
{
	struct ox_io *io = io_new(be, 0, 0);
	static unsigned char buf[10000];
	struct rlimit rl;
	struct stat st;
	int fd = open_rw(io, "big");

	fill(buf, sizeof(buf), 11);
	cr_assert_eq(getrlimit(RLIMIT_FSIZE, &rl), 0);
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < 5000)
		cr_skip_test("RLIMIT_FSIZE hard limit below 5000 bytes");
	rl.rlim_cur = 5000;
	signal(SIGXFSZ, SIG_IGN); // else the kernel's signal kills us
	cr_assert_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
	cr_assert_eq(do_write(io, fd, buf, sizeof(buf), 0, 0), -EFBIG);
	cr_assert_eq(do_write(io, fd, buf, sizeof(buf), 0, OX_IO_DSYNC), -EFBIG);
	cr_assert_eq(fstat(fd, &st), 0);
	cr_assert_eq(st.st_size, 5000);
	expect_file(fd, buf, 5000, 0);
	close(fd);
	ox_io_destroy(io);
}

Test(io_api, backend_names_parse)
{
	enum ox_io_backend be = OX_IO_BACKEND_SYNC;

	cr_assert_eq(ox_io_backend_parse("uring", &be), 0);
	cr_assert_eq(be, OX_IO_BACKEND_URING);
	cr_assert_eq(ox_io_backend_parse("sync", &be), 0);
	cr_assert_eq(be, OX_IO_BACKEND_SYNC);
	cr_assert_eq(ox_io_backend_parse("epoll", &be), -EINVAL);
	cr_assert_eq(ox_io_backend_parse("", &be), -EINVAL);
	cr_assert_eq(ox_io_backend_parse("Uring", &be), -EINVAL);
	cr_assert_eq(ox_io_backend_parse(NULL, &be), -EINVAL);
	cr_assert_eq(be, OX_IO_BACKEND_SYNC, "a failed parse changed *out");
}

Test(io_api, create_rejects_bad_options)
{
	struct ox_io *io = (struct ox_io *)&io;
	struct ox_io_opts o = { .backend = OX_IO_BACKEND_SYNC };

	o.ops_max = OX_IO_OPS_LIMIT + 1;
	cr_assert_eq(ox_io_create(&io, &o), -EINVAL);
	cr_assert_null(io);
	o.ops_max = 0;
	o.entries = OX_IO_ENTRIES_LIMIT + 1;
	cr_assert_eq(ox_io_create(&io, &o), -EINVAL);
	o.entries = 0;
	o.backend = (enum ox_io_backend)7;
	cr_assert_eq(ox_io_create(&io, &o), -EINVAL);
	cr_assert_null(io);
	ox_io_destroy(NULL);
}

Test(io_api, null_opts_mean_io_uring_defaults)
{
	struct ox_io *io = NULL;
	int rc = ox_io_create(&io, NULL);

	if (rc < 0)
		cr_skip_test("io_uring unavailable here: %s", strerror(-rc));
	cr_assert_eq(ox_io_backend(io), OX_IO_BACKEND_URING);
	cr_assert_eq(io->ops_max, 4 * OX_IO_ENTRIES_DEFAULT);
	ox_io_destroy(io);
}

// Makes io_uring_setup fail with ENOSYS in this (forked) test process, as
// on a kernel built without io_uring. Only the system call number is
// checked: good enough for a test that makes no other system call of
// another ABI.
static void deny_io_uring(void)
{
	struct sock_filter insns[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA)),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {
		.len = (unsigned short)(sizeof(insns) / sizeof(insns[0])),
		.filter = insns,
	};

	cr_assert_eq(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
		cr_skip_test("seccomp filters unavailable: %s", strerror(errno));
}

// The fallback path callers rely on: without io_uring, create reports the
// set-up errno and the sync backend still works.
Test(io_api, create_reports_missing_io_uring)
{
	struct ox_io_opts o = { .backend = OX_IO_BACKEND_URING };
	struct ox_io *io = (struct ox_io *)&io;
	struct done d = { 0 };

	deny_io_uring();
	cr_assert_eq(ox_io_create(&io, &o), -ENOSYS);
	cr_assert_null(io);
	o.backend = OX_IO_BACKEND_SYNC;
	cr_assert_eq(ox_io_create(&io, &o), 0);
	cr_assert_eq(wait_done(io, &d, ox_io_timer(io, 0, done_cb, &d)), 0);
	ox_io_destroy(io);
}
