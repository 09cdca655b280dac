// SPDX-License-Identifier: Apache-2.0
//
// The server's life cycle and plumbing: start-up (lock, topics, __offsets,
// net, ready file), the topic table, the append path shared by PRODUCE,
// OFFSET_COMMIT and topic deletion, request dispatch, the housekeeping
// tick, shutdown. The handlers live in admin.c, produce.c, fetch.c and
// groups.c.
//
// Design notes
//
// One thread owns the io loop, the net and every partition log. Handlers
// run inside io callbacks (the net calls them from its receive
// completions), so they never run the loop themselves: anything that must
// (closing a log) is deferred to ox_server_poll(), which oxbowd calls
// after each ox_io_run().
//
// Invariants (cited as S1..S7 where they are kept):
//   S1 Every request handed to the handler is ended exactly once: answered,
//      finished (acks=none) or rejected, including at shutdown.
//   S2 Consumers never read past the high watermark: the partition's
//      Raft commit index (broker/replica), which a single voter reaches
//      when its log is durable (log.fsync = always) or written (interval:
//      the point at which that policy acknowledges producers).
//   S3 Appends reach each log in the order their requests arrived: once
//      one append waits for room (-EBUSY), every later append queues
//      behind it, and the queue drains from append callbacks and from
//      ox_server_poll(). Nothing is dropped; the queue is bounded by the
//      net's per-connection in-flight limits.
//   S4 A produce or commit is answered only after every one of its
//      batches was called back by the log (durable or failed), and a
//      request's raw bytes, which the log borrows, stay alive until then.
//   S5 The topic metadata file is rewritten (atomically) before a created
//      topic is announced and before a deleted one is closed; at start,
//      partition directories the file does not name are removed.
//   S6 The group-offset map only holds commits whose __offsets batch is
//      durable, so a fetch never reports an offset a restart would lose.
//   S7 A timer callback never touches a freed server: the tick and each
//      parked fetch own small heap objects that the callback frees once
//      the server has let go of them.
#include "broker/server/server_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "broker/cluster/cluster.h"
#include "broker/io/io.h"
#include "broker/peer/peer.h"
#include "broker/slog/slog.h"
#include "proto/assert.h"
#include "proto/batch.h"
#include "proto/error.h"
#include "proto/wire.h"

struct ox_tick {
	struct ox_server *srv; // NULL once the server let go (S7)
	bool armed;
	bool due;           // a tick fired: poll does the housekeeping
	bool run_retention; // and retention is due too
};

void ox_srv_fmt_err(char *err, size_t err_len, const char *fmt, ...)
{
	va_list ap;

	if (!err || err_len == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, err_len, fmt, ap);
	va_end(ap);
}

void *ox_srv_body_unpack(struct ox_net_req *req,
			 const ProtobufCMessageDescriptor *d, const char *api)
{
	const struct ox_net_req_info *in = ox_net_req_info(req);
	ProtobufCMessage *m =
		protobuf_c_message_unpack(d, NULL, in->body_len, in->body);

	if (!m) {
		char reason[64];

		snprintf(reason, sizeof(reason), "%s body does not parse", api);
		ox_net_reject(req, reason);
	}
	return m;
}

uint64_t ox_srv_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

// ---- topic table ----

static size_t slot_of(const char *name)
{
	return XXH3_64bits(name, strlen(name)) & (OX_TOPIC_SLOTS - 1);
}

struct ox_topic *ox_srv_topic_find(struct ox_server *srv, const char *name)
{
	struct ox_topic *t = srv->topics[slot_of(name)];
	while (t && strcmp(t->meta.name, name) != 0)
		t = t->next;
	return t;
}

struct ox_partition *ox_srv_partition(struct ox_server *srv,
				      const char *topic, uint32_t partition)
{
	struct ox_topic *t = ox_srv_topic_find(srv, topic);
	if (!t || partition >= t->meta.partitions)
		return NULL;
	return t->parts[partition];
}

int ox_srv_partition_lookup(struct ox_server *srv, const char *topic,
			    uint32_t partition, struct ox_partition **out)
{
	struct ox_topic *t = ox_srv_topic_find(srv, topic);

	*out = NULL;
	if (!t || partition >= t->meta.partitions)
		return -OX_EUNKNOWN_TOPIC;
	*out = t->parts[partition];
	return *out ? 0 : -OX_ENOTLEADER;
}

struct ox_topic *ox_srv_topic_by_id(struct ox_server *srv, uint64_t id)
{
	for (size_t s = 0; s < OX_TOPIC_SLOTS; s++)
		for (struct ox_topic *t = srv->topics[s]; t; t = t->next)
			if (t->meta.id == id)
				return t;
	return NULL;
}

void ox_srv_topic_insert(struct ox_server *srv, struct ox_topic *t)
{
	size_t s = slot_of(t->meta.name);
	t->next = srv->topics[s];
	srv->topics[s] = t;
	srv->ntopics++;
	srv->npartitions += t->meta.partitions;
}

void ox_srv_topic_unlink(struct ox_server *srv, struct ox_topic *t)
{
	struct ox_topic **p = &srv->topics[slot_of(t->meta.name)];
	while (*p != t)
		p = &(*p)->next;
	*p = t->next;
	t->next = NULL;
	srv->ntopics--;
	srv->npartitions -= t->meta.partitions;
}

int64_t ox_srv_hw(const struct ox_server *srv, const struct ox_partition *p)
{
	(void)srv;
	return ox_replica_high_watermark(p->rep); // S2
}

void ox_srv_partition_dir(const struct ox_server *srv, uint64_t topic_id,
			  int64_t partition, char *buf, size_t cap)
{
	if (partition < 0)
		snprintf(buf, cap, "%s/topics/%" PRIu64, srv->cfg.data_dir,
			 topic_id);
	else
		snprintf(buf, cap, "%s/topics/%" PRIu64 "/%" PRId64,
			 srv->cfg.data_dir, topic_id, partition);
}

static int rm_entry(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	if (remove(path) < 0 && errno != ENOENT)
		ox_slog(OX_SLOG_WARN, "cannot remove path=%s error=\"%s\"", path,
			strerror(errno));
	return 0;
}

