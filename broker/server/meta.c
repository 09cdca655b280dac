// SPDX-License-Identifier: Apache-2.0
//
// The cluster layer of a node whose `peers` name other nodes: the
// transport to them (broker/peer, on peer.listen), the `__meta` Raft
// group over every node in `peers` (a replica over data.dir/meta, its hard
// state in data.dir/meta.raft) and the state it holds (broker/cluster),
// which each node applies from the group's committed entries.
//
// Nodes enter the node table through the metadata leader: every frame a
// node sends names its client listener (RaftBatch.client_address), and
// the leader proposes a RegisterNode entry for each node in `peers` whose
// entry is missing or out of date, one at a time.
//
// Admin writes (CREATE_TOPICS, DELETE_TOPICS, ALTER_CONFIGS of cluster
// topics) may reach any node. admin.c checks them and builds one entry
// per topic; this layer stamps each with a request id (this node, a
// nonce drawn at start, a counter), proposes it when this node leads the
// group or forwards it to the leader over the peer transport
// (RaftBatch.forwards), and answers the client when it applies the entry
// carrying that id: the verdict is the one every node reaches. An entry
// that does not come back within OX_META_ADMIN_WAIT_MS (the leader
// changed and lost it) is answered TIMEOUT; with no leader at all the
// answer is NOT_LEADER at once. Both are retriable.
//
// Applying an entry acts on this node's replicas: a created topic opens
// the partitions it hosts, a deleted one is taken out of service and its
// directory removed, altered configs reach the open logs, added
// partitions open. Once a node has caught up with the group, cluster
// topic directories that no topic of the state names (a delete a crash
// interrupted) are removed.
//
// Snapshots. Once meta.snapshot.entries entries were applied since the
// last snapshot, a node saves its whole state (broker/cluster's
// MetaSnapshot) as data.dir/meta.snap and deletes the metadata log's
// segments that lie wholly below it (replica.h P6); every node does so
// on its own. At start the snapshot is the state, and the log after it is
// applied as usual. A follower behind the leader's log start gets a
// SNAPSHOT carrying the leader's meta.snap bytes: it checks them whole,
// saves them and takes them as its state before its log restarts.
// Whenever the state jumps so (at start, or installing), this node's
// replicas follow it whole: topics the state holds open, those it no
// longer holds go, configs and partition counts catch up.
//
// meta.snap: the MetaSnapshot in a sealed file of magic "OXMS"
// (broker/io/file.h: length, checksum; replaced by temp file, fsync and
// rename).
// A damaged one stops the node from starting: the log before it is gone.
//
// Invariants:
//   M1 The state only ever holds committed entries, applied in log order,
//      each exactly once (applied_offset only grows); a snapshot taken or
//      installed holds exactly the entries up to its index.
//   M2 A timer callback never touches freed memory: the tick owns a small
//      heap object that the layer lets go of at stop (as S7).
//   M3 Every admin request handed to ox_meta_admin is answered exactly
//      once: when its last entry is applied here, refused before
//      proposing, timed out, or at stop (S1). Request ids of one run
//      never repeat (the counter), nor match another run's (the nonce).
//   M4 A cluster topic directory is removed only for a topic the applied
//      state does not hold: on applying its delete, or once the node has
//      caught up with the group's commit index.
//   M5 meta.snap covers the log up to its start (replica.h P6): segments
//      go only below the snapshot saved last, and a SNAPSHOT that makes
//      the log restart is covered by the snapshot it carries, or by one
//      of this node's own state, which is further along.
#include "broker/server/server_int.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "broker/cluster/cluster.h"
#include "broker/io/file.h"
#include "broker/io/io.h"
#include "broker/peer/peer.h"
#include "broker/slog/slog.h"
#include "proto/assert.h"
#include "proto/batch.h"
#include "proto/error.h"
#include "proto/wire.h"

// Raft of __meta: ticks of 10 ms; an election after 150 to 300 ms without
// a leader, heartbeats every 30 ms (well inside the election timeout).
#define META_TICK_MS 10u
// Partition moves take their next step every this many ticks.
#define MOVES_TICKS 10u
#define META_ELECTION_TICKS 15u
#define META_HEARTBEAT_TICKS 3u
#define META_INFLIGHT_MAX 8u
// Bytes of the meta log read per pass when applying.
#define META_READ_BYTES (1u << 20)
// Admin requests waiting for their entries: each holds a client request
// and its message; admin changes are rare, so more are refused at once.
#define META_ADMINS_MAX 256u

// A state snapshot in memory: the MetaSnapshot bytes meta.snap holds,
// shared with the SNAPSHOTs being sent.
struct snap {
	uint32_t refs;
	int64_t index; // the applied index it was taken at
	size_t len;
	uint8_t bytes[];
};

// A snapshot that could not be saved is tried again this much later.
#define SNAP_RETRY_NS (1000ull * 1000000ull)

struct meta_tick {
	struct ox_meta *m; // NULL once the layer let go (M2)
	bool armed;        // a timer is in the loop
};

struct ox_meta {
	struct ox_server *srv;
	struct ox_peer *peer;
	struct ox_log *log;
	struct ox_replica *rep;
	struct ox_cluster *state;
	struct meta_tick *tick;
	int64_t applied_offset; // M1: the next offset to apply
	uint8_t *buf;
	size_t buf_cap;
	char client_address[OX_CONFIG_ADDR_MAX + 8];
	// What each node in `peers` says its client listener is.
	char heard[OX_CONFIG_PEERS_MAX][OX_CONFIG_ADDR_MAX];
	bool registering; // a RegisterNode entry is on its way
	bool swept;       // M4: orphan directories checked after catching up
	// raft.h R9: the metadata leader's last index when this node, whose
	// metadata replica started anew (rejoining), first heard from it;
	// topics created before may have had replicas here.
	int64_t forgot_before;
	uint64_t nonce;   // M3: drawn at start
	uint64_t next_seq;
	struct admin *admins; // M3: admin requests waiting for entries
	unsigned admins_n;
	char snap_path[PATH_MAX];
	struct snap *snap;       // M5: the one meta.snap holds; NULL: none
	uint64_t snap_retry_ns;  // no new snapshot before this (a save failed)
	uint64_t ticks;          // metadata ticks since start
	// Replicas follow moved partitions once this node has caught up
	// (moves.c V5).
	bool follow;
};

// One topic of an admin request: its entry's request id while it waits.
struct admin_item {
	uint64_t seq; // 0: settled
	int err;
	const char *name;
	char why[OX_META_WHY_MAX];
};

// An admin request waiting for its entries (M3).
struct admin {
	struct admin *next;
	struct ox_net_req *req;
	enum ox_meta_api api;
	ProtobufCMessage *msg;
	uint64_t deadline_ns;
	uint32_t n;
	uint32_t waiting; // items not settled, plus one while submitting
	struct admin_item items[];
};

// ---- admin requests: answers (M3) ----

