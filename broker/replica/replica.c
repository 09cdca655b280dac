// SPDX-License-Identifier: Apache-2.0
//
// A partition replica: the host of one Raft group over one partition log
// (replica.h has the design notes and invariants P1..P6). The flow:
//
//   leader:   ox_replica_append -> verify, ox_raft_propose (term), stamp a
//             copy (kept in the cache for APPENDs), queue OP_APPEND;
//   follower: ox_replica_deliver -> check the APPEND's batches, ox_raft_step,
//             queue what the plan says (OP_TRUNCATE, OP_APPEND, OP_RESET);
//   both:     pump() submits queued operations to the log in order (P3);
//             append_done() reports durability (ox_raft_persisted, P2);
//             process_ready() persists the hard state (P1), sends the
//             messages (reading batches for APPENDs from the cache or the
//             log), and completes waiters when the commit index moves (P4).
#include "broker/replica/replica_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "broker/io/io.h"
#include "broker/log/log.h"
#include "broker/slog/slog.h"
#include "proto/assert.h"
#include "proto/batch.h"
#include "proto/error.h"

// Queued log operations, at most: the log takes OX_LOG_APPENDS_MAX in
// flight; twice that covers bursts while it drains.
#define OPS_MAX (2 * OX_LOG_APPENDS_MAX)
// Batches one APPEND carries from the cache, at most.
#define SEND_BATCHES_MAX 64u
// Loop runs ox_replica_close waits for appends in flight, at most (each
// run completes at least one operation while any is in flight).
#define CLOSE_RUNS_MAX 100000
// Delay before trying a busy log again.
#define RETRY_NS 1000000ull

static void process_ready(struct ox_replica *rep);
static void pump(struct ox_replica *rep);
static void arm_retry(struct ox_replica *rep, uint64_t ns);
static void op_free(struct op *op);

// ---------------------------------------------------------------------
// Cache of proposed batches

static void cached_unref(struct cached *c)
{
	OX_ASSERT(c->refs > 0);
	if (--c->refs == 0) {
		free(c->buf);
		free(c);
	}
}

// Drops the cache's hold on batches every follower has (or, over the
// budget, on the oldest ones: followers then read the log). A batch the
// log has not written stays: nothing else could serve it yet.
static void cache_trim(struct ox_replica *rep)
{
	int64_t low = INT64_MAX;
	int64_t written = ox_log_written_offset(rep->log);
	const struct ox_raft_conf *conf = ox_raft_conf(rep->raft);

	for (uint32_t i = 0; i < conf->voters_n + conf->learners_n; i++) {
		uint64_t id = i < conf->voters_n ? conf->voters[i] :
						   conf->learners[i - conf->voters_n];
		int64_t m = ox_raft_match(rep->raft, id);

		if (id != rep->opts.node_id && m < low)
			low = m;
	}
	// Only a leader serves APPENDs, and a replica that lost the lead may
	// see its log cut under its cached batches: it keeps none (appends in
	// flight hold their own references).
	bool leader = ox_raft_role(rep->raft) == OX_RAFT_LEADER;

	while (rep->cache_head != NULL) {
		struct cached *c = rep->cache_head;

		if (leader && (c->end > written ||
			       (c->end > low &&
				rep->cache_bytes <= REPLICA_CACHE_BYTES_MAX)))
			break;
		rep->cache_head = c->next;
		if (rep->cache_head == NULL)
			rep->cache_tail = NULL;
		rep->cache_bytes -= c->len;
		cached_unref(c);
	}
}

struct cache_send {
	uint32_t n;
	struct cached *held[SEND_BATCHES_MAX];
};

static void cache_send_release(void *arg, int sent)
{
	struct cache_send *s = arg;

	(void)sent;
	for (uint32_t i = 0; i < s->n; i++)
		cached_unref(s->held[i]);
	free(s);
}

static void buf_release(void *arg, int sent)
{
	(void)sent;
	free(arg);
}

// ---------------------------------------------------------------------
// Sending: filling APPENDs from the cache or the log

static size_t append_bytes_max(const struct ox_replica *rep)
{
	return rep->opts.append_bytes_max ? rep->opts.append_bytes_max :
					    (1u << 20);
}

// From the cache: returns 1 when sent (or dropped as stale), 0 when the
// cache does not hold prev_index.
static int send_from_cache(struct ox_replica *rep, struct ox_raft_msg *m)
{
	struct cached *c = rep->cache_head, *first, *last;
	struct iovec iov[SEND_BATCHES_MAX];
	struct cache_send *s;
	size_t bytes = 0;
	uint32_t n = 0;
	int rc;

	while (c != NULL && c->end <= m->prev_index)
		c = c->next;
	if (c == NULL || c->base > m->prev_index)
		return 0;
	first = last = c;
	for (; c != NULL && n < SEND_BATCHES_MAX &&
	       (n == 0 || (c->base == last->end &&
			   bytes + c->len <= append_bytes_max(rep)));
	     c = c->next) {
		last = c;
		bytes += c->len;
		n++;
	}
	rc = ox_raft_append_fill(rep->raft, m, first->base, last->end);
	if (rc < 0)
		return 1; // stale: raft no longer wants it
	s = malloc(sizeof(*s));
	if (s == NULL) {
		ox_raft_append_dropped(rep->raft, m);
		return 1;
	}
	s->n = 0;
	for (c = first; s->n < n && c->end <= m->end_index; c = c->next) {
		iov[s->n].iov_base = c->buf;
		iov[s->n].iov_len = c->len;
		s->held[s->n++] = c;
		c->refs++;
	}
	if (s->n == 0) {
		// Raft cut the range inside the first batch (term changes
		// within it): nothing whole to send; asked again later.
		free(s);
		ox_raft_append_dropped(rep->raft, m);
		return 1;
	}
	rc = rep->opts.hooks.send(rep->opts.hooks.arg, m, iov, (int)s->n,
				  cache_send_release, s);
	if (rc < 0) {
		cache_send_release(s, 0);
		ox_raft_append_dropped(rep->raft, m);
	}
	return 1;
}