void ox_srv_rm_tree(const char *path)
{
	nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

// No peers yet: a single voter never needs to send.
static int replica_send(void *arg, const struct ox_raft_msg *msg,
			const struct iovec *raw, int iovcnt,
			ox_replica_release_cb release, void *release_arg)
{
	(void)arg, (void)msg, (void)raw, (void)iovcnt, (void)release;
	(void)release_arg;
	return -ENOTCONN;
}

// A partition of a cluster topic: its leadership changes are logged.
static void replica_role(void *arg, enum ox_raft_role role, uint64_t term,
			 uint64_t leader)
{
	struct ox_partition *p = arg;
	const struct ox_raft *r = ox_replica_raft(p->rep);

	if (role != OX_RAFT_LEADER && (role != OX_RAFT_FOLLOWER || !leader))
		return;
	ox_slog(OX_SLOG_INFO, "partition leader topic=%s partition=%u "
		"leader=%" PRIu64 " term=%" PRIu64 " log_end=%" PRId64
		" commit=%" PRId64, p->topic->meta.name, p->index, leader, term,
		ox_raft_last_index(r), ox_raft_commit(r));
}

// A partition of a cluster topic talks to its replicas over the peers.
static int replica_send_peer(void *arg, const struct ox_raft_msg *msg,
			     const struct iovec *raw, int iovcnt,
			     ox_replica_release_cb release, void *release_arg)
{
	struct ox_partition *p = arg;
	struct ox_peer_group g = { p->topic->meta.id, p->index };
	struct ox_peer *peer = ox_meta_peer(p->srv);

	if (peer == NULL)
		return -ENOTCONN; // stopping
	return ox_peer_send(peer, &g, msg, raw, iovcnt, release, release_arg);
}

static void replica_committed(void *arg, int64_t hw)
{
	struct ox_partition *p = arg;

	(void)hw;
	p->acked_bytes = ox_replica_committed_bytes(p->rep);
	p->srv->wake = true;
}

// The membership a replica new here while its partition moves starts
// with: the list the partition had, else the one it goes to, without this
// node (it is not a voter until the leader makes it one).
static void joining_conf(struct ox_raft_conf *c,
			 const struct ox_cluster_partition *cp, uint64_t self)
{
	const uint64_t *lists[2] = { cp->from, cp->replicas };

	for (int l = 0; l < 2; l++) {
		c->voters_n = 0;
		for (uint32_t k = 0; k < cp->replicas_n; k++)
			if (lists[l][k] != self)
				c->voters[c->voters_n++] = lists[l][k];
		if (c->voters_n > 0)
			return;
	}
	OX_ASSERT(!"a move between two lists of this node alone");
}

// The Raft group of a partition: its hard state sits beside the log's
// directory (<dir>.raft), so deleting the topic's directory takes both.
static int open_replica(struct ox_server *srv, struct ox_partition *p,
			const char *dir)
{
	char state[PATH_MAX];
	struct ox_replica_opts o = {
		.node_id = srv->cfg.node_id,
		.state_path = state,
		.conf = { .voters_n = 1, .voters = { srv->cfg.node_id } },
		.election_ticks = OX_RAFT_ELECTION_TICKS,
		.heartbeat_ticks = OX_RAFT_HEARTBEAT_TICKS,
		.inflight_max = OX_RAFT_INFLIGHT_MAX,
		.seed = srv->cfg.node_id * 1000003u +
			p->topic->meta.id * 101u + p->index,
		.hooks = { .send = replica_send,
			   .committed = replica_committed, .arg = p },
	};

	if ((size_t)snprintf(state, sizeof(state), "%s.raft", dir) >=
	    sizeof(state))
		return -ENAMETOOLONG;
	p->srv = srv;
	if (p->topic->assignment != NULL) {
		const uint64_t *r = p->topic->assignment +
				    (size_t)p->index * p->topic->meta.replicas;

		struct ox_cluster_partition cp = { 0 };

		o.conf.voters_n = p->topic->meta.replicas;
		for (uint32_t k = 0; k < o.conf.voters_n; k++)
			o.conf.voters[k] = r[k];
		// A replica new here while its partition moves (one this node
		// had keeps the membership its state file holds) joins as a
		// non-voter of the group as it was, the leader adding it as a
		// learner, and holds its vote back until it has caught up
		// (moves.c V5).
		if (ox_srv_cluster_partition(srv, p->topic, p->index,
					     &cp) == 0 && cp.moving)
			joining_conf(&o.conf, &cp, (uint64_t)srv->cfg.node_id);
		o.hooks.send = replica_send_peer;
		o.hooks.role = replica_role;
		o.seed ^= ox_srv_now_ns();
		// raft.h R9: a replica this node may have held before its
		// disk was wiped holds its votes back until it has caught up.
		o.rejoin_if_new =
			ox_meta_may_have_held(srv, p->topic->created_index) ||
					cp.moving ?
				OX_RAFT_REJOIN_BEHIND :
				OX_RAFT_REJOIN_NONE;
	}
	return ox_replica_open(&p->rep, srv->io, p->log, &o);
}

int ox_srv_cluster_partition(const struct ox_server *srv,
			     const struct ox_topic *t, uint32_t i,
			     struct ox_cluster_partition *out)
{
	if (srv->meta == NULL || t->assignment == NULL)
		return -OX_EUNKNOWN_TOPIC;
	return ox_cluster_partition_get(ox_meta_state(srv),
					t->meta.id - OX_CLUSTER_TOPIC_ID_BASE,
					i, out);
}

bool ox_srv_hosted(const struct ox_server *srv, const struct ox_topic *t,
		   uint32_t i)
{
	struct ox_cluster_partition cp;
	char dir[PATH_MAX];
	struct stat st;

	if (t->assignment == NULL)
		return true;
	for (uint32_t k = 0; k < t->meta.replicas; k++)
		if (t->assignment[(size_t)i * t->meta.replicas + k] ==
		    (uint64_t)srv->cfg.node_id)
			return true;
	// A partition moving away keeps its copy here, a voter maybe, until
	// its leader has the group without it (moves.c).
	if (ox_srv_cluster_partition(srv, t, i, &cp) < 0 || !cp.moving)
		return false;
	ox_srv_partition_dir(srv, t->meta.id, i, dir, sizeof(dir));
	return stat(dir, &st) == 0;
}

int ox_srv_partition_open(struct ox_server *srv, struct ox_topic *t,
			  uint32_t i)
{
	char dir[PATH_MAX];
	struct ox_log_config lc;

	if (!ox_srv_hosted(srv, t, i)) {
		t->parts[i] = NULL;
		return 0;
	}

	struct ox_partition *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->topic = t;
	p->index = i;
	ox_topic_log_config(&t->meta.cfg, &srv->cfg, &lc);
	ox_srv_partition_dir(srv, t->meta.id, i, dir, sizeof(dir));
	int rc = ox_log_open(&p->log, srv->io, dir, &lc);
	if (rc < 0) {
		ox_slog(OX_SLOG_ERROR,
			"cannot open partition log topic=%s partition=%u "
			"dir=%s error=\"%s\"", t->meta.name, i, dir,
			ox_strerror(rc));
		free(p);
		return rc;
	}
	rc = open_replica(srv, p, dir);
	if (rc < 0) {
		ox_slog(OX_SLOG_ERROR,
			"cannot open partition replica topic=%s partition=%u "
			"error=\"%s\"", t->meta.name, i, ox_strerror(rc));
		ox_log_close(p->log);
		free(p);
		return rc;
	}
	t->parts[i] = p;
	return 0;
}

static void close_partition(struct ox_partition *p, const char *name)
{
	if (p == NULL)
		return; // not hosted here
	ox_replica_close(p->rep);
	int rc = ox_log_close(p->log);
	if (rc < 0)
		ox_slog(OX_SLOG_ERROR,
			"closing a partition log failed topic=%s partition=%u "
			"error=\"%s\"", name, p->index, ox_strerror(rc));
	free(p);
}

// Partitions that moved away from this node: closed (which runs the loop,
// so the list is taken first) and removed, log and Raft state both.
static void close_parting(struct ox_server *srv)
{
	struct ox_partition *p = srv->parting;
	char dir[PATH_MAX], state[PATH_MAX + 8];

	srv->parting = NULL;
	while (p != NULL) {
		struct ox_partition *next = p->parting_next;
		uint64_t id = p->parting_topic_id; // p->topic may be gone
		uint32_t i = p->index;
		char name[32];

		snprintf(name, sizeof(name), "id %" PRIu64, id);
		close_partition(p, name);
		ox_srv_partition_dir(srv, id, i, dir, sizeof(dir));
		snprintf(state, sizeof(state), "%s.raft", dir);
		// The Raft state first: a log directory left without it by a
		// crash is never taken for a voter's (moves.c V1).
		if (unlink(state) < 0 && errno != ENOENT)
			ox_slog(OX_SLOG_WARN, "cannot remove a moved partition's "
				"raft state path=%s error=\"%s\"", state,
				strerror(errno));
		ox_srv_rm_tree(dir);
		ox_slog(OX_SLOG_INFO, "partition copy removed: it moved away "
			"topic_id=%" PRIu64 " partition=%u", id, i);
		p = next;
	}
}

static bool parting_of(const struct ox_server *srv, const struct ox_topic *t)
{
	for (const struct ox_partition *p = srv->parting; p != NULL;
	     p = p->parting_next)
		if (p->topic == t)
			return true;
	return false;
}

// Closes what moved away and what was deleted. Closing runs the loop,
// which may add to either list, so each is taken one at a time; a
// deleted topic is freed only once no partition of it waits to close
// (their hooks read the topic).
static void close_doomed(struct ox_server *srv)
{
	close_parting(srv);
	while (srv->doomed != NULL) {
		struct ox_topic *t = srv->doomed;

		srv->doomed = t->next;
		while (parting_of(srv, t))
			close_parting(srv);
		ox_srv_topic_close(t, true, srv->cfg.data_dir);
	}
}

void ox_srv_partitions_drop_fresh(struct ox_server *srv, struct ox_topic *t,
				  uint32_t from, uint32_t to)
{
	char dir[PATH_MAX];

	for (uint32_t i = from; i < to; i++) {
		close_partition(t->parts[i], t->meta.name);
		t->parts[i] = NULL;
		ox_srv_partition_dir(srv, t->meta.id, i, dir, sizeof(dir));
		ox_srv_rm_tree(dir);
	}
}

int ox_srv_partitions_grow(struct ox_server *srv, struct ox_topic *t,
			   uint32_t partitions)
{
	char dir[PATH_MAX];
	uint32_t old = t->meta.partitions;

	OX_ASSERT(partitions >= old);
	struct ox_partition **parts =
		realloc(t->parts, partitions * sizeof(*parts));
	if (!parts)
		return -ENOMEM;
	t->parts = parts;
	ox_srv_partition_dir(srv, t->meta.id, -1, dir, sizeof(dir));
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return -errno;
	for (uint32_t i = old; i < partitions; i++) {
		int rc = ox_srv_partition_open(srv, t, i);
		if (rc < 0) {
			// Fresh logs have nothing in flight: closing them
			// here does not run the loop.
			ox_srv_partitions_drop_fresh(srv, t, old, i);
			return rc;
		}
	}
	return 0;
}

int ox_srv_topic_open(struct ox_server *srv, const struct ox_topic_meta *m,
		      struct ox_topic **out)
{
	struct ox_topic *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->meta = *m;
	t->meta.partitions = 0;
	t->internal = ox_topic_name_reserved(m->name);
	int rc = ox_srv_partitions_grow(srv, t, m->partitions);
	if (rc < 0) {
		free(t->parts);
		free(t);
		return rc;
	}
	t->meta.partitions = m->partitions;
	*out = t;
	return 0;
}

void ox_srv_topic_close(struct ox_topic *t, bool remove_dir,
			const char *data_dir)
{
	char dir[PATH_MAX];

	for (uint32_t i = 0; i < t->meta.partitions; i++)
		close_partition(t->parts[i], t->meta.name);
	if (remove_dir) {
		snprintf(dir, sizeof(dir), "%s/topics/%" PRIu64, data_dir,
			 t->meta.id);
		ox_srv_rm_tree(dir);
	}
	free(t->parts);
	free(t->assignment);
	free(t);
}

int ox_srv_cluster_topic_open(struct ox_server *srv, uint64_t topic_id)
{
	const struct ox_cluster *c = ox_meta_state(srv);
	struct ox_cluster_topic ct;
	struct ox_topic_meta m;
	struct ox_topic *t;
	char why[128];
	int rc;

	if (ox_srv_topic_by_id(srv, OX_CLUSTER_TOPIC_ID_BASE + topic_id))
		return 0; // open already
	rc = ox_cluster_topic_by_id(c, topic_id, &ct);
	if (rc < 0)
		return rc;
	memset(&m, 0, sizeof(m));
	snprintf(m.name, sizeof(m.name), "%s", ct.name);
	m.id = OX_CLUSTER_TOPIC_ID_BASE + ct.id;
	m.partitions = ct.partitions;
	m.replicas = ct.replication_factor;
	for (uint32_t i = 0; i < ct.configs_n; i++) {
		struct ox_cluster_kv kv;

		if (ox_cluster_config_at(c, topic_id, i, &kv) == 0 &&
		    ox_topic_config_set(&m.cfg, kv.key, kv.value, why,
					sizeof(why)) < 0)
			ox_slog(OX_SLOG_WARN, "topic config ignored topic=%s "
				"key=%s reason=\"%s\"", m.name, kv.key, why);
	}
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return -ENOMEM;
	t->meta = m;
	t->meta.partitions = 0;
	t->created_index = ct.created_index;
	t->internal = ox_topic_name_reserved(m.name);
	t->assignment = calloc((size_t)m.partitions * m.replicas,
			       sizeof(*t->assignment));
	if (t->assignment == NULL) {
		free(t);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < m.partitions; i++) {
		struct ox_cluster_partition cp;

		rc = ox_cluster_partition_get(c, topic_id, i, &cp);
		OX_ASSERT(rc == 0 && cp.replicas_n == m.replicas); // C5
		memcpy(t->assignment + (size_t)i * m.replicas, cp.replicas,
		       m.replicas * sizeof(*cp.replicas));
	}
	rc = ox_srv_partitions_grow(srv, t, m.partitions);
	if (rc < 0) {
		ox_slog(OX_SLOG_ERROR, "cannot open a cluster topic name=%s "
			"error=%s", m.name, ox_strerror_name(rc));
		free(t->parts);
		free(t->assignment);
		free(t);
		return rc;
	}
	t->meta.partitions = m.partitions;
	ox_srv_topic_insert(srv, t);
	ox_slog(OX_SLOG_INFO, "cluster topic open name=%s id=%" PRIu64
		" partitions=%u replicas=%u", m.name, m.id, m.partitions,
		m.replicas);
	return 0;
}

int ox_srv_meta_save(struct ox_server *srv)
{
	const struct ox_topic_meta **all =
		calloc(srv->ntopics + 1, sizeof(*all));
	size_t n = 0;

	if (!all)
		return -ENOMEM;
	for (size_t s = 0; s < OX_TOPIC_SLOTS; s++)
		for (struct ox_topic *t = srv->topics[s]; t; t = t->next)
			if (t->assignment == NULL) // the cluster keeps its own
				all[n++] = &t->meta;
	int rc = ox_topics_file_write(srv->cfg.data_dir, srv->next_topic_id,
				      all, n);
	free(all);
	if (rc < 0)
		ox_slog(OX_SLOG_ERROR,
			"cannot write the topic metadata file dir=%s "
			"error=\"%s\"", srv->cfg.data_dir, ox_strerror(rc));
	return rc;
}

// ---- appends (S3) ----

static void append_done(void *arg, int res, int64_t base, int64_t last)
{
	struct ox_append *a = arg;
	struct ox_server *srv = a->srv;

	(void)last;
	OX_ASSERT(srv->appends_inflight > 0);
	srv->appends_inflight--;
	a->done(a, res, res == 0 ? base : -1);
}

static int append_start(struct ox_server *srv, struct ox_append *a)
{
	int rc = ox_replica_append(a->part->rep, a->batch, a->len, a->acks,
				   append_done, a);
	if (rc == 0)
		srv->appends_inflight++;
	return rc;
}

static void drain_busy(struct ox_server *srv)
{
	struct ox_append *a;

	while ((a = srv->busy_head) != NULL) {
		int rc = append_start(srv, a);
		if (rc == -EBUSY)
			break;
		srv->busy_head = a->next;
		if (!srv->busy_head)
			srv->busy_tail = NULL;
		srv->appends_queued--;
		if (rc < 0)
			a->done(a, rc, -1);
	}
}

int ox_srv_append(struct ox_server *srv, struct ox_append *a)
{
	a->srv = srv;
	a->next = NULL;
	if (!srv->busy_head) {
		int rc = append_start(srv, a);
		if (rc != -EBUSY)
			return rc;
	}
	if (srv->busy_tail)
		srv->busy_tail->next = a;
	else
		srv->busy_head = a;
	srv->busy_tail = a;
	srv->appends_queued++;
	return 0;
}

// Fails the queued appends of topic t (of its partition `only`, if not
// NULL) being taken out of service.
static void fail_queued(struct ox_server *srv, const struct ox_topic *t,
			const struct ox_partition *only)
{
	struct ox_append **p = &srv->busy_head, *a, *failed = NULL;

	srv->busy_tail = NULL;
	while ((a = *p) != NULL) {
		if (a->part->topic == t && (only == NULL || a->part == only)) {
			*p = a->next;
			srv->appends_queued--;
			a->next = failed;
			failed = a;
		} else {
			srv->busy_tail = a;
			p = &a->next;
		}
	}
	while ((a = failed) != NULL) {
		failed = a->next;
		a->done(a, -OX_EUNKNOWN_TOPIC, -1);
	}
}

void ox_srv_topic_doom(struct ox_server *srv, struct ox_topic *t)
{
	fail_queued(srv, t, NULL);
	ox_srv_fetch_forget(srv, t, NULL);
	t->next = srv->doomed;
	srv->doomed = t;
}

void ox_srv_each_replica(struct ox_server *srv,
			 void (*fn)(struct ox_server *srv, struct ox_topic *t,
				    uint32_t i))
{
	for (size_t s = 0; s < OX_TOPIC_SLOTS; s++)
		for (struct ox_topic *t = srv->topics[s]; t; t = t->next) {
			if (t->assignment == NULL)
				continue;
			for (uint32_t i = 0; i < t->meta.partitions; i++)
				if (t->parts[i] != NULL)
					fn(srv, t, i);
		}
}

bool ox_srv_parting(const struct ox_server *srv, uint64_t topic_id,
		    uint32_t i)
{
	for (const struct ox_partition *p = srv->parting; p != NULL;
	     p = p->parting_next)
		if (p->parting_topic_id == topic_id && p->index == i)
			return true;
	return false;
}

void ox_srv_partition_doom(struct ox_server *srv, struct ox_topic *t,
			   uint32_t i)
{
	struct ox_partition *p = t->parts[i];

	OX_ASSERT(p != NULL);
	fail_queued(srv, t, p);
	ox_srv_fetch_forget(srv, t, p);
	t->parts[i] = NULL;
	p->parting_topic_id = t->meta.id;
	p->parting_next = srv->parting;
	srv->parting = p;
}

// ---- responses ----

// Small bodies are packed on the stack; the net copies them.
#define PACK_STACK_BYTES 4096u

void ox_srv_respond_msg(struct ox_net_req *req, const ProtobufCMessage *msg)
{
	uint8_t stack[PACK_STACK_BYTES];
	size_t len = protobuf_c_message_get_packed_size(msg);
	uint8_t *buf = len <= sizeof(stack) ? stack : malloc(len);

	if (!buf) {
		ox_srv_respond_error(req, -ENOMEM, "out of memory");
		return;
	}
	protobuf_c_message_pack(msg, buf);
	struct ox_net_response r = {.body = buf, .body_len = len};
	ox_net_respond(req, &r);
	if (buf != stack)
		free(buf);
}

void ox_srv_respond_error(struct ox_net_req *req, int err, const char *why)
{
	struct ox_net_response r = {.error = err, .error_message = why};
	ox_net_respond(req, &r);
}

// ---- dispatch ----

static void handle(void *arg, struct ox_net_req *req)
{
	struct ox_server *srv = arg;
	const struct ox_net_req_info *in = ox_net_req_info(req);
	char why[128];

	// While it hands its groups over, a stopping node still tells
	// clients who leads now.
	if (srv->shutting_down && in->api_key != OXBOW__API_KEY__METADATA) {
		ox_srv_respond_error(req, -OX_ESHUTDOWN,
				     "the node is shutting down");
		return;
	}
	if (in->api_key == OXBOW__API_KEY__API_VERSIONS) {
		ox_srv_api_versions(srv, req);
		return;
	}
	if (in->api_version != 1) {
		snprintf(why, sizeof(why), "api %u version %u is not served "
			 "(version 1 is)", in->api_key, in->api_version);
		ox_srv_respond_error(req, -OX_EUNSUPPORTED, why);
		return;
	}
	if (in->raw_len > 0 && in->api_key != OXBOW__API_KEY__PRODUCE) {
		ox_srv_respond_error(req, -OX_EINVALID_REQUEST,
				     "only PRODUCE carries raw batches");
		return;
	}
	switch (in->api_key) {
	case OXBOW__API_KEY__METADATA:
		ox_srv_metadata(srv, req);
		return;
	case OXBOW__API_KEY__PRODUCE:
		ox_srv_produce(srv, req);
		return;
	case OXBOW__API_KEY__FETCH:
		ox_srv_fetch(srv, req);
		return;
	case OXBOW__API_KEY__LIST_OFFSETS:
		ox_srv_list_offsets(srv, req);
		return;
	case OXBOW__API_KEY__CREATE_TOPICS:
		ox_srv_create_topics(srv, req);
		return;
	case OXBOW__API_KEY__DELETE_TOPICS:
		ox_srv_delete_topics(srv, req);
		return;
	case OXBOW__API_KEY__DESCRIBE_CONFIGS:
		ox_srv_describe_configs(srv, req);
		return;
	case OXBOW__API_KEY__ALTER_CONFIGS:
		ox_srv_alter_configs(srv, req);
		return;
	case OXBOW__API_KEY__OFFSET_COMMIT:
		ox_srv_offset_commit(srv, req);
		return;
	case OXBOW__API_KEY__OFFSET_FETCH:
		ox_srv_offset_fetch(srv, req);
		return;
	case OXBOW__API_KEY__LIST_GROUPS:
		ox_srv_list_groups(srv, req);
		return;
	case OXBOW__API_KEY__CLUSTER_STATUS:
		ox_srv_cluster_status(srv, req);
		return;
	case OXBOW__API_KEY__INIT_PRODUCER_ID:
		ox_srv_init_producer_id(srv, req);
		return;
	case OXBOW__API_KEY__FIND_COORDINATOR:
		ox_srv_find_coordinator(srv, req);
		return;
	case OXBOW__API_KEY__REASSIGN_PARTITION:
		ox_srv_reassign_partition(srv, req);
		return;
	default:
		snprintf(why, sizeof(why), "api %u is not served by this "
			 "broker", in->api_key);
		ox_srv_respond_error(req, -OX_EUNSUPPORTED, why);
		return;
	}
}

// ---- housekeeping ----

static void tick_arm(struct ox_tick *t);

static void tick_fired(void *arg, int res)
{
	struct ox_tick *t = arg;
	struct ox_server *srv = t->srv;

	t->armed = false;
	if (!srv) {
		free(t); // S7: the server is gone
		return;
	}
	if (res < 0)
		return;
	ox_srv_fetch_tick(srv);
	// A connection deferred while the loop was full waits for a kick
	// nothing else would arm.
	ox_net_poke(srv->net);
	ox_peer_poke(ox_meta_peer(srv));
	ox_meta_poke(srv);
	t->due = true;
	if (ox_srv_now_ns() >= srv->next_retention_ns) {
		t->run_retention = true;
		srv->next_retention_ns =
			ox_srv_now_ns() +
			(uint64_t)srv->cfg.retention_check_interval_ms * 1000000u;
	}
	tick_arm(t);
}

static void tick_arm(struct ox_tick *t)
{
	int rc = ox_io_timer(t->srv->io, OX_TICK_MS * 1000000ull, tick_fired, t);
	if (rc == 0)
		t->armed = true;
	else if (rc != -ECANCELED)
		ox_slog(OX_SLOG_WARN, "cannot arm the housekeeping timer "
			"error=\"%s\"", ox_strerror(rc));
}

// Retention on every partition, and a compaction pass (up to the high
// watermark) on compacted ones; then swap in finished passes.
static void housekeep(struct ox_server *srv, bool retention)
{
	for (size_t s = 0; s < OX_TOPIC_SLOTS; s++) {
		for (struct ox_topic *t = srv->topics[s]; t; t = t->next) {
			struct ox_log_config lc;
			ox_topic_log_config(&t->meta.cfg, &srv->cfg, &lc);
			for (uint32_t i = 0; i < t->meta.partitions; i++) {
				struct ox_partition *p = t->parts[i];
				int rc = 0;
				if (p == NULL)
					continue;
				// Cluster topics tick with the metadata tick.
				if (t->assignment == NULL)
					ox_replica_tick(p->rep);
				if (lc.cleanup & OX_LOG_CLEANUP_COMPACT)
					rc = ox_log_compact_poll(p->log);
				if (rc < 0)
					ox_slog(OX_SLOG_WARN, "compaction failed "
						"topic=%s partition=%u "
						"error=\"%s\"", t->meta.name, i,
						ox_strerror(rc));
				if (!retention)
					continue;
				rc = ox_log_enforce_retention(p->log);
				if (rc > 0)
					ox_slog(OX_SLOG_INFO, "retention deleted "
						"segments topic=%s partition=%u "
						"segments=%d", t->meta.name, i,
						rc);
				// Raft's start follows (an -EAGAIN start
				// past the commit index is retried by the
				// next pass).
				rc = ox_replica_log_start_moved(p->rep);
				if (rc < 0 && rc != -EAGAIN)
					ox_slog(OX_SLOG_WARN, "raft log start not "
						"moved topic=%s partition=%u "
						"error=\"%s\"", t->meta.name, i,
						ox_strerror(rc));
				if (!(lc.cleanup & OX_LOG_CLEANUP_COMPACT))
					continue;
				rc = ox_log_compact_start(p->log,
							  ox_srv_hw(srv, p));
				if (rc < 0 && rc != -EALREADY)
					ox_slog(OX_SLOG_WARN, "cannot start "
						"compaction topic=%s "
						"partition=%u error=\"%s\"",
						t->meta.name, i,
						ox_strerror(rc));
			}
		}
	}
}

void ox_server_poll(struct ox_server *srv)
{
	drain_busy(srv);
	if (srv->wake) {
		srv->wake = false;
		ox_srv_fetch_wake(srv);
	}
	if (srv->parting || srv->doomed)
		close_doomed(srv);
	if (srv->tick && srv->tick->due && !srv->shutting_down) {
		bool retention = srv->tick->run_retention;
		srv->tick->due = false;
		srv->tick->run_retention = false;
		housekeep(srv, retention);
	}
	// The pass ends here: what it queued for other nodes goes out with
	// the loop's next submission (owner_flushes in broker/peer).
	if (ox_meta_peer(srv) != NULL)
		ox_peer_flush(ox_meta_peer(srv));
}

// ---- start-up ----

static int mkdir_p(const char *path)
{
	char buf[PATH_MAX];
	size_t n = strlen(path);

	if (n >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		char c = buf[i];
		buf[i] = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -errno;
		buf[i] = c;
	}
	return 0;
}

static int lock_dir(struct ox_server *srv, char *err, size_t err_len)
{
	char path[PATH_MAX];

	int rc = mkdir_p(srv->cfg.data_dir);
	if (rc < 0) {
		ox_srv_fmt_err(err, err_len, "cannot create data.dir %s: %s",
			srv->cfg.data_dir, ox_strerror(rc));
		return rc;
	}
	snprintf(path, sizeof(path), "%s/lock", srv->cfg.data_dir);
	srv->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (srv->lock_fd < 0) {
		rc = -errno;
		ox_srv_fmt_err(err, err_len,
			"cannot open %s: %s", path, strerror(errno));
		return rc;
	}
	if (flock(srv->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		rc = -errno;
		if (rc == -EWOULDBLOCK)
			ox_srv_fmt_err(err, err_len,
				"data.dir %s is in use by another "
				"oxbowd (%s is locked)", srv->cfg.data_dir, path);
		else
			ox_srv_fmt_err(err, err_len, "cannot lock %s: %s", path,
				strerror(errno));
		return rc;
	}
	return 0;
}

// Removes topic directories the metadata file does not name: left by a
// create or delete that a crash interrupted (S5). Directories of cluster
// topics (ids from OX_CLUSTER_TOPIC_ID_BASE) are the metadata group's:
// their replicas' logs, which a restarted node must find again (a
// replica that comes back empty loses the writes it acknowledged).
static void remove_orphans(struct ox_server *srv, const struct ox_topic_meta *m,
			   size_t n)
{
	char dir[PATH_MAX], path[PATH_MAX + 256];
	struct dirent *de;

	snprintf(dir, sizeof(dir), "%s/topics", srv->cfg.data_dir);
	DIR *d = opendir(dir);
	if (!d)
		return;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		bool known = false;
		char *end;
		errno = 0;
		unsigned long long id = strtoull(de->d_name, &end, 10);
		for (size_t i = 0; !errno && !*end && i < n && !known; i++)
			known = m[i].id == id;
		if (!errno && !*end && id >= OX_CLUSTER_TOPIC_ID_BASE)
			known = true;
		if (known)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		ox_slog(OX_SLOG_INFO, "removing a topic directory no topic "
			"names path=%s", path);
		ox_srv_rm_tree(path);
	}
	closedir(d);
}

static int open_topics(struct ox_server *srv, char *err, size_t err_len)
{
	struct ox_topic_meta *m;
	char dir[PATH_MAX];
	size_t n;

	snprintf(dir, sizeof(dir), "%s/topics", srv->cfg.data_dir);
	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		ox_srv_fmt_err(err, err_len, "cannot create %s: %s", dir,
			strerror(errno));
		return -errno;
	}
	int rc = ox_topics_file_read(srv->cfg.data_dir, &srv->next_topic_id,
				     &m, &n, err, err_len);
	if (rc < 0)
		return rc;
	remove_orphans(srv, m, n);
	for (size_t i = 0; i < n; i++) {
		struct ox_topic *t;
		if (srv->npartitions + m[i].partitions > OX_NODE_PARTITIONS_MAX) {
			rc = -OX_ETOOBIG;
			ox_srv_fmt_err(err, err_len, "more than %u partitions",
				OX_NODE_PARTITIONS_MAX);
			break;
		}
		rc = ox_srv_topic_open(srv, &m[i], &t);
		if (rc < 0) {
			ox_srv_fmt_err(err, err_len, "cannot open topic %s: %s",
				m[i].name, ox_strerror(rc));
			break;
		}
		ox_srv_topic_insert(srv, t);
	}
	free(m);
	return rc;
}

