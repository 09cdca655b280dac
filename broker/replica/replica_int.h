// SPDX-License-Identifier: Apache-2.0
//
// Private parts of broker/replica: the replica's struct, its queue of log
// operations, the cache of batches the leader just proposed, and the hard
// state file (state.c). Nothing outside broker/replica includes it.
#ifndef OX_BROKER_REPLICA_REPLICA_INT_H
#define OX_BROKER_REPLICA_REPLICA_INT_H

#include "broker/replica/replica.h"
#include "broker/replica/producers.h"

#include <stdbool.h>

// Term runs Raft keeps for one partition: a run per election that wrote
// to the log since its start; retention drops old ones.
#define REPLICA_RUNS_MAX 1024u
// Batches the leader keeps in memory for APPENDs, so followers get them
// while the leader's own write and fsync are still going on. Beyond this
// (followers far behind) APPENDs read from the log.
#define REPLICA_CACHE_BYTES_MAX (16u << 20)

// Appends waiting for their commit whose sizes are kept apart for
// ox_replica_committed_bytes; beyond it the newest merge.
#define REPLICA_SIZES_MAX 4096u

// The byte count once the log up to `end` is committed.
struct size_mark {
	int64_t end;
	uint64_t bytes; // appended bytes up to end, since open
};

struct replica_state {
	struct ox_raft_hard hard;
	int64_t log_start;
	uint64_t log_start_term;
};

int ox_replica_state_read(const char *path, struct replica_state *st);
int ox_replica_state_write(const char *path, const struct replica_state *st);

// A membership as the value of a configuration batch (a RaftConf
// protobuf, as in the state file). encode returns the length written, or
// -ENOSPC when cap is short; decode returns 0 or -OX_ECORRUPT (not a
// RaftConf, or no voter, or too many ids).
#define REPLICA_CONF_BYTES_MAX 256u
int ox_replica_conf_encode(const struct ox_raft_conf *c, uint8_t *buf,
			   size_t cap);
int ox_replica_conf_decode(const uint8_t *buf, size_t len,
			   struct ox_raft_conf *c);

// One batch the leader proposed, kept for APPENDs (refcounted: sends in
// flight hold it).
struct cached {
	struct cached *next;
	int64_t base;
	int64_t end;    // last offset + 1
	uint8_t *buf;
	size_t len;
	uint32_t refs;  // the cache's own, plus sends in flight
};

enum op_kind {
	OP_APPEND = 1,   // append one batch (carries offsets and term)
	OP_TRUNCATE = 2, // drop the log from `at` on
	OP_RESET = 3,    // empty the log; it restarts at `at`
};

struct retry;

// What waits for an append of the leader to be acknowledged.
struct waiter {
	struct waiter *next;
	enum ox_replica_acks acks;
	ox_replica_append_cb cb;
	void *arg;
	int64_t base;
	int64_t last;
	bool durable; // the local append completed
};

// A log operation, in Raft's order (P3).
struct op {
	struct op *next;
	struct op *prev;      // in the in-flight list, once submitted
	struct ox_replica *rep; // NULL once the replica closed
	enum op_kind kind;
	int64_t at;           // TRUNCATE, RESET
	uint64_t term;        // RESET: the term at `at`
	void *batch;          // APPEND
	size_t len;
	bool owned;           // free(batch) when done (a follower's copy)
	struct cached *cached; // or the leader's cached copy it holds
	uint64_t batch_term;
	int64_t end;          // last offset + 1
	struct waiter *waiter; // leader appends with a caller
};

struct ox_replica {
	struct ox_io *io;
	struct ox_log *log;
	struct ox_raft *raft;
	struct ox_replica_opts opts;
	char *state_path;
	struct replica_state state;

	// Operations not submitted yet (FIFO), and appends submitted.
	struct op *ops_head;
	struct op *ops_tail;
	uint32_t ops_n;
	struct op *inflight;     // doubly linked
	uint32_t inflight_n;
	bool retry_armed;        // a timer will pump again
	struct retry *retry;     // its context, detached at close

	// Leader: callers waiting for acks=all, in offset order.
	struct waiter *acks_head;
	struct waiter *acks_tail;

	// Idempotent producers of the log as Raft orders it (producers.h).
	struct ox_producers *producers;

	struct cached *cache_head; // oldest first
	struct cached *cache_tail;
	size_t cache_bytes;

	int64_t high_watermark;
	// Appended bytes by end offset, oldest first (a ring), and the
	// count up to the high watermark.
	struct size_mark sizes[REPLICA_SIZES_MAX];
	uint32_t sizes_head;
	uint32_t sizes_n;
	uint64_t appended_bytes;
	uint64_t committed_bytes;
	// The last membership batch the open's scan found in the log (index
	// 0: none), for restore (P7).
	struct ox_raft_conf log_conf;
	int64_t log_conf_index;
	bool failed;             // the log or the state file failed
	bool opening;            // inside ox_replica_open: hooks wait
	bool in_ready;           // process_ready is running
};

#endif