// From the log (a follower far behind, or a batch no longer cached).
static void send_from_log(struct ox_replica *rep, struct ox_raft_msg *m)
{
	size_t cap = append_bytes_max(rep), len = 0, pos = 0, cut = 0;
	struct ox_batch_header h;
	int64_t base = -1, end = -1;
	struct iovec iov;
	uint8_t *buf = malloc(cap);
	int rc;

	if (buf == NULL)
		goto drop;
	rc = ox_log_read(rep->log, m->prev_index, cap,
			 ox_log_written_offset(rep->log), buf, cap, &len);
	if (rc == -ENOSPC) {
		// One batch bigger than an APPEND's budget: send it alone.
		uint8_t *big = realloc(buf, OX_BATCH_BYTES_MAX);

		if (big == NULL)
			goto drop;
		buf = big;
		cap = OX_BATCH_BYTES_MAX;
		rc = ox_log_read(rep->log, m->prev_index, 1,
				 ox_log_written_offset(rep->log), buf, cap,
				 &len);
	}
	if (rc < 0 || len == 0)
		goto drop; // not written yet, or gone: asked again later
	while (ox_batch_next(buf, len, &pos, &h) == 1) {
		if (base < 0)
			base = h.base_offset;
		end = h.base_offset + h.last_offset_delta + 1;
	}
	if (base < 0 || ox_raft_append_fill(rep->raft, m, base, end) < 0) {
		free(buf);
		if (base < 0)
			ox_raft_append_dropped(rep->raft, m);
		return;
	}
	// Only whole batches up to the end raft settled on.
	pos = 0;
	while (ox_batch_next(buf, len, &pos, &h) == 1 &&
	       h.base_offset + h.last_offset_delta + 1 <= m->end_index)
		cut = pos;
	iov.iov_base = buf;
	iov.iov_len = cut;
	if (rep->opts.hooks.send(rep->opts.hooks.arg, m, &iov, 1, buf_release,
				 buf) < 0) {
		free(buf);
		ox_raft_append_dropped(rep->raft, m);
	}
	return;
drop:
	free(buf);
	ox_raft_append_dropped(rep->raft, m);
}

// A SNAPSHOT carries the owner's state snapshot, when it keeps one (P6).
static void send_snapshot(struct ox_replica *rep, const struct ox_raft_msg *m)
{
	ox_replica_release_cb release = NULL;
	void *release_arg = NULL;
	struct iovec raw;
	int rc;

	rc = rep->opts.hooks.snapshot_get(rep->opts.hooks.arg, &raw, &release,
					  &release_arg);
	if (rc < 0) {
		ox_slog(OX_SLOG_WARN, "no snapshot to send to=%llu error=%s",
			(unsigned long long)m->to, ox_strerror_name(rc));
		return;
	}
	rc = rep->opts.hooks.send(rep->opts.hooks.arg, m, &raw, 1, release,
				  release_arg);
	if (rc < 0 && release != NULL)
		release(release_arg, 0);
}

static void send_msg(struct ox_replica *rep, const struct ox_raft_msg *in)
{
	struct ox_raft_msg m = *in;

	if (m.type == OX_RAFT_MSG_SNAPSHOT &&
	    rep->opts.hooks.snapshot_get != NULL) {
		send_snapshot(rep, &m);
		return;
	}
	if (!m.wants_entries) {
		rep->opts.hooks.send(rep->opts.hooks.arg, &m, NULL, 0, NULL,
				     NULL);
		return;
	}
	if (!send_from_cache(rep, &m))
		send_from_log(rep, &m);
}

// ---------------------------------------------------------------------
// Waiters, roles and commits

static void waiter_finish(struct waiter *w, int res)
{
	if (w->cb != NULL)
		w->cb(w->arg, res, w->base, w->last);
	free(w);
}

// Only waiters whose batch is a cached copy wait here (the only voter's
// waiters ride on their op), so failing them never frees a batch the log
// still writes.
static void fail_acks(struct ox_replica *rep, int res)
{
	while (rep->acks_head != NULL) {
		struct waiter *w = rep->acks_head;

		rep->acks_head = w->next;
		if (rep->acks_head == NULL)
			rep->acks_tail = NULL;
		waiter_finish(w, res);
	}
}

// Remembers the bytes of one appended batch for committed_bytes.
static void sizes_push(struct ox_replica *rep, int64_t end, size_t len)
{
	struct size_mark *m;

	rep->appended_bytes += len;
	if (rep->sizes_n == REPLICA_SIZES_MAX) {
		// Full: the newest mark stretches to cover this batch too.
		m = &rep->sizes[(rep->sizes_head + rep->sizes_n - 1) %
				REPLICA_SIZES_MAX];
	} else {
		m = &rep->sizes[(rep->sizes_head + rep->sizes_n) %
				REPLICA_SIZES_MAX];
		rep->sizes_n++;
	}
	m->end = end;
	m->bytes = rep->appended_bytes;
}

// The log was cut at `at`: marks of the batches dropped go (P5's count
// never runs ahead).
static void sizes_cut(struct ox_replica *rep, int64_t at)
{
	while (rep->sizes_n > 0) {
		struct size_mark *m = &rep->sizes[(rep->sizes_head +
						  rep->sizes_n - 1) %
						 REPLICA_SIZES_MAX];

		if (m->end <= at)
			break;
		rep->sizes_n--;
	}
	rep->appended_bytes = rep->sizes_n > 0 ?
		rep->sizes[(rep->sizes_head + rep->sizes_n - 1) %
			   REPLICA_SIZES_MAX].bytes :
		rep->committed_bytes;
}

static void sizes_commit(struct ox_replica *rep, int64_t hw)
{
	while (rep->sizes_n > 0 && rep->sizes[rep->sizes_head].end <= hw) {
		rep->committed_bytes = rep->sizes[rep->sizes_head].bytes;
		rep->sizes_head = (rep->sizes_head + 1) % REPLICA_SIZES_MAX;
		rep->sizes_n--;
	}
}

