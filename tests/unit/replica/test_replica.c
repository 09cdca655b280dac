// SPDX-License-Identifier: Apache-2.0
//
// Unit tests of broker/replica: replicas over real partition logs in
// temporary directories, on one io loop, wired to each other through an
// in-process queue that stands for broker/peer (messages may be held back
// to cut a node off). They cover acks=all across three replicas (P4), the
// logs agreeing byte for byte (P2), a follower catching up from the log
// after the leader's cache let go, restart from the hard state file (P1),
// a damaged state file, and APPENDs whose bytes do not match their header.
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/io/io.h"
#include "broker/log/log.h"
#include "broker/replica/replica.h"
#include "broker/replica/replica_int.h"
#include "proto/batch.h"
#include "proto/error.h"

#define NODES 3
#define QUEUE_MAX 4096
#define PASSES_MAX 200000

struct qmsg {
	struct ox_raft_msg m;
	uint8_t *raw;
	size_t raw_len;
};

struct node {
	struct ox_log *log;
	struct ox_replica *rep;
	char dir[96];
	char state[128];
	int64_t hw;
	enum ox_raft_role role;
	// Snapshot hooks (replica.h P6), when W.snapshots is set: what this
	// node would send, and what reached it.
	char snap[32];
	int snap_puts;
	int64_t put_log_start; // its log start when the last SNAPSHOT came
	bool refuse;           // snapshot_put refuses
};

static struct {
	struct ox_io *io;
	char root[64];
	int n;
	struct node nodes[NODES];
	bool cut[NODES + 1]; // messages to and from this node are lost
	bool snapshots;      // replicas open with snapshot hooks
	struct ox_raft_conf conf; // the initial membership (none: all nodes)
	struct qmsg q[QUEUE_MAX];
	int qn;
} W;

static int hook_send(void *arg, const struct ox_raft_msg *msg,
		     const struct iovec *raw, int iovcnt,
		     ox_replica_release_cb release, void *release_arg)
{
	struct qmsg *q;
	size_t len = 0;

	(void)arg;
	if (W.cut[msg->from] || W.cut[msg->to] || W.qn == QUEUE_MAX)
		return -ENOTCONN;
	q = &W.q[W.qn++];
	q->m = *msg;
	for (int i = 0; i < iovcnt; i++)
		len += raw[i].iov_len;
	q->raw = malloc(len ? len : 1);
	cr_assert_not_null(q->raw);
	q->raw_len = 0;
	for (int i = 0; i < iovcnt; i++) {
		memcpy(q->raw + q->raw_len, raw[i].iov_base, raw[i].iov_len);
		q->raw_len += raw[i].iov_len;
	}
	if (release != NULL)
		release(release_arg, 1); // copied: the caller's bytes are free
	return 0;
}

static void hook_committed(void *arg, int64_t hw)
{
	struct node *nd = arg;

	cr_assert_geq(hw, nd->hw, "the high watermark went back");
	nd->hw = hw;
}

static void hook_role(void *arg, enum ox_raft_role role, uint64_t term,
		      uint64_t leader)
{
	struct node *nd = arg;

	(void)term;
	(void)leader;
	nd->role = role;
}

static int hook_snapshot_get(void *arg, struct iovec *raw,
			     ox_replica_release_cb *release, void **release_arg)
{
	struct node *nd = arg;

	raw->iov_base = nd->snap;
	raw->iov_len = strlen(nd->snap);
	*release = NULL;
	*release_arg = NULL;
	return 0;
}

static int hook_snapshot_put(void *arg, const uint8_t *raw, size_t raw_len)
{
	struct node *nd = arg;

	nd->snap_puts++;
	nd->put_log_start = ox_log_start_offset(nd->log);
	if (nd->refuse)
		return -OX_ECORRUPT;
	cr_assert_lt(raw_len, sizeof(nd->snap));
	memcpy(nd->snap, raw, raw_len);
	nd->snap[raw_len] = '\0';
	return 0;
}

static void open_node(int i)
{
	struct node *nd = &W.nodes[i];
	struct ox_log_config cfg;
	struct ox_replica_opts o = {
		.node_id = (uint64_t)i + 1,
		.state_path = nd->state,
		.election_ticks = 10,
		.heartbeat_ticks = 2,
		.inflight_max = 4,
		.seed = 77 + (uint64_t)i,
		.append_bytes_max = 64 * 1024,
		.hooks = { .send = hook_send, .committed = hook_committed,
			   .role = hook_role, .arg = nd },
	};
	int rc;

	for (int k = 0; k < W.n; k++)
		o.conf.voters[o.conf.voters_n++] = (uint64_t)k + 1;
	if (W.conf.voters_n > 0)
		o.conf = W.conf;
	if (W.snapshots) {
		o.hooks.snapshot_get = hook_snapshot_get;
		o.hooks.snapshot_put = hook_snapshot_put;
	}
	ox_log_config_default(&cfg);
	cfg.segment_bytes = 256 * 1024;
	rc = ox_log_open(&nd->log, W.io, nd->dir, &cfg);
	cr_assert_eq(rc, 0, "ox_log_open: %s", ox_strerror(rc));
	nd->hw = 0;
	rc = ox_replica_open(&nd->rep, W.io, nd->log, &o);
	cr_assert_eq(rc, 0, "ox_replica_open: %s", ox_strerror(rc));
	// Hooks do not run inside open: read what it reached.
	nd->hw = ox_replica_high_watermark(nd->rep);
}