static void admin_respond(struct admin *a)
{
	Oxbow__TopicResult *res = calloc(a->n, sizeof(*res));
	Oxbow__TopicResult **ptrs = calloc(a->n, sizeof(*ptrs));

	if (res == NULL || ptrs == NULL) {
		ox_srv_respond_error(a->req, -ENOMEM, "out of memory");
		goto out;
	}
	for (uint32_t i = 0; i < a->n; i++) {
		Oxbow__TopicResult init = OXBOW__TOPIC_RESULT__INIT;

		res[i] = init;
		res[i].name = (char *)a->items[i].name;
		res[i].error_code = (Oxbow__ErrorCode)ox_error_to_wire(
			a->items[i].err);
		res[i].error_message = a->items[i].err ? a->items[i].why : "";
		ptrs[i] = &res[i];
	}
	if (a->api == OX_META_CREATE) {
		Oxbow__CreateTopicsResponse r =
			OXBOW__CREATE_TOPICS_RESPONSE__INIT;

		r.n_topics = a->n;
		r.topics = ptrs;
		ox_srv_respond_msg(a->req, &r.base);
	} else if (a->api == OX_META_DELETE) {
		Oxbow__DeleteTopicsResponse r =
			OXBOW__DELETE_TOPICS_RESPONSE__INIT;

		r.n_topics = a->n;
		r.topics = ptrs;
		ox_srv_respond_msg(a->req, &r.base);
	} else if (a->api == OX_META_ALTER) {
		Oxbow__AlterConfigsResponse r =
			OXBOW__ALTER_CONFIGS_RESPONSE__INIT;

		OX_ASSERT(a->n == 1);
		r.result = ptrs[0];
		ox_srv_respond_msg(a->req, &r.base);
	} else {
		Oxbow__ReassignPartitionResponse r =
			OXBOW__REASSIGN_PARTITION_RESPONSE__INIT;

		OX_ASSERT(a->n == 1);
		r.result = ptrs[0];
		ox_srv_respond_msg(a->req, &r.base);
	}
out:
	free(res);
	free(ptrs);
	protobuf_c_message_free_unpacked(a->msg, NULL);
	free(a);
}

static void admin_unlink(struct ox_meta *m, struct admin *a)
{
	struct admin **p = &m->admins;

	while (*p != a)
		p = &(*p)->next;
	*p = a->next;
	OX_ASSERT(m->admins_n > 0);
	m->admins_n--;
}

// Drops one from a's count; the last answers the client (M3).
static void admin_release(struct ox_meta *m, struct admin *a)
{
	OX_ASSERT(a->waiting > 0);
	if (--a->waiting > 0)
		return;
	admin_unlink(m, a);
	admin_respond(a);
}

// Settles item i of a with err (and why when err < 0).
static void admin_settle(struct ox_meta *m, struct admin *a, uint32_t i,
			 int err, const char *why)
{
	struct admin_item *it = &a->items[i];

	OX_ASSERT(it->seq != 0);
	it->seq = 0;
	it->err = err;
	snprintf(it->why, sizeof(it->why), "%s", err ? why : "");
	admin_release(m, a);
}

static bool admin_find(struct ox_meta *m, uint64_t seq, struct admin **out,
		       uint32_t *idx)
{
	for (struct admin *a = m->admins; a != NULL; a = a->next)
		for (uint32_t i = 0; i < a->n; i++)
			if (a->items[i].seq == seq) {
				*out = a;
				*idx = i;
				return true;
			}
	return false;
}

// The words for a verdict of the metadata rules about topic `name`.
static void verdict_why(int verdict, const char *name, char *buf, size_t cap)
{
	switch (verdict < 0 ? -verdict : verdict) {
	case OX_ETOPIC_EXISTS:
		snprintf(buf, cap, "topic %s already exists", name);
		break;
	case OX_EUNKNOWN_TOPIC:
		snprintf(buf, cap, "no topic named %s", name);
		break;
	case OX_EINVALID_CONFIG:
		snprintf(buf, cap, "the configs of topic %s would not fit the "
			 "cluster's rules (at most %u overrides, a key set "
			 "and reset at once)", name, OX_CLUSTER_CONFIGS_MAX);
		break;
	case OX_ETOOBIG:
		snprintf(buf, cap, "topic %s would pass a bound of the "
			 "cluster (topics, partitions or replicas per node)",
			 name);
		break;
	default:
		snprintf(buf, cap, "the metadata group refused the change of "
			 "topic %s: %s", name, ox_strerror(verdict));
		break;
	}
}

// An entry carrying request id `rq` was applied with `verdict`: if this
// node asked for it in this run, its item is settled.
static void admin_applied(struct ox_meta *m, const struct ox_cluster_result *r)
{
	char why[OX_META_WHY_MAX];
	struct admin *a;
	uint32_t i;

	if (r->request.node != (uint64_t)m->srv->cfg.node_id ||
	    r->request.nonce != m->nonce ||
	    !admin_find(m, r->request.seq, &a, &i))
		return;
	verdict_why(r->verdict, a->items[i].name, why, sizeof(why));
	admin_settle(m, a, i, r->verdict, why);
}

// Items whose entries did not come back in time (the leader that had
// them changed) are answered TIMEOUT: the change may still take effect.
static void admin_expire(struct ox_meta *m)
{
	uint64_t now = ox_srv_now_ns();
	struct admin *a = m->admins, *next;
	char why[OX_META_WHY_MAX];

	for (; a != NULL; a = next) {
		next = a->next;
		if (now < a->deadline_ns)
			continue;
		snprintf(why, sizeof(why), "the metadata group did not apply "
			 "the change within %u ms (its leader changed?); it "
			 "may still take effect", OX_META_ADMIN_WAIT_MS);
		// The last settle frees a: count what is left first.
		uint32_t left = a->waiting;
		for (uint32_t i = 0; left > 0 && i < a->n; i++)
			if (a->items[i].seq != 0) {
				left--;
				admin_settle(m, a, i, -ETIMEDOUT, why);
			}
	}
}

// ---- applied entries acting on this node's replicas ----

static struct ox_topic *cluster_topic(struct ox_meta *m, uint64_t topic_id)
{
	return ox_srv_topic_by_id(m->srv, OX_CLUSTER_TOPIC_ID_BASE + topic_id);
}

// A deleted topic: out of service now, its logs closed and its directory
// removed by ox_server_poll (M4); its group offsets go too.
static void topic_drop(struct ox_meta *m, uint64_t topic_id)
{
	struct ox_topic *t = cluster_topic(m, topic_id);

	if (t == NULL)
		return; // never opened here (it failed to open: logged)
	ox_srv_topic_unlink(m->srv, t);
	ox_srv_offsets_drop_topic(m->srv, t->meta.name);
	ox_slog(OX_SLOG_INFO, "cluster topic deleted name=%s id=%" PRIu64,
		t->meta.name, t->meta.id);
	ox_srv_topic_doom(m->srv, t);
}

static bool configs_equal(const struct ox_topic_config *a,
			  const struct ox_topic_config *b)
{
	return a->set == b->set && a->cleanup == b->cleanup &&
	       a->delete_retention_ms == b->delete_retention_ms &&
	       a->max_message_bytes == b->max_message_bytes &&
	       a->retention_bytes == b->retention_bytes &&
	       a->retention_ms == b->retention_ms &&
	       a->segment_bytes == b->segment_bytes &&
	       a->segment_ms == b->segment_ms;
}

// Altered configs: the overrides the state now holds, whole, reach every
// open log of the topic (as ALTER_CONFIGS does on a single node).
static void topic_reconfigure(struct ox_meta *m, uint64_t topic_id)
{
	struct ox_topic *t = cluster_topic(m, topic_id);
	struct ox_topic_config cfg;
	struct ox_cluster_topic ct;
	struct ox_log_config lc;
	char why[128];

	if (t == NULL || ox_cluster_topic_by_id(m->state, topic_id, &ct) < 0)
		return;
	memset(&cfg, 0, sizeof(cfg));
	for (uint32_t i = 0; i < ct.configs_n; i++) {
		struct ox_cluster_kv kv;

		if (ox_cluster_config_at(m->state, topic_id, i, &kv) == 0 &&
		    ox_topic_config_set(&cfg, kv.key, kv.value, why,
					sizeof(why)) < 0)
			ox_slog(OX_SLOG_WARN, "topic config ignored topic=%s "
				"key=%s reason=\"%s\"", t->meta.name, kv.key,
				why);
	}
	if (configs_equal(&cfg, &t->meta.cfg))
		return; // nothing changed (a state installed whole)
	t->meta.cfg = cfg;
	ox_topic_log_config(&cfg, &m->srv->cfg, &lc);
	for (uint32_t i = 0; i < t->meta.partitions; i++) {
		int rc;

		if (t->parts[i] == NULL)
			continue;
		rc = ox_log_set_config(t->parts[i]->log, &lc);
		if (rc < 0)
			ox_slog(OX_SLOG_WARN, "cannot change a partition's "
				"config topic=%s partition=%u error=%s",
				t->meta.name, i, ox_strerror_name(rc));
	}
	ox_slog(OX_SLOG_INFO, "cluster topic altered name=%s overrides=%u",
		t->meta.name, ct.configs_n);
}

