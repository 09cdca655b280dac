// SPDX-License-Identifier: Apache-2.0
//
// The simulation's checkers, C1..C12 of sim.h's design notes (C13, the
// liveness bound, is in sim_main.c). Each group keeps a record of its
// committed batches: the first node to report a commit index extends it,
// every later report must agree with it. Checks are incremental (a host
// remembers how far its log was verified) so they can run on every ready
// and after every step without making a run quadratic.
#include <stdio.h>

#include "proto/assert.h"
#include "tests/sim/sim.h"

bool conf_has_voter(const struct ox_raft_conf *c, uint64_t id)
{
	for (uint32_t i = 0; i < c->voters_n; i++)
		if (c->voters[i] == id)
			return true;
	return false;
}

bool conf_has_member(const struct ox_raft_conf *c, uint64_t id)
{
	for (uint32_t i = 0; i < c->learners_n; i++)
		if (c->learners[i] == id)
			return true;
	return conf_has_voter(c, id);
}

static int64_t record_end(const struct sim_group *gr)
{
	return gr->record_n > 0 ? gr->record[gr->record_n - 1].end : 0;
}

// The record entry with this end, or NULL.
static const struct sim_rec *record_find(const struct sim_group *gr,
					 int64_t end)
{
	uint32_t lo = 0, hi = gr->record_n;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (gr->record[mid].end < end)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < gr->record_n && gr->record[lo].end == end ?
		&gr->record[lo] : NULL;
}

bool check_is_committed(const struct sim_world *w, uint32_t g, int64_t end,
			uint64_t term)
{
	const struct sim_group *gr = &w->groups[g];
	if (end == 0)
		return term == 0;
	const struct sim_rec *r = record_find(gr, end);
	return r != NULL && r->term == term;
}

// Removal of nodes is final once the configuration is committed: their
// replicas stop at the end of this step.
static void conf_committed(struct sim_world *w, uint32_t g,
			   const struct ox_raft_conf *c)
{
	for (uint32_t n = 0; n < w->k.nodes_n; n++) {
		struct sim_host *h = &w->hosts[n][g];
		if (h->member && !conf_has_member(c, n + 1))
			h->leaving = true;
	}
}

static void record_add(struct sim_world *w, uint32_t g,
		       const struct sim_batch *b, uint64_t term, const char *why)
{
	struct sim_group *gr = &w->groups[g];
	if (b->base != record_end(gr))
		sim_fail(w, "C2: g%u %s: batch [%lld, %lld) would leave a hole "
			 "after the committed record's end %lld (R5)", g, why,
			 (long long)b->base, (long long)b->end,
			 (long long)record_end(gr));
	if (gr->record_n >= SIM_RECORD_MAX)
		sim_fail(w, "simulator: g%u committed more than %u batches", g,
			 SIM_RECORD_MAX);
	gr->record[gr->record_n++] = (struct sim_rec){
		b->base, b->end, b->term, b->payload, term };
	w->st.commits++;
	if (w->healed && b->payload >= w->healed_payload)
		gr->post_heal_committed = true;
	if (b->is_conf)
		conf_committed(w, g, &b->conf);
}

// Batches known committed: each equals the record, or extends it.
void check_committed_prefix(struct sim_world *w, uint32_t g,
			    const struct sim_batch *b, uint32_t n,
			    uint64_t term, const char *why)
{
	struct sim_group *gr = &w->groups[g];
	for (uint32_t i = 0; i < n; i++) {
		if (b[i].end > record_end(gr)) {
			record_add(w, g, &b[i], term, why);
			continue;
		}
		const struct sim_rec *r = record_find(gr, b[i].end);
		if (r == NULL || r->base != b[i].base || r->term != b[i].term ||
		    r->payload != b[i].payload)
			sim_fail(w, "C2/C4: g%u %s: committed batch [%lld, %lld) "
				 "term %llu payload %llu differs from the record "
				 "(%s term %llu payload %llu) (R3, R5)", g, why,
				 (long long)b[i].base, (long long)b[i].end,
				 (unsigned long long)b[i].term,
				 (unsigned long long)b[i].payload,
				 r ? "same end" : "no batch ending there",
				 r ? (unsigned long long)r->term : 0,
				 r ? (unsigned long long)r->payload : 0);
	}
}