static void update_high_watermark(struct ox_replica *rep)
{
	int64_t hw = ox_raft_commit(rep->raft);
	int64_t written = ox_log_written_offset(rep->log);
	uint64_t bytes = rep->committed_bytes;
	bool moved;

	if (hw > written)
		hw = written; // P5: only what this node can serve
	moved = hw > rep->high_watermark;
	if (moved)
		rep->high_watermark = hw;
	// A batch may turn durable here after the followers committed it:
	// its bytes count from now.
	sizes_commit(rep, rep->high_watermark);
	if ((moved || bytes != rep->committed_bytes) && !rep->opening &&
	    rep->opts.hooks.committed != NULL)
		rep->opts.hooks.committed(rep->opts.hooks.arg,
					  rep->high_watermark);
}

static void committed(struct ox_replica *rep, int64_t commit)
{
	while (rep->acks_head != NULL && rep->acks_head->last < commit) {
		struct waiter *w = rep->acks_head;

		rep->acks_head = w->next;
		if (rep->acks_head == NULL)
			rep->acks_tail = NULL;
		waiter_finish(w, 0); // P4
	}
	update_high_watermark(rep);
}

// Control batches (invisible to consumers) carry one record whose key
// says what it is: a new leader's no-op, or a membership change whose
// value is the new membership (ox_replica_conf_encode).
static const char NOOP_KEY[] = "oxbow.leader";
static const char CONF_KEY[] = "oxbow.conf";

static void control_batch(uint8_t *buf, size_t cap, const char *key,
			  const uint8_t *value, int32_t value_len,
			  size_t *len)
{
	struct ox_batch_params params = { .attributes = OX_BATCH_ATTR_CONTROL };
	struct ox_record rec = {
		.key = (const uint8_t *)key,
		.key_len = (int32_t)strlen(key),
		.value = value,
		.value_len = value_len,
	};
	struct ox_batch_builder b;
	int rc;

	rc = ox_batch_builder_init(&b, buf, cap, &params);
	if (rc == 0)
		rc = ox_batch_builder_add(&b, &rec);
	if (rc == 0)
		rc = ox_batch_builder_finish(&b, len);
	OX_ASSERT(rc == 0); // the callers' buffers fit their records
}

// Whether one verified batch is a membership change: 1 with *conf, 0 when
// it is not one, -OX_ECORRUPT when it says it is but its membership does
// not decode or is not one Raft takes (so a peer's bad batch is refused
// with its APPEND, before Raft counts it).
static int conf_of(const uint8_t *batch, size_t len,
		   const struct ox_batch_header *h, struct ox_raft_conf *conf)
{
	struct ox_batch_iter it;
	struct ox_record r;

	if (!(h->attributes & OX_BATCH_ATTR_CONTROL) ||
	    ox_batch_iter_init(&it, batch, len) < 0 ||
	    ox_batch_iter_next(&it, &r) != 1 ||
	    r.key_len != (int32_t)(sizeof(CONF_KEY) - 1) ||
	    memcmp(r.key, CONF_KEY, sizeof(CONF_KEY) - 1) != 0)
		return 0;
	if (r.value_len < 0 ||
	    ox_replica_conf_decode(r.value, (size_t)r.value_len, conf) < 0 ||
	    !ox_raft_conf_valid(conf))
		return -OX_ECORRUPT;
	return 1;
}

static int append_leader(struct ox_replica *rep, void *batch, size_t len,
			 const struct ox_raft_conf *conf, struct waiter *w);

// A new leader commits its term with a no-op: entries of earlier terms
// commit with it.
static void append_noop(struct ox_replica *rep)
{
	uint8_t buf[OX_BATCH_HEADER_BYTES + 64];
	size_t len;
	int rc;

	control_batch(buf, sizeof(buf), NOOP_KEY, NULL, -1, &len);
	rc = append_leader(rep, buf, len, NULL, NULL);
	if (rc < 0)
		ox_slog(OX_SLOG_WARN, "leader could not append its no-op "
			"error=%s", ox_strerror_name(rc));
	else
		pump(rep);
}

static bool alone(const struct ox_replica *rep)
{
	const struct ox_raft_conf *c = ox_raft_conf(rep->raft);

	return c->voters_n == 1 && c->voters[0] == rep->opts.node_id;
}

static void role_changed(struct ox_replica *rep,
			 const struct ox_raft_ready *rd)
{
	if (rd->role != OX_RAFT_LEADER)
		fail_acks(rep, -OX_ENOTLEADER); // P4
	if (rep->opts.hooks.role != NULL && !rep->opening)
		rep->opts.hooks.role(rep->opts.hooks.arg, rd->role, rd->term,
				     rd->leader);
	// The only voter commits its log without one (raft.h, R5), so a
	// single-replica partition keeps dense offsets across restarts.
	if (rd->role == OX_RAFT_LEADER && !alone(rep))
		append_noop(rep);
}

static int persist_hard(struct ox_replica *rep, const struct ox_raft_hard *h)
{
	int rc;

	rep->state.hard = *h;
	rc = ox_replica_state_write(rep->state_path, &rep->state);
	if (rc < 0) {
		ox_slog(OX_SLOG_ERROR, "replica stopped: raft state not saved "
			"path=%s error=%s", rep->state_path,
			ox_strerror_name(rc));
		rep->failed = true;
		arm_retry(rep, 0); // fails the waiters outside any call
	}
	return rc;
}

static void process_ready(struct ox_replica *rep)
{
	if (rep->in_ready || rep->failed)
		return; // the running loop picks up what this call added
	rep->in_ready = true;
	for (int round = 0; round < 64 && !rep->failed; round++) {
		struct ox_raft_msg msgs[OX_RAFT_OUTBOX_MAX];
		struct ox_raft_ready rd;

		ox_raft_ready(rep->raft, &rd);
		if (rd.hard_changed && persist_hard(rep, &rd.hard) < 0)
			break; // P1: nothing that depends on it goes out
		// Filling an APPEND calls back into raft, which may queue more:
		// work on a copy.
		memcpy(msgs, rd.msgs, rd.msgs_n * sizeof(*msgs));
		for (uint32_t i = 0; i < rd.msgs_n; i++)
			send_msg(rep, &msgs[i]);
		if (rd.role_changed)
			role_changed(rep, &rd);
		if (rd.commit_changed)
			committed(rep, rd.commit);
		if (rd.msgs_n == 0 && !rd.hard_changed && !rd.role_changed &&
		    !rd.commit_changed)
			break;
	}
	rep->in_ready = false;
	cache_trim(rep);
}

