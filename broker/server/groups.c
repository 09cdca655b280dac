// SPDX-License-Identifier: Apache-2.0
//
// Consumer-group offsets over the internal topic __offsets: OFFSET_COMMIT
// (one batch per request, answered once durable; the map is updated only
// then, S6), OFFSET_FETCH and LIST_GROUPS from the map, FIND_COORDINATOR,
// the replay that rebuilds the map, and the tombstones written when a
// topic goes away. The record encoding is offsets.h's.
//
// A node alone keeps its own one-partition __offsets, replays it at start
// and serves every group. In a cluster (`peers` name other nodes) the
// metadata leader creates __offsets as a cluster topic (meta.c) of
// OX_OFFSETS_PARTITIONS partitions, replicated like any topic; the node
// that leads a group's partition (its shard) is the group's coordinator:
//   G1 A node serves OFFSET_COMMIT, OFFSET_FETCH and LIST_GROUPS for a
//      shard only while it leads the shard's partition in the term it
//      loaded the shard in (ox_offsets_shard_term); anything else is
//      answered NOT_LEADER (retriable) and the client asks
//      FIND_COORDINATOR again.
//   G2 A shard is loaded (its partition replayed up to the high
//      watermark) only once the leader's own term has an entry committed,
//      so the high watermark covers every commit an earlier leader
//      answered; until then requests get NOT_LEADER. Loading happens on
//      the first request that needs the shard, synchronously.
//   G3 Shards this node no longer leads (or leads in a newer term) are
//      dropped from the map before any handler reads it, and a commit
//      whose append completes after its shard was dropped or reloaded
//      leaves the map alone (the next load replays its record).
// Commits append with acks=all, so an answered commit is on a majority of
// the partition's replicas and survives the loss of the coordinator.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/cluster/cluster.h"
#include "broker/server/server_int.h"
#include "broker/slog/slog.h"
#include "proto/assert.h"
#include "proto/batch.h"
#include "proto/error.h"
#include "proto/wire.h"

// Tombstones go out in batches of at most this many bytes.
#define TOMBSTONE_BATCH_BYTES (4u << 20)

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const struct ox_batch_params plain = {
	.producer_id = OX_PRODUCER_NONE,
	.producer_epoch = -1,
	.base_sequence = OX_SEQUENCE_NONE,
};

static bool clustered(const struct ox_server *srv)
{
	return srv->cfg.npeers > 1; // as ox_server_create starts meta.c
}

// ---- replay ----

// Whether a record belongs to shard `shard` (-1: every record does).
static bool in_shard(const struct ox_server *srv, const struct ox_record *r,
		     int64_t shard)
{
	struct ox_offset_key k;

	if (shard < 0 || r->key_len < 0 ||
	    ox_offset_key_decode(r->key, (size_t)r->key_len, &k) < 0)
		return true; // the apply below judges it
	return ox_offsets_shard_of(k.group, k.group_len,
				   ox_offsets_shards(srv->offsets)) ==
	       (uint32_t)shard;
}

static void apply_batch(struct ox_server *srv, const uint8_t *b, size_t len,
			int64_t shard)
{
	struct ox_batch_iter it;
	struct ox_record r;
	int rc;

	if (ox_batch_iter_init(&it, b, len) < 0 ||
	    (it.hdr.attributes & OX_BATCH_ATTR_CONTROL))
		return;
	while ((rc = ox_batch_iter_next(&it, &r)) == 1) {
		if (!in_shard(srv, &r, shard)) {
			ox_slog(OX_SLOG_WARN, "skipping a %s record of another "
				"partition's group offset=%lld partition=%lld",
				OX_OFFSETS_TOPIC, (long long)r.offset,
				(long long)shard);
			continue;
		}
		if (r.key_len < 0 ||
		    ox_offsets_apply(srv->offsets, r.key, (size_t)r.key_len,
				     r.value, r.value_len) < 0)
			ox_slog(OX_SLOG_WARN, "skipping an undecodable %s record "
				"offset=%lld", OX_OFFSETS_TOPIC,
				(long long)r.offset);
	}
}

struct orphan_scan {
	struct ox_server *srv;
	char (*topics)[OX_TOPIC_NAME_MAX + 1];
	size_t n, cap;
};

