// SPDX-License-Identifier: Apache-2.0
//
// FETCH (with long-poll) and LIST_OFFSETS. A fetch reads whole stored
// batches below the high watermark (S2) of each target into one malloc'd
// buffer that the net sends after the body and frees; the broker checks
// nothing per record (the client verifies checksums; the log verified
// each batch as it read it).
//
// Long-poll: a fetch that finds fewer than min_bytes parks, with one io
// timer for max_wait_ms, and remembers each target partition's
// acknowledged-bytes counter. Append callbacks bump those counters and
// set srv->wake; ox_server_poll then answers every parked fetch whose
// counters grew by what it still lacked. The housekeeping tick ends parked
// fetches whose connection closed. A parked fetch is a small heap object
// the timer callback frees once the fetch was answered (S7).
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "broker/io/io.h"
#include "broker/server/server_int.h"
#include "broker/slog/slog.h"
#include "proto/assert.h"
#include "proto/batch.h"
#include "proto/error.h"
#include "proto/frame.h"
#include "proto/wire.h"

// Raw bytes a response may carry: one maximal batch, with room for the
// header and body inside OX_FRAME_BYTES_MAX.
#define RAW_MAX OX_BATCH_BYTES_MAX

struct target {
	struct ox_partition *part; // NULL once the topic is deleted
	uint64_t acked_at_park;
};

struct ox_fetch {
	struct ox_fetch *next, *prev;
	struct ox_server *srv;
	struct ox_net_req *req;
	Oxbow__FetchRequest *msg;
	uint64_t have;     // bytes available when it parked
	bool parked;
	bool answered;
	bool timer_armed;
	size_t n;
	struct target t[];
};

struct collect {
	uint8_t *buf;
	size_t cap;
	size_t used;
	bool error; // some target has an error: answer at once
};

static int grow(struct collect *c, size_t need)
{
	if (c->cap - c->used >= need)
		return 0;
	size_t cap = c->used + need;
	uint8_t *buf = realloc(c->buf, cap);
	if (!buf)
		return -ENOMEM;
	c->buf = buf;
	c->cap = cap;
	return 0;
}

// Reads one target into c; fills p's offsets, error and bytes.
static void read_target(struct ox_server *srv, const Oxbow__FetchTarget *tg,
			size_t budget, struct collect *c,
			Oxbow__FetchPartition *p)
{
	struct ox_partition *part;
	size_t len = 0;
	int found = ox_srv_partition_lookup(srv, tg->topic, tg->partition,
					    &part);

	if (found < 0) {
		p->error_code = (Oxbow__ErrorCode)ox_error_to_wire(found);
		c->error = true;
		return;
	}
	int64_t hw = ox_srv_hw(srv, part);
	int64_t start = ox_log_start_offset(part->log);
	p->high_watermark = hw;
	p->log_start_offset = start;
	if (tg->offset < start || tg->offset > hw) {
		p->error_code = OXBOW__ERROR_CODE__OFFSET_OUT_OF_RANGE;
		c->error = true;
		return;
	}
	if (tg->offset == hw || c->used >= budget)
		return;
	size_t left = budget - c->used;
	if (tg->max_bytes && tg->max_bytes < left)
		left = tg->max_bytes;
	int rc = grow(c, left);
	if (rc == 0)
		rc = ox_log_read(part->log, tg->offset, left, hw,
				 c->buf + c->used, left, &len);
	if (rc == -ENOSPC) {
		// The first batch is larger than max_bytes: send it alone
		// all the same, so the consumer makes progress, as long as
		// the response stays within one frame.
		struct ox_log_slice s = {0};
		rc = ox_log_read_slice(part->log, tg->offset, 1, hw, &s);
		size_t first = s.len;
		if (rc == 0)
			ox_log_slice_release(&s);
		if (rc == 0 && c->used + first > RAW_MAX)
			return; // no room in this response: next time
		if (rc == 0)
			rc = grow(c, first);
		if (rc == 0)
			rc = ox_log_read(part->log, tg->offset, first, hw,
					 c->buf + c->used, first, &len);
	}
	if (rc < 0) {
		p->error_code = (Oxbow__ErrorCode)ox_error_to_wire(
			rc == -OX_ECORRUPT ? -OX_ESTORAGE : rc);
		c->error = true;
		return;
	}
	c->used += len;
	p->bytes = (uint32_t)len;
}

static size_t fetch_budget(const Oxbow__FetchRequest *m)
{
	if (m->max_bytes == 0 || m->max_bytes > OX_FETCH_RESPONSE_BYTES_MAX)
		return OX_FETCH_RESPONSE_BYTES_MAX;
	return m->max_bytes;
}