// ---------------------------------------------------------------------
// Log operations

struct retry {
	struct ox_replica *rep; // NULL once the replica closed
};

// Fails what waits on a replica that stopped: acks=all waiters on cached
// copies, and the operations never handed to the log (their batches are
// free). Appends in flight are answered by their own callbacks, which the
// log runs (with the error, once it failed) when it is done with the bytes.
static void fail_all(struct ox_replica *rep, int res)
{
	fail_acks(rep, res);
	while (rep->ops_head != NULL) {
		struct op *op = rep->ops_head;

		rep->ops_head = op->next;
		rep->ops_n--;
		if (op->waiter != NULL)
			waiter_finish(op->waiter, res);
		op_free(op);
	}
	rep->ops_tail = NULL;
}

static void retry_fired(void *arg, int res)
{
	struct retry *t = arg;
	struct ox_replica *rep = t->rep;

	(void)res;
	free(t);
	if (rep == NULL)
		return;
	rep->retry_armed = false;
	rep->retry = NULL;
	if (rep->failed) {
		fail_all(rep, -OX_EFAILED);
		return;
	}
	pump(rep);
	process_ready(rep);
	if (rep->acks_head != NULL)
		committed(rep, ox_raft_commit(rep->raft)); // duplicates
}

static void arm_retry(struct ox_replica *rep, uint64_t ns)
{
	struct retry *t;

	if (rep->retry_armed)
		return;
	t = malloc(sizeof(*t));
	if (t == NULL)
		return; // the next tick pumps again
	t->rep = rep;
	if (ox_io_timer(rep->io, ns, retry_fired, t) < 0) {
		free(t);
		return;
	}
	rep->retry_armed = true;
	rep->retry = t;
}

static void fail(struct ox_replica *rep, int rc, const char *what)
{
	if (!rep->failed)
		ox_slog(OX_SLOG_ERROR, "replica stopped: %s failed error=%s",
			what, ox_strerror_name(rc));
	rep->failed = true;
	arm_retry(rep, 0); // fails the waiters outside any caller's call
}

static void op_free(struct op *op)
{
	if (op->owned)
		free(op->batch);
	else if (op->cached != NULL)
		cached_unref(op->cached);
	free(op);
}

static void inflight_remove(struct ox_replica *rep, struct op *op)
{
	if (op->prev != NULL)
		op->prev->next = op->next;
	else
		rep->inflight = op->next;
	if (op->next != NULL)
		op->next->prev = op->prev;
	rep->inflight_n--;
}

static void append_done(void *arg, int res, int64_t base, int64_t last)
{
	struct op *op = arg;
	struct ox_replica *rep = op->rep;

	if (rep == NULL) {
		// The replica closed first; the log is done with the batch.
		if (op->waiter != NULL)
			waiter_finish(op->waiter, res < 0 ? res : -OX_ECLOSED);
		op_free(op);
		return;
	}
	inflight_remove(rep, op);
	if (res < 0) {
		if (op->waiter != NULL)
			waiter_finish(op->waiter, res);
		op_free(op);
		fail(rep, res, "log append");
		return;
	}
	OX_ASSERT(last + 1 == op->end); // P2
	sizes_push(rep, op->end, op->len);
	ox_raft_persisted(rep->raft, last + 1, op->batch_term);
	if (op->waiter != NULL)
		waiter_finish(op->waiter, 0); // acks=leader or none
	(void)base;
	op_free(op);
	update_high_watermark(rep);
	pump(rep);
	process_ready(rep);
}

static void ops_push(struct ox_replica *rep, struct op *op)
{
	op->next = NULL;
	op->rep = rep;
	if (rep->ops_tail != NULL)
		rep->ops_tail->next = op;
	else
		rep->ops_head = op;
	rep->ops_tail = op;
	rep->ops_n++;
}

static int op_submit(struct ox_replica *rep, struct op *op)
{
	switch (op->kind) {
	case OP_APPEND:
		return ox_log_append(rep->log, op->batch, op->len, 0,
				     OX_LOG_APPEND_KEEP_OFFSETS, append_done,
				     op, NULL);
	case OP_TRUNCATE:
		return ox_log_truncate(rep->log, op->at);
	case OP_RESET:
		return ox_log_reset(rep->log, op->at);
	}
	return -EINVAL;
}

// The log restarted at op->at: the state file records the new start
// and the term before it, so the next open knows it (else Raft would
// take the term for 0, refuse the leader's next APPEND there and need
// another snapshot), and Raft learns the reset log is durable.
static int reset_done(struct ox_replica *rep, const struct op *op)
{
	int rc;

	rep->state.log_start = op->at;
	rep->state.log_start_term = op->term;
	rc = ox_replica_state_write(rep->state_path, &rep->state);
	if (rc < 0) {
		fail(rep, rc, "saving the log start");
		return rc;
	}
	ox_raft_persisted(rep->raft, op->at, op->term);
	return 0;
}

