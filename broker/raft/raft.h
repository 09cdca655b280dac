// SPDX-License-Identifier: Apache-2.0
//
// Raft for one replication group, as a pure state machine. Messages,
// ticks and storage completions go in; messages to send, log changes to
// make, state to persist, commits and role changes come out. It does no
// I/O, reads no clock (time is ox_raft_tick), allocates only in
// ox_raft_create, and draws randomness from its own PRNG seeded by the
// caller, so the simulation (tests/sim/) replays a run exactly from a seed.
// The host (the broker's replication layer, or the simulator) owns the log
// bytes, the network and the disk; raft never sees a batch.
//
// Indices. A group's log is a partition log: entries are batches, and a
// batch covering offsets [base, last] is the entry with index last + 1,
// the log's end offset once it is appended. Index 0 is the empty log, of
// term 0. Indices are therefore not dense: between two entries' indices
// lie the offsets of one batch. term_at(i), for i > 0, is the term of the
// batch holding offset i - 1. Raft keeps the log's terms as runs
// (struct ox_raft_run: the first offset of a term and the term; Kafka calls
// this the leader epoch cache), so term_at is a search in a short array.
// Because one term has one leader, and that leader writes each offset in
// one batch, two logs whose batches holding offset o carry the same term
// hold the same batch there, and agree on everything before it (log
// matching). So a consistency check at any offset is sound, and the first
// offset where two logs' terms differ is a batch boundary in both.
//
// The states, and what moves between them:
//
//   follower --(election timeout, pre-vote majority)--> candidate
//   follower --(election timeout, pre-vote refused)--> follower (retries)
//   candidate --(vote majority)--> leader
//   candidate --(election timeout)--> pre-vote again, as a follower
//   any --(message of a higher term)--> follower of that term
//   leader --(no majority heard within an election timeout)--> follower
//   leader --(removed by a committed configuration)--> follower
//   follower --(TIMEOUT_NOW from the leader)--> candidate, no pre-vote
//
// Invariants (the simulation's checkers and the tests cite them):
//   R1  At most one leader per term: a node votes at most once per term
//       (term and vote are persisted before any message that depends on
//       them is sent: ox_raft_ready orders that).
//   R2  A leader never overwrites or removes entries of its own log; it
//       only appends (propose).
//   R3  Log matching: if two logs hold an entry of the same index and
//       term, they are identical up to it. A follower appends only after
//       the consistency check at prev_index passes, truncating from the
//       first offset whose term differs.
//   R4  Leader completeness: a vote (and a pre-vote) is granted only to a
//       candidate whose log is at least as up to date (last term, then
//       last index).
//   R5  The commit index never decreases, never passes what a majority of
//       the current configuration holds durably (followers report only
//       persisted indices, the leader counts its own persisted index), and
//       a leader commits by counting only an index of its own term, unless
//       it is the configuration's only voter (then its durable log is the
//       group's: every later leader needs its vote, hence its log).
//   R6  A follower's commit index is at most what it has verified against
//       the current leader (no commit of an unverified divergent tail).
//   R7  At most one configuration change is uncommitted at a time; a
//       configuration takes effect once it is in the log, and reverts if
//       the entry is truncated.
//   R8  Every output is bounded: messages per ready (OX_RAFT_OUTBOX_MAX),
//       term runs per message (OX_RAFT_MSG_RUNS_MAX), appends in flight per
//       follower (ox_raft_config.inflight_max).
//   R9  A replica that may have forgotten its votes and entries (a new
//       hard state: its node's disk may have been wiped) neither grants a
//       vote or pre-vote nor campaigns while it rejoins (ox_raft_hard.
//       rejoining). FRESH: nothing seen yet; if no peer shows it a log
//       (an APPEND, or a vote request from a candidate with entries)
//       within rejoin_grace_ticks, the group is being born and it votes
//       as usual; once one does, it is BEHIND. BEHIND: it stops rejoining
//       when, following a leader of term T, its durable log, verified
//       against that leader, reaches the leader's last index as that
//       leader's first message of T gave it (APPENDs carry it in
//       `index`), and that leader still leads two election timeouts later
//       (not a stale leader cut off from its majority: check-quorum
//       deposes those within one). It then holds all that was ever
//       committed (R4), and records a vote for itself in T so it never
//       votes twice in a term it may have voted in before. Having also
//       forgotten the terms it saw, it could help a stale leader commit:
//       so its answers say it is rejoining, and a leader neither counts
//       its copy toward a commit nor its contact toward check-quorum. Left open: a
//       vote it gave before it forgot in a later term no other node has
//       heard of yet; and a FRESH replica hearing nobody for the grace
//       period while the others are down takes its group for a new one.
//       A group whose only voter is this node ignores all this. R9
//       relies on check_quorum (the broker always sets it), and a group
//       stays live while a majority of its voters are not rejoining: so
//       a learner still rejoining is not promoted, nor a voter removed
//       if that left fewer than three while one rejoins.
//
// Entries are carried by the host: raft says which (an APPEND names the
// index range it wants to send; ox_raft_append_fill fixes it to the whole
// batches the host read), and on a follower, ox_raft_step returns what to
// do with the batches of an APPEND it accepted (struct ox_raft_plan).
//
// Thread-safety: none; one group is driven by one thread. Peer input is
// untrusted: a malformed message is an error, never an assertion.
#ifndef OX_BROKER_RAFT_RAFT_H
#define OX_BROKER_RAFT_RAFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

