// SPDX-License-Identifier: Apache-2.0
//
// Raft's roles, elections and follower side, and the term runs that stand
// for the log (raft.h has the design notes and the invariants R1..R8).
// replicate.c holds the leader side. Everything here is driven by the
// host through raft.h; nothing blocks, nothing reads a clock, and the only
// allocation is in ox_raft_create.
#include "broker/raft/raft_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto/assert.h"
#include "proto/error.h"

// ---------------------------------------------------------------------
// Randomness and timeouts

static uint64_t rng_next(struct ox_raft *r)
{
	// splitmix64: tiny, and any seed (0 included) gives a good stream.
	uint64_t z = (r->rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void reset_election_timeout(struct ox_raft *r)
{
	uint32_t e = r->cfg.election_ticks;

	r->election_elapsed = 0;
	r->election_timeout = e + (uint32_t)(rng_next(r) % e);
}

// ---------------------------------------------------------------------
// Configurations

bool raft_is_voter(const struct ox_raft_conf *c, uint64_t id)
{
	for (uint32_t i = 0; i < c->voters_n; i++)
		if (c->voters[i] == id)
			return true;
	return false;
}

static bool is_member(const struct ox_raft_conf *c, uint64_t id)
{
	if (raft_is_voter(c, id))
		return true;
	for (uint32_t i = 0; i < c->learners_n; i++)
		if (c->learners[i] == id)
			return true;
	return false;
}

// At least one voter, lists within bounds, ids non-zero and distinct.
bool ox_raft_conf_valid(const struct ox_raft_conf *c)
{
	uint64_t seen[2 * OX_RAFT_NODES_MAX];
	uint32_t n = 0;

	if (c->voters_n < 1 || c->voters_n > OX_RAFT_NODES_MAX ||
	    c->learners_n > OX_RAFT_NODES_MAX)
		return false;
	for (uint32_t i = 0; i < c->voters_n + c->learners_n; i++) {
		uint64_t id = i < c->voters_n ? c->voters[i] :
						c->learners[i - c->voters_n];
		if (id == OX_RAFT_NONE)
			return false;
		for (uint32_t j = 0; j < n; j++)
			if (seen[j] == id)
				return false;
		seen[n++] = id;
	}
	return true;
}

static bool conf_equal(const struct ox_raft_conf *a,
		       const struct ox_raft_conf *b)
{
	if (a->voters_n != b->voters_n || a->learners_n != b->learners_n)
		return false;
	for (uint32_t i = 0; i < a->voters_n; i++)
		if (!raft_is_voter(b, a->voters[i]))
			return false;
	for (uint32_t i = 0; i < a->learners_n; i++)
		if (!is_member(b, a->learners[i]) ||
		    raft_is_voter(b, a->learners[i]))
			return false;
	return true;
}

struct peer *raft_peer(struct ox_raft *r, uint64_t id)
{
	for (uint32_t i = 0; i < r->peers_n; i++)
		if (r->peers[i].id == id)
			return &r->peers[i];
	return NULL;
}

static void peer_reset(struct peer *p, uint64_t id, int64_t next)
{
	memset(p, 0, sizeof(*p));
	p->id = id;
	p->state = PEER_PROBE;
	p->match = -1;
	p->match_at_beat = -1;
	p->next = next;
	p->silent_ticks = UINT32_MAX; // never heard from
}

// The peers are the members but this node; progress of members that stay
// is kept.
static void peers_rebuild(struct ox_raft *r)
{
	struct peer old[OX_RAFT_PEERS_MAX];
	uint32_t old_n = r->peers_n;
	const struct ox_raft_conf *c = &r->conf;

	memcpy(old, r->peers, sizeof(old));
	r->peers_n = 0;
	for (uint32_t i = 0; i < c->voters_n + c->learners_n; i++) {
		uint64_t id = i < c->voters_n ? c->voters[i] :
						c->learners[i - c->voters_n];
		struct peer *p;

		if (id == r->cfg.id)
			continue;
		OX_ASSERT(r->peers_n < OX_RAFT_PEERS_MAX);
		p = &r->peers[r->peers_n++];
		peer_reset(p, id, r->last_index);
		for (uint32_t j = 0; j < old_n; j++)
			if (old[j].id == id)
				*p = old[j];
		p->voter = i < c->voters_n;
	}
}

static void set_conf(struct ox_raft *r, const struct ox_raft_conf *c,
		     int64_t index)
{
	OX_ASSERT(ox_raft_conf_valid(c));
	r->conf = *c;
	r->conf_index = index;
	r->hard_changed = true;
	peers_rebuild(r);
}

uint32_t raft_quorum(const struct ox_raft *r)
{
	return r->conf.voters_n / 2 + 1;
}

// ---------------------------------------------------------------------
// Term runs: the log's terms

// Index of the run holding offset `o`, or -1 when o is before them all.
static int64_t run_find(const struct ox_raft *r, int64_t o)
{
	int64_t lo = 0, hi = (int64_t)r->runs_n - 1, found = -1;

	while (lo <= hi) {
		int64_t mid = lo + (hi - lo) / 2;

		if (r->runs[mid].start <= o) {
			found = mid;
			lo = mid + 1;
		} else {
			hi = mid - 1;
		}
	}
	return found;
}

int raft_term_at(const struct ox_raft *r, int64_t index, uint64_t *term)
{
	int64_t i;

	if (index == r->start_index) {
		*term = r->start_term;
		return 0;
	}
	if (index < r->start_index || index > r->last_index)
		return -OX_EOFFSET;
	i = run_find(r, index - 1);
	OX_ASSERT(i >= 0); // runs cover [start_index, last_index)
	*term = r->runs[i].term;
	return 0;
}

uint64_t raft_last_term(const struct ox_raft *r)
{
	uint64_t t = 0;
	int rc = raft_term_at(r, r->last_index, &t);

	OX_ASSERT(rc == 0);
	return t;
}

// Runs left after dropping the log from offset `at` on.
static uint32_t runs_below(const struct ox_raft *r, int64_t at)
{
	return (uint32_t)(run_find(r, at - 1) + 1);
}

// Extends the log to `end` with the entries of term `term`.
static void log_extend(struct ox_raft *r, int64_t end, uint64_t term)
{
	OX_ASSERT(end > r->last_index);
	if (r->runs_n == 0 || r->runs[r->runs_n - 1].term != term) {
		OX_ASSERT(r->runs_n < r->runs_max);
		OX_ASSERT(r->runs_n == 0 || r->runs[r->runs_n - 1].term < term);
		r->runs[r->runs_n++] = (struct ox_raft_run){
			.start = r->last_index, .term = term };
	}
	r->last_index = end;
}

// Drops the log from offset `at` on (a batch boundary). Undoes a
// configuration whose entry goes with it (R7).
static void log_truncate(struct ox_raft *r, int64_t at)
{
	OX_ASSERT(at >= r->start_index && at <= r->last_index);
	OX_ASSERT(at >= r->commit); // R5: never a committed entry
	r->runs_n = runs_below(r, at);
	r->last_index = at;
	if (r->durable_index > at)
		r->durable_index = at;
	if (r->verified > at)
		r->verified = at;
	if (r->conf_index > at) {
		// The one before was committed; its index no longer matters.
		struct ox_raft_conf prev = r->conf_prev;

		set_conf(r, &prev, 0);
	}
}

// ---------------------------------------------------------------------
// Roles

bool raft_push(struct ox_raft *r, const struct ox_raft_msg *m)
{
	// A full outbox drops the message: Raft survives lost messages, and
	// the host was told to take a ready after every input (R8).
	if (r->outbox_n == OX_RAFT_OUTBOX_MAX)
		return false;
	r->outbox[r->outbox_n] = *m;
	r->outbox[r->outbox_n].from = r->cfg.id;
	r->outbox_n++;
	return true;
}

void raft_set_commit(struct ox_raft *r, int64_t commit)
{
	if (commit <= r->commit)
		return;
	OX_ASSERT(commit <= r->last_index);
	r->commit = commit;
	r->commit_changed = true;
	if (r->conf_index <= r->commit &&
	    !conf_equal(&r->conf_prev, &r->conf)) {
		r->conf_prev = r->conf;
		r->hard_changed = true;
		if (r->role == OX_RAFT_LEADER)
			raft_conf_committed(r);
	}
}

static void set_role(struct ox_raft *r, enum ox_raft_role role,
		     uint64_t leader)
{
	if (r->role != role || r->leader != leader)
		r->role_changed = true;
	r->role = role;
	r->leader = leader;
}

void raft_become_follower(struct ox_raft *r, uint64_t term, uint64_t leader)
{
	// R6: what was verified holds for one leader in one term only (the
	// same node leading a later term may have had its log cut between).
	if (term > r->term || leader != r->leader ||
	    r->role != OX_RAFT_FOLLOWER) {
		r->verified = r->commit;
		r->rejoin_target = -1; // R9: learnt anew from this leader
		r->rejoin_ticks = 0;
	}
	if (term > r->term) {
		r->term = term;
		r->vote = OX_RAFT_NONE;
		r->hard_changed = true;
		r->role_changed = true;
	}
	set_role(r, OX_RAFT_FOLLOWER, leader);
	r->transfer_target = OX_RAFT_NONE;
	r->acked = -1;
	reset_election_timeout(r);
}

bool raft_forgetful(const struct ox_raft *r)
{
	return r->rejoining != OX_RAFT_REJOIN_NONE &&
	       !(r->conf.voters_n == 1 && r->conf.voters[0] == r->cfg.id);
}

// R9: a rejoining follower that holds, durably and verified against its
// leader, the leader's log as it was when first heard from in this term
// holds every entry ever committed (R4), provided that leader was not a
// stale one: it must still lead, heard from within an election timeout,
// two election timeouts after that first message (a leader cut off from
// its majority steps down within one, check-quorum). It may vote again
// then, though never a second time in this term.
static void rejoin_check(struct ox_raft *r)
{
	if (r->rejoining == OX_RAFT_REJOIN_NONE || r->role != OX_RAFT_FOLLOWER ||
	    r->leader == OX_RAFT_NONE || r->rejoin_target < 0 ||
	    r->durable_index < r->rejoin_target ||
	    r->verified < r->rejoin_target ||
	    r->rejoin_ticks < 2 * r->cfg.election_ticks ||
	    r->election_elapsed >= r->cfg.election_ticks)
		return;
	if (r->vote == OX_RAFT_NONE)
		r->vote = r->cfg.id;
	r->rejoining = OX_RAFT_REJOIN_NONE;
	r->hard_changed = true;
}

// R9: a peer showed a log (a leader, or a candidate with entries): the
// group exists, and a FRESH replica is BEHIND it.
static void rejoin_saw_log(struct ox_raft *r)
{
	if (r->rejoining != OX_RAFT_REJOIN_FRESH)
		return;
	r->rejoining = OX_RAFT_REJOIN_BEHIND;
	r->hard_changed = true;
}

static void become_leader(struct ox_raft *r)
{
	OX_ASSERT(r->role == OX_RAFT_CANDIDATE);
	if (r->rejoining != OX_RAFT_REJOIN_NONE) {
		r->rejoining = OX_RAFT_REJOIN_NONE; // the only voter (R9)
		r->hard_changed = true;
	}
	set_role(r, OX_RAFT_LEADER, r->cfg.id);
	raft_leader_start(r);
}

static void reset_votes(struct ox_raft *r)
{
	for (uint32_t i = 0; i < r->peers_n; i++) {
		r->peers[i].vote_answered = false;
		r->peers[i].vote_granted = false;
	}
}

static uint32_t votes_granted(const struct ox_raft *r)
{
	uint32_t n = raft_is_voter(&r->conf, r->cfg.id) ? 1 : 0;

	for (uint32_t i = 0; i < r->peers_n; i++)
		n += r->peers[i].voter && r->peers[i].vote_granted;
	return n;
}

static uint32_t votes_refused(const struct ox_raft *r)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < r->peers_n; i++)
		n += r->peers[i].voter && r->peers[i].vote_answered &&
		     !r->peers[i].vote_granted;
	return n;
}

