// SPDX-License-Identifier: Apache-2.0
//
// The deterministic simulation of broker/raft: several nodes, each running
// several Raft groups, over a simulated network, disk and clock, all driven
// by one seeded PRNG. Nothing is real: no threads, no sockets, no files,
// no wall clock. The simulator plays the broker's replication layer for
// every (node, group) pair (a "host"): it owns the log's batches, persists
// the hard state, carries messages and applies raft's plans. It does not
// model record contents (a batch is a payload id) nor the metadata state
// machine. sim_main.c runs many seeds of random faults; scenarios.c drives
// the same world by hand for the named cases.
//
// Design notes.
//
// Time is virtual: SIM_TICK_UNITS units make one raft tick. Every event
// (a tick of one node, the delivery of a packet, an fsync completing, a
// client proposal, a fault) has a time and a sequence number; the event
// queue pops them in that order, so a run is a pure function of its seed.
// One event is one step; the checkers run after every step.
//
// Disk. A host's log is an array of batches with increasing write
// sequence numbers; an fsync issued when the last write had sequence S
// makes every batch with sequence <= S durable when it completes (after a
// random delay), so the durable part is a prefix. Truncation (a follower
// dropping a divergent tail) and a new log start (retention or a
// snapshot) are durable at once, as the broker's log makes them. A crash
// keeps the durable prefix and, when the write is torn, a random number of
// the unsynced batches after it (whole batches: recovery drops a partial
// one). The hard state has its own fsync; the messages of a ready wait
// until the hard state of that ready (or a later one) is durable (R1).
//
// Network. Packets travel on directed links with a random delay, so they
// reorder; they are lost or duplicated at the current rates; a partition
// splits the nodes in two sides, a down link cuts one direction only. When
// a packet arrives, every packet of the same link due within a short
// window arrives with it, as the broker batches traffic between two nodes.
//
// Checkers (cited in failure messages as C<n>, with raft.h's invariant):
//   C1  At most one leader per term in a group (R1).
//   C2  Committed entries never change: every commit index a node reports
//       covers batches equal to the group's committed record, which only
//       grows, contiguously (R3, R5).
//   C3  Leader completeness: when a node becomes leader of term T, its
//       log holds every recorded entry committed in a term before T (the
//       record keeps, per entry, the term of the node that reported it
//       first, which is at least the term it was committed in) (R4).
//   C4  Logs agree up to the commit index: each node's log up to its
//       commit equals the record (so any two nodes agree below the lower
//       of their commits) (R3).
//   C5  An acknowledged write (a leader's commit) is durable on a majority
//       of the leader's voters at the moment it is acknowledged (R5); a
//       wiped voter still rejoining counts for the copy it lost, as it
//       votes for nobody until it holds the log again (R9). (Its new
//       copy is not counted by leaders until it is done rejoining.)
//   C6  A node's commit index never decreases within one life (R5).
//   C7  Outputs are bounded and well formed: msgs_n <= OX_RAFT_OUTBOX_MAX,
//       runs_n <= OX_RAFT_MSG_RUNS_MAX, messages from the node itself to a
//       known other node, commit on a batch end within the log (R8).
//   C8  A follower's plan is sound: truncation at a batch boundary, never
//       at or below its commit, appended batches start exactly at the log
//       end (no gap, no overlap) (R3, R6).
//   C9  A leader never truncates its own log (R2).
//   C10 The host's log and raft agree on the last index and the start.
//   C11 A SNAPSHOT carries only committed data.
//   C12 At most one configuration change beyond the commit index in a
//       leader's log (R7).
//   C13 Liveness: once faults stop and the network heals, every group
//       elects a leader and commits a new proposal within a bounded time.
//
// A wipe (a crashed node's disk emptied, within sim_wipe_safe's bounds)
// is a fault beyond a crash: the node comes back with no log and no hard
// state, rejoining (raft.h R9). C2..C4 then catch a vote it must not give.
#ifndef OX_TESTS_SIM_SIM_H
#define OX_TESTS_SIM_SIM_H

#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>

#include "broker/raft/raft.h"

// Nodes and groups of one world: five nodes are enough for every
// membership change between three and five voters; four groups keep the
// per-step cost low while nodes still host several groups each.
#define SIM_NODES_MAX 5
#define SIM_GROUPS_MAX 4
// Batches in one host's log; retention keeps logs well below it.
#define SIM_LOG_MAX 4096
// Batches one APPEND carries at most (the message size bound).
#define SIM_MSG_BATCHES_MAX 8
// Packets in flight on one directed link; more are dropped, as a full
// socket buffer would.
#define SIM_LINK_SLOTS 128
// Pending events; far above what a world ever schedules.
#define SIM_EVENTS_MAX 65536
// Messages of one host waiting for its hard-state fsync.
#define SIM_OUTQ_MAX 1024
// Term runs a raft keeps (raft.h suggests 1024 for any log).
#define SIM_RUNS_MAX 1024
// Committed batches recorded per group.
#define SIM_RECORD_MAX 262144
// Terms remembered for C1.
#define SIM_TERMS_MAX 65536
// Lines of trace kept for a failure's excerpt.
#define SIM_TRACE_RING 64
#define SIM_TRACE_LINE 200