// Added partitions: their replicas join the assignment, and those this
// node hosts open.
static void topic_grow(struct ox_meta *m, uint64_t topic_id)
{
	struct ox_topic *t = cluster_topic(m, topic_id);
	struct ox_cluster_topic ct;
	uint32_t old, rf;
	uint64_t *as;
	int rc;

	if (t == NULL || ox_cluster_topic_by_id(m->state, topic_id, &ct) < 0 ||
	    ct.partitions <= t->meta.partitions)
		return;
	old = t->meta.partitions;
	rf = t->meta.replicas;
	OX_ASSERT(rf == ct.replication_factor); // C5: rf never changes
	as = realloc(t->assignment, (size_t)ct.partitions * rf * sizeof(*as));
	if (as == NULL) {
		rc = -ENOMEM;
		goto fail;
	}
	t->assignment = as;
	for (uint32_t i = old; i < ct.partitions; i++) {
		struct ox_cluster_partition cp;

		rc = ox_cluster_partition_get(m->state, topic_id, i, &cp);
		OX_ASSERT(rc == 0 && cp.replicas_n == rf); // C5
		memcpy(as + (size_t)i * rf, cp.replicas, rf * sizeof(*as));
	}
	rc = ox_srv_partitions_grow(m->srv, t, ct.partitions);
	if (rc < 0)
		goto fail;
	t->meta.partitions = ct.partitions;
	m->srv->npartitions += ct.partitions - old;
	ox_slog(OX_SLOG_INFO, "cluster topic grown name=%s partitions=%u",
		t->meta.name, ct.partitions);
	return;
fail:
	// The node serves the partitions it had; a restart opens the rest.
	ox_slog(OX_SLOG_ERROR, "cannot open added partitions topic=%s "
		"partitions=%u error=%s", t->meta.name, ct.partitions,
		ox_strerror_name(rc));
}

static void applied_act(struct ox_meta *m, const struct ox_cluster_result *r)
{
	switch (r->op) {
	case OX_CLUSTER_OP_CREATE_TOPIC:
		ox_srv_cluster_topic_open(m->srv, r->topic_id);
		break;
	case OX_CLUSTER_OP_DELETE_TOPIC:
		topic_drop(m, r->topic_id);
		break;
	case OX_CLUSTER_OP_ALTER_CONFIGS:
		topic_reconfigure(m, r->topic_id);
		break;
	case OX_CLUSTER_OP_ADD_PARTITIONS:
		topic_grow(m, r->topic_id);
		break;
	case OX_CLUSTER_OP_REASSIGN_PARTITION:
	case OX_CLUSTER_OP_PARTITION_MOVED:
		m->follow = true; // moves.c V5: once caught up
		break;
	default:
		break; // nodes: the state is all
	}
}

// ---- applying committed entries (M1) ----

static int apply_batch(struct ox_meta *m, const uint8_t *b, size_t len,
		       const struct ox_batch_header *h)
{
	struct ox_batch_iter it;
	struct ox_record r;
	int rc;

	if (h->attributes & OX_BATCH_ATTR_CONTROL)
		return 0; // a leader's no-op
	rc = ox_batch_iter_init(&it, b, len);
	if (rc < 0)
		return rc;
	while ((rc = ox_batch_iter_next(&it, &r)) == 1) {
		struct ox_cluster_result res;

		if (r.offset < m->applied_offset || r.value_len < 0)
			continue;
		rc = ox_cluster_apply(m->state, r.offset + 1, r.value,
				      (size_t)r.value_len, &res);
		if (rc < 0)
			return rc;
		if (res.verdict < 0)
			ox_slog(OX_SLOG_INFO, "metadata entry refused index=%"
				PRId64 " op=%d verdict=%s", r.offset + 1,
				(int)res.op, ox_strerror_name(res.verdict));
		if (res.verdict == 0)
			applied_act(m, &res);
		if (res.request.node != 0)
			admin_applied(m, &res);
	}
	return rc;
}

static void apply_committed(struct ox_meta *m)
{
	int64_t hw = ox_replica_high_watermark(m->rep);

	while (m->applied_offset < hw) {
		size_t len = 0, pos = 0;
		struct ox_batch_header h;
		int rc = ox_log_read(m->log, m->applied_offset, META_READ_BYTES,
				     hw, m->buf, m->buf_cap, &len);

		if (rc < 0 || len == 0) {
			ox_slog(OX_SLOG_ERROR, "cannot read the metadata log "
				"offset=%" PRId64 " error=%s", m->applied_offset,
				ox_strerror_name(rc));
			return;
		}
		while (ox_batch_next(m->buf, len, &pos, &h) == 1) {
			size_t at = pos - h.length;

			rc = apply_batch(m, m->buf + at, h.length, &h);
			if (rc < 0) {
				ox_slog(OX_SLOG_ERROR, "cannot apply a metadata "
					"batch offset=%" PRId64 " error=%s",
					h.base_offset, ox_strerror_name(rc));
				return;
			}
			m->applied_offset = h.base_offset +
					    h.last_offset_delta + 1;
		}
	}
}

// ---- node registration ----

// A proposal on its way: the batch stays alive until the replica is done.
struct proposal {
	struct ox_meta *m;
	uint8_t *batch;
};

static void registered(void *arg, int res, int64_t base, int64_t last)
{
	struct proposal *pr = arg;
	struct ox_meta *m = pr->m;

	(void)base, (void)last;
	free(pr->batch);
	free(pr);
	m->registering = false;
	if (res < 0 && res != -OX_ENOTLEADER && res != -OX_ECLOSED)
		ox_slog(OX_SLOG_WARN, "registering a node failed error=%s",
			ox_strerror_name(res));
}

// A proposal whose outcome the proposer learns by applying it.
static void proposal_done(void *arg, int res, int64_t base, int64_t last)
{
	struct proposal *pr = arg;

	(void)res, (void)base, (void)last;
	free(pr->batch);
	free(pr);
}

// Proposes one entry as a batch of one record, malloc'd into *batch_out,
// which must stay alive until cb runs (cb's owner frees it).
static int propose_batch(struct ox_meta *m, const uint8_t *entry,
			 size_t len, ox_replica_append_cb cb, void *arg,
			 uint8_t **batch_out)
{
	struct ox_batch_params params = { 0 };
	struct ox_batch_builder b;
	struct ox_record r = { .key_len = -1, .value = entry,
			       .value_len = (int32_t)len };
	size_t cap = OX_BATCH_HEADER_BYTES + len + 64, blen;
	uint8_t *buf = malloc(cap);
	int rc;

	if (buf == NULL)
		return -ENOMEM;
	rc = ox_batch_builder_init(&b, buf, cap, &params);
	if (rc == 0)
		rc = ox_batch_builder_add(&b, &r);
	if (rc == 0)
		rc = ox_batch_builder_finish(&b, &blen);
	if (rc == 0) {
		*batch_out = buf;
		rc = ox_replica_append(m->rep, buf, blen, OX_REPLICA_ACKS_ALL,
				       cb, arg);
	}
	if (rc < 0) {
		*batch_out = NULL;
		free(buf);
	}
	return rc;
}

// Proposes one entry as a batch of one record; cb gets a struct
// proposal, which it frees with its batch.
static int propose(struct ox_meta *m, const uint8_t *entry, size_t len,
		   ox_replica_append_cb cb)
{
	struct proposal *pr = calloc(1, sizeof(*pr));
	int rc;

	if (pr == NULL)
		return -ENOMEM;
	pr->m = m;
	rc = propose_batch(m, entry, len, cb, pr, &pr->batch);
	if (rc < 0)
		free(pr);
	return rc;
}