// Index of the first batch of h's log ending after `index`.
static uint32_t pos_after(const struct sim_host *h, int64_t index)
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

// C4: h's log up to its commit equals the record (extending it).
static void verify_to_commit(struct sim_world *w, uint32_t node, uint32_t g,
			     int64_t commit, uint64_t term)
{
	struct sim_host *h = &w->hosts[node][g];
	if (commit <= h->checked_end)
		return;
	if (commit > host_log_end(h))
		sim_fail(w, "C7: g%u n%u commit %lld beyond its log end %lld "
			 "(R6)", g, node + 1, (long long)commit,
			 (long long)host_log_end(h));
	if (commit > h->start && host_find(h, commit) == NULL)
		sim_fail(w, "C7: g%u n%u commit %lld is not a batch end", g,
			 node + 1, (long long)commit);
	int64_t from = h->checked_end > h->start ? h->checked_end : h->start;
	uint32_t i = pos_after(h, from), j = pos_after(h, commit);
	char why[48];
	snprintf(why, sizeof(why), "n%u commit %lld", node + 1, (long long)commit);
	check_committed_prefix(w, g, h->log + i, j - i, term, why);
	h->checked_end = commit;
}

static bool durable_on(const struct sim_world *w, uint32_t node, uint32_t g,
		       const struct sim_rec *r)
{
	const struct sim_host *h = &w->hosts[node][g];
	if (!h->member)
		return false;
	if (r->end <= h->start)
		return true; // in the snapshot or retained prefix
	const struct sim_batch *b = host_find(h, r->end);
	return b != NULL && b->wseq <= h->wseq_synced && b->term == r->term &&
	       b->payload == r->payload;
}

// C5: what the leader acknowledges is durable on a majority of its voters.
static void check_acked(struct sim_world *w, uint32_t node, uint32_t g,
			int64_t from, int64_t to)
{
	const struct sim_group *gr = &w->groups[g];
	const struct ox_raft_conf *c = ox_raft_conf(w->hosts[node][g].raft);
	const struct sim_rec *top = record_find(gr, to);
	if (top == NULL)
		sim_fail(w, "C7: g%u leader n%u commit %lld is no committed "
			 "batch's end", g, node + 1, (long long)to);
	for (uint32_t k = (uint32_t)(top - gr->record) + 1; k > 0; k--) {
		const struct sim_rec *r = &gr->record[k - 1];
		if (r->end <= from)
			break;
		uint32_t held = 0;
		for (uint32_t v = 0; v < c->voters_n; v++) {
			uint32_t n = (uint32_t)c->voters[v] - 1;
			// A wiped voter still rejoining stands for the copy
			// it lost: it votes for nobody until it holds the
			// log again (R9).
			held += durable_on(w, n, g, r) ||
				host_rejoining(&w->hosts[n][g]);
		}
		if (held < c->voters_n / 2 + 1)
			sim_fail(w, "C5: g%u leader n%u acknowledges [%lld, %lld) "
				 "durable on %u of %u voters (R5)", g, node + 1,
				 (long long)r->base, (long long)r->end, held,
				 c->voters_n);
	}
}

