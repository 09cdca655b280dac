// SPDX-License-Identifier: Apache-2.0
//
// ox-sim-scenarios NAME: the named Raft cases, driven by hand over the
// simulated world of sim.h (no random faults, no clients, a fast lossless
// network) with the same checkers after every step. Each case builds its
// message schedule from partitions, one-way link cuts, crashes and
// leadership transfers, then checks what the case is about:
//
//   figure8    Raft paper, figure 8: a leader must not commit an entry of
//              an earlier term by counting replicas (R5); a later leader
//              overwrites it safely.
//   isolated   A leader cut off with a minority commits nothing; the
//              majority elects another; on heal the old leader steps down
//              and its uncommitted tail is truncated.
//   divergent  A follower with a long divergent tail of an old term
//              converges in a few round trips (fast backtracking).
//   torn       Nodes restart with torn tails (unsynced batches partly on
//              disk); every log converges and no acknowledged write is
//              lost.
//   wiped      An entry committed by the leader and one follower only;
//              that follower's disk is wiped and the leader goes down: the
//              wiped node and the third one (without the entry) must elect
//              nobody (R9); once the leader is back, the entry is kept,
//              the wiped node catches up and votes again.
//
// Exit status 0 on success, 1 with `scenario NAME: <message>`.
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "proto/assert.h"
#include "tests/sim/sim.h"

#define T SIM_TICK_UNITS

static struct sim_host *host(struct sim_world *w, uint32_t n)
{
	return &w->hosts[n][0];
}

// The leader of the highest term among the running replicas, or -1.
static int leader(struct sim_world *w)
{
	int best = -1;
	uint64_t term = 0;
	for (uint32_t n = 0; n < w->k.nodes_n; n++) {
		struct ox_raft *r = host(w, n)->raft;
		if (r != NULL && ox_raft_role(r) == OX_RAFT_LEADER &&
		    ox_raft_term(r) > term) {
			term = ox_raft_term(r);
			best = (int)n;
		}
	}
	return best;
}

// Runs until node n leads, handing leadership over when another does.
static void make_leader(struct sim_world *w, uint32_t n)
{
	for (int round = 0; round < 200; round++) {
		sim_run_for(w, T);
		int l = leader(w);
		if (l == (int)n)
			return;
		if (l >= 0 && round % 5 == 4) {
			int rc = ox_raft_transfer(host(w, (uint32_t)l)->raft, n + 1);
			sim_trace(w, "n%d TRANSFER to n%u rc %d", l + 1, n + 1, rc);
			host_pump(w, (uint32_t)l, 0);
		}
	}
	sim_fail(w, "n%u did not become leader within 200 ticks", n + 1);
}

static int64_t propose(struct sim_world *w, uint32_t n, int64_t count)
{
	int rc = host_propose(w, n, 0, count);
	if (rc != 0)
		sim_fail(w, "n%u: propose: %d", n + 1, rc);
	return host_log_end(host(w, n));
}

static void cut(struct sim_world *w, uint32_t a, uint32_t b)
{
	w->links[a][b].down = true;
	sim_trace(w, "LINK n%u->n%u down", a + 1, b + 1);
}

static void set_sides(struct sim_world *w, const uint32_t *sides)
{
	for (uint32_t n = 0; n < w->k.nodes_n; n++)
		w->nodes[n].side = sides[n];
	for (uint32_t a = 0; a < SIM_NODES_MAX; a++)
		for (uint32_t b = 0; b < SIM_NODES_MAX; b++)
			w->links[a][b].down = false;
}

static bool same_batch(const struct sim_batch *a, const struct sim_batch *b)
{
	return a->base == b->base && a->end == b->end && a->term == b->term &&
	       a->payload == b->payload;
}

// Every running replica holds the same log (over their common range).
static bool logs_equal(struct sim_world *w)
{
	const struct sim_host *ref = NULL;
	for (uint32_t n = 0; n < w->k.nodes_n; n++) {
		const struct sim_host *h = host(w, n);
		if (h->raft == NULL)
			continue;
		if (ref == NULL) {
			ref = h;
			continue;
		}
		if (host_log_end(h) != host_log_end(ref))
			return false;
		for (uint32_t i = 0; i < h->log_n; i++) {
			const struct sim_batch *b = host_find(ref, h->log[i].end);
			if (h->log[i].end > ref->start &&
			    (b == NULL || !same_batch(b, &h->log[i])))
				return false;
		}
	}
	return true;
}

