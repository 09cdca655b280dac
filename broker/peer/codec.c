// SPDX-License-Identifier: Apache-2.0
//
// The RAFT frame codec of broker/peer: struct ox_raft_msg to RaftMessage
// entries of a RaftBatch and a frame head (encoding), and a RaftBatch
// body with its raw part back to deliveries (decoding). Pure: no I/O, no
// state; link.c encodes, peer.c decodes what the listener receives, and
// the unit tests and the fuzz harness call both directly.
//
// Decoding trusts nothing. Before protobuf-c sees a body, a walk over its
// wire format counts messages, term runs, conf ids and field occurrences
// at every level (wire_scan), so a frame can make protobuf-c allocate only
// in proportion to what it could legitimately hold (D1). Then every
// message is checked (msg_from_pb) before any is delivered (D2): a frame
// is delivered whole or not at all. Forwards (RaftBatch.forwards, opaque
// MetaEntry bytes) are counted and bounded by the same walk and delivered
// after the messages.
#include "broker/peer/peer_int.h"

#include "proto/assert.h"
#include "proto/envelope.pb-c.h"
#include "proto/error.h"
#include "proto/frame.h"
#include "proto/raft.pb-c.h"
#include "proto/varint.h"
#include "proto/wire.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

// Field numbers of raft.proto that the wire walk descends into or counts.
#define F_BATCH_MESSAGES 3u
#define F_BATCH_FORWARDS 5u
#define F_MSG_RUNS 15u
#define F_MSG_CONF 16u
#define F_CONF_VOTERS 1u
#define F_CONF_LEARNERS 2u

// --- encoding ------------------------------------------------------------

int ox_peer_msg_check(const struct ox_raft_msg *m)
{
	if (m->type < OX_RAFT_MSG_PRE_VOTE || m->type > OX_RAFT_MSG_TIMEOUT_NOW ||
	    m->runs_n > OX_RAFT_MSG_RUNS_MAX ||
	    m->conf.voters_n > OX_RAFT_NODES_MAX ||
	    m->conf.learners_n > OX_RAFT_NODES_MAX)
		return -EINVAL;
	return 0;
}

size_t ox_peer_msg_encode(uint8_t *buf, const struct ox_peer_group *g,
			  const struct ox_raft_msg *m, uint64_t raw_offset,
			  uint64_t raw_len)
{
	Oxbow__RaftMessage pb = OXBOW__RAFT_MESSAGE__INIT;
	Oxbow__RaftRun runs[OX_RAFT_MSG_RUNS_MAX];
	Oxbow__RaftRun *run_ptrs[OX_RAFT_MSG_RUNS_MAX];
	Oxbow__RaftConf conf = OXBOW__RAFT_CONF__INIT;
	uint64_t voters[OX_RAFT_NODES_MAX], learners[OX_RAFT_NODES_MAX];
	size_t len, n, packed;

	OX_ASSERT(ox_peer_msg_check(m) == 0);
	pb.topic_id = g->topic_id;
	pb.partition = g->partition;
	pb.type = (Oxbow__RaftMessageType)m->type;
	pb.from = m->from;
	pb.to = m->to;
	pb.term = m->term;
	pb.index = m->index;
	pb.log_term = m->log_term;
	pb.transfer = m->transfer;
	pb.rejoining = m->rejoining;
	pb.ok = m->ok;
	pb.prev_index = m->prev_index;
	pb.prev_term = m->prev_term;
	pb.end_index = m->end_index;
	pb.commit = m->commit;
	for (uint32_t i = 0; i < m->runs_n; i++) {
		runs[i] = (Oxbow__RaftRun)OXBOW__RAFT_RUN__INIT;
		runs[i].start = m->runs[i].start;
		runs[i].term = m->runs[i].term;
		run_ptrs[i] = &runs[i];
	}
	pb.n_runs = m->runs_n;
	pb.runs = run_ptrs;
	if (m->conf.voters_n > 0 || m->conf.learners_n > 0) {
		memcpy(voters, m->conf.voters, m->conf.voters_n * sizeof(uint64_t));
		memcpy(learners, m->conf.learners,
		       m->conf.learners_n * sizeof(uint64_t));
		conf.n_voters = m->conf.voters_n;
		conf.voters = voters;
		conf.n_learners = m->conf.learners_n;
		conf.learners = learners;
		pb.conf = &conf;
	}
	pb.raw_offset = raw_offset;
	pb.raw_len = raw_len;
	len = oxbow__raft_message__get_packed_size(&pb);
	buf[0] = (uint8_t)(F_BATCH_MESSAGES << 3 | 2u);
	n = 1 + ox_uvarint_put(buf + 1, len);
	OX_ASSERT(n + len <= OX_PEER_MSG_BYTES_MAX);
	packed = oxbow__raft_message__pack(&pb, buf + n);
	OX_ASSERT(packed == len);
	return n + len;
}