// C3: a new leader holds every committed entry.
static void check_new_leader(struct sim_world *w, uint32_t node, uint32_t g,
			     uint64_t term)
{
	struct sim_group *gr = &w->groups[g];
	struct sim_host *h = &w->hosts[node][g];
	if (term >= SIM_TERMS_MAX)
		sim_fail(w, "simulator: g%u term %llu beyond the table", g,
			 (unsigned long long)term);
	uint64_t *l = &gr->leader_of_term[term];
	if (*l != 0 && *l != node + 1)
		sim_fail(w, "C1: g%u term %llu has two leaders, n%llu and n%u "
			 "(R1)", g, (unsigned long long)term,
			 (unsigned long long)*l, node + 1);
	*l = node + 1;
	w->st.elections++;
	for (uint32_t k = 0; k < gr->record_n; k++) {
		const struct sim_rec *r = &gr->record[k];
		if (r->commit_term >= term || r->end <= h->start)
			continue;
		const struct sim_batch *b = host_find(h, r->end);
		if (b == NULL || b->term != r->term || b->payload != r->payload)
			sim_fail(w, "C3: g%u n%u leader of term %llu lacks [%lld, "
				 "%lld) term %llu, committed by term %llu (R4)",
				 g, node + 1, (unsigned long long)term,
				 (long long)r->base, (long long)r->end,
				 (unsigned long long)r->term,
				 (unsigned long long)r->commit_term);
	}
}

void check_ready(struct sim_world *w, uint32_t node, uint32_t g,
		 const struct ox_raft_ready *rd)
{
	struct sim_host *h = &w->hosts[node][g];
	if (rd->msgs_n > OX_RAFT_OUTBOX_MAX)
		sim_fail(w, "C7: g%u n%u ready holds %u messages (R8)", g,
			 node + 1, rd->msgs_n);
	if (rd->commit < h->commit)
		sim_fail(w, "C6: g%u n%u commit went back from %lld to %lld (R5)",
			 g, node + 1, (long long)h->commit, (long long)rd->commit);
	if (rd->role_changed || rd->term != h->term)
		sim_trace(w, "g%u n%u ROLE %d term %llu leader %llu", g,
			  node + 1, rd->role, (unsigned long long)rd->term,
			  (unsigned long long)rd->leader);
	bool new_leader = rd->role == OX_RAFT_LEADER &&
			  (h->role != OX_RAFT_LEADER || h->term != rd->term);
	if (new_leader)
		check_new_leader(w, node, g, rd->term);
	int64_t before = h->commit;
	verify_to_commit(w, node, g, rd->commit, rd->term);
	if (rd->commit > before && rd->role == OX_RAFT_LEADER)
		check_acked(w, node, g, before, rd->commit);
	if (rd->commit != before)
		sim_trace(w, "g%u n%u COMMIT %lld", g, node + 1,
			  (long long)rd->commit);
	h->commit = rd->commit;
	h->role = rd->role;
	h->term = rd->term;
}

// C10, C12 on one host, and C4 up to what raft says now.
void check_host(struct sim_world *w, uint32_t node, uint32_t g)
{
	struct sim_host *h = &w->hosts[node][g];
	if (h->raft == NULL)
		return;
	if (ox_raft_last_index(h->raft) != host_log_end(h) ||
	    ox_raft_start_index(h->raft) != h->start)
		sim_fail(w, "C10: g%u n%u raft's log [%lld, %lld) but the host's "
			 "[%lld, %lld)", g, node + 1,
			 (long long)ox_raft_start_index(h->raft),
			 (long long)ox_raft_last_index(h->raft),
			 (long long)h->start, (long long)host_log_end(h));
	if (ox_raft_role(h->raft) != OX_RAFT_LEADER)
		return;
	// Beyond what is known committed: a restarted leader's own commit
	// may lag the group's.
	int64_t committed = record_end(&w->groups[g]);
	if (committed < h->commit)
		committed = h->commit;
	uint32_t confs = 0;
	for (uint32_t i = h->log_n; i > 0 && h->log[i - 1].end > committed; i--)
		confs += h->log[i - 1].is_conf;
	if (confs > 1)
		sim_fail(w, "C12: g%u leader n%u has %u configuration changes "
			 "beyond the commit %lld (R7)", g, node + 1, confs,
			 (long long)committed);
}

void check_step(struct sim_world *w)
{
	for (uint32_t n = 0; n < w->k.nodes_n; n++)
		for (uint32_t g = 0; g < w->k.groups_n; g++)
			check_host(w, n, g);
}