static void find_orphan(void *arg, const struct ox_offset_entry *e)
{
	struct orphan_scan *o = arg;

	if (ox_srv_topic_find(o->srv, e->topic))
		return;
	for (size_t i = 0; i < o->n; i++)
		if (strcmp(o->topics[i], e->topic) == 0)
			return;
	if (o->n == o->cap) {
		size_t cap = o->cap ? o->cap * 2 : 16;
		void *t = realloc(o->topics, cap * sizeof(*o->topics));
		if (!t)
			return; // dropped next start
		o->topics = t;
		o->cap = cap;
	}
	strcpy(o->topics[o->n++], e->topic);
}

// Offsets of topics deleted before their tombstones were durable.
static void drop_orphans(struct ox_server *srv)
{
	struct orphan_scan o = {.srv = srv};

	ox_offsets_each(srv->offsets, NULL, NULL, find_orphan, &o);
	for (size_t i = 0; i < o.n; i++)
		ox_srv_offsets_drop_topic(srv, o.topics[i]);
	free(o.topics);
}

// Applies the records of log[start, end) to the map (those of `shard`
// only, unless it is -1).
static int replay_log(struct ox_server *srv, struct ox_log *log, int64_t end,
		      int64_t shard)
{
	int64_t off = ox_log_start_offset(log);
	size_t cap = OX_REPLAY_BUF_BYTES, len;
	uint8_t *buf = malloc(cap);
	int rc = 0;

	if (!buf)
		return -ENOMEM;
	while (off < end) {
		rc = ox_log_read(log, off, cap, end, buf, cap, &len);
		if (rc == -ENOSPC && cap < OX_BATCH_BYTES_MAX) {
			uint8_t *b = realloc(buf, cap * 2);
			if (!b) {
				rc = -ENOMEM;
				break;
			}
			buf = b;
			cap *= 2;
			continue;
		}
		if (rc < 0 || len == 0)
			break;
		struct ox_batch_header h;
		size_t pos = 0, prev = 0;
		while (ox_batch_next(buf, len, &pos, &h) == 1) {
			apply_batch(srv, buf + prev, pos - prev, shard);
			off = h.base_offset + h.last_offset_delta + 1;
			prev = pos;
		}
		if (prev == 0) {
			rc = -OX_ECORRUPT;
			break;
		}
	}
	free(buf);
	return rc;
}

int ox_srv_offsets_replay(struct ox_server *srv)
{
	if (clustered(srv)) {
		// The cluster's __offsets serves groups; a node of a cluster
		// has no one-partition topic of its own (one left by an older
		// version stays as it is, unread).
		ox_slog(OX_SLOG_INFO, "group offsets are served from the "
			"cluster's %s", OX_OFFSETS_TOPIC);
		return 0;
	}
	struct ox_log *log = srv->offsets_topic->parts[0]->log;
	int rc = replay_log(srv, log, ox_log_written_offset(log), -1);
	if (rc < 0)
		return rc;
	ox_slog(OX_SLOG_INFO, "group offsets loaded entries=%zu",
		ox_offsets_count(srv->offsets));
	drop_orphans(srv);
	return 0;
}

// ---- coordination in a cluster (G1..G3) ----

// The cluster's __offsets as this node opened it, or NULL: not created
// yet, or not applied here yet. Gives the map one shard per partition.
static struct ox_topic *coord_topic(struct ox_server *srv)
{
	const struct ox_cluster *c = ox_meta_state(srv);
	struct ox_cluster_topic ct;
	struct ox_topic *t;

	if (!c || ox_cluster_topic_by_name(c, OX_OFFSETS_TOPIC, &ct) < 0)
		return NULL;
	uint64_t id = OX_CLUSTER_TOPIC_ID_BASE + ct.id;
	// This node's own __offsets shares the name: check the id.
	t = ox_srv_topic_find(srv, OX_OFFSETS_TOPIC);
	if (!t || t->meta.id != id)
		t = ox_srv_topic_by_id(srv, id);
	if (!t || t->assignment == NULL || t->meta.partitions == 0 ||
	    t->meta.partitions > OX_OFFSETS_SHARDS_MAX)
		return NULL;
	struct ox_offsets *m = srv->offsets;
	if (ox_offsets_shards(m) != t->meta.partitions) {
		for (uint32_t s = 0; s < ox_offsets_shards(m); s++)
			ox_offsets_shard_drop(m, s);
		if (ox_offsets_set_shards(m, t->meta.partitions) < 0)
			return NULL;
	}
	return t;
}