static int ensure_offsets_topic(struct ox_server *srv, char *err,
				size_t err_len)
{
	struct ox_topic_meta m;
	char v[16];

	srv->offsets_topic = ox_srv_topic_find(srv, OX_OFFSETS_TOPIC);
	if (srv->offsets_topic || srv->cfg.npeers > 1)
		return 0; // a cluster keeps its offsets in its own __offsets
	memset(&m, 0, sizeof(m));
	strcpy(m.name, OX_OFFSETS_TOPIC);
	m.id = srv->next_topic_id++;
	m.partitions = 1;
	m.replicas = 1;
	ox_topic_config_set(&m.cfg, "cleanup.policy", "compact", NULL, 0);
	// A commit of many partitions is one batch: allow the format's most.
	snprintf(v, sizeof(v), "%u", OX_BATCH_BYTES_MAX);
	ox_topic_config_set(&m.cfg, "max.message.bytes", v, NULL, 0);
	int rc = ox_srv_topic_open(srv, &m, &srv->offsets_topic);
	if (rc == 0) {
		ox_srv_topic_insert(srv, srv->offsets_topic);
		rc = ox_srv_meta_save(srv);
	}
	if (rc < 0)
		ox_srv_fmt_err(err, err_len, "cannot create the %s topic: %s",
			OX_OFFSETS_TOPIC, ox_strerror(rc));
	return rc;
}

