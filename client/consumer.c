// SPDX-License-Identifier: Apache-2.0
//
// The consumer's entry points: create and destroy, assignment (with
// starting positions from the group's committed offsets or
// auto.offset.reset), seek by offset, by special offset and by time,
// positions, and commits (synchronous, and asynchronous on a connection of
// their own whose callbacks run from later calls); commits and committed
// offsets go to the group's coordinator (ox_client_call_group; the
// asynchronous connection follows it). The fetch path is in
// consumer_fetch.c. Not thread-safe: one thread at a time per consumer.
#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "client/consumer_int.h"
#include "proto/assert.h"
#include "proto/wire.h"

// Asynchronous commits queued at once: each holds a request on the commit
// connection; beyond this, commit_async waits for the oldest.
#define ACOMMITS_MAX 64

// ox_client_handle_create allocates the handle around its client.
_Static_assert(offsetof(struct ox_consumer, cl) == 0,
	       "the client is the consumer's first member");

int ox_consumer_create(struct ox_consumer **out, const struct ox_conf *conf,
		       char *errstr, size_t errstr_size)
{
	int rc;
	struct ox_consumer *c = ox_client_handle_create(
		sizeof(*c), out, conf, errstr, errstr_size, &rc);

	if (c == NULL)
		return rc;
	ox_conn_init(&c->commit_conn, &c->cl.conf.boot[0],
		     c->cl.conf.client_id);
	*out = c;
	return 0;
}

const char *ox_consumer_last_error(const struct ox_consumer *c)
{
	return c != NULL ? c->cl.last_error : "";
}

static void parts_free(struct ox_consumer *c)
{
	for (size_t i = 0; i < c->parts_n; i++)
		free(c->parts[i].topic);
	free(c->parts);
	c->parts = NULL;
	c->parts_n = 0;
}

static struct cpart *part_get(const struct ox_consumer *c, const char *topic,
			      int32_t partition)
{
	if (c == NULL || topic == NULL)
		return NULL;
	for (size_t i = 0; i < c->parts_n; i++)
		if (c->parts[i].partition == partition &&
		    strcmp(c->parts[i].topic, topic) == 0)
			return &c->parts[i];
	return NULL;
}

// Applies metadata to the assigned partitions' leaders.
static int leaders_apply(struct ox_consumer *c, const Oxbow__MetadataResponse *md,
			 bool strict)
{
	for (size_t i = 0; i < c->parts_n; i++) {
		struct cpart *p = &c->parts[i];
		const Oxbow__TopicMetadata *tm = NULL;
		bool found = false;
		for (size_t j = 0; j < md->n_topics; j++)
			if (strcmp(md->topics[j]->name, p->topic) == 0)
				tm = md->topics[j];
		for (size_t j = 0; tm != NULL && tm->error_code == 0 &&
				   j < tm->n_partitions;
		     j++) {
			const Oxbow__PartitionMetadata *pm = tm->partitions[j];
			if ((int32_t)pm->partition != p->partition)
				continue;
			p->leader = pm->error_code == 0 ? pm->leader : -1;
			found = true;
		}
		if (!found && strict) {
			ox_client_set_error(&c->cl,
					    "%s[%d]: no such topic or partition",
					    p->topic, (int)p->partition);
			return -OX_EUNKNOWN_TOPIC;
		}
	}
	return 0;
}

static int metadata_for_parts(struct ox_consumer *c,
			      Oxbow__MetadataResponse **md)
{
	const char **names = calloc(c->parts_n + 1, sizeof(*names));
	size_t n = 0;
	int rc;

	if (names == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < c->parts_n; i++) {
		bool dup = false;
		for (size_t j = 0; j < n; j++)
			dup = dup || strcmp(names[j], c->parts[i].topic) == 0;
		if (!dup)
			names[n++] = c->parts[i].topic;
	}
	rc = n > 0 ? ox_client_metadata(&c->cl, names, n, false, md) : 0;
	free(names);
	return rc;
}

int ox_consumer_refresh_leaders(struct ox_consumer *c)
{
	Oxbow__MetadataResponse *md = NULL;
	int rc = metadata_for_parts(c, &md);

	if (rc == 0 && md != NULL) {
		rc = leaders_apply(c, md, false);
		protobuf_c_message_free_unpacked(&md->base, NULL);
	}
	return rc;
}