// G3: drops the shards this node no longer leads in their loaded term.
static void coord_sweep(struct ox_server *srv, struct ox_topic *t)
{
	for (uint32_t s = 0; s < ox_offsets_shards(srv->offsets); s++) {
		uint64_t held = ox_offsets_shard_term(srv->offsets, s);
		if (held == 0)
			continue;
		const struct ox_partition *p = t->parts[s];
		const struct ox_raft *r = p ? ox_replica_raft(p->rep) : NULL;
		if (!r || ox_raft_role(r) != OX_RAFT_LEADER ||
		    ox_raft_term(r) != held) {
			ox_offsets_shard_drop(srv->offsets, s);
			ox_slog(OX_SLOG_INFO, "group coordinator let go "
				"partition=%u term=%llu", s,
				(unsigned long long)held);
		}
	}
}

// G2: whether the high watermark of partition p, which this node leads
// in `term`, covers every commit an earlier leader answered.
static bool settled(const struct ox_server *srv, const struct ox_partition *p,
		    const struct ox_raft *r, uint64_t term)
{
	int64_t commit = ox_raft_commit(r);
	uint64_t at;

	// The only voter commits its durable log without an entry of its
	// own term (raft.h R5): settled once all of the log is committed.
	if (ox_raft_conf(r)->voters_n == 1)
		return ox_srv_hw(srv, p) >= ox_raft_last_index(r);
	// term_at(i) is the term of the batch holding offset i - 1 (raft.h).
	return commit > 0 && ox_raft_term_at(r, commit, &at) == 0 &&
	       at == term && ox_srv_hw(srv, p) >= commit;
}

// Whether this node serves shard s now (G1), loading it when its
// leadership has settled (G2). 0, or -OX_ENOTLEADER / -OX_ESTORAGE with
// the reason in *why.
static int shard_ready(struct ox_server *srv, struct ox_topic *t, uint32_t s,
		       const char **why)
{
	struct ox_partition *p = t->parts[s];
	uint64_t held = ox_offsets_shard_term(srv->offsets, s);

	*why = "this node is not the group's coordinator";
	if (!p)
		return -OX_ENOTLEADER;
	const struct ox_raft *r = ox_replica_raft(p->rep);
	uint64_t term = ox_raft_term(r);
	if (ox_raft_role(r) != OX_RAFT_LEADER)
		return -OX_ENOTLEADER;
	if (held == term)
		return 0;
	OX_ASSERT(held == 0); // G3: coord_sweep ran
	if (!settled(srv, p, r, term)) {
		*why = "the group's coordinator is taking over; retry";
		return -OX_ENOTLEADER;
	}
	int rc = replay_log(srv, p->log, ox_srv_hw(srv, p), s);
	if (rc < 0) {
		ox_offsets_shard_drop(srv->offsets, s);
		ox_slog(OX_SLOG_ERROR, "cannot read %s partition=%u error=\"%s\"",
			OX_OFFSETS_TOPIC, s, ox_strerror(rc));
		*why = "cannot read the group's offsets";
		return -OX_ESTORAGE;
	}
	ox_offsets_shard_hold(srv->offsets, s, term);
	ox_slog(OX_SLOG_INFO, "group coordinator ready partition=%u term=%llu "
		"entries=%zu", s, (unsigned long long)term,
		ox_offsets_count(srv->offsets));
	return 0;
}

// Where a group's offsets go on this node: the partition of __offsets to
// append to, the group's shard and the term the shard is held in.
struct coord {
	struct ox_partition *part;
	uint32_t shard;
	uint64_t term;
};

// 0 with *out, or an error with its reason in *why: nothing serves the
// group on this node now.
static int coordinate(struct ox_server *srv, const char *group,
		      struct coord *out, const char **why)
{
	if (!clustered(srv)) {
		out->part = srv->offsets_topic->parts[0];
		out->shard = 0;
		out->term = ox_offsets_shard_term(srv->offsets, 0);
		return 0;
	}
	struct ox_topic *t = coord_topic(srv);
	if (!t) {
		*why = "the cluster's __offsets topic is not there yet; retry";
		return -OX_ENOTLEADER;
	}
	coord_sweep(srv, t);
	out->shard = ox_offsets_shard(srv->offsets, group);
	int rc = shard_ready(srv, t, out->shard, why);
	if (rc < 0)
		return rc;
	out->part = t->parts[out->shard];
	out->term = ox_offsets_shard_term(srv->offsets, out->shard);
	return 0;
}

// LIST_GROUPS and topic deletion: every shard this node leads, loaded
// when it can be (G2). Returns the topic, or NULL when there is none.
static struct ox_topic *coord_load_led(struct ox_server *srv)
{
	struct ox_topic *t = coord_topic(srv);
	const char *why;

