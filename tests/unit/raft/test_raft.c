// SPDX-License-Identifier: Apache-2.0
//
// Unit tests of broker/raft: elections, replication and commit, a
// follower's divergent tail, pre-vote, leadership transfer, configuration
// changes and the checks on peer input, and the leader's read-only
// queries a stopping node and CLUSTER_STATUS use (which followers answered
// lately, which voter should lead next, which transfer is under way), on
// a small cluster of state machines in one process with a perfect (or
// deliberately cut) network. The randomized, fault-injecting runs are in
// tests/sim/.
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "broker/raft/raft.h"
#include "proto/error.h"

#define NODES 5
#define BATCHES_MAX 256
#define QUEUE_MAX 1024
#define ELECTION_TICKS 10
#define HEARTBEAT_TICKS 2

// A node's log: batch ends and terms (the offsets of batch i are
// [end[i-1], end[i])).
struct tlog {
	int64_t end[BATCHES_MAX];
	uint64_t term[BATCHES_MAX];
	int n;
};

// A message in flight with the batches it carries.
struct tmsg {
	struct ox_raft_msg m;
	struct tlog batches;
};

struct cluster {
	int n;
	struct ox_raft *r[NODES];
	struct tlog log[NODES];
	bool cut[NODES + 1][NODES + 1]; // cut[a][b]: a's messages to b lost
	struct tmsg queue[QUEUE_MAX];
	int queued;
};

static int64_t tlog_last(const struct tlog *l)
{
	return l->n ? l->end[l->n - 1] : 0;
}

static void tlog_add(struct tlog *l, int64_t end, uint64_t term)
{
	cr_assert_lt(l->n, BATCHES_MAX);
	cr_assert_gt(end, tlog_last(l));
	l->end[l->n] = end;
	l->term[l->n] = term;
	l->n++;
}

static void make_runs(const struct tlog *l, struct ox_raft_run *runs,
		      uint32_t *n)
{
	*n = 0;
	for (int i = 0; i < l->n; i++) {
		if (*n && runs[*n - 1].term == l->term[i])
			continue;
		runs[*n].start = i ? l->end[i - 1] : 0;
		runs[*n].term = l->term[i];
		(*n)++;
	}
}

static void start_node(struct cluster *c, int i, uint64_t term)
{
	struct ox_raft_run runs[BATCHES_MAX];
	struct ox_raft_restore rs = { .hard.term = term };
	struct ox_raft_config cfg = {
		.id = (uint64_t)i + 1,
		.election_ticks = ELECTION_TICKS,
		.heartbeat_ticks = HEARTBEAT_TICKS,
		.inflight_max = 4,
		.seed = 1000 + (uint64_t)i,
		.pre_vote = true,
		.check_quorum = true,
	};

	for (int k = 0; k < c->n; k++)
		rs.hard.conf.voters[rs.hard.conf.voters_n++] = (uint64_t)k + 1;
	make_runs(&c->log[i], runs, &rs.runs_n);
	rs.runs = runs;
	rs.last_index = tlog_last(&c->log[i]);
	cr_assert_eq(ox_raft_create(&c->r[i], &cfg, &rs, 64), 0);
}

static void cluster_init(struct cluster *c, int n)
{
	memset(c, 0, sizeof(*c));
	c->n = n;
	for (int i = 0; i < n; i++)
		start_node(c, i, 0);
}

static void cluster_fini(struct cluster *c)
{
	for (int i = 0; i < c->n; i++)
		ox_raft_destroy(c->r[i]);
}

// The host's read for an APPEND: whole batches from the one holding
// offset prev_index.
static void fill(struct cluster *c, int i, struct tmsg *t)
{
	const struct tlog *l = &c->log[i];
	int first = 0;
	int rc;

	while (first < l->n && l->end[first] <= t->m.prev_index)
		first++;
	cr_assert_lt(first, l->n, "nothing to read from %lld",
		     (long long)t->m.prev_index);
	rc = ox_raft_append_fill(c->r[i], &t->m, first ? l->end[first - 1] : 0,
				 tlog_last(l));
	if (rc == -ESTALE) {
		t->m.type = 0; // dropped
		return;
	}
	cr_assert_eq(rc, 0);
	for (int k = first; k < l->n && l->end[k] <= t->m.end_index; k++)
		tlog_add(&t->batches, l->end[k], l->term[k]);
}