// The node table entry `peers[i]` should have, if known.
static bool wanted_node(struct ox_meta *m, unsigned i,
			struct ox_cluster_node *out)
{
	const struct ox_config *cfg = &m->srv->cfg;
	const char *client = cfg->peers[i].id == cfg->node_id ?
				     m->client_address : m->heard[i];

	if (client[0] == '\0')
		return false;
	*out = (struct ox_cluster_node){ .id = (uint64_t)cfg->peers[i].id,
					 .client_address = client,
					 .peer_address = cfg->peers[i].addr,
					 .rack = "" };
	return true;
}

static void register_nodes(struct ox_meta *m)
{
	const struct ox_config *cfg = &m->srv->cfg;

	if (m->registering ||
	    ox_raft_role(ox_replica_raft(m->rep)) != OX_RAFT_LEADER ||
	    ox_replica_high_watermark(m->rep) != m->applied_offset)
		return;
	for (unsigned i = 0; i < cfg->npeers; i++) {
		struct ox_cluster_node want, have;
		uint8_t *entry;
		size_t len;

		if (!wanted_node(m, i, &want))
			continue;
		if (ox_cluster_node_by_id(m->state, want.id, &have) == 0 &&
		    strcmp(have.client_address, want.client_address) == 0 &&
		    strcmp(have.peer_address, want.peer_address) == 0)
			continue;
		if (ox_cluster_entry_register_node(&want, &entry, &len) < 0)
			return;
		m->registering = propose(m, entry, len, registered) == 0;
		free(entry);
		return; // one at a time
	}
}

// ---- the cluster's __offsets ----

// Consumer-group offsets of a cluster live in the internal topic
// __offsets (groups.c): the metadata leader creates it once every node in
// `peers` is registered (so placement spreads its partitions over all of
// them), with OX_OFFSETS_PARTITIONS partitions, three replicas (one below
// three nodes) and compaction. Nothing of ours is in flight then (the
// log holds no entry past the commit index), so it is proposed once per
// leader; a second create, after a leader change, is refused as
// TOPIC_EXISTS by every node alike.
static void offsets_topic_ensure(struct ox_meta *m)
{
	const struct ox_config *cfg = &m->srv->cfg;
	const struct ox_raft *r = ox_replica_raft(m->rep);
	struct ox_cluster_kv kv[2] = { { "cleanup.policy", "compact" },
				       { "max.message.bytes", NULL } };
	struct ox_cluster_topic_spec spec = {
		.name = OX_CLUSTER_OFFSETS_TOPIC,
		.partitions = OX_OFFSETS_PARTITIONS,
		.replication_factor = cfg->npeers >= 3 ? 3 : 1,
		.configs = kv,
		.configs_n = 2,
	};
	struct ox_cluster_topic ct;
	uint64_t *as;
	uint8_t *entry;
	char max[16];
	size_t len;

	if (m->registering || ox_raft_role(r) != OX_RAFT_LEADER ||
	    ox_replica_high_watermark(m->rep) != m->applied_offset ||
	    ox_raft_last_index(r) != ox_raft_commit(r) ||
	    ox_cluster_nodes_n(m->state) < cfg->npeers ||
	    ox_cluster_topic_by_name(m->state, OX_CLUSTER_OFFSETS_TOPIC,
				     &ct) == 0)
		return;
	// A commit of many partitions is one batch: the format's most.
	snprintf(max, sizeof(max), "%u", OX_BATCH_BYTES_MAX);
	kv[1].value = max;
	as = calloc((size_t)spec.partitions * spec.replication_factor,
		    sizeof(*as));
	if (as == NULL)
		return;
	if (ox_cluster_place(m->state, NULL, 0, spec.partitions,
			     spec.replication_factor, as) == 0) {
		spec.assignment = as;
		if (ox_cluster_entry_create_topic(&spec, &entry, &len) == 0) {
			if (propose(m, entry, len, proposal_done) == 0)
				ox_slog(OX_SLOG_INFO, "creating %s partitions=%u "
					"replicas=%u", spec.name,
					spec.partitions,
					spec.replication_factor);
			free(entry);
		}
	}
	free(as);
}

// ---- admin requests: proposing or forwarding (M3) ----

// A proposal of an admin entry made here: if the replica gives it up
// (this node stopped leading before it committed) its item is answered
// NOT_LEADER, unless it was applied meanwhile.
struct admin_proposal {
	struct ox_meta *m;
	uint8_t *batch;
	uint64_t seq;
};

static void admin_proposed(void *arg, int res, int64_t base, int64_t last)
{
	struct admin_proposal *pr = arg;
	struct admin *a;
	uint32_t i;

	(void)base, (void)last;
	if (res < 0 && admin_find(pr->m, pr->seq, &a, &i))
		admin_settle(pr->m, a, i, res == -OX_ECLOSED ? -OX_ESHUTDOWN :
						   -OX_ENOTLEADER,
			     "the metadata leader changed before the change "
			     "committed; it may still take effect");
	free(pr->batch);
	free(pr);
}

// Sends one stamped entry on its way: proposed here on the leader, or
// forwarded to the leader. 0, or the answer with why filled.
static int admin_send(struct ox_meta *m, const uint8_t *entry, size_t len,
		      uint64_t seq, char *why, size_t why_len)
{
	const struct ox_raft *r = ox_replica_raft(m->rep);
	uint64_t leader = ox_raft_leader(r);
	int rc;

	if (ox_raft_role(r) == OX_RAFT_LEADER) {
		struct admin_proposal *pr = calloc(1, sizeof(*pr));

		if (pr == NULL)
			return -ENOMEM;
		pr->m = m;
		pr->seq = seq;
		rc = propose_batch(m, entry, len, admin_proposed, pr,
				   &pr->batch);
		if (rc < 0) {
			free(pr);
			snprintf(why, why_len, "cannot propose the change: %s",
				 ox_strerror(rc));
			return rc == -EBUSY ? -ETIMEDOUT : rc;
		}
		return 0;
	}
	if (leader == OX_RAFT_NONE) {
		snprintf(why, why_len, "the metadata group has no leader now; "
			 "retry");
		return -OX_ENOTLEADER;
	}
	rc = ox_peer_forward(m->peer, leader, entry, len);
	if (rc < 0) {
		snprintf(why, why_len, "cannot reach the metadata leader, node "
			 "%" PRIu64 ": %s; retry", leader, ox_strerror(rc));
		return -OX_ENOTLEADER;
	}
	return 0;
}

// Item i of a: stamps its entry with the next request id, judges it
// against this node's state (the leader's verdict at apply is final),
// and sends it. Settles the item when it cannot wait.
static void admin_submit(struct ox_meta *m, struct admin *a, uint32_t i,
			 const struct ox_meta_change *c)
{
	struct admin_item *it = &a->items[i];
	struct ox_cluster_request rq = { (uint64_t)m->srv->cfg.node_id,
					 m->nonce, ++m->next_seq };
	struct ox_cluster_result res;
	uint8_t *entry = NULL;
	size_t len = 0;
	int rc;

	it->seq = rq.seq;
	a->waiting++;
	rc = ox_cluster_entry_stamp(c->entry, c->len, &rq, &entry, &len);
	if (rc < 0) {
		admin_settle(m, a, i, rc == -ENOMEM ? rc : -OX_EINVALID_REQUEST,
			     "the change does not fit a metadata entry");
		return;
	}
	rc = ox_cluster_check(m->state, entry, len, &res);
	if (rc < 0) {
		char why[OX_META_WHY_MAX];

		verdict_why(rc, it->name, why, sizeof(why));
		admin_settle(m, a, i, rc, why);
	} else {
		char why[OX_META_WHY_MAX];

		rc = admin_send(m, entry, len, rq.seq, why, sizeof(why));
		if (rc < 0)
			admin_settle(m, a, i, rc, why);
	}
	free(entry);
}