static void pump(struct ox_replica *rep)
{
	while (rep->ops_head != NULL && !rep->failed) {
		struct op *op = rep->ops_head;
		int rc;

		if (op->kind != OP_APPEND && rep->inflight_n > 0)
			return; // P3: append_done pumps again
		rc = op_submit(rep, op);
		if (rc == -EBUSY) {
			arm_retry(rep, RETRY_NS);
			return;
		}
		rep->ops_head = op->next;
		if (rep->ops_head == NULL)
			rep->ops_tail = NULL;
		rep->ops_n--;
		if (rc < 0) {
			if (op->waiter != NULL)
				waiter_finish(op->waiter, rc);
			op_free(op);
			fail(rep, rc, "log operation");
			return;
		}
		if (op->kind == OP_APPEND) {
			op->prev = NULL;
			op->next = rep->inflight;
			if (rep->inflight != NULL)
				rep->inflight->prev = op;
			rep->inflight = op;
			rep->inflight_n++;
			continue;
		}
		sizes_cut(rep, op->at);
		if (op->kind == OP_RESET && reset_done(rep, op) < 0) {
			op_free(op);
			return;
		}
		op_free(op);
	}
}

// ---------------------------------------------------------------------
// Leader appends

static void waiter_attach(struct ox_replica *rep, struct op *op,
			  struct waiter *w, int64_t base, int64_t end)
{
	if (w == NULL)
		return;
	w->base = base;
	w->last = end - 1;
	if (w->acks == OX_REPLICA_ACKS_ALL) {
		if (rep->acks_tail != NULL)
			rep->acks_tail->next = w;
		else
			rep->acks_head = w;
		rep->acks_tail = w;
	} else {
		op->waiter = w;
	}
}

// Remembers an idempotent producer's batch that entered the log at base
// (D1 in producers.h). Without memory the producer is forgotten, which
// costs the dedup of its retries, never a record.
static void producers_note(struct ox_replica *rep, struct ox_batch_header h,
			   int64_t base)
{
	h.base_offset = base;
	if (ox_producers_record(rep->producers, &h) < 0)
		ox_slog(OX_SLOG_WARN, "producer state not kept: out of memory "
			"producer_id=%lld", (long long)h.producer_id);
}

// A batch of an idempotent producer: a retry of one stored already gets
// the offsets of the stored copy once they are committed (whatever the
// acks: the copy may come from an earlier leader), without a second
// append; a gap or a stale epoch is refused. Returns 1 when w waits for
// the stored copy, 0 to append, or a negative error.
static int dedup(struct ox_replica *rep, const struct ox_batch_header *h,
		 struct waiter *w)
{
	int64_t base = -1, last = -1;
	int rc = ox_producers_check(rep->producers, h, &base, &last);

	if (rc != OX_PRODUCERS_DUPLICATE)
		return rc;
	if (w == NULL)
		return -OX_EDUPLICATE;
	w->base = base;
	w->last = last;
	if (rep->acks_tail != NULL)
		rep->acks_tail->next = w;
	else
		rep->acks_head = w;
	rep->acks_tail = w;
	if (last < ox_raft_commit(rep->raft))
		arm_retry(rep, 0); // answered from the loop, not this call
	return 1;
}

// Raft's term for a batch ending at end: a membership change when conf.
static int propose(struct ox_replica *rep, int64_t end,
		   const struct ox_raft_conf *conf, uint64_t *term)
{
	if (conf != NULL)
		return ox_raft_propose_conf(rep->raft, end, conf, term);
	return ox_raft_propose(rep->raft, end, term);
}

// The only voter: no follower needs a copy, and every callback runs once
// the log is done with the batch (its commit comes from its own append),
// so the caller's bytes are appended in place.
static int append_alone(struct ox_replica *rep, void *batch, size_t len,
			const struct ox_batch_header *h,
			const struct ox_raft_conf *conf, struct waiter *w)
{
	int64_t base = ox_raft_last_index(rep->raft);
	int64_t end = base + h->last_offset_delta + 1;
	struct op *op = calloc(1, sizeof(*op));
	uint64_t term;
	int rc;

	if (op == NULL)
		return -ENOMEM;
	if (w == NULL) {
		// A control batch: the log takes a copy of its own.
		void *copy = malloc(len);

		if (copy == NULL) {
			free(op);
			return -ENOMEM;
		}
		batch = memcpy(copy, batch, len);
		op->owned = true;
	}
	rc = propose(rep, end, conf, &term);
	if (rc < 0) {
		if (op->owned)
			free(batch);
		free(op);
		return rc;
	}
	ox_batch_stamp(batch, base, term);
	producers_note(rep, *h, base);
	op->kind = OP_APPEND;
	op->batch = batch;
	op->len = len;
	op->batch_term = term;
	op->end = end;
	if (w != NULL) {
		// The caller's bytes are the log's until the append is done:
		// its callback answers every acks level (the only voter
		// commits in that same callback, before the waiter runs).
		w->base = base;
		w->last = end - 1;
		op->waiter = w;
	}
	ops_push(rep, op);
	return 0;
}

// Proposes one verified batch and queues its append (the copy in the
// cache, stamped with its offsets and term). conf: the batch is this
// membership change. w may be NULL (control batches).
static int append_leader(struct ox_replica *rep, void *batch, size_t len,
			 const struct ox_raft_conf *conf, struct waiter *w)
{
	struct ox_batch_header h;
	struct cached *c;
	struct op *op;
	uint64_t term;
	int64_t base = ox_raft_last_index(rep->raft);
	int rc;

	if (rep->failed)
		return -OX_EFAILED;
	if (ox_raft_role(rep->raft) != OX_RAFT_LEADER)
		return -OX_ENOTLEADER;
	if (rep->ops_n >= OPS_MAX)
		return -EBUSY;
	rc = ox_batch_verify(batch, len, &h);
	if (rc < 0 || h.length != len)
		return -OX_ECORRUPT;
	if (ox_producers_idempotent(&h)) {
		rc = dedup(rep, &h, w);
		if (rc != 0)
			return rc < 0 ? rc : 0;
	}
	if (alone(rep))
		return append_alone(rep, batch, len, &h, conf, w);
	c = calloc(1, sizeof(*c));
	op = calloc(1, sizeof(*op));
	if (c == NULL || op == NULL || (c->buf = malloc(len)) == NULL) {
		free(c);
		free(op);
		return -ENOMEM;
	}
	rc = propose(rep, base + h.last_offset_delta + 1, conf, &term);
	if (rc < 0) {
		free(c->buf);
		free(c);
		free(op);
		return rc;
	}
	memcpy(c->buf, batch, len);
	ox_batch_stamp(c->buf, base, term);
	producers_note(rep, h, base);
	c->len = len;
	c->base = base;
	c->end = base + h.last_offset_delta + 1;
	c->refs = 2; // the cache's and the append's
	if (rep->cache_tail != NULL)
		rep->cache_tail->next = c;
	else
		rep->cache_head = c;
	rep->cache_tail = c;
	rep->cache_bytes += len;
	op->kind = OP_APPEND;
	op->batch = c->buf;
	op->len = len;
	op->cached = c;
	op->batch_term = term;
	op->end = c->end;
	waiter_attach(rep, op, w, base, c->end);
	ops_push(rep, op);
	return 0;
}

