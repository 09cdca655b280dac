// SPDX-License-Identifier: Apache-2.0
//
// The simulated world: its PRNG, virtual clock and event queue, the trace,
// the random faults (crashes, pauses, partitions, lossy links), the
// clients' proposals and the operator's actions (membership changes,
// leadership transfers, retention). Hosts (host.c) and the network
// (net.c) do the per-replica work; the checkers (check.c) run after every
// step. See sim.h for the design notes.
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/assert.h"
#include "proto/error.h"
#include "tests/sim/sim.h"

// splitmix64: small, fast, and good enough to drive a simulation.
static uint64_t mix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

uint64_t sim_rand(struct sim_world *w, uint64_t n)
{
	OX_ASSERT(n > 0);
	return mix(&w->rng) % n;
}

static bool chance(struct sim_world *w, uint32_t pct)
{
	return sim_rand(w, 100) < pct;
}

void sim_trace(struct sim_world *w, const char *fmt, ...)
{
	if (!w->tracing)
		return;
	char line[SIM_TRACE_LINE];
	int n = snprintf(line, sizeof(line), "%8lld ", (long long)w->now);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	for (const char *c = line; *c; c++) { // FNV-1a
		w->trace_hash ^= (uint8_t)*c;
		w->trace_hash *= 0x100000001b3ull;
	}
	memcpy(w->ring[w->ring_n % SIM_TRACE_RING], line, sizeof(line));
	w->ring_n++;
	if (w->verbose)
		printf("%s\n", line);
}

_Noreturn void sim_fail(struct sim_world *w, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(w->fail_msg, sizeof(w->fail_msg), fmt, ap);
	va_end(ap);
	sim_trace(w, "FAIL %s", w->fail_msg);
	OX_ASSERT(w->fail_jmp != NULL);
	longjmp(*w->fail_jmp, 1);
}

// ---- Event queue: a binary heap ordered by (time, seq). ----

static bool ev_before(const struct sim_event *a, const struct sim_event *b)
{
	return a->time < b->time || (a->time == b->time && a->seq < b->seq);
}

