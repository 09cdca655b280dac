// SPDX-License-Identifier: Apache-2.0
//
// Moving a partition's replicas to other nodes (REASSIGN_PARTITION,
// `oxbowctl topic reassign`). The admin request records the new replica
// list in the metadata: the partition is then moving (broker/cluster),
// and the rest happens here, on every node, from what each applies and
// from a tick:
//
//   a node in the new list with no replica opens one, whose membership is
//   the list the partition had (it joins that group as a learner);
//   the partition's leader changes the group's membership one Raft step
//   at a time (ox_replica_change_conf: each waits for the last to
//   commit): add a listed node as a learner; make a learner a voter once
//   it has caught up; remove a voter the list leaves out while more
//   voters than the replication factor remain (handing its own
//   leadership to a listed voter first, when that is itself); when
//   the voters are the list, committed, it asks the metadata group to
//   record the move done (MetaPartitionMoved, at the move's epoch);
//   a node left out keeps serving its copy, a voter maybe, until that
//   record applies; then it closes the replica and deletes the copy.
//
// Invariants:
//   V1  A copy is deleted only after the group's membership without it
//       has committed: the leader records the move done only then, and
//       nodes delete on applying that record. Acknowledged records are
//       on a majority of every committed membership, so none is lost.
//   V2  At most one membership change is in flight per partition (Raft's
//       R7); a learner becomes a voter only once it holds the log up to
//       the commit index of the last heartbeat and answers
//       (ox_raft_caught_up), so a promotion does not leave the group
//       waiting for a voter still catching up.
//   V3  Every step is taken again from the state on the next tick: a
//       leader change, a crash or a refused proposal only delays a move.
//   V4  The group never has fewer voters than the replication factor: a
//       voter the list leaves out is removed only while more remain, so
//       a move keeps the fault tolerance the topic was created with.
//   V5  Replicas follow the metadata only once this node has applied
//       what the group committed (never an older state met while
//       replaying the log at start: a copy moved away and back since must
//       not be deleted), and a copy being removed is gone before a new
//       replica takes its directory. A replica new here while its
//       partition moves starts as a non-voter that holds its vote back
//       until it has caught up (raft.h R9), whatever the list it was
//       given.
#include "broker/server/server_int.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker/cluster/cluster.h"
#include "broker/peer/peer.h"
#include "broker/raft/raft.h"
#include "broker/slog/slog.h"
#include "proto/assert.h"
#include "proto/error.h"
#include "proto/wire.h"

// How often a leader asks again for its finished move to be recorded
// while the metadata does not show it (the ask is lossy when forwarded).
#define MOVED_ASK_NS 1000000000ull

static bool listed(const uint64_t *ids, uint32_t n, uint64_t id)
{
	for (uint32_t k = 0; k < n; k++)
		if (ids[k] == id)
			return true;
	return false;
}

// ---- REASSIGN_PARTITION ----

static void reassign_answer(struct ox_net_req *req, const char *topic,
			    int err, const char *why)
{
	Oxbow__ReassignPartitionResponse resp =
		OXBOW__REASSIGN_PARTITION_RESPONSE__INIT;
	Oxbow__TopicResult result = OXBOW__TOPIC_RESULT__INIT;

	result.name = (char *)topic;
	result.error_code = (Oxbow__ErrorCode)ox_error_to_wire(err);
	result.error_message = (char *)(err ? why : "");
	resp.result = &result;
	ox_srv_respond_msg(req, &resp.base);
}

// The request's checks that give a better answer than the metadata
// group's verdict: 0, or the answer with why.
static int reassign_check(struct ox_server *srv, const struct ox_topic *t,
			  const Oxbow__ReassignPartitionRequest *m,
			  uint64_t *ids, char *why, size_t why_len)
{
	const struct ox_cluster *c = ox_meta_state(srv);
	struct ox_cluster_node n;

	if (t == NULL) {
		snprintf(why, why_len, "no topic named %s", m->topic);
		return -OX_EUNKNOWN_TOPIC;
	}
	if (t->assignment == NULL) {
		snprintf(why, why_len, "topic %s is of this node alone: only "
			 "a topic of a cluster moves", m->topic);
		return -OX_EINVALID_REQUEST;
	}
	if (t->internal) {
		snprintf(why, why_len, "internal topic %s cannot be moved",
			 m->topic);
		return -OX_EINVALID_REQUEST;
	}
	if (m->partition < 0 || (uint32_t)m->partition >= t->meta.partitions) {
		snprintf(why, why_len, "topic %s has no partition %d",
			 m->topic, m->partition);
		return -OX_EUNKNOWN_TOPIC;
	}
	if (m->n_replicas != t->meta.replicas) {
		snprintf(why, why_len, "topic %s keeps %u replica%s of each "
			 "partition: list exactly that many nodes, not %zu",
			 m->topic, t->meta.replicas,
			 t->meta.replicas == 1 ? "" : "s", m->n_replicas);
		return -OX_EINVALID_REQUEST;
	}
	for (size_t k = 0; k < m->n_replicas; k++) {
		int32_t id = m->replicas[k];

		if (id <= 0 || ox_cluster_node_by_id(c, (uint64_t)id, &n) < 0) {
			snprintf(why, why_len, "node %d is not a node of the "
				 "cluster", id);
			return -OX_EINVALID_REQUEST;
		}
		if (listed(ids, (uint32_t)k, (uint64_t)id)) {
			snprintf(why, why_len, "node %d is listed twice", id);
			return -OX_EINVALID_REQUEST;
		}
		ids[k] = (uint64_t)id;
	}
	return 0;
}