#define SIM_TICK_UNITS 10
#define SIM_ELECTION_TICKS 10

struct sim_batch {
	int64_t base;
	int64_t end; // last offset + 1: the entry's index
	uint64_t term;
	uint64_t payload;
	uint64_t wseq; // write sequence on its host (durability)
	bool is_conf;
	struct ox_raft_conf conf;
};

struct sim_outmsg {
	uint64_t need_hseq; // hard state that must be durable first
	struct ox_raft_msg m;
};

// One group on one node.
struct sim_host {
	bool member;        // the node holds a replica of the group
	struct ox_raft *raft; // NULL while the node is down or not a member
	struct sim_batch *log;
	uint32_t log_n;
	int64_t start;      // first offset in the log
	uint64_t start_term;
	// Log durability.
	uint64_t wseq_next;
	uint64_t wseq_synced;
	bool log_sync_busy;
	int64_t persisted_told; // last index given to ox_raft_persisted
	// Hard state durability.
	struct ox_raft_hard hard_durable;
	struct ox_raft_hard hard_latest;
	struct ox_raft_hard hard_syncing; // what the fsync in flight writes
	uint64_t hseq;         // ready-with-hard count in this life
	uint64_t hseq_durable;
	bool hard_sync_busy;
	// Messages waiting for the hard state.
	struct sim_outmsg *outq;
	uint32_t outq_n;
	// What the last ready said.
	int64_t commit;
	int64_t commit_saved; // restored as a safe commit after a crash
	enum ox_raft_role role;
	uint64_t term;
	int64_t checked_end;  // log verified against the record up to here
	bool noop_wanted;     // a new leader's control batch
	bool leaving;         // its removal committed: stop after this step
};

struct sim_packet {
	bool used;
	uint32_t gen;
	uint32_t group;
	int64_t due;
	struct ox_raft_msg m;
	uint32_t batches_n;
	struct sim_batch batches[SIM_MSG_BATCHES_MAX];
};

struct sim_link {
	bool down; // this direction cut (asymmetric fault)
	struct sim_packet slots[SIM_LINK_SLOTS];
};

enum sim_ev_type {
	EV_TICK = 1,
	EV_DELIVER,
	EV_LOG_SYNC,
	EV_HARD_SYNC,
	EV_PROPOSE,
	EV_CHAOS,
	EV_RESTART,
};

struct sim_event {
	int64_t time;
	uint64_t seq;
	enum sim_ev_type type;
	uint32_t node;
	uint32_t group;
	uint32_t life;
	uint64_t arg;  // sync target, packet slot
	uint64_t arg2; // packet generation, destination
};

struct sim_node {
	bool up;
	uint32_t life;
	int64_t paused_until;
	uint32_t side; // partition side
};

struct sim_rec {
	int64_t base;
	int64_t end;
	uint64_t term;
	uint64_t payload;
	// The term of the node that first reported it committed: at least
	// the term of the leader that committed it.
	uint64_t commit_term;
};

struct sim_group {
	struct ox_raft_conf conf0; // initial membership
	struct sim_rec *record;    // committed batches, in order (C2)
	uint32_t record_n;
	int64_t record_start;      // record[0].base
	uint64_t *leader_of_term;  // C1
	uint64_t post_heal_payload; // C13: a proposal made after the heal
	int64_t post_heal_end;
	bool post_heal_committed;
};

// Probabilities in percent, and switches; all zero for a hand-driven world.
struct sim_knobs {
	uint32_t nodes_n;
	uint32_t groups_n;
	bool chaos;          // random faults, conf changes, transfers
	bool clients;        // random proposals
	uint32_t drop_pct;   // current loss rate
	uint32_t dup_pct;    // current duplication rate
	int64_t delay_min;   // network delay, units
	int64_t delay_max;
	int64_t sync_min;    // fsync delay, units
	int64_t sync_max;
	bool pre_vote;
	bool check_quorum;
	uint32_t heartbeat_ticks;
	uint32_t inflight_max;
	uint32_t noop_pct;   // a new leader proposes a control batch
};

struct sim_stats {
	uint64_t steps;
	uint64_t messages;
	uint64_t drops;
	uint64_t dups;
	uint64_t crashes;
	uint64_t torn;
	uint64_t pauses;
	uint64_t partitions;
	uint64_t elections;  // nodes becoming leader
	uint64_t commits;    // batches added to the committed record
	uint64_t proposals;
	uint64_t conf_changes;
	uint64_t transfers;
	uint64_t log_starts;
	uint64_t snapshots;  // snapshots installed
	uint64_t rejects;    // APPEND_RESP not ok seen on the wire
	uint64_t wipes;      // a crashed node's disk wiped (raft.h R9)
};