void ox_meta_admin(struct ox_server *srv, struct ox_net_req *req,
		   enum ox_meta_api api, ProtobufCMessage *msg,
		   struct ox_meta_change *changes, uint32_t n)
{
	struct ox_meta *m = srv->meta;
	struct admin *a;

	OX_ASSERT(m != NULL && n >= 1 && n <= OX_META_ADMIN_ITEMS_MAX);
	OX_ASSERT((api != OX_META_ALTER && api != OX_META_REASSIGN) || n == 1);
	a = calloc(1, sizeof(*a) + n * sizeof(a->items[0]));
	if (a == NULL || m->admins_n >= META_ADMINS_MAX) {
		ox_srv_respond_error(req, a ? -ETIMEDOUT : -ENOMEM,
				     a ? "too many admin changes are waiting "
					 "for the metadata group; retry" :
					 "out of memory");
		free(a);
		protobuf_c_message_free_unpacked(msg, NULL);
		goto out;
	}
	a->req = req;
	a->api = api;
	a->msg = msg;
	a->n = n;
	a->deadline_ns = ox_srv_now_ns() +
			 (uint64_t)OX_META_ADMIN_WAIT_MS * 1000000u;
	a->waiting = 1; // held while submitting: a settle cannot answer
	a->next = m->admins;
	m->admins = a;
	m->admins_n++;
	for (uint32_t i = 0; i < n; i++) {
		a->items[i].name = changes[i].name;
		a->items[i].err = changes[i].err;
		if (changes[i].entry == NULL)
			snprintf(a->items[i].why, sizeof(a->items[i].why), "%s",
				 changes[i].why);
		else
			admin_submit(m, a, i, &changes[i]);
	}
	admin_release(m, a);
out:
	for (uint32_t i = 0; i < n; i++)
		free(changes[i].entry);
}

// A move is recorded done only by a node of its new list (its leader is
// one once the group has the new members): a node left out cannot end a
// move early, which would have the nodes left out delete copies the group
// may still need (moves.c V1).
static bool moved_by_member(struct ox_meta *m,
			    const struct ox_cluster_result *res, uint64_t from)
{
	struct ox_cluster_partition cp;

	if (ox_cluster_partition_get(m->state, res->topic_id, res->partition,
				     &cp) < 0)
		return false;
	for (uint32_t k = 0; k < cp.replicas_n; k++)
		if (cp.replicas[k] == from)
			return true;
	ox_slog(OX_SLOG_WARN, "a partition move's end refused: from a node "
		"not in its list from=%" PRIu64, from);
	return false;
}

// A forwarded admin entry reached this node: the leader proposes it
// whatever its verdict, so that the node that asked learns the verdict
// when it applies it. Only topic changes are taken from other nodes, and
// only with their own request ids.
static void meta_forwarded(void *arg, uint64_t from, const uint8_t *entry,
			   size_t len)
{
	struct ox_meta *m = arg;
	struct ox_cluster_result res;
	int rc;

	if (m->rep == NULL)
		return; // stopping
	if (ox_raft_role(ox_replica_raft(m->rep)) != OX_RAFT_LEADER) {
		ox_slog(OX_SLOG_INFO, "forwarded metadata change dropped "
			"from=%" PRIu64 ": this node does not lead", from);
		return;
	}
	rc = ox_cluster_check(m->state, entry, len, &res);
	// A partition leader's record of a finished move names nobody; one
	// already refused here is dropped (it asks again if it still must).
	bool moved = res.op == OX_CLUSTER_OP_PARTITION_MOVED &&
		     res.request.node == 0;
	if (moved && (rc < 0 || !moved_by_member(m, &res, from)))
		return;
	if (rc == -ENOMEM || (!moved && res.request.node != from) ||
	    (res.op != OX_CLUSTER_OP_CREATE_TOPIC &&
	     res.op != OX_CLUSTER_OP_DELETE_TOPIC &&
	     res.op != OX_CLUSTER_OP_ALTER_CONFIGS &&
	     res.op != OX_CLUSTER_OP_ADD_PARTITIONS &&
	     res.op != OX_CLUSTER_OP_REASSIGN_PARTITION && !moved)) {
		ox_slog(OX_SLOG_WARN, "forwarded metadata change refused "
			"from=%" PRIu64 " op=%d request_node=%" PRIu64, from,
			(int)res.op, res.request.node);
		return;
	}
	rc = propose(m, entry, len, proposal_done);
	if (rc < 0)
		ox_slog(OX_SLOG_WARN, "cannot propose a forwarded metadata "
			"change from=%" PRIu64 " error=%s", from,
			ox_strerror_name(rc));
}

int ox_meta_submit(struct ox_server *srv, const uint8_t *entry, size_t len)
{
	struct ox_meta *m = srv->meta;
	const struct ox_raft *r = ox_replica_raft(m->rep);
	uint64_t leader = ox_raft_leader(r);

	if (ox_raft_role(r) == OX_RAFT_LEADER)
		return propose(m, entry, len, proposal_done);
	if (leader == OX_RAFT_NONE)
		return -OX_ENOTLEADER;
	return ox_peer_forward(m->peer, leader, entry, len);
}

// ---- cluster topic directories (M4) ----

static bool doomed(const struct ox_server *srv, uint64_t id)
{
	for (const struct ox_topic *t = srv->doomed; t != NULL; t = t->next)
		if (t->meta.id == id)
			return true;
	return false;
}

// Whether this node has applied what the group committed, as a leader
// told it.
static bool caught_up(const struct ox_meta *m)
{
	const struct ox_raft *r = ox_replica_raft(m->rep);

	return ox_raft_leader(r) != OX_RAFT_NONE && ox_raft_commit(r) > 0 &&
	       m->applied_offset >= ox_raft_commit(r);
}

// Once caught up: directories of cluster topics that the state no longer
// holds, left by a delete that a crash interrupted before the directory
// went, are removed. (A node down during a delete applies it when it
// replays the log, which removes the directory the usual way.)
static void sweep_dirs(struct ox_meta *m)
{
	struct ox_server *srv = m->srv;
	char dir[PATH_MAX], path[PATH_MAX + 256];
	struct ox_cluster_topic ct;
	struct dirent *de;
	DIR *d;

	if (m->swept || !caught_up(m))
		return;
	m->swept = true;
	snprintf(dir, sizeof(dir), "%s/topics", srv->cfg.data_dir);
	d = opendir(dir);
	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		char *end;

		errno = 0;
		unsigned long long id = strtoull(de->d_name, &end, 10);
		if (de->d_name[0] < '0' || de->d_name[0] > '9' || errno ||
		    *end || id < OX_CLUSTER_TOPIC_ID_BASE)
			continue; // this node's own topics: server.c's (S5)
		if (ox_srv_topic_by_id(srv, id) != NULL || doomed(srv, id) ||
		    ox_cluster_topic_by_id(m->state,
					   id - OX_CLUSTER_TOPIC_ID_BASE,
					   &ct) == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		ox_slog(OX_SLOG_INFO, "removing a cluster topic directory no "
			"topic names path=%s", path);
		ox_srv_rm_tree(path);
	}
	closedir(d);
}

// ---- snapshots (M5) ----

#define SNAP_MAGIC "OXMS"

static struct snap *snap_new(const uint8_t *p, size_t len, int64_t index)
{
	struct snap *sn = malloc(sizeof(*sn) + len);

	if (sn == NULL)
		return NULL;
	sn->refs = 1;
	sn->index = index;
	sn->len = len;
	memcpy(sn->bytes, p, len);
	return sn;
}

static void snap_unref(struct snap *sn)
{
	if (sn != NULL && --sn->refs == 0)
		free(sn);
}