static void request_votes(struct ox_raft *r, bool pre, bool transfer)
{
	struct ox_raft_msg m = {
		.type = pre ? OX_RAFT_MSG_PRE_VOTE : OX_RAFT_MSG_VOTE,
		.term = pre ? r->term + 1 : r->term,
		.index = r->last_index,
		.log_term = raft_last_term(r),
		.transfer = transfer,
	};

	for (uint32_t i = 0; i < r->peers_n; i++) {
		if (!r->peers[i].voter)
			continue;
		m.to = r->peers[i].id;
		raft_push(r, &m);
	}
}

static void become_candidate(struct ox_raft *r, bool transfer)
{
	r->term++;
	r->vote = r->cfg.id; // R1: persisted before the requests go out
	r->hard_changed = true;
	set_role(r, OX_RAFT_CANDIDATE, OX_RAFT_NONE);
	r->role_changed = true;
	reset_election_timeout(r);
	reset_votes(r);
	if (votes_granted(r) >= raft_quorum(r)) {
		become_leader(r);
		return;
	}
	request_votes(r, false, transfer);
}

static void become_pre_candidate(struct ox_raft *r)
{
	set_role(r, OX_RAFT_PRE_CANDIDATE, OX_RAFT_NONE);
	reset_election_timeout(r);
	reset_votes(r);
	if (votes_granted(r) >= raft_quorum(r)) {
		become_candidate(r, false);
		return;
	}
	request_votes(r, true, false);
}