// Takes node i's ready: persists (at once), queues its messages, and
// reports its whole log durable.
static void drain(struct cluster *c, int i)
{
	struct ox_raft_ready rd;

	ox_raft_ready(c->r[i], &rd);
	cr_assert_leq(rd.msgs_n, OX_RAFT_OUTBOX_MAX);
	for (uint32_t k = 0; k < rd.msgs_n; k++) {
		struct tmsg *t;

		if (c->cut[i + 1][rd.msgs[k].to])
			continue;
		cr_assert_lt(c->queued, QUEUE_MAX);
		t = &c->queue[c->queued++];
		memset(t, 0, sizeof(*t));
		t->m = rd.msgs[k];
		if (t->m.wants_entries)
			fill(c, i, t);
	}
	if (c->log[i].n)
		ox_raft_persisted(c->r[i], tlog_last(&c->log[i]),
				  c->log[i].term[c->log[i].n - 1]);
}

static void apply_plan(struct cluster *c, int i, const struct tmsg *t,
		       const struct ox_raft_plan *p)
{
	struct tlog *l = &c->log[i];

	if (p->truncate_index >= 0)
		while (l->n && l->end[l->n - 1] > p->truncate_index)
			l->n--;
	for (int k = 0; k < t->batches.n; k++) {
		if (t->batches.end[k] <= p->append_from ||
		    t->batches.end[k] > p->append_end)
			continue;
		// Each batch starts exactly at the log's end.
		cr_assert_eq(k ? t->batches.end[k - 1] : t->m.prev_index,
			     tlog_last(l));
		tlog_add(l, t->batches.end[k], t->batches.term[k]);
	}
	cr_assert_eq(tlog_last(l), ox_raft_last_index(c->r[i]));
}

// Delivers everything queued (and what that causes, answers to what
// became durable included) until quiet.
static void settle(struct cluster *c)
{
	for (int i = 0; i < c->n; i++)
		drain(c, i);
	for (int rounds = 0; c->queued && rounds < 10000; rounds++) {
		struct tmsg t = c->queue[0];
		struct ox_raft_plan plan;
		int to = (int)t.m.to - 1;

		memmove(c->queue, c->queue + 1,
			(size_t)(--c->queued) * sizeof(*c->queue));
		if (t.m.type != 0 && !c->cut[t.m.from][t.m.to]) {
			cr_assert_eq(ox_raft_step(c->r[to], &t.m, &plan), 0);
			apply_plan(c, to, &t, &plan);
			drain(c, to);
		}
		// Durability reported in a drain is answered at the next.
		for (int i = 0; c->queued == 0 && i < c->n; i++)
			drain(c, i);
	}
	cr_assert_eq(c->queued, 0, "the network never went quiet");
}

static void ticks(struct cluster *c, int n)
{
	for (int k = 0; k < n; k++) {
		for (int i = 0; i < c->n; i++)
			ox_raft_tick(c->r[i]);
		settle(c);
	}
}

static int leader_of(const struct cluster *c)
{
	int found = -1;

	for (int i = 0; i < c->n; i++) {
		if (ox_raft_role(c->r[i]) != OX_RAFT_LEADER)
			continue;
		for (int k = 0; k < c->n; k++)
			if (k != i && ox_raft_role(c->r[k]) == OX_RAFT_LEADER)
				cr_assert_neq(ox_raft_term(c->r[k]),
					      ox_raft_term(c->r[i]),
					      "two leaders in one term (R1)");
		if (found < 0 ||
		    ox_raft_term(c->r[i]) > ox_raft_term(c->r[found]))
			found = i;
	}
	return found;
}

static int elect(struct cluster *c)
{
	for (int k = 0; k < 100; k++) {
		int l = leader_of(c);

		if (l >= 0)
			return l;
		ticks(c, 1);
	}
	cr_assert_fail("no leader after 100 ticks");
	return -1;
}