// Members of one group: replicas of a partition (RF 1, 3 or 5) or the
// nodes of the metadata group. Seven is enough for both and keeps every
// per-peer array small and fixed.
#define OX_RAFT_NODES_MAX 7
// Term runs one APPEND may carry: a leader sends at most this many term
// changes in one message (its range is cut at the next one); a backlog
// spanning many terms takes several messages.
#define OX_RAFT_MSG_RUNS_MAX 4
// Messages one ready may hold: one or two per peer per step is the most
// any single input produces; tick, step and propose assert room.
#define OX_RAFT_OUTBOX_MAX 32
// Node id 0 means "none" (no vote, no known leader).
#define OX_RAFT_NONE 0
// Indices are below this (offsets are int64; the margin keeps index
// arithmetic from overflowing): a message naming a larger one is refused.
#define OX_RAFT_INDEX_MAX ((int64_t)1 << 62)
// Terms too: a message with a term at or above this is refused, so that
// counting terms up can never wrap.
#define OX_RAFT_TERM_MAX ((uint64_t)1 << 62)

enum ox_raft_role {
	OX_RAFT_FOLLOWER = 0,
	OX_RAFT_PRE_CANDIDATE = 1,
	OX_RAFT_CANDIDATE = 2,
	OX_RAFT_LEADER = 3,
};

// A run of the log's terms: offsets from `start` up to the next run's
// start (or the log's end) are in batches of term `term`.
struct ox_raft_run {
	int64_t start;
	uint64_t term;
};

// A group's membership. Voters count for elections and commits; learners
// receive the log but do not vote (a replica being added catches up as a
// learner first). Ids are distinct and not OX_RAFT_NONE.
struct ox_raft_conf {
	uint32_t voters_n;
	uint32_t learners_n;
	uint64_t voters[OX_RAFT_NODES_MAX];
	uint64_t learners[OX_RAFT_NODES_MAX];
};

enum ox_raft_msg_type {
	OX_RAFT_MSG_PRE_VOTE = 1,
	OX_RAFT_MSG_PRE_VOTE_RESP = 2,
	OX_RAFT_MSG_VOTE = 3,
	OX_RAFT_MSG_VOTE_RESP = 4,
	OX_RAFT_MSG_APPEND = 5,      // entries and heartbeats
	OX_RAFT_MSG_APPEND_RESP = 6,
	OX_RAFT_MSG_SNAPSHOT = 7,    // the log before start_index is gone
	OX_RAFT_MSG_SNAPSHOT_RESP = 8,
	OX_RAFT_MSG_TIMEOUT_NOW = 9, // leadership transfer: elect yourself
};

// One message. Which fields mean something depends on the type; the rest
// are zero. The host encodes it for the wire (proto/raft.proto) and adds
// the batch bytes of an APPEND or the snapshot of a SNAPSHOT.
struct ox_raft_msg {
	enum ox_raft_msg_type type;
	uint64_t from;
	uint64_t to;
	uint64_t term; // a PRE_VOTE carries the term it would campaign in

	// PRE_VOTE, VOTE: the candidate's last index and last term.
	// SNAPSHOT: the snapshot's index and term (the sender's log start).
	int64_t index;
	uint64_t log_term;
	// VOTE: set when a leadership transfer asked for it, so voters do
	// not refuse for having heard from a leader lately.
	bool transfer;

	// *_RESP: granted (votes) or accepted (APPEND, SNAPSHOT).
	bool ok;

