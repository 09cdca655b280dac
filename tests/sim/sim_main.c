// SPDX-License-Identifier: Apache-2.0
//
// ox-sim: runs the Raft simulation over a range of seeds. Each seed draws
// its own world (3 to 5 nodes, 1 to 4 groups, link and disk timings, raft
// options), runs --steps steps of random faults and traffic, then heals
// everything and checks liveness (C13): every group elects a leader and
// commits a proposal made after the heal within a bounded time.
//
//   ox-sim --seeds N [--first S] [--steps K]   run seeds S .. S+N-1
//   ox-sim --determinism --seeds N [...]       run each seed twice and
//                                              compare the traces' hashes
//   OX_SIM_SEED=S ox-sim [--steps K]           replay one seed, verbosely
//
// A failure prints `seed N: <checker message>`, the end of its trace and
// `OX_SIM_SEED=N replays it`; the exit status is then 1. meson runs it in
// the `sim` suite (several seed ranges in parallel) and the `slow` suite.
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto/assert.h"
#include "tests/sim/sim.h"

// Liveness bound after the heal: restarts, a few election rounds (each
// at most two election timeouts, more with split votes), and commits.
#define LIVENESS_TICKS 600
// Failing seeds whose trace excerpt is printed; the rest get one line.
#define EXCERPTS_MAX 10
#define EXCERPT_LINES 30

struct opts {
	uint64_t first;
	uint64_t seeds;
	uint64_t steps;
	bool determinism;
};

static struct sim_stats total;

// Written before each seed, so that an abort inside raft (an OX_ASSERT)
// still names the seed.
static char abort_note[128];

static void on_fatal(int sig)
{
	ssize_t rc = write(STDERR_FILENO, abort_note, strlen(abort_note));
	(void)rc;
	signal(sig, SIG_DFL);
	raise(sig);
}

// A leader whose term no voter of its membership has passed. Nodes
// outside it (removed ones that never heard of their removal) may raise
// their own terms forever: nobody listens to them.
static bool has_leader(struct sim_world *w, uint32_t g)
{
	struct ox_raft *lead = NULL;
	for (uint32_t n = 0; n < w->k.nodes_n; n++) {
		struct ox_raft *r = w->hosts[n][g].raft;
		if (r != NULL && ox_raft_role(r) == OX_RAFT_LEADER &&
		    (lead == NULL || ox_raft_term(r) > ox_raft_term(lead)))
			lead = r;
	}
	if (lead == NULL)
		return false;
	const struct ox_raft_conf *c = ox_raft_conf(lead);
	for (uint32_t n = 0; n < w->k.nodes_n; n++) {
		struct ox_raft *r = w->hosts[n][g].raft;
		bool voter = false;
		for (uint32_t i = 0; i < c->voters_n; i++)
			voter |= c->voters[i] == (uint64_t)n + 1;
		if (r != NULL && voter && ox_raft_term(r) > ox_raft_term(lead))
			return false;
	}
	return true;
}

static bool all_live(struct sim_world *w)
{
	for (uint32_t g = 0; g < w->k.groups_n; g++)
		if (!w->groups[g].post_heal_committed || !has_leader(w, g))
			return false;
	return true;
}

// C13: faults stop, everything heals; then every group must elect a
// leader and commit something proposed after the heal.
static void liveness(struct sim_world *w)
{
	w->healed = true;
	w->healed_at = w->now;
	w->healed_payload = w->payload_next + 1;
	sim_heal(w);
	// A leader cut off from its majority keeps taking proposals it cannot
	// commit (as with acks=leader): that backlog drains first, at one
	// APPEND per round trip, so the bound grows with it.
	uint64_t backlog = 0;
	for (uint32_t g = 0; g < w->k.groups_n; g++) {
		const struct sim_group *gr = &w->groups[g];
		uint64_t done = gr->record_n ?
			gr->record[gr->record_n - 1].payload : 0;
		if (w->payload_next - done > backlog)
			backlog = w->payload_next - done;
	}
	int64_t ticks = LIVENESS_TICKS + 2 * (int64_t)backlog;
	int64_t limit = w->now + ticks * SIM_TICK_UNITS;
	while (!all_live(w)) {
		if (w->now > limit || !sim_step(w)) {
			for (uint32_t g = 0; g < w->k.groups_n; g++)
				if (!w->groups[g].post_heal_committed ||
				    !has_leader(w, g))
					sim_fail(w, "C13: g%u has %s %lld ticks after "
						 "the heal", g,
						 has_leader(w, g) ?
						 "committed nothing new" :
						 "no leader", (long long)ticks);
			OX_ASSERT(!"unreachable");
		}
	}
}

enum run_mode {
	RUN_QUIET,   // count statistics, report nothing
	RUN_REPORT,  // count, and print a failure
	RUN_EXCERPT, // a rerun of a failed seed: print it with its trace
	RUN_VERBOSE, // print the whole trace
};