static void close_node(int i)
{
	struct node *nd = &W.nodes[i];

	ox_replica_close(nd->rep);
	nd->rep = NULL;
	for (int k = 0; k < 1000 && ox_io_inflight(W.io) > 0; k++)
		ox_io_run(W.io, 1);
	cr_assert_eq(ox_log_close(nd->log), 0);
	nd->log = NULL;
}

static void setup_n(int n)
{
	struct ox_io_opts o = { .backend = OX_IO_BACKEND_SYNC };
	bool snapshots = W.snapshots;
	struct ox_raft_conf conf = W.conf;

	memset(&W, 0, sizeof(W));
	W.snapshots = snapshots;
	W.conf = conf;
	W.n = n;
	strcpy(W.root, "/tmp/ox-replica-XXXXXX");
	cr_assert_not_null(mkdtemp(W.root));
	cr_assert_eq(ox_io_create(&W.io, &o), 0);
	for (int i = 0; i < n; i++) {
		snprintf(W.nodes[i].dir, sizeof(W.nodes[i].dir), "%s/n%d",
			 W.root, i + 1);
		snprintf(W.nodes[i].state, sizeof(W.nodes[i].state),
			 "%s/n%d.raft", W.root, i + 1);
		open_node(i);
	}
}

static void teardown(void)
{
	char cmd[128];

	for (int i = 0; i < W.n; i++)
		if (W.nodes[i].rep != NULL)
			close_node(i);
	for (int k = 0; k < W.qn; k++)
		free(W.q[k].raw);
	ox_io_destroy(W.io);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", W.root);
	cr_assert_eq(system(cmd), 0);
}

// Delivers what is queued, runs the loop, ticks now and then.
static void pass(int k)
{
	int qn = W.qn;
	struct qmsg q[QUEUE_MAX];

	memcpy(q, W.q, (size_t)qn * sizeof(*q));
	W.qn = 0;
	for (int i = 0; i < qn; i++) {
		struct node *to = &W.nodes[q[i].m.to - 1];

		if (!W.cut[q[i].m.to] && !W.cut[q[i].m.from] && to->rep != NULL)
			ox_replica_deliver(to->rep, &q[i].m, q[i].raw,
					   q[i].raw_len);
		free(q[i].raw);
	}
	ox_io_run(W.io, 0);
	if (k % 8 == 0)
		for (int i = 0; i < W.n; i++)
			if (W.nodes[i].rep != NULL)
				ox_replica_tick(W.nodes[i].rep);
}

static int leader(void)
{
	for (int i = 0; i < W.n; i++)
		if (W.nodes[i].rep != NULL && !W.cut[i + 1] &&
		    ox_raft_role(ox_replica_raft(W.nodes[i].rep)) ==
			    OX_RAFT_LEADER)
			return i;
	return -1;
}

static int elect(void)
{
	for (int k = 1; k < PASSES_MAX; k++) {
		int l = leader();

		if (l >= 0 && W.nodes[l].hw ==
				      ox_raft_last_index(
					      ox_replica_raft(W.nodes[l].rep)))
			return l; // its no-op committed too
		pass(k);
	}
	for (int i = 0; i < W.n; i++) {
		const struct ox_raft *r;

		if (W.nodes[i].rep == NULL)
			continue;
		r = ox_replica_raft(W.nodes[i].rep);
		fprintf(stderr, "node %d: role %d term %llu hw %lld last %lld "
			"log end %lld durable %lld\n", i + 1, ox_raft_role(r),
			(unsigned long long)ox_raft_term(r),
			(long long)W.nodes[i].hw,
			(long long)ox_raft_last_index(r),
			(long long)ox_log_end_offset(W.nodes[i].log),
			(long long)ox_log_durable_offset(W.nodes[i].log));
	}
	cr_assert_fail("no leader");
	return -1;
}

struct acked {
	int calls;
	int res;
	int64_t base;
	int64_t last;
	int64_t commit; // the leader's commit index when it ran
};

static int lead_node; // whose commit acked_cb records

static void acked_cb(void *arg, int res, int64_t base, int64_t last)
{
	struct acked *a = arg;

	a->calls++;
	a->res = res;
	a->base = base;
	a->last = last;
	a->commit = ox_raft_commit(ox_replica_raft(W.nodes[lead_node].rep));
}