// Saves MetaSnapshot bytes taken at `index` as meta.snap, durably, and
// keeps them.
static int snap_save(struct ox_meta *m, const uint8_t *p, size_t len,
		     int64_t index)
{
	struct snap *sn = snap_new(p, len, index);
	int rc;

	OX_ASSERT(len <= OX_CLUSTER_SNAPSHOT_BYTES_MAX);
	if (sn == NULL)
		return -ENOMEM;
	rc = ox_file_replace_sealed(m->snap_path, SNAP_MAGIC, p, len);
	if (rc < 0) {
		free(sn);
		return rc;
	}
	snap_unref(m->snap);
	m->snap = sn;
	return 0;
}

// Saves this node's state as a snapshot (M5).
static int snap_save_state(struct ox_meta *m)
{
	uint8_t *bytes = NULL;
	size_t len = 0;
	int rc = ox_cluster_snapshot(m->state, &bytes, &len);

	if (rc == 0)
		rc = snap_save(m, bytes, len,
			       ox_cluster_applied_index(m->state));
	free(bytes);
	return rc;
}

// At start: the snapshot saved last, if any, is the state to apply the
// log after.
static int snap_load(struct ox_meta *m, char *err, size_t err_len)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc;

	rc = ox_file_read_sealed(m->snap_path, SNAP_MAGIC,
				 OX_CLUSTER_SNAPSHOT_BYTES_MAX, &buf, &len);
	if (rc == -ENOENT)
		return 0;
	if (rc == 0)
		rc = ox_cluster_restore(m->state, buf, len);
	if (rc == 0) {
		int64_t at = ox_cluster_applied_index(m->state);

		m->snap = snap_new(buf, len, at);
		m->applied_offset = at;
		rc = m->snap ? 0 : -ENOMEM;
	}
	free(buf);
	if (rc == -OX_ECORRUPT)
		ox_srv_fmt_err(err, err_len, "%s is damaged (%s); the metadata "
			       "log before it is gone: remove %s/meta, "
			       "%s/meta.raft and %s and the node rejoins as one "
			       "whose metadata was wiped", m->snap_path,
			       ox_strerror(rc), m->srv->cfg.data_dir,
			       m->srv->cfg.data_dir, m->snap_path);
	else if (rc < 0)
		ox_srv_fmt_err(err, err_len, "cannot read %s: %s",
			       m->snap_path, ox_strerror(rc));
	else
		ox_slog(OX_SLOG_INFO, "metadata snapshot loaded index=%" PRId64
			" bytes=%zu topics=%u", m->applied_offset, len,
			ox_cluster_topics_n(m->state));
	return rc;
}

// The state jumped (a snapshot loaded or installed): this node's replicas
// follow it whole.
static void reconcile(struct ox_meta *m)
{
	struct ox_server *srv = m->srv;
	uint32_t n = ox_cluster_topics_n(m->state);
	struct ox_cluster_topic ct;
	struct ox_topic *t, *next;

	for (size_t sl = 0; sl < OX_TOPIC_SLOTS; sl++)
		for (t = srv->topics[sl]; t != NULL; t = next) {
			next = t->next; // topic_drop unlinks t
			if (t->assignment != NULL &&
			    t->meta.id >= OX_CLUSTER_TOPIC_ID_BASE &&
			    ox_cluster_topic_by_id(m->state, t->meta.id -
						   OX_CLUSTER_TOPIC_ID_BASE,
						   &ct) < 0)
				topic_drop(m, t->meta.id -
						      OX_CLUSTER_TOPIC_ID_BASE);
		}
	for (uint32_t i = 0; i < n; i++) {
		if (ox_cluster_topic_at(m->state, i, &ct) < 0)
			continue;
		if (cluster_topic(m, ct.id) == NULL) {
			ox_srv_cluster_topic_open(srv, ct.id);
			continue;
		}
		topic_reconfigure(m, ct.id);
		topic_grow(m, ct.id);
	}
	m->follow = true; // moves.c V5: once caught up
}

// Once meta.snapshot.entries entries were applied since the last
// snapshot: a new one is saved, and the log segments it covers go (M5).
static void snap_take(struct ox_meta *m)
{
	int64_t at = ox_cluster_applied_index(m->state);
	int64_t since = m->snap != NULL ? m->snap->index : 0;
	int rc;

	if (at - since < (int64_t)m->srv->cfg.meta_snapshot_entries ||
	    ox_srv_now_ns() < m->snap_retry_ns)
		return;
	rc = snap_save_state(m);
	if (rc < 0) {
		ox_slog(OX_SLOG_ERROR, "cannot save a metadata snapshot path=%s "
			"index=%" PRId64 " error=%s", m->snap_path, at,
			ox_strerror_name(rc));
		m->snap_retry_ns = ox_srv_now_ns() + SNAP_RETRY_NS;
		return;
	}
	rc = ox_log_delete_before(m->log, at);
	if (rc > 0)
		rc = ox_replica_log_start_moved(m->rep);
	if (rc < 0)
		ox_slog(OX_SLOG_WARN, "metadata log not cut after a snapshot "
			"index=%" PRId64 " error=%s", at, ox_strerror_name(rc));
	ox_slog(OX_SLOG_INFO, "metadata snapshot saved index=%" PRId64
		" bytes=%zu log_start=%" PRId64, at, m->snap->len,
		ox_log_start_offset(m->log));
}

// Replica hook: the leader sends its snapshot to a follower behind its
// log start.
static void snap_release(void *arg, int sent)
{
	(void)sent;
	snap_unref(arg);
}

static int meta_snapshot_get(void *arg, struct iovec *raw,
			     ox_replica_release_cb *release,
			     void **release_arg)
{
	struct ox_meta *m = arg;

	if (m->snap == NULL)
		return -ENOENT; // M5: a log cut holds one; never so
	m->snap->refs++;
	raw->iov_base = m->snap->bytes;
	raw->iov_len = m->snap->len;
	*release = snap_release;
	*release_arg = m->snap;
	return 0;
}

// Replica hook: a SNAPSHOT from the leader, before Raft sees it (M5).
// Bytes that do not restore whole refuse the message. A snapshot ahead
// of the state is saved and becomes the state; one behind it is covered
// by a snapshot of this node's own state, taken now if the one saved is
// older (the log may restart at the leader's start, past it).
static int meta_snapshot_put(void *arg, const uint8_t *raw, size_t raw_len)
{
	struct ox_meta *m = arg;
	struct ox_cluster *next;
	int64_t at;
	int rc;

	if (raw_len == 0 || raw_len > OX_CLUSTER_SNAPSHOT_BYTES_MAX)
		return -OX_ECORRUPT;
	rc = ox_cluster_create(&next);
	if (rc < 0)
		return rc;
	rc = ox_cluster_restore(next, raw, raw_len);
	if (rc < 0) {
		ox_cluster_destroy(next);
		return rc;
	}
	at = ox_cluster_applied_index(next);
	if (m->snap != NULL && at <= m->snap->index) {
		ox_cluster_destroy(next); // covered already
		return 0;
	}
	if (at <= ox_cluster_applied_index(m->state)) {
		ox_cluster_destroy(next);
		return snap_save_state(m);
	}
	rc = snap_save(m, raw, raw_len, at);
	if (rc < 0) {
		ox_slog(OX_SLOG_ERROR, "cannot save the leader's metadata "
			"snapshot path=%s error=%s", m->snap_path,
			ox_strerror_name(rc));
		ox_cluster_destroy(next);
		return rc;
	}
	ox_cluster_destroy(m->state);
	m->state = next;
	if (m->applied_offset < at)
		m->applied_offset = at;
	ox_slog(OX_SLOG_INFO, "metadata snapshot installed index=%" PRId64
		" bytes=%zu topics=%u", at, raw_len,
		ox_cluster_topics_n(m->state));
	reconcile(m);
	return 0;
}

// ---- transport and Raft plumbing ----