static void converge(struct sim_world *w, int64_t ticks, const char *what)
{
	for (int64_t t = 0; t < ticks; t++) {
		sim_run_for(w, T);
		int l = leader(w);
		if (l >= 0 && logs_equal(w) &&
		    host(w, (uint32_t)l)->commit == host_log_end(host(w, (uint32_t)l)))
			return;
	}
	sim_fail(w, "%s: logs did not converge within %lld ticks", what,
		 (long long)ticks);
}

static bool holds_payload(const struct sim_host *h, uint64_t lo, uint64_t hi)
{
	for (uint32_t i = 0; i < h->log_n; i++)
		if (h->log[i].payload >= lo && h->log[i].payload <= hi)
			return true;
	return false;
}

static bool recorded_payload(const struct sim_world *w, uint64_t lo,
			     uint64_t hi)
{
	const struct sim_group *gr = &w->groups[0];
	for (uint32_t i = 0; i < gr->record_n; i++)
		if (gr->record[i].payload >= lo && gr->record[i].payload <= hi)
			return true;
	return false;
}

#define EXPECT(w, cond, ...) \
	((cond) ? (void)0 : sim_fail((w), __VA_ARGS__))

// ---- figure 8 ----

static void figure8(struct sim_world *w)
{
	const uint32_t S1 = 0, S2 = 1, S3 = 2, S4 = 3, S5 = 4;
	make_leader(w, S1);
	int64_t x_end = propose(w, S1, 3);
	sim_run_for(w, 5 * T);
	EXPECT(w, host(w, S5)->commit >= x_end, "X not committed everywhere");
	// (a) S1 writes B; only S2 receives it.
	cut(w, S1, S3), cut(w, S1, S4), cut(w, S1, S5);
	uint64_t b_payload = w->payload_next + 1;
	int64_t b_end = propose(w, S1, 2);
	sim_run_for(w, 3 * T);
	EXPECT(w, host_durable_end(host(w, S2)) == b_end, "B not on S2");
	EXPECT(w, host(w, S1)->commit < b_end, "B committed on two of five");
	// (b) S1 crashes; S5 wins with S3, S4 and writes C alone.
	sim_crash(w, S1, 0);
	set_sides(w, (const uint32_t[]){ 0, 1, 0, 0, 0 });
	make_leader(w, S5);
	uint64_t t3 = ox_raft_term(host(w, S5)->raft);
	cut(w, S5, S2), cut(w, S5, S3), cut(w, S5, S4);
	uint64_t c_payload = w->payload_next + 1;
	propose(w, S5, 4);
	sim_run_for(w, 3 * T);
	sim_crash(w, S5, 0);
	EXPECT(w, host_log_end(host(w, S5)) > x_end, "C not durable on S5");
	// (c) S1 restarts and leads again; B reaches a majority, but a
	// leader commits only by counting entries of its own term.
	set_sides(w, (const uint32_t[]){ 0, 0, 0, 0, 0 });
	sim_restart(w, S1);
	make_leader(w, S1);
	sim_run_for(w, 5 * T);
	uint32_t holders = 0;
	for (uint32_t n = S1; n <= S4; n++)
		holders += host_durable_end(host(w, n)) >= b_end;
	EXPECT(w, holders >= 3, "B on %u nodes only: not figure 8", holders);
	EXPECT(w, ox_raft_term(host(w, S1)->raft) > t3, "S1 term too low");
	EXPECT(w, host(w, S1)->commit < b_end,
	       "R5: S1 committed B of an earlier term by counting replicas");
	// (d) S1 crashes before committing an entry of its term; S5, whose
	// last term is higher, wins and overwrites B.
	sim_crash(w, S1, 0);
	set_sides(w, (const uint32_t[]){ 0, 1, 0, 0, 0 });
	sim_restart(w, S5);
	make_leader(w, S5);
	int64_t d_end = propose(w, S5, 1);
	sim_run_for(w, 5 * T);
	EXPECT(w, host(w, S3)->commit >= d_end, "D not committed");
	EXPECT(w, recorded_payload(w, c_payload, c_payload), "C not committed");
	EXPECT(w, !recorded_payload(w, b_payload, b_payload), "B committed");
	set_sides(w, (const uint32_t[]){ 0, 0, 0, 0, 0 });
	sim_restart(w, S1);
	converge(w, 50, "figure 8");
	for (uint32_t n = S1; n <= S5; n++)
		EXPECT(w, !holds_payload(host(w, n), b_payload, b_payload),
		       "n%u still holds B", n + 1);
}

// ---- a leader isolated with a minority ----