static void build(uint8_t *buf, size_t cap, size_t *len, uint32_t records,
		  uint32_t seed)
{
	struct ox_batch_builder b;
	struct ox_batch_params p = { 0 };
	uint8_t value[100];

	cr_assert_eq(ox_batch_builder_init(&b, buf, cap, &p), 0);
	for (uint32_t i = 0; i < records; i++) {
		struct ox_record r = { .key = value, .key_len = 4,
				       .value = value,
				       .value_len = (int32_t)sizeof(value),
				       .timestamp = 1000 + i };

		memset(value, (int)(seed + i), sizeof(value));
		cr_assert_eq(ox_batch_builder_add(&b, &r), 0);
	}
	cr_assert_eq(ox_batch_builder_finish(&b, len), 0);
}

static void wait_acked(struct acked *a, int want);

// A batch of an idempotent producer: id pid, epoch 0, records numbered
// from seq.
static void build_idem(uint8_t *buf, size_t cap, size_t *len,
		       uint32_t records, int64_t pid, int32_t seq)
{
	struct ox_batch_builder b;
	struct ox_batch_params p = { .producer_id = pid,
				     .base_sequence = seq };
	uint8_t value[32];

	cr_assert_eq(ox_batch_builder_init(&b, buf, cap, &p), 0);
	for (uint32_t i = 0; i < records; i++) {
		struct ox_record r = { .value = value,
				       .value_len = (int32_t)sizeof(value),
				       .key_len = -1,
				       .timestamp = 1000 + i };

		memset(value, (int)(seq + (int32_t)i), sizeof(value));
		cr_assert_eq(ox_batch_builder_add(&b, &r), 0);
	}
	cr_assert_eq(ox_batch_builder_finish(&b, len), 0);
}

// Appends an idempotent batch on node l and waits for its answer.
static struct acked append_idem(int l, int64_t pid, int32_t seq,
				uint32_t records, int *rc_out)
{
	struct acked a = { 0 };
	uint8_t buf[4096];
	size_t len;

	lead_node = l;
	build_idem(buf, sizeof(buf), &len, records, pid, seq);
	*rc_out = ox_replica_append(W.nodes[l].rep, buf, len,
				    OX_REPLICA_ACKS_ALL, acked_cb, &a);
	cr_assert_eq(a.calls, 0, "answered inside the call");
	if (*rc_out == 0)
		wait_acked(&a, 1);
	return a;
}

static void wait_acked(struct acked *a, int want)
{
	for (int k = 1; k < PASSES_MAX; k++) {
		int done = 0;

		for (int i = 0; i < want; i++)
			done += a[i].calls;
		if (done == want)
			return;
		pass(k);
	}
	cr_assert_fail("appends never acknowledged");
}

// Every replica's log holds the same bytes below the high watermark.
static void check_logs_agree(int64_t upto)
{
	static uint8_t a[1 << 20], b[1 << 20];
	size_t la, lb;

	for (int i = 1; i < W.n; i++) {
		int64_t off = 0;

		while (off < upto) {
			struct ox_batch_header h;
			size_t pos = 0;

			cr_assert_eq(ox_log_read(W.nodes[0].log, off, sizeof(a),
						 upto, a, sizeof(a), &la), 0);
			cr_assert_eq(ox_log_read(W.nodes[i].log, off, sizeof(b),
						 upto, b, sizeof(b), &lb), 0);
			cr_assert_eq(la, lb, "node %d differs at %lld", i + 1,
				     (long long)off);
			cr_assert_eq(memcmp(a, b, la), 0, "P2: bytes differ");
			cr_assert_gt(la, 0);
			while (ox_batch_next(a, la, &pos, &h) == 1)
				off = h.base_offset + h.last_offset_delta + 1;
		}
	}
}

// Three replicas with a leader elected; a follower of it cut off (its
// index is returned) and the leader's index in *l.
static int setup_with_a_follower_cut(int *l)
{
	int f;

	setup_n(3);
	*l = elect();
	lead_node = *l;
	f = (*l + 1) % 3;
	W.cut[f + 1] = true;
	return f;
}

// Appends batches [from, to) of 500 records each on leader l with
// acks=all, waiting every ten (or for each one when l is the only voter:
// its log borrows the caller's bytes until written); returns the end
// offset of the last.
static int64_t append_batches(int l, struct acked *a, int from, int to)
{
	const struct ox_raft_conf *c =
		ox_raft_conf(ox_replica_raft(W.nodes[l].rep));
	bool alone = c->voters_n == 1;

	static uint8_t buf[60000];
	size_t len;

	for (int i = from; i < to; i++) {
		build(buf, sizeof(buf), &len, 500, (uint32_t)i);
		cr_assert_eq(ox_replica_append(W.nodes[l].rep, buf, len,
					       OX_REPLICA_ACKS_ALL, acked_cb,
					       &a[i]), 0);
		if (alone || i % 10 == 9)
			wait_acked(a, i + 1);
	}
	wait_acked(a, to);
	return a[to - 1].last + 1;
}