// A voter of the configuration in effect campaigns; so does one the
// latest, uncommitted configuration removes, or a group whose removing
// entry is only in its log could never elect anyone (votes are counted
// in the latest configuration either way).
static bool may_campaign(const struct ox_raft *r)
{
	if (raft_forgetful(r))
		return false; // R9: it waits to catch up
	return raft_is_voter(&r->conf, r->cfg.id) ||
	       (r->conf_index > r->commit &&
		raft_is_voter(&r->conf_prev, r->cfg.id));
}

static void campaign(struct ox_raft *r)
{
	// A learner waits; its elapsed time keeps growing, so the lease of a
	// leader it no longer hears from ends and it can vote.
	if (!may_campaign(r))
		return;
	if (r->cfg.pre_vote)
		become_pre_candidate(r);
	else
		become_candidate(r, false);
}

// ---------------------------------------------------------------------
// Votes

// A leader was heard from within the minimum election timeout: a vote
// request then comes from a node that lost touch (a removed one, or one
// cut off) and would only disrupt the group, so it is ignored.
static bool in_lease(const struct ox_raft *r)
{
	return r->leader != OX_RAFT_NONE &&
	       r->election_elapsed < r->cfg.election_ticks;
}

// R4: the candidate's log is at least as up to date as ours.
static bool log_up_to_date(const struct ox_raft *r, int64_t index,
			   uint64_t term)
{
	uint64_t last = raft_last_term(r);

	return term > last || (term == last && index >= r->last_index);
}

static void handle_vote(struct ox_raft *r, const struct ox_raft_msg *m)
{
	bool pre = m->type == OX_RAFT_MSG_PRE_VOTE;
	bool can;
	struct ox_raft_msg resp = {
		.type = pre ? OX_RAFT_MSG_PRE_VOTE_RESP : OX_RAFT_MSG_VOTE_RESP,
		.to = m->from,
		.term = r->term,
	};

	if (pre)
		can = m->term > r->term && !in_lease(r);
	else
		can = r->vote == m->from ||
		      (r->vote == OX_RAFT_NONE && r->leader == OX_RAFT_NONE);
	if (raft_forgetful(r)) {
		if (m->index > 0)
			rejoin_saw_log(r);
		can = false; // R9
	}

	if (can && log_up_to_date(r, m->index, m->log_term)) {
		resp.ok = true;
		if (pre) {
			resp.term = m->term;
		} else {
			r->vote = m->from; // R1
			r->hard_changed = true;
			reset_election_timeout(r);
		}
	}
	raft_push(r, &resp);
}