// Reads every target; responds when `force`, when there was an error, or
// when at least min_bytes were found. Returns 1 if it responded, 0 with
// *have set if the fetch should wait.
static int fetch_try(struct ox_server *srv, struct ox_net_req *req,
		     const Oxbow__FetchRequest *m, bool force, uint64_t *have)
{
	size_t n = m->n_targets;
	struct collect c = {0};
	Oxbow__FetchPartition *ps = calloc(n + 1, sizeof(*ps));
	Oxbow__FetchPartition **pp = calloc(n + 1, sizeof(*pp));

	if (!ps || !pp) {
		free(ps);
		free(pp);
		ox_srv_respond_error(req, -ENOMEM, "out of memory");
		return 1;
	}
	size_t budget = fetch_budget(m);
	for (size_t i = 0; i < n; i++) {
		Oxbow__FetchPartition init = OXBOW__FETCH_PARTITION__INIT;
		ps[i] = init;
		ps[i].topic = m->targets[i]->topic;
		ps[i].partition = m->targets[i]->partition;
		pp[i] = &ps[i];
		read_target(srv, m->targets[i], budget, &c, &ps[i]);
	}
	if (!force && !c.error && c.used < m->min_bytes) {
		*have = c.used;
		free(c.buf);
		free(ps);
		free(pp);
		return 0;
	}
	// Each target was read into room for its whole budget: the response
	// holds only what was read (the net's memory budget counts those
	// bytes, so the buffer must not keep more).
	if (c.used > 0 && c.cap > c.used) {
		uint8_t *fit = realloc(c.buf, c.used);
		if (fit != NULL) {
			c.buf = fit;
			c.cap = c.used;
		}
	}
	Oxbow__FetchResponse resp = OXBOW__FETCH_RESPONSE__INIT;
	resp.n_partitions = n;
	resp.partitions = pp;
	size_t blen = oxbow__fetch_response__get_packed_size(&resp);
	uint8_t *body = malloc(blen + 1);
	if (!body) {
		free(c.buf);
		ox_srv_respond_error(req, -ENOMEM, "out of memory");
	} else {
		oxbow__fetch_response__pack(&resp, body);
		struct ox_net_response r = {
			.body = body,
			.body_len = blen,
			.raw_owner = c.used ? c.buf : NULL,
			.raw = c.used ? c.buf : NULL,
			.raw_len = c.used,
		};
		if (!c.used)
			free(c.buf);
		ox_net_respond(req, &r);
	}
	free(body);
	free(ps);
	free(pp);
	return 1;
}

static void unpark(struct ox_server *srv, struct ox_fetch *f)
{
	if (!f->parked)
		return;
	if (f->prev)
		f->prev->next = f->next;
	else
		srv->parked = f->next;
	if (f->next)
		f->next->prev = f->prev;
	f->parked = false;
	srv->nparked--;
}

// Ends a parked fetch (answered or abandoned); S7: the timer frees it
// if it is still pending.
static void fetch_release(struct ox_server *srv, struct ox_fetch *f)
{
	unpark(srv, f);
	f->answered = true;
	oxbow__fetch_request__free_unpacked(f->msg, NULL);
	f->msg = NULL;
	if (!f->timer_armed)
		free(f);
}

static void fetch_answer(struct ox_server *srv, struct ox_fetch *f)
{
	uint64_t have;
	int rc = fetch_try(srv, f->req, f->msg, true, &have);
	OX_ASSERT(rc == 1);
	fetch_release(srv, f);
}

static void fetch_timer(void *arg, int res)
{
	struct ox_fetch *f = arg;

	f->timer_armed = false;
	if (f->answered) {
		free(f);
		return;
	}
	(void)res; // expiry, or -ECANCELED at teardown: answer either way
	fetch_answer(f->srv, f);
}

static uint64_t available(const struct ox_fetch *f)
{
	uint64_t have = f->have;

	for (size_t i = 0; i < f->n; i++) {
		const struct target *t = &f->t[i];
		if (!t->part)
			return UINT64_MAX; // deleted: answer now
		have += t->part->acked_bytes - t->acked_at_park;
	}
	return have;
}

static int park(struct ox_server *srv, struct ox_net_req *req,
		Oxbow__FetchRequest *m, uint64_t have)
{
	if (srv->nparked >= OX_PARKED_FETCHES_MAX)
		return -EBUSY;
	struct ox_fetch *f = calloc(1, sizeof(*f) + m->n_targets * sizeof(f->t[0]));
	if (!f)
		return -ENOMEM;
	f->srv = srv;
	f->req = req;
	f->msg = m;
	f->have = have;
	f->n = m->n_targets;
	for (size_t i = 0; i < f->n; i++) {
		const Oxbow__FetchTarget *tg = m->targets[i];
		f->t[i].part = ox_srv_partition(srv, tg->topic, tg->partition);
		OX_ASSERT(f->t[i].part != NULL); // fetch_try answers errors
		f->t[i].acked_at_park = f->t[i].part->acked_bytes;
	}
	uint64_t wait_ms = m->max_wait_ms < OX_FETCH_WAIT_MS_MAX
				   ? m->max_wait_ms
				   : OX_FETCH_WAIT_MS_MAX;
	int rc = ox_io_timer(srv->io, wait_ms * 1000000u, fetch_timer, f);
	if (rc < 0) {
		free(f);
		return rc;
	}
	f->timer_armed = true;
	f->parked = true;
	f->next = srv->parked;
	if (f->next)
		f->next->prev = f;
	srv->parked = f;
	srv->nparked++;
	return 0;
}

