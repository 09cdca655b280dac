// SPDX-License-Identifier: Apache-2.0
//
// The consumer's read path: one fetch in flight per leader node, sent
// again as soon as its response is decoded so that the next one travels
// while the application processes records (pipelining); every batch's
// checksum verified (check.crcs); control batches and records below the
// position skipped (a fetch from inside a batch returns the whole batch);
// records and headers decoded into arrays the consumer owns. Positions,
// commits and the API entry points are in consumer.c.
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "client/consumer_int.h"
#include "proto/assert.h"
#include "proto/batch.h"
#include "proto/wire.h"

void ox_consumer_drop_records(struct ox_consumer *c)
{
	struct ox_conn *home = NULL;

	for (size_t i = 0; i < c->fnodes_n; i++)
		if (c->fnodes[i].id == c->cur_node)
			home = &c->fnodes[i].conn;
	if (home != NULL)
		ox_conn_recycle(home, &c->cur);
	else
		ox_resp_free(&c->cur);
	c->recs_n = c->recs_idx = 0;
	c->hdrs_n = 0;
	c->strs_len = 0;
}

static struct fnode *fnode_get(struct ox_consumer *c, int32_t id)
{
	const struct ox_hostport *addr;
	struct fnode *n;

	for (size_t i = 0; i < c->fnodes_n; i++)
		if (c->fnodes[i].id == id)
			return &c->fnodes[i];
	addr = ox_client_node_addr(&c->cl, id);
	if (addr == NULL)
		return NULL;
	n = realloc(c->fnodes, (c->fnodes_n + 1) * sizeof(*n));
	if (n == NULL)
		return NULL;
	c->fnodes = n;
	n = &c->fnodes[c->fnodes_n++];
	memset(n, 0, sizeof(*n));
	n->id = id;
	ox_conn_init(&n->conn, addr, c->cl.conf.client_id);
	return n;
}

void ox_consumer_fetch_close(struct ox_consumer *c)
{
	for (size_t i = 0; i < c->fnodes_n; i++)
		ox_conn_deinit(&c->fnodes[i].conn);
	free(c->fnodes);
	c->fnodes = NULL;
	c->fnodes_n = 0;
	for (size_t i = 0; i < c->parts_n; i++)
		c->parts[i].fetch_node = -1;
}

// Forgets a node's fetch: its connection failed or timed out.
static void fnode_fail(struct ox_consumer *c, struct fnode *n)
{
	int64_t backoff = c->cl.conf.retry_backoff_ms;

	ox_conn_close(&n->conn);
	n->inflight = false;
	n->retry_after_ms = ox_now_ms() + backoff;
	for (size_t i = 0; i < c->parts_n; i++)
		if (c->parts[i].fetch_node == n->id)
			c->parts[i].fetch_node = -1;
	c->meta_stale = true;
}

// Sends a fetch for every partition the node leads that has none in
// flight. Returns 0 or a negative error (the node is then failed).
static int fetch_send(struct ox_consumer *c, struct fnode *n)
{
	Oxbow__FetchRequest req = OXBOW__FETCH_REQUEST__INIT;
	Oxbow__FetchTarget *t = calloc(c->parts_n + 1, sizeof(*t));
	Oxbow__FetchTarget **tp = calloc(c->parts_n + 1, sizeof(*tp));
	size_t k = 0;
	int rc = -ENOMEM;

	if (t == NULL || tp == NULL)
		goto out;
	for (size_t i = 0; i < c->parts_n; i++) {
		struct cpart *p = &c->parts[i];
		Oxbow__FetchTarget init = OXBOW__FETCH_TARGET__INIT;
		if (p->leader != n->id || p->err != 0 || p->position < 0)
			continue;
		t[k] = init;
		t[k].topic = p->topic;
		t[k].partition = (uint32_t)p->partition;
		t[k].offset = p->position;
		t[k].max_bytes = (uint32_t)c->cl.conf.max_partition_fetch_bytes;
		tp[k] = &t[k];
		p->fetch_pos = p->position;
		p->fetch_node = n->id;
		k++;
	}
	rc = 0;
	if (k == 0)
		goto out;
	req.max_wait_ms = (uint32_t)c->cl.conf.fetch_max_wait_ms;
	req.min_bytes = (uint32_t)c->cl.conf.fetch_min_bytes;
	req.max_bytes = (uint32_t)c->cl.conf.fetch_max_bytes;
	req.n_targets = k;
	req.targets = tp;
	if (n->conn.fd < 0) {
		rc = ox_conn_connect(&n->conn, c->cl.conf.connect_timeout_ms);
		if (rc < 0)
			goto out;
	}
	rc = ox_conn_queue(&n->conn, OXBOW__API_KEY__FETCH, &req.base, NULL, 0,
			   &n->corr);
	if (rc == 0)
		rc = ox_conn_write(&n->conn);
	if (rc == 0) {
		n->inflight = true;
		n->deadline_ms = ox_now_ms() + c->cl.conf.fetch_max_wait_ms +
				 c->cl.conf.request_timeout_ms;
	}
out:
	free(t);
	free(tp);
	if (rc < 0)
		fnode_fail(c, n);
	return rc;
}