// The leader's host appends one batch of `records` offsets.
static int64_t propose(struct cluster *c, int l, int64_t records)
{
	uint64_t term;
	int64_t end = tlog_last(&c->log[l]) + records;

	cr_assert_eq(ox_raft_propose(c->r[l], end, &term), 0);
	tlog_add(&c->log[l], end, term);
	return end;
}

Test(raft, elects_one_leader_and_commits)
{
	struct cluster c;
	int l;
	int64_t end;

	cluster_init(&c, 3);
	l = elect(&c);
	end = propose(&c, l, 10);
	settle(&c);
	ticks(&c, 3);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(ox_raft_commit(c.r[i]), end, "node %d commit", i);
		cr_assert_eq(tlog_last(&c.log[i]), end);
		cr_assert_eq(ox_raft_leader(c.r[i]), (uint64_t)l + 1);
	}
	cluster_fini(&c);
}

Test(raft, single_node_commits_on_its_own_fsync)
{
	struct cluster c;
	int64_t end;

	cluster_init(&c, 1);
	cr_assert_eq(elect(&c), 0);
	end = propose(&c, 0, 5);
	cr_assert_eq(ox_raft_commit(c.r[0]), 0, "committed before durable");
	settle(&c);
	cr_assert_eq(ox_raft_commit(c.r[0]), end);
	cluster_fini(&c);
}

Test(raft, follower_refuses_proposals)
{
	struct cluster c;
	int l, f;
	uint64_t term;

	cluster_init(&c, 3);
	l = elect(&c);
	f = (l + 1) % 3;
	cr_assert_eq(ox_raft_propose(c.r[f], 5, &term), -OX_ENOTLEADER);
	cr_assert_eq(ox_raft_propose(c.r[l], 0, &term), -EINVAL);
	cluster_fini(&c);
}

// A minority leader cannot commit; the majority elects another, and the
// old leader's uncommitted tail is replaced once the network heals.
Test(raft, isolated_leader_loses_its_tail)
{
	struct cluster c;
	int l, l2;
	int64_t committed, lost, end;

	cluster_init(&c, 3);
	l = elect(&c);
	committed = propose(&c, l, 4);
	settle(&c);
	ticks(&c, 2);
	cr_assert_eq(ox_raft_commit(c.r[l]), committed);
	for (int i = 0; i < 3; i++)
		if (i != l)
			c.cut[l + 1][i + 1] = c.cut[i + 1][l + 1] = true;
	lost = propose(&c, l, 7);
	lost = propose(&c, l, 3);
	ticks(&c, 40);
	cr_assert_eq(ox_raft_commit(c.r[l]), committed, "minority committed");
	l2 = leader_of(&c);
	cr_assert(l2 >= 0 && l2 != l);
	end = propose(&c, l2, 2);
	settle(&c);
	memset(c.cut, 0, sizeof(c.cut));
	ticks(&c, 30);
	l2 = elect(&c);
	end = tlog_last(&c.log[l2]);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(tlog_last(&c.log[i]), end, "node %d log end", i);
		cr_assert_eq(c.log[i].n, c.log[l2].n);
		cr_assert_eq(memcmp(c.log[i].term, c.log[l2].term,
				    sizeof(uint64_t) * (size_t)c.log[i].n), 0);
	}
	cr_assert_neq(end, lost);
	cluster_fini(&c);
}

// A follower with many batches of an old term converges in few probes.
Test(raft, long_divergent_tail_is_truncated)
{
	struct cluster c;
	int l;

	memset(&c, 0, sizeof(c));
	c.n = 3;
	// Node 3 led term 1 alone and wrote 100 batches nobody else has;
	// nodes 1 and 2 hold 3 batches of term 2.
	for (int k = 1; k <= 100; k++)
		tlog_add(&c.log[2], k * 2, 1);
	for (int i = 0; i < 2; i++) {
		tlog_add(&c.log[i], 2, 1);
		tlog_add(&c.log[i], 5, 2);
		tlog_add(&c.log[i], 9, 2);
	}
	for (int i = 0; i < 3; i++)
		start_node(&c, i, 2);
	// Node 3 times out first, alone: its log is behind in term, so
	// nobody votes for it (R4).
	for (int k = 0; k < 25; k++) {
		ox_raft_tick(c.r[2]);
		settle(&c);
	}
	cr_assert_neq(ox_raft_role(c.r[2]), OX_RAFT_LEADER,
		      "a log behind in term won an election (R4)");
	l = elect(&c);
	cr_assert(l == 0 || l == 1, "the divergent node won (R4)");
	propose(&c, l, 1);
	settle(&c);
	ticks(&c, 4);
	cr_assert_eq(tlog_last(&c.log[2]), tlog_last(&c.log[l]));
	cr_assert_eq(c.log[2].n, c.log[l].n);
	cr_assert_eq(ox_raft_commit(c.r[2]), tlog_last(&c.log[l]));
	cluster_fini(&c);
}