void ox_srv_fetch(struct ox_server *srv, struct ox_net_req *req)
{
	Oxbow__FetchRequest *m = ox_srv_body_unpack(
		req, &oxbow__fetch_request__descriptor, "FETCH");
	uint64_t have = 0;

	if (!m)
		return; // rejected
	bool now = m->max_wait_ms == 0 || m->min_bytes == 0 ||
		   m->n_targets == 0;
	if (fetch_try(srv, req, m, now, &have) == 0) {
		if (park(srv, req, m, have) == 0)
			return; // the parked fetch owns m now
		// No room to park, or no timer: answer with what there is.
		fetch_try(srv, req, m, true, &have);
	}
	oxbow__fetch_request__free_unpacked(m, NULL);
}

void ox_srv_fetch_wake(struct ox_server *srv)
{
	struct ox_fetch *f = srv->parked, *next;

	for (; f; f = next) {
		next = f->next;
		if (available(f) >= f->msg->min_bytes)
			fetch_answer(srv, f);
	}
}

void ox_srv_fetch_tick(struct ox_server *srv)
{
	struct ox_fetch *f = srv->parked, *next;

	for (; f; f = next) {
		next = f->next;
		if (!ox_net_req_conn_open(f->req)) {
			ox_net_finish(f->req);
			fetch_release(srv, f);
		}
	}
}

void ox_srv_fetch_answer_all(struct ox_server *srv)
{
	while (srv->parked)
		fetch_answer(srv, srv->parked);
}

void ox_srv_fetch_forget(struct ox_server *srv, const struct ox_topic *t,
			 const struct ox_partition *only)
{
	for (struct ox_fetch *f = srv->parked; f; f = f->next) {
		for (size_t i = 0; i < f->n; i++) {
			if (f->t[i].part && f->t[i].part->topic == t &&
			    (only == NULL || f->t[i].part == only)) {
				f->t[i].part = NULL;
				srv->wake = true;
			}
		}
	}
}

// ---- LIST_OFFSETS ----

static int list_one(struct ox_server *srv, const Oxbow__ListOffsetsTarget *tg,
		    int64_t *out)
{
	struct ox_partition *p;
	int found = ox_srv_partition_lookup(srv, tg->topic, tg->partition, &p);

	if (found < 0)
		return found;
	int64_t hw = ox_srv_hw(srv, p);
	switch (tg->spec) {
	case OXBOW__OFFSET_SPEC__OFFSET_SPEC_EARLIEST:
		*out = ox_log_start_offset(p->log);
		return 0;
	case OXBOW__OFFSET_SPEC__OFFSET_SPEC_LATEST:
		*out = hw;
		return 0;
	case OXBOW__OFFSET_SPEC__OFFSET_SPEC_TIMESTAMP: {
		int rc = ox_log_offset_for_time(p->log, tg->timestamp, out);
		if (rc == -OX_EOFFSET || (rc == 0 && *out > hw)) {
			*out = hw;
			return 0;
		}
		return rc == -OX_ECORRUPT ? -OX_ESTORAGE : rc;
	}
	default:
		return -OX_EINVALID_REQUEST;
	}
}

void ox_srv_list_offsets(struct ox_server *srv, struct ox_net_req *req)
{
	Oxbow__ListOffsetsRequest *m = ox_srv_body_unpack(
		req, &oxbow__list_offsets_request__descriptor, "LIST_OFFSETS");

	if (!m)
		return; // rejected
	size_t n = m->n_targets;
	Oxbow__ListOffsetsResult *rs = calloc(n + 1, sizeof(*rs));
	Oxbow__ListOffsetsResult **rp = calloc(n + 1, sizeof(*rp));
	if (!rs || !rp) {
		ox_srv_respond_error(req, -ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		Oxbow__ListOffsetsResult init = OXBOW__LIST_OFFSETS_RESULT__INIT;
		int64_t off = -1;
		rs[i] = init;
		rs[i].topic = m->targets[i]->topic;
		rs[i].partition = m->targets[i]->partition;
		int rc = list_one(srv, m->targets[i], &off);
		rs[i].error_code = (Oxbow__ErrorCode)ox_error_to_wire(rc);
		rs[i].offset = rc == 0 ? off : -1;
		rp[i] = &rs[i];
	}
	Oxbow__ListOffsetsResponse resp = OXBOW__LIST_OFFSETS_RESPONSE__INIT;
	resp.n_results = n;
	resp.results = rp;
	ox_srv_respond_msg(req, &resp.base);
out:
	free(rs);
	free(rp);
	oxbow__list_offsets_request__free_unpacked(m, NULL);
}