	// APPEND: the entries in (prev_index, end_index], whose terms are
	// `runs` (first run starts at prev_index; empty when end == prev, a
	// heartbeat); the leader's commit index.
	int64_t prev_index;
	uint64_t prev_term;
	int64_t end_index;
	int64_t commit;
	uint32_t runs_n;
	struct ox_raft_run runs[OX_RAFT_MSG_RUNS_MAX];
	// Set on an APPEND raft wants entries for: the host reads the batches
	// from prev_index and calls ox_raft_append_fill before sending it.
	bool wants_entries;

	// APPEND_RESP: ok: the follower durably holds the leader's log up to
	// `index`. Not ok: its log does not match at prev_index (echoed from
	// the APPEND); `index` is where the leader should try next (a hint:
	// the follower's end, or the first offset of its conflicting term
	// `log_term`).
	// An ok APPEND_RESP also says, in end_index, how far the follower's
	// log agrees with the leader's (durable or not yet).
	// SNAPSHOT_RESP: the follower durably holds the log up to `index`
	// (the snapshot installed, or an older one it already had).
	// APPEND_RESP, SNAPSHOT_RESP: the follower is rejoining (R9): it may
	// hold less than it once told the leader (its disk was wiped), and
	// `index` is what it holds now.
	bool rejoining;

	// SNAPSHOT: the membership at `index` (the sender's current one).
	struct ox_raft_conf conf;
};

// What must be persisted before the messages of the same ready are sent
// (R1): the term, the vote in it, and the configuration state.
// R9: where a replica that may have forgotten stands.
enum ox_raft_rejoin {
	OX_RAFT_REJOIN_NONE = 0,   // it votes as usual
	OX_RAFT_REJOIN_FRESH = 1,  // new, nothing heard yet
	OX_RAFT_REJOIN_BEHIND = 2, // a group with a log exists: catch up first
};

struct ox_raft_hard {
	uint64_t term;
	uint64_t vote;
	struct ox_raft_conf conf;      // in effect (the last in the log)
	int64_t conf_index;            // entry index of conf; 0: initial
	struct ox_raft_conf conf_prev; // committed one before it (R7)
	uint32_t rejoining;            // R9: enum ox_raft_rejoin
};

// Outputs gathered since the last call to ox_raft_ready. The host
// handles them in this order: persist `hard` if hard_changed (fsync);
// then send msgs (APPENDs with wants_entries go through
// ox_raft_append_fill first); then apply commit. Pointers are valid until
// the next call into this raft.
struct ox_raft_ready {
	bool hard_changed;
	struct ox_raft_hard hard;
	const struct ox_raft_msg *msgs;
	uint32_t msgs_n;
	int64_t commit;         // current commit index (high watermark)
	bool commit_changed;
	enum ox_raft_role role; // current role, term and leader
	uint64_t term;
	uint64_t leader;
	bool role_changed;
};

// What a follower's host does with the batches of an APPEND it stepped
// (ox_raft_step fills it): first drop the log from truncate_index on (if
// >= 0: ox_log_truncate), then append, in order, the message's batches
// whose index (last offset + 1) is in (append_from, append_end]; none
// when append_end <= append_from. For a SNAPSHOT: reset the log (and the
// state machine, for the metadata group) to start at snapshot_index with
// the snapshot the message carries, then ox_raft_persisted(snapshot_index,
// its term).
struct ox_raft_plan {
	int64_t truncate_index;
	int64_t append_from;
	int64_t append_end;
	int64_t snapshot_index; // -1: no snapshot to install
};

struct ox_raft_config {
	uint64_t id;               // this node, in conf (or about to be added)
	uint32_t election_ticks;   // minimum election timeout; each timeout
				   // is drawn in [election, 2 * election)
	uint32_t heartbeat_ticks;  // < election_ticks
	uint32_t inflight_max;     // APPENDs in flight per follower (>= 1)
	uint32_t rejoin_grace_ticks; // R9: FRESH for this long hearing no log
				     // is a group being born; 0: never
	uint64_t seed;             // the PRNG's seed (timeouts)
	bool pre_vote;             // campaign only after a pre-vote majority
	bool check_quorum;         // leader steps down if it lost its majority
};

