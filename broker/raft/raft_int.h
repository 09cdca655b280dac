// SPDX-License-Identifier: Apache-2.0
//
// Private state of broker/raft, shared by raft.c (roles, elections, the
// follower side, the term runs) and replicate.c (the leader side:
// progress of each follower, appends, commits, snapshots, transfers).
// Nothing outside broker/raft includes it.
#ifndef OX_BROKER_RAFT_RAFT_INT_H
#define OX_BROKER_RAFT_RAFT_INT_H

#include "broker/raft/raft.h"

// Appends in flight to one follower, at most: enough to keep a follower
// busy across a round trip of a few milliseconds with 256 KiB batches.
#define OX_RAFT_INFLIGHT_MAX 64
// Every member but this node.
#define OX_RAFT_PEERS_MAX (2 * OX_RAFT_NODES_MAX)

enum peer_state {
	PEER_PROBE = 0,     // one APPEND at a time until the follower matches
	PEER_REPLICATE = 1, // pipelined, up to inflight_max
	PEER_SNAPSHOT = 2,  // a SNAPSHOT is on its way
};

// The leader's view of one member (kept on followers too, idle).
struct peer {
	uint64_t id;
	bool voter;
	enum peer_state state;
	int64_t match;         // durable on the peer; -1: not known yet
	int64_t next;          // where the next APPEND starts (prev_index)
	bool reading;          // an APPEND awaits ox_raft_append_fill
	int64_t read_from;     // its prev_index as asked
	bool probe_sent;       // PROBE: an APPEND is out, await its answer
	int64_t snapshot_index;
	uint32_t stall_beats;  // heartbeats without progress while paused
	int64_t match_at_beat; // match at the last heartbeat
	bool active;           // heard from since the last quorum check
	uint32_t silent_ticks; // leader ticks since it was last heard from
	bool rejoining;        // R9: its last answer said so: not counted
	bool vote_answered;
	bool vote_granted;
	// Ends of the APPENDs in flight, oldest first (a ring).
	int64_t inflight[OX_RAFT_INFLIGHT_MAX];
	uint32_t inflight_head;
	uint32_t inflight_n;
};

struct ox_raft {
	struct ox_raft_config cfg;
	enum ox_raft_role role;
	uint64_t term;
	uint64_t vote;
	uint32_t rejoining;    // R9: enum ox_raft_rejoin
	int64_t rejoin_target; // R9: the leader's last index when first heard
	uint32_t rejoin_ticks; // R9: ticks since then (FRESH: since start)
	uint64_t leader;
	struct ox_raft_conf conf;
	struct ox_raft_conf conf_prev;
	int64_t conf_index;

	// The log's shape.
	int64_t start_index;
	uint64_t start_term;
	int64_t last_index;
	int64_t durable_index;
	struct ox_raft_run *runs; // sorted by start, terms increasing
	uint32_t runs_n;
	uint32_t runs_max;

	int64_t commit;
	int64_t commit_at_beat; // leader: the commit index at its last heartbeat
	// Follower: the log agrees with the current leader's up to here (R6).
	int64_t verified;
	// Follower: the last durable index told to the leader.
	int64_t acked;
	bool snapshot_pending; // answer a SNAPSHOT once it is persisted

	// Time, in ticks.
	uint32_t election_elapsed;
	uint32_t heartbeat_elapsed;
	uint32_t election_timeout; // randomized per term
	uint64_t rng;

	struct peer peers[OX_RAFT_PEERS_MAX];
	uint32_t peers_n;

	uint64_t transfer_target;
	uint32_t transfer_elapsed;

	// Outputs since the last ox_raft_ready, and what it handed out.
	struct ox_raft_msg outbox[OX_RAFT_OUTBOX_MAX];
	uint32_t outbox_n;
	struct ox_raft_msg handed[OX_RAFT_OUTBOX_MAX];
	bool hard_changed;
	bool commit_changed;
	bool role_changed;
};

// raft.c
int raft_term_at(const struct ox_raft *r, int64_t index, uint64_t *term);
uint64_t raft_last_term(const struct ox_raft *r);
bool raft_push(struct ox_raft *r, const struct ox_raft_msg *m);
struct peer *raft_peer(struct ox_raft *r, uint64_t id);
bool raft_is_voter(const struct ox_raft_conf *c, uint64_t id);
// R9: rejoining, and not the group's only voter.
bool raft_forgetful(const struct ox_raft *r);
uint32_t raft_quorum(const struct ox_raft *r);
void raft_become_follower(struct ox_raft *r, uint64_t term, uint64_t leader);
void raft_set_commit(struct ox_raft *r, int64_t commit);

// replicate.c
void raft_leader_start(struct ox_raft *r);
void raft_leader_tick(struct ox_raft *r);
void raft_send_append(struct ox_raft *r, struct peer *p);
void raft_broadcast_heartbeat(struct ox_raft *r);
void raft_leader_step(struct ox_raft *r, const struct ox_raft_msg *m);
void raft_maybe_commit(struct ox_raft *r);
void raft_conf_committed(struct ox_raft *r);

#endif