static void isolated(struct sim_world *w)
{
	make_leader(w, 0);
	propose(w, 0, 3);
	sim_run_for(w, 5 * T);
	int64_t c0 = host(w, 0)->commit;
	uint64_t term0 = ox_raft_term(host(w, 0)->raft);
	set_sides(w, (const uint32_t[]){ 1, 1, 0, 0, 0 });
	uint64_t tail_lo = w->payload_next + 1;
	for (int i = 0; i < 5; i++)
		propose(w, 0, 1 + i);
	uint64_t tail_hi = w->payload_next;
	sim_run_for(w, 40 * T);
	EXPECT(w, host(w, 0)->commit == c0,
	       "the minority leader committed %lld > %lld",
	       (long long)host(w, 0)->commit, (long long)c0);
	int l = leader(w);
	EXPECT(w, l >= 2, "the majority elected no leader");
	EXPECT(w, ox_raft_term(host(w, (uint32_t)l)->raft) > term0,
	       "the new leader's term is not higher");
	if (w->k.check_quorum)
		EXPECT(w, ox_raft_role(host(w, 0)->raft) != OX_RAFT_LEADER,
		       "check_quorum: the old leader did not step down");
	int64_t e = propose(w, (uint32_t)l, 2);
	sim_run_for(w, 5 * T);
	EXPECT(w, host(w, (uint32_t)l)->commit >= e, "the majority commits nothing");
	set_sides(w, (const uint32_t[]){ 0, 0, 0, 0, 0 });
	converge(w, 50, "isolated leader");
	EXPECT(w, ox_raft_role(host(w, 0)->raft) != OX_RAFT_LEADER,
	       "the old leader did not step down");
	for (uint32_t n = 0; n < 5; n++)
		EXPECT(w, !holds_payload(host(w, n), tail_lo, tail_hi),
		       "n%u holds the old leader's uncommitted tail", n + 1);
	EXPECT(w, !recorded_payload(w, tail_lo, tail_hi), "tail committed");
}

// ---- a follower with a long divergent tail ----

// Batches of the old leader's divergent tail, and of the new leader's.
#define DIVERGENT_OLD 150
#define DIVERGENT_NEW 100
// Rejected APPENDs allowed before the follower drops its divergent tail:
// one per term of the divergence and a spare, far below one per batch.
#define DIVERGENT_ROUNDS_MAX 4

static void divergent(struct sim_world *w)
{
	make_leader(w, 0);
	propose(w, 0, 3);
	sim_run_for(w, 5 * T);
	set_sides(w, (const uint32_t[]){ 1, 0, 0 });
	uint64_t old_lo = w->payload_next + 1;
	for (int i = 0; i < DIVERGENT_OLD; i++)
		propose(w, 0, 1 + i % 7);
	uint64_t old_hi = w->payload_next;
	sim_run_for(w, 30 * T);
	int l = leader(w);
	EXPECT(w, l > 0, "n2, n3 elected no leader");
	for (int i = 0; i < DIVERGENT_NEW; i++) {
		propose(w, (uint32_t)l, 1 + i % 5);
		if (i % 10 == 9)
			sim_run_for(w, T);
	}
	sim_run_for(w, 5 * T);
	uint64_t rejects0 = w->st.rejects;
	set_sides(w, (const uint32_t[]){ 0, 0, 0 });
	// Backtracking ends when the old tail is gone; later rejections
	// are of pipelined APPENDs the network reordered.
	int64_t until = w->now + 60 * T;
	while (holds_payload(host(w, 0), old_lo, old_hi) && w->now < until)
		sim_step(w);
	EXPECT(w, !holds_payload(host(w, 0), old_lo, old_hi),
	       "the divergent tail is still there after 60 ticks");
	uint64_t rounds = w->st.rejects - rejects0;
	converge(w, 60, "divergent tail");
	printf("divergent: %d batches of an old term replaced after %" PRIu64
	       " rejected APPENDs\n", DIVERGENT_OLD, rounds);
	EXPECT(w, rounds <= DIVERGENT_ROUNDS_MAX,
	       "backtracking took %" PRIu64 " rejected APPENDs (at most %d)",
	       rounds, DIVERGENT_ROUNDS_MAX);
}

// ---- restarts with torn tails ----

static void torn(struct sim_world *w)
{
	make_leader(w, 0);
	for (int i = 0; i < 5; i++)
		propose(w, 0, 2);
	sim_run_for(w, 10 * T);
	// A follower dies with half of its unsynced tail on disk.
	for (int i = 0; i < 6; i++)
		propose(w, 0, 3);
	sim_run_for(w, 4);
	struct sim_host *f = host(w, 1);
	int64_t durable = host_durable_end(f), end = host_log_end(f);
	EXPECT(w, end > durable, "n2 has no unsynced tail (%lld)",
	       (long long)end);
	sim_crash(w, 1, 2);
	EXPECT(w, host_log_end(f) > durable && host_log_end(f) <= end,
	       "the crash did not tear n2's tail");
	// The leader dies too, with one unsynced batch kept.
	for (int i = 0; i < 4; i++)
		propose(w, 0, 1);
	sim_run_for(w, 2);
	sim_crash(w, 0, 1);
	sim_run_for(w, 5 * T);
	sim_restart(w, 1);
	make_leader(w, leader(w) >= 0 ? (uint32_t)leader(w) : 1);
	propose(w, (uint32_t)leader(w), 4);
	sim_run_for(w, 10 * T);
	sim_restart(w, 0);
	converge(w, 60, "torn tails");
}