	if (!t)
		return NULL;
	coord_sweep(srv, t);
	for (uint32_t s = 0; s < ox_offsets_shards(srv->offsets); s++)
		if (t->parts[s] &&
		    ox_raft_role(ox_replica_raft(t->parts[s]->rep)) ==
			    OX_RAFT_LEADER)
			(void)shard_ready(srv, t, s, &why);
	return t;
}

// ---- internal batches ----

// A batch of __offsets records on its way, owned by this struct.
struct internal {
	struct ox_append a;
	uint8_t *batch;
	// OFFSET_COMMIT only:
	struct ox_net_req *req;
	Oxbow__OffsetCommitRequest *msg;
	int *errs;
	uint32_t shard;
	uint64_t term; // the shard's when the commit started (G3)
};

static void internal_free(struct internal *in)
{
	free(in->batch);
	free(in->errs);
	if (in->msg)
		oxbow__offset_commit_request__free_unpacked(in->msg, NULL);
	free(in);
}

static void tombstones_done(struct ox_append *a, int res, int64_t base)
{
	(void)base;
	if (res < 0)
		ox_slog(OX_SLOG_WARN, "writing group offset tombstones failed "
			"error=\"%s\"", ox_strerror(res));
	internal_free((struct internal *)a);
}

static int append_internal(struct ox_server *srv, struct internal *in,
			   struct ox_partition *part, size_t len,
			   void (*done)(struct ox_append *, int, int64_t))
{
	OX_ASSERT(part != NULL);
	in->a.part = part;
	in->a.batch = in->batch;
	in->a.len = len;
	in->a.acks = OX_REPLICA_ACKS_ALL; // S6: committed before it counts
	in->a.done = done;
	return ox_srv_append(srv, &in->a);
}

// One offset of a deleted topic: its key and the shard it lives in.
struct dkey {
	struct ox_offset_key k;
	uint32_t shard;
	char group[OX_GROUP_NAME_MAX + 1];
};

struct dropped {
	struct ox_server *srv;
	struct dkey *keys;
	size_t n, cap;
	bool oom;
};

static void collect_key(void *arg, const struct ox_offset_entry *e)
{
	struct dropped *d = arg;

	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 64;
		void *k = realloc(d->keys, cap * sizeof(*d->keys));
		if (!k) {
			d->oom = true;
			return;
		}
		d->keys = k;
		d->cap = cap;
	}
	struct dkey *k = &d->keys[d->n++];
	strcpy(k->group, e->group);
	k->k.partition = e->partition;
	k->shard = ox_offsets_shard(d->srv->offsets, e->group);
}

static int cmp_shard(const void *a, const void *b)
{
	const struct dkey *x = a, *y = b;
	return (x->shard > y->shard) - (x->shard < y->shard);
}

// Tombstones for keys[from, to), all of one shard, into part.
static int send_tombstones(struct ox_server *srv, struct ox_partition *part,
			   const struct dkey *keys, size_t from, size_t to)
{
	struct ox_batch_builder b;
	uint8_t key[OX_OFFSET_KEY_MAX];
	size_t len;
	struct internal *in = calloc(1, sizeof(*in));

	if (in)
		in->batch = malloc(TOMBSTONE_BATCH_BYTES);
	if (!in || !in->batch) {
		free(in);
		return -ENOMEM;
	}
	ox_batch_builder_init(&b, in->batch, TOMBSTONE_BATCH_BYTES, &plain);
	int64_t ts = now_ms();
	for (size_t i = from; i < to; i++) {
		OX_ASSERT(keys[i].shard == keys[from].shard);
		int klen = ox_offset_key_encode(&keys[i].k, key);
		OX_ASSERT(klen > 0);
		struct ox_record r = {.key = key, .key_len = klen,
				      .value_len = -1, .timestamp = ts};
		int rc = ox_batch_builder_add(&b, &r);
		OX_ASSERT(rc == 0); // the caller sized the range to fit
	}
	ox_batch_builder_finish(&b, &len);
	int rc = append_internal(srv, in, part, len, tombstones_done);
	if (rc < 0)
		internal_free(in);
	return rc;
}

// The partition of __offsets that shard s appends to here, or NULL.
static struct ox_partition *shard_part(struct ox_server *srv,
				       struct ox_topic *t, uint32_t s)
{
	if (!t)
		return clustered(srv) ? NULL : srv->offsets_topic->parts[0];
	if (s >= t->meta.partitions ||
	    ox_offsets_shard_term(srv->offsets, s) == 0)
		return NULL;
	return t->parts[s];
}