int ox_consumer_list_offset(struct ox_consumer *c, struct cpart *p,
			    int64_t spec, int64_t *out)
{
	return ox_client_list_offset(&c->cl, p->leader, p->topic, p->partition,
				     spec, "list offsets: ", out);
}

int ox_consumer_reset(struct ox_consumer *c, struct cpart *p)
{
	int mode = c->cl.conf.auto_offset_reset;

	if (mode == OX_RESET_NONE) {
		ox_client_set_error(&c->cl,
				    "%s[%d]: no valid position and "
				    "auto.offset.reset is none",
				    p->topic, (int)p->partition);
		return -OX_EOFFSET;
	}
	return ox_consumer_list_offset(c, p,
				       mode == OX_RESET_EARLIEST ?
					       OX_OFFSET_BEGINNING :
					       OX_OFFSET_END,
				       &p->position);
}

// Committed offsets of the group for every assigned partition; -1 where
// there is none.
static int committed_fetch(struct ox_consumer *c, struct cpart *only,
			   int64_t *out)
{
	Oxbow__OffsetFetchRequest req = OXBOW__OFFSET_FETCH_REQUEST__INIT;
	size_t n = only != NULL ? 1 : c->parts_n;
	struct ox_req_offsets g;
	ProtobufCMessage *msg = NULL;
	int rc = ox_req_offsets_alloc(&g, n);

	if (rc < 0)
		return rc;
	for (size_t i = 0; i < n; i++) {
		struct cpart *p = only != NULL ? only : &c->parts[i];
		g.v[i].topic = p->topic;
		g.v[i].partition = (uint32_t)p->partition;
		out[i] = -1;
	}
	req.group = c->cl.conf.group_id;
	req.n_partitions = n;
	req.partitions = g.p;
	rc = ox_client_call_group(&c->cl, c->cl.conf.group_id,
				  OXBOW__API_KEY__OFFSET_FETCH, &req.base,
				  &oxbow__offset_fetch_response__descriptor,
				  &msg);
	if (rc < 0)
		goto out;
	Oxbow__OffsetFetchResponse *r = (Oxbow__OffsetFetchResponse *)msg;
	for (size_t j = 0; j < r->n_offsets; j++) {
		const Oxbow__GroupOffset *o = r->offsets[j];
		if (o->error_code != 0)
			continue;
		for (size_t i = 0; i < n; i++)
			if (g.v[i].partition == o->partition &&
			    strcmp(g.v[i].topic, o->topic) == 0)
				out[i] = o->offset;
	}
	protobuf_c_message_free_unpacked(msg, NULL);
out:
	ox_req_offsets_free(&g);
	return rc;
}

static int positions_init(struct ox_consumer *c)
{
	int64_t *committed = calloc(c->parts_n + 1, sizeof(*committed));
	int rc = 0;

	if (committed == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < c->parts_n; i++)
		committed[i] = -1;
	if (c->cl.conf.group_id[0] != '\0')
		rc = committed_fetch(c, NULL, committed);
	for (size_t i = 0; rc == 0 && i < c->parts_n; i++) {
		if (committed[i] >= 0)
			c->parts[i].position = committed[i];
		else
			rc = ox_consumer_reset(c, &c->parts[i]);
	}
	free(committed);
	return rc;
}

static void assignment_clear(struct ox_consumer *c)
{
	ox_consumer_drop_records(c);
	ox_consumer_fetch_close(c);
	parts_free(c);
}

int ox_consumer_assign(struct ox_consumer *c,
		       const struct ox_topic_partition *tps, size_t n)
{
	Oxbow__MetadataResponse *md = NULL;
	int rc;

	if (c == NULL || (tps == NULL && n > 0))
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (tps[i].topic == NULL || tps[i].topic[0] == '\0' ||
		    tps[i].partition < 0)
			return -EINVAL;
	assignment_clear(c);
	c->parts = calloc(n + 1, sizeof(*c->parts));
	if (c->parts == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct cpart *p = &c->parts[c->parts_n];
		if (part_get(c, tps[i].topic, tps[i].partition) != NULL)
			continue;
		p->topic = strdup(tps[i].topic);
		if (p->topic == NULL) {
			rc = -ENOMEM;
			goto fail;
		}
		p->partition = tps[i].partition;
		p->leader = -1;
		p->position = -1;
		p->fetch_pos = -1;
		p->fetch_node = -1;
		c->parts_n++;
	}
	rc = metadata_for_parts(c, &md);
	if (rc < 0)
		goto fail;
	if (md != NULL) {
		rc = leaders_apply(c, md, true);
		protobuf_c_message_free_unpacked(&md->base, NULL);
		if (rc < 0)
			goto fail;
	}
	rc = positions_init(c);
	if (rc < 0)
		goto fail;
	return 0;
fail:
	parts_free(c);
	return rc;
}