// What the host recovered from its disk at start: the persisted hard
// state and the log's shape. runs cover [start_index - 1, last_index)
// when start_index > 0, else [0, last_index); an empty log has none.
// The log is durable up to last_index (recovery truncated the rest).
// Log and hard state are synced apart, so after a crash they may
// disagree: a log term above hard.term raises the term (with no vote);
// and the membership must be the last one in the recovered log, so the
// host takes hard.conf and conf_index from its last configuration batch
// (and the initial one when there is none), and conf_prev from the one
// before it when the latest is not committed.
//
// A node that lost its disk comes back with an empty log and a hard
// state whose `rejoining` says so (R9): acknowledged writes were counted
// on its copy, and it may have voted, so it earns its vote back by
// catching up first.
struct ox_raft_restore {
	struct ox_raft_hard hard;
	int64_t start_index;   // first offset still in the log
	uint64_t start_term;   // term_at(start_index): of the snapshot, or of
			       // the batch before the log start
	int64_t last_index;    // the log's end offset
	const struct ox_raft_run *runs; // borrowed
	uint32_t runs_n;
	int64_t commit;        // a commit index known to be safe (0: none)
};

struct ox_raft;

// Creates a group's state machine as a follower with no leader. cfg and
// restore are copied. runs_max bounds the term runs it keeps (the log's
// terms since its start; 1024 suits any log: a new run needs an election
// and the oldest runs go with retention). Returns 0, -EINVAL for a bad
// config or restore (reasons above; restore.runs_n > runs_max), -ENOMEM.
int ox_raft_create(struct ox_raft **out, const struct ox_raft_config *cfg,
		   const struct ox_raft_restore *restore, uint32_t runs_max);
void ox_raft_destroy(struct ox_raft *r);

// One unit of time. Election and heartbeat timeouts count ticks.
void ox_raft_tick(struct ox_raft *r);

// A message from a peer. Returns 0 (also for messages ignored: stale
// ones, and vote requests within an election timeout of hearing from a
// leader, so a removed or cut-off node cannot disrupt the group), -EINVAL
// for a malformed one (unknown type, inconsistent fields, indices or
// terms out of range), -ENOSPC if the runs table is full. plan (may be NULL for
// messages other than APPEND and SNAPSHOT) says what to do with an
// APPEND's batches or a SNAPSHOT; it is always filled (nothing to do:
// truncate_index -1, append_end <= append_from, snapshot_index -1).
int ox_raft_step(struct ox_raft *r, const struct ox_raft_msg *m,
		 struct ox_raft_plan *plan);

// Leader: the host is appending one batch ending at index end_index (>
// the last index) in the current term, which *term_out receives (stamp
// it in the batch). Returns 0, -OX_ENOTLEADER (not leader, or handing
// leadership over), -EINVAL (end_index <= last index), -ENOSPC (runs
// table full).
int ox_raft_propose(struct ox_raft *r, int64_t end_index,
		    uint64_t *term_out);

// Leader: as propose, for a batch holding a configuration change to
// `conf`, which must differ from the current one by one voter added or
// removed, or one learner added, removed or made voter. Returns also
// -EBUSY while an earlier change is uncommitted (R7).
int ox_raft_propose_conf(struct ox_raft *r, int64_t end_index,
			 const struct ox_raft_conf *conf, uint64_t *term_out);

// Follower: one of the batches the host appended for an accepted APPEND
// was a configuration change. Takes effect now (R7). Returns 0 or
// -EINVAL (index not in the log, or not a valid change).
int ox_raft_conf_appended(struct ox_raft *r, int64_t index,
			  const struct ox_raft_conf *conf);

// The log is durable up to `index`, whose batch (index > 0) has `term`.
// A report that no longer matches the log (truncated since) is ignored.
// Followers answer the leader from here; leaders count it as their own
// match.
void ox_raft_persisted(struct ox_raft *r, int64_t index, uint64_t term);

// The log now starts at start_index (retention deleted what was before,
// or a snapshot covers it), start_term being term_at(start_index).
// Followers further behind get a SNAPSHOT. Returns 0 or -EINVAL
// (start_index beyond the log's end or below its start).
int ox_raft_log_start(struct ox_raft *r, int64_t start_index,
		      uint64_t start_term);

// Leader: the host read whole batches covering (base, end] for an APPEND
// raft asked entries for (msg, from ox_raft_ready, with base <=
// msg->prev_index < end: the read starts with the batch holding offset
// prev_index). Fixes msg's prev_index, prev_term, end_index, runs and
// commit, cutting end at the OX_RAFT_MSG_RUNS_MAX-th term change (send
// only batches up to the new end_index), and counts it in flight. Returns
// 0, or -ESTALE when the message is no longer wanted (leadership or the
// follower's progress moved on: drop it).
int ox_raft_append_fill(struct ox_raft *r, struct ox_raft_msg *msg,
			int64_t base, int64_t end);