static int write_ready(struct ox_server *srv)
{
	char path[PATH_MAX], tmp[PATH_MAX], line[OX_CONFIG_ADDR_MAX + 32];
	bool v6 = strchr(srv->listen_host, ':') != NULL;

	snprintf(path, sizeof(path), "%s/ready", srv->cfg.data_dir);
	snprintf(tmp, sizeof(tmp), "%s/ready.tmp", srv->cfg.data_dir);
	int n = snprintf(line, sizeof(line), "client=%s%s%s:%u\n",
			 v6 ? "[" : "", srv->listen_host, v6 ? "]" : "",
			 ox_net_port(srv->net));
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	int rc = write(fd, line, (size_t)n) == n ? 0 : -EIO;
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp, path) < 0)
		rc = -errno;
	if (rc < 0)
		unlink(tmp);
	return rc;
}

static void unlink_ready(struct ox_server *srv)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/ready", srv->cfg.data_dir);
	unlink(path);
}

static int start_net(struct ox_server *srv, char *err, size_t err_len)
{
	struct ox_net_opts opts = {
		.listen = srv->cfg.listen,
		.memory_bytes_max = (size_t)srv->cfg.net_memory_bytes,
		.handler = handle,
		.handler_arg = srv,
	};
	int rc = ox_net_create(&srv->net, srv->io, &opts);
	if (rc < 0) {
		ox_srv_fmt_err(err, err_len,
			"cannot listen on %s: %s", srv->cfg.listen,
			ox_strerror(rc));
		return rc;
	}
	if (srv->adv_port == 0)
		srv->adv_port = ox_net_port(srv->net);
	return 0;
}

