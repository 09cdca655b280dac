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
// Invariants:
//   M1 The state only ever holds committed entries, applied in log order,
//      each exactly once (applied_offset only grows).
//   M2 A timer callback never touches freed memory: the tick owns a small
//      heap object that the layer lets go of at stop (as S7).
//
// Topics of a multi-node cluster, their partitions' replicas and the
// routing of their Raft traffic build on this layer.
#include "broker/server/server_int.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/cluster/cluster.h"
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
#define META_ELECTION_TICKS 15u
#define META_HEARTBEAT_TICKS 3u
#define META_INFLIGHT_MAX 8u
// Bytes of the meta log read per pass when applying.
#define META_READ_BYTES (1u << 20)

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
	struct create *creates; // CREATE_TOPICS waiting for their entry
};

// A CREATE_TOPICS of one topic whose entry is on its way: answered when
// the entry at `index` is applied (its verdict), or when proposing fails.
struct create {
	struct create *next;
	struct ox_meta *m;       // NULL once the layer stopped
	struct ox_net_req *req;
	Oxbow__CreateTopicsRequest *msg;
	uint8_t *batch;
	int64_t index;           // 0 until committed
};

// ---- topic creation ----

static void create_answer(struct create *c, int err, const char *why)
{
	Oxbow__TopicResult res = OXBOW__TOPIC_RESULT__INIT, *rp = &res;
	Oxbow__CreateTopicsResponse r = OXBOW__CREATE_TOPICS_RESPONSE__INIT;

	res.name = c->msg->topics[0]->name;
	res.error_code = (Oxbow__ErrorCode)ox_error_to_wire(err);
	res.error_message = (char *)(err ? why : "");
	r.n_topics = 1;
	r.topics = &rp;
	ox_srv_respond_msg(c->req, &r.base);
	oxbow__create_topics_request__free_unpacked(c->msg, NULL);
	free(c->batch);
	free(c);
}

static void create_unlink(struct ox_meta *m, struct create *c)
{
	struct create **p = &m->creates;

	while (*p != c)
		p = &(*p)->next;
	*p = c->next;
}

// The entry at `index` was applied with `verdict`: answer its creator.
static void created(struct ox_meta *m, int64_t index, int verdict)
{
	for (struct create *c = m->creates; c != NULL; c = c->next) {
		if (c->index != index)
			continue;
		create_unlink(m, c);
		create_answer(c, verdict, "refused by the metadata group");
		return;
	}
}

static void create_committed(void *arg, int res, int64_t base, int64_t last)
{
	struct create *c = arg;

	(void)base;
	if (c->m == NULL) {
		create_answer(c, -OX_ESHUTDOWN, "the node is stopping");
		return;
	}
	if (res < 0) {
		create_unlink(c->m, c);
		create_answer(c, res, "the metadata leader changed; retry");
		return;
	}
	c->index = last + 1; // answered once applied (created())
	if (c->m->applied_offset > last)
		created(c->m, c->index, 0);
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
		if (res.verdict == 0 && res.op == OX_CLUSTER_OP_CREATE_TOPIC)
			ox_srv_cluster_topic_open(m->srv, res.topic_id);
		created(m, r.offset + 1, res.verdict);
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

// Partitions of cluster topics keep Raft time with the metadata group.
static void tick_partitions(struct ox_server *srv)
{
	for (size_t s = 0; s < OX_TOPIC_SLOTS; s++)
		for (struct ox_topic *t = srv->topics[s]; t; t = t->next) {
			if (t->assignment == NULL)
				continue;
			for (uint32_t i = 0; i < t->meta.partitions; i++)
				if (t->parts[i] != NULL)
					ox_replica_tick(t->parts[i]->rep);
		}
}

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
	tick_partitions(t->m->srv);
	register_nodes(t->m);
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
		.seed = (uint64_t)cfg->node_id * 2654435761u ^
			(uint64_t)ox_srv_now_ns(),
		.hooks = { .send = meta_send, .committed = meta_committed,
			   .role = meta_role, .arg = m },
	};
	int rc;

	for (unsigned i = 0; i < cfg->npeers; i++)
		o.conf.voters[o.conf.voters_n++] = (uint64_t)cfg->peers[i].id;
	snprintf(dir, sizeof(dir), "%s/meta", cfg->data_dir);
	snprintf(state, sizeof(state), "%s/meta.raft", cfg->data_dir);
	ox_log_config_default(&lc);
	lc.fsync = OX_LOG_FSYNC_ALWAYS; // metadata is never lost
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
		.deliver = meta_deliver,
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
	srv->meta = m;
	rc = open_peer(m, err, err_len);
	if (rc == 0)
		rc = open_group(m, err, err_len);
	if (rc < 0) {
		ox_meta_stop(srv);
		return rc;
	}
	m->tick->m = m;
	tick_arm(m->tick);
	ox_slog(OX_SLOG_INFO, "metadata group open voters=%u peer_listen=%s "
		"cluster=%s", srv->cfg.npeers, srv->cfg.peer_listen,
		srv->cfg.cluster_id);
	catch_up(m);
	return 0;
}