void ox_srv_reassign_partition(struct ox_server *srv, struct ox_net_req *req)
{
	Oxbow__ReassignPartitionRequest *m = ox_srv_body_unpack(
		req, &oxbow__reassign_partition_request__descriptor,
		"REASSIGN_PARTITION");
	uint64_t ids[OX_CLUSTER_RF_MAX];
	struct ox_meta_change ch;
	struct ox_topic *t;

	if (!m)
		return; // rejected
	t = ox_srv_topic_find(srv, m->topic);
	if (srv->meta == NULL) {
		char why[OX_META_WHY_MAX];

		snprintf(why, sizeof(why), "%s%s: a node without peers moves "
			 "no partition", t ? "topic " : "no topic named ",
			 m->topic);
		reassign_answer(req, m->topic, t ? -OX_EINVALID_REQUEST :
						     -OX_EUNKNOWN_TOPIC, why);
		oxbow__reassign_partition_request__free_unpacked(m, NULL);
		return;
	}
	memset(&ch, 0, sizeof(ch));
	ch.name = m->topic;
	ch.err = reassign_check(srv, t, m, ids, ch.why, sizeof(ch.why));
	if (ch.err == 0) {
		ch.err = ox_cluster_entry_reassign_partition(
			m->topic, (uint32_t)m->partition, ids,
			(uint32_t)m->n_replicas, &ch.entry, &ch.len);
		if (ch.err < 0)
			snprintf(ch.why, sizeof(ch.why), "the change does not "
				 "fit a metadata entry");
		else
			ox_slog(OX_SLOG_INFO, "partition reassignment asked "
				"topic=%s partition=%d", m->topic,
				m->partition);
	}
	ox_meta_admin(srv, req, OX_META_REASSIGN, &m->base, &ch, 1);
}

// ---- following the metadata ----

// A copy of partition i of t that this node holds no replica of and that
// moves away from nobody here: left by a node that was down (or crashed)
// when its move was recorded done. Nothing has it open: removed now, the
// Raft state first (a log directory without it is never taken for a
// voter's: V1).
static void remove_stale_copy(struct ox_server *srv, const struct ox_topic *t,
			      uint32_t i)
{
	char dir[PATH_MAX], state[PATH_MAX + 8];
	struct stat st;

	ox_srv_partition_dir(srv, t->meta.id, i, dir, sizeof(dir));
	snprintf(state, sizeof(state), "%s.raft", dir);
	if (stat(dir, &st) < 0 && stat(state, &st) < 0)
		return;
	ox_slog(OX_SLOG_INFO, "removing a copy of a partition that moved away "
		"topic=%s partition=%u", t->meta.name, i);
	if (unlink(state) < 0 && errno != ENOENT)
		ox_slog(OX_SLOG_WARN, "cannot remove path=%s error=\"%s\"",
			state, strerror(errno));
	ox_srv_rm_tree(dir);
}