static void handle_vote_resp(struct ox_raft *r, const struct ox_raft_msg *m)
{
	bool pre = m->type == OX_RAFT_MSG_PRE_VOTE_RESP;
	struct peer *p = raft_peer(r, m->from);

	if (r->role != (pre ? OX_RAFT_PRE_CANDIDATE : OX_RAFT_CANDIDATE) ||
	    p == NULL || p->vote_answered)
		return;
	// A granted pre-vote is for the term we would campaign in.
	if (pre && m->ok && m->term != r->term + 1)
		return;
	p->vote_answered = true;
	p->vote_granted = m->ok;
	if (votes_granted(r) >= raft_quorum(r)) {
		if (pre)
			become_candidate(r, false);
		else
			become_leader(r);
	} else if (votes_refused(r) >= raft_quorum(r)) {
		raft_become_follower(r, r->term, OX_RAFT_NONE);
	}
}

// ---------------------------------------------------------------------
// The follower side of replication

static void answer_append(struct ox_raft *r, uint64_t to,
			  enum ox_raft_msg_type type)
{
	int64_t ack = r->durable_index < r->verified ? r->durable_index :
						      r->verified;
	struct ox_raft_msg resp = {
		.type = type,
		.to = to,
		.term = r->term,
		.ok = true,
		.index = ack,
		.end_index = r->verified,
		.rejoining = r->rejoining != OX_RAFT_REJOIN_NONE,
	};

	if (raft_push(r, &resp) && ack > r->acked)
		r->acked = ack;
}

static void reject_append(struct ox_raft *r, const struct ox_raft_msg *m)
{
	struct ox_raft_msg resp = {
		.type = OX_RAFT_MSG_APPEND_RESP,
		.to = m->from,
		.term = r->term,
		.prev_index = m->prev_index,
		.index = m->prev_index > r->last_index ? r->last_index :
							 r->start_index,
		.rejoining = r->rejoining != OX_RAFT_REJOIN_NONE,
	};

	if (m->prev_index <= r->last_index && m->prev_index > r->start_index) {
		// Conflict at prev_index: name our term there and where it
		// starts, so the leader skips the whole term (R3). (At our
		// start, all we can say is where we start.)
		int64_t i = run_find(r, m->prev_index - 1);

		OX_ASSERT(i >= 0);
		resp.log_term = r->runs[i].term;
		resp.index = r->runs[i].start > r->start_index ?
				     r->runs[i].start : r->start_index;
	}
	raft_push(r, &resp);
}

uint64_t ox_raft_msg_term_at(const struct ox_raft_msg *m, int64_t o)
{
	uint64_t t = m->runs[0].term;

	OX_ASSERT(m->runs_n > 0);
	for (uint32_t i = 1; i < m->runs_n && m->runs[i].start <= o; i++)
		t = m->runs[i].term;
	return t;
}

static uint64_t own_term_at(const struct ox_raft *r, int64_t o)
{
	int64_t i = run_find(r, o);

	OX_ASSERT(i >= 0);
	return r->runs[i].term;
}

// The first offset in [from, limit) where our log and the message's
// entries have different terms, or limit. Terms are constant between run
// starts, so only run starts need looking at.
static int64_t first_conflict(const struct ox_raft *r,
			      const struct ox_raft_msg *m, int64_t from,
			      int64_t limit)
{
	int64_t o = from;

	while (o < limit) {
		int64_t next = limit;
		int64_t i = run_find(r, o);

		if (own_term_at(r, o) != ox_raft_msg_term_at(m, o))
			return o;
		if (i + 1 < (int64_t)r->runs_n && r->runs[i + 1].start < next)
			next = r->runs[i + 1].start;
		for (uint32_t k = 0; k < m->runs_n; k++)
			if (m->runs[k].start > o && m->runs[k].start < next)
				next = m->runs[k].start;
		o = next;
	}
	return limit;
}

// Runs that appending the message's entries in [from, end) adds.
static uint32_t runs_needed(const struct ox_raft *r, uint32_t kept,
			    const struct ox_raft_msg *m, int64_t from)
{
	uint64_t last = kept > 0 ? r->runs[kept - 1].term : 0;
	uint32_t n = 0;

	for (uint32_t k = 0; k < m->runs_n; k++) {
		int64_t s = m->runs[k].start < from ? from : m->runs[k].start;

		if (s >= m->end_index || (k + 1 < m->runs_n &&
					  m->runs[k + 1].start <= from))
			continue;
		if (m->runs[k].term != last)
			n++;
		last = m->runs[k].term;
	}
	return n;
}

static void append_entries(struct ox_raft *r, const struct ox_raft_msg *m,
			   int64_t from)
{
	for (uint32_t k = 0; k < m->runs_n; k++) {
		int64_t end = k + 1 < m->runs_n ? m->runs[k + 1].start :
						  m->end_index;
		if (end <= from)
			continue;
		log_extend(r, end, m->runs[k].term);
	}
	OX_ASSERT(r->last_index == m->end_index);
}

static int handle_append(struct ox_raft *r, const struct ox_raft_msg *m,
			 struct ox_raft_plan *plan)
{
	int64_t check = m->prev_index;
	int64_t limit, conflict, from;
	uint64_t t;

