// SPDX-License-Identifier: Apache-2.0
//
// One replica of one group on one simulated node: the part of the
// broker's replication layer that sits around a struct ox_raft. It keeps
// the log's batches with their durability (write sequences and fsyncs),
// persists the hard state before sending the messages of the same ready,
// fills APPENDs from its log, applies a follower's plans (truncate,
// append, install a snapshot), recovers after a crash (losing or tearing
// the unsynced tail) and rebuilds struct ox_raft_restore from what is
// durable. Called by world.c (events) and net.c (deliveries); it calls the
// checkers on every ready and every plan.
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto/assert.h"
#include "proto/error.h"
#include "tests/sim/sim.h"

// A host refuses client proposals while this many batches of its term
// are beyond the commit index, as the broker bounds unacknowledged bytes.
#define HOST_UNCOMMITTED_MAX 256

int64_t host_log_end(const struct sim_host *h)
{
	return h->log_n > 0 ? h->log[h->log_n - 1].end : h->start;
}

// Batches [0, n) are durable: write sequences grow along the log.
static uint32_t durable_n(const struct sim_host *h)
{
	uint32_t n = h->log_n;
	while (n > 0 && h->log[n - 1].wseq > h->wseq_synced)
		n--;
	return n;
}

int64_t host_durable_end(const struct sim_host *h)
{
	uint32_t n = durable_n(h);
	return n > 0 ? h->log[n - 1].end : h->start;
}