int ox_consumer_assign_topic(struct ox_consumer *c, const char *topic)
{
	Oxbow__MetadataResponse *md = NULL;
	struct ox_topic_partition *tps;
	const char *names[1] = { topic };
	int rc;

	if (c == NULL || topic == NULL || topic[0] == '\0')
		return -EINVAL;
	rc = ox_client_metadata(&c->cl, names, 1, false, &md);
	if (rc < 0)
		return rc;
	if (md->n_topics != 1 || md->topics[0]->error_code != 0 ||
	    md->topics[0]->n_partitions == 0) {
		ox_client_set_error(&c->cl, "%s: no such topic", topic);
		protobuf_c_message_free_unpacked(&md->base, NULL);
		return -OX_EUNKNOWN_TOPIC;
	}
	size_t n = md->topics[0]->n_partitions;
	tps = calloc(n, sizeof(*tps));
	if (tps == NULL) {
		protobuf_c_message_free_unpacked(&md->base, NULL);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		tps[i].topic = topic;
		tps[i].partition = (int32_t)md->topics[0]->partitions[i]->partition;
	}
	protobuf_c_message_free_unpacked(&md->base, NULL);
	rc = ox_consumer_assign(c, tps, n);
	free(tps);
	return rc;
}

// Runs the callbacks of answered asynchronous commits.
static void commit_callbacks(struct ox_consumer *c)
{
	size_t n = c->cb_due_n;

	c->cb_due_n = 0;
	for (size_t i = 0; i < n; i++)
		if (c->cb_due[i].cb != NULL)
			c->cb_due[i].cb(c->cb_due[i].opaque, c->cb_due_err[i]);
}

static int commit_result(const struct ox_resp *r)
{
	Oxbow__OffsetCommitResponse *cr;
	int rc = r->err;

	if (rc < 0)
		return rc;
	cr = oxbow__offset_commit_response__unpack(NULL, r->body_len, r->body);
	if (cr == NULL)
		return -OX_ECORRUPT;
	rc = ox_commit_response_result(cr);
	oxbow__offset_commit_response__free_unpacked(cr, NULL);
	return rc;
}

// Moves async commit i (answered with err) to the callback list. An
// answer saying the coordinator moved makes the next commit find it.
static void acommit_done(struct ox_consumer *c, size_t i, int err)
{
	if (ox_client_coord_retriable(err))
		c->cl.coord.known = false;
	c->cb_due[c->cb_due_n] = c->acommits[i];
	c->cb_due_err[c->cb_due_n] = err;
	c->cb_due_n++;
	memmove(&c->acommits[i], &c->acommits[i + 1],
		(c->acommits_n - i - 1) * sizeof(*c->acommits));
	c->acommits_n--;
}

// Moves commit traffic along; waits up to deadline for all answers when
// `all`, else not at all.
static void commit_pump(struct ox_consumer *c, bool all, int64_t deadline)
{
	struct ox_resp r;
	int rc = 0;

	while (c->acommits_n > 0) {
		rc = ox_conn_write(&c->commit_conn);
		while (rc == 0 && (rc = ox_conn_next(&c->commit_conn, &r)) == 1) {
			for (size_t i = 0; i < c->acommits_n; i++)
				if (c->acommits[i].corr == r.corr) {
					acommit_done(c, i, commit_result(&r));
					break;
				}
			ox_resp_free(&r);
			rc = 0;
		}
		if (rc < 0 || c->acommits_n == 0)
			break;
		short ev = (short)(POLLIN | (ox_conn_want_write(&c->commit_conn) ?
						     POLLOUT : 0));
		rc = ox_conn_wait(&c->commit_conn, ev,
				  all ? deadline : ox_now_ms() + 1);
		if (rc == -ETIMEDOUT && !all)
			return;
		if (rc == 0)
			rc = ox_conn_read(&c->commit_conn);
		if (rc < 0)
			break;
	}
	if (rc < 0) {
		// The connection failed or timed out: every commit on it
		// fails.
		ox_conn_close(&c->commit_conn);
		while (c->acommits_n > 0)
			acommit_done(c, 0, rc);
	}
}