// Appends the tombstones of d (sorted by shard), one batch per shard at
// least, each to its shard's partition.
static void tombstones_write(struct ox_server *srv, struct ox_topic *t,
			     const struct dropped *d, const char *topic)
{
	size_t from = 0, bytes = 0;

	for (size_t i = 0; i <= d->n; i++) {
		// Bytes a tombstone takes at most: key, lengths, varints.
		size_t rec = OX_OFFSET_KEY_MAX + 64;
		if (i < d->n && i > from &&
		    d->keys[i].shard == d->keys[from].shard &&
		    bytes + rec < TOMBSTONE_BATCH_BYTES - 128) {
			bytes += rec;
			continue;
		}
		if (i > from) {
			struct ox_partition *part =
				shard_part(srv, t, d->keys[from].shard);
			int rc = part ? send_tombstones(srv, part, d->keys,
							from, i)
				      : -OX_ENOTLEADER;
			if (rc < 0)
				ox_slog(OX_SLOG_WARN, "cannot write group offset "
					"tombstones topic=%s partition=%u "
					"error=\"%s\"", topic,
					d->keys[from].shard, ox_strerror(rc));
		}
		from = i;
		bytes = rec;
	}
}

void ox_srv_offsets_drop_topic(struct ox_server *srv, const char *topic)
{
	struct dropped d = {.srv = srv};
	struct ox_topic *t = NULL;

	// In a cluster every node applies the delete, and each writes the
	// tombstones of the shards it coordinates (G1).
	if (clustered(srv) && (t = coord_load_led(srv)) == NULL)
		return; // no __offsets yet: no offsets to drop
	ox_offsets_each(srv->offsets, NULL, topic, collect_key, &d);
	size_t tlen = strlen(topic);
	for (size_t i = 0; i < d.n; i++) {
		d.keys[i].k.group = d.keys[i].group;
		d.keys[i].k.group_len = strlen(d.keys[i].group);
		d.keys[i].k.topic = topic;
		d.keys[i].k.topic_len = tlen;
		ox_offsets_remove(srv->offsets, &d.keys[i].k);
	}
	if (d.n > 1)
		qsort(d.keys, d.n, sizeof(*d.keys), cmp_shard);
	tombstones_write(srv, t, &d, topic);
	if (d.oom)
		ox_slog(OX_SLOG_WARN, "out of memory dropping group offsets "
			"topic=%s", topic);
	free(d.keys);
}

// ---- OFFSET_COMMIT ----

static void commit_respond(struct internal *in)
{
	Oxbow__OffsetCommitRequest *m = in->msg;
	size_t n = m->n_offsets;
	Oxbow__GroupOffset *rs = calloc(n + 1, sizeof(*rs));
	Oxbow__GroupOffset **rp = calloc(n + 1, sizeof(*rp));

	if (!rs || !rp) {
		ox_srv_respond_error(in->req, -ENOMEM, "out of memory");
	} else {
		for (size_t i = 0; i < n; i++) {
			Oxbow__GroupOffset init = OXBOW__GROUP_OFFSET__INIT;
			rs[i] = init;
			rs[i].topic = m->offsets[i]->topic;
			rs[i].partition = m->offsets[i]->partition;
			rs[i].offset = m->offsets[i]->offset;
			rs[i].error_code =
				(Oxbow__ErrorCode)ox_error_to_wire(in->errs[i]);
			rp[i] = &rs[i];
		}
		Oxbow__OffsetCommitResponse resp =
			OXBOW__OFFSET_COMMIT_RESPONSE__INIT;
		resp.n_offsets = n;
		resp.offsets = rp;
		ox_srv_respond_msg(in->req, &resp.base);
	}
	free(rs);
	free(rp);
	internal_free(in);
}

static void commit_done(struct ox_append *a, int res, int64_t base)
{
	struct internal *in = (struct internal *)a;
	struct ox_server *srv = a->srv;
	Oxbow__OffsetCommitRequest *m = in->msg;
	// G3: a shard let go (or loaded again) since the commit started is
	// not this commit's to change; its next load replays the record.
	bool held = in->shard < ox_offsets_shards(srv->offsets) &&
		    ox_offsets_shard_term(srv->offsets, in->shard) == in->term;

	(void)base;
	for (size_t i = 0; i < m->n_offsets; i++) {
		const Oxbow__GroupOffset *g = m->offsets[i];
		if (in->errs[i] < 0)
			continue;
		if (res < 0) {
			// A leader that stopped leading fails the append
			// with NOT_LEADER: retriable, the batch may commit.
			in->errs[i] = res == -OX_ENOTLEADER ? res
							    : -OX_ESTORAGE;
			continue;
		}
		if (!held)
			continue;
		// S6: durable now, so visible now.
		struct ox_offset_key k = {
			.group = m->group, .group_len = strlen(m->group),
			.topic = g->topic, .topic_len = strlen(g->topic),
			.partition = g->partition,
		};
		in->errs[i] = ox_offsets_put(srv->offsets, &k, g->offset,
					     g->metadata, strlen(g->metadata));
	}
	commit_respond(in);
}