// Starts fetches on every leader that has assigned partitions and none in
// flight.
static void fetch_start_all(struct ox_consumer *c)
{
	int64_t now = ox_now_ms();

	if (c->meta_stale && ox_consumer_refresh_leaders(c) == 0)
		c->meta_stale = false;
	for (size_t i = 0; i < c->parts_n; i++) {
		struct cpart *p = &c->parts[i];
		struct fnode *n;
		if (p->fetch_node >= 0 || p->err != 0 || p->leader < 0)
			continue;
		n = fnode_get(c, p->leader);
		if (n == NULL) {
			c->meta_stale = true;
			continue;
		}
		if (!n->inflight && now >= n->retry_after_ms)
			fetch_send(c, n);
	}
}

static int strs_reserve(struct ox_consumer *c, size_t need)
{
	if (need <= c->strs_cap)
		return 0;
	char *s = realloc(c->strs, need);
	if (s == NULL)
		return -ENOMEM;
	c->strs = s;
	c->strs_cap = need;
	return 0;
}

static struct ox_consumer_record *rec_next(struct ox_consumer *c)
{
	if (c->recs_n == c->recs_cap) {
		size_t n = c->recs_cap != 0 ? c->recs_cap * 2 : 1024;
		struct ox_consumer_record *r = realloc(c->recs, n * sizeof(*r));
		if (r == NULL)
			return NULL;
		c->recs = r;
		c->recs_cap = n;
	}
	return &c->recs[c->recs_n++];
}

static int headers_decode(struct ox_consumer *c, const struct ox_record *rec)
{
	struct ox_record_header h;
	size_t pos = 0;
	int rc;

	while ((rc = ox_record_header_next(rec, &pos, &h)) == 1) {
		if (c->hdrs_n == c->hdrs_cap) {
			size_t n = c->hdrs_cap != 0 ? c->hdrs_cap * 2 : 256;
			struct ox_header *hh = realloc(c->hdrs, n * sizeof(*hh));
			if (hh == NULL)
				return -ENOMEM;
			c->hdrs = hh;
			c->hdrs_cap = n;
		}
		// strs was sized for the whole response: no move here.
		char *key = c->strs + c->strs_len;
		OX_ASSERT(c->strs_len + h.key_len + 1 <= c->strs_cap);
		memcpy(key, h.key, h.key_len);
		key[h.key_len] = '\0';
		c->strs_len += h.key_len + 1;
		c->hdrs[c->hdrs_n].key = key;
		c->hdrs[c->hdrs_n].value = h.value_len >= 0 ? h.value : NULL;
		c->hdrs[c->hdrs_n].value_len =
			h.value_len >= 0 ? (size_t)h.value_len : 0;
		c->hdrs_n++;
	}
	return rc;
}

// Decodes the records of one verified batch at or above the position.
static int batch_decode(struct ox_consumer *c, struct cpart *p,
			const uint8_t *batch, size_t len)
{
	struct ox_batch_iter it;
	struct ox_record rec;
	int rc = ox_batch_iter_init(&it, batch, len);

	if (rc < 0)
		return rc;
	while ((rc = ox_batch_iter_next(&it, &rec)) == 1) {
		struct ox_consumer_record *r;
		if (rec.offset < p->position)
			continue;
		r = rec_next(c);
		if (r == NULL)
			return -ENOMEM;
		r->topic = p->topic;
		r->partition = p->partition;
		r->offset = rec.offset;
		r->timestamp_ms = rec.timestamp;
		r->key = rec.key_len >= 0 ? rec.key : NULL;
		r->key_len = rec.key_len >= 0 ? (size_t)rec.key_len : 0;
		r->value = rec.value_len >= 0 ? rec.value : NULL;
		r->value_len = rec.value_len >= 0 ? (size_t)rec.value_len : 0;
		r->headers = NULL;
		r->header_count = rec.header_count;
		if (rec.header_count > 0) {
			rc = headers_decode(c, &rec);
			if (rc < 0)
				return rc;
		}
	}
	return rc;
}