Test(replica, three_replicas_ack_all_and_agree, .fini = teardown)
{
	struct acked a[40] = { 0 };
	uint8_t buf[16384];
	size_t len;
	int l;
	int64_t expect;

	setup_n(3);
	l = elect();
	lead_node = l;
	expect = ox_raft_last_index(ox_replica_raft(W.nodes[l].rep));
	for (int i = 0; i < 40; i++) {
		build(buf, sizeof(buf), &len, 5, (uint32_t)i);
		cr_assert_eq(ox_replica_append(W.nodes[l].rep, buf, len,
					       OX_REPLICA_ACKS_ALL, acked_cb,
					       &a[i]), 0);
		cr_assert_eq(a[i].calls, 0, "acknowledged inside the call");
		memset(buf, 0xee, len); // the replica keeps its own copy
	}
	wait_acked(a, 40);
	for (int i = 0; i < 40; i++) {
		cr_assert_eq(a[i].res, 0);
		cr_assert_eq(a[i].base, expect, "batch %d offsets", i);
		expect = a[i].last + 1;
		cr_assert_gt(a[i].commit, a[i].last,
			     "P4: acknowledged before it was committed");
	}
	for (int k = 1; k < 200; k++)
		pass(k); // followers learn the commit
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(W.nodes[i].hw, expect, "node %d hw", i + 1);
		// Every client batch (same size each) counts once committed.
		cr_assert_geq(ox_replica_committed_bytes(W.nodes[i].rep),
			      40 * len);
		cr_assert_lt(ox_replica_committed_bytes(W.nodes[i].rep),
			     41 * len + 1024);
	}
	check_logs_agree(expect);
}

Test(replica, a_follower_cut_off_catches_up_from_the_log, .fini = teardown)
{
	struct acked a[120] = { 0 };
	int l, f;
	int64_t end;

	f = setup_with_a_follower_cut(&l);
	// More than the leader caches (16 MiB): the rest comes from its log.
	end = append_batches(l, a, 0, 120);
	cr_assert_lt(ox_log_end_offset(W.nodes[f].log), end);
	W.cut[f + 1] = false;
	for (int k = 1; k < PASSES_MAX && W.nodes[f].hw < end; k++)
		pass(k);
	cr_assert_eq(W.nodes[f].hw, end, "the follower caught up");
	check_logs_agree(end);
}

Test(replica, one_voter_restarts_from_its_state, .fini = teardown)
{
	struct acked a = { 0 };
	uint8_t buf[4096];
	size_t len;
	uint64_t term;

	setup_n(1);
	cr_assert_eq(elect(), 0);
	lead_node = 0;
	build(buf, sizeof(buf), &len, 3, 1);
	cr_assert_eq(ox_replica_append(W.nodes[0].rep, buf, len,
				       OX_REPLICA_ACKS_ALL, acked_cb, &a), 0);
	wait_acked(&a, 1);
	cr_assert_eq(a.res, 0);
	term = ox_raft_term(ox_replica_raft(W.nodes[0].rep));
	close_node(0);
	open_node(0);
	cr_assert_geq(ox_raft_term(ox_replica_raft(W.nodes[0].rep)), term,
		      "P1: the term survived");
	cr_assert_eq(elect(), 0);
	cr_assert_gt(ox_raft_term(ox_replica_raft(W.nodes[0].rep)), term);
	cr_assert_gt(W.nodes[0].hw, a.last, "old records readable again");
}

Test(replica, a_damaged_state_file_is_refused, .fini = teardown)
{
	struct ox_replica_opts o = { 0 };
	int fd;

	setup_n(1);
	close_node(0);
	fd = open(W.nodes[0].state, O_WRONLY);
	cr_assert_geq(fd, 0);
	cr_assert_eq(pwrite(fd, "X", 1, 9), 1);
	close(fd);
	{
		struct ox_log_config cfg;
		struct ox_replica *rep = NULL;

		ox_log_config_default(&cfg);
		cr_assert_eq(ox_log_open(&W.nodes[0].log, W.io, W.nodes[0].dir,
					 &cfg), 0);
		o.node_id = 1;
		o.state_path = W.nodes[0].state;
		o.conf.voters_n = 1;
		o.conf.voters[0] = 1;
		o.election_ticks = 10;
		o.heartbeat_ticks = 2;
		o.inflight_max = 1;
		o.hooks.send = hook_send;
		cr_assert_eq(ox_replica_open(&rep, W.io, W.nodes[0].log, &o),
			     -OX_ECORRUPT);
		cr_assert_null(rep);
		cr_assert_eq(ox_log_close(W.nodes[0].log), 0);
		W.nodes[0].log = NULL;
	}
}

