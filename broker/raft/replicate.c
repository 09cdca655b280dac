// SPDX-License-Identifier: Apache-2.0
//
// The leader side of Raft: one progress record per follower (struct peer
// in raft_int.h), appends and heartbeats, counting matches into commits,
// snapshots for followers behind the log start, check-quorum and
// leadership transfer. raft.c calls in here; the host reaches it through
// ox_raft_step, ox_raft_tick, ox_raft_propose and the functions below.
//
// Each follower is in one of three states:
//   PROBE      one APPEND at a time, moving `next` back on each refusal
//              (using the follower's hint to skip a whole term) until one
//              is accepted;
//   REPLICATE  APPENDs pipelined from `next`, at most inflight_max in
//              flight; a refusal goes back to PROBE;
//   SNAPSHOT   next fell below the log start: a SNAPSHOT is out, and the
//              follower resumes from its answer.
// A follower that stops answering while paused (all of its window in
// flight, or its probe or snapshot unanswered) for two heartbeats goes
// back to PROBE from its match, so a lost message never stalls it; so
// does one whose window is only partly in flight but whose match stood
// still for STALL_OUTSTANDING_BEATS heartbeats (an APPEND lost with no
// later one to reveal the gap), and one whose APPEND the host could not
// send (ox_raft_append_dropped).
#include "broker/raft/raft_int.h"

#include <errno.h>
#include <string.h>

#include "proto/assert.h"
#include "proto/error.h"

// Heartbeats a paused follower may stay silent before it is probed anew.
#define STALL_BEATS_MAX 2
// Heartbeats a follower with APPENDs out (its window not full) may hold
// its match still before they count as lost: longer, since a slow disk
// looks the same for a while, and probing costs a resend.
#define STALL_OUTSTANDING_BEATS 5

static void inflight_clear(struct peer *p)
{
	p->inflight_head = 0;
	p->inflight_n = 0;
}

static void inflight_add(struct peer *p, int64_t end)
{
	OX_ASSERT(p->inflight_n < OX_RAFT_INFLIGHT_MAX);
	p->inflight[(p->inflight_head + p->inflight_n) % OX_RAFT_INFLIGHT_MAX] =
		end;
	p->inflight_n++;
}

// Frees the slots of APPENDs the follower now holds.
static void inflight_free_to(struct peer *p, int64_t index)
{
	while (p->inflight_n > 0 && p->inflight[p->inflight_head] <= index) {
		p->inflight_head = (p->inflight_head + 1) % OX_RAFT_INFLIGHT_MAX;
		p->inflight_n--;
	}
}

static void become_probe(struct peer *p, int64_t next)
{
	p->state = PEER_PROBE;
	p->next = next;
	p->probe_sent = false;
	p->reading = false; // a read in progress comes back stale
	p->stall_beats = 0;
	inflight_clear(p);
}

static void become_replicate(struct peer *p, int64_t next)
{
	p->state = PEER_REPLICATE;
	p->next = next;
	p->probe_sent = false;
	p->stall_beats = 0;
	inflight_clear(p);
}

static void send_snapshot(struct ox_raft *r, struct peer *p)
{
	struct ox_raft_msg m = {
		.type = OX_RAFT_MSG_SNAPSHOT,
		.to = p->id,
		.term = r->term,
		.index = r->start_index,
		.log_term = r->start_term,
		// The membership at the snapshot: the current one, unless it
		// came later (then the one before, which the entries after the
		// snapshot bring up to date).
		.conf = r->conf_index <= r->start_index ? r->conf : r->conf_prev,
	};

	if (!raft_push(r, &m))
		return;
	p->state = PEER_SNAPSHOT;
	p->snapshot_index = r->start_index;
	p->reading = false;
	p->stall_beats = 0;
	inflight_clear(p);
}