	if (r->role != OX_RAFT_FOLLOWER || r->leader != m->from)
		raft_become_follower(r, m->term, m->from);
	r->election_elapsed = 0;
	if (r->rejoining != OX_RAFT_REJOIN_NONE) {
		if (m->index > 0)
			rejoin_saw_log(r);
		if (r->rejoin_target < 0)
			r->rejoin_target = m->index; // its last index (R9)
	}
	if (m->prev_index > r->last_index) {
		reject_append(r, m);
		return 0;
	}
	if (check < r->start_index) {
		// Below our start all is committed, so it matches (R5).
		check = r->start_index;
	} else if (raft_term_at(r, check, &t) < 0 || t != m->prev_term) {
		reject_append(r, m);
		return 0;
	}
	limit = m->end_index < r->last_index ? m->end_index : r->last_index;
	conflict = check < limit ? first_conflict(r, m, check, limit) : limit;
	from = conflict < limit ? conflict : r->last_index;
	if (m->end_index > from) {
		uint32_t kept = runs_below(r, from);

		// A correct leader never rewrites committed entries (R5) nor
		// sends terms lower than the ones before them.
		if (from < r->commit ||
		    (kept > 0 &&
		     ox_raft_msg_term_at(m, from) < r->runs[kept - 1].term))
			return -EINVAL;
		if (kept + runs_needed(r, kept, m, from) > r->runs_max)
			return -ENOSPC;
		if (from < r->last_index) {
			log_truncate(r, from);
			plan->truncate_index = from;
		}
		append_entries(r, m, from);
		plan->append_from = from;
		plan->append_end = m->end_index;
	}
	if (m->end_index > r->verified)
		r->verified = m->end_index < r->last_index ? m->end_index :
							    r->last_index;
	if (check > r->verified)
		r->verified = check;
	raft_set_commit(r, m->commit < r->verified ? m->commit : r->verified);
	answer_append(r, m->from, OX_RAFT_MSG_APPEND_RESP);
	rejoin_check(r);
	return 0;
}

static void handle_snapshot(struct ox_raft *r, const struct ox_raft_msg *m,
			    struct ox_raft_plan *plan)
{
	uint64_t t;

	if (r->role != OX_RAFT_FOLLOWER || r->leader != m->from)
		raft_become_follower(r, m->term, m->from);
	r->election_elapsed = 0;
	if (m->index <= r->commit) {
		// Everything up to it is committed and matches already.
		answer_append(r, m->from, OX_RAFT_MSG_SNAPSHOT_RESP);
		return;
	}
	if (m->index <= r->last_index && m->index >= r->start_index &&
	    raft_term_at(r, m->index, &t) == 0 && t == m->log_term) {
		// We hold the snapshot's last entry: what follows it is ours
		// to keep (and may be durable and counted by a leader).
		if (m->index > r->verified)
			r->verified = m->index;
		raft_set_commit(r, m->index);
		answer_append(r, m->from, OX_RAFT_MSG_SNAPSHOT_RESP);
		return;
	}
	r->runs_n = 0;
	r->start_index = m->index;
	r->start_term = m->log_term;
	r->last_index = m->index;
	r->durable_index = 0; // until the host installs it
	r->verified = m->index;
	r->commit = m->index;
	r->commit_changed = true;
	r->conf_prev = m->conf;
	set_conf(r, &m->conf, m->index);
	r->snapshot_pending = true;
	plan->snapshot_index = m->index;
}

// ---------------------------------------------------------------------
// Input checks: everything a peer sends is untrusted.

static bool index_valid(int64_t index)
{
	return index >= 0 && index < OX_RAFT_INDEX_MAX;
}

static bool runs_valid(const struct ox_raft_msg *m)
{
	if (m->runs_n > OX_RAFT_MSG_RUNS_MAX)
		return false;
	if (m->end_index == m->prev_index)
		return m->runs_n == 0;
	if (m->runs_n == 0 || m->runs[0].start > m->prev_index ||
	    m->runs[0].term < m->prev_term)
		return false;
	for (uint32_t i = 0; i < m->runs_n; i++) {
		if (m->runs[i].start >= m->end_index ||
		    m->runs[i].term > m->term)
			return false;
		if (i > 0 && (m->runs[i].start <= m->runs[i - 1].start ||
			      m->runs[i].start <= m->prev_index ||
			      m->runs[i].term <= m->runs[i - 1].term))
			return false;
	}
	return true;
}

static bool msg_valid(const struct ox_raft *r, const struct ox_raft_msg *m)
{
	if (m->from == OX_RAFT_NONE || m->from == r->cfg.id ||
	    m->to != r->cfg.id || !index_valid(m->index) ||
	    !index_valid(m->prev_index) || !index_valid(m->end_index) ||
	    !index_valid(m->commit) || m->term >= OX_RAFT_TERM_MAX ||
	    m->log_term >= OX_RAFT_TERM_MAX || m->prev_term >= OX_RAFT_TERM_MAX)
		return false;
	switch (m->type) {
	case OX_RAFT_MSG_PRE_VOTE:
	case OX_RAFT_MSG_VOTE:
	case OX_RAFT_MSG_PRE_VOTE_RESP:
	case OX_RAFT_MSG_VOTE_RESP:
	case OX_RAFT_MSG_APPEND_RESP:
	case OX_RAFT_MSG_SNAPSHOT_RESP:
	case OX_RAFT_MSG_TIMEOUT_NOW:
		return true;
	case OX_RAFT_MSG_APPEND:
		// Every log holds index 0, of term 0.
		return m->end_index >= m->prev_index && runs_valid(m) &&
		       (m->prev_index > 0 || m->prev_term == 0);
	case OX_RAFT_MSG_SNAPSHOT:
		return ox_raft_conf_valid(&m->conf);
	}
	return false;
}