Test(replica, appends_whose_bytes_disagree_are_refused, .fini = teardown)
{
	struct ox_raft_msg m = { .type = OX_RAFT_MSG_APPEND, .from = 2,
				 .to = 1, .term = 1, .prev_index = 0,
				 .end_index = 3, .runs_n = 1,
				 .runs = { { 0, 1 } } };
	uint8_t buf[4096];
	size_t len;

	setup_n(2);
	build(buf, sizeof(buf), &len, 3, 9);
	ox_batch_stamp(buf, 0, 1);
	m.end_index = 4; // says 4 offsets, carries 3
	cr_assert_eq(ox_replica_deliver(W.nodes[0].rep, &m, buf, len),
		     -OX_ECORRUPT);
	m.end_index = 3;
	buf[len - 1] ^= 1; // checksum fails
	cr_assert_eq(ox_replica_deliver(W.nodes[0].rep, &m, buf, len),
		     -OX_ECORRUPT);
	buf[len - 1] ^= 1;
	m.runs[0].term = 2;
	m.term = 2; // the batch says term 1
	cr_assert_eq(ox_replica_deliver(W.nodes[0].rep, &m, buf, len),
		     -OX_ECORRUPT);
	m.runs[0].term = 1;
	cr_assert_eq(ox_replica_deliver(W.nodes[0].rep, &m, buf, len), 0);
	cr_assert_eq(ox_raft_last_index(ox_replica_raft(W.nodes[0].rep)), 3);
	for (int k = 1; k < 100 && ox_log_end_offset(W.nodes[0].log) < 3; k++)
		pass(k);
	cr_assert_eq(ox_log_end_offset(W.nodes[0].log), 3);
}

// One control batch of a membership change (P7) at offset `at` of term 1
// whose value is conf as given (valid or not).
static size_t conf_batch(uint8_t *buf, size_t cap, int64_t at,
			 const struct ox_raft_conf *conf)
{
	struct ox_batch_params params = { .attributes = OX_BATCH_ATTR_CONTROL };
	struct ox_batch_builder b;
	uint8_t value[REPLICA_CONF_BYTES_MAX];
	int n = ox_replica_conf_encode(conf, value, sizeof(value));
	struct ox_record rec = { .key = (const uint8_t *)"oxbow.conf",
				 .key_len = 10, .value = value,
				 .value_len = n };
	size_t len;

	cr_assert_gt(n, 0);
	cr_assert_eq(ox_batch_builder_init(&b, buf, cap, &params), 0);
	cr_assert_eq(ox_batch_builder_add(&b, &rec), 0);
	cr_assert_eq(ox_batch_builder_finish(&b, &len), 0);
	ox_batch_stamp(buf, at, 1);
	return len;
}

// P7: an APPEND carrying a membership Raft would not take (an id twice,
// id 0) is refused whole before Raft sees it, and the replica goes on:
// a valid one after it is taken.
Test(replica, a_bad_membership_batch_is_refused, .fini = teardown)
{
	struct ox_raft_msg m = { .type = OX_RAFT_MSG_APPEND, .from = 2,
				 .to = 1, .term = 1, .prev_index = 0,
				 .end_index = 1, .runs_n = 1,
				 .runs = { { 0, 1 } } };
	const struct ox_raft_conf bad[] = {
		{ .voters_n = 2, .voters = { 2, 2 } },
		{ .voters_n = 2, .voters = { 1, 0 } },
		{ .voters_n = 1, .voters = { 1 }, .learners_n = 1,
		  .learners = { 1 } },
	};
	const struct ox_raft_conf good = { .voters_n = 2, .voters = { 1, 2 },
					   .learners_n = 1,
					   .learners = { 3 } };
	uint8_t buf[1024];
	size_t len;

	setup_n(2);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		len = conf_batch(buf, sizeof(buf), 0, &bad[i]);
		cr_assert_eq(ox_replica_deliver(W.nodes[0].rep, &m, buf, len),
			     -OX_ECORRUPT, "membership %zu", i);
	}
	cr_assert_eq(ox_raft_last_index(ox_replica_raft(W.nodes[0].rep)), 0);
	len = conf_batch(buf, sizeof(buf), 0, &good);
	cr_assert_eq(ox_replica_deliver(W.nodes[0].rep, &m, buf, len), 0);
	cr_assert_eq(ox_raft_conf(ox_replica_raft(W.nodes[0].rep))->learners_n,
		     1, "the valid change took effect once in the log");
}

