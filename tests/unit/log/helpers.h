// SPDX-License-Identifier: Apache-2.0
//
// Shared fixture of the log unit tests: a temporary partition directory,
// an io loop of the chosen backend, a log with a test clock, batches built
// from a deterministic generator, and a model of what the log should hold
// (batch by batch) that reads check record by record. Criterion runs each
// test in its own process, so the fixture is one global, `T`.
#ifndef OX_TESTS_UNIT_LOG_HELPERS_H
#define OX_TESTS_UNIT_LOG_HELPERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/io/io.h"
#include "broker/log/log.h"

#define TL_PATH_MAX 128
// Batches the model remembers; tests stay well below.
#define TL_MODEL_MAX 20000

struct tl_batch {
	int64_t base;
	uint32_t n;      // records
	uint32_t vlen;   // value bytes per record
	int64_t ts0;     // timestamp of record 0; record i has ts0 + i
	uint32_t seed;
};

struct tl {
	enum ox_io_backend be;
	bool skip;                 // io_uring unavailable here
	struct ox_io *io;
	struct ox_log *log;
	struct ox_log_config cfg;
	int64_t now_ms;            // the test clock
	char root[48];
	char dir[64];              // the partition directory, root/p0
	struct tl_batch model[TL_MODEL_MAX];
	unsigned nmodel;
	int cb_seq;                // callbacks run so far, any append
};

extern struct tl T;

// Fixture: set up with a backend (skips the test body when io_uring is
// missing), tear down closes whatever is open and removes the directory.
void tl_setup_uring(void);
void tl_setup_sync(void);
void tl_teardown(void);
void tl_skip_if_needed(void);

// Runs one body under both backends, as suites <suite>_uring and _sync.
#define LOG_TEST(suite, name)                                           \
	static void name(void);                                         \
	Test(suite##_uring, name, .init = tl_setup_uring,               \
	     .fini = tl_teardown)                                       \
	{                                                               \
		tl_skip_if_needed();                                    \
		name();                                                 \
	}                                                               \
	Test(suite##_sync, name, .init = tl_setup_sync,                 \
	     .fini = tl_teardown)                                       \
	{                                                               \
		name();                                                 \
	}                                                               \
	static void name(void)

void tl_open(void);
void tl_close(void);
void tl_reopen(void);

// Builds a batch of n records into buf: key "k<seed>-<i>", value of vlen
// bytes derived from (seed, i), timestamp ts0 + i. Returns its length.
size_t tl_build(uint8_t *buf, size_t cap, uint32_t n, uint32_t vlen,
		int64_t ts0, uint32_t seed);
// Upper bound of tl_build's length.
size_t tl_build_max(uint32_t n, uint32_t vlen);

// One append's callback record.
struct tl_cb {
	int calls;
	int res;
	int64_t base;
	int64_t last;
	int64_t durable;  // ox_log_durable_offset when it ran
	int64_t written;  // ox_log_written_offset when it ran
	int seq;          // T.cb_seq when it ran
};
void tl_cb_fn(void *arg, int res, int64_t base, int64_t last);

// Runs the loop until cb->calls > 0 (bounded).
void tl_wait(const struct tl_cb *cb);

// Builds, appends and waits for one batch; adds it to the model on
// success. Returns the callback's res or append's error.
int tl_append(uint32_t n, uint32_t vlen, int64_t ts0, uint32_t seed);

// Drops model batches whose last offset is >= offset.
void tl_model_truncate(int64_t offset);
// Drops model batches below the log's start offset.
void tl_model_trim_start(void);

// Reads every batch from the log's start offset to the written offset and
// checks it against the model, batch by batch and record by record.
void tl_check_model(void);

// Checks one batch's records against a model entry.
void tl_check_batch(const uint8_t *batch, size_t len, const struct tl_batch *m);

// Reads the whole written log into a malloc'ed buffer (caller frees).
uint8_t *tl_read_all(size_t *len_out);

// Path of a file in the partition directory.
void tl_path(char *out, int64_t base, const char *suffix);
// Size of a file, -1 when missing.
long long tl_file_size(int64_t base, const char *suffix);
// Appends bytes at the end of / writes bytes at pos into a segment file.
void tl_file_append(int64_t base, const void *bytes, size_t len);
void tl_file_write(int64_t base, uint64_t pos, const void *bytes, size_t len);
void tl_file_truncate(int64_t base, uint64_t size);

#endif
