// SPDX-License-Identifier: Apache-2.0
//
// The simulated network: one set of packet slots per directed link, a
// random delay per packet (so packets reorder), loss and duplication at
// the world's current rates, partitions (a node's side) and one-way link
// cuts, checked when a packet arrives. A delivery takes every packet of
// the same link due within a short window with it, as the broker batches
// traffic between two nodes. It does not model bandwidth: a message's
// size is bounded by the number of batches an APPEND may carry.
#include <string.h>

#include "proto/assert.h"
#include "tests/sim/sim.h"

// Packets due this soon after the one arriving come with it.
#define NET_BATCH_WINDOW 5
// One packet in this many (percent) takes up to five times longer.
#define NET_SLOW_PCT 5

bool net_link_up(const struct sim_world *w, uint32_t from, uint32_t to)
{
	return w->nodes[from].side == w->nodes[to].side &&
	       !w->links[from][to].down;
}

static int64_t delay(struct sim_world *w)
{
	int64_t span = w->k.delay_max - w->k.delay_min + 1;
	int64_t d = w->k.delay_min + (int64_t)sim_rand(w, (uint64_t)span);
	if (sim_rand(w, 100) < NET_SLOW_PCT)
		d *= 1 + (int64_t)sim_rand(w, 5);
	return d;
}

static void enqueue(struct sim_world *w, uint32_t from, uint32_t to,
		    const struct sim_packet *p)
{
	struct sim_link *l = &w->links[from][to];
	for (uint32_t s = 0; s < SIM_LINK_SLOTS; s++) {
		struct sim_packet *q = &l->slots[s];
		if (q->used)
			continue;
		uint32_t gen = q->gen + 1;
		memcpy(q, p, offsetof(struct sim_packet, batches));
		memcpy(q->batches, p->batches, p->batches_n * sizeof(*p->batches));
		q->used = true;
		q->gen = gen;
		q->due = w->now + delay(w);
		ev_push(w, q->due, EV_DELIVER, to, from, s, gen);
		return;
	}
	w->st.drops++; // the link's buffer is full
}

void net_send(struct sim_world *w, uint32_t from, uint32_t g,
	      struct sim_packet *p)
{
	const struct ox_raft_msg *m = &p->m;
	if (m->from != from + 1 || m->to == OX_RAFT_NONE ||
	    m->to > w->k.nodes_n || m->to == from + 1)
		sim_fail(w, "C7: g%u n%u sends type %d from n%llu to n%llu", g,
			 from + 1, m->type, (unsigned long long)m->from,
			 (unsigned long long)m->to);
	if (m->runs_n > OX_RAFT_MSG_RUNS_MAX)
		sim_fail(w, "C7: g%u n%u sends %u runs (R8)", g, from + 1,
			 m->runs_n);
	OX_ASSERT(p->batches_n <= SIM_MSG_BATCHES_MAX);
	uint32_t to = (uint32_t)m->to - 1;
	w->st.messages++;
	bool drop = sim_rand(w, 100) < w->k.drop_pct;
	sim_trace(w, "g%u n%u -> n%u type %d term %llu index %lld ok %d prev "
		  "%lld end %lld commit %lld, %u batches%s", g, from + 1, to + 1,
		  m->type, (unsigned long long)m->term, (long long)m->index,
		  m->ok, (long long)m->prev_index, (long long)m->end_index,
		  (long long)m->commit, p->batches_n, drop ? " LOST" : "");
	if (drop) {
		w->st.drops++;
		return;
	}
	enqueue(w, from, to, p);
	if (sim_rand(w, 100) < w->k.dup_pct) {
		w->st.dups++;
		enqueue(w, from, to, p);
	}
}

// Delivers the packet in `slot` and its link's packets due within the
// window, earliest first.
void net_deliver(struct sim_world *w, uint32_t from, uint32_t to,
		 uint32_t slot, uint32_t gen)
{
	struct sim_link *l = &w->links[from][to];
	OX_ASSERT(slot < SIM_LINK_SLOTS);
	if (!l->slots[slot].used || l->slots[slot].gen != gen)
		return; // went with an earlier batch
	uint32_t batch[SIM_LINK_SLOTS], n = 0;
	batch[n++] = slot;
	for (uint32_t s = 0; s < SIM_LINK_SLOTS; s++) {
		const struct sim_packet *q = &l->slots[s];
		if (s == slot || !q->used || q->due > w->now + NET_BATCH_WINDOW)
			continue;
		uint32_t i = n++;
		while (i > 1 && l->slots[batch[i - 1]].due > q->due) {
			batch[i] = batch[i - 1];
			i--;
		}
		batch[i] = s;
	}
	for (uint32_t i = 0; i < n; i++) {
		struct sim_packet *q = &l->slots[batch[i]];
		// Receiving sends on other links only (to -> *), so q stays put.
		if (w->nodes[to].up && net_link_up(w, from, to))
			host_receive(w, to, q);
		else
			w->st.drops++;
		q->used = false;
	}
}
