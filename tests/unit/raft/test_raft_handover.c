// SPDX-License-Identifier: Apache-2.0
//
// Unit tests of the leader's read-only queries that a stopping node and
// CLUSTER_STATUS use: which followers answered lately (ox_raft_heard),
// which voter is best placed to lead next (ox_raft_successor) and which
// transfer is under way (ox_raft_transferee). A few state machines in one
// process over a perfect network whose links the tests cut.
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "broker/raft/raft.h"
#include "proto/error.h"

#define NODES 3
#define BATCHES_MAX 128
#define QUEUE_MAX 512
#define ELECTION_TICKS 10
#define HEARTBEAT_TICKS 2

// A node's log: batch ends and terms.
struct tlog {
	int64_t end[BATCHES_MAX];
	uint64_t term[BATCHES_MAX];
	int n;
};

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

static void cluster_init(struct cluster *c, int n)
{
	memset(c, 0, sizeof(*c));
	c->n = n;
	for (int i = 0; i < n; i++) {
		struct ox_raft_restore rs = { 0 };
		struct ox_raft_config cfg = {
			.id = (uint64_t)i + 1,
			.election_ticks = ELECTION_TICKS,
			.heartbeat_ticks = HEARTBEAT_TICKS,
			.inflight_max = 4,
			.seed = 77 + (uint64_t)i,
			.pre_vote = true,
			.check_quorum = true,
		};

		for (int k = 0; k < n; k++)
			rs.hard.conf.voters[rs.hard.conf.voters_n++] =
				(uint64_t)k + 1;
		cr_assert_eq(ox_raft_create(&c->r[i], &cfg, &rs, 64), 0);
	}
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
	int first = 0, rc;

	while (first < l->n && l->end[first] <= t->m.prev_index)
		first++;
	cr_assert_lt(first, l->n);
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

// Takes node i's ready: queues its messages (those of a cut link are
// lost) and reports its whole log durable.
static void drain(struct cluster *c, int i)
{
	struct ox_raft_ready rd;

	ox_raft_ready(c->r[i], &rd);
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
	for (int k = 0; k < t->batches.n; k++)
		if (t->batches.end[k] > p->append_from &&
		    t->batches.end[k] <= p->append_end)
			tlog_add(l, t->batches.end[k], t->batches.term[k]);
}

// Delivers everything queued (and what that causes, answers to what
// became durable included) until quiet.
static void settle(struct cluster *c)
{
	int rounds = 0;

	for (int i = 0; i < c->n; i++)
		drain(c, i);
	while (c->queued && rounds++ < 10000) {
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

	for (int i = 0; i < c->n; i++)
		if (ox_raft_role(c->r[i]) == OX_RAFT_LEADER &&
		    (found < 0 ||
		     ox_raft_term(c->r[i]) > ox_raft_term(c->r[found])))
			found = i;
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

static int64_t propose(struct cluster *c, int l, int64_t records)
{
	uint64_t term;
	int64_t end = tlog_last(&c->log[l]) + records;

	cr_assert_eq(ox_raft_propose(c->r[l], end, &term), 0);
	tlog_add(&c->log[l], end, term);
	return end;
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

// A live follower stays heard through every quorum check (each falls on
// a heartbeat, which it answers); a cut-off one is unheard after the
// next check, and heard again once it answers.
Test(raft_handover, heard_follows_the_followers_answers)
{
	struct cluster c;
	int l, f, g;

	cluster_init(&c, 3);
	l = elect(&c);
	f = (l + 1) % 3;
	g = (l + 2) % 3;
	propose(&c, l, 5);
	settle(&c);
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