// Runs one seed; returns 0 or -1. *hash gets the trace's hash.
static int run_seed(uint64_t seed, uint64_t steps, enum run_mode mode,
		    bool tracing, uint64_t *hash)
{
	bool verbose = mode == RUN_VERBOSE, excerpt = mode == RUN_EXCERPT;
	struct sim_knobs k;
	sim_knobs_random(&k, seed);
	struct sim_world *w = sim_world_create(seed, &k);
	jmp_buf jb;
	w->fail_jmp = &jb;
	w->verbose = verbose;
	w->tracing = tracing || verbose;
	int rc = 0;
	if (setjmp(jb) == 0) {
		sim_trace(w, "seed %" PRIu64 ": %u nodes, %u groups, pre_vote %d, "
			  "check_quorum %d, heartbeat %u, inflight %u", seed,
			  k.nodes_n, k.groups_n, k.pre_vote, k.check_quorum,
			  k.heartbeat_ticks, k.inflight_max);
		sim_world_start(w);
		for (uint64_t i = 0; i < steps && sim_step(w); i++)
			;
		liveness(w);
		sim_trace(w, "seed %" PRIu64 " done: %" PRIu64 " steps, %" PRIu64
			  " commits", seed, w->st.steps, w->st.commits);
	} else {
		rc = -1;
		if (mode == RUN_QUIET)
			goto out;
		printf("seed %" PRIu64 ": %s\n", seed, w->fail_msg);
		if (excerpt) {
			uint32_t n = w->ring_n < EXCERPT_LINES ? w->ring_n :
								EXCERPT_LINES;
			for (uint32_t i = w->ring_n - n; i < w->ring_n; i++)
				printf("  | %s\n", w->ring[i % SIM_TRACE_RING]);
		}
		printf("OX_SIM_SEED=%" PRIu64 " replays it\n", seed);
	}
out:
	if (hash != NULL)
		*hash = w->trace_hash;
	uint64_t *t = (uint64_t *)&total;
	const uint64_t *a = (const uint64_t *)&w->st;
	for (size_t i = 0; !excerpt && i < sizeof(total) / sizeof(*t); i++)
		t[i] += a[i];
	sim_world_destroy(w);
	return rc;
}

static void summary(const struct opts *o, uint64_t failed)
{
	const struct sim_stats *s = &total;
	printf("ox-sim: seeds %" PRIu64 " (from %" PRIu64 "), steps %" PRIu64
	       ", messages %" PRIu64 " (dropped %" PRIu64 ", duplicated %" PRIu64
	       "), crashes %" PRIu64 " (torn %" PRIu64 "), pauses %" PRIu64
	       ", partitions %" PRIu64 ", elections %" PRIu64 ", proposals %"
	       PRIu64 ", commits %" PRIu64 ", conf changes %" PRIu64
	       ", transfers %" PRIu64 ", log starts %" PRIu64 ", snapshots %"
	       PRIu64 ", append rejects %" PRIu64 ", wipes %" PRIu64
	       "; failed %" PRIu64 "\n",
	       o->seeds, o->first, s->steps, s->messages, s->drops, s->dups,
	       s->crashes, s->torn, s->pauses, s->partitions, s->elections,
	       s->proposals, s->commits, s->conf_changes, s->transfers,
	       s->log_starts, s->snapshots, s->rejects, s->wipes, failed);
}

static int parse(int argc, char **argv, struct opts *o)
{
	*o = (struct opts){ .first = 1, .seeds = 100, .steps = 4000 };
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--determinism") == 0) {
			o->determinism = true;
			continue;
		}
		if (i + 1 >= argc)
			return -1;
		char *end;
		uint64_t v = strtoull(argv[++i], &end, 10);
		if (*end != '\0')
			return -1;
		if (strcmp(a, "--seeds") == 0)
			o->seeds = v;
		else if (strcmp(a, "--first") == 0)
			o->first = v;
		else if (strcmp(a, "--steps") == 0)
			o->steps = v;
		else
			return -1;
	}
	return 0;
}

static int determinism(const struct opts *o)
{
	for (uint64_t s = o->first; s < o->first + o->seeds; s++) {
		uint64_t h1, h2;
		int rc1 = run_seed(s, o->steps, RUN_REPORT, true, &h1);
		int rc2 = run_seed(s, o->steps, RUN_REPORT, true, &h2);
		if (rc1 != rc2 || h1 != h2) {
			printf("seed %" PRIu64 ": two runs differ (trace hashes "
			       "%016" PRIx64 " and %016" PRIx64 ")\n", s, h1, h2);
			return 1;
		}
	}
	printf("ox-sim: %" PRIu64 " seeds ran twice with identical traces\n",
	       o->seeds);
	return 0;
}

int main(int argc, char **argv)
{
	struct opts o;
	if (parse(argc, argv, &o) != 0) {
		fprintf(stderr, "usage: ox-sim [--seeds N] [--first S] "
			"[--steps K] [--determinism]\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGABRT, on_fatal);
	signal(SIGSEGV, on_fatal);
	const char *env = getenv("OX_SIM_SEED");
	if (env != NULL) {
		uint64_t seed = strtoull(env, NULL, 10);
		snprintf(abort_note, sizeof(abort_note), "seed %" PRIu64
			 ": aborted\n", seed);
		int rc = run_seed(seed, o.steps, RUN_VERBOSE, true, NULL);
		o.first = seed;
		o.seeds = 1;
		summary(&o, rc != 0);
		return rc != 0;
	}
	if (o.determinism)
		return determinism(&o);
	uint64_t failed = 0;
	for (uint64_t s = o.first; s < o.first + o.seeds; s++) {
		snprintf(abort_note, sizeof(abort_note), "seed %" PRIu64
			 ": aborted (an assertion failed)\nOX_SIM_SEED=%" PRIu64
			 " replays it\n", s, s);
		bool detail = failed < EXCERPTS_MAX;
		if (run_seed(s, o.steps, detail ? RUN_QUIET : RUN_REPORT, false,
			     NULL) == 0)
			continue;
		failed++;
		if (detail) // again, deterministically, keeping its trace
			run_seed(s, o.steps, RUN_EXCERPT, true, NULL);
	}
	summary(&o, failed);
	return failed > 0;
}