// ---------------------------------------------------------------------
// The interface

static bool restore_valid(const struct ox_raft_restore *rs, uint32_t max)
{
	if (rs->start_index < 0 || rs->last_index < rs->start_index ||
	    rs->last_index >= OX_RAFT_INDEX_MAX ||
	    rs->hard.term >= OX_RAFT_TERM_MAX ||
	    rs->runs_n > max || (rs->runs_n > 0 && rs->runs == NULL) ||
	    !ox_raft_conf_valid(&rs->hard.conf) || rs->commit > rs->last_index)
		return false;
	if (rs->last_index > rs->start_index &&
	    (rs->runs_n == 0 || rs->runs[0].start > rs->start_index ||
	     rs->runs[0].term < rs->start_term))
		return false;
	for (uint32_t i = 0; i < rs->runs_n; i++) {
		if (rs->runs[i].start >= rs->last_index ||
		    rs->runs[i].term >= OX_RAFT_TERM_MAX)
			return false;
		if (i > 0 && (rs->runs[i].start <= rs->runs[i - 1].start ||
			      rs->runs[i].term <= rs->runs[i - 1].term))
			return false;
	}
	return true;
}

int ox_raft_create(struct ox_raft **out, const struct ox_raft_config *cfg,
		   const struct ox_raft_restore *rs, uint32_t runs_max)
{
	struct ox_raft *r;

	if (out == NULL || cfg == NULL || rs == NULL ||
	    cfg->id == OX_RAFT_NONE || cfg->election_ticks < 2 ||
	    cfg->heartbeat_ticks < 1 ||
	    cfg->heartbeat_ticks >= cfg->election_ticks ||
	    cfg->inflight_max < 1 || cfg->inflight_max > OX_RAFT_INFLIGHT_MAX ||
	    runs_max < 1 || !restore_valid(rs, runs_max))
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return -ENOMEM;
	r->runs = calloc(runs_max, sizeof(*r->runs));
	if (r->runs == NULL) {
		free(r);
		return -ENOMEM;
	}
	r->cfg = *cfg;
	r->rng = cfg->seed;
	r->runs_max = runs_max;
	r->term = rs->hard.term;
	r->vote = rs->hard.vote;
	r->rejoining = rs->hard.rejoining;
	r->rejoin_target = -1;
	if (rs->runs_n > 0 && rs->runs[rs->runs_n - 1].term > r->term) {
		// The log's write outran the hard state's: the node was in that
		// term. Any vote of it was never sent (R1), so none is kept.
		r->term = rs->runs[rs->runs_n - 1].term;
		r->vote = OX_RAFT_NONE;
	}
	r->conf_prev = ox_raft_conf_valid(&rs->hard.conf_prev) ? rs->hard.conf_prev :
							 rs->hard.conf;
	r->start_index = rs->start_index;
	r->start_term = rs->start_term;
	r->last_index = rs->last_index;
	r->durable_index = rs->last_index;
	memcpy(r->runs, rs->runs, rs->runs_n * sizeof(*r->runs));
	r->runs_n = rs->runs_n;
	r->commit = rs->commit > rs->start_index ? rs->commit : rs->start_index;
	r->verified = r->commit;
	r->acked = -1;
	set_conf(r, &rs->hard.conf, rs->hard.conf_index);
	r->hard_changed = r->term != rs->hard.term;
	r->role = OX_RAFT_FOLLOWER;
	reset_election_timeout(r);
	*out = r;
	return 0;
}

void ox_raft_destroy(struct ox_raft *r)
{
	if (r == NULL)
		return;
	free(r->runs);
	free(r);
}

void ox_raft_tick(struct ox_raft *r)
{
	OX_ASSERT(r != NULL);
	if (r->role == OX_RAFT_LEADER) {
		raft_leader_tick(r);
		return;
	}
	r->election_elapsed++;
	if (r->rejoining != OX_RAFT_REJOIN_NONE) {
		r->rejoin_ticks++;
		if (r->rejoining == OX_RAFT_REJOIN_FRESH &&
		    r->rejoin_target < 0 && r->cfg.rejoin_grace_ticks > 0 &&
		    r->rejoin_ticks >= r->cfg.rejoin_grace_ticks) {
			r->rejoining = OX_RAFT_REJOIN_NONE; // a group being born
			r->hard_changed = true;
		}
		rejoin_check(r);
	}
	if (r->election_elapsed >= r->election_timeout)
		campaign(r);
}