// Leader: the host could not send an APPEND it was asked for (read error,
// peer unreachable): it will be asked again after a heartbeat interval.
void ox_raft_append_dropped(struct ox_raft *r, const struct ox_raft_msg *msg);

// Leader: hand leadership to `target` (a voter). Proposals are refused
// until the transfer ends: target elected, or an election timeout passed.
// Returns 0, -OX_ENOTLEADER, -EINVAL (not a voter, or self).
int ox_raft_transfer(struct ox_raft *r, uint64_t target);

// The term an APPEND's runs give offset o (o inside its entries; the
// message has runs). Hosts check the batches they carry against it.
uint64_t ox_raft_msg_term_at(const struct ox_raft_msg *m, int64_t o);

// Takes the outputs gathered since the last call (see struct
// ox_raft_ready). Always succeeds.
void ox_raft_ready(struct ox_raft *r, struct ox_raft_ready *out);

// Queries.
enum ox_raft_role ox_raft_role(const struct ox_raft *r);
uint64_t ox_raft_term(const struct ox_raft *r);
uint64_t ox_raft_leader(const struct ox_raft *r);
int64_t ox_raft_commit(const struct ox_raft *r);
// R9: whether the node is still rejoining (its votes held back).
enum ox_raft_rejoin ox_raft_rejoining(const struct ox_raft *r);
// R9: while rejoining, the leader's last index when first heard from in
// this term (what the replica must hold); -1 when not rejoining or no
// leader heard yet.
int64_t ox_raft_rejoin_target(const struct ox_raft *r);
int64_t ox_raft_last_index(const struct ox_raft *r);
int64_t ox_raft_start_index(const struct ox_raft *r);
// term_at as above; -OX_EOFFSET for an index before the log start (minus
// one) or past its end.
int ox_raft_term_at(const struct ox_raft *r, int64_t index,
		    uint64_t *term_out);
const struct ox_raft_conf *ox_raft_conf(const struct ox_raft *r);
// Whether conf is a membership Raft takes: 1 to OX_RAFT_NODES_MAX voters,
// at most OX_RAFT_NODES_MAX learners, distinct ids, none OX_RAFT_NONE.
bool ox_raft_conf_valid(const struct ox_raft_conf *conf);
// Whether the configuration in effect is committed (R7: the next change
// may then be proposed).
bool ox_raft_conf_committed(const struct ox_raft *r);
// Leader: a follower's durable match index (-1 unknown or not leader).
int64_t ox_raft_match(const struct ox_raft *r, uint64_t peer);
// Leader: whether `peer` answered since the last quorum check, that is
// within the last election timeout (with check_quorum; a new leader
// counts every member as heard until its first check). Followers answer
// every heartbeat, and a check falls on a heartbeat tick, so a live
// follower is unheard only from a check until its answer arrives. False
// on a follower, for this node and for a non-member.
bool ox_raft_heard(const struct ox_raft *r, uint64_t peer);
// Leader: whether `peer` (a learner about to be made a voter) holds the
// log durably up to the commit index as it was at the last heartbeat
// (under steady writes the commit index moves on while the answer to
// that heartbeat travels: the current one would rarely be matched), is
// not rejoining (R9) and answered within the last election timeout
// (counted from its last answer, not from the quorum check as
// ox_raft_heard is, so a host polling on its own tick sees it whatever
// the two ticks' phases). False on a follower and for a non-member.
bool ox_raft_caught_up(const struct ox_raft *r, uint64_t peer);
// Leader: the voter a leadership transfer is handing over to
// (OX_RAFT_NONE: none under way).
uint64_t ox_raft_transferee(const struct ox_raft *r);
// Leader: the voter best placed to lead next, among the other voters
// `usable` accepts (NULL: all; the host knows which links are up, raft
// only what it heard): the highest durable match among those heard from
// lately (among all of them when none was), ties going to the first in
// the configuration. usable is called with arg and a voter's id, and
// must not call into this raft. OX_RAFT_NONE when not leader or when no
// voter qualifies.
uint64_t ox_raft_successor(const struct ox_raft *r,
			   bool (*usable)(void *arg, uint64_t id), void *arg);

#endif