static int meta_send(void *arg, const struct ox_raft_msg *msg,
		     const struct iovec *raw, int iovcnt,
		     ox_replica_release_cb release, void *release_arg)
{
	struct ox_meta *m = arg;
	static const struct ox_peer_group meta_group = { 0, 0 };

	return ox_peer_send(m->peer, &meta_group, msg, raw, iovcnt, release,
			    release_arg);
}

static void meta_role(void *arg, enum ox_raft_role role, uint64_t term,
		      uint64_t leader)
{
	(void)arg;
	if (role == OX_RAFT_LEADER || (role == OX_RAFT_FOLLOWER && leader))
		ox_slog(OX_SLOG_INFO, "metadata leader node=%" PRIu64
			" term=%" PRIu64, leader, term);
}

static void meta_committed(void *arg, int64_t hw)
{
	struct ox_meta *m = arg;

	(void)hw;
	apply_committed(m);
}

static void remember_address(struct ox_meta *m, uint64_t from,
			     const char *addr)
{
	const struct ox_config *cfg = &m->srv->cfg;

	for (unsigned i = 0; i < cfg->npeers; i++)
		if ((uint64_t)cfg->peers[i].id == from &&
		    strlen(addr) < sizeof(m->heard[i]))
			strcpy(m->heard[i], addr);
}

static void meta_deliver(void *arg, const struct ox_peer_delivery *d)
{
	struct ox_meta *m = arg;
	int rc;

	if (m->rep == NULL)
		return; // stopping
	remember_address(m, d->msg.from, d->client_address);
	if (d->group.topic_id != 0) {
		struct ox_topic *t = ox_srv_topic_by_id(m->srv,
							d->group.topic_id);

		// A topic not applied here yet, or a partition without a
		// replica here: its leader retries.
		if (t == NULL || t->assignment == NULL ||
		    d->group.partition >= t->meta.partitions ||
		    t->parts[d->group.partition] == NULL)
			return;
		rc = ox_replica_deliver(t->parts[d->group.partition]->rep,
					&d->msg, d->raw, d->raw_len);
		if (rc < 0 && rc != -OX_EFAILED)
			ox_slog(OX_SLOG_WARN, "partition message refused topic=%s "
				"partition=%u from=%" PRIu64 " type=%d error=%s",
				t->meta.name, d->group.partition, d->msg.from,
				(int)d->msg.type, ox_strerror_name(rc));
		return;
	}
	rc = ox_replica_deliver(m->rep, &d->msg, d->raw, d->raw_len);
	if (rc < 0 && rc != -OX_EFAILED)
		ox_slog(OX_SLOG_WARN, "metadata message refused from=%" PRIu64
			" type=%d error=%s", d->msg.from, (int)d->msg.type,
			ox_strerror_name(rc));
}

static void tick_arm(struct meta_tick *t);

static void tick_replica(struct ox_server *srv, struct ox_topic *t,
			 uint32_t i)
{
	(void)srv;
	ox_replica_tick(t->parts[i]->rep);
}

// Partitions of cluster topics keep Raft time with the metadata group.
static void tick_partitions(struct ox_server *srv)
{
	ox_srv_each_replica(srv, tick_replica);
}

static bool meta_linked(void *arg, uint64_t id)
{
	return ox_peer_connected(arg, id) != 0;
}

// A stopping node (srv->shutting_down) hands the metadata group to the
// voter best placed to lead it that it has a link to, so the others need
// not wait for an election timeout; the server's shutdown waits for the
// new leader. Raft refuses proposals meanwhile and gives a transfer up
// after an election timeout: the next tick tries again, maybe with
// another voter.
static void meta_handover(struct ox_meta *m)
{
	const struct ox_raft *r = ox_replica_raft(m->rep);
	uint64_t to = ox_raft_successor(r, meta_linked, m->peer);

	if (to == OX_RAFT_NONE || ox_raft_transferee(r) != OX_RAFT_NONE)
		return; // not leading, alone, or under way
	if (ox_replica_transfer(m->rep, to) == 0)
		ox_slog(OX_SLOG_INFO, "handing the metadata group over to=%"
			PRIu64, to);
}

static void note_rejoin(struct ox_meta *m);

static void tick_fired(void *arg, int res)
{
	struct meta_tick *t = arg;

	t->armed = false;
	if (t->m == NULL || res == -ECANCELED) {
		if (t->m != NULL)
			t->m->tick = NULL;
		free(t); // M2
		return;
	}
	ox_replica_tick(t->m->rep);
	note_rejoin(t->m);
	if (t->m->srv->shutting_down)
		meta_handover(t->m);
	tick_partitions(t->m->srv);
	if (t->m->follow && caught_up(t->m))
		t->m->follow = !ox_srv_partitions_follow(t->m->srv);
	if (++t->m->ticks % MOVES_TICKS == 0)
		ox_srv_moves_tick(t->m->srv);
	register_nodes(t->m);
	offsets_topic_ensure(t->m);
	admin_expire(t->m);
	sweep_dirs(t->m);
	snap_take(t->m);
	tick_arm(t);
}

// A timer the loop cannot take now (its pool is full) is armed again
// by ox_meta_poke, from the server's tick.
static void tick_arm(struct meta_tick *t)
{
	t->armed = ox_io_timer(t->m->srv->io, META_TICK_MS * 1000000ull,
			       tick_fired, t) == 0;
}

void ox_meta_poke(struct ox_server *srv)
{
	struct ox_meta *m = srv->meta;

	if (m != NULL && m->tick != NULL && m->tick->m != NULL &&
	    !m->tick->armed)
		tick_arm(m->tick);
}

// ---- start and stop ----

static int open_group(struct ox_meta *m, char *err, size_t err_len)
{
	const struct ox_config *cfg = &m->srv->cfg;
	char dir[PATH_MAX], state[PATH_MAX];
	struct ox_log_config lc;
	struct ox_replica_opts o = {
		.node_id = (uint64_t)cfg->node_id,
		.state_path = state,
		.election_ticks = META_ELECTION_TICKS,
		.heartbeat_ticks = META_HEARTBEAT_TICKS,
		.inflight_max = META_INFLIGHT_MAX,
		// raft.h R9: a node starting with no metadata log may be one
		// whose disk was wiped; it votes once it has caught up, or,
		// hearing no log for three election timeouts, takes the
		// cluster for a new one.
		.rejoin_if_new = OX_RAFT_REJOIN_FRESH,
		.rejoin_grace_ticks = 3 * META_ELECTION_TICKS,
		.seed = (uint64_t)cfg->node_id * 2654435761u ^
			(uint64_t)ox_srv_now_ns(),
		.hooks = { .send = meta_send, .committed = meta_committed,
			   .role = meta_role,
			   .snapshot_get = meta_snapshot_get,
			   .snapshot_put = meta_snapshot_put, .arg = m },
	};
	int rc;

	for (unsigned i = 0; i < cfg->npeers; i++)
		o.conf.voters[o.conf.voters_n++] = (uint64_t)cfg->peers[i].id;
	snprintf(dir, sizeof(dir), "%s/meta", cfg->data_dir);
	snprintf(state, sizeof(state), "%s/meta.raft", cfg->data_dir);
	ox_log_config_default(&lc);
	lc.fsync = OX_LOG_FSYNC_ALWAYS; // metadata is never lost
	// Snapshots, not time, bound the log (M5).
	lc.segment_bytes = cfg->meta_segment_bytes;
	lc.retention_ms = -1;
	lc.retention_bytes = -1;
	rc = ox_log_open(&m->log, m->srv->io, dir, &lc);
	if (rc < 0) {
		ox_srv_fmt_err(err, err_len, "cannot open %s: %s", dir,
			       ox_strerror(rc));
		return rc;
	}
	rc = ox_replica_open(&m->rep, m->srv->io, m->log, &o);
	if (rc < 0)
		ox_srv_fmt_err(err, err_len, "cannot open the metadata group "
			       "(%s): %s", state, ox_strerror(rc));
	return rc;
}