// Term rules common to every message; returns false to drop it.
static bool step_term(struct ox_raft *r, const struct ox_raft_msg *m)
{
	bool from_leader = m->type == OX_RAFT_MSG_APPEND ||
			   m->type == OX_RAFT_MSG_SNAPSHOT ||
			   m->type == OX_RAFT_MSG_TIMEOUT_NOW;

	if (m->term > r->term) {
		if (m->type == OX_RAFT_MSG_PRE_VOTE ||
		    (m->type == OX_RAFT_MSG_PRE_VOTE_RESP && m->ok))
			return true; // no term change for a pre-vote
		if (m->type == OX_RAFT_MSG_VOTE && !m->transfer && in_lease(r))
			return false;
		if (from_leader) {
			raft_become_follower(r, m->term, m->from);
		} else {
			// Only a leader's message or a granted vote restarts the
			// election timer: a candidate whose requests are refused
			// (its log is behind) would otherwise keep the others from
			// ever timing out first.
			uint32_t elapsed = r->election_elapsed;
			uint32_t timeout = r->election_timeout;

			raft_become_follower(r, m->term, OX_RAFT_NONE);
			r->election_elapsed = elapsed;
			r->election_timeout = timeout;
		}
		return true;
	}
	if (m->term < r->term) {
		// Tell a stale leader or pre-candidate about the newer term;
		// ignore everything else.
		struct ox_raft_msg resp = { .to = m->from, .term = r->term };

		if (from_leader) {
			resp.type = OX_RAFT_MSG_APPEND_RESP;
			resp.prev_index = m->prev_index;
			raft_push(r, &resp);
		} else if (m->type == OX_RAFT_MSG_PRE_VOTE ||
			   m->type == OX_RAFT_MSG_VOTE) {
			// Refused with our term: the candidate catches up on it.
			resp.type = m->type == OX_RAFT_MSG_VOTE ?
					    OX_RAFT_MSG_VOTE_RESP :
					    OX_RAFT_MSG_PRE_VOTE_RESP;
			raft_push(r, &resp);
		}
		return false;
	}
	return true;
}

int ox_raft_step(struct ox_raft *r, const struct ox_raft_msg *m,
		 struct ox_raft_plan *plan)
{
	struct ox_raft_plan none = { .truncate_index = -1,
				     .snapshot_index = -1 };

	OX_ASSERT(r != NULL && m != NULL);
	if (plan == NULL)
		plan = &none;
	*plan = none;
	if (!msg_valid(r, m))
		return -EINVAL;
	if (!step_term(r, m))
		return 0;
	switch (m->type) {
	case OX_RAFT_MSG_PRE_VOTE:
	case OX_RAFT_MSG_VOTE:
		handle_vote(r, m);
		return 0;
	case OX_RAFT_MSG_PRE_VOTE_RESP:
	case OX_RAFT_MSG_VOTE_RESP:
		handle_vote_resp(r, m);
		return 0;
	case OX_RAFT_MSG_APPEND:
	case OX_RAFT_MSG_SNAPSHOT:
		if (r->role == OX_RAFT_LEADER)
			return -EINVAL; // two leaders in one term (R1)
		if (m->type == OX_RAFT_MSG_SNAPSHOT) {
			handle_snapshot(r, m, plan);
			return 0;
		}
		return handle_append(r, m, plan);
	case OX_RAFT_MSG_APPEND_RESP:
	case OX_RAFT_MSG_SNAPSHOT_RESP:
		if (r->role == OX_RAFT_LEADER)
			raft_leader_step(r, m);
		return 0;
	case OX_RAFT_MSG_TIMEOUT_NOW:
		if (r->role == OX_RAFT_FOLLOWER && r->leader == m->from &&
		    may_campaign(r))
			become_candidate(r, true);
		return 0;
	}
	return -EINVAL;
}

int ox_raft_propose(struct ox_raft *r, int64_t end_index, uint64_t *term_out)
{
	OX_ASSERT(r != NULL);
	if (r->role != OX_RAFT_LEADER || r->transfer_target != OX_RAFT_NONE)
		return -OX_ENOTLEADER;
	if (end_index <= r->last_index || end_index >= OX_RAFT_INDEX_MAX)
		return -EINVAL;
	if (r->runs_n == r->runs_max &&
	    r->runs[r->runs_n - 1].term != r->term)
		return -ENOSPC;
	log_extend(r, end_index, r->term);
	if (term_out != NULL)
		*term_out = r->term;
	for (uint32_t i = 0; i < r->peers_n; i++)
		raft_send_append(r, &r->peers[i]);
	return 0;
}

// One voter added or removed, or one learner added, removed or promoted.
static bool single_change(const struct ox_raft_conf *a,
			  const struct ox_raft_conf *b)
{
	uint32_t changed = 0;

	for (uint32_t i = 0; i < a->voters_n + a->learners_n; i++) {
		uint64_t id = i < a->voters_n ? a->voters[i] :
						a->learners[i - a->voters_n];
		if (!is_member(b, id) ||
		    raft_is_voter(a, id) != raft_is_voter(b, id))
			changed++;
	}
	for (uint32_t i = 0; i < b->voters_n + b->learners_n; i++) {
		uint64_t id = i < b->voters_n ? b->voters[i] :
						b->learners[i - b->voters_n];
		if (!is_member(a, id))
			changed++;
	}
	return changed == 1;
}

int ox_raft_propose_conf(struct ox_raft *r, int64_t end_index,
			 const struct ox_raft_conf *conf, uint64_t *term_out)
{
	int rc;

	OX_ASSERT(r != NULL);
	if (conf == NULL || !ox_raft_conf_valid(conf) || !single_change(&r->conf, conf))
		return r->role == OX_RAFT_LEADER ? -EINVAL : -OX_ENOTLEADER;
	if (r->role == OX_RAFT_LEADER && r->conf_index > r->commit)
		return -EBUSY; // R7
	rc = ox_raft_propose(r, end_index, term_out);
	if (rc < 0)
		return rc;
	r->conf_prev = r->conf;
	set_conf(r, conf, end_index);
	for (uint32_t i = 0; i < r->peers_n; i++)
		raft_send_append(r, &r->peers[i]);
	raft_maybe_commit(r); // a smaller majority may already hold it
	return 0;
}