size_t ox_peer_forward_encode(uint8_t *buf, const uint8_t *entry,
			      size_t len)
{
	size_t n;

	OX_ASSERT(len > 0 && len <= OX_PEER_FORWARD_BYTES_MAX);
	buf[0] = (uint8_t)(F_BATCH_FORWARDS << 3 | 2u);
	n = 1 + ox_uvarint_put(buf + 1, len);
	OX_ASSERT(n <= OX_PEER_FORWARD_HEAD_MAX);
	memcpy(buf + n, entry, len);
	return n + len;
}

long ox_peer_head_encode(uint8_t *buf, uint64_t correlation_id,
			 uint64_t from_node, const char *cluster_id,
			 const char *client_address, size_t msgs_len,
			 size_t raw_len)
{
	Oxbow__RequestHeader h = OXBOW__REQUEST_HEADER__INIT;
	Oxbow__RaftBatch b = OXBOW__RAFT_BATCH__INIT;
	size_t header_len, batch_len, body_len;

	OX_ASSERT(strlen(cluster_id) <= OX_PEER_CLUSTER_ID_MAX);
	h.api_key = (Oxbow__ApiKey)OX_PEER_API_KEY;
	h.api_version = OX_PEER_API_VERSION;
	h.correlation_id = correlation_id;
	b.from_node = from_node;
	b.cluster_id = (char *)cluster_id;
	if (client_address != NULL) {
		OX_ASSERT(strlen(client_address) <= OX_PEER_ADDRESS_MAX);
		b.client_address = (char *)client_address;
	}
	header_len = oxbow__request_header__get_packed_size(&h);
	batch_len = oxbow__raft_batch__get_packed_size(&b);
	OX_ASSERT(OX_FRAME_PREFIX_BYTES + header_len + OX_PAYLOAD_PREFIX_BYTES +
			  batch_len <= OX_PEER_HEAD_MAX);
	if (msgs_len > OX_FRAME_BYTES_MAX || raw_len > OX_FRAME_BYTES_MAX)
		return -OX_ETOOBIG;
	body_len = batch_len + msgs_len;
	if (ox_frame_prefix_encode(buf, header_len, OX_PAYLOAD_PREFIX_BYTES +
						   body_len + raw_len) < 0)
		return -OX_ETOOBIG;
	oxbow__request_header__pack(&h, buf + OX_FRAME_PREFIX_BYTES);
	ox_payload_prefix_encode(buf + OX_FRAME_PREFIX_BYTES + header_len,
				 (uint32_t)body_len);
	oxbow__raft_batch__pack(&b, buf + OX_FRAME_PREFIX_BYTES + header_len +
					    OX_PAYLOAD_PREFIX_BYTES);
	return (long)(OX_FRAME_PREFIX_BYTES + header_len +
		      OX_PAYLOAD_PREFIX_BYTES + batch_len);
}

// --- the wire walk (D1) ----------------------------------------------------