void raft_send_append(struct ox_raft *r, struct peer *p)
{
	struct ox_raft_msg m = {
		.type = OX_RAFT_MSG_APPEND,
		.to = p->id,
		.term = r->term,
		.index = r->last_index, // R9
		.wants_entries = true,
	};
	int rc;

	OX_ASSERT(r->role == OX_RAFT_LEADER);
	if (p->state == PEER_SNAPSHOT || p->reading)
		return;
	if (p->next < r->start_index) {
		send_snapshot(r, p);
		return;
	}
	if (p->next >= r->last_index ||
	    (p->state == PEER_PROBE && p->probe_sent) ||
	    (p->state == PEER_REPLICATE &&
	     p->inflight_n >= r->cfg.inflight_max))
		return;
	m.prev_index = p->next;
	m.end_index = r->last_index;
	m.commit = r->commit;
	rc = raft_term_at(r, m.prev_index, &m.prev_term);
	OX_ASSERT(rc == 0);
	if (!raft_push(r, &m))
		return;
	p->reading = true;
	p->read_from = m.prev_index;
	if (p->state == PEER_PROBE)
		p->probe_sent = true;
}

// A heartbeat checks the follower at its match (or, not knowing it, at
// next: a probe) and carries the commit index.
static void send_heartbeat(struct ox_raft *r, struct peer *p)
{
	struct ox_raft_msg m = {
		.type = OX_RAFT_MSG_APPEND,
		.to = p->id,
		.term = r->term,
		.index = r->last_index, // R9: what a rejoining node must hold
		.commit = r->commit,
	};
	int rc;

	if (p->state == PEER_SNAPSHOT)
		return;
	m.prev_index = p->match >= r->start_index ? p->match : p->next;
	if (m.prev_index > r->last_index)
		m.prev_index = r->last_index;
	if (m.prev_index < r->start_index) {
		send_snapshot(r, p);
		return;
	}
	m.end_index = m.prev_index;
	rc = raft_term_at(r, m.prev_index, &m.prev_term);
	OX_ASSERT(rc == 0);
	raft_push(r, &m);
}

void raft_broadcast_heartbeat(struct ox_raft *r)
{
	for (uint32_t i = 0; i < r->peers_n; i++) {
		send_heartbeat(r, &r->peers[i]);
		raft_send_append(r, &r->peers[i]);
	}
}

void raft_leader_start(struct ox_raft *r)
{
	for (uint32_t i = 0; i < r->peers_n; i++) {
		struct peer *p = &r->peers[i];
		bool voter = p->voter;

		memset(p->inflight, 0, sizeof(p->inflight));
		become_probe(p, r->last_index);
		p->match = -1;
		p->match_at_beat = -1;
		p->active = true;
		p->silent_ticks = UINT32_MAX; // answers to this leader count
		p->voter = voter;
	}
	r->heartbeat_elapsed = 0;
	r->election_elapsed = 0;
	r->transfer_target = OX_RAFT_NONE;
	r->commit_at_beat = r->commit;
	raft_broadcast_heartbeat(r);
	raft_maybe_commit(r); // a group of one commits on its own
}

// Number of voters whose durable match is at least `index`.
static uint32_t holders(const struct ox_raft *r, int64_t index)
{
	uint32_t n = 0;

	if (raft_is_voter(&r->conf, r->cfg.id) && r->durable_index >= index)
		n++;
	// R9: a follower still rejoining forgot the terms it had seen; its
	// copy would let a stale leader commit, so it is not counted.
	for (uint32_t i = 0; i < r->peers_n; i++)
		n += r->peers[i].voter && !r->peers[i].rejoining &&
		     r->peers[i].match >= index;
	return n;
}

static bool alone(const struct ox_raft *r)
{
	return r->conf.voters_n == 1 && r->conf.voters[0] == r->cfg.id;
}

void raft_maybe_commit(struct ox_raft *r)
{
	int64_t best = r->commit;
	uint64_t t;

	if (r->role != OX_RAFT_LEADER)
		return;
	// Candidates are the matches themselves (each is a batch boundary);
	// the highest one a quorum holds wins.
	for (uint32_t i = 0; i <= r->peers_n; i++) {
		int64_t c = i < r->peers_n ? r->peers[i].match : r->durable_index;

		if (c <= best || c > r->last_index ||
		    holders(r, c) < raft_quorum(r))
			continue;
		// R5: only an index of the leader's own term is counted,
		// unless this node is the only voter: its log is then the
		// group's, and no other log can be preferred to it.
		if (raft_term_at(r, c, &t) == 0 &&
		    (t == r->term || alone(r)))
			best = c;
	}
	raft_set_commit(r, best);
}