int ox_raft_conf_appended(struct ox_raft *r, int64_t index,
			  const struct ox_raft_conf *conf)
{
	OX_ASSERT(r != NULL);
	if (conf == NULL || !ox_raft_conf_valid(conf) || index <= r->start_index ||
	    index > r->last_index || r->role == OX_RAFT_LEADER)
		return -EINVAL;
	if (index <= r->conf_index)
		return 0; // known already
	if (r->conf_index <= r->commit)
		r->conf_prev = r->conf;
	set_conf(r, conf, index);
	if (r->conf_index <= r->commit)
		r->conf_prev = r->conf;
	return 0;
}

void ox_raft_persisted(struct ox_raft *r, int64_t index, uint64_t term)
{
	uint64_t t;

	OX_ASSERT(r != NULL);
	if (index <= r->durable_index || raft_term_at(r, index, &t) < 0 ||
	    t != term)
		return; // stale: the log changed since
	r->durable_index = index;
	if (r->role == OX_RAFT_LEADER) {
		raft_maybe_commit(r);
		return;
	}
	if (r->leader == OX_RAFT_NONE)
		return;
	if (r->snapshot_pending && index >= r->start_index) {
		r->snapshot_pending = false;
		answer_append(r, r->leader, OX_RAFT_MSG_SNAPSHOT_RESP);
	} else if (index > r->acked && r->verified > r->acked) {
		answer_append(r, r->leader, OX_RAFT_MSG_APPEND_RESP);
	}
	rejoin_check(r);
}

int ox_raft_log_start(struct ox_raft *r, int64_t start_index,
		      uint64_t start_term)
{
	uint64_t t;
	uint32_t keep;

	OX_ASSERT(r != NULL);
	if (start_index < r->start_index || start_index > r->commit ||
	    raft_term_at(r, start_index, &t) < 0 || t != start_term)
		return -EINVAL;
	if (start_index == r->start_index)
		return 0;
	// Keep the run holding offset start_index and those after it.
	keep = runs_below(r, start_index + 1);
	OX_ASSERT(keep >= 1 || start_index == r->last_index);
	if (keep >= 1) {
		uint32_t drop = keep - 1;

		memmove(r->runs, r->runs + drop,
			(r->runs_n - drop) * sizeof(*r->runs));
		r->runs_n -= drop;
	} else {
		r->runs_n = 0;
	}
	r->start_index = start_index;
	r->start_term = start_term;
	return 0;
}

void ox_raft_ready(struct ox_raft *r, struct ox_raft_ready *out)
{
	OX_ASSERT(r != NULL && out != NULL);
	memcpy(r->handed, r->outbox, r->outbox_n * sizeof(*r->outbox));
	*out = (struct ox_raft_ready){
		.hard_changed = r->hard_changed,
		.hard = { .term = r->term, .vote = r->vote, .conf = r->conf,
			  .conf_index = r->conf_index,
			  .conf_prev = r->conf_prev,
			  .rejoining = r->rejoining },
		.msgs = r->handed,
		.msgs_n = r->outbox_n,
		.commit = r->commit,
		.commit_changed = r->commit_changed,
		.role = r->role,
		.term = r->term,
		.leader = r->leader,
		.role_changed = r->role_changed,
	};
	OX_ASSERT(out->msgs_n <= OX_RAFT_OUTBOX_MAX); // R8
	r->outbox_n = 0;
	r->hard_changed = false;
	r->commit_changed = false;
	r->role_changed = false;
}

enum ox_raft_role ox_raft_role(const struct ox_raft *r)
{
	return r->role;
}

uint64_t ox_raft_term(const struct ox_raft *r)
{
	return r->term;
}

uint64_t ox_raft_leader(const struct ox_raft *r)
{
	return r->leader;
}

int64_t ox_raft_commit(const struct ox_raft *r)
{
	return r->commit;
}

int64_t ox_raft_last_index(const struct ox_raft *r)
{
	return r->last_index;
}

int64_t ox_raft_start_index(const struct ox_raft *r)
{
	return r->start_index;
}

int ox_raft_term_at(const struct ox_raft *r, int64_t index,
		    uint64_t *term_out)
{
	OX_ASSERT(r != NULL && term_out != NULL);
	return raft_term_at(r, index, term_out);
}

const struct ox_raft_conf *ox_raft_conf(const struct ox_raft *r)
{
	return &r->conf;
}

int64_t ox_raft_match(const struct ox_raft *r, uint64_t peer)
{
	if (r->role != OX_RAFT_LEADER)
		return -1;
	if (peer == r->cfg.id)
		return r->durable_index;
	for (uint32_t i = 0; i < r->peers_n; i++)
		if (r->peers[i].id == peer)
			return r->peers[i].match;
	return -1;
}

bool ox_raft_conf_committed(const struct ox_raft *r)
{
	return r->conf_index <= r->commit;
}

enum ox_raft_rejoin ox_raft_rejoining(const struct ox_raft *r)
{
	return (enum ox_raft_rejoin)r->rejoining;
}

int64_t ox_raft_rejoin_target(const struct ox_raft *r)
{
	return r->rejoining != OX_RAFT_REJOIN_NONE ? r->rejoin_target : -1;
}