// Walks one partition's region of whole batches.
static int region_decode(struct ox_consumer *c, struct cpart *p,
			 const uint8_t *raw, size_t len)
{
	struct ox_batch_header h;
	size_t pos = 0, start = 0;
	int rc;

	while ((rc = ox_batch_next(raw, len, &pos, &h)) == 1) {
		const uint8_t *b = raw + start;
		int64_t last = h.base_offset + (int64_t)h.last_offset_delta;
		start = pos;
		if (last < p->position)
			continue;
		if (c->cl.conf.check_crcs) {
			rc = ox_batch_verify(b, h.length, NULL);
			if (rc < 0)
				return -OX_ECORRUPT;
		}
		if (!(h.attributes & OX_BATCH_ATTR_CONTROL)) {
			size_t recs_n = c->recs_n, hdrs_n = c->hdrs_n;
			size_t strs_len = c->strs_len;
			rc = batch_decode(c, p, b, h.length);
			if (rc < 0) {
				// None of a bad batch's records is returned.
				c->recs_n = recs_n;
				c->hdrs_n = hdrs_n;
				c->strs_len = strs_len;
				return rc == -ENOMEM ? rc : -OX_ECORRUPT;
			}
		}
		p->position = last + 1;
	}
	// A region cut inside its last batch: the rest comes next fetch.
	return rc == -OX_ETRUNCATED ? 0 : rc;
}

static struct cpart *part_find(struct ox_consumer *c, const char *topic,
			       uint32_t partition)
{
	for (size_t i = 0; i < c->parts_n; i++)
		if ((uint32_t)c->parts[i].partition == partition &&
		    strcmp(c->parts[i].topic, topic) == 0)
			return &c->parts[i];
	return NULL;
}

static void partition_error(struct ox_consumer *c, struct cpart *p, int err)
{
	if (err == -OX_EOFFSET) {
		int rc = ox_consumer_reset(c, p);
		if (rc < 0)
			p->err = rc;
		return;
	}
	if (ox_error_retriable(err) || err == -OX_EUNKNOWN_TOPIC) {
		c->meta_stale = true;
		return;
	}
	p->err = err;
	ox_client_set_error(&c->cl, "%s[%d]: %s", p->topic, (int)p->partition,
			    ox_strerror(err));
}

// Decodes a fetch response into the record arrays (now empty).
static int response_decode(struct ox_consumer *c, struct fnode *n,
			   struct ox_resp *resp)
{
	Oxbow__FetchResponse *fr;
	size_t off = 0;
	int rc = 0;

	for (size_t i = 0; i < c->parts_n; i++)
		if (c->parts[i].fetch_node == n->id)
			c->parts[i].fetch_node = -1;
	if (resp->err < 0) {
		ox_client_set_error(&c->cl, "fetch: %s", resp->errmsg);
		c->meta_stale = c->meta_stale || ox_error_retriable(resp->err);
		return ox_error_retriable(resp->err) ? 0 : resp->err;
	}
	fr = oxbow__fetch_response__unpack(NULL, resp->body_len, resp->body);
	if (fr == NULL)
		return -OX_ECORRUPT;
	OX_ASSERT(c->recs_n == 0 && c->strs_len == 0);
	rc = strs_reserve(c, resp->raw_len + 1);
	for (size_t i = 0; rc == 0 && i < fr->n_partitions; i++) {
		const Oxbow__FetchPartition *fp = fr->partitions[i];
		struct cpart *p = part_find(c, fp->topic, fp->partition);
		const uint8_t *raw = resp->raw + off;
		if (fp->bytes > resp->raw_len - off) {
			rc = -OX_ECORRUPT;
			break;
		}
		off += fp->bytes;
		// Invariant 2: data fetched before a seek is void.
		if (p == NULL || p->fetch_pos != p->position || p->err != 0)
			continue;
		if (fp->error_code != 0) {
			partition_error(c, p, ox_error_from_wire(
						      (int)fp->error_code));
			continue;
		}
		int prc = region_decode(c, p, raw, fp->bytes);
		if (prc == -ENOMEM)
			rc = prc;
		else if (prc < 0)
			p->err = prc;
	}
	oxbow__fetch_response__free_unpacked(fr, NULL);
	// Headers were appended in record order: point each record at its
	// own (the array may have moved while growing).
	size_t h = 0;
	for (size_t i = 0; i < c->recs_n; i++) {
		c->recs[i].headers = c->recs[i].header_count > 0 ?
					     c->hdrs + h :
					     NULL;
		h += c->recs[i].header_count;
	}
	OX_ASSERT(h == c->hdrs_n);
	return rc;
}