// A partitioned node's pre-votes fail, so on return it does not depose a
// working leader.
Test(raft, pre_vote_keeps_the_leader)
{
	struct cluster c;
	int l, f;
	uint64_t term;

	cluster_init(&c, 3);
	l = elect(&c);
	term = ox_raft_term(c.r[l]);
	f = (l + 1) % 3;
	for (int i = 0; i < 3; i++)
		if (i != f)
			c.cut[f + 1][i + 1] = c.cut[i + 1][f + 1] = true;
	ticks(&c, 60);
	cr_assert_eq(ox_raft_term(c.r[f]), term, "pre-vote raised the term");
	memset(c.cut, 0, sizeof(c.cut));
	ticks(&c, 10);
	cr_assert_eq(leader_of(&c), l);
	cr_assert_eq(ox_raft_term(c.r[l]), term);
	cluster_fini(&c);
}

Test(raft, transfer_hands_leadership_over)
{
	struct cluster c;
	int l, t;
	uint64_t term;

	cluster_init(&c, 3);
	l = elect(&c);
	propose(&c, l, 3);
	settle(&c);
	t = (l + 2) % 3;
	cr_assert_eq(ox_raft_transfer(c.r[l], (uint64_t)t + 1), 0);
	cr_assert_eq(ox_raft_propose(c.r[l], 100, &term), -OX_ENOTLEADER);
	settle(&c);
	cr_assert_eq(leader_of(&c), t);
	cr_assert_eq(ox_raft_transfer(c.r[t], (uint64_t)t + 1), -EINVAL);
	cluster_fini(&c);
}

Test(raft, conf_change_adds_and_removes_voters)
{
	struct cluster c;
	struct ox_raft_conf conf;
	uint64_t term;
	int l;
	int64_t end;

	cluster_init(&c, 3);
	l = elect(&c);
	conf = *ox_raft_conf(c.r[l]);
	conf.voters_n = 2;
	conf.voters[0] = (uint64_t)l + 1;
	conf.voters[1] = (uint64_t)(l + 1) % 3 + 1;
	end = tlog_last(&c.log[l]) + 1;
	cr_assert_eq(ox_raft_propose_conf(c.r[l], end, &conf, &term), 0);
	tlog_add(&c.log[l], end, term);
	// A second change waits for the first to commit (R7).
	cr_assert_eq(ox_raft_propose_conf(c.r[l], end + 1, ox_raft_conf(c.r[l]),
					  &term), -EINVAL);
	settle(&c);
	for (int i = 0; i < 3; i++)
		if (i != l && tlog_last(&c.log[i]) == end)
			cr_assert_eq(ox_raft_conf_appended(c.r[i], end, &conf),
				     0);
	ticks(&c, 3);
	cr_assert_eq(ox_raft_commit(c.r[l]), end);
	cr_assert_eq(ox_raft_conf(c.r[l])->voters_n, 2);
	// Two voters: both are needed now.
	cluster_fini(&c);
}