// The position of the first batch whose end is > index.
static uint32_t first_after(const struct sim_host *h, int64_t index)
{
	uint32_t lo = 0, hi = h->log_n;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (h->log[mid].end <= index)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

const struct sim_batch *host_find(const struct sim_host *h, int64_t end)
{
	uint32_t i = first_after(h, end - 1);
	if (i < h->log_n && h->log[i].end == end)
		return &h->log[i];
	return NULL;
}

static void host_alloc(struct sim_host *h)
{
	if (h->log == NULL) {
		h->log = calloc(SIM_LOG_MAX, sizeof(*h->log));
		h->outq = calloc(SIM_OUTQ_MAX, sizeof(*h->outq));
		OX_ASSERT(h->log != NULL && h->outq != NULL);
	}
}

// ---- Restart. ----

static uint32_t build_runs(const struct sim_host *h, struct ox_raft_run *runs)
{
	uint32_t n = 0;
	if (h->start > 0)
		runs[n++] = (struct ox_raft_run){ h->start - 1, h->start_term };
	for (uint32_t i = 0; i < h->log_n; i++) {
		if (n > 0 && runs[n - 1].term == h->log[i].term)
			continue;
		OX_ASSERT(n < SIM_RUNS_MAX);
		runs[n++] = (struct ox_raft_run){ h->log[i].base, h->log[i].term };
	}
	return n;
}

static void host_config(struct sim_world *w, uint32_t node, uint32_t g,
			struct ox_raft_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->id = node + 1;
	cfg->election_ticks = SIM_ELECTION_TICKS;
	cfg->heartbeat_ticks = w->k.heartbeat_ticks;
	cfg->inflight_max = w->k.inflight_max;
	cfg->seed = w->seed * 1000003u + node * 101u + g * 7u +
		    w->nodes[node].life;
	cfg->pre_vote = w->k.pre_vote;
	cfg->check_quorum = w->k.check_quorum;
}

// The configuration in effect is the last one in the log, but the hard
// state and the log have separate fsyncs: after a crash the hard state
// may name a configuration whose batch was lost, or miss one the log
// kept. The host recovers it from the log, as the broker's recovery scans
// its log's conf batches; raft never sees batches.
static void restore_conf(struct sim_world *w, uint32_t node, uint32_t g,
			 struct ox_raft_hard *hard, int64_t last)
{
	const struct sim_host *h = &w->hosts[node][g];
	const struct sim_batch *conf = NULL, *prev = NULL;
	for (uint32_t i = 0; i < h->log_n; i++) {
		if (h->log[i].is_conf) {
			prev = conf;
			conf = &h->log[i];
		}
	}
	if (conf != NULL && conf->end > hard->conf_index) {
		sim_trace(w, "g%u n%u conf from the log at %lld", g, node + 1,
			  (long long)conf->end);
		hard->conf_prev = prev != NULL ? prev->conf : hard->conf;
		hard->conf = conf->conf;
		hard->conf_index = conf->end;
	} else if (hard->conf_index > last) {
		sim_trace(w, "g%u n%u conf at %lld lost: back to the one before",
			  g, node + 1, (long long)hard->conf_index);
		hard->conf = hard->conf_prev;
		hard->conf_index = conf != NULL ? conf->end : 0;
	}
}

// Starts raft from what is durable (the log after recovery and the last
// hard state whose fsync completed).
void host_boot(struct sim_world *w, uint32_t node, uint32_t g)
{
	struct sim_host *h = &w->hosts[node][g];
	OX_ASSERT(h->member && h->raft == NULL);
	static struct ox_raft_run runs[SIM_RUNS_MAX];
	struct ox_raft_restore rs = {
		.hard = h->hard_durable,
		.start_index = h->start,
		.start_term = h->start_term,
		.last_index = host_log_end(h),
		.runs = runs,
		.runs_n = build_runs(h, runs),
	};
	// The log's fsync may have completed before the hard state's: a
	// follower appends the batches of a new term's leader before its
	// new term is durable. raft rejects a log newer than the hard
	// state, so the host raises the term (with no vote: a vote whose
	// hard state was not durable was never sent).
	if (rs.runs_n > 0 && runs[rs.runs_n - 1].term > rs.hard.term) {
		sim_trace(w, "g%u n%u term %llu raised to the log's %llu", g,
			  node + 1, (unsigned long long)rs.hard.term,
			  (unsigned long long)runs[rs.runs_n - 1].term);
		rs.hard.term = runs[rs.runs_n - 1].term;
		rs.hard.vote = OX_RAFT_NONE;
	}
	restore_conf(w, node, g, &rs.hard, rs.last_index);
	// A commit saved with the hard state, or none.
	int64_t c = h->commit_saved < rs.last_index ? h->commit_saved :
						      rs.last_index;
	rs.commit = sim_rand(w, 2) == 0 ? c : 0;
	struct ox_raft_config cfg;
	host_config(w, node, g, &cfg);
	int rc = ox_raft_create(&h->raft, &cfg, &rs, SIM_RUNS_MAX);
	if (rc != 0)
		sim_fail(w, "g%u n%u: ox_raft_create rejected the durable state "
			 "(term %llu, log [%lld, %lld), %u runs, conf_index "
			 "%lld): %d", g, node + 1,
			 (unsigned long long)rs.hard.term, (long long)rs.start_index,
			 (long long)rs.last_index, rs.runs_n,
			 (long long)rs.hard.conf_index, rc);
	h->hard_latest = h->hard_durable;
	h->hseq = h->hseq_durable = 0;
	h->hard_sync_busy = h->log_sync_busy = false;
	h->outq_n = 0;
	h->commit = ox_raft_commit(h->raft);
	h->role = OX_RAFT_FOLLOWER;
	h->term = rs.hard.term;
	h->persisted_told = rs.last_index;
	h->noop_wanted = false;
	sim_trace(w, "g%u n%u BOOT term %llu log [%lld, %lld) commit %lld", g,
		  node + 1, (unsigned long long)rs.hard.term,
		  (long long)rs.start_index, (long long)rs.last_index,
		  (long long)h->commit);
	host_pump(w, node, g);
}

// The node died: the unsynced tail is lost, or torn (a prefix of it
// reached the disk: `torn` batches, or a random number when < 0), and so
// is an unsynced hard state.
void host_crash(struct sim_world *w, uint32_t node, uint32_t g, int32_t torn)
{
	struct sim_host *h = &w->hosts[node][g];
	ox_raft_destroy(h->raft);
	h->raft = NULL;
	uint32_t keep = durable_n(h), unsynced = h->log_n - keep;
	if (torn < 0)
		keep += (uint32_t)sim_rand(w, unsynced + 1);
	else
		keep += (uint32_t)torn < unsynced ? (uint32_t)torn : unsynced;
	sim_trace(w, "g%u n%u keeps %u of %u batches", g, node + 1, keep,
		  h->log_n);
	h->log_n = keep;
	h->wseq_synced = h->wseq_next - 1; // what was kept is on disk
	if (h->checked_end > host_log_end(h))
		h->checked_end = host_log_end(h);
	h->outq_n = 0;
	h->hard_sync_busy = h->log_sync_busy = false;
}

// The crashed node's disk was wiped: no log, no hard state. It boots as a
// new replica does, rejoining (R9), with the membership it last knew (the
// broker takes it from the metadata, not from the lost disk).
void host_wipe(struct sim_world *w, uint32_t node, uint32_t g)
{
	struct sim_host *h = &w->hosts[node][g];
	struct ox_raft_conf conf = h->hard_durable.conf;

	OX_ASSERT(h->raft == NULL);
	sim_trace(w, "g%u n%u WIPE", g, node + 1);
	h->log_n = 0;
	h->start = 0;
	h->start_term = 0;
	h->wseq_synced = h->wseq_next - 1;
	h->checked_end = 0;
	h->commit_saved = 0;
	memset(&h->hard_durable, 0, sizeof(h->hard_durable));
	h->hard_durable.conf = conf;
	h->hard_durable.conf_prev = conf;
	h->hard_durable.rejoining = OX_RAFT_REJOIN_BEHIND;
	h->hard_latest = h->hard_durable;
	h->outq_n = 0;
}

bool host_rejoining(const struct sim_host *h)
{
	return h->raft != NULL ?
		       ox_raft_rejoining(h->raft) != OX_RAFT_REJOIN_NONE :
		       h->hard_durable.rejoining != OX_RAFT_REJOIN_NONE;
}

// ---- Membership of this node in the group. ----

// A replica joining the group. A node that held one before keeps its
// durable state: a node id must never come back with a wiped disk while
// some member may still count it in an older configuration (its vote
// and log are what make that older majority overlap the newer one).
void host_join(struct sim_world *w, uint32_t node, uint32_t g,
	       const struct ox_raft_conf *conf, bool fresh)
{
	struct sim_host *h = &w->hosts[node][g];
	bool rejoin = h->log != NULL;
	sim_trace(w, "g%u n%u JOIN%s", g, node + 1, rejoin ? " (again)" : "");
	if (h->member)
		return; // an earlier add that did not commit: still running
	h->member = true;
	h->leaving = false;
	if (!rejoin) {
		host_alloc(h);
		h->wseq_next = 1;
		memset(&h->hard_durable, 0, sizeof(h->hard_durable));
		h->hard_durable.conf = *conf;
		h->hard_durable.conf_prev = *conf;
		// R9: a replica that may have voted before starts rejoining;
		// the groups' first members and members added later never did
		// (the wiped ones come from host_wipe).
		h->hard_durable.rejoining = fresh ? OX_RAFT_REJOIN_BEHIND :
						    OX_RAFT_REJOIN_NONE;
	}
	if (w->nodes[node].up && w->started)
		host_boot(w, node, g);
}

// Its removal committed: the replica stops cleanly (what it wrote is on
// disk) and keeps its state for a later return.
void host_leave(struct sim_world *w, uint32_t node, uint32_t g)
{
	struct sim_host *h = &w->hosts[node][g];
	sim_trace(w, "g%u n%u LEAVE", g, node + 1);
	if (h->raft != NULL) { // else it is down, and crashed already
		h->wseq_synced = h->wseq_next - 1;
		h->hard_durable = h->hard_latest;
		h->commit_saved = h->commit;
	}
	ox_raft_destroy(h->raft);
	h->raft = NULL;
	h->member = false;
	h->leaving = false;
	h->outq_n = 0;
	h->log_sync_busy = h->hard_sync_busy = false;
}

// ---- Durability. ----

static void start_log_sync(struct sim_world *w, uint32_t node, uint32_t g)
{
	struct sim_host *h = &w->hosts[node][g];
	if (h->log_sync_busy || h->wseq_next - 1 <= h->wseq_synced)
		return;
	h->log_sync_busy = true;
	int64_t d = w->k.sync_min +
		    (int64_t)sim_rand(w, (uint64_t)(w->k.sync_max - w->k.sync_min + 1));
	ev_push(w, w->now + d, EV_LOG_SYNC, node, g, h->wseq_next - 1, 0);
}

void host_log_sync_done(struct sim_world *w, uint32_t node, uint32_t g,
			uint64_t target)
{
	struct sim_host *h = &w->hosts[node][g];
	if (h->raft == NULL)
		return;
	h->log_sync_busy = false;
	if (target > h->wseq_synced)
		h->wseq_synced = target;
	uint32_t n = durable_n(h);
	if (n > 0 && h->log[n - 1].end > h->persisted_told) {
		h->persisted_told = h->log[n - 1].end;
		sim_trace(w, "g%u n%u PERSISTED %lld term %llu", g, node + 1,
			  (long long)h->log[n - 1].end,
			  (unsigned long long)h->log[n - 1].term);
		ox_raft_persisted(h->raft, h->log[n - 1].end, h->log[n - 1].term);
	}
	start_log_sync(w, node, g);
	host_pump(w, node, g);
}

static void start_hard_sync(struct sim_world *w, uint32_t node, uint32_t g)
{
	struct sim_host *h = &w->hosts[node][g];
	if (h->hard_sync_busy || h->hseq_durable >= h->hseq)
		return;
	h->hard_sync_busy = true;
	h->hard_syncing = h->hard_latest;
	int64_t d = w->k.sync_min +
		    (int64_t)sim_rand(w, (uint64_t)(w->k.sync_max - w->k.sync_min + 1));
	ev_push(w, w->now + d, EV_HARD_SYNC, node, g, h->hseq, 0);
}

static void send_msg(struct sim_world *w, uint32_t node, uint32_t g,
		     const struct ox_raft_msg *m);

void host_hard_sync_done(struct sim_world *w, uint32_t node, uint32_t g,
			 uint64_t hseq)
{
	struct sim_host *h = &w->hosts[node][g];
	if (h->raft == NULL)
		return;
	h->hard_sync_busy = false;
	h->hard_durable = h->hard_syncing;
	h->hseq_durable = hseq;
	h->commit_saved = h->commit;
	uint32_t sent = 0;
	while (sent < h->outq_n && h->outq[sent].need_hseq <= hseq) {
		send_msg(w, node, g, &h->outq[sent].m);
		sent++;
	}
	memmove(h->outq, h->outq + sent, (h->outq_n - sent) * sizeof(*h->outq));
	h->outq_n -= sent;
	start_hard_sync(w, node, g);
	host_pump(w, node, g);
}

// ---- Leader side. ----

static void append_batch(struct sim_world *w, struct sim_host *h,
			 const struct sim_batch *b)
{
	if (h->log_n >= SIM_LOG_MAX)
		sim_fail(w, "simulator: a log outgrew %u batches", SIM_LOG_MAX);
	OX_ASSERT(b->base == host_log_end(h) && b->end > b->base);
	h->log[h->log_n] = *b;
	h->log[h->log_n].wseq = h->wseq_next++;
	h->log_n++;
}

// Batches of the leader's own term beyond its commit: the back pressure
// must not count older terms' batches, which only commit with one of
// this term (R5), or a new leader that did not propose a control batch
// could never commit anything.
static uint32_t count_uncommitted(const struct sim_host *h)
{
	uint64_t term = ox_raft_term(h->raft);
	uint32_t n = 0;
	for (uint32_t i = h->log_n; i > 0 && h->log[i - 1].end > h->commit &&
	     h->log[i - 1].term == term; i--)
		n++;
	return n;
}

static int propose(struct sim_world *w, uint32_t node, uint32_t g,
		   int64_t count, const struct ox_raft_conf *conf)
{
	struct sim_host *h = &w->hosts[node][g];
	if (h->raft == NULL)
		return -OX_ENOTLEADER;
	if (count_uncommitted(h) >= HOST_UNCOMMITTED_MAX && conf == NULL &&
	    !h->noop_wanted)
		return -EAGAIN;
	struct sim_batch b = {
		.base = host_log_end(h),
		.end = host_log_end(h) + count,
		.is_conf = conf != NULL,
	};
	if (conf != NULL)
		b.conf = *conf;
	int rc = conf != NULL ?
		ox_raft_propose_conf(h->raft, b.end, conf, &b.term) :
		ox_raft_propose(h->raft, b.end, &b.term);
	if (rc == -OX_ENOTLEADER || rc == -EBUSY)
		return rc;
	if (rc != 0)
		sim_fail(w, "g%u n%u: propose of (%lld, %lld] on a log ending at "
			 "%lld: %d", g, node + 1, (long long)b.base,
			 (long long)b.end, (long long)ox_raft_last_index(h->raft),
			 rc);
	if (b.term != ox_raft_term(h->raft))
		sim_fail(w, "g%u n%u: propose stamped term %llu in term %llu (R2)",
			 g, node + 1, (unsigned long long)b.term,
			 (unsigned long long)ox_raft_term(h->raft));
	b.payload = ++w->payload_next;
	append_batch(w, h, &b);
	w->st.proposals++;
	start_log_sync(w, node, g);
	return 0;
}

int host_propose(struct sim_world *w, uint32_t node, uint32_t g,
		 int64_t count)
{
	int rc = propose(w, node, g, count, NULL);
	if (w->hosts[node][g].raft != NULL)
		host_pump(w, node, g);
	return rc;
}

int host_propose_conf(struct sim_world *w, uint32_t node, uint32_t g,
		      const struct ox_raft_conf *conf)
{
	return propose(w, node, g, 1, conf);
}

// Reads whole batches from the one holding offset prev_index, up to a
// random budget, and lets raft fix the message to them.
static bool fill_append(struct sim_world *w, uint32_t node, uint32_t g,
			struct sim_packet *p)
{
	struct sim_host *h = &w->hosts[node][g];
	struct ox_raft_msg *m = &p->m;
	uint32_t i = first_after(h, m->prev_index);
	if (i >= h->log_n || h->log[i].base > m->prev_index) {
		sim_trace(w, "g%u n%u APPEND to n%llu from %lld: not in the log "
			  "[%lld, %lld), dropped", g, node + 1,
			  (unsigned long long)m->to, (long long)m->prev_index,
			  (long long)h->start, (long long)host_log_end(h));
		ox_raft_append_dropped(h->raft, m);
		return false;
	}
	uint32_t want = 1 + (uint32_t)sim_rand(w, SIM_MSG_BATCHES_MAX);
	int64_t budget = 1 + (int64_t)sim_rand(w, 100); // offsets, say bytes
	uint32_t j = i + 1;
	while (j < h->log_n && j - i < want &&
	       h->log[j].end - h->log[i].base <= budget)
		j++;
	int64_t base = h->log[i].base, end = h->log[j - 1].end;
	int rc = ox_raft_append_fill(h->raft, m, base, end);
	if (rc == -ESTALE)
		return false;
	if (rc != 0)
		sim_fail(w, "g%u n%u: append_fill(%lld, %lld] for prev %lld: %d",
			 g, node + 1, (long long)base, (long long)end,
			 (long long)m->prev_index, rc);
	if (m->end_index > end || m->prev_index < base ||
	    m->end_index < m->prev_index)
		sim_fail(w, "g%u n%u: append_fill made (%lld, %lld] of batches "
			 "(%lld, %lld]", g, node + 1, (long long)m->prev_index,
			 (long long)m->end_index, (long long)base, (long long)end);
	for (uint32_t k = i; k < j && h->log[k].end <= m->end_index; k++)
		if (h->log[k].end > m->prev_index)
			p->batches[p->batches_n++] = h->log[k];
	return true;
}

static void send_msg(struct sim_world *w, uint32_t node, uint32_t g,
		     const struct ox_raft_msg *m)
{
	static struct sim_packet p;
	memset(&p, 0, offsetof(struct sim_packet, batches));
	p.group = g;
	p.m = *m;
	if (m->type == OX_RAFT_MSG_APPEND && m->wants_entries &&
	    !fill_append(w, node, g, &p))
		return;
	if (m->type == OX_RAFT_MSG_SNAPSHOT &&
	    !check_is_committed(w, g, m->index, m->log_term))
		sim_fail(w, "C11: g%u n%u sends a SNAPSHOT at %lld term %llu "
			 "that is not committed", g, node + 1,
			 (long long)m->index, (unsigned long long)m->log_term);
	net_send(w, node, g, &p);
}

// Messages go out once the hard state of their ready is durable (R1).
static void host_out(struct sim_world *w, uint32_t node, uint32_t g,
		     const struct ox_raft_msg *m)
{
	struct sim_host *h = &w->hosts[node][g];
	if (h->outq_n == 0 && h->hseq_durable >= h->hseq) {
		send_msg(w, node, g, m);
		return;
	}
	if (h->outq_n >= SIM_OUTQ_MAX)
		sim_fail(w, "simulator: g%u n%u has %u messages waiting for an "
			 "fsync", g, node + 1, h->outq_n);
	h->outq[h->outq_n++] = (struct sim_outmsg){ h->hseq, *m };
}

// Drains raft's outputs until it has none.
void host_pump(struct sim_world *w, uint32_t node, uint32_t g)
{
	struct sim_host *h = &w->hosts[node][g];
	static struct ox_raft_msg msgs[OX_RAFT_OUTBOX_MAX];
	for (uint32_t round = 0; h->raft != NULL; round++) {
		if (round > 100)
			sim_fail(w, "g%u n%u: raft keeps producing outputs",
				 g, node + 1);
		struct ox_raft_ready rd;
		ox_raft_ready(h->raft, &rd);
		check_ready(w, node, g, &rd);
		bool any = rd.hard_changed || rd.msgs_n > 0 ||
			   rd.commit_changed || rd.role_changed;
		uint32_t n = rd.msgs_n;
		memcpy(msgs, rd.msgs, n * sizeof(*msgs));
		if (rd.hard_changed) {
			h->hseq++;
			h->hard_latest = rd.hard;
			start_hard_sync(w, node, g);
		}
		if (rd.role_changed && rd.role == OX_RAFT_LEADER)
			h->noop_wanted = sim_rand(w, 100) < w->k.noop_pct;
		for (uint32_t i = 0; i < n && h->raft != NULL; i++)
			host_out(w, node, g, &msgs[i]);
		if (h->noop_wanted && h->raft != NULL) {
			any = true;
			int rc = propose(w, node, g, 1, NULL);
			h->noop_wanted = false;
			sim_trace(w, "g%u n%u NOOP rc %d", g, node + 1, rc);
		}
		if (!any)
			break;
	}
}

// ---- Follower side. ----

static void truncate_log(struct sim_world *w, uint32_t node, uint32_t g,
			 int64_t t)
{
	struct sim_host *h = &w->hosts[node][g];
	if (ox_raft_role(h->raft) == OX_RAFT_LEADER)
		sim_fail(w, "C9: g%u n%u truncates its log at %lld as leader "
			 "(R2)", g, node + 1, (long long)t);
	// raft's commit may already count what this APPEND brings after
	// the cut; the commit of the last ready is what must stay.
	if (t < h->start || t < h->commit)
		sim_fail(w, "C8: g%u n%u truncates at %lld below its commit %lld "
			 "or log start %lld (R3, R6)", g, node + 1, (long long)t,
			 (long long)h->commit, (long long)h->start);
	uint32_t i = first_after(h, t);
	if (i < h->log_n && h->log[i].base != t)
		sim_fail(w, "C8: g%u n%u truncates at %lld inside batch [%lld, "
			 "%lld) (R3)", g, node + 1, (long long)t,
			 (long long)h->log[i].base, (long long)h->log[i].end);
	if (i < h->log_n)
		sim_trace(w, "g%u n%u TRUNCATE at %lld (%u batches)", g,
			  node + 1, (long long)t, h->log_n - i);
	h->log_n = i;
	if (h->persisted_told > t)
		h->persisted_told = t;
	if (h->checked_end > t)
		h->checked_end = t;
}

static void append_from_msg(struct sim_world *w, uint32_t node, uint32_t g,
			    const struct sim_packet *p,
			    const struct ox_raft_plan *pl)
{
	struct sim_host *h = &w->hosts[node][g];
	for (uint32_t i = 0; i < p->batches_n; i++) {
		const struct sim_batch *b = &p->batches[i];
		if (b->end <= pl->append_from || b->end > pl->append_end)
			continue;
		if (b->base != host_log_end(h))
			sim_fail(w, "C8: g%u n%u appends batch [%lld, %lld) to a log "
				 "ending at %lld: %s (R3)", g, node + 1,
				 (long long)b->base, (long long)b->end,
				 (long long)host_log_end(h),
				 b->base > host_log_end(h) ? "gap" : "overlap");
		append_batch(w, h, b);
		if (!b->is_conf)
			continue;
		int rc = ox_raft_conf_appended(h->raft, b->end, &b->conf);
		if (rc != 0)
			sim_fail(w, "g%u n%u: conf_appended at %lld: %d", g,
				 node + 1, (long long)b->end, rc);
	}
	if (host_log_end(h) != pl->append_end)
		sim_fail(w, "C8: g%u n%u: plan (%lld, %lld] but the message's "
			 "batches reach %lld", g, node + 1,
			 (long long)pl->append_from, (long long)pl->append_end,
			 (long long)host_log_end(h));
	start_log_sync(w, node, g);
}

static void install_snapshot(struct sim_world *w, uint32_t node, uint32_t g,
			     const struct sim_packet *p, int64_t s)
{
	struct sim_host *h = &w->hosts[node][g];
	if (s != p->m.index || !check_is_committed(w, g, s, p->m.log_term))
		sim_fail(w, "C11: g%u n%u installs a snapshot at %lld (message "
			 "%lld term %llu) not committed", g, node + 1,
			 (long long)s, (long long)p->m.index,
			 (unsigned long long)p->m.log_term);
	if (s < h->commit)
		sim_fail(w, "C8: g%u n%u installs a snapshot at %lld below its "
			 "commit %lld", g, node + 1, (long long)s,
			 (long long)h->commit);
	sim_trace(w, "g%u n%u SNAPSHOT at %lld term %llu", g, node + 1,
		  (long long)s, (unsigned long long)p->m.log_term);
	h->log_n = 0;
	h->start = s;
	h->start_term = p->m.log_term;
	h->checked_end = s;
	h->persisted_told = s;
	w->st.snapshots++;
	ox_raft_persisted(h->raft, s, p->m.log_term);
}

static bool tolerated_reject(const struct sim_host *h,
			     const struct sim_packet *p)
{
	return !conf_has_member(ox_raft_conf(h->raft), p->m.from);
}

void host_receive(struct sim_world *w, uint32_t node,
		  const struct sim_packet *p)
{
	uint32_t g = p->group;
	struct sim_host *h = &w->hosts[node][g];
	if (h->raft == NULL)
		return;
	if (p->m.type == OX_RAFT_MSG_APPEND_RESP && !p->m.ok)
		w->st.rejects++;
	struct ox_raft_plan pl;
	memset(&pl, 0xa5, sizeof(pl));
	int rc = ox_raft_step(h->raft, &p->m, &pl);
	if (rc == -EINVAL && tolerated_reject(h, p))
		return;
	if (rc != 0)
		sim_fail(w, "g%u n%u: step of type %d from n%llu term %llu: %d",
			 g, node + 1, p->m.type, (unsigned long long)p->m.from,
			 (unsigned long long)p->m.term, rc);
	sim_trace(w, "g%u n%u <- n%llu type %d term %llu index %lld/%llu "
		  "prev %lld/%llu end %lld commit %lld ok %d runs %u: plan "
		  "trunc %lld append (%lld, %lld] snap %lld", g, node + 1,
		  (unsigned long long)p->m.from, p->m.type,
		  (unsigned long long)p->m.term, (long long)p->m.index,
		  (unsigned long long)p->m.log_term, (long long)p->m.prev_index,
		  (unsigned long long)p->m.prev_term, (long long)p->m.end_index,
		  (long long)p->m.commit, p->m.ok, p->m.runs_n,
		  (long long)pl.truncate_index, (long long)pl.append_from,
		  (long long)pl.append_end, (long long)pl.snapshot_index);
	bool carries = p->m.type == OX_RAFT_MSG_APPEND ||
		       p->m.type == OX_RAFT_MSG_SNAPSHOT;
	if (carries && pl.snapshot_index >= 0) {
		install_snapshot(w, node, g, p, pl.snapshot_index);
	} else if (carries) {
		if (pl.truncate_index >= 0)
			truncate_log(w, node, g, pl.truncate_index);
		if (pl.append_end > pl.append_from)
			append_from_msg(w, node, g, p, &pl);
	}
	host_pump(w, node, g);
}

// ---- Retention. ----

int host_log_start(struct sim_world *w, uint32_t node, uint32_t g,
		   int64_t index)
{
	struct sim_host *h = &w->hosts[node][g];
	const struct sim_batch *b = host_find(h, index);
	OX_ASSERT(b != NULL && index <= h->commit && h->checked_end >= index);
	uint64_t term = b->term;
	int rc = ox_raft_log_start(h->raft, index, term);
	if (rc != 0)
		sim_fail(w, "g%u n%u: log_start(%lld, %llu) in [%lld, %lld]: %d",
			 g, node + 1, (long long)index, (unsigned long long)term,
			 (long long)h->start, (long long)host_log_end(h), rc);
	uint32_t k = first_after(h, index);
	check_committed_prefix(w, g, h->log, k, ox_raft_term(h->raft),
			       "retention");
	memmove(h->log, h->log + k, (h->log_n - k) * sizeof(*h->log));
	h->log_n -= k;
	h->start = index;
	h->start_term = term;
	w->st.log_starts++;
	sim_trace(w, "g%u n%u LOG_START %lld", g, node + 1, (long long)index);
	host_pump(w, node, g);
	return 0;
}