// The next offset the application will see: records decoded but not yet
// returned are still ahead of it, and the partition's fetch position is
// already past them.
static int64_t app_position(const struct ox_consumer *c, const struct cpart *p)
{
	for (size_t i = c->recs_idx; i < c->recs_n; i++)
		if (c->recs[i].partition == p->partition &&
		    strcmp(c->recs[i].topic, p->topic) == 0)
			return c->recs[i].offset;
	return p->position;
}

// The offsets a commit sends: tps when given, else the application's
// position in every assigned partition. On success the caller frees g.
static int commit_offsets(struct ox_consumer *c,
			  const struct ox_topic_partition *tps, size_t n,
			  struct ox_req_offsets *g)
{
	size_t k = tps != NULL ? n : c->parts_n;
	int rc;

	if (c->cl.conf.group_id[0] == '\0') {
		ox_client_set_error(&c->cl, "commit needs group.id");
		return -EINVAL;
	}
	for (size_t i = 0; tps != NULL && i < n; i++)
		if (tps[i].topic == NULL || tps[i].partition < 0 ||
		    tps[i].offset < 0)
			return -EINVAL;
	rc = ox_req_offsets_alloc(g, k);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < k; i++) {
		g->v[i].topic = (char *)(tps != NULL ? tps[i].topic :
						       c->parts[i].topic);
		g->v[i].partition = (uint32_t)(tps != NULL ?
						       tps[i].partition :
						       c->parts[i].partition);
		g->v[i].offset = tps != NULL ? tps[i].offset :
					       app_position(c, &c->parts[i]);
	}
	return 0;
}

int ox_consumer_commit(struct ox_consumer *c,
		       const struct ox_topic_partition *tps, size_t n)
{
	struct ox_req_offsets g;
	int rc;

	if (c == NULL)
		return -EINVAL;
	commit_pump(c, true, ox_now_ms() + c->cl.conf.request_timeout_ms);
	commit_callbacks(c);
	rc = commit_offsets(c, tps, n, &g);
	if (rc < 0)
		return rc;
	rc = ox_client_commit(&c->cl, c->cl.conf.group_id, &g);
	ox_req_offsets_free(&g);
	return rc;
}

// Points the asynchronous commit connection at the group's coordinator,
// once the commits still on it were answered. A broker without
// FIND_COORDINATOR serves groups itself: the connection stays.
static int commit_conn_route(struct ox_consumer *c)
{
	const struct ox_hostport *hp;
	int rc = ox_client_coordinator(&c->cl, c->cl.conf.group_id, &hp);

	if (rc == -OX_EUNSUPPORTED)
		return 0;
	if (rc < 0)
		return rc;
	if (strcmp(c->commit_conn.addr.host, hp->host) == 0 &&
	    c->commit_conn.addr.port == hp->port)
		return 0;
	commit_pump(c, true, ox_now_ms() + c->cl.conf.request_timeout_ms);
	ox_conn_deinit(&c->commit_conn);
	ox_conn_init(&c->commit_conn, hp, c->cl.conf.client_id);
	return 0;
}

int ox_consumer_commit_async(struct ox_consumer *c,
			     const struct ox_topic_partition *tps, size_t n,
			     ox_commit_cb cb, void *opaque)
{
	Oxbow__OffsetCommitRequest req = OXBOW__OFFSET_COMMIT_REQUEST__INIT;
	struct ox_req_offsets g;
	uint64_t corr;
	int rc;

	if (c == NULL)
		return -EINVAL;
	if (c->acommits == NULL) {
		c->acommits = calloc(ACOMMITS_MAX, sizeof(*c->acommits));
		c->cb_due = calloc(ACOMMITS_MAX, sizeof(*c->cb_due));
		c->cb_due_err = calloc(ACOMMITS_MAX, sizeof(*c->cb_due_err));
		if (c->acommits == NULL || c->cb_due == NULL ||
		    c->cb_due_err == NULL)
			return -ENOMEM;
	}
	if (c->acommits_n == ACOMMITS_MAX)
		commit_pump(c, true,
			    ox_now_ms() + c->cl.conf.request_timeout_ms);
	rc = commit_offsets(c, tps, n, &g);
	if (rc < 0)
		return rc;
	rc = commit_conn_route(c);
	if (rc < 0) {
		ox_req_offsets_free(&g);
		return rc;
	}
	req.group = c->cl.conf.group_id;
	req.n_offsets = g.n;
	req.offsets = g.p;
	if (c->commit_conn.fd < 0)
		rc = ox_conn_connect(&c->commit_conn,
				     c->cl.conf.connect_timeout_ms);
	if (rc == 0)
		rc = ox_conn_queue(&c->commit_conn, OXBOW__API_KEY__OFFSET_COMMIT,
				   &req.base, NULL, 0, &corr);
	if (rc == 0) {
		OX_ASSERT(c->acommits_n < ACOMMITS_MAX);
		c->acommits[c->acommits_n].corr = corr;
		c->acommits[c->acommits_n].cb = cb;
		c->acommits[c->acommits_n].opaque = opaque;
		c->acommits_n++;
		commit_pump(c, false, 0);
	}
	ox_req_offsets_free(&g);
	return rc;
}