static int start_tick(struct ox_server *srv)
{
	srv->tick = calloc(1, sizeof(*srv->tick));
	if (!srv->tick)
		return -ENOMEM;
	srv->tick->srv = srv;
	srv->next_retention_ns =
		ox_srv_now_ns() +
		(uint64_t)srv->cfg.retention_check_interval_ms * 1000000u;
	tick_arm(srv->tick);
	return srv->tick->armed ? 0 : -EBUSY;
}

// How long start-up waits for every partition's leader no-op to commit.
#define START_COMMIT_WAIT_NS (60ull * 1000000000ull)

static bool all_committed(struct ox_server *srv)
{
	for (size_t s = 0; s < OX_TOPIC_SLOTS; s++)
		for (struct ox_topic *t = srv->topics[s]; t; t = t->next)
			for (uint32_t i = 0; i < t->meta.partitions; i++)
				if (t->parts[i] != NULL &&
				    ox_srv_hw(srv, t->parts[i]) <
					    ox_log_end_offset(t->parts[i]->log))
					return false;
	return true;
}

// Each partition's group elected this node at open and appended its
// no-op; once that is durable the high watermark covers the whole log
// again, so clients of a restarted node read what they read before.
static int wait_committed(struct ox_server *srv)
{
	uint64_t deadline = ox_srv_now_ns() + START_COMMIT_WAIT_NS;

	while (!all_committed(srv)) {
		int rc = ox_io_run(srv->io, 1);

		if (rc < 0)
			return rc;
		if (ox_srv_now_ns() > deadline)
			return -ETIMEDOUT;
	}
	return 0;
}