// A retried batch of an idempotent producer is stored once, and its
// retry gets the first copy's offsets, on the leader that stored it and
// on the next one, which learnt the producers from its log as a follower.
Test(replica, idempotent_retries_are_stored_once, .fini = teardown)
{
	struct acked a0, a1, r;
	int l, l2, rc;
	int64_t end;

	setup_n(3);
	l = elect();
	a0 = append_idem(l, 42, 0, 5, &rc);
	cr_assert_eq(rc, 0);
	cr_assert_eq(a0.res, 0);
	a1 = append_idem(l, 42, 5, 3, &rc);
	cr_assert_eq(a1.res, 0);
	end = ox_log_end_offset(W.nodes[l].log);
	r = append_idem(l, 42, 0, 5, &rc);
	cr_assert_eq(rc, 0);
	cr_assert_eq(r.res, 0);
	cr_assert_eq(r.base, a0.base, "a retry gets the stored offsets");
	cr_assert_eq(r.last, a0.last);
	cr_assert_eq(ox_log_end_offset(W.nodes[l].log), end, "stored once");
	append_idem(l, 42, 9, 1, &rc);
	cr_assert_eq(rc, -OX_ESEQUENCE, "a gap is refused");
	for (int k = 1; k < 200; k++)
		pass(k); // followers learn the commit
	// The leader goes; the next one knows the producer.
	W.cut[l + 1] = true;
	l2 = elect();
	cr_assert_neq(l2, l);
	r = append_idem(l2, 42, 5, 3, &rc);
	cr_assert_eq(rc, 0);
	cr_assert_eq(r.res, 0);
	cr_assert_eq(r.base, a1.base, "the new leader dedups the retry");
	r = append_idem(l2, 42, 8, 2, &rc);
	cr_assert_eq(r.res, 0);
	cr_assert_gt(r.base, a1.last);
}

// A restarted replica rebuilds its producers by reading its log.
Test(replica, producers_survive_a_restart, .fini = teardown)
{
	struct acked a, r;
	int rc;

	setup_n(1);
	cr_assert_eq(elect(), 0);
	a = append_idem(0, 7, 0, 4, &rc);
	cr_assert_eq(a.res, 0);
	close_node(0);
	open_node(0);
	cr_assert_eq(elect(), 0);
	r = append_idem(0, 7, 0, 4, &rc);
	cr_assert_eq(rc, 0);
	cr_assert_eq(r.res, 0);
	cr_assert_eq(r.base, a.base);
	cr_assert_eq(ox_log_end_offset(W.nodes[0].log), a.last + 1);
	append_idem(0, 7, 5, 1, &rc);
	cr_assert_eq(rc, -OX_ESEQUENCE);
	r = append_idem(0, 7, 4, 1, &rc);
	cr_assert_eq(r.res, 0);
	cr_assert_eq(r.base, a.last + 1);
}

// Retention on the leader deletes what a cut-off follower still needs:
// told of the new start, Raft sends that follower a SNAPSHOT, its log
// restarts at the leader's start and it catches up from there.
Test(replica, a_follower_behind_retention_restarts_from_the_leaders_start,
     .fini = teardown)
{
	struct acked a[60] = { 0 };
	struct ox_log_config cfg;
	int l, f;
	int64_t end, start;

	f = setup_with_a_follower_cut(&l);
	end = append_batches(l, a, 0, 60);
	// Keep about the last 1 MiB on the leader.
	ox_log_config_default(&cfg);
	cfg.segment_bytes = 256 * 1024;
	cfg.retention_bytes = 1 << 20;
	cr_assert_eq(ox_log_set_config(W.nodes[l].log, &cfg), 0);
	cr_assert_gt(ox_log_enforce_retention(W.nodes[l].log), 0);
	start = ox_log_start_offset(W.nodes[l].log);
	cr_assert_gt(start, ox_log_end_offset(W.nodes[f].log),
		     "the follower needs what retention deleted");
	cr_assert_eq(ox_replica_log_start_moved(W.nodes[l].rep), 0);
	cr_assert_eq(ox_raft_start_index(ox_replica_raft(W.nodes[l].rep)),
		     start);
	W.cut[f + 1] = false;
	for (int k = 1; k < PASSES_MAX && W.nodes[f].hw < end; k++)
		pass(k);
	cr_assert_eq(W.nodes[f].hw, end, "the follower caught up");
	cr_assert_eq(ox_log_start_offset(W.nodes[f].log), start,
		     "its log restarted at the leader's start");
	cr_assert_eq(ox_replica_log_start_moved(W.nodes[l].rep), 0,
		     "nothing moved: a no-op");
}