Test(raft, malformed_messages_are_refused)
{
	struct cluster c;
	struct ox_raft_msg m = { .type = OX_RAFT_MSG_APPEND, .from = 2,
				 .to = 1, .term = 1 };
	struct ox_raft_plan plan;

	cluster_init(&c, 3);
	m.prev_index = 5;
	m.end_index = 3; // ends before it starts
	cr_assert_eq(ox_raft_step(c.r[0], &m, &plan), -EINVAL);
	m.end_index = 9; // entries without terms
	cr_assert_eq(ox_raft_step(c.r[0], &m, &plan), -EINVAL);
	m.runs_n = OX_RAFT_MSG_RUNS_MAX + 1;
	cr_assert_eq(ox_raft_step(c.r[0], &m, &plan), -EINVAL);
	m.runs_n = 1;
	m.runs[0] = (struct ox_raft_run){ .start = 5, .term = 7 }; // > term
	cr_assert_eq(ox_raft_step(c.r[0], &m, &plan), -EINVAL);
	m.type = 77;
	cr_assert_eq(ox_raft_step(c.r[0], &m, &plan), -EINVAL);
	m.type = OX_RAFT_MSG_VOTE;
	m.from = 1; // from itself
	cr_assert_eq(ox_raft_step(c.r[0], &m, &plan), -EINVAL);
	m.from = 2;
	m.to = 3; // not for this node
	cr_assert_eq(ox_raft_step(c.r[0], &m, &plan), -EINVAL);
	cr_assert_eq(ox_raft_term(c.r[0]), 0, "a refused message moved the term");
	cluster_fini(&c);
}

Test(raft, stale_fill_is_refused)
{
	struct cluster c;
	struct ox_raft_msg m = { .type = OX_RAFT_MSG_APPEND, .to = 2,
				 .wants_entries = true };
	int l;

	cluster_init(&c, 3);
	l = elect(&c);
	m.term = ox_raft_term(c.r[l]) + 1;
	cr_assert_eq(ox_raft_append_fill(c.r[l], &m, 0, 1), -ESTALE);
	cr_assert_eq(ox_raft_append_fill(c.r[(l + 1) % 3], &m, 0, 1), -ESTALE);
	cluster_fini(&c);
}

// An APPEND lost on the way, with no later proposal to show the follower
// the gap: the leader finds the follower's match standing still behind
// what it sent and probes it again, so the entry arrives without more
// traffic.
Test(raft, a_lost_append_is_sent_again_without_new_entries)
{
	struct cluster c;
	int l, f;
	int64_t end;

	cluster_init(&c, 3);
	l = elect(&c);
	propose(&c, l, 5); // every follower replicating, window open
	settle(&c);
	ticks(&c, 2);
	f = (l + 1) % 3;
	end = propose(&c, l, 10);
	drain(&c, l); // read and sent...
	int lost = 0;
	for (int k = 0; k < c.queued; k++) {
		struct ox_raft_msg *m = &c.queue[k].m;

		if (m->to == (uint64_t)f + 1 && m->end_index > m->prev_index) {
			m->type = 0; // ...and lost on the way
			lost++;
		}
	}
	cr_assert_eq(lost, 1);
	settle(&c);
	ticks(&c, 1);
	cr_assert_eq(ox_raft_commit(c.r[l]), end, "the other follower commits");
	cr_assert_lt(tlog_last(&c.log[f]), end);
	// Heartbeats only, well under an election timeout per pass.
	for (int k = 0; k < 40 && tlog_last(&c.log[f]) < end; k++)
		ticks(&c, 1);
	cr_assert_eq(tlog_last(&c.log[f]), end, "the lost entries came again");
	cr_assert_eq(leader_of(&c), l, "no election was needed");
	cluster_fini(&c);
}

// A host's view of its links: the nodes whose link is down.
static bool linked(void *arg, uint64_t id)
{
	const bool *down = arg;

	return !down[id];
}

static void isolate(struct cluster *c, int f, bool cut)
{
	for (int i = 0; i < c->n; i++)
		if (i != f)
			c->cut[f + 1][i + 1] = c->cut[i + 1][f + 1] = cut;
}

// Three nodes with a leader l and its followers f and g holding the
// same five records.
static void three_settled(struct cluster *c, int *l, int *f, int *g)
{
	cluster_init(c, 3);
	*l = elect(c);
	*f = (*l + 1) % 3;
	*g = (*l + 2) % 3;
	propose(c, *l, 5);
	settle(c);
}