static int commit_check(struct ox_server *srv, const char *group,
			const Oxbow__GroupOffset *g)
{
	if (ox_group_name_check(group, strlen(group)) < 0)
		return -OX_EINVALID_REQUEST;
	struct ox_partition *p;
	if (ox_srv_partition_lookup(srv, g->topic, g->partition, &p) ==
	    -OX_EUNKNOWN_TOPIC)
		return -OX_EUNKNOWN_TOPIC;
	if (g->offset < -1 || strlen(g->metadata) > OX_OFFSET_METADATA_MAX)
		return -OX_EINVALID_REQUEST;
	return 0;
}

// Builds the batch of the valid items; returns its length, 0 when no item
// is valid, or a negative error.
static int commit_batch(struct ox_server *srv, struct internal *in,
			size_t *len)
{
	Oxbow__OffsetCommitRequest *m = in->msg;
	uint8_t key[OX_OFFSET_KEY_MAX], val[OX_OFFSET_VALUE_MAX];
	size_t cap = OX_BATCH_HEADER_BYTES, valid = 0;
	struct ox_batch_builder b;

	for (size_t i = 0; i < m->n_offsets; i++) {
		in->errs[i] = commit_check(srv, m->group, m->offsets[i]);
		if (in->errs[i] == 0) {
			valid++;
			cap += OX_OFFSET_KEY_MAX + OX_OFFSET_VALUE_MAX + 64;
		}
	}
	if (valid == 0)
		return 0;
	if (cap > OX_BATCH_BYTES_MAX)
		return -OX_ETOOBIG;
	in->batch = malloc(cap);
	if (!in->batch)
		return -ENOMEM;
	ox_batch_builder_init(&b, in->batch, cap, &plain);
	int64_t ts = now_ms();
	for (size_t i = 0; i < m->n_offsets; i++) {
		const Oxbow__GroupOffset *g = m->offsets[i];
		if (in->errs[i] < 0)
			continue;
		struct ox_offset_key k = {
			.group = m->group, .group_len = strlen(m->group),
			.topic = g->topic, .topic_len = strlen(g->topic),
			.partition = g->partition,
		};
		int kl = ox_offset_key_encode(&k, key);
		int vl = ox_offset_value_encode(g->offset, g->metadata,
						strlen(g->metadata), val);
		OX_ASSERT(kl > 0 && vl > 0); // commit_check passed
		struct ox_record r = {.key = key, .key_len = kl, .value = val,
				      .value_len = vl, .timestamp = ts};
		int rc = ox_batch_builder_add(&b, &r);
		OX_ASSERT(rc == 0); // cap covers every record
	}
	ox_batch_builder_finish(&b, len);
	return 1;
}

void ox_srv_offset_commit(struct ox_server *srv, struct ox_net_req *req)
{
	Oxbow__OffsetCommitRequest *m = ox_srv_body_unpack(
		req, &oxbow__offset_commit_request__descriptor, "OFFSET_COMMIT");
	size_t len = 0;

	if (!m)
		return; // rejected
	struct internal *in = calloc(1, sizeof(*in));
	if (in)
		in->errs = calloc(m->n_offsets + 1, sizeof(*in->errs));
	if (!in || !in->errs) {
		free(in);
		oxbow__offset_commit_request__free_unpacked(m, NULL);
		ox_srv_respond_error(req, -ENOMEM, "out of memory");
		return;
	}
	in->req = req;
	in->msg = m;
	struct coord co = {0};
	const char *why = NULL;
	int rc = 0;
	// An invalid group name fails every item below, with nothing to write.
	if (ox_group_name_check(m->group, strlen(m->group)) == 0)
		rc = coordinate(srv, m->group, &co, &why);
	if (rc < 0) {
		ox_srv_respond_error(req, rc, why);
		internal_free(in);
		return;
	}
	in->shard = co.shard;
	in->term = co.term;
	rc = commit_batch(srv, in, &len);
	if (rc == 0) {
		commit_respond(in); // no valid item: nothing to write
		return;
	}
	if (rc > 0)
		rc = append_internal(srv, in, co.part, len, commit_done);
	if (rc < 0) {
		for (size_t i = 0; i < m->n_offsets; i++)
			if (in->errs[i] == 0)
				in->errs[i] = rc == -OX_ETOOBIG
						      ? -OX_EINVALID_REQUEST
						      : -OX_ESTORAGE;
		commit_respond(in);
	}
}