int ox_server_create(struct ox_server **out, struct ox_io *io,
		     const struct ox_config *cfg, char *err, size_t err_len)
{
	uint16_t port;

	OX_ASSERT(out != NULL && io != NULL && cfg != NULL);
	*out = NULL;
	struct ox_server *srv = calloc(1, sizeof(*srv));
	if (!srv) {
		ox_srv_fmt_err(err, err_len, "out of memory");
		return -ENOMEM;
	}
	srv->io = io;
	srv->cfg = *cfg;
	srv->lock_fd = -1;
	if (srv->cfg.advertised_listen[0] == '\0')
		strcpy(srv->cfg.advertised_listen, srv->cfg.listen);
	int rc = -EINVAL;
	if (ox_config_addr_parse(srv->cfg.listen, srv->listen_host,
				 sizeof(srv->listen_host), &port) < 0 ||
	    ox_config_addr_parse(srv->cfg.advertised_listen, srv->adv_host,
				 sizeof(srv->adv_host), &srv->adv_port) < 0) {
		ox_srv_fmt_err(err, err_len,
			"listen or advertised.listen is not "
			"HOST:PORT");
		goto fail;
	}
	rc = lock_dir(srv, err, err_len);
	if (rc < 0)
		goto fail;
	unlink_ready(srv); // left by a killed process
	rc = open_topics(srv, err, err_len);
	if (rc == 0)
		rc = ensure_offsets_topic(srv, err, err_len);
	if (rc == 0)
		rc = ox_offsets_create(&srv->offsets);
	if (rc == 0) {
		rc = ox_srv_offsets_replay(srv);
		if (rc < 0)
			ox_srv_fmt_err(err, err_len, "cannot read %s: %s",
				OX_OFFSETS_TOPIC, ox_strerror(rc));
	}
	if (rc == 0) {
		rc = wait_committed(srv);
		if (rc < 0)
			ox_srv_fmt_err(err, err_len, "partitions did not reach "
				"their high watermark at start: %s",
				ox_strerror(rc));
	}
	if (rc == 0)
		rc = start_net(srv, err, err_len);
	// With other nodes in peers: the transport and the metadata group
	// (after the net, whose bound port the other nodes are told).
	if (rc == 0 && srv->cfg.npeers > 1)
		rc = ox_meta_start(srv, err, err_len);
	if (rc == 0) {
		rc = start_tick(srv);
		if (rc < 0)
			ox_srv_fmt_err(err, err_len,
				"cannot arm the housekeeping timer");
	}
	if (rc == 0) {
		rc = write_ready(srv);
		if (rc < 0)
			ox_srv_fmt_err(err, err_len,
				"cannot write %s/ready: %s",
				srv->cfg.data_dir, ox_strerror(rc));
	}
	if (rc < 0)
		goto fail;
	ox_slog(OX_SLOG_INFO, "oxbowd: node %d ready, clients on %s:%u",
		srv->cfg.node_id, srv->listen_host, ox_net_port(srv->net));
	*out = srv;
	return 0;
fail:
	ox_server_destroy(srv);
	return rc;
}