void ox_meta_stop(struct ox_server *srv)
{
	struct ox_meta *m = srv->meta;

	if (m == NULL)
		return;
	while (m->creates != NULL) {
		struct create *c = m->creates;

		m->creates = c->next;
		if (c->index == 0) {
			c->m = NULL; // the replica's callback answers it
			continue;
		}
		create_answer(c, -OX_ESHUTDOWN, "the node is stopping");
	}
	if (m->tick != NULL) {
		if (!m->tick->armed)
			free(m->tick); // not in the loop
		else
			m->tick->m = NULL; // M2: the timer frees it
	}
	ox_replica_close(m->rep);
	m->rep = NULL; // what the peer still delivers is dropped
	if (m->log != NULL) {
		int rc = ox_log_close(m->log);

		if (rc < 0)
			ox_slog(OX_SLOG_ERROR, "closing the metadata log failed "
				"error=%s", ox_strerror_name(rc));
	}
	ox_peer_destroy(m->peer);
	ox_cluster_destroy(m->state);
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

// Builds and proposes the CreateTopic entry of m (checked by the server's
// rules already): replicas placed among the registered nodes.
static int create_propose(struct ox_meta *m, struct create *c,
			  const struct ox_topic_meta *tm,
			  const Oxbow__TopicSpec *spec, const char **why)
{
	struct ox_cluster_kv kv[OX_CLUSTER_CONFIGS_MAX];
	struct ox_cluster_topic_spec cs = {
		.name = tm->name,
		.partitions = tm->partitions,
		.replication_factor = tm->replicas ? tm->replicas : 1,
		.configs = kv,
	};
	uint64_t *assignment;
	uint8_t *entry = NULL;
	size_t len;
	int rc;

	if (spec->n_configs > OX_CLUSTER_CONFIGS_MAX) {
		*why = "too many config overrides";
		return -OX_EINVALID_CONFIG;
	}
	for (size_t i = 0; i < spec->n_configs; i++)
		if (strcmp(spec->configs[i]->key, "partitions") != 0)
			kv[cs.configs_n++] = (struct ox_cluster_kv){
				spec->configs[i]->key,
				spec->configs[i]->value };
	assignment = calloc((size_t)cs.partitions * cs.replication_factor,
			    sizeof(*assignment));
	if (assignment == NULL)
		return -ENOMEM;
	cs.assignment = assignment;
	rc = ox_cluster_place(m->state, NULL, 0, cs.partitions,
			      cs.replication_factor, assignment);
	if (rc < 0) {
		*why = "the replicas do not fit the registered nodes "
		       "(1, 3 or 5, at most one per node)";
		rc = -OX_EINVALID_REQUEST;
	}
	if (rc == 0)
		rc = ox_cluster_entry_create_topic(&cs, &entry, &len);
	if (rc == 0) {
		rc = ox_cluster_check(m->state, entry, len, NULL);
		if (rc < 0)
			*why = rc == -OX_ETOPIC_EXISTS ? "the topic exists" :
							 "refused by the "
							 "metadata rules";
	}
	if (rc == 0)
		rc = propose_batch(m, entry, len, create_committed, c,
				   &c->batch);
	free(entry);
	free(assignment);
	return rc;
}

void ox_meta_create_topic(struct ox_server *srv, struct ox_net_req *req,
			  Oxbow__CreateTopicsRequest *msg,
			  const struct ox_topic_meta *tm)
{
	struct ox_meta *m = srv->meta;
	struct create *c = calloc(1, sizeof(*c));
	const char *why = "out of memory";
	char lead[96];
	int rc = -ENOMEM;

	if (c != NULL) {
		c->m = m;
		c->req = req;
		c->msg = msg;
		if (ox_raft_role(ox_replica_raft(m->rep)) != OX_RAFT_LEADER) {
			uint64_t term;

			snprintf(lead, sizeof(lead), "topics are created by "
				 "the metadata leader, node %" PRId64,
				 ox_meta_leader(srv, &term));
			why = lead;
			rc = -OX_ENOTLEADER;
		} else {
			rc = create_propose(m, c, tm, msg->topics[0], &why);
		}
	}
	if (rc < 0) {
		if (c == NULL) {
			ox_srv_respond_error(req, rc, why);
			oxbow__create_topics_request__free_unpacked(msg, NULL);
			return;
		}
		create_answer(c, rc, why);
		return;
	}
	c->next = m->creates;
	m->creates = c;
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