// ---- OFFSET_FETCH / LIST_GROUPS ----

struct fetched {
	Oxbow__GroupOffset *rs;
	size_t n, cap;
	bool oom;
};

static void add_fetched(void *arg, const struct ox_offset_entry *e)
{
	struct fetched *f = arg;
	Oxbow__GroupOffset init = OXBOW__GROUP_OFFSET__INIT;

	if (f->n == f->cap) {
		f->oom = true;
		return;
	}
	f->rs[f->n] = init;
	f->rs[f->n].topic = (char *)e->topic;
	f->rs[f->n].partition = e->partition;
	f->rs[f->n].offset = e->offset;
	f->rs[f->n].metadata = (char *)e->metadata;
	f->n++;
}

static void fetch_listed(struct ox_server *srv, Oxbow__OffsetFetchRequest *m,
			 struct fetched *f)
{
	struct ox_offset_entry e;
	struct ox_partition *part;
	bool group_ok = ox_group_name_check(m->group, strlen(m->group)) == 0;

	for (size_t i = 0; i < m->n_partitions; i++) {
		const Oxbow__GroupOffset *g = m->partitions[i];
		Oxbow__GroupOffset init = OXBOW__GROUP_OFFSET__INIT;
		Oxbow__GroupOffset *r = &f->rs[f->n++];
		*r = init;
		r->topic = g->topic;
		r->partition = g->partition;
		r->offset = -1;
		struct ox_offset_key k = {
			.group = m->group, .group_len = strlen(m->group),
			.topic = g->topic, .topic_len = strlen(g->topic),
			.partition = g->partition,
		};
		if (!group_ok)
			r->error_code = OXBOW__ERROR_CODE__INVALID_REQUEST;
		else if (ox_srv_partition_lookup(srv, g->topic, g->partition,
						 &part) == -OX_EUNKNOWN_TOPIC)
			r->error_code = OXBOW__ERROR_CODE__UNKNOWN_TOPIC;
		else if (ox_offsets_get(srv->offsets, &k, &e) == 1) {
			r->offset = e.offset;
			r->metadata = (char *)e.metadata;
		}
	}
}

void ox_srv_offset_fetch(struct ox_server *srv, struct ox_net_req *req)
{
	Oxbow__OffsetFetchRequest *m = ox_srv_body_unpack(
		req, &oxbow__offset_fetch_request__descriptor, "OFFSET_FETCH");
	struct fetched f = {0};

	if (!m)
		return; // rejected
	bool all = m->n_partitions == 0;
	bool group_ok = ox_group_name_check(m->group, strlen(m->group)) == 0;
	if (all && !group_ok) {
		ox_srv_respond_error(req, -OX_EINVALID_REQUEST,
				     "a group name is 1 to 255 bytes");
		goto out;
	}
	struct coord co;
	const char *why = NULL;
	int rc = group_ok ? coordinate(srv, m->group, &co, &why) : 0;
	if (rc < 0) {
		ox_srv_respond_error(req, rc, why);
		goto out;
	}
	f.cap = all ? ox_offsets_count(srv->offsets) : m->n_partitions;
	f.rs = calloc(f.cap + 1, sizeof(*f.rs));
	Oxbow__GroupOffset **rp = calloc(f.cap + 1, sizeof(*rp));
	if (!f.rs || !rp) {
		free(rp);
		ox_srv_respond_error(req, -ENOMEM, "out of memory");
		goto out;
	}
	if (all)
		ox_offsets_each(srv->offsets, m->group, NULL, add_fetched, &f);
	else
		fetch_listed(srv, m, &f);
	for (size_t i = 0; i < f.n; i++)
		rp[i] = &f.rs[i];
	Oxbow__OffsetFetchResponse resp = OXBOW__OFFSET_FETCH_RESPONSE__INIT;
	resp.n_offsets = f.n;
	resp.offsets = rp;
	ox_srv_respond_msg(req, &resp.base);
	free(rp);
out:
	free(f.rs);
	oxbow__offset_fetch_request__free_unpacked(m, NULL);
}

struct names {
	const char **v;
	size_t n, cap;
};

