// SPDX-License-Identifier: Apache-2.0
//
// One replica of one partition: the partition's log (broker/log) bound to
// its Raft group (broker/raft). This is the host raft.h speaks of: it
// keeps the group's hard state on disk, rebuilds the term runs from the
// log at open, appends the batches the leader proposes and the follower
// receives, reads the batches APPENDs carry, reports durability back to
// Raft, and tells the server when the high watermark moves and who leads.
// It sends and receives through callbacks (the broker wires them to
// broker/peer; tests wire replicas to each other), so it knows nothing of
// sockets. A group of one voter is the single-node case: it commits what
// is durable on its own disk.
//
// Design notes. Invariants (the tests cite them):
//   P1  The hard state (term, vote, membership) is on disk, fsynced,
//       before any message of the same ready is sent (raft.h R1).
//   P2  The log and Raft agree: every batch appended carries the term
//       Raft gave it (leader) or the one the leader sent (follower), and
//       ox_raft_persisted is told only what the log made durable.
//   P3  Log changes happen in Raft's order: a follower's truncate waits
//       for appends in flight, and appends after it wait for the truncate.
//   P4  acks=all completes only once the high watermark covers the batch;
//       a replica that stops leading fails what waits with NOT_LEADER
//       (the batch may still commit: idempotent producers make the retry
//       harmless).
//   P5  Consumers never see past the high watermark (the commit index,
//       clamped to what the log has written here).
//   P6  With snapshot hooks, a state snapshot always covers the log up to
//       its start: the owner deletes log segments only below a snapshot
//       it saved, and a follower installs the leader's snapshot (durably)
//       before its log restarts at the leader's start. A snapshot holds
//       only committed entries, so installing one that is ahead of the
//       state is safe whatever Raft then makes of the message.
//   P7  A membership change is a control batch in the log (key
//       "oxbow.conf", value a RaftConf): the leader proposes it through
//       ox_replica_change_conf, a follower hands each one it appends to
//       Raft, and an open takes the last membership in the log: the hard
//       state's, unless a crash cut its batch from the log (then the
//       committed one before it) or a batch the log holds never reached
//       the hard state (then that one: the open's scan of the log finds
//       it).
//
// The hard state lives in one small file (state_path): "OXRS", u32 LE
// length, a RaftHardState protobuf (proto/raft.proto), XXH3-64 of the
// protobuf (u64 LE). It is replaced by writing a temporary file, fsync,
// rename and a directory fsync, synchronously: it changes only on
// elections, votes and membership changes, which are rare. A file that
// fails its checksum stops the replica from opening (-OX_ECORRUPT): a
// forgotten vote could elect two leaders.
//
// Everything runs on the thread that owns the io loop and the log.
#ifndef OX_BROKER_REPLICA_REPLICA_H
#define OX_BROKER_REPLICA_REPLICA_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "broker/raft/raft.h"

struct ox_io;
struct ox_log;
struct ox_replica;

// How a caller learns that raw bytes handed to send are no longer
// needed; the same contract as ox_peer_send (broker/peer/peer.h).
typedef void (*ox_replica_release_cb)(void *arg, int sent);

// Hooks run from the replica's calls and the io loop, never from inside
// ox_replica_open (query the role and high watermark after it returns).
struct ox_replica_hooks {
	// Sends msg (raw: the batches of an APPEND, borrowed until release
	// runs, exactly once, later); returns 0 or a negative error, in which
	// case release is not called. Loss is fine.
	int (*send)(void *arg, const struct ox_raft_msg *msg,
		    const struct iovec *raw, int iovcnt,
		    ox_replica_release_cb release, void *release_arg);
	// The high watermark moved up (consumers may read below it), or
	// more bytes below it were counted (ox_replica_committed_bytes).
	void (*committed)(void *arg, int64_t high_watermark);
	// Role, term or leader changed.
	void (*role)(void *arg, enum ox_raft_role role, uint64_t term,
		     uint64_t leader);
	// A group whose log feeds a state machine (the metadata group) sets
	// both; a partition sets neither, and its SNAPSHOT carries nothing:
	// the follower's log restarts empty at the leader's start.
	// snapshot_get: a SNAPSHOT is going out: *raw is the state as a
	// snapshot covering at least the log up to its start (P6), borrowed
	// until *release runs (as send's raw; release may be NULL). An error
	// skips this SNAPSHOT (Raft sends another later).
	int (*snapshot_get)(void *arg, struct iovec *raw,
			    ox_replica_release_cb *release, void **release_arg);
	// snapshot_put: a SNAPSHOT arrived carrying raw (maybe empty):
	// before Raft sees the message the owner checks it whole and, if it
	// is ahead of its state, installs it durably (P6). An error refuses
	// the message, which Raft then never sees.
	int (*snapshot_put)(void *arg, const uint8_t *raw, size_t raw_len);
	void *arg;
};

