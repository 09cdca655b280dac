// SPDX-License-Identifier: Apache-2.0
//
// PRODUCE. Each ProduceBatch names a partition and the length of its raw
// batch; the batches follow the body back to back. A batch is checked
// cheaply here (header rules, no control bit, codec 0, the topic's size
// limit), then handed to the log straight from the request buffer: the
// log verifies the checksum and records, stamps offsets in place and
// writes it, so the broker touches no record and copies no batch byte.
// The response goes out when every batch was called back (S4); with
// acks=none the request is finished without a response at that point
// (the log borrows the request's bytes until then).
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "broker/server/server_int.h"
#include "proto/assert.h"
#include "proto/batch.h"
#include "proto/error.h"
#include "proto/wire.h"

struct item {
	struct ox_append a;
	struct produce *pr;
	int err;
	const char *why;
	int64_t base;
	int64_t log_start;
};

struct produce {
	struct ox_net_req *req;
	Oxbow__ProduceRequest *msg;
	size_t n;
	size_t pending;  // items whose append is not called back yet
	bool started;    // every item was issued: the last callback answers
	bool acks_none;
	enum ox_replica_acks acks;
	struct item items[];
};

static void produce_end(struct produce *pr)
{
	size_t n = pr->n;

	if (pr->acks_none) {
		ox_net_finish(pr->req);
		goto out;
	}
	Oxbow__ProduceResult *res = calloc(n + 1, sizeof(*res));
	Oxbow__ProduceResult **ptrs = calloc(n + 1, sizeof(*ptrs));
	if (!res || !ptrs) {
		ox_srv_respond_error(pr->req, -ENOMEM, "out of memory");
		free(res);
		free(ptrs);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		Oxbow__ProduceResult init = OXBOW__PRODUCE_RESULT__INIT;
		const struct item *it = &pr->items[i];
		res[i] = init;
		res[i].topic = pr->msg->batches[i]->topic;
		res[i].partition = pr->msg->batches[i]->partition;
		res[i].error_code = (Oxbow__ErrorCode)ox_error_to_wire(it->err);
		res[i].error_message = (char *)(it->why ? it->why : "");
		res[i].base_offset = it->err ? -1 : it->base;
		res[i].log_start_offset = it->log_start;
		ptrs[i] = &res[i];
	}
	Oxbow__ProduceResponse resp = OXBOW__PRODUCE_RESPONSE__INIT;
	resp.n_results = n;
	resp.results = ptrs;
	ox_srv_respond_msg(pr->req, &resp.base);
	free(res);
	free(ptrs);
out:
	oxbow__produce_request__free_unpacked(pr->msg, NULL);
	free(pr);
}

// The error a produce answers for a failed append: the ones a client
// acts on pass as they are (NOT_LEADER and SHUTTING_DOWN are retried on
// another leader), the rest are storage errors.
static int append_err(int rc)
{
	switch (rc) {
	case -OX_ECORRUPT:
	case -OX_ETOOBIG:
	case -OX_EUNKNOWN_TOPIC:
	case -OX_EFAILED:
	case -OX_ENOTLEADER:
	case -OX_ESHUTDOWN:
	case -OX_ESEQUENCE:
	case -OX_EDUPLICATE:
		return rc;
	case -OX_ECLOSED:
		return -OX_ESHUTDOWN; // the partition is closing with the node
	default:
		return -OX_ESTORAGE;
	}
}

static const char *append_why(int err)
{
	switch (err) {
	case -OX_ENOTLEADER:
		return "this node does not lead the partition (any more)";
	case -OX_ECORRUPT:
		return "the batch fails its checksum or structure";
	case -OX_ETOOBIG:
		return "the batch is over the topic's max.message.bytes";
	case -OX_EUNKNOWN_TOPIC:
		return "the topic was deleted";
	case -OX_EFAILED:
		return "the partition log failed after an I/O error";
	case -OX_ESEQUENCE:
		return "the batch's sequence does not follow the producer's "
		       "last batch here (a gap or an older producer epoch)";
	case -OX_EDUPLICATE:
		return "the batch is older than the producer's batches this "
		       "partition still knows: it was stored before";
	default:
		return ox_strerror(err);
	}
}

static void item_done(struct ox_append *a, int res, int64_t base)
{
	struct item *it = (struct item *)((char *)a - offsetof(struct item, a));
	struct produce *pr = it->pr;

	if (res < 0) {
		it->err = append_err(res);
		it->why = append_why(res);
	} else {
		it->base = base;
		it->log_start = ox_log_start_offset(a->part->log);
	}
	OX_ASSERT(pr->pending > 0);
	if (--pr->pending == 0 && pr->started)
		produce_end(pr);
}

// Checks one batch before it goes to the log; returns 0 or an error with
// it->why set.
static int check_batch(struct ox_server *srv, const Oxbow__ProduceBatch *b,
		       const uint8_t *bytes, struct item *it,
		       struct ox_partition **out)
{
	struct ox_batch_header h;
	struct ox_topic *t = ox_srv_topic_find(srv, b->topic);