static void add_group(void *arg, const struct ox_offset_entry *e)
{
	struct names *g = arg;
	if (g->n < g->cap)
		g->v[g->n++] = e->group;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

void ox_srv_list_groups(struct ox_server *srv, struct ox_net_req *req)
{
	Oxbow__ListGroupsRequest *m = ox_srv_body_unpack(
		req, &oxbow__list_groups_request__descriptor, "LIST_GROUPS");
	struct names g = {0};

	if (!m)
		return; // rejected
	// A cluster: the groups of the shards this node coordinates (G1);
	// clients ask every node and merge.
	if (clustered(srv))
		(void)coord_load_led(srv);
	g.cap = ox_offsets_count(srv->offsets);
	g.v = calloc(g.cap + 1, sizeof(*g.v));
	if (!g.v) {
		ox_srv_respond_error(req, -ENOMEM, "out of memory");
		goto out;
	}
	ox_offsets_each(srv->offsets, NULL, NULL, add_group, &g);
	qsort(g.v, g.n, sizeof(*g.v), cmp_str);
	size_t u = 0;
	for (size_t i = 0; i < g.n; i++)
		if (u == 0 || strcmp(g.v[u - 1], g.v[i]) != 0)
			g.v[u++] = g.v[i];
	Oxbow__ListGroupsResponse resp = OXBOW__LIST_GROUPS_RESPONSE__INIT;
	resp.n_groups = u;
	resp.groups = (char **)g.v;
	ox_srv_respond_msg(req, &resp.base);
out:
	free(g.v);
	oxbow__list_groups_request__free_unpacked(m, NULL);
}

// ---- FIND_COORDINATOR ----

// The node that leads shard s of t as this node knows it: the Raft
// leader where it holds a replica, else the preferred leader (a client
// sent elsewhere hears NOT_LEADER and asks again). 0: none known now.
static uint64_t shard_leader(const struct ox_topic *t, uint32_t s)
{
	if (t->parts[s])
		return ox_raft_leader(ox_replica_raft(t->parts[s]->rep));
	return t->assignment[(size_t)s * t->meta.replicas];
}

// The client address of node id: 0, or -OX_ENOTLEADER when the node
// table does not have it yet.
static int node_address(struct ox_server *srv, uint64_t id, char *host,
			size_t cap, uint16_t *port)
{
	if (id == (uint64_t)srv->cfg.node_id) {
		snprintf(host, cap, "%s", srv->adv_host);
		*port = srv->adv_port;
		return 0;
	}
	for (uint32_t i = 0; srv->meta && i < ox_meta_nodes_n(srv); i++) {
		uint64_t nid;
		const char *client, *peer;
		bool reachable;
		if (ox_meta_node_at(srv, i, &nid, &client, &peer,
				    &reachable) == 0 &&
		    nid == id)
			return ox_config_addr_parse(client, host, cap, port) < 0
				       ? -OX_ENOTLEADER
				       : 0;
	}
	return -OX_ENOTLEADER;
}

void ox_srv_find_coordinator(struct ox_server *srv, struct ox_net_req *req)
{
	Oxbow__FindCoordinatorRequest *m = ox_srv_body_unpack(
		req, &oxbow__find_coordinator_request__descriptor,
		"FIND_COORDINATOR");
	Oxbow__FindCoordinatorResponse resp =
		OXBOW__FIND_COORDINATOR_RESPONSE__INIT;
	char host[OX_CONFIG_ADDR_MAX];
	uint16_t port = 0;
	uint64_t id = (uint64_t)srv->cfg.node_id;
	struct ox_topic *t = NULL;

	if (!m)
		return; // rejected
	if (ox_group_name_check(m->group, strlen(m->group)) < 0) {
		ox_srv_respond_error(req, -OX_EINVALID_REQUEST,
				     "a group name is 1 to 255 bytes");
		goto out;
	}
	if (clustered(srv)) {
		t = coord_topic(srv);
		if (!t) {
			ox_srv_respond_error(req, -OX_ENOTLEADER,
					     "the cluster's __offsets topic is "
					     "not there yet; retry");
			goto out;
		}
		id = shard_leader(t, ox_offsets_shard(srv->offsets, m->group));
	}
	if (id == 0 || node_address(srv, id, host, sizeof(host), &port) < 0) {
		ox_srv_respond_error(req, -OX_ENOTLEADER,
				     "the group's coordinator is not known "
				     "now (an election?); retry");
		goto out;
	}
	resp.node_id = (int32_t)id;
	resp.host = host;
	resp.port = port;
	ox_srv_respond_msg(req, &resp.base);
out:
	oxbow__find_coordinator_request__free_unpacked(m, NULL);
}