struct sim_world {
	uint64_t seed;
	uint64_t rng;
	int64_t now;
	uint64_t ev_seq;
	struct sim_event *heap;
	uint32_t heap_n;
	struct sim_knobs k;
	struct sim_node nodes[SIM_NODES_MAX];
	struct sim_group groups[SIM_GROUPS_MAX];
	struct sim_host hosts[SIM_NODES_MAX][SIM_GROUPS_MAX];
	struct sim_link links[SIM_NODES_MAX][SIM_NODES_MAX];
	uint64_t payload_next;
	bool started;
	bool healed;       // C13 phase: no faults, healed network
	int64_t healed_at;
	uint64_t healed_payload; // first payload id proposed after the heal
	struct sim_stats st;
	// Failure: checkers longjmp here with msg filled.
	jmp_buf *fail_jmp;
	char fail_msg[512];
	// Trace: verbose prints every line; hashing folds them into hash.
	bool verbose;
	bool tracing;
	uint64_t trace_hash;
	char ring[SIM_TRACE_RING][SIM_TRACE_LINE];
	uint32_t ring_n;
};

// world.c
struct sim_world *sim_world_create(uint64_t seed, const struct sim_knobs *k);
void sim_world_destroy(struct sim_world *w);
void sim_knobs_random(struct sim_knobs *k, uint64_t seed);
void sim_knobs_quiet(struct sim_knobs *k, uint32_t nodes_n);
void sim_world_start(struct sim_world *w);
bool sim_step(struct sim_world *w); // false: no events left
void sim_run_for(struct sim_world *w, int64_t units);
void sim_heal(struct sim_world *w);
// Crash node n now: torn < 0 keeps a random number of its unsynced
// batches, torn >= 0 keeps that many (at most all). Restart boots it.
void sim_crash(struct sim_world *w, uint32_t n, int32_t torn);
void sim_restart(struct sim_world *w, uint32_t n);
// Wipes the disk of crashed node n (every replica it holds restarts
// empty, rejoining: raft.h R9). sim_wipe_safe says whether the fault
// stays within what Raft survives (R9 needs check-quorum on): no group
// of n has another replica
// still rejoining (one forgetful voter per group at a time) or fewer than
// three voters.
bool sim_wipe_safe(struct sim_world *w, uint32_t n);
void sim_wipe(struct sim_world *w, uint32_t n);
uint64_t sim_rand(struct sim_world *w, uint64_t n); // [0, n)
void sim_trace(struct sim_world *w, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
_Noreturn void sim_fail(struct sim_world *w, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

// host.c: one (node, group) replica.
void host_boot(struct sim_world *w, uint32_t node, uint32_t g);
void host_crash(struct sim_world *w, uint32_t node, uint32_t g, int32_t torn);
void host_wipe(struct sim_world *w, uint32_t node, uint32_t g);
bool host_rejoining(const struct sim_host *h);
void host_pump(struct sim_world *w, uint32_t node, uint32_t g);
int host_propose(struct sim_world *w, uint32_t node, uint32_t g,
		 int64_t count);
int host_propose_conf(struct sim_world *w, uint32_t node, uint32_t g,
		      const struct ox_raft_conf *conf);
void host_log_sync_done(struct sim_world *w, uint32_t node, uint32_t g,
			uint64_t target);
void host_hard_sync_done(struct sim_world *w, uint32_t node, uint32_t g,
			 uint64_t hseq);
void host_receive(struct sim_world *w, uint32_t node,
		  const struct sim_packet *p);
int host_log_start(struct sim_world *w, uint32_t node, uint32_t g,
		   int64_t index);
void host_leave(struct sim_world *w, uint32_t node, uint32_t g);
void host_join(struct sim_world *w, uint32_t node, uint32_t g,
	       const struct ox_raft_conf *conf, bool fresh);
int64_t host_log_end(const struct sim_host *h);
int64_t host_durable_end(const struct sim_host *h);
const struct sim_batch *host_find(const struct sim_host *h, int64_t end);

// net.c
void net_send(struct sim_world *w, uint32_t from, uint32_t g,
	      struct sim_packet *p);
void net_deliver(struct sim_world *w, uint32_t from, uint32_t to,
		 uint32_t slot, uint32_t gen);
bool net_link_up(const struct sim_world *w, uint32_t from, uint32_t to);
void ev_push(struct sim_world *w, int64_t time, enum sim_ev_type type,
	     uint32_t node, uint32_t group, uint64_t arg, uint64_t arg2);

// check.c
void check_ready(struct sim_world *w, uint32_t node, uint32_t g,
		 const struct ox_raft_ready *rd);
void check_host(struct sim_world *w, uint32_t node, uint32_t g);
void check_committed_prefix(struct sim_world *w, uint32_t g,
			    const struct sim_batch *b, uint32_t n,
			    uint64_t term, const char *why);
bool check_is_committed(const struct sim_world *w, uint32_t g, int64_t end,
			uint64_t term);
void check_step(struct sim_world *w);
bool conf_has_voter(const struct ox_raft_conf *c, uint64_t id);
bool conf_has_member(const struct ox_raft_conf *c, uint64_t id);

#endif