void raft_conf_committed(struct ox_raft *r)
{
	// A leader the committed configuration removed (or made a learner)
	// hands over by stepping down; the others elect among themselves.
	if (r->role == OX_RAFT_LEADER && !raft_is_voter(&r->conf, r->cfg.id))
		raft_become_follower(r, r->term, OX_RAFT_NONE);
}

static void send_timeout_now(struct ox_raft *r, struct peer *p)
{
	struct ox_raft_msg m = {
		.type = OX_RAFT_MSG_TIMEOUT_NOW,
		.to = p->id,
		.term = r->term,
	};

	raft_push(r, &m);
}

static void check_quorum(struct ox_raft *r)
{
	uint32_t active = raft_is_voter(&r->conf, r->cfg.id) ? 1 : 0;

	// R9: nor does it keep a leader in office (a stale leader it
	// follows would otherwise outlive its majority).
	for (uint32_t i = 0; i < r->peers_n; i++) {
		active += r->peers[i].voter && r->peers[i].active &&
			  !r->peers[i].rejoining;
		r->peers[i].active = false;
	}
	if (active < raft_quorum(r))
		raft_become_follower(r, r->term, OX_RAFT_NONE);
}

// A paused follower that made no progress for STALL_BEATS_MAX heartbeats
// lost a message: probe it again from what it is known to hold.
static void check_stall(struct ox_raft *r, struct peer *p)
{
	bool paused = (p->state == PEER_PROBE && (p->probe_sent || p->reading)) ||
		      (p->state == PEER_REPLICATE &&
		       (p->inflight_n >= r->cfg.inflight_max || p->reading)) ||
		      p->state == PEER_SNAPSHOT;
	bool waiting = p->state == PEER_REPLICATE && p->inflight_n > 0;

	if ((!paused && !waiting) || p->match != p->match_at_beat) {
		p->stall_beats = 0;
	} else if (++p->stall_beats >= (paused ? STALL_BEATS_MAX :
						 STALL_OUTSTANDING_BEATS)) {
		int64_t next = p->match >= 0 ? p->match : p->next;

		become_probe(p, next < r->last_index ? next : r->last_index);
	}
	p->match_at_beat = p->match;
}

void raft_leader_tick(struct ox_raft *r)
{
	r->heartbeat_elapsed++;
	r->election_elapsed++;
	for (uint32_t i = 0; i < r->peers_n; i++)
		if (r->peers[i].silent_ticks < UINT32_MAX)
			r->peers[i].silent_ticks++;
	if (r->transfer_target != OX_RAFT_NONE &&
	    ++r->transfer_elapsed >= r->cfg.election_ticks)
		r->transfer_target = OX_RAFT_NONE; // gave up: lead on
	if (r->election_elapsed >= r->cfg.election_ticks) {
		r->election_elapsed = 0;
		if (r->cfg.check_quorum) {
			check_quorum(r);
			if (r->role != OX_RAFT_LEADER)
				return;
		}
	}
	if (r->heartbeat_elapsed < r->cfg.heartbeat_ticks)
		return;
	r->heartbeat_elapsed = 0;
	for (uint32_t i = 0; i < r->peers_n; i++)
		check_stall(r, &r->peers[i]);
	r->commit_at_beat = r->commit;
	raft_broadcast_heartbeat(r);
}

// Where to probe after a refusal at m->prev_index: past the follower's
// conflicting term if we hold it too, else at its start in the follower's
// log, or at the follower's end when its log is too short. Always below
// the refused point, so probing ends.
static int64_t probe_point(const struct ox_raft *r,
			   const struct ox_raft_msg *m)
{
	int64_t next = m->index;

	if (m->log_term != 0) {
		for (uint32_t i = 0; i < r->runs_n; i++) {
			if (r->runs[i].term != m->log_term)
				continue;
			next = i + 1 < r->runs_n ? r->runs[i + 1].start :
						   r->last_index;
			break;
		}
	}
	if (next >= m->prev_index)
		next = m->prev_index - 1;
	if (next > r->last_index)
		next = r->last_index;
	return next < 0 ? 0 : next;
}