static int open_peer(struct ox_meta *m, char *err, size_t err_len)
{
	const struct ox_config *cfg = &m->srv->cfg;
	struct ox_peer_node nodes[OX_CONFIG_PEERS_MAX];
	struct ox_peer_opts o = {
		.node_id = (uint64_t)cfg->node_id,
		.cluster_id = cfg->cluster_id,
		.client_address = m->client_address,
		.listen = cfg->peer_listen,
		.nodes = nodes,
		.nodes_n = cfg->npeers,
		// ox_server_poll flushes after every pass of the loop.
		.owner_flushes = true,
		.deliver = meta_deliver,
		.forward = meta_forwarded,
		.deliver_arg = m,
	};
	int rc;

	for (unsigned i = 0; i < cfg->npeers; i++)
		nodes[i] = (struct ox_peer_node){ (uint64_t)cfg->peers[i].id,
						  cfg->peers[i].addr };
	rc = ox_peer_create(&m->peer, m->srv->io, &o);
	if (rc < 0)
		ox_srv_fmt_err(err, err_len, "cannot listen for peers on %s: "
			       "%s", cfg->peer_listen, ox_strerror(rc));
	return rc;
}

// How long a restarting node waits to learn the metadata it had.
#define CATCH_UP_NS (10ull * 1000000000ull)

// A node that had metadata (its log is not empty) serves clients only
// once it applied what the group committed (as a leader tells it), so a
// restarted node does not answer METADATA without its topics. A node
// that finds no leader in time starts anyway (and catches up later).
static void catch_up(struct ox_meta *m)
{
	uint64_t deadline = ox_srv_now_ns() + CATCH_UP_NS;
	const struct ox_raft *r = ox_replica_raft(m->rep);

	if (ox_log_end_offset(m->log) == 0)
		return; // a new node: nothing to learn
	while (ox_srv_now_ns() < deadline) {
		if (ox_raft_leader(r) != OX_RAFT_NONE &&
		    ox_raft_commit(r) > 0 &&
		    m->applied_offset >= ox_raft_commit(r))
			return;
		if (ox_io_run(m->srv->io, 1) < 0)
			return;
	}
	ox_slog(OX_SLOG_WARN, "starting without the cluster's metadata: no "
		"leader answered within %llu s", CATCH_UP_NS / 1000000000ull);
}

// M3: a number no earlier run of this node drew (random, or the wall
// clock when the kernel gives no random bytes).
static uint64_t draw_nonce(void)
{
	struct timespec ts;
	uint64_t x = 0;

	if (getrandom(&x, sizeof(x), GRND_NONBLOCK) != (ssize_t)sizeof(x)) {
		clock_gettime(CLOCK_REALTIME, &ts);
		x = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	}
	return x ? x : 1;
}

int ox_meta_start(struct ox_server *srv, char *err, size_t err_len)
{
	struct ox_meta *m = calloc(1, sizeof(*m));
	int rc;

	if (m == NULL)
		return -ENOMEM;
	m->srv = srv;
	m->buf_cap = OX_BATCH_BYTES_MAX;
	m->buf = malloc(m->buf_cap);
	m->tick = calloc(1, sizeof(*m->tick));
	rc = ox_cluster_create(&m->state);
	if (m->buf == NULL || m->tick == NULL || rc < 0) {
		free(m->buf);
		free(m->tick);
		ox_cluster_destroy(m->state);
		free(m);
		return -ENOMEM;
	}
	snprintf(m->client_address, sizeof(m->client_address), "%s:%u",
		 srv->adv_host, srv->adv_port);
	m->nonce = draw_nonce();
	srv->meta = m;
	snprintf(m->snap_path, sizeof(m->snap_path), "%s/meta.snap",
		 srv->cfg.data_dir);
	rc = open_peer(m, err, err_len);
	if (rc == 0)
		rc = snap_load(m, err, err_len);
	if (rc == 0)
		rc = open_group(m, err, err_len);
	if (rc < 0) {
		ox_meta_stop(srv);
		return rc;
	}
	if (m->snap != NULL)
		reconcile(m);
	m->tick->m = m;
	tick_arm(m->tick);
	ox_slog(OX_SLOG_INFO, "metadata group open voters=%u peer_listen=%s "
		"cluster=%s", srv->cfg.npeers, srv->cfg.peer_listen,
		srv->cfg.cluster_id);
	catch_up(m);
	sweep_dirs(m);
	return 0;
}

void ox_meta_stop(struct ox_server *srv)
{
	struct ox_meta *m = srv->meta;

	if (m == NULL)
		return;
	if (m->tick != NULL) {
		if (!m->tick->armed)
			free(m->tick); // not in the loop
		else
			m->tick->m = NULL; // M2: the timer frees it
	}
	ox_replica_close(m->rep); // fails proposals: their items settle
	m->rep = NULL; // what the peer still delivers is dropped
	while (m->admins != NULL) { // M3
		struct admin *a = m->admins;

		for (uint32_t i = 0; i < a->n; i++)
			if (a->items[i].seq != 0) {
				a->items[i].seq = 0;
				a->items[i].err = -OX_ESHUTDOWN;
				snprintf(a->items[i].why,
					 sizeof(a->items[i].why),
					 "the node is stopping");
			}
		admin_unlink(m, a);
		admin_respond(a);
	}
	if (m->log != NULL) {
		int rc = ox_log_close(m->log);

		if (rc < 0)
			ox_slog(OX_SLOG_ERROR, "closing the metadata log failed "
				"error=%s", ox_strerror_name(rc));
	}
	ox_peer_destroy(m->peer);
	ox_cluster_destroy(m->state);
	snap_unref(m->snap); // sends in flight went with the peer
	free(m->buf);
	free(m);
	srv->meta = NULL;
}

const struct ox_cluster *ox_meta_state(const struct ox_server *srv)
{
	return srv->meta ? srv->meta->state : NULL;
}

struct ox_peer *ox_meta_peer(const struct ox_server *srv)
{
	return srv->meta ? srv->meta->peer : NULL;
}

// ---- raft.h R9 ----

static void note_rejoin(struct ox_meta *m)
{
	int64_t t;

	if (m == NULL || m->rep == NULL)
		return;
	t = ox_raft_rejoin_target(ox_replica_raft(m->rep));
	if (t > m->forgot_before)
		m->forgot_before = t;
}

bool ox_meta_rejoining(const struct ox_server *srv)
{
	const struct ox_meta *m = srv->meta;

	return m != NULL && m->rep != NULL &&
	       ox_raft_rejoining(ox_replica_raft(m->rep)) !=
		       OX_RAFT_REJOIN_NONE;
}

bool ox_meta_may_have_held(struct ox_server *srv, int64_t created_index)
{
	struct ox_meta *m = srv->meta;

	note_rejoin(m);
	// Both are entry indices (an entry's offset + 1): the leader's log
	// then ended with the entry at forgot_before, which counts.
	return m != NULL && created_index <= m->forgot_before;
}

// ---- queries for CLUSTER_STATUS ----

int64_t ox_meta_leader(const struct ox_server *srv, uint64_t *term)
{
	const struct ox_raft *r = ox_replica_raft(srv->meta->rep);

	*term = ox_raft_term(r);
	return ox_raft_leader(r) ? (int64_t)ox_raft_leader(r) : -1;
}

uint32_t ox_meta_nodes_n(const struct ox_server *srv)
{
	return ox_cluster_nodes_n(srv->meta->state);
}

int ox_meta_node_at(const struct ox_server *srv, uint32_t i,
		    uint64_t *id, const char **client, const char **peer,
		    bool *reachable)
{
	struct ox_cluster_node n;
	int rc = ox_cluster_node_at(srv->meta->state, i, &n);

	if (rc < 0)
		return rc;
	*id = n.id;
	*client = n.client_address;
	*peer = n.peer_address;
	*reachable = n.id == (uint64_t)srv->cfg.node_id ||
		     ox_peer_connected(srv->meta->peer, n.id);
	return 0;
}