// A live follower stays heard through every quorum check (each falls on
// a heartbeat, which it answers); a cut-off one is unheard after the
// next check, and heard again once it answers.
Test(raft_handover, heard_follows_the_followers_answers)
{
	struct cluster c;
	int l, f, g;

	three_settled(&c, &l, &f, &g);
	for (int k = 0; k < 3 * ELECTION_TICKS; k++) {
		ticks(&c, 1);
		cr_assert(ox_raft_heard(c.r[l], (uint64_t)f + 1), "tick %d", k);
		cr_assert(ox_raft_heard(c.r[l], (uint64_t)g + 1), "tick %d", k);
	}
	isolate(&c, f, true);
	ticks(&c, 2 * ELECTION_TICKS);
	cr_assert_eq(leader_of(&c), l, "two of three keep the leader");
	cr_assert_not(ox_raft_heard(c.r[l], (uint64_t)f + 1));
	cr_assert(ox_raft_heard(c.r[l], (uint64_t)g + 1));
	// Its match stays where it was: only the silence tells it is gone.
	cr_assert_eq(ox_raft_match(c.r[l], (uint64_t)f + 1),
		     ox_raft_commit(c.r[l]));
	isolate(&c, f, false);
	ticks(&c, HEARTBEAT_TICKS);
	cr_assert(ox_raft_heard(c.r[l], (uint64_t)f + 1));
	// Not for itself, strangers, or on a follower.
	cr_assert_not(ox_raft_heard(c.r[l], (uint64_t)l + 1));
	cr_assert_not(ox_raft_heard(c.r[l], 99));
	cr_assert_not(ox_raft_heard(c.r[f], (uint64_t)g + 1));
	cluster_fini(&c);
}

// Caught up: holds the commit index and answered within an election
// timeout of the leader's ticks, counted from its last answer (not reset
// by quorum checks); silence or a gap ends it.
Test(raft_handover, caught_up_needs_the_log_and_a_recent_answer)
{
	struct cluster c;
	int l, f, g;

	three_settled(&c, &l, &f, &g);
	for (int k = 0; k < 3 * ELECTION_TICKS; k++) {
		ticks(&c, 1);
		cr_assert(ox_raft_caught_up(c.r[l], (uint64_t)f + 1), "tick %d",
			  k);
	}
	isolate(&c, f, true);
	ticks(&c, ELECTION_TICKS - 1);
	cr_assert(ox_raft_caught_up(c.r[l], (uint64_t)f + 1),
		  "silent for less than an election timeout");
	ticks(&c, 2);
	cr_assert_not(ox_raft_caught_up(c.r[l], (uint64_t)f + 1));
	// Back, but behind the commit index: not until it has the log.
	propose(&c, l, 5);
	settle(&c);
	cr_assert_not(ox_raft_caught_up(c.r[l], (uint64_t)f + 1));
	isolate(&c, f, false);
	ticks(&c, 2 * HEARTBEAT_TICKS);
	settle(&c);
	cr_assert(ox_raft_caught_up(c.r[l], (uint64_t)f + 1));
	cr_assert(ox_raft_caught_up(c.r[l], (uint64_t)g + 1));
	// Not for itself, strangers, or on a follower.
	cr_assert_not(ox_raft_caught_up(c.r[l], (uint64_t)l + 1));
	cr_assert_not(ox_raft_caught_up(c.r[l], 99));
	cr_assert_not(ox_raft_caught_up(c.r[f], (uint64_t)g + 1));
	cluster_fini(&c);
}