static void append_refused(struct ox_raft *r, struct peer *p,
			   const struct ox_raft_msg *m)
{
	// It durably held our log up to match: a refusal at or below that is
	// an old answer overtaken by later ones. (Durable entries do not
	// vanish, but for a node that lost its disk: its answers then say it
	// is rejoining, and raft_leader_step lowered match already, R9.)
	if (m->prev_index <= p->match)
		return;
	if (p->state == PEER_PROBE && m->prev_index != p->next &&
	    m->prev_index != p->read_from)
		return; // an answer to an older probe
	if (m->prev_index == 0)
		return; // every log matches at 0: a confused follower
	become_probe(p, probe_point(r, m));
	raft_send_append(r, p);
}

static void append_accepted(struct ox_raft *r, struct peer *p,
			    const struct ox_raft_msg *m)
{
	int64_t agreed = m->end_index < r->last_index ? m->end_index :
							r->last_index;

	if (m->index > r->last_index)
		return; // claims entries we never had: ignore it
	inflight_free_to(p, m->index);
	if (m->index > p->match) {
		p->match = m->index;
		raft_maybe_commit(r);
		if (r->role != OX_RAFT_LEADER)
			return; // the commit removed this leader
	}
	if (p->state == PEER_PROBE ||
	    (p->state == PEER_SNAPSHOT && p->match >= p->snapshot_index))
		become_replicate(p, agreed > p->match ? agreed : p->match);
	if (p->id == r->transfer_target && p->match >= r->last_index)
		send_timeout_now(r, p);
	raft_send_append(r, p);
}

void raft_leader_step(struct ox_raft *r, const struct ox_raft_msg *m)
{
	struct peer *p = raft_peer(r, m->from);

	OX_ASSERT(r->role == OX_RAFT_LEADER);
	if (p == NULL)
		return; // not a member (any more)
	p->active = true;
	p->silent_ticks = 0;
	p->rejoining = m->rejoining;
	if (m->rejoining && m->index < p->match) {
		// R9: it lost what it held (a wiped disk) and holds `index`
		// now; probe it from there (no longer counted for the rest).
		p->match = m->index;
		become_probe(p, m->index < r->last_index ? m->index :
							  r->last_index);
		if (!m->ok) {
			raft_send_append(r, p);
			return;
		}
	}
	if (m->type == OX_RAFT_MSG_SNAPSHOT_RESP || m->ok)
		append_accepted(r, p, m);
	else
		append_refused(r, p, m);
}

int ox_raft_append_fill(struct ox_raft *r, struct ox_raft_msg *msg,
			int64_t base, int64_t end)
{
	struct peer *p;
	int64_t i;
	int rc;

	OX_ASSERT(r != NULL && msg != NULL);
	p = raft_peer(r, msg->to);
	if (r->role != OX_RAFT_LEADER || msg->term != r->term ||
	    !msg->wants_entries || p == NULL || !p->reading ||
	    p->read_from != msg->prev_index)
		return -ESTALE;
	p->reading = false;
	if (base < r->start_index || base > msg->prev_index ||
	    end <= msg->prev_index || end > r->last_index)
		return -EINVAL;
	// The runs covering [base, end), cut at the one too many.
	i = -1;
	for (uint32_t k = 0; k < r->runs_n; k++)
		if (r->runs[k].start <= base)
			i = k;
	OX_ASSERT(i >= 0);
	msg->runs_n = 0;
	for (uint32_t k = (uint32_t)i; k < r->runs_n && r->runs[k].start < end;
	     k++) {
		if (msg->runs_n == OX_RAFT_MSG_RUNS_MAX) {
			end = r->runs[k].start;
			break;
		}
		msg->runs[msg->runs_n++] = r->runs[k];
	}
	msg->prev_index = base;
	rc = raft_term_at(r, base, &msg->prev_term);
	OX_ASSERT(rc == 0);
	msg->end_index = end;
	msg->commit = r->commit;
	msg->wants_entries = false;
	if (p->state == PEER_REPLICATE) {
		p->next = end;
		inflight_add(p, end);
		raft_send_append(r, p); // the next window, if any
	} else {
		p->next = base;
	}
	return 0;
}

