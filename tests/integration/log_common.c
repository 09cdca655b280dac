// SPDX-License-Identifier: Apache-2.0
//
// The helpers the log integration programs share (log_common.h): checks,
// the seed and its PRNG, io loops, a waited append, temporary directories.
// Each program links its own copy, so the state here (the failure count,
// the PRNG, the program's name) is per program and, after a fork, per
// process.
#include "tests/integration/log_common.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "proto/error.h"

int lc_failures;

static const char *prog = "log test";
static uint64_t rng_state;

void lc_start(const char *name)
{
	uint64_t seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);

	prog = name;
	if (getenv("OX_TEST_SEED"))
		seed = strtoull(getenv("OX_TEST_SEED"), NULL, 10);
	printf("%s: seed %" PRIu64 " (OX_TEST_SEED=%" PRIu64 " replays it)\n",
	       prog, seed, seed);
	// Printed before any child is forked, so that it is printed once.
	fflush(stdout);
	rng_state = seed;
}

uint64_t lc_rng(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

_Noreturn void lc_die(const char *what, int rc)
{
	fprintf(stderr, "%s: %s: %s\n", prog, what, ox_strerror(rc));
	exit(1);
}

struct ox_io *lc_io_create(int round)
{
	struct ox_io_opts o = { .backend = round % 2 ? OX_IO_BACKEND_SYNC
						     : OX_IO_BACKEND_URING };
	struct ox_io *io = NULL;

	if (ox_io_create(&io, &o) < 0) {
		o.backend = OX_IO_BACKEND_SYNC;
		int rc = ox_io_create(&io, &o);
		if (rc < 0)
			lc_die("ox_io_create", rc);
	}
	return io;
}

static void append_done(void *arg, int res, int64_t base, int64_t last)
{
	(void)base;
	(void)last;
	if (res < 0)
		lc_die("append", res);
	*(int *)arg = 1;
}

int64_t lc_append_wait(struct ox_log *log, struct ox_io *io, void *batch,
		       size_t len, uint64_t term)
{
	int64_t base = -1;
	int done = 0;

	int rc = ox_log_append(log, batch, len, term, 0, append_done, &done,
			       &base);
	if (rc < 0)
		lc_die("append", rc);
	rc = ox_io_run_until(io, &done);
	if (rc < 0)
		lc_die("append wait", rc);
	return base;
}

void lc_tmpdir(char *root, const char *tag)
{
	snprintf(root, LC_PATH_MAX, "/tmp/ox-%s-XXXXXX", tag);
	if (!mkdtemp(root))
		lc_die("mkdtemp", -errno);
}

static int rm_entry(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void lc_rmtree(const char *root)
{
	if (nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
		fprintf(stderr, "%s: could not remove %s\n", prog, root);
}

int lc_dir_each(const char *dir, lc_dir_each_cb fn, void *arg)
{
	char path[400];
	DIR *d = opendir(dir);
	struct dirent *e;

	if (!d)
		return -errno;
	while ((e = readdir(d)) != NULL) {
		snprintf(path, sizeof(path), "%s/%.255s", dir, e->d_name);
		fn(arg, e->d_name, path);
	}
	closedir(d);
	return 0;
}

static void add_segment_file(void *arg, const char *name, const char *path)
{
	uint64_t *total = arg;
	size_t n = strlen(name);
	struct stat st;

	if (n < 4 || strcmp(name + n - 4, ".log") != 0)
		return;
	if (stat(path, &st) == 0)
		*total += (uint64_t)st.st_size;
}

uint64_t lc_segment_files_bytes(const char *dir, bool absent_ok)
{
	uint64_t total = 0;
	int rc = lc_dir_each(dir, add_segment_file, &total);

	if (rc < 0 && !absent_ok)
		lc_die("opendir", rc);
	return total;
}