// Handles whatever arrived on a node; returns records decoded or error.
static int node_pump(struct ox_consumer *c, struct fnode *n, short rev)
{
	struct ox_resp resp;
	int rc = 0;

	if (rev & (POLLIN | POLLHUP | POLLERR))
		rc = ox_conn_read(&n->conn);
	if (rc == 0 && ox_conn_want_write(&n->conn))
		rc = ox_conn_write(&n->conn);
	if (rc == 0)
		rc = ox_conn_next(&n->conn, &resp);
	if (rc == 0 && ox_now_ms() >= n->deadline_ms)
		rc = -ETIMEDOUT;
	if (rc < 0) {
		fnode_fail(c, n);
		return 0;
	}
	if (rc == 0)
		return 0;
	if (resp.corr != n->corr) {
		ox_resp_free(&resp);
		return 0;
	}
	n->inflight = false;
	ox_consumer_drop_records(c);
	c->cur = resp;
	c->cur_node = n->id;
	rc = response_decode(c, n, &c->cur);
	// Pipelining: the next fetch travels while records are processed.
	fetch_send(c, n);
	if (rc < 0)
		return rc;
	return (int)c->recs_n;
}

static int sticky_error(struct ox_consumer *c)
{
	for (size_t i = 0; i < c->parts_n; i++)
		if (c->parts[i].err != 0)
			return c->parts[i].err;
	return 0;
}

int ox_consumer_fetch_poll(struct ox_consumer *c, int timeout_ms)
{
	int64_t deadline = ox_now_ms() + (timeout_ms < 0 ? INT32_MAX :
							  timeout_ms);
	struct pollfd *pfd = NULL;
	int rc = 0;

	ox_consumer_drop_records(c);
	for (;;) {
		rc = sticky_error(c);
		if (rc < 0)
			break;
		fetch_start_all(c);
		free(pfd);
		pfd = calloc(c->fnodes_n + 1, sizeof(*pfd));
		if (pfd == NULL) {
			rc = -ENOMEM;
			break;
		}
		size_t k = 0;
		for (size_t i = 0; i < c->fnodes_n; i++) {
			struct fnode *n = &c->fnodes[i];
			pfd[i].fd = n->inflight ? n->conn.fd : -1;
			pfd[i].events = (short)(POLLIN |
				(ox_conn_want_write(&n->conn) ? POLLOUT : 0));
			k += n->inflight;
		}
		// A response may already sit in a connection's buffer.
		for (size_t i = 0; i < c->fnodes_n; i++)
			if (c->fnodes[i].inflight) {
				rc = node_pump(c, &c->fnodes[i], 0);
				if (rc != 0)
					goto out;
			}
		int64_t left = deadline - ox_now_ms();
		if (left <= 0)
			break;
		// With nothing in flight (leaders unknown, backoff), wait a
		// little before asking again.
		int wait = k == 0 ? (int)(left < 50 ? left : 50) :
				    (int)(left > INT32_MAX ? INT32_MAX : left);
		if (poll(pfd, c->fnodes_n, wait) < 0 && errno != EINTR) {
			rc = -errno;
			break;
		}
		for (size_t i = 0; i < c->fnodes_n; i++)
			if (pfd[i].revents != 0 && c->fnodes[i].inflight) {
				rc = node_pump(c, &c->fnodes[i],
					       pfd[i].revents);
				if (rc != 0)
					goto out;
			}
	}
out:
	free(pfd);
	return rc;
}