struct ox_replica_opts {
	uint64_t node_id;
	const char *state_path;       // the hard state file
	struct ox_raft_conf conf;     // membership when there is no file yet
	uint32_t election_ticks;      // see struct ox_raft_config
	uint32_t heartbeat_ticks;
	uint32_t inflight_max;        // APPENDs in flight per follower
	uint64_t seed;
	// raft.h R9: how a replica with no state file yet starts. One the
	// node may have held before (its disk wiped) is OX_RAFT_REJOIN_FRESH
	// (with a grace, below) or _BEHIND; one the node is given for the
	// first time is OX_RAFT_REJOIN_NONE.
	enum ox_raft_rejoin rejoin_if_new;
	uint32_t rejoin_grace_ticks; // see struct ox_raft_config
	// Bytes one APPEND carries at most (whole batches; at least one):
	// 0: 1 MiB, big enough for throughput, small enough to interleave
	// partitions on one connection.
	size_t append_bytes_max;
	struct ox_replica_hooks hooks;
};

// Opens the replica over an open log (borrowed: it must outlive the
// replica) and the hard state file (created with opts.conf when missing).
// A group whose only voter is this node elects itself before this
// returns (nobody to wait for), so it takes appends at once, and its
// high watermark is the log's durable end (it appends no no-op: raft.h
// R5 lets the only voter commit earlier terms).
// Returns 0, -EINVAL (opts), -OX_ECORRUPT (the state file is damaged),
// -ENOSPC (the log has more term runs than Raft keeps), -ENOMEM, or an
// errno reading the file or the log. Free with ox_replica_close.
int ox_replica_open(struct ox_replica **out, struct ox_io *io,
		    struct ox_log *log, const struct ox_replica_opts *opts);

// Runs the io loop until the log appends it started complete (their
// callers' batches are then free), fails what still waits (acks=all
// without a commit: -OX_ECLOSED), and frees the replica. Not from an io
// callback unless nothing is in flight. NULL is a no-op.
void ox_replica_close(struct ox_replica *rep);

// One Raft tick (the owner calls it every tick interval, e.g. 10 ms).
void ox_replica_tick(struct ox_replica *rep);

// A message from a peer; raw (the APPEND's batches) is borrowed for the
// call. Returns 0, or the error ox_raft_step gave (the message was
// malformed: counted and dropped by the caller).
int ox_replica_deliver(struct ox_replica *rep, const struct ox_raft_msg *msg,
		       const uint8_t *raw, size_t raw_len);

enum ox_replica_acks {
	OX_REPLICA_ACKS_NONE = 0,   // when accepted
	OX_REPLICA_ACKS_LEADER = 1, // when durable on this node
	OX_REPLICA_ACKS_ALL = 2,    // when committed (majority-durable)
};

// res is 0 or a negative error; base and last are the batch's offsets.
typedef void (*ox_replica_append_cb)(void *arg, int res, int64_t base_offset,
				     int64_t last_offset);

// Leader: appends one client batch (verified by the log, which stamps
// offsets and term in place; borrowed until cb) and calls cb, exactly once
// and never from inside this call, when acks is met or the append fails.
// Returns 0, or (cb not called) -OX_ENOTLEADER, -OX_ECORRUPT, -OX_ETOOBIG,
// -EBUSY (log busy: retry after running the loop), -OX_EFAILED.
int ox_replica_append(struct ox_replica *rep, void *batch, size_t len,
		      enum ox_replica_acks acks, ox_replica_append_cb cb,
		      void *arg);

// Leader: proposes the membership change to `conf` (raft.h
// ox_raft_propose_conf: one voter added or removed, or one learner added,
// removed or made a voter) as a control batch, so that followers and a
// reopened replica find it in the log where Raft ordered it (R7).
// Returns 0, -OX_ENOTLEADER, -EBUSY (an earlier change has not committed,
// or the log is busy: retry later), -EINVAL (not a single change),
// -OX_EFAILED, -ENOMEM.
int ox_replica_change_conf(struct ox_replica *rep,
			   const struct ox_raft_conf *conf);

// The high watermark: the first offset consumers may not read yet.
int64_t ox_replica_high_watermark(const struct ox_replica *rep);

// Bytes of the batches this replica appended since open that are now
// below the high watermark (a long-poll's min_bytes counts them). When
// more than REPLICA_SIZES_MAX appends wait for their commit, the newest
// are counted together, so the count may lag; it never runs ahead.
uint64_t ox_replica_committed_bytes(const struct ox_replica *rep);

// Retention deleted the log's oldest segments: Raft learns the new start
// (a follower behind it then gets a SNAPSHOT: its log restarts there),
// and the hard state file records it with the term before it, for the
// next open. Returns 0 (nothing moved, or done), -EAGAIN (the new start is
// past the commit index: call again once it commits), or the error of
// writing the state file.
int ox_replica_log_start_moved(struct ox_replica *rep);

// Hands leadership to another voter (SIGTERM does this so a stopping
// leader does not leave its partitions waiting for a timeout).
// Returns 0, -OX_ENOTLEADER, -EINVAL.
int ox_replica_transfer(struct ox_replica *rep, uint64_t target);

// The Raft group, for queries (role, term, leader, matches).
const struct ox_raft *ox_replica_raft(const struct ox_replica *rep);

#endif