	if (!t || b->partition >= t->meta.partitions) {
		it->why = "no such topic or partition";
		return -OX_EUNKNOWN_TOPIC;
	}
	if (t->internal) {
		it->why = "internal topics are written by the broker only";
		return -OX_EINVALID_REQUEST;
	}
	if (t->parts[b->partition] == NULL) {
		it->why = "this node holds no replica of the partition";
		return -OX_ENOTLEADER;
	}
	if (ox_batch_header_decode(bytes, b->bytes, &h) < 0 ||
	    h.length != b->bytes) {
		it->why = "the batch header is malformed or its length is not "
			  "the ProduceBatch's bytes";
		return -OX_ECORRUPT;
	}
	if (h.attributes & OX_BATCH_ATTR_CONTROL) {
		it->why = "control batches are written by the broker only";
		return -OX_EINVALID_REQUEST;
	}
	struct ox_log_config lc;
	ox_topic_log_config(&t->meta.cfg, &srv->cfg, &lc);
	if (h.length > lc.max_batch_bytes) {
		it->why = "the batch is over the topic's max.message.bytes";
		return -OX_ETOOBIG;
	}
	*out = t->parts[b->partition];
	it->log_start = ox_log_start_offset((*out)->log);
	return 0;
}

static void issue(struct ox_server *srv, struct produce *pr, uint8_t *raw)
{
	size_t pos = 0;

	for (size_t i = 0; i < pr->n; i++) {
		const Oxbow__ProduceBatch *b = pr->msg->batches[i];
		struct item *it = &pr->items[i];
		struct ox_partition *part = NULL;
		uint8_t *bytes = raw + pos;

		it->pr = pr;
		it->base = -1;
		it->log_start = -1;
		pos += b->bytes;
		it->err = check_batch(srv, b, bytes, it, &part);
		if (it->err < 0)
			continue;
		it->a.part = part;
		it->a.batch = bytes;
		it->a.len = b->bytes;
		it->a.acks = pr->acks;
		it->a.done = item_done;
		pr->pending++;
		int rc = ox_srv_append(srv, &it->a);
		if (rc < 0) {
			pr->pending--;
			it->err = append_err(rc);
			it->why = append_why(rc);
		}
	}
}

void ox_srv_produce(struct ox_server *srv, struct ox_net_req *req)
{
	const struct ox_net_req_info *in = ox_net_req_info(req);
	Oxbow__ProduceRequest *m = ox_srv_body_unpack(
		req, &oxbow__produce_request__descriptor, "PRODUCE");
	uint64_t total = 0;

	if (!m)
		return; // rejected
	for (size_t i = 0; i < m->n_batches; i++)
		total += m->batches[i]->bytes;
	if (total != in->raw_len || m->acks > OXBOW__ACKS__ACKS_NONE) {
		ox_srv_respond_error(req, -OX_EINVALID_REQUEST,
				     m->acks > OXBOW__ACKS__ACKS_NONE
					     ? "unknown acks value"
					     : "the batches' bytes do not add up "
					       "to the raw bytes after the body");
		oxbow__produce_request__free_unpacked(m, NULL);
		return;
	}
	struct produce *pr =
		calloc(1, sizeof(*pr) + m->n_batches * sizeof(pr->items[0]));
	if (!pr) {
		ox_srv_respond_error(req, -ENOMEM, "out of memory");
		oxbow__produce_request__free_unpacked(m, NULL);
		return;
	}
	pr->req = req;
	pr->msg = m;
	pr->n = m->n_batches;
	pr->acks_none = m->acks == OXBOW__ACKS__ACKS_NONE;
	pr->acks = m->acks == OXBOW__ACKS__ACKS_ALL ? OX_REPLICA_ACKS_ALL :
		   m->acks == OXBOW__ACKS__ACKS_LEADER ? OX_REPLICA_ACKS_LEADER :
							 OX_REPLICA_ACKS_NONE;
	issue(srv, pr, in->raw);
	pr->started = true;
	if (pr->pending == 0)
		produce_end(pr);
}

// A producer id: 62 random bits (never 0), so ids from every node of a cluster and
// from every start of one never meet (two of a million producers share an
// id with odds of about 1 in 10^7). Without the kernel's randomness, the
// clock and a counter stand in: unique on this node.
static int64_t producer_id_new(void)
{
	static uint64_t counter;
	uint64_t x;

	if (getrandom(&x, sizeof(x), GRND_NONBLOCK) != (ssize_t)sizeof(x)) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		x = ((uint64_t)ts.tv_sec * UINT64_C(1000000000) +
		     (uint64_t)ts.tv_nsec) * UINT64_C(0x9E3779B97F4A7C15) +
		    ++counter;
	}
	x >>= 2;
	return x != 0 ? (int64_t)x : 1; // 0 names no producer

}

void ox_srv_init_producer_id(struct ox_server *srv, struct ox_net_req *req)
{
	Oxbow__InitProducerIdRequest *m = ox_srv_body_unpack(
		req, &oxbow__init_producer_id_request__descriptor,
		"INIT_PRODUCER_ID");
	Oxbow__InitProducerIdResponse resp =
		OXBOW__INIT_PRODUCER_ID_RESPONSE__INIT;

	(void)srv;
	if (!m)
		return; // rejected
	oxbow__init_producer_id_request__free_unpacked(m, NULL);
	resp.producer_id = producer_id_new();
	resp.producer_epoch = 0;
	ox_srv_respond_msg(req, &resp.base);
}