int ox_replica_append(struct ox_replica *rep, void *batch, size_t len,
		      enum ox_replica_acks acks, ox_replica_append_cb cb,
		      void *arg)
{
	struct waiter *w;
	int rc;

	OX_ASSERT(rep != NULL);
	if (batch == NULL || cb == NULL || acks > OX_REPLICA_ACKS_ALL)
		return -EINVAL;
	w = calloc(1, sizeof(*w));
	if (w == NULL)
		return -ENOMEM;
	w->acks = acks;
	w->cb = cb;
	w->arg = arg;
	rc = append_leader(rep, batch, len, NULL, w);
	if (rc < 0) {
		free(w);
		return rc;
	}
	pump(rep);
	process_ready(rep);
	return 0;
}

int ox_replica_change_conf(struct ox_replica *rep,
			   const struct ox_raft_conf *conf)
{
	uint8_t value[REPLICA_CONF_BYTES_MAX];
	uint8_t buf[OX_BATCH_HEADER_BYTES + REPLICA_CONF_BYTES_MAX + 64];
	size_t len;
	int n, rc;

	OX_ASSERT(rep != NULL);
	if (conf == NULL)
		return -EINVAL;
	n = ox_replica_conf_encode(conf, value, sizeof(value));
	if (n < 0)
		return -EINVAL;
	control_batch(buf, sizeof(buf), CONF_KEY, value, n, &len);
	rc = append_leader(rep, buf, len, conf, NULL);
	if (rc < 0)
		return rc;
	pump(rep);
	process_ready(rep);
	return 0;
}

// ---------------------------------------------------------------------
// Follower input

// An APPEND's bytes must be exactly its entries: whole batches that pass
// their checksums, from prev_index to end_index without a gap, each of the
// term the message gives it, membership changes whose membership decodes. Raft would otherwise count what the log
// cannot take (P2).
static int check_entries(const struct ox_raft_msg *m, const uint8_t *raw,
			 size_t raw_len)
{
	struct ox_batch_header h;
	int64_t next = m->prev_index;
	size_t pos = 0;

	if (m->type != OX_RAFT_MSG_APPEND || m->end_index == m->prev_index)
		return raw_len == 0 ? 0 : -OX_ECORRUPT;
	if (m->runs_n == 0)
		return -OX_ECORRUPT;
	while (pos < raw_len) {
		size_t at = pos;

		struct ox_raft_conf conf;

		if (ox_batch_next(raw, raw_len, &pos, &h) != 1 ||
		    ox_batch_verify(raw + at, pos - at, NULL) < 0 ||
		    h.base_offset != next ||
		    h.term != ox_raft_msg_term_at(m, h.base_offset) ||
		    conf_of(raw + at, pos - at, &h, &conf) < 0)
			return -OX_ECORRUPT;
		next = h.base_offset + h.last_offset_delta + 1;
	}
	return next == m->end_index ? 0 : -OX_ECORRUPT;
}

static int queue_plan(struct ox_replica *rep, const struct ox_raft_msg *m,
		      const uint8_t *raw, size_t raw_len,
		      const struct ox_raft_plan *plan)
{
	struct ox_raft_conf conf;
	struct ox_batch_header h;
	size_t pos = 0;

	if (plan->snapshot_index >= 0 || plan->truncate_index >= 0) {
		struct op *op = calloc(1, sizeof(*op));

		if (op == NULL)
			return -ENOMEM;
		op->kind = plan->snapshot_index >= 0 ? OP_RESET : OP_TRUNCATE;
		op->at = plan->snapshot_index >= 0 ? plan->snapshot_index :
						     plan->truncate_index;
		op->term = m->log_term;
		ops_push(rep, op);
		if (op->kind == OP_RESET)
			ox_producers_clear(rep->producers);
		else
			ox_producers_truncate(rep->producers, op->at);
	}
	while (pos < raw_len) {
		size_t at = pos;
		int64_t end;
		struct op *op;

		if (ox_batch_next(raw, raw_len, &pos, &h) != 1)
			break; // checked already
		end = h.base_offset + h.last_offset_delta + 1;
		if (end <= plan->append_from || end > plan->append_end)
			continue;
		op = calloc(1, sizeof(*op));
		if (op == NULL || (op->batch = malloc(pos - at)) == NULL) {
			free(op);
			return -ENOMEM;
		}
		memcpy(op->batch, raw + at, pos - at);
		op->kind = OP_APPEND;
		op->len = pos - at;
		op->owned = true;
		op->batch_term = h.term;
		op->end = end;
		ops_push(rep, op);
		producers_note(rep, h, h.base_offset);
		// R7: a membership takes effect once in the log.
		if (conf_of(raw + at, pos - at, &h, &conf) == 1) {
			int rc = ox_raft_conf_appended(rep->raft, end, &conf);

			if (rc < 0)
				return rc;
		}
	}
	return 0;
}