int ox_consumer_poll(struct ox_consumer *c, int timeout_ms,
		     const struct ox_consumer_record **out, size_t max)
{
	int rc;

	if (c == NULL || out == NULL || max == 0)
		return -EINVAL;
	commit_pump(c, false, 0);
	commit_callbacks(c);
	if (c->recs_idx == c->recs_n) {
		rc = ox_consumer_fetch_poll(c, timeout_ms);
		if (rc < 0)
			return rc;
	}
	size_t n = c->recs_n - c->recs_idx;
	if (n > max)
		n = max;
	*out = c->recs + c->recs_idx;
	c->recs_idx += n;
	return (int)n;
}

static int seek_to(struct ox_consumer *c, struct cpart *p, int64_t offset)
{
	// Decoded records not yet handed out are dropped: each partition
	// that had some goes back to the first of them (walking backwards,
	// the earliest is assigned last).
	for (size_t i = c->recs_n; i-- > c->recs_idx;) {
		struct cpart *q = part_get(c, c->recs[i].topic,
					   c->recs[i].partition);
		if (q != NULL)
			q->position = c->recs[i].offset;
	}
	ox_consumer_drop_records(c);
	p->position = offset;
	p->err = 0;
	return 0;
}

int ox_consumer_seek(struct ox_consumer *c, const char *topic,
		     int32_t partition, int64_t offset)
{
	struct cpart *p = part_get(c, topic, partition);
	int64_t off = offset;
	int rc;

	if (p == NULL || (offset < 0 && offset != OX_OFFSET_BEGINNING &&
			  offset != OX_OFFSET_END))
		return -EINVAL;
	if (offset < 0) {
		rc = ox_consumer_list_offset(c, p, offset, &off);
		if (rc < 0)
			return rc;
	}
	return seek_to(c, p, off);
}

int ox_consumer_seek_time(struct ox_consumer *c, const char *topic,
			  int32_t partition, int64_t timestamp_ms)
{
	struct cpart *p = part_get(c, topic, partition);
	int64_t off;
	int rc;

	if (p == NULL || timestamp_ms < 0)
		return -EINVAL;
	rc = ox_consumer_list_offset(c, p, timestamp_ms, &off);
	if (rc < 0)
		return rc;
	return seek_to(c, p, off);
}

int ox_consumer_position(const struct ox_consumer *c, const char *topic,
			 int32_t partition, int64_t *offset_out)
{
	const struct cpart *p = part_get(c, topic, partition);

	if (p == NULL || offset_out == NULL)
		return -EINVAL;
	*offset_out = app_position(c, p);
	return 0;
}

int ox_consumer_committed(struct ox_consumer *c, const char *topic,
			  int32_t partition, int64_t *offset_out)
{
	struct cpart tmp = { 0 };
	int rc;

	if (c == NULL || topic == NULL || partition < 0 || offset_out == NULL)
		return -EINVAL;
	if (c->cl.conf.group_id[0] == '\0') {
		ox_client_set_error(&c->cl, "committed needs group.id");
		return -EINVAL;
	}
	tmp.topic = (char *)topic;
	tmp.partition = partition;
	rc = committed_fetch(c, &tmp, offset_out);
	return rc;
}

void ox_consumer_destroy(struct ox_consumer *c)
{
	if (c == NULL)
		return;
	commit_pump(c, true, ox_now_ms() + c->cl.conf.request_timeout_ms);
	commit_callbacks(c);
	assignment_clear(c);
	ox_conn_deinit(&c->commit_conn);
	free(c->acommits);
	free(c->cb_due);
	free(c->cb_due_err);
	free(c->recs);
	free(c->hdrs);
	free(c->strs);
	ox_client_deinit(&c->cl);
	free(c);
}