// With snapshot hooks (replica.h P6), the SNAPSHOT a follower behind the
// leader's start gets carries the leader's state: the follower's owner
// sees it before Raft does and before the log restarts, and may refuse
// it (the log then stays as it was). The restarted log's start and the
// term before it are in the state file: reopened, the follower keeps up
// without another SNAPSHOT.
Test(replica, a_snapshot_reaches_the_owner_before_the_log_restarts,
     .fini = teardown)
{
	struct acked a[70] = { 0 };
	struct replica_state st;
	uint64_t lt, ft;
	int l, f, puts;
	int64_t end, start, old_start;

	W.snapshots = true;
	f = setup_with_a_follower_cut(&l);
	end = append_batches(l, a, 0, 60);
	snprintf(W.nodes[l].snap, sizeof(W.nodes[l].snap), "state@%lld",
		 (long long)end);
	cr_assert_gt(ox_log_delete_before(W.nodes[l].log, end - 100), 0);
	start = ox_log_start_offset(W.nodes[l].log);
	old_start = ox_log_start_offset(W.nodes[f].log);
	cr_assert_gt(start, ox_log_end_offset(W.nodes[f].log));
	cr_assert_eq(ox_replica_log_start_moved(W.nodes[l].rep), 0);

	// Refused: the follower's log stays, and it does not catch up.
	W.nodes[f].refuse = true;
	W.cut[f + 1] = false;
	for (int k = 1; k < 4000; k++)
		pass(k);
	cr_assert_gt(W.nodes[f].snap_puts, 0, "a SNAPSHOT came");
	cr_assert_eq(ox_log_start_offset(W.nodes[f].log), old_start);
	cr_assert_lt(W.nodes[f].hw, end);

	// Taken: the owner had it before the log restarted.
	W.nodes[f].refuse = false;
	puts = W.nodes[f].snap_puts;
	for (int k = 1; k < PASSES_MAX && W.nodes[f].hw < end; k++)
		pass(k);
	cr_assert_eq(W.nodes[f].hw, end, "the follower caught up");
	cr_assert_gt(W.nodes[f].snap_puts, puts);
	cr_assert_str_eq(W.nodes[f].snap, W.nodes[l].snap);
	cr_assert_eq(W.nodes[f].put_log_start, old_start,
		     "the owner saw the snapshot before the log restarted");
	cr_assert_eq(ox_log_start_offset(W.nodes[f].log), start);

	// Reopened: the start's term came back from the state file.
	cr_assert_eq(ox_raft_term_at(ox_replica_raft(W.nodes[l].rep), start,
				     &lt), 0);
	cr_assert_eq(ox_replica_state_read(W.nodes[f].state, &st), 0);
	cr_assert_eq(st.log_start, start);
	cr_assert_eq(st.log_start_term, lt);
	close_node(f);
	open_node(f);
	cr_assert_eq(ox_raft_start_index(ox_replica_raft(W.nodes[f].rep)),
		     start);
	cr_assert_eq(ox_raft_term_at(ox_replica_raft(W.nodes[f].rep), start,
				     &ft), 0);
	cr_assert_eq(ft, lt);
	puts = W.nodes[f].snap_puts;
	l = elect();
	lead_node = l;
	end = append_batches(l, a, 60, 70);
	for (int k = 1; k < PASSES_MAX && W.nodes[f].hw < end; k++)
		pass(k);
	cr_assert_eq(W.nodes[f].hw, end);
	cr_assert_eq(W.nodes[f].snap_puts, puts, "no SNAPSHOT was needed");
}

static bool is_voter(int i, uint64_t id)
{
	const struct ox_raft_conf *c =
		ox_raft_conf(ox_replica_raft(W.nodes[i].rep));

	for (uint32_t k = 0; k < c->voters_n; k++)
		if (c->voters[k] == id)
			return true;
	return false;
}

// Runs the loop until node i's membership change at the end of its log
// has committed there.
static void wait_settled(int i)
{
	const struct ox_raft *r = ox_replica_raft(W.nodes[i].rep);

	for (int k = 1; k < PASSES_MAX && W.nodes[i].hw <
						   ox_raft_last_index(r); k++)
		pass(k);
	cr_assert_eq(W.nodes[i].hw, ox_raft_last_index(r));
}