int ox_replica_deliver(struct ox_replica *rep, const struct ox_raft_msg *msg,
		       const uint8_t *raw, size_t raw_len)
{
	struct ox_raft_plan plan;
	int rc;

	OX_ASSERT(rep != NULL && msg != NULL);
	if (rep->failed)
		return -OX_EFAILED;
	if (msg->type == OX_RAFT_MSG_APPEND) {
		rc = check_entries(msg, raw, raw_len);
		if (rc < 0)
			return rc;
	}
	if (msg->type == OX_RAFT_MSG_SNAPSHOT &&
	    rep->opts.hooks.snapshot_put != NULL) {
		rc = rep->opts.hooks.snapshot_put(rep->opts.hooks.arg, raw,
						  raw_len); // P6
		if (rc < 0)
			return rc;
	}
	rc = ox_raft_step(rep->raft, msg, &plan);
	if (rc < 0)
		return rc;
	rc = queue_plan(rep, msg, raw, raw_len, &plan);
	if (rc < 0) {
		// Raft took the entries; a log that cannot follow must stop.
		fail(rep, rc, "queueing a follower's entries");
		return rc;
	}
	pump(rep);
	process_ready(rep);
	return 0;
}

// ---------------------------------------------------------------------
// Open and close

static int term_at(struct ox_log *log, int64_t offset, uint64_t *term)
{
	return ox_log_term_at(log, offset, term);
}

