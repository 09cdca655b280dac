// SPDX-License-Identifier: Apache-2.0
//
// What the log integration programs (log_crash, log_damage,
// log_compact_crash) share: the CHECK macro and its failure count, a fatal
// lc_die(), the run's seed (OX_TEST_SEED replays it) and the PRNG it
// drives, the io loop of a round, one append waited for, a temporary
// directory and its removal, a walk over a directory and the bytes of its
// segment files. They are plain programs, not Criterion, because they fork
// and SIGKILL children. Not for the unit tests (tests/unit/log/helpers.h is
// their fixture), and not a library: each program compiles this file in.
#ifndef OX_TESTS_INTEGRATION_LOG_COMMON_H
#define OX_TESTS_INTEGRATION_LOG_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "broker/io/io.h"
#include "broker/log/log.h"

// Room for the temporary directory of a run and a partition below it.
#define LC_PATH_MAX 64

// Checks that fail; a program exits 1 when any did.
extern int lc_failures;

// A failed check is counted and reported, and the run goes on, so that one
// run shows every check that fails and not only the first.
#define CHECK(cond, ...)                                                     \
	do {                                                                 \
		if (!(cond)) {                                               \
			fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
			fprintf(stderr, __VA_ARGS__);                        \
			fprintf(stderr, "\n");                               \
			lc_failures++;                                       \
		}                                                            \
	} while (0)

// Starts a run: `name` (borrowed, a string literal) prefixes every message.
// The seed is OX_TEST_SEED when set (a replay), else taken from the clock
// and the pid; it is printed before anything can fail, and seeds lc_rng.
void lc_start(const char *name);

// splitmix64 over the run's seed: one seeded stream drives the whole run.
uint64_t lc_rng(void);

// A test whose setup fails cannot check anything: print and exit 1.
_Noreturn void lc_die(const char *what, int rc);

// The io loop of a round: io_uring on even rounds and the plain-syscall
// backend on odd ones, and plain syscalls wherever io_uring cannot be set
// up. Dies when neither can. The caller destroys it.
struct ox_io *lc_io_create(int round);

// Appends `batch` (len bytes, borrowed until it is durable) at `term` and
// runs the io loop until its callback has run. Returns its base offset;
// dies on any error.
int64_t lc_append_wait(struct ox_log *log, struct ox_io *io, void *batch,
		       size_t len, uint64_t term);

// Creates /tmp/ox-<tag>-XXXXXX into root (LC_PATH_MAX bytes); dies on
// failure. lc_rmtree removes it and all it holds, and only complains
// (the checks are done by then).
void lc_tmpdir(char *root, const char *tag);
void lc_rmtree(const char *root);

// Calls fn with each entry of dir ("." and ".." too), name and
// "<dir>/<name>". Returns -errno when dir cannot be opened (the caller
// decides whether that is fatal), else 0.
typedef void (*lc_dir_each_cb)(void *arg, const char *name, const char *path);
int lc_dir_each(const char *dir, lc_dir_each_cb fn, void *arg);

// Bytes in dir's segment (.log) files. A directory that cannot be opened
// holds none when absent_ok (a killed child may not have created it yet);
// otherwise that is fatal.
uint64_t lc_segment_files_bytes(const char *dir, bool absent_ok);

#endif