// The successor is the caught-up voter: the one with the higher match,
// and among equals the first in the configuration; a silent one only
// when nobody else answers.
Test(raft_handover, successor_is_the_best_caught_up_voter)
{
	struct cluster c;
	int l, first, second;

	cluster_init(&c, 3);
	l = elect(&c);
	first = l == 0 ? 1 : 0;
	second = 3 - l - first;
	propose(&c, l, 5);
	settle(&c);
	ticks(&c, HEARTBEAT_TICKS);
	cr_assert_eq(ox_raft_successor(c.r[l], NULL, NULL),
		     (uint64_t)first + 1);
	// The second alone gets the next batch: its match is higher.
	c.cut[l + 1][first + 1] = true;
	propose(&c, l, 3);
	settle(&c);
	cr_assert_gt(ox_raft_match(c.r[l], (uint64_t)second + 1),
		     ox_raft_match(c.r[l], (uint64_t)first + 1));
	cr_assert_eq(ox_raft_successor(c.r[l], NULL, NULL),
		     (uint64_t)second + 1);
	// Healed, it is probed again and catches up within a few beats.
	c.cut[l + 1][first + 1] = false;
	ticks(&c, ELECTION_TICKS);
	cr_assert_eq(ox_raft_match(c.r[l], (uint64_t)first + 1),
		     ox_raft_last_index(c.r[l]));
	cr_assert_eq(ox_raft_successor(c.r[l], NULL, NULL),
		     (uint64_t)first + 1);
	// The first goes silent: the second, heard, is preferred though
	// the first's match is as high.
	isolate(&c, first, true);
	ticks(&c, 2 * ELECTION_TICKS);
	cr_assert_eq(ox_raft_match(c.r[l], (uint64_t)first + 1),
		     ox_raft_match(c.r[l], (uint64_t)second + 1));
	cr_assert_eq(ox_raft_successor(c.r[l], NULL, NULL),
		     (uint64_t)second + 1);
	cr_assert_eq(ox_raft_successor(c.r[first], NULL, NULL), OX_RAFT_NONE);
	// The host's links rule out voters raft still counts as heard.
	isolate(&c, first, false);
	ticks(&c, ELECTION_TICKS);
	cr_assert_eq(ox_raft_successor(c.r[l], NULL, NULL),
		     (uint64_t)first + 1);
	{
		bool down[NODES + 1] = { false };

		down[first + 1] = true;
		cr_assert_eq(ox_raft_successor(c.r[l], linked, down),
			     (uint64_t)second + 1);
		down[second + 1] = true;
		cr_assert_eq(ox_raft_successor(c.r[l], linked, down),
			     OX_RAFT_NONE);
	}
	cluster_fini(&c);
}

// A transfer is visible until the target leads (the old leader then
// reports none), and Raft gives a transfer to a silent target up after
// an election timeout, so the caller can pick another.
Test(raft_handover, transferee_shows_the_transfer_under_way)
{
	struct cluster c;
	int l, f, g, l2;
	uint64_t term;

	cluster_init(&c, 3);
	l = elect(&c);
	f = (l + 1) % 3;
	g = (l + 2) % 3;
	propose(&c, l, 4);
	settle(&c);
	cr_assert_eq(ox_raft_transferee(c.r[l]), OX_RAFT_NONE);
	isolate(&c, f, true);
	cr_assert_eq(ox_raft_transfer(c.r[l], (uint64_t)f + 1), 0);
	cr_assert_eq(ox_raft_transferee(c.r[l]), (uint64_t)f + 1);
	cr_assert_eq(ox_raft_propose(c.r[l], 100, &term), -OX_ENOTLEADER);
	ticks(&c, ELECTION_TICKS);
	cr_assert_eq(leader_of(&c), l);
	cr_assert_eq(ox_raft_transferee(c.r[l]), OX_RAFT_NONE, "given up");
	cr_assert_eq(ox_raft_successor(c.r[l], NULL, NULL), (uint64_t)g + 1);
	cr_assert_eq(ox_raft_transfer(c.r[l],
				      ox_raft_successor(c.r[l], NULL, NULL)),
		     0);
	settle(&c);
	l2 = leader_of(&c);
	cr_assert_eq(l2, g);
	cr_assert_eq(ox_raft_role(c.r[l]), OX_RAFT_FOLLOWER);
	cr_assert_eq(ox_raft_leader(c.r[l]), (uint64_t)g + 1);
	cr_assert_eq(ox_raft_transferee(c.r[l]), OX_RAFT_NONE);
	cr_assert_eq(ox_raft_successor(c.r[l], NULL, NULL), OX_RAFT_NONE);
	cr_assert_eq(ox_raft_transferee(c.r[g]), OX_RAFT_NONE);
	cluster_fini(&c);
}

// A group of one has nobody to hand leadership to.
Test(raft_handover, a_single_voter_has_no_successor)
{
	struct cluster c;

	cluster_init(&c, 1);
	cr_assert_eq(elect(&c), 0);
	cr_assert_eq(ox_raft_successor(c.r[0], NULL, NULL), OX_RAFT_NONE);
	cr_assert_eq(ox_raft_transferee(c.r[0]), OX_RAFT_NONE);
	cr_assert_not(ox_raft_heard(c.r[0], 1));
	cluster_fini(&c);
}