void ox_raft_append_dropped(struct ox_raft *r, const struct ox_raft_msg *msg)
{
	struct peer *p;

	OX_ASSERT(r != NULL && msg != NULL);
	p = raft_peer(r, msg->to);
	if (r->role != OX_RAFT_LEADER || msg->term != r->term || p == NULL)
		return;
	if (msg->wants_entries && p->reading &&
	    p->read_from == msg->prev_index)
		p->reading = false;
	if (p->state == PEER_PROBE)
		p->probe_sent = false;
	// Entries the pipeline counted as sent never left: nothing later
	// would show the follower the gap, so probe again from its match.
	if (p->state == PEER_REPLICATE && !msg->wants_entries &&
	    msg->end_index > msg->prev_index && msg->prev_index >= p->match)
		become_probe(p, p->match >= r->start_index ? p->match :
							    msg->prev_index);
}

int ox_raft_transfer(struct ox_raft *r, uint64_t target)
{
	struct peer *p;

	OX_ASSERT(r != NULL);
	if (r->role != OX_RAFT_LEADER)
		return -OX_ENOTLEADER;
	p = raft_peer(r, target);
	if (p == NULL || !p->voter)
		return -EINVAL;
	r->transfer_target = target;
	r->transfer_elapsed = 0;
	if (p->match >= r->last_index)
		send_timeout_now(r, p);
	else
		raft_send_append(r, p);
	return 0;
}

bool ox_raft_heard(const struct ox_raft *r, uint64_t peer)
{
	OX_ASSERT(r != NULL);
	if (r->role != OX_RAFT_LEADER)
		return false;
	for (uint32_t i = 0; i < r->peers_n; i++)
		if (r->peers[i].id == peer)
			return r->peers[i].active;
	return false;
}

bool ox_raft_caught_up(const struct ox_raft *r, uint64_t peer)
{
	OX_ASSERT(r != NULL);
	if (r->role != OX_RAFT_LEADER)
		return false;
	for (uint32_t i = 0; i < r->peers_n; i++)
		if (r->peers[i].id == peer)
			return r->peers[i].silent_ticks <
				       r->cfg.election_ticks &&
			       !r->peers[i].rejoining &&
			       r->peers[i].match >= r->commit_at_beat;
	return false;
}

uint64_t ox_raft_transferee(const struct ox_raft *r)
{
	OX_ASSERT(r != NULL);
	return r->role == OX_RAFT_LEADER ? r->transfer_target : OX_RAFT_NONE;
}

uint64_t ox_raft_successor(const struct ox_raft *r,
			   bool (*usable)(void *arg, uint64_t id), void *arg)
{
	const struct peer *best = NULL;

	OX_ASSERT(r != NULL);
	if (r->role != OX_RAFT_LEADER)
		return OX_RAFT_NONE;
	// Voters in configuration order, so ties go to the preferred one.
	for (uint32_t v = 0; v < r->conf.voters_n; v++) {
		const struct peer *p = NULL;

		for (uint32_t i = 0; i < r->peers_n && p == NULL; i++)
			if (r->peers[i].id == r->conf.voters[v] &&
			    r->peers[i].voter)
				p = &r->peers[i];
		if (p == NULL || p->rejoining ||
		    (usable != NULL && !usable(arg, p->id)))
			continue; // this node, one the host cannot reach, or
				  // one that may not campaign yet (R9)
		if (best == NULL || (p->active && !best->active) ||
		    (p->active == best->active && p->match > best->match))
			best = p;
	}
	OX_ASSERT(best == NULL || best->id != r->cfg.id);
	return best != NULL ? best->id : OX_RAFT_NONE;
}