// Partition i of t follows the metadata. false: it must wait.
static bool follow(struct ox_server *srv, struct ox_topic *t, uint32_t i)
{
	struct ox_cluster_partition cp;
	bool want;

	if (ox_srv_cluster_partition(srv, t, i, &cp) < 0)
		return true;
	OX_ASSERT(cp.replicas_n == t->meta.replicas); // C5
	memcpy(t->assignment + (size_t)i * cp.replicas_n, cp.replicas,
	       cp.replicas_n * sizeof(*cp.replicas));
	if (t->parts[i] != NULL) {
		if (ox_srv_hosted(srv, t, i))
			return true;
		ox_slog(OX_SLOG_INFO, "partition moved away: removing its "
			"copy topic=%s partition=%u epoch=%" PRIu64,
			t->meta.name, i, cp.epoch); // V1
		ox_srv_partition_doom(srv, t, i);
		return true;
	}
	// A copy still being removed goes first: its directory is the one
	// a new replica would take.
	if (ox_srv_parting(srv, t->meta.id, i))
		return false;
	want = ox_srv_hosted(srv, t, i);
	if (!want && !cp.moving)
		remove_stale_copy(srv, t, i);
	if (want && ox_srv_partition_open(srv, t, i) == 0)
		ox_slog(OX_SLOG_INFO, "partition replica added here "
			"topic=%s partition=%u epoch=%" PRIu64,
			t->meta.name, i, cp.epoch);
	return true;
}

bool ox_srv_partitions_follow(struct ox_server *srv)
{
	bool done = true;

	for (size_t s = 0; s < OX_TOPIC_SLOTS; s++)
		for (struct ox_topic *t = srv->topics[s]; t; t = t->next) {
			if (t->assignment == NULL)
				continue;
			for (uint32_t i = 0; i < t->meta.partitions; i++)
				done &= follow(srv, t, i);
		}
	return done;
}

// ---- the leader's steps ----

struct successor_arg {
	struct ox_server *srv;
	const uint64_t *target;
	uint32_t n;
};

// A voter the leadership may go to: listed, and linked to this node.
static bool successor_usable(void *arg, uint64_t id)
{
	struct successor_arg *a = arg;
	struct ox_peer *peer = ox_meta_peer(a->srv);

	return listed(a->target, a->n, id) && peer != NULL &&
	       ox_peer_connected(peer, id) != 0;
}

static void conf_without(struct ox_raft_conf *c, uint64_t id)
{
	uint32_t v = 0, l = 0;

	for (uint32_t k = 0; k < c->voters_n; k++)
		if (c->voters[k] != id)
			c->voters[v++] = c->voters[k];
	for (uint32_t k = 0; k < c->learners_n; k++)
		if (c->learners[k] != id)
			c->learners[l++] = c->learners[k];
	c->voters_n = v;
	c->learners_n = l;
}

static const char *step_name(int step)
{
	static const char *const names[] = { "add a learner",
					     "make a learner a voter",
					     "remove a voter",
					     "remove a learner" };
	return names[step];
}

// The next membership change toward `target`, or -1 when the voters are
// the target already. Fills *next and *node; *transfer is set when this
// node must hand its leadership over first.
static int next_step(const struct ox_raft *r, uint64_t self,
		     const uint64_t *target, uint32_t n,
		     struct ox_raft_conf *next, uint64_t *node, bool *transfer)
{
	const struct ox_raft_conf *c = ox_raft_conf(r);

	*next = *c;
	*transfer = false;
	for (uint32_t k = 0; k < n; k++)
		if (!listed(c->voters, c->voters_n, target[k]) &&
		    !listed(c->learners, c->learners_n, target[k])) {
			if (next->learners_n == OX_RAFT_NODES_MAX ||
			    c->voters_n + c->learners_n >= OX_RAFT_NODES_MAX)
				break; // full: remove first
			*node = target[k];
			next->learners[next->learners_n++] = target[k];
			return 0;
		}
	for (uint32_t k = 0; k < c->learners_n; k++)
		if (listed(target, n, c->learners[k]) &&
		    ox_raft_caught_up(r, c->learners[k])) { // V2
			*node = c->learners[k];
			conf_without(next, *node);
			next->voters[next->voters_n++] = *node;
			return 1;
		}
	// V4: a voter goes only while more than n remain, or once every
	// listed node votes: the group never has fewer voters than the
	// replication factor.
	bool all_vote = true;

	for (uint32_t k = 0; k < n; k++)
		all_vote &= listed(c->voters, c->voters_n, target[k]);
	for (uint32_t k = 0; k < c->voters_n; k++)
		if (!listed(target, n, c->voters[k]) &&
		    (c->voters_n > n || all_vote)) {
			*node = c->voters[k];
			*transfer = *node == self;
			conf_without(next, *node);
			return 2;
		}
	for (uint32_t k = 0; k < c->learners_n; k++)
		if (!listed(target, n, c->learners[k])) {
			*node = c->learners[k];
			conf_without(next, *node);
			return 3;
		}
	return c->learners_n > 0 ? -2 : -1; // -2: a learner catching up
}