void ev_push(struct sim_world *w, int64_t time, enum sim_ev_type type,
	     uint32_t node, uint32_t group, uint64_t arg, uint64_t arg2)
{
	if (w->heap_n >= SIM_EVENTS_MAX)
		sim_fail(w, "simulator: event queue full");
	OX_ASSERT(time >= w->now);
	struct sim_event e = {
		.time = time, .seq = w->ev_seq++, .type = type, .node = node,
		.group = group, .arg = arg, .arg2 = arg2,
	};
	if (node < SIM_NODES_MAX)
		e.life = w->nodes[node].life;
	uint32_t i = w->heap_n++;
	while (i > 0 && ev_before(&e, &w->heap[(i - 1) / 2])) {
		w->heap[i] = w->heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	w->heap[i] = e;
}

static struct sim_event ev_pop(struct sim_world *w)
{
	OX_ASSERT(w->heap_n > 0);
	struct sim_event top = w->heap[0];
	struct sim_event last = w->heap[--w->heap_n];
	uint32_t i = 0;
	for (;;) {
		uint32_t c = 2 * i + 1;
		if (c >= w->heap_n)
			break;
		if (c + 1 < w->heap_n && ev_before(&w->heap[c + 1], &w->heap[c]))
			c++;
		if (!ev_before(&w->heap[c], &last))
			break;
		w->heap[i] = w->heap[c];
		i = c;
	}
	if (w->heap_n > 0)
		w->heap[i] = last;
	return top;
}

// ---- World setup. ----

void sim_knobs_random(struct sim_knobs *k, uint64_t seed)
{
	uint64_t s = seed ^ 0x5eedull;
	memset(k, 0, sizeof(*k));
	k->nodes_n = 3 + (uint32_t)(mix(&s) % 3);
	k->groups_n = 1 + (uint32_t)(mix(&s) % SIM_GROUPS_MAX);
	k->chaos = true;
	k->clients = true;
	k->drop_pct = (uint32_t)(mix(&s) % 10);
	k->dup_pct = (uint32_t)(mix(&s) % 5);
	k->delay_min = 1;
	k->delay_max = 5 + (int64_t)(mix(&s) % 30);
	k->sync_min = 1;
	k->sync_max = 5 + (int64_t)(mix(&s) % 40);
	k->pre_vote = mix(&s) % 5 != 0;
	k->check_quorum = mix(&s) % 5 != 0;
	k->heartbeat_ticks = 1 + (uint32_t)(mix(&s) % 3);
	k->inflight_max = 1 + (uint32_t)(mix(&s) % 8);
	k->noop_pct = 70;
}

void sim_knobs_quiet(struct sim_knobs *k, uint32_t nodes_n)
{
	memset(k, 0, sizeof(*k));
	k->nodes_n = nodes_n;
	k->groups_n = 1;
	k->delay_min = 1;
	k->delay_max = 2;
	k->sync_min = 1;
	k->sync_max = 2;
	k->pre_vote = true;
	k->check_quorum = true;
	k->heartbeat_ticks = 2;
	k->inflight_max = 4;
	k->noop_pct = 0;
}

// Initial membership: 1, 3 or 5 voters (as many as there are nodes), on
// distinct random nodes.
static void initial_conf(struct sim_world *w, struct ox_raft_conf *c)
{
	static const uint32_t sizes[] = { 3, 3, 3, 5, 1 };
	uint32_t v = sizes[sim_rand(w, 5)];
	if (v > w->k.nodes_n)
		v = 3;
	if (!w->k.chaos) // hand-driven worlds: every node votes
		v = w->k.nodes_n;
	memset(c, 0, sizeof(*c));
	while (c->voters_n < v) {
		uint64_t id = 1 + sim_rand(w, w->k.nodes_n);
		if (!conf_has_member(c, id))
			c->voters[c->voters_n++] = id;
	}
}

struct sim_world *sim_world_create(uint64_t seed, const struct sim_knobs *k)
{
	OX_ASSERT(k->nodes_n >= 1 && k->nodes_n <= SIM_NODES_MAX);
	OX_ASSERT(k->groups_n >= 1 && k->groups_n <= SIM_GROUPS_MAX);
	struct sim_world *w = calloc(1, sizeof(*w));
	OX_ASSERT(w != NULL);
	w->seed = seed;
	w->rng = seed;
	w->k = *k;
	w->trace_hash = 0xcbf29ce484222325ull;
	w->heap = calloc(SIM_EVENTS_MAX, sizeof(*w->heap));
	OX_ASSERT(w->heap != NULL);
	for (uint32_t g = 0; g < k->groups_n; g++) {
		struct sim_group *gr = &w->groups[g];
		gr->record = calloc(SIM_RECORD_MAX, sizeof(*gr->record));
		gr->leader_of_term = calloc(SIM_TERMS_MAX, sizeof(uint64_t));
		OX_ASSERT(gr->record != NULL && gr->leader_of_term != NULL);
		initial_conf(w, &gr->conf0);
		for (uint32_t n = 0; n < k->nodes_n; n++)
			if (conf_has_member(&gr->conf0, n + 1))
				host_join(w, n, g, &gr->conf0, false);
	}
	for (uint32_t n = 0; n < k->nodes_n; n++)
		w->nodes[n].up = true;
	return w;
}

void sim_world_destroy(struct sim_world *w)
{
	if (w == NULL)
		return;
	for (uint32_t n = 0; n < SIM_NODES_MAX; n++) {
		for (uint32_t g = 0; g < SIM_GROUPS_MAX; g++) {
			struct sim_host *h = &w->hosts[n][g];
			ox_raft_destroy(h->raft);
			free(h->log);
			free(h->outq);
		}
	}
	for (uint32_t g = 0; g < SIM_GROUPS_MAX; g++) {
		free(w->groups[g].record);
		free(w->groups[g].leader_of_term);
	}
	free(w->heap);
	free(w);
}

static void schedule_tick(struct sim_world *w, uint32_t n, int64_t at)
{
	ev_push(w, at, EV_TICK, n, 0, 0, 0);
}

void sim_world_start(struct sim_world *w)
{
	w->started = true;
	for (uint32_t n = 0; n < w->k.nodes_n; n++) {
		for (uint32_t g = 0; g < w->k.groups_n; g++)
			if (w->hosts[n][g].member)
				host_boot(w, n, g);
		schedule_tick(w, n, w->now + 1 + (int64_t)sim_rand(w, SIM_TICK_UNITS));
	}
	if (w->k.clients)
		ev_push(w, w->now + 5, EV_PROPOSE, SIM_NODES_MAX, 0, 0, 0);
	if (w->k.chaos)
		ev_push(w, w->now + 100, EV_CHAOS, SIM_NODES_MAX, 0, 0, 0);
}

// ---- Node-level faults. ----

void sim_crash(struct sim_world *w, uint32_t n, int32_t torn)
{
	struct sim_node *nd = &w->nodes[n];
	OX_ASSERT(nd->up);
	sim_trace(w, "n%u CRASH%s", n + 1, torn != 0 ? " torn" : "");
	for (uint32_t g = 0; g < w->k.groups_n; g++)
		if (w->hosts[n][g].member)
			host_crash(w, n, g, torn);
	nd->up = false;
	nd->life++;
	w->st.crashes++;
	w->st.torn += torn != 0;
}

bool sim_wipe_safe(struct sim_world *w, uint32_t n)
{
	// R9 needs check-quorum: a stale leader must fall within an
	// election timeout, or a wiped node could catch up from one.
	if (w->nodes[n].up || !w->k.check_quorum)
		return false;
	for (uint32_t g = 0; g < w->k.groups_n; g++) {
		const struct sim_host *h = &w->hosts[n][g];
		const struct ox_raft_conf *c = &h->hard_durable.conf;

		if (!h->member)
			continue;
		// Two voters need both: one that forgot waits for a leader
		// that needs its vote (R9 trades that for safety), so only
		// groups of three or more survive a wipe.
		if (c->voters_n < 3 || h->hard_durable.conf_prev.voters_n < 3)
			return false;
		for (uint32_t m = 0; m < w->k.nodes_n; m++) {
			const struct sim_host *o = &w->hosts[m][g];

			if (m == n || !o->member)
				continue;
			if (host_rejoining(o))
				return false;
			// Any membership a replica knows, in force or not.
			if (o->raft != NULL &&
			    ox_raft_conf(o->raft)->voters_n < 3)
				return false;
			if (o->hard_latest.conf.voters_n < 3 ||
			    o->hard_durable.conf.voters_n < 3)
				return false;
		}
	}
	return true;
}

void sim_wipe(struct sim_world *w, uint32_t n)
{
	OX_ASSERT(sim_wipe_safe(w, n));
	sim_trace(w, "n%u WIPE", n + 1);
	// A disk is replaced while the node is down for long: what it sent
	// before is long delivered or lost, never counted after the wipe.
	for (uint32_t to = 0; to < SIM_NODES_MAX; to++)
		for (uint32_t s = 0; s < SIM_LINK_SLOTS; s++)
			w->links[n][to].slots[s].used = false;
	for (uint32_t g = 0; g < w->k.groups_n; g++)
		if (w->hosts[n][g].member)
			host_wipe(w, n, g);
	w->st.wipes++;
}

static void node_restart(struct sim_world *w, uint32_t n)
{
	struct sim_node *nd = &w->nodes[n];
	if (nd->up)
		return;
	nd->up = true;
	nd->life++;
	nd->paused_until = 0;
	sim_trace(w, "n%u RESTART", n + 1);
	for (uint32_t g = 0; g < w->k.groups_n; g++)
		if (w->hosts[n][g].member)
			host_boot(w, n, g);
	schedule_tick(w, n, w->now + 1 + (int64_t)sim_rand(w, SIM_TICK_UNITS));
}

void sim_restart(struct sim_world *w, uint32_t n)
{
	node_restart(w, n);
}

void sim_heal(struct sim_world *w)
{
	sim_trace(w, "HEAL all");
	for (uint32_t a = 0; a < SIM_NODES_MAX; a++) {
		w->nodes[a].side = 0;
		if (w->nodes[a].paused_until > w->now)
			w->nodes[a].paused_until = w->now;
		for (uint32_t b = 0; b < SIM_NODES_MAX; b++)
			w->links[a][b].down = false;
	}
	w->k.drop_pct = 0;
	w->k.dup_pct = 0;
	for (uint32_t n = 0; n < w->k.nodes_n; n++)
		node_restart(w, n);
}

// ---- Operator actions: membership, transfer, retention. ----

static int leader_of(struct sim_world *w, uint32_t g, uint32_t *node)
{
	uint32_t found[SIM_NODES_MAX], n = 0;
	for (uint32_t i = 0; i < w->k.nodes_n; i++) {
		struct sim_host *h = &w->hosts[i][g];
		if (w->nodes[i].up && h->raft != NULL &&
		    ox_raft_role(h->raft) == OX_RAFT_LEADER)
			found[n++] = i;
	}
	if (n == 0)
		return -1;
	*node = found[sim_rand(w, n)];
	return 0;
}

static void conf_remove(uint64_t *ids, uint32_t *n, uint64_t id)
{
	for (uint32_t i = 0; i < *n; i++) {
		if (ids[i] == id) {
			ids[i] = ids[--*n];
			ids[*n] = 0;
			return;
		}
	}
	OX_ASSERT(!"id not in the list");
}

// One membership change of the kinds raft.h allows: promote a learner,
// remove a voter (keeping two), or add a node as a learner.
static void conf_change(struct sim_world *w, uint32_t g)
{
	uint32_t ln;
	if (leader_of(w, g, &ln) != 0)
		return;
	struct sim_host *lh = &w->hosts[ln][g];
	struct ox_raft_conf c = *ox_raft_conf(lh->raft);
	uint64_t outside[SIM_NODES_MAX], out_n = 0, added = 0;
	for (uint32_t i = 0; i < w->k.nodes_n; i++)
		if (!conf_has_member(&c, i + 1))
			outside[out_n++] = i + 1;
	// R9: a wiped voter rejoining votes for nobody until it follows a
	// leader, so a group keeps three voters or more while one rejoins
	// (two would need its vote to elect the leader it waits for).
	uint32_t voters_min = 2;
	for (uint32_t i = 0; i < w->k.nodes_n; i++)
		if (w->hosts[i][g].member && host_rejoining(&w->hosts[i][g]))
			voters_min = 3;
	const char *what;
	if (c.learners_n > 0 && chance(w, 70)) {
		uint64_t id = c.learners[sim_rand(w, c.learners_n)];
		// A learner still rejoining (R9) is not promoted: a voter
		// that votes for nobody yet would weigh on every majority.
		if (host_rejoining(&w->hosts[id - 1][g]))
			return;
		conf_remove(c.learners, &c.learners_n, id);
		c.voters[c.voters_n++] = id;
		what = "promote";
	} else if (c.voters_n > voters_min && (out_n == 0 || chance(w, 40))) {
		conf_remove(c.voters, &c.voters_n,
			    c.voters[sim_rand(w, c.voters_n)]);
		what = "remove";
	} else if (out_n > 0 && c.learners_n == 0) {
		added = outside[sim_rand(w, out_n)];
		c.learners[c.learners_n++] = added;
		what = "add-learner";
	} else {
		return;
	}
	int rc = host_propose_conf(w, ln, g, &c);
	sim_trace(w, "g%u n%u CONF %s v%u l%u rc %d", g, ln + 1, what,
		  c.voters_n, c.learners_n, rc);
	if (rc == 0) {
		w->st.conf_changes++;
		if (added != 0)
			host_join(w, (uint32_t)added - 1, g, &c, false);
	}
	host_pump(w, ln, g);
}

static void transfer(struct sim_world *w, uint32_t g)
{
	uint32_t ln;
	if (leader_of(w, g, &ln) != 0)
		return;
	struct ox_raft *r = w->hosts[ln][g].raft;
	const struct ox_raft_conf *c = ox_raft_conf(r);
	if (c->voters_n < 2)
		return;
	uint64_t target;
	do
		target = c->voters[sim_rand(w, c->voters_n)];
	while (target == ln + 1);
	int rc = ox_raft_transfer(r, target);
	sim_trace(w, "g%u n%u TRANSFER to n%llu rc %d", g, ln + 1,
		  (unsigned long long)target, rc);
	if (rc != 0 && rc != -OX_ENOTLEADER)
		sim_fail(w, "g%u n%u: ox_raft_transfer to voter n%llu: %d", g,
			 ln + 1, (unsigned long long)target, rc);
	w->st.transfers += rc == 0;
	host_pump(w, ln, g);
}

// Retention on one replica: drop a random committed, durable prefix.
static void retention(struct sim_world *w, uint32_t n, uint32_t g)
{
	struct sim_host *h = &w->hosts[n][g];
	if (!w->nodes[n].up || h->raft == NULL)
		return;
	int64_t limit = host_durable_end(h);
	if (h->commit < limit)
		limit = h->commit;
	uint32_t eligible = 0;
	while (eligible < h->log_n && h->log[eligible].end <= limit)
		eligible++;
	if (eligible == 0)
		return;
	int64_t index = h->log[sim_rand(w, eligible)].end;
	host_log_start(w, n, g, index);
}

static void partition(struct sim_world *w)
{
	for (uint32_t n = 0; n < w->k.nodes_n; n++)
		w->nodes[n].side = (uint32_t)sim_rand(w, 2);
	sim_trace(w, "PARTITION %u%u%u%u%u", w->nodes[0].side,
		  w->nodes[1].side, w->nodes[2].side, w->nodes[3].side,
		  w->nodes[4].side);
	w->st.partitions++;
}

static void heal_network(struct sim_world *w)
{
	sim_trace(w, "HEAL network");
	for (uint32_t a = 0; a < SIM_NODES_MAX; a++) {
		w->nodes[a].side = 0;
		for (uint32_t b = 0; b < SIM_NODES_MAX; b++)
			w->links[a][b].down = false;
	}
}

static void chaos_node(struct sim_world *w, uint64_t roll)
{
	uint32_t n = (uint32_t)sim_rand(w, w->k.nodes_n);
	if (roll < 12) {
		if (w->nodes[n].up) {
			sim_crash(w, n, chance(w, 50) ? -1 : 0);
			if (chance(w, 10) && sim_wipe_safe(w, n))
				sim_wipe(w, n);
			int64_t down = (5 + (int64_t)sim_rand(w, 40)) * SIM_TICK_UNITS;
			ev_push(w, w->now + down, EV_RESTART, n, 0, 0, 0);
		}
	} else if (w->nodes[n].up) {
		int64_t p = (1 + (int64_t)sim_rand(w, 25)) * SIM_TICK_UNITS;
		w->nodes[n].paused_until = w->now + p;
		w->st.pauses++;
		sim_trace(w, "n%u PAUSE %lld", n + 1, (long long)p);
	}
}

static void chaos(struct sim_world *w)
{
	uint64_t roll = sim_rand(w, 100);
	uint32_t g = (uint32_t)sim_rand(w, w->k.groups_n);
	if (roll < 20) {
		chaos_node(w, roll);
	} else if (roll < 30) {
		partition(w);
	} else if (roll < 36) {
		uint32_t a = (uint32_t)sim_rand(w, w->k.nodes_n);
		uint32_t b = (a + 1 + (uint32_t)sim_rand(w, w->k.nodes_n - 1)) %
			     w->k.nodes_n;
		w->links[a][b].down = a != b;
		sim_trace(w, "LINK n%u->n%u down", a + 1, b + 1);
		w->st.partitions += a != b;
	} else if (roll < 50) {
		heal_network(w);
	} else if (roll < 56) {
		w->k.drop_pct = (uint32_t)sim_rand(w, 25);
		w->k.dup_pct = (uint32_t)sim_rand(w, 10);
		sim_trace(w, "LOSS drop %u%% dup %u%%", w->k.drop_pct,
			  w->k.dup_pct);
	} else if (roll < 72) {
		conf_change(w, g);
	} else if (roll < 82) {
		transfer(w, g);
	} else {
		retention(w, (uint32_t)sim_rand(w, w->k.nodes_n), g);
	}
}

static void client(struct sim_world *w)
{
	uint32_t g = (uint32_t)sim_rand(w, w->k.groups_n);
	uint32_t ln;
	if (leader_of(w, g, &ln) == 0) {
		int rc = host_propose(w, ln, g, 1 + (int64_t)sim_rand(w, 20));
		sim_trace(w, "g%u n%u PROPOSE rc %d", g, ln + 1, rc);
	}
	ev_push(w, w->now + 2 + (int64_t)sim_rand(w, 30), EV_PROPOSE,
		SIM_NODES_MAX, 0, 0, 0);
}

// ---- Stepping. ----

static void tick_node(struct sim_world *w, uint32_t n)
{
	for (uint32_t g = 0; g < w->k.groups_n; g++) {
		struct sim_host *h = &w->hosts[n][g];
		if (h->raft == NULL)
			continue;
		ox_raft_tick(h->raft);
		host_pump(w, n, g);
	}
	schedule_tick(w, n, w->now + SIM_TICK_UNITS);
}

// Events aimed at a node that is down (or was restarted since) are
// void, but a packet still frees its slot (net_deliver drops it); at a
// paused node they wait for the pause to end.
static bool ev_target(struct sim_world *w, const struct sim_event *e)
{
	if (e->node >= SIM_NODES_MAX || e->type == EV_RESTART)
		return true;
	struct sim_node *nd = &w->nodes[e->node];
	if (!nd->up)
		return e->type == EV_DELIVER;
	if (e->type != EV_DELIVER && e->life != nd->life)
		return false;
	if (nd->paused_until > w->now) {
		ev_push(w, nd->paused_until, e->type, e->node, e->group,
			e->arg, e->arg2); // same life: it was checked above
		return false;
	}
	return true;
}

static void leave_pending(struct sim_world *w)
{
	for (uint32_t n = 0; n < w->k.nodes_n; n++)
		for (uint32_t g = 0; g < w->k.groups_n; g++)
			if (w->hosts[n][g].leaving)
				host_leave(w, n, g);
}

bool sim_step(struct sim_world *w)
{
	if (w->heap_n == 0)
		return false;
	struct sim_event e = ev_pop(w);
	OX_ASSERT(e.time >= w->now);
	w->now = e.time;
	if (!ev_target(w, &e))
		return true;
	switch (e.type) {
	case EV_TICK: tick_node(w, e.node); break;
	case EV_DELIVER:
		net_deliver(w, e.group, e.node, (uint32_t)e.arg,
			    (uint32_t)e.arg2);
		break;
	case EV_LOG_SYNC: host_log_sync_done(w, e.node, e.group, e.arg); break;
	case EV_HARD_SYNC: host_hard_sync_done(w, e.node, e.group, e.arg); break;
	case EV_PROPOSE: client(w); break;
	case EV_CHAOS:
		if (!w->healed) {
			chaos(w);
			ev_push(w, w->now + 20 + (int64_t)sim_rand(w, 300),
				EV_CHAOS, SIM_NODES_MAX, 0, 0, 0);
		}
		break;
	case EV_RESTART: node_restart(w, e.node); break;
	}
	leave_pending(w);
	w->st.steps++;
	check_step(w);
	return true;
}

void sim_run_for(struct sim_world *w, int64_t units)
{
	int64_t until = w->now + units;
	while (w->heap_n > 0 && w->heap[0].time <= until)
		sim_step(w);
	w->now = until;
}