// The log's terms as runs, found by binary search (terms never decrease
// along a log): a few reads per term, not a scan of the log.
static int rebuild_runs(struct ox_log *log, struct ox_raft_run *runs,
			uint32_t *n_out)
{
	int64_t start = ox_log_start_offset(log);
	int64_t o = ox_log_end_offset(log) - 1;
	uint32_t n = 0;
	int rc;

	while (o >= start) {
		int64_t lo = start, hi = o;
		uint64_t t, tm;

		rc = term_at(log, o, &t);
		if (rc < 0)
			return rc;
		while (lo < hi) {
			int64_t mid = lo + (hi - lo) / 2;

			rc = term_at(log, mid, &tm);
			if (rc < 0)
				return rc;
			if (tm < t)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (n == REPLICA_RUNS_MAX)
			return -ENOSPC;
		runs[n++] = (struct ox_raft_run){ .start = lo, .term = t };
		o = lo - 1;
	}
	for (uint32_t i = 0; i < n / 2; i++) {
		struct ox_raft_run x = runs[i];

		runs[i] = runs[n - 1 - i];
		runs[n - 1 - i] = x;
	}
	*n_out = n;
	return 0;
}

static int load_state(struct ox_replica *rep)
{
	int rc = ox_replica_state_read(rep->state_path, &rep->state);

	if (rc == -ENOENT) {
		memset(&rep->state, 0, sizeof(rep->state));
		rep->state.hard.conf = rep->opts.conf;
		rep->state.hard.conf_prev = rep->opts.conf;
		rep->state.hard.rejoining = rep->opts.rejoin_if_new;
		rep->state.log_start = ox_log_start_offset(rep->log);
		return ox_replica_state_write(rep->state_path, &rep->state);
	}
	return rc;
}

static int restore(struct ox_replica *rep)
{
	struct ox_raft_run *runs = calloc(REPLICA_RUNS_MAX, sizeof(*runs));
	struct ox_raft_config cfg = {
		.id = rep->opts.node_id,
		.election_ticks = rep->opts.election_ticks,
		.heartbeat_ticks = rep->opts.heartbeat_ticks,
		.inflight_max = rep->opts.inflight_max,
		.rejoin_grace_ticks = rep->opts.rejoin_grace_ticks,
		.seed = rep->opts.seed,
		.pre_vote = true,
		.check_quorum = true,
	};
	struct ox_raft_restore rs = { .hard = rep->state.hard };
	int rc;

	if (runs == NULL)
		return -ENOMEM;
	rc = rebuild_runs(rep->log, runs, &rs.runs_n);
	if (rc < 0)
		goto out;
	rs.runs = runs;
	rs.start_index = ox_log_start_offset(rep->log);
	rs.last_index = ox_log_end_offset(rep->log);
	// The term before the log start: saved when retention moved it;
	// otherwise the first batch's (a leader then probes below it and
	// sends a snapshot, which costs a copy but never a wrong match).
	if (rs.start_index == 0)
		rs.start_term = 0;
	else if (rep->state.log_start == rs.start_index)
		rs.start_term = rep->state.log_start_term;
	else
		rs.start_term = rs.runs_n > 0 ? runs[0].term : 0;
	if (rs.runs_n > 0 && runs[0].term < rs.start_term)
		rs.start_term = runs[0].term;
	// The membership is the last one in the log (raft.h, P7): a change
	// whose batch a crash cut from the tail gives way to the one before
	// it (committed, R7), as a truncation of it would; and a change whose
	// batch reached the log before the crash, but not the hard state,
	// takes effect (the one before it, in the hard state, was committed).
	if (rs.hard.conf_index > rs.last_index &&
	    rs.hard.conf_prev.voters_n > 0) {
		rs.hard.conf = rs.hard.conf_prev;
		rs.hard.conf_index = 0;
	}
	if (rep->log_conf_index > rs.hard.conf_index) {
		rs.hard.conf_prev = rs.hard.conf;
		rs.hard.conf = rep->log_conf;
		rs.hard.conf_index = rep->log_conf_index;
	}
	rc = ox_raft_create(&rep->raft, &cfg, &rs, REPLICA_RUNS_MAX);
out:
	free(runs);
	return rc;
}

// Buffer of the producer scan: big enough for many batches per read;
// it grows to fit a batch larger than itself.
#define SCAN_BYTES (1u << 20)

// Rebuilds the idempotent producers from the log's batches (producers.h),
// and finds the last membership batch (P7): a read of the whole log, once
// per open, before Raft is created. A batch that fails its checksum ends
// the scan (the producers after it are unknown: D2).
static int scan_producers(struct ox_replica *rep)
{
	int64_t o = ox_log_start_offset(rep->log);
	int64_t end = ox_log_end_offset(rep->log);
	size_t cap = SCAN_BYTES, len;
	uint8_t *buf = malloc(cap);
	int rc = 0;

	if (buf == NULL)
		return -ENOMEM;
	while (o < end) {
		struct ox_batch_header h;
		size_t pos = 0;

		rc = ox_log_read(rep->log, o, cap, end, buf, cap, &len);
		if (rc == -ENOSPC && cap < OX_BATCH_BYTES_MAX) {
			uint8_t *nb = realloc(buf, OX_BATCH_BYTES_MAX);
			if (nb == NULL) {
				rc = -ENOMEM;
				break;
			}
			buf = nb;
			cap = OX_BATCH_BYTES_MAX;
			continue;
		}
		if (rc < 0 || len == 0)
			break;
		int64_t from = o;
		while (ox_batch_next(buf, len, &pos, &h) == 1) {
			struct ox_raft_conf conf;

			producers_note(rep, h, h.base_offset);
			o = h.base_offset + h.last_offset_delta + 1;
			if (conf_of(buf + pos - h.length, h.length, &h,
				    &conf) == 1) {
				rep->log_conf = conf; // P7
				rep->log_conf_index = o;
			}
		}
		if (o <= from)
			break; // the log handed back nothing past o
	}
	free(buf);
	if (rc == -OX_ECORRUPT) {
		ox_slog(OX_SLOG_WARN, "producer scan stopped at a damaged "
			"batch offset=%lld", (long long)o);
		rc = 0;
	}
	return rc;
}

// A group whose only voter is this node: its election needs nobody, so
// it runs now rather than after an election timeout.
static void elect_alone(struct ox_replica *rep)
{
	if (!alone(rep))
		return;
	for (uint32_t i = 0; i < 2 * rep->opts.election_ticks + 2 &&
			     ox_raft_role(rep->raft) != OX_RAFT_LEADER; i++) {
		ox_raft_tick(rep->raft);
		process_ready(rep);
	}
	OX_ASSERT(rep->failed || ox_raft_role(rep->raft) == OX_RAFT_LEADER);
}

int ox_replica_open(struct ox_replica **out, struct ox_io *io,
		    struct ox_log *log, const struct ox_replica_opts *opts)
{
	struct ox_replica *rep;
	int rc;

	if (out == NULL || io == NULL || log == NULL || opts == NULL ||
	    opts->state_path == NULL || opts->node_id == OX_RAFT_NONE ||
	    opts->hooks.send == NULL || opts->election_ticks < 2 ||
	    opts->heartbeat_ticks < 1 ||
	    opts->heartbeat_ticks >= opts->election_ticks ||
	    opts->inflight_max < 1)
		return -EINVAL;
	rep = calloc(1, sizeof(*rep));
	if (rep == NULL)
		return -ENOMEM;
	rep->io = io;
	rep->log = log;
	rep->opts = *opts;
	rep->state_path = strdup(opts->state_path);
	if (rep->state_path == NULL) {
		free(rep);
		return -ENOMEM;
	}
	rep->opening = true; // no hooks until the caller has the replica
	rep->producers = ox_producers_create();
	rc = rep->producers != NULL ? load_state(rep) : -ENOMEM;
	if (rc == 0)
		rc = scan_producers(rep);
	if (rc == 0)
		rc = restore(rep);
	if (rc < 0) {
		ox_raft_destroy(rep->raft);
		ox_producers_destroy(rep->producers);
		free(rep->state_path);
		free(rep);
		return rc;
	}
	elect_alone(rep);
	process_ready(rep);
	rep->opening = false;
	if (rep->failed) {
		ox_replica_close(rep);
		return -EIO; // the hard state could not be saved (logged)
	}
	*out = rep;
	return 0;
}

void ox_replica_close(struct ox_replica *rep)
{
	if (rep == NULL)
		return;
	// Appends in flight may borrow their callers' batches: they finish
	// (and their waiters hear so) before anything is failed.
	for (int i = 0; rep->inflight_n > 0 && i < CLOSE_RUNS_MAX; i++)
		if (ox_io_run(rep->io, 1) < 0)
			break;
	if (rep->retry != NULL)
		rep->retry->rep = NULL;
	fail_all(rep, -OX_ECLOSED);
	for (struct op *op = rep->inflight; op != NULL; op = op->next)
		op->rep = NULL; // append_done answers and frees it
	while (rep->cache_head != NULL) {
		struct cached *c = rep->cache_head;

		rep->cache_head = c->next;
		cached_unref(c);
	}
	ox_raft_destroy(rep->raft);
	ox_producers_destroy(rep->producers);
	free(rep->state_path);
	free(rep);
}

void ox_replica_tick(struct ox_replica *rep)
{
	OX_ASSERT(rep != NULL);
	if (rep->failed)
		return;
	ox_raft_tick(rep->raft);
	if (!rep->retry_armed)
		pump(rep); // a retry the loop could not take
	process_ready(rep);
}

int64_t ox_replica_high_watermark(const struct ox_replica *rep)
{
	return rep->high_watermark;
}

uint64_t ox_replica_committed_bytes(const struct ox_replica *rep)
{
	return rep->committed_bytes;
}

int ox_replica_log_start_moved(struct ox_replica *rep)
{
	int64_t start = ox_log_start_offset(rep->log);
	uint64_t term;
	int rc;

	OX_ASSERT(rep != NULL);
	if (rep->failed || start <= ox_raft_start_index(rep->raft))
		return 0;
	if (start > ox_raft_commit(rep->raft))
		return -EAGAIN; // raft moves its start over committed data only
	rc = ox_raft_term_at(rep->raft, start, &term);
	if (rc == 0)
		rc = ox_raft_log_start(rep->raft, start, term);
	if (rc < 0)
		return rc;
	rep->state.log_start = start;
	rep->state.log_start_term = term;
	rc = ox_replica_state_write(rep->state_path, &rep->state);
	process_ready(rep);
	return rc;
}

int ox_replica_transfer(struct ox_replica *rep, uint64_t target)
{
	int rc;

	OX_ASSERT(rep != NULL);
	rc = ox_raft_transfer(rep->raft, target);
	if (rc == 0)
		process_ready(rep);
	return rc;
}

const struct ox_raft *ox_replica_raft(const struct ox_replica *rep)
{
	return rep->raft;
}