// The voters are the target and that membership committed: the metadata
// group records the move done (V1), asked again now and then until it
// shows (V3).
static void ask_moved(struct ox_server *srv, struct ox_topic *t, uint32_t i,
		      const struct ox_cluster_partition *cp)
{
	struct ox_partition *p = t->parts[i];
	uint64_t now = ox_srv_now_ns();
	uint8_t *entry;
	size_t len;
	int rc;

	if (p->moved_asked_ns != 0 && now - p->moved_asked_ns < MOVED_ASK_NS)
		return;
	p->moved_asked_ns = now;
	rc = ox_cluster_entry_partition_moved(t->meta.name,
					      t->meta.id -
						      OX_CLUSTER_TOPIC_ID_BASE,
					      i, cp->epoch, &entry, &len);
	if (rc == 0) {
		rc = ox_meta_submit(srv, entry, len);
		free(entry);
	}
	if (rc < 0)
		ox_slog(OX_SLOG_WARN, "cannot ask to record a partition move "
			"done topic=%s partition=%u error=%s", t->meta.name, i,
			ox_strerror_name(rc));
	else
		ox_slog(OX_SLOG_INFO, "partition move done: asking the metadata "
			"group to record it topic=%s partition=%u epoch=%" PRIu64,
			t->meta.name, i, cp->epoch);
}

// A move waiting for a learner to catch up says so now and then, with
// what the leader knows of it, for whoever wonders why it takes long.
static void note_waiting(const struct ox_topic *t, uint32_t i,
			 struct ox_partition *p, const struct ox_raft *r)
{
	const struct ox_raft_conf *c = ox_raft_conf(r);
	uint64_t now = ox_srv_now_ns();

	if (c->learners_n == 0 ||
	    now - p->waiting_noted_ns < 5 * MOVED_ASK_NS)
		return;
	p->waiting_noted_ns = now;
	ox_slog(OX_SLOG_INFO, "partition moving: waiting for a learner to "
		"catch up topic=%s partition=%u node=%" PRIu64 " match=%"
		PRId64 " commit=%" PRId64 " log_end=%" PRId64 " heard=%d",
		t->meta.name, i, c->learners[0],
		ox_raft_match(r, c->learners[0]), ox_raft_commit(r),
		ox_raft_last_index(r), (int)ox_raft_heard(r, c->learners[0]));
}

static void move_step(struct ox_server *srv, struct ox_topic *t, uint32_t i)
{
	struct ox_partition *p = t->parts[i];
	const struct ox_raft *r = ox_replica_raft(p->rep);
	uint64_t self = (uint64_t)srv->cfg.node_id, node = 0, to;
	const uint64_t *target;
	struct ox_cluster_partition cp;
	struct ox_raft_conf next;
	bool transfer;
	int step, rc;

	if (ox_raft_role(r) != OX_RAFT_LEADER ||
	    ox_srv_cluster_partition(srv, t, i, &cp) < 0 || !cp.moving ||
	    !ox_raft_conf_committed(r) ||
	    ox_raft_transferee(r) != OX_RAFT_NONE)
		return; // V2: one change at a time
	target = cp.replicas;
	step = next_step(r, self, target, cp.replicas_n, &next, &node,
			 &transfer);
	if (step == -1) {
		ask_moved(srv, t, i, &cp);
		return;
	}
	if (step < 0) {
		note_waiting(t, i, p, r);
		return; // a learner is catching up
	}
	if (transfer) {
		struct successor_arg a = { srv, target, cp.replicas_n };

		to = ox_raft_successor(r, successor_usable, &a);
		if (to == OX_RAFT_NONE)
			note_waiting(t, i, p, r); // no listed voter yet
		else if (ox_replica_transfer(p->rep, to) == 0)
			ox_slog(OX_SLOG_INFO, "partition moving: handing the "
				"leadership over topic=%s partition=%u to=%"
				PRIu64, t->meta.name, i, to);
		return;
	}
	rc = ox_replica_change_conf(p->rep, &next);
	if (rc == 0)
		ox_slog(OX_SLOG_INFO, "partition moving: %s topic=%s "
			"partition=%u node=%" PRIu64 " epoch=%" PRIu64,
			step_name(step), t->meta.name, i, node, cp.epoch);
	else if (rc != -EBUSY)
		ox_slog(OX_SLOG_WARN, "partition moving: cannot %s topic=%s "
			"partition=%u node=%" PRIu64 " error=%s",
			step_name(step), t->meta.name, i, node,
			ox_strerror_name(rc));
}

void ox_srv_moves_tick(struct ox_server *srv)
{
	if (srv->meta != NULL && !srv->shutting_down)
		ox_srv_each_replica(srv, move_step);
}