uint16_t ox_server_port(const struct ox_server *srv)
{
	return ox_net_port(srv->net);
}

// ---- shutdown ----

// How long a stopping node keeps serving the loop for the groups it leads
// to elect the voters it hands them to. A hand-over takes a round trip or
// two; the bound covers several election timeouts of the partitions (100
// to 200 ms at the metadata tick), so a transfer whose target died in
// between is given up by Raft and retried with another voter, and SIGTERM
// still ends within a few seconds when nobody can take over.
#define HANDOVER_WAIT_NS (2500ull * 1000000ull)

// A voter the peer transport has a working link to: one that stopped
// moments ago still counts as heard in Raft for up to an election timeout.
static bool linked(void *arg, uint64_t id)
{
	return ox_peer_connected(arg, id) != 0;
}

// Whether the transport has a link to any of the voters ids[0, n) but
// this node: without one no other node can take a group over soon.
static bool others_linked(const struct ox_server *srv, const uint64_t *ids,
			  uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		if (ids[i] != (uint64_t)srv->cfg.node_id &&
		    ox_peer_connected(ox_meta_peer(srv), ids[i]))
			return true;
	return false;
}

// Where group rep stands in a hand-over: this node leads it (and a
// transfer to the best placed voter it can reach is started unless one is
// under way), another node leads it, nobody is known to (the vote that
// elects the successor may still be on its way out), or no other voter
// is reachable (nothing to wait for).
enum handover_state {
	HANDOVER_LEADS,
	HANDOVER_DONE,
	HANDOVER_NONE,
	HANDOVER_CUT_OFF,
	HANDOVER_STATES, // how many there are
};

static enum handover_state handover_group(struct ox_server *srv,
					  struct ox_replica *rep)
{
	const struct ox_raft *r = ox_replica_raft(rep);
	const struct ox_raft_conf *c = ox_raft_conf(r);
	uint64_t to;
	int rc;

	if (ox_raft_role(r) != OX_RAFT_LEADER &&
	    ox_raft_leader(r) != OX_RAFT_NONE)
		return HANDOVER_DONE;
	if (!others_linked(srv, c->voters, c->voters_n))
		return HANDOVER_CUT_OFF;
	if (ox_raft_role(r) != OX_RAFT_LEADER)
		return HANDOVER_NONE;
	if (ox_raft_transferee(r) != OX_RAFT_NONE)
		return HANDOVER_LEADS; // under way (Raft gives up in time)
	to = ox_raft_successor(r, linked, ox_meta_peer(srv));
	if (to == OX_RAFT_NONE)
		return HANDOVER_LEADS; // nobody reachable yet: next pass
	rc = ox_replica_transfer(rep, to);
	if (rc < 0)
		ox_slog(OX_SLOG_WARN, "cannot hand leadership over to=%" PRIu64
			" error=%s", to, ox_strerror_name(rc));
	return HANDOVER_LEADS;
}