// P7: a partition moves from node 1 to node 2 one change at a time (a
// learner added, made a voter, leadership handed over, the old voter
// removed), the follower learning each change from the log; node 2 then
// holds everything alone, also after a reopen.
Test(replica, membership_changes_move_a_group, .fini = teardown)
{
	struct ox_raft_conf c = { .voters_n = 1, .voters = { 1 } };
	struct acked a[30] = { 0 };
	int64_t end;

	W.conf = c;
	setup_n(2);
	W.conf.voters_n = 0;
	cr_assert_eq(elect(), 0);
	lead_node = 0;
	end = append_batches(0, a, 0, 10);

	// Two steps at once is not a single change.
	c = (struct ox_raft_conf){ .voters_n = 2, .voters = { 1, 3 },
				   .learners_n = 1, .learners = { 2 } };
	cr_assert_eq(ox_replica_change_conf(W.nodes[0].rep, &c), -EINVAL);
	cr_assert_eq(ox_replica_change_conf(W.nodes[1].rep, &c),
		     -OX_ENOTLEADER);

	c = (struct ox_raft_conf){ .voters_n = 1, .voters = { 1 },
				   .learners_n = 1, .learners = { 2 } };
	cr_assert_eq(ox_replica_change_conf(W.nodes[0].rep, &c), 0);
	wait_settled(0);
	end = ox_raft_last_index(ox_replica_raft(W.nodes[0].rep));
	for (int k = 1; k < PASSES_MAX && W.nodes[1].hw < end; k++)
		pass(k);
	cr_assert_eq(W.nodes[1].hw, end, "the learner caught up");
	cr_assert_eq(ox_raft_conf(ox_replica_raft(W.nodes[1].rep))->learners_n,
		     1, "the learner learnt the change from the log");
	cr_assert(!is_voter(1, 2));

	c = (struct ox_raft_conf){ .voters_n = 2, .voters = { 1, 2 } };
	cr_assert_eq(ox_replica_change_conf(W.nodes[0].rep, &c), 0);
	wait_settled(0);
	end = append_batches(0, a, 10, 15);
	for (int k = 1; k < PASSES_MAX && !is_voter(1, 2); k++)
		pass(k);
	cr_assert(is_voter(1, 2), "node 2 became a voter");

	cr_assert_eq(ox_replica_transfer(W.nodes[0].rep, 2), 0);
	for (int k = 1; k < PASSES_MAX && leader() != 1; k++)
		pass(k);
	cr_assert_eq(elect(), 1);
	lead_node = 1;
	c = (struct ox_raft_conf){ .voters_n = 1, .voters = { 2 } };
	cr_assert_eq(ox_replica_change_conf(W.nodes[1].rep, &c), 0);
	wait_settled(1);
	end = append_batches(1, a, 15, 20);
	check_logs_agree(a[14].last + 1);

	// Alone now: node 1 is cut and node 2 still commits.
	W.cut[1] = true;
	end = append_batches(1, a, 20, 25);
	cr_assert_eq(W.nodes[1].hw, end);

	// The membership came back from the hard state.
	close_node(1);
	open_node(1);
	cr_assert(is_voter(1, 2) && !is_voter(1, 1));
	cr_assert_eq(ox_raft_role(ox_replica_raft(W.nodes[1].rep)),
		     OX_RAFT_LEADER, "the only voter leads at once");
	cr_assert_eq(W.nodes[1].hw, end);
	end = append_batches(1, a, 25, 30);
	cr_assert_eq(a[29].res, 0);
}

// P7: a hard state naming a membership whose batch the log lost (a crash
// cut the tail) opens with the committed one before it.
Test(replica, a_membership_the_log_lost_gives_way, .fini = teardown)
{
	struct replica_state st;

	setup_n(1);
	close_node(0);
	cr_assert_eq(ox_replica_state_read(W.nodes[0].state, &st), 0);
	st.hard.conf_prev = st.hard.conf; // {1}
	st.hard.conf = (struct ox_raft_conf){ .voters_n = 2,
					      .voters = { 1, 2 } };
	st.hard.conf_index = 1000;
	cr_assert_eq(ox_replica_state_write(W.nodes[0].state, &st), 0);
	open_node(0);
	cr_assert(!is_voter(0, 2), "the lost change was dropped");
	cr_assert_eq(ox_raft_role(ox_replica_raft(W.nodes[0].rep)),
		     OX_RAFT_LEADER, "alone again, it leads at once");
}

// P7: a membership batch that reached the log when a crash kept it from
// the hard state takes effect at the next open.
Test(replica, a_membership_only_the_log_holds_takes_effect, .fini = teardown)
{
	struct ox_raft_conf c = { .voters_n = 1, .voters = { 1 },
				  .learners_n = 1, .learners = { 2 } };
	struct replica_state st;
	int64_t at;

	setup_n(1);
	cr_assert_eq(elect(), 0);
	cr_assert_eq(ox_replica_change_conf(W.nodes[0].rep, &c), 0);
	wait_settled(0);
	at = ox_raft_last_index(ox_replica_raft(W.nodes[0].rep));
	close_node(0);
	cr_assert_eq(ox_replica_state_read(W.nodes[0].state, &st), 0);
	cr_assert_eq(st.hard.conf_index, at);
	st.hard.conf = st.hard.conf_prev = (struct ox_raft_conf){
		.voters_n = 1, .voters = { 1 } };
	st.hard.conf_index = 0; // as before the change
	cr_assert_eq(ox_replica_state_write(W.nodes[0].state, &st), 0);
	open_node(0);
	cr_assert_eq(ox_raft_conf(ox_replica_raft(W.nodes[0].rep))->learners_n,
		     1, "the change in the log took effect");
	cr_assert_eq(ox_raft_role(ox_replica_raft(W.nodes[0].rep)),
		     OX_RAFT_LEADER);
}