static void why_set(char *why, size_t why_len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void why_set(char *why, size_t why_len, const char *fmt, ...)
{
	va_list ap;

	if (!why || why_len == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(why, why_len, fmt, ap);
	va_end(ap);
}

// A varint as protobuf reads it (overlong forms included), from [*p, end).
static bool wire_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	uint64_t x = 0;

	for (unsigned shift = 0; shift < 70 && *p < end; shift += 7) {
		uint8_t b = *(*p)++;

		if (shift < 64)
			x |= (uint64_t)(b & 0x7fu) << shift;
		if (!(b & 0x80u)) {
			*v = x;
			return true;
		}
	}
	return false;
}

// One field of a message at [*p, end): its number, wire type, and for a
// length-delimited one its bytes. Advances past it. False when the bytes
// do not hold a field (truncated, field number 0, group wire types).
struct wire_field {
	uint64_t num;
	unsigned type;
	const uint8_t *data;
	size_t len;
};

static bool wire_next(const uint8_t **p, const uint8_t *end,
		      struct wire_field *f)
{
	uint64_t tag, v;

	if (!wire_varint(p, end, &tag))
		return false;
	f->num = tag >> 3;
	f->type = (unsigned)(tag & 7u);
	f->data = NULL;
	f->len = 0;
	if (f->num == 0)
		return false;
	switch (f->type) {
	case 0:
		return wire_varint(p, end, &v);
	case 1:
	case 5: {
		size_t n = f->type == 1 ? 8 : 4;

		if ((size_t)(end - *p) < n)
			return false;
		*p += n;
		return true;
	}
	case 2:
		if (!wire_varint(p, end, &v) || v > (uint64_t)(end - *p))
			return false;
		f->data = *p;
		f->len = (size_t)v;
		*p += v;
		return true;
	default:
		return false;
	}
}

// Counts the varints of a packed repeated field.
static bool wire_packed_count(const uint8_t *p, size_t len, uint32_t *n)
{
	const uint8_t *end = p + len;
	uint64_t v;

	while (p < end) {
		if (!wire_varint(&p, end, &v))
			return false;
		(*n)++;
		if (*n > OX_RAFT_NODES_MAX)
			return true; // the caller refuses: no need to go on
	}
	return true;
}

// A RaftRun or a RaftConf: fields bounded; conf ids counted into
// voters/learners (across every conf of one message: protobuf-c merges).
static bool wire_sub(const uint8_t *p, size_t len, bool conf,
		     uint32_t *voters, uint32_t *learners)
{
	const uint8_t *end = p + len;
	struct wire_field f;
	uint32_t fields = 0;

	while (p < end) {
		if (!wire_next(&p, end, &f) || ++fields > OX_PEER_SUB_FIELDS_MAX)
			return false;
		if (!conf || (f.num != F_CONF_VOTERS && f.num != F_CONF_LEARNERS))
			continue;
		uint32_t *n = f.num == F_CONF_VOTERS ? voters : learners;

		if (f.type == 2) {
			if (!wire_packed_count(f.data, f.len, n))
				return false;
		} else {
			(*n)++;
		}
		if (*n > OX_RAFT_NODES_MAX)
			return false;
	}
	return true;
}

// One RaftMessage.
static bool wire_msg(const uint8_t *p, size_t len)
{
	const uint8_t *end = p + len;
	struct wire_field f;
	uint32_t fields = 0, runs = 0, voters = 0, learners = 0;

	while (p < end) {
		if (!wire_next(&p, end, &f) || ++fields > OX_PEER_MSG_FIELDS_MAX)
			return false;
		if (f.type != 2)
			continue;
		if (f.num == F_MSG_RUNS) {
			if (++runs > OX_RAFT_MSG_RUNS_MAX ||
			    !wire_sub(f.data, f.len, false, NULL, NULL))
				return false;
		} else if (f.num == F_MSG_CONF) {
			if (!wire_sub(f.data, f.len, true, &voters, &learners))
				return false;
		}
	}
	return true;
}

// The RaftBatch body. Returns the number of messages, or -1 with why set.
static long wire_scan(const uint8_t *body, size_t len, char *why,
		      size_t why_len)
{
	const uint8_t *p = body, *end = body + len;
	struct wire_field f;
	uint32_t other = 0, forwards = 0;
	long msgs = 0;

	while (p < end) {
		if (!wire_next(&p, end, &f)) {
			why_set(why, why_len, "RaftBatch does not parse");
			return -1;
		}
		if (f.num == F_BATCH_FORWARDS) {
			if (f.type != 2 || f.len == 0 ||
			    f.len > OX_PEER_FORWARD_BYTES_MAX ||
			    ++forwards > OX_PEER_FRAME_FORWARDS_MAX) {
				why_set(why, why_len, "forward %u: empty, over "
					"%u bytes or over %u in one frame",
					forwards, OX_PEER_FORWARD_BYTES_MAX,
					OX_PEER_FRAME_FORWARDS_MAX);
				return -1;
			}
			continue;
		}
		if (f.num != F_BATCH_MESSAGES) {
			if (++other > OX_PEER_BATCH_FIELDS_MAX) {
				why_set(why, why_len, "RaftBatch has over %u "
					"other fields", OX_PEER_BATCH_FIELDS_MAX);
				return -1;
			}
			continue;
		}
		if (++msgs > (long)OX_PEER_FRAME_MSGS_MAX) {
			why_set(why, why_len, "over %u messages in one frame",
				OX_PEER_FRAME_MSGS_MAX);
			return -1;
		}
		if (f.type == 2 && !wire_msg(f.data, f.len)) {
			why_set(why, why_len, "message %ld: over its field, run "
				"or member bounds, or does not parse", msgs - 1);
			return -1;
		}
	}
	return msgs;
}

// --- decoding (D2) ---------------------------------------------------------

static bool index_ok(int64_t i)
{
	return i >= 0 && i < OX_RAFT_INDEX_MAX;
}

static bool term_ok(uint64_t t)
{
	return t < OX_RAFT_TERM_MAX;
}

// Copies one conf list, refusing ids of 0.
static bool ids_copy(uint64_t *dst, uint32_t *dst_n, const uint64_t *src,
		     size_t n)
{
	if (n > OX_RAFT_NODES_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (src[i] == OX_RAFT_NONE)
			return false;
	if (n > 0)
		memcpy(dst, src, n * sizeof(*dst));
	*dst_n = (uint32_t)n;
	return true;
}

// The numeric fields: indices and terms in range, runs within bounds.
static const char *msg_numbers(const Oxbow__RaftMessage *pb,
			       struct ox_raft_msg *m)
{
	if (!index_ok(pb->index) || !index_ok(pb->prev_index) ||
	    !index_ok(pb->end_index) || !index_ok(pb->commit))
		return "an index out of range";
	if (!term_ok(pb->term) || !term_ok(pb->log_term) ||
	    !term_ok(pb->prev_term))
		return "a term out of range";
	if (pb->n_runs > OX_RAFT_MSG_RUNS_MAX)
		return "too many term runs";
	for (size_t i = 0; i < pb->n_runs; i++) {
		if (!index_ok(pb->runs[i]->start) || !term_ok(pb->runs[i]->term))
			return "a term run out of range";
		m->runs[i].start = pb->runs[i]->start;
		m->runs[i].term = pb->runs[i]->term;
	}
	m->runs_n = (uint32_t)pb->n_runs;
	m->term = pb->term;
	m->index = pb->index;
	m->log_term = pb->log_term;
	m->transfer = pb->transfer;
	m->rejoining = pb->rejoining;
	m->ok = pb->ok;
	m->prev_index = pb->prev_index;
	m->prev_term = pb->prev_term;
	m->end_index = pb->end_index;
	m->commit = pb->commit;
	return NULL;
}

// Checks one message and fills d (raw pointing into raw). Returns NULL or
// what is wrong with it.
static const char *msg_from_pb(const Oxbow__RaftMessage *pb, uint64_t from,
			       uint64_t self, const uint8_t *raw,
			       size_t raw_len, struct ox_peer_delivery *d)
{
	const char *bad;

	memset(d, 0, sizeof(*d));
	if ((int)pb->type < OX_RAFT_MSG_PRE_VOTE ||
	    (int)pb->type > OX_RAFT_MSG_TIMEOUT_NOW)
		return "unknown message type";
	if (pb->from != from)
		return "from is not the frame's from_node";
	if (pb->to != self)
		return "to is not this node";
	bad = msg_numbers(pb, &d->msg);
	if (bad)
		return bad;
	if (pb->conf &&
	    (!ids_copy(d->msg.conf.voters, &d->msg.conf.voters_n,
		       pb->conf->voters, pb->conf->n_voters) ||
	     !ids_copy(d->msg.conf.learners, &d->msg.conf.learners_n,
		       pb->conf->learners, pb->conf->n_learners)))
		return "a bad conf (over the bound, or node id 0)";
	if (pb->raw_offset > raw_len || pb->raw_len > raw_len - pb->raw_offset)
		return "raw slice past the end of the frame";
	d->group.topic_id = pb->topic_id;
	d->group.partition = pb->partition;
	d->msg.type = (enum ox_raft_msg_type)pb->type;
	d->msg.from = pb->from;
	d->msg.to = pb->to;
	d->raw = raw + pb->raw_offset;
	d->raw_len = (size_t)pb->raw_len;
	return NULL;
}

static bool node_known(const uint64_t *nodes, uint32_t nodes_n, uint64_t id)
{
	if (!nodes)
		return true;
	for (uint32_t i = 0; i < nodes_n; i++)
		if (nodes[i] == id)
			return true;
	return false;
}

// The checks of the batch as a whole. Returns NULL or what is wrong.
static const char *batch_check(const Oxbow__RaftBatch *b, uint64_t self,
			       const char *cluster_id, const uint64_t *nodes,
			       uint32_t nodes_n)
{
	if (strcmp(b->cluster_id ? b->cluster_id : "", cluster_id) != 0)
		return "frame from another cluster";
	if (b->from_node == OX_RAFT_NONE)
		return "from_node is 0";
	if (b->client_address &&
	    strlen(b->client_address) > OX_PEER_ADDRESS_MAX)
		return "client_address is too long";
	if (b->from_node == self)
		return "from_node is this node";
	if (!node_known(nodes, nodes_n, b->from_node))
		return "from_node is not a known node";
	return NULL;
}

long ox_peer_batch_decode(const uint8_t *body, size_t body_len,
			  const uint8_t *raw, size_t raw_len, uint64_t self,
			  const char *cluster_id, const uint64_t *nodes,
			  uint32_t nodes_n, ox_peer_deliver_cb deliver,
			  ox_peer_forward_cb forward, void *arg, char *why,
			  size_t why_len)
{
	struct ox_peer_delivery d;
	Oxbow__RaftBatch *b;
	const char *bad;
	long n;

	OX_ASSERT(cluster_id != NULL && deliver != NULL);
	OX_ASSERT(body != NULL || body_len == 0);
	OX_ASSERT(raw != NULL || raw_len == 0);
	if (wire_scan(body, body_len, why, why_len) < 0) // D1
		return -OX_ECORRUPT;
	b = oxbow__raft_batch__unpack(NULL, body_len, body);
	if (!b) {
		why_set(why, why_len, "RaftBatch does not parse");
		return -OX_ECORRUPT;
	}
	bad = batch_check(b, self, cluster_id, nodes, nodes_n);
	if (bad) {
		why_set(why, why_len, "%s (from_node %llu)", bad,
			(unsigned long long)b->from_node);
		goto fail;
	}
	OX_ASSERT(b->n_messages <= OX_PEER_FRAME_MSGS_MAX); // D1
	OX_ASSERT(b->n_forwards <= OX_PEER_FRAME_FORWARDS_MAX); // D1
	for (size_t i = 0; i < b->n_forwards; i++)
		OX_ASSERT(b->forwards[i].len > 0 &&
			  b->forwards[i].len <= OX_PEER_FORWARD_BYTES_MAX);
	// D2: every message is checked before the first is delivered.
	for (size_t i = 0; i < b->n_messages; i++) {
		bad = msg_from_pb(b->messages[i], b->from_node, self, raw,
				  raw_len, &d);
		if (bad) {
			why_set(why, why_len, "message %zu: %s", i, bad);
			goto fail;
		}
	}
	for (size_t i = 0; i < b->n_messages; i++) {
		bad = msg_from_pb(b->messages[i], b->from_node, self, raw,
				  raw_len, &d);
		OX_ASSERT(bad == NULL);
		d.client_address = b->client_address ? b->client_address : "";
		deliver(arg, &d);
	}
	for (size_t i = 0; i < b->n_forwards && forward != NULL; i++)
		forward(arg, b->from_node, b->forwards[i].data,
			b->forwards[i].len);
	n = (long)(b->n_messages + b->n_forwards);
	oxbow__raft_batch__free_unpacked(b, NULL);
	return n;

fail:
	oxbow__raft_batch__free_unpacked(b, NULL);
	return -OX_ECORRUPT;
}

long ox_peer_frame_decode(const uint8_t *payload, size_t len, uint64_t self,
			  const char *cluster_id, ox_peer_deliver_cb deliver,
			  ox_peer_forward_cb forward, void *arg, char *why,
			  size_t why_len)
{
	const uint8_t *body, *raw;
	size_t body_len, raw_len;

	OX_ASSERT(payload != NULL || len == 0);
	if (ox_payload_split(payload, len, &body, &body_len, &raw, &raw_len) < 0) {
		why_set(why, why_len, "payload shorter than its body length");
		return -OX_ECORRUPT;
	}
	return ox_peer_batch_decode(body, body_len, raw, raw_len, self,
				    cluster_id, NULL, 0, deliver, forward, arg,
				    why, why_len);
}