// The partitions of cluster topics this node leads with other voters, into
// reps (room for srv->npartitions). Their replicas stay open until the
// server is destroyed: a deleted topic's are closed by ox_server_poll,
// which the hand-over does not call.
static uint32_t handover_collect(struct ox_server *srv,
				 struct ox_replica **reps)
{
	uint32_t n = 0;

	for (size_t s = 0; s < OX_TOPIC_SLOTS; s++)
		for (struct ox_topic *t = srv->topics[s]; t; t = t->next) {
			if (t->assignment == NULL)
				continue; // this node's alone
			for (uint32_t i = 0; i < t->meta.partitions; i++) {
				const struct ox_raft *r;

				if (t->parts[i] == NULL)
					continue;
				r = ox_replica_raft(t->parts[i]->rep);
				if (ox_raft_role(r) == OX_RAFT_LEADER &&
				    ox_raft_conf(r)->voters_n > 1) {
					OX_ASSERT(n < srv->npartitions);
					reps[n++] = t->parts[i]->rep;
				}
			}
		}
	return n;
}

// One pass over the groups being handed over; counts[s] (HANDOVER_STATES
// of them) gets how many are in state s. Returns whether any still waits
// for a new leader.
static bool handover_pass(struct ox_server *srv, struct ox_replica **reps,
			  uint32_t n, uint32_t *counts)
{
	memset(counts, 0, HANDOVER_STATES * sizeof(*counts));
	for (uint32_t i = 0; i < n; i++)
		counts[handover_group(srv, reps[i])]++;
	return counts[HANDOVER_LEADS] + counts[HANDOVER_NONE] > 0;
}

// The metadata group's state in the hand-over, as handover_group's.
static enum handover_state meta_state(const struct ox_server *srv)
{
	uint64_t term, ids[OX_CONFIG_PEERS_MAX];
	int64_t leader = ox_meta_leader(srv, &term);

	if (leader >= 0 && leader != srv->cfg.node_id)
		return HANDOVER_DONE;
	for (unsigned i = 0; i < srv->cfg.npeers; i++)
		ids[i] = (uint64_t)srv->cfg.peers[i].id;
	if (!others_linked(srv, ids, srv->cfg.npeers))
		return HANDOVER_CUT_OFF;
	return leader < 0 ? HANDOVER_NONE : HANDOVER_LEADS;
}

// Whether a state still waits for a new leader.
static bool handover_waits(enum handover_state st)
{
	return st == HANDOVER_LEADS || st == HANDOVER_NONE;
}

// Hands every group this node leads to another voter and serves the loop
// until each has another leader, or HANDOVER_WAIT_NS passed. The metadata
// group's transfer starts from its own tick once the server is shutting
// down (meta.c). Appends waiting for a commit fail with NOT_LEADER when
// their group changes hands (replica.h P4), new ones are refused
// NOT_LEADER while a transfer is under way, and new requests are answered
// SHUTTING_DOWN (METADATA excepted, so clients learn the new leaders):
// all retriable, so idempotent producers carry on with the new leaders.
static void handover(struct ox_server *srv)
{
	static const char *const names[HANDOVER_STATES] = {
		"kept", "handed_over", "none", "cut_off"
	};
	uint64_t start = ox_srv_now_ns(), term;
	struct ox_replica **reps = calloc(srv->npartitions + 1, sizeof(*reps));
	uint32_t n, counts[HANDOVER_STATES];
	bool meta_led = ox_meta_leader(srv, &term) == srv->cfg.node_id;
	bool waiting;

	if (reps == NULL) {
		ox_slog(OX_SLOG_WARN, "no memory to hand leadership over");
		return;
	}
	n = handover_collect(srv, reps);
	waiting = handover_pass(srv, reps, n, counts);
	while ((waiting || (meta_led && handover_waits(meta_state(srv)))) &&
	       ox_srv_now_ns() - start < HANDOVER_WAIT_NS) {
		if (ox_io_run(srv->io, 1) < 0)
			break;
		drain_busy(srv); // queued appends: refused NOT_LEADER
		waiting = handover_pass(srv, reps, n, counts);
	}
	ox_slog(OX_SLOG_INFO, "leadership handed over partitions=%u of=%u "
		"kept=%u leaderless=%u cut_off=%u meta=%s ms=%" PRIu64,
		counts[HANDOVER_DONE], n, counts[HANDOVER_LEADS],
		counts[HANDOVER_NONE], counts[HANDOVER_CUT_OFF],
		meta_led ? names[meta_state(srv)] : "not_led",
		(ox_srv_now_ns() - start) / 1000000u);
	free(reps);
}

void ox_server_shutdown(struct ox_server *srv)
{
	if (srv->shutting_down)
		return;
	srv->shutting_down = true;
	unlink_ready(srv);
	if (srv->net)
		ox_net_stop_accepting(srv->net);
	ox_srv_fetch_answer_all(srv);
	ox_slog(OX_SLOG_INFO, "shutting down node=%d appends_in_flight=%u",
		srv->cfg.node_id, srv->appends_inflight + srv->appends_queued);
	if (srv->meta != NULL)
		handover(srv);
}

bool ox_server_stopped(const struct ox_server *srv)
{
	return srv->shutting_down && srv->appends_inflight == 0 &&
	       srv->appends_queued == 0;
}

int ox_server_destroy(struct ox_server *srv)
{
	int first = 0;

	if (!srv)
		return 0;
	if (srv->tick) {
		// S7: a pending tick frees itself when it fires.
		srv->tick->srv = NULL;
		if (!srv->tick->armed)
			free(srv->tick);
		srv->tick = NULL;
	}
	bool was_ready = srv->net != NULL;
	srv->shutting_down = true;
	ox_srv_fetch_answer_all(srv);
	while (srv->appends_inflight > 0 || srv->appends_queued > 0) {
		if (ox_io_run(srv->io, 1) < 0)
			break;
		drain_busy(srv);
	}
	ox_net_destroy(srv->net);
	srv->net = NULL;
	close_doomed(srv);
	for (size_t s = 0; s < OX_TOPIC_SLOTS; s++) {
		struct ox_topic *t;
		while ((t = srv->topics[s]) != NULL) {
			srv->topics[s] = t->next;
			for (uint32_t i = 0; i < t->meta.partitions; i++) {
				if (t->parts[i] == NULL)
					continue;
				ox_replica_close(t->parts[i]->rep);
				int rc = ox_log_close(t->parts[i]->log);
				if (rc < 0 && first == 0)
					first = rc;
				free(t->parts[i]);
			}
			t->meta.partitions = 0;
			ox_srv_topic_close(t, false, NULL);
		}
	}
	// After the partitions: their Raft traffic went through its peers.
	ox_meta_stop(srv);
	ox_offsets_destroy(srv->offsets);
	if (was_ready)
		unlink_ready(srv);
	if (srv->lock_fd >= 0)
		close(srv->lock_fd); // releases the flock
	free(srv);
	return first;
}