// ---- wiped ----

static void wiped(struct sim_world *w)
{
	const uint32_t A = 0, W = 1, C = 2;
	make_leader(w, A);
	propose(w, A, 3);
	sim_run_for(w, 10 * T);
	// E reaches W but not C.
	cut(w, A, C);
	uint64_t e_payload = w->payload_next + 1;
	int64_t e_end = propose(w, A, 2);
	sim_run_for(w, 5 * T);
	EXPECT(w, host(w, A)->commit >= e_end, "E not committed by A and W");
	EXPECT(w, !holds_payload(host(w, C), e_payload, e_payload),
	       "C holds E: not the case");
	// W loses its disk; A goes down.
	sim_crash(w, W, 0);
	EXPECT(w, sim_wipe_safe(w, W), "the wipe is not a survivable fault");
	sim_wipe(w, W);
	sim_crash(w, A, 0);
	set_sides(w, (const uint32_t[]){ 0, 0, 0 });
	sim_restart(w, W);
	sim_run_for(w, 200 * T);
	EXPECT(w, leader(w) < 0,
	       "R9: n%d leads without E, the wiped node's vote helping",
	       leader(w) + 1);
	EXPECT(w, host_rejoining(host(w, W)), "W stopped rejoining alone");
	// A returns: E survives, W catches up and votes again.
	sim_restart(w, A);
	make_leader(w, A);
	propose(w, A, 1); // an entry of its term commits E with it (R5)
	converge(w, 400, "after A's return");
	for (int k = 0; k < 100 && host_rejoining(host(w, W)); k++)
		sim_run_for(w, T);
	EXPECT(w, !host_rejoining(host(w, W)), "W never finished rejoining");
	EXPECT(w, recorded_payload(w, e_payload, e_payload), "E not recorded");
	EXPECT(w, holds_payload(host(w, W), e_payload, e_payload) &&
		   holds_payload(host(w, C), e_payload, e_payload),
	       "E not on every node");
}

struct scenario {
	const char *name;
	uint32_t nodes;
	int64_t sync_min, sync_max;
	void (*run)(struct sim_world *w);
};

static const struct scenario scenarios[] = {
	{ "figure8", 5, 1, 2, figure8 },
	{ "isolated", 5, 1, 2, isolated },
	{ "divergent", 3, 1, 2, divergent },
	{ "torn", 3, 20, 40, torn },
	{ "wiped", 3, 1, 2, wiped },
};

static int run(const struct scenario *s, uint64_t seed, bool verbose)
{
	struct sim_knobs k;
	sim_knobs_quiet(&k, s->nodes);
	k.sync_min = s->sync_min;
	k.sync_max = s->sync_max;
	struct sim_world *w = sim_world_create(seed, &k);
	jmp_buf jb;
	w->fail_jmp = &jb;
	w->tracing = true;
	w->verbose = verbose;
	int rc = 0;
	if (setjmp(jb) == 0) {
		sim_world_start(w);
		s->run(w);
		printf("scenario %s: ok (%" PRIu64 " steps, %" PRIu64
		       " elections, %" PRIu64 " commits)\n", s->name,
		       w->st.steps, w->st.elections, w->st.commits);
	} else {
		printf("scenario %s: %s\n", s->name, w->fail_msg);
		for (uint32_t i = w->ring_n > 20 ? w->ring_n - 20 : 0;
		     i < w->ring_n; i++)
			printf("  | %s\n", w->ring[i % SIM_TRACE_RING]);
		rc = 1;
	}
	sim_world_destroy(w);
	return rc;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 2) {
		fprintf(stderr, "usage: ox-sim-scenarios NAME [-v]\n");
		return 2;
	}
	bool verbose = argc > 2 && strcmp(argv[2], "-v") == 0;
	for (size_t i = 0; i < sizeof(scenarios) / sizeof(*scenarios); i++)
		if (strcmp(argv[1], scenarios[i].name) == 0)
			return run(&scenarios[i], 1, verbose);
	fprintf(stderr, "ox-sim-scenarios: no scenario %s\n", argv[1]);
	return 2;
}
