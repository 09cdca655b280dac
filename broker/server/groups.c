// SPDX-License-Identifier: Apache-2.0
//
// Consumer-group offsets over the internal topic __offsets: OFFSET_COMMIT
// (one batch per request, answered once durable; the map is updated only
// then, S6), OFFSET_FETCH and LIST_GROUPS from the map, the replay that
// rebuilds the map at start, and the tombstones written when a topic goes
// away. The record encoding is offsets.h's.
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

// ---- replay at start ----

static void apply_batch(struct ox_server *srv, const uint8_t *b, size_t len)
{
	struct ox_batch_iter it;
	struct ox_record r;
	int rc;

	if (ox_batch_iter_init(&it, b, len) < 0 ||
	    (it.hdr.attributes & OX_BATCH_ATTR_CONTROL))
		return;
	while ((rc = ox_batch_iter_next(&it, &r)) == 1) {
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

int ox_srv_offsets_replay(struct ox_server *srv)
{
	struct ox_log *log = srv->offsets_topic->parts[0]->log;
	int64_t off = ox_log_start_offset(log), end = ox_log_written_offset(log);
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
			apply_batch(srv, buf + prev, pos - prev);
			off = h.base_offset + h.last_offset_delta + 1;
			prev = pos;
		}
		if (prev == 0) {
			rc = -OX_ECORRUPT;
			break;
		}
	}
	free(buf);
	if (rc < 0)
		return rc;
	ox_slog(OX_SLOG_INFO, "group offsets loaded entries=%zu",
		ox_offsets_count(srv->offsets));
	drop_orphans(srv);
	return 0;
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
			   size_t len,
			   void (*done)(struct ox_append *, int, int64_t))
{
	in->a.part = srv->offsets_topic->parts[0];
	in->a.batch = in->batch;
	in->a.len = len;
	in->a.acks = OX_REPLICA_ACKS_ALL; // S6: committed before it counts
	in->a.done = done;
	return ox_srv_append(srv, &in->a);
}

struct dropped {
	struct ox_offset_key *keys;
	char (*groups)[OX_GROUP_NAME_MAX + 1];
	size_t n, cap;
	bool oom;
};

static void collect_key(void *arg, const struct ox_offset_entry *e)
{
	struct dropped *d = arg;

	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 64;
		void *k = realloc(d->keys, cap * sizeof(*d->keys));
		if (k)
			d->keys = k;
		void *g = realloc(d->groups, cap * sizeof(*d->groups));
		if (g)
			d->groups = g;
		if (!k || !g) {
			d->oom = true;
			return;
		}
		d->cap = cap;
	}
	strcpy(d->groups[d->n], e->group);
	d->keys[d->n].partition = e->partition;
	d->n++;
}

static int send_tombstones(struct ox_server *srv, struct dropped *d,
			   size_t from, size_t to)
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
		int klen = ox_offset_key_encode(&d->keys[i], key);
		OX_ASSERT(klen > 0);
		struct ox_record r = {.key = key, .key_len = klen,
				      .value_len = -1, .timestamp = ts};
		int rc = ox_batch_builder_add(&b, &r);
		OX_ASSERT(rc == 0); // the caller sized the range to fit
	}
	ox_batch_builder_finish(&b, &len);
	int rc = append_internal(srv, in, len, tombstones_done);
	if (rc < 0)
		internal_free(in);
	return rc;
}

void ox_srv_offsets_drop_topic(struct ox_server *srv, const char *topic)
{
	struct dropped d = {0};

	ox_offsets_each(srv->offsets, NULL, topic, collect_key, &d);
	size_t tlen = strlen(topic), from = 0, bytes = 0;
	for (size_t i = 0; i < d.n; i++) {
		d.keys[i].group = d.groups[i];
		d.keys[i].group_len = strlen(d.groups[i]);
		d.keys[i].topic = topic;
		d.keys[i].topic_len = tlen;
		ox_offsets_remove(srv->offsets, &d.keys[i]);
	}
	for (size_t i = 0; i <= d.n; i++) {
		// Bytes a tombstone takes at most: key, lengths, varints.
		size_t rec = OX_OFFSET_KEY_MAX + 64;
		if (i < d.n && bytes + rec < TOMBSTONE_BATCH_BYTES - 128) {
			bytes += rec;
			continue;
		}
		if (i > from) {
			int rc = send_tombstones(srv, &d, from, i);
			if (rc < 0)
				ox_slog(OX_SLOG_WARN, "cannot write group offset "
					"tombstones topic=%s error=\"%s\"",
					topic, ox_strerror(rc));
		}
		from = i;
		bytes = rec;
	}
	if (d.oom)
		ox_slog(OX_SLOG_WARN, "out of memory dropping group offsets "
			"topic=%s", topic);
	free(d.keys);
	free(d.groups);
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

	(void)base;
	for (size_t i = 0; i < m->n_offsets; i++) {
		const Oxbow__GroupOffset *g = m->offsets[i];
		if (in->errs[i] < 0)
			continue;
		if (res < 0) {
			in->errs[i] = -OX_ESTORAGE;
			continue;
		}
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
	int rc = commit_batch(srv, in, &len);
	if (rc == 0) {
		commit_respond(in); // no valid item: nothing to write
		return;
	}
	if (rc > 0)
		rc = append_internal(srv, in, len, commit_done);
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
	if (all && ox_group_name_check(m->group, strlen(m->group)) < 0) {
		ox_srv_respond_error(req, -OX_EINVALID_REQUEST,
				     "a group name is 1 to 255 bytes");
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
