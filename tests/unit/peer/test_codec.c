// SPDX-License-Identifier: Apache-2.0
//
// Unit tests of broker/peer's codec: frames built with the encoder the
// transport uses (ox_peer_msg_encode, ox_peer_head_encode) decode, through
// ox_peer_frame_decode, to the same messages field by field with their raw
// slices; frames a peer could send wrongly (another cluster, a message for
// another node, an unknown type, too many runs, a raw slice past the end,
// truncated protobuf, absurd counts) are refused whole, with a reason,
// and nothing delivered (D1, D2 in codec.c).
#include "broker/peer/peer_int.h"
#include "proto/error.h"
#include "proto/frame.h"
#include "proto/raft.pb-c.h"
#include "proto/wire.h"

#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>

#define SELF 2u
#define FROM 1u
#define CLUSTER "c-test"

// --- building frames ---------------------------------------------------------

struct built {
	uint8_t *frame;
	size_t len;
	const uint8_t *payload; // after the RequestHeader
	size_t payload_len;
};

// A frame as the transport sends it: head, the messages' entries, then
// raw (each message i naming raw_len[i] bytes of it, in order).
static struct built build(const struct ox_peer_group *g,
			  const struct ox_raft_msg *m, const size_t *raw_len,
			  size_t n, const uint8_t *raw, const char *cluster)
{
	uint8_t *msgs = malloc(n * OX_PEER_MSG_BYTES_MAX + 1);
	uint8_t head[OX_PEER_HEAD_MAX];
	size_t msgs_len = 0, raw_total = 0;
	uint32_t frame_len, header_len;
	struct built b;
	long head_len;

	cr_assert(msgs != NULL);
	for (size_t i = 0; i < n; i++) {
		msgs_len += ox_peer_msg_encode(msgs + msgs_len, &g[i], &m[i],
					       raw_total, raw_len[i]);
		raw_total += raw_len[i];
	}
	head_len = ox_peer_head_encode(head, 7, FROM, cluster, NULL, msgs_len,
				       raw_total);
	cr_assert_gt(head_len, 0);
	b.len = (size_t)head_len + msgs_len + raw_total;
	b.frame = malloc(b.len + 1);
	cr_assert(b.frame != NULL);
	memcpy(b.frame, head, (size_t)head_len);
	memcpy(b.frame + head_len, msgs, msgs_len);
	if (raw_total > 0)
		memcpy(b.frame + head_len + msgs_len, raw, raw_total);
	free(msgs);
	cr_assert_eq(ox_frame_prefix_decode(b.frame, b.len, &frame_len,
					    &header_len), 0);
	cr_assert_eq(frame_len + 4u, b.len);
	b.payload = b.frame + OX_FRAME_PREFIX_BYTES + header_len;
	b.payload_len = b.len - OX_FRAME_PREFIX_BYTES - header_len;
	return b;
}

// A payload around a body packed from a RaftBatch the test built by hand
// (to send what the encoder never would), followed by raw_len raw bytes.
static uint8_t *payload_of(const Oxbow__RaftBatch *batch, size_t raw_len,
			   size_t *len)
{
	size_t body_len = oxbow__raft_batch__get_packed_size(batch);
	uint8_t *p = calloc(1, OX_PAYLOAD_PREFIX_BYTES + body_len + raw_len + 1);

	cr_assert(p != NULL);
	ox_payload_prefix_encode(p, (uint32_t)body_len);
	oxbow__raft_batch__pack(batch, p + OX_PAYLOAD_PREFIX_BYTES);
	*len = OX_PAYLOAD_PREFIX_BYTES + body_len + raw_len;
	return p;
}

// --- what was delivered --------------------------------------------------------

#define GOT_MAX 64

struct got {
	int n;
	struct ox_peer_delivery d[GOT_MAX];
	uint8_t raw[GOT_MAX][256];
	int forwards;
	uint64_t fwd_from[GOT_MAX];
	size_t fwd_len[GOT_MAX];
	uint8_t fwd[GOT_MAX][256];
};

static void collect_fwd(void *arg, uint64_t from, const uint8_t *entry,
			size_t len)
{
	struct got *g = arg;

	cr_assert_lt(g->forwards, GOT_MAX);
	g->fwd_from[g->forwards] = from;
	g->fwd_len[g->forwards] = len;
	memcpy(g->fwd[g->forwards], entry,
	       len < sizeof(g->fwd[0]) ? len : sizeof(g->fwd[0]));
	g->forwards++;
}

static void collect(void *arg, const struct ox_peer_delivery *d)
{
	struct got *g = arg;

	cr_assert_lt(g->n, GOT_MAX);
	cr_assert_leq(d->raw_len, sizeof(g->raw[0]));
	g->d[g->n] = *d;
	if (d->raw_len > 0)
		memcpy(g->raw[g->n], d->raw, d->raw_len);
	g->n++;
}

// A message of type t with every field its type uses set to a value
// unique to (t, field).
static struct ox_raft_msg msg_of(enum ox_raft_msg_type t)
{
	uint64_t k = (uint64_t)t * 1000u;
	struct ox_raft_msg m = {
		.type = t,
		.from = FROM,
		.to = SELF,
		.term = k + 1,
		.index = (int64_t)k + 2,
		.log_term = k + 3,
		.transfer = t == OX_RAFT_MSG_VOTE,
		.ok = t == OX_RAFT_MSG_VOTE_RESP || t == OX_RAFT_MSG_APPEND_RESP,
	};

	if (t == OX_RAFT_MSG_APPEND) {
		m.prev_index = (int64_t)k + 4;
		m.prev_term = k;
		m.end_index = (int64_t)k + 40;
		m.commit = (int64_t)k + 3;
		m.runs_n = OX_RAFT_MSG_RUNS_MAX;
		for (uint32_t i = 0; i < m.runs_n; i++)
			m.runs[i] = (struct ox_raft_run){
				.start = (int64_t)(k + 4 + 5 * i),
				.term = k + i,
			};
	}
	if (t == OX_RAFT_MSG_SNAPSHOT) {
		m.conf.voters_n = 3;
		m.conf.voters[0] = 1;
		m.conf.voters[1] = 2;
		m.conf.voters[2] = (uint64_t)1 << 60;
		m.conf.learners_n = OX_RAFT_NODES_MAX;
		for (uint32_t i = 0; i < OX_RAFT_NODES_MAX; i++)
			m.conf.learners[i] = 10 + i;
	}
	if (t == OX_RAFT_MSG_APPEND_RESP) {
		m.prev_index = (int64_t)k + 5;
		m.end_index = (int64_t)k + 6;
	}
	return m;
}

static void msg_eq(const struct ox_raft_msg *a, const struct ox_raft_msg *b)
{
	cr_assert_eq(a->type, b->type);
	cr_assert_eq(a->from, b->from);
	cr_assert_eq(a->to, b->to);
	cr_assert_eq(a->term, b->term);
	cr_assert_eq(a->index, b->index);
	cr_assert_eq(a->log_term, b->log_term);
	cr_assert_eq(a->transfer, b->transfer);
	cr_assert_eq(a->ok, b->ok);
	cr_assert_eq(a->prev_index, b->prev_index);
	cr_assert_eq(a->prev_term, b->prev_term);
	cr_assert_eq(a->end_index, b->end_index);
	cr_assert_eq(a->commit, b->commit);
	cr_assert_eq(a->runs_n, b->runs_n);
	for (uint32_t i = 0; i < a->runs_n; i++) {
		cr_assert_eq(a->runs[i].start, b->runs[i].start);
		cr_assert_eq(a->runs[i].term, b->runs[i].term);
	}
	cr_assert_eq(a->conf.voters_n, b->conf.voters_n);
	cr_assert_eq(a->conf.learners_n, b->conf.learners_n);
	for (uint32_t i = 0; i < a->conf.voters_n; i++)
		cr_assert_eq(a->conf.voters[i], b->conf.voters[i]);
	for (uint32_t i = 0; i < a->conf.learners_n; i++)
		cr_assert_eq(a->conf.learners[i], b->conf.learners[i]);
	// Fields the wire does not carry stay zero.
	cr_assert_eq(b->wants_entries, false);
}

// --- round trips -----------------------------------------------------------------

#define TYPES 9

Test(peer_codec, every_type_round_trips_with_raw_slices)
{
	struct ox_peer_group g[TYPES];
	struct ox_raft_msg m[TYPES];
	size_t raw_len[TYPES];
	uint8_t raw[TYPES * 200];
	size_t raw_total = 0;
	struct got got = { 0 };
	char why[128] = "";

	for (int i = 0; i < TYPES; i++) {
		m[i] = msg_of((enum ox_raft_msg_type)(i + 1));
		g[i] = (struct ox_peer_group){ .topic_id = i == 0 ? 0 : 77 + (uint64_t)i,
					       .partition = (uint32_t)i * 3 };
		raw_len[i] = m[i].type == OX_RAFT_MSG_APPEND ? 150 :
			     m[i].type == OX_RAFT_MSG_SNAPSHOT ? 99 : 0;
		raw_total += raw_len[i];
	}
	for (size_t i = 0; i < raw_total; i++)
		raw[i] = (uint8_t)(i * 7 + 1);
	struct built b = build(g, m, raw_len, TYPES, raw, CLUSTER);
	long n = ox_peer_frame_decode(b.payload, b.payload_len, SELF, CLUSTER,
				      collect, collect_fwd, &got, why,
				      sizeof(why));
	cr_assert_eq(n, TYPES, "decode: %ld (%s)", n, why);
	cr_assert_eq(got.n, TYPES);
	size_t off = 0;
	for (int i = 0; i < TYPES; i++) {
		cr_assert_eq(got.d[i].group.topic_id, g[i].topic_id);
		cr_assert_eq(got.d[i].group.partition, g[i].partition);
		msg_eq(&m[i], &got.d[i].msg);
		cr_assert_eq(got.d[i].raw_len, raw_len[i]);
		cr_assert_eq(memcmp(got.raw[i], raw + off, raw_len[i]), 0);
		off += raw_len[i];
	}
	free(b.frame);
}

Test(peer_codec, extreme_values_round_trip)
{
	struct ox_raft_msg m = msg_of(OX_RAFT_MSG_APPEND);
	struct ox_peer_group g = { UINT64_MAX, UINT32_MAX };
	size_t raw_len = 0;
	struct got got = { 0 };
	char why[128] = "";

	m.term = OX_RAFT_TERM_MAX - 1;
	m.index = OX_RAFT_INDEX_MAX - 1;
	m.commit = OX_RAFT_INDEX_MAX - 1;
	m.runs[3].term = OX_RAFT_TERM_MAX - 1;
	struct built b = build(&g, &m, &raw_len, 1, NULL, CLUSTER);
	cr_assert_eq(ox_peer_frame_decode(b.payload, b.payload_len, SELF,
					  CLUSTER, collect, collect_fwd, &got,
					  why, sizeof(why)), 1, "%s", why);
	cr_assert_eq(got.d[0].group.topic_id, UINT64_MAX);
	cr_assert_eq(got.d[0].group.partition, UINT32_MAX);
	msg_eq(&m, &got.d[0].msg);
	free(b.frame);
}

// --- refusals ------------------------------------------------------------------

// Decodes payload and checks that it is refused with a reason mentioning
// `reason`, nothing delivered.
static void refused(const uint8_t *payload, size_t len, const char *reason)
{
	struct got got = { 0 };
	char why[160] = "";
	long n = ox_peer_frame_decode(payload, len, SELF, CLUSTER, collect,
				      collect_fwd, &got, why, sizeof(why));

	cr_assert_eq(n, -OX_ECORRUPT, "decoded %ld, want a refusal for %s",
		     n, reason);
	cr_assert_eq(got.n + got.forwards, 0, "delivered %d of a refused "
		     "frame", got.n + got.forwards);
	cr_assert(strstr(why, reason) != NULL, "why \"%s\", want \"%s\"", why,
		  reason);
}

// A frame of three good APPENDs with the last message edited by `edit`.
static void refused_edit(void (*edit)(struct ox_raft_msg *m, size_t *raw_len),
			 const char *reason)
{
	struct ox_peer_group g[3] = { { 1, 0 }, { 1, 1 }, { 2, 0 } };
	struct ox_raft_msg m[3];
	size_t raw_len[3] = { 10, 10, 10 };
	uint8_t raw[30] = { 0 };

	for (int i = 0; i < 3; i++)
		m[i] = msg_of(OX_RAFT_MSG_APPEND);
	edit(&m[2], &raw_len[2]);
	struct built b = build(g, m, raw_len, 3, raw, CLUSTER);
	refused(b.payload, b.payload_len, reason);
	free(b.frame);
}

static void edit_to(struct ox_raft_msg *m, size_t *raw_len)
{
	m->to = 3;
}

static void edit_from(struct ox_raft_msg *m, size_t *raw_len)
{
	m->from = 5;
}

static void edit_index(struct ox_raft_msg *m, size_t *raw_len)
{
	m->end_index = OX_RAFT_INDEX_MAX;
}

static void edit_negative(struct ox_raft_msg *m, size_t *raw_len)
{
	m->prev_index = -1;
}

static void edit_term(struct ox_raft_msg *m, size_t *raw_len)
{
	m->log_term = OX_RAFT_TERM_MAX;
}

static void edit_run(struct ox_raft_msg *m, size_t *raw_len)
{
	m->runs[2].term = UINT64_MAX;
}

static void edit_conf(struct ox_raft_msg *m, size_t *raw_len)
{
	m->conf.voters_n = 2;
	m->conf.voters[0] = 1;
	m->conf.voters[1] = 0;
}

Test(peer_codec, message_for_another_node_refused)
{
	refused_edit(edit_to, "to is not this node");
}

Test(peer_codec, message_from_another_node_than_the_frame_refused)
{
	refused_edit(edit_from, "from is not");
}

Test(peer_codec, indices_and_terms_out_of_range_refused)
{
	refused_edit(edit_index, "index out of range");
	refused_edit(edit_negative, "index out of range");
	refused_edit(edit_term, "term out of range");
	refused_edit(edit_run, "run out of range");
	refused_edit(edit_conf, "bad conf");
}

Test(peer_codec, other_cluster_refused)
{
	struct ox_raft_msg m = msg_of(OX_RAFT_MSG_VOTE);
	struct ox_peer_group g = { 0, 0 };
	size_t raw_len = 0;
	struct built b = build(&g, &m, &raw_len, 1, NULL, "another");

	refused(b.payload, b.payload_len, "another cluster");
	free(b.frame);
}

// Hand-built batches: what the encoder refuses to write.
static Oxbow__RaftMessage pb_msg(void)
{
	Oxbow__RaftMessage m = OXBOW__RAFT_MESSAGE__INIT;

	m.type = OXBOW__RAFT_MESSAGE_TYPE__RAFT_APPEND_RESP;
	m.from = FROM;
	m.to = SELF;
	m.term = 3;
	return m;
}

static void refused_batch(Oxbow__RaftMessage *msgs, size_t n,
			  size_t raw_len, const char *reason)
{
	Oxbow__RaftBatch b = OXBOW__RAFT_BATCH__INIT;
	Oxbow__RaftMessage *ptrs[8];
	size_t len;

	cr_assert_leq(n, 8);
	for (size_t i = 0; i < n; i++)
		ptrs[i] = &msgs[i];
	b.from_node = FROM;
	b.cluster_id = CLUSTER;
	b.n_messages = n;
	b.messages = ptrs;
	uint8_t *p = payload_of(&b, raw_len, &len);
	refused(p, len, reason);
	free(p);
}

Test(peer_codec, unknown_types_refused)
{
	Oxbow__RaftMessage m[2] = { pb_msg(), pb_msg() };

	m[1].type = (Oxbow__RaftMessageType)10;
	refused_batch(m, 2, 0, "unknown message type");
	m[1].type = OXBOW__RAFT_MESSAGE_TYPE__RAFT_UNSPECIFIED;
	refused_batch(m, 2, 0, "unknown message type");
}

Test(peer_codec, runs_over_the_bound_refused)
{
	Oxbow__RaftMessage m = pb_msg();
	Oxbow__RaftRun runs[OX_RAFT_MSG_RUNS_MAX + 1];
	Oxbow__RaftRun *ptrs[OX_RAFT_MSG_RUNS_MAX + 1];

	for (int i = 0; i <= OX_RAFT_MSG_RUNS_MAX; i++) {
		runs[i] = (Oxbow__RaftRun)OXBOW__RAFT_RUN__INIT;
		runs[i].start = i;
		runs[i].term = 1;
		ptrs[i] = &runs[i];
	}
	m.type = OXBOW__RAFT_MESSAGE_TYPE__RAFT_APPEND;
	m.n_runs = OX_RAFT_MSG_RUNS_MAX + 1;
	m.runs = ptrs;
	refused_batch(&m, 1, 0, "message 0");
}

Test(peer_codec, conf_over_the_bound_refused)
{
	Oxbow__RaftMessage m = pb_msg();
	Oxbow__RaftConf conf = OXBOW__RAFT_CONF__INIT;
	uint64_t ids[OX_RAFT_NODES_MAX + 1];

	for (int i = 0; i <= OX_RAFT_NODES_MAX; i++)
		ids[i] = (uint64_t)i + 1;
	conf.n_learners = OX_RAFT_NODES_MAX + 1;
	conf.learners = ids;
	m.type = OXBOW__RAFT_MESSAGE_TYPE__RAFT_SNAPSHOT;
	m.conf = &conf;
	refused_batch(&m, 1, 0, "message 0");
}

Test(peer_codec, raw_slice_past_the_end_refused)
{
	Oxbow__RaftMessage m[2] = { pb_msg(), pb_msg() };

	m[0].raw_offset = 0;
	m[0].raw_len = 8;
	m[1].raw_offset = 8;
	m[1].raw_len = 3; // 11 > 10
	refused_batch(m, 2, 10, "raw slice past the end");
	m[1].raw_offset = UINT64_MAX;
	m[1].raw_len = 2; // wraps if added carelessly
	refused_batch(m, 2, 10, "raw slice past the end");
	m[1].raw_offset = 2;
	m[1].raw_len = UINT64_MAX - 1;
	refused_batch(m, 2, 10, "raw slice past the end");
}

Test(peer_codec, from_node_zero_refused)
{
	Oxbow__RaftBatch b = OXBOW__RAFT_BATCH__INIT;
	size_t len;

	b.cluster_id = CLUSTER;
	uint8_t *p = payload_of(&b, 0, &len);
	refused(p, len, "from_node is 0");
	free(p);
}

Test(peer_codec, truncated_protobuf_refused)
{
	struct ox_raft_msg m[2] = { msg_of(OX_RAFT_MSG_APPEND),
				    msg_of(OX_RAFT_MSG_SNAPSHOT) };
	struct ox_peer_group g[2] = { { 1, 1 }, { 1, 2 } };
	size_t raw_len[2] = { 0, 0 };
	struct built b = build(g, m, raw_len, 2, NULL, CLUSTER);
	uint32_t body_len;

	memcpy(&body_len, b.payload, 4);
	// Every cut inside the last message: its declared length runs past
	// the body, which ends early.
	for (uint32_t cut = 1; cut < 30; cut++) {
		uint8_t *p = malloc(b.payload_len);

		memcpy(p, b.payload, b.payload_len);
		ox_payload_prefix_encode(p, body_len - cut);
		refused(p, OX_PAYLOAD_PREFIX_BYTES + body_len - cut, "parse");
		free(p);
	}
	// A payload shorter than its body length.
	refused(b.payload, b.payload_len - 1, "shorter");
	refused(b.payload, 3, "shorter");
	free(b.frame);
}

Test(peer_codec, too_many_messages_refused_before_unpacking)
{
	size_t n = OX_PEER_FRAME_MSGS_MAX + 1;
	size_t body_len = 2 * n;
	uint8_t *p = malloc(OX_PAYLOAD_PREFIX_BYTES + body_len);

	cr_assert(p != NULL);
	ox_payload_prefix_encode(p, (uint32_t)body_len);
	for (size_t i = 0; i < n; i++) {
		p[OX_PAYLOAD_PREFIX_BYTES + 2 * i] = 3 << 3 | 2; // messages
		p[OX_PAYLOAD_PREFIX_BYTES + 2 * i + 1] = 0;      // empty
	}
	refused(p, OX_PAYLOAD_PREFIX_BYTES + body_len, "messages in one frame");
	free(p);
}

Test(peer_codec, unknown_fields_bounded)
{
	// One RaftMessage made of many unknown varint fields (number 100).
	size_t fields = OX_PEER_MSG_FIELDS_MAX + 1;
	size_t inner = fields * 3, body_len = 3 + inner;
	uint8_t *p = malloc(OX_PAYLOAD_PREFIX_BYTES + body_len);
	uint8_t *q = p + OX_PAYLOAD_PREFIX_BYTES;

	cr_assert(p != NULL);
	ox_payload_prefix_encode(p, (uint32_t)body_len);
	*q++ = 3 << 3 | 2;
	*q++ = (uint8_t)(inner | 0x80u);
	*q++ = (uint8_t)(inner >> 7);
	for (size_t i = 0; i < fields; i++) {
		*q++ = (uint8_t)((100 << 3) | 0x80u); // tag 800: two bytes
		*q++ = (uint8_t)((100 << 3) >> 7);
		*q++ = 1;
	}
	refused(p, OX_PAYLOAD_PREFIX_BYTES + body_len, "message 0");
	free(p);
}

Test(peer_codec, a_good_message_after_unknown_fields_decodes)
{
	// Unknown fields within the bound are ignored (compatibility).
	Oxbow__RaftBatch b = OXBOW__RAFT_BATCH__INIT;
	Oxbow__RaftMessage m = pb_msg();
	Oxbow__RaftMessage *ptrs[1] = { &m };
	struct got got = { 0 };
	char why[128] = "";
	size_t len, body_len;

	b.from_node = FROM;
	b.cluster_id = CLUSTER;
	b.n_messages = 1;
	b.messages = ptrs;
	body_len = oxbow__raft_batch__get_packed_size(&b);
	uint8_t *p = malloc(OX_PAYLOAD_PREFIX_BYTES + body_len + 3);
	cr_assert(p != NULL);
	oxbow__raft_batch__pack(&b, p + OX_PAYLOAD_PREFIX_BYTES);
	// Field 9 of RaftBatch, a varint: unknown to this reader.
	p[OX_PAYLOAD_PREFIX_BYTES + body_len] = 9 << 3;
	p[OX_PAYLOAD_PREFIX_BYTES + body_len + 1] = 0x81;
	p[OX_PAYLOAD_PREFIX_BYTES + body_len + 2] = 0x01;
	ox_payload_prefix_encode(p, (uint32_t)(body_len + 3));
	len = OX_PAYLOAD_PREFIX_BYTES + body_len + 3;
	cr_assert_eq(ox_peer_frame_decode(p, len, SELF, CLUSTER, collect,
					  collect_fwd, &got, why, sizeof(why)),
		     1, "%s", why);
	cr_assert_eq(got.d[0].msg.type, OX_RAFT_MSG_APPEND_RESP);
	cr_assert_eq(got.d[0].msg.term, 3);
	free(p);
}

Test(peer_codec, empty_payload_refused)
{
	refused(NULL, 0, "another cluster");
}

Test(peer_codec, head_refuses_frames_over_the_limit)
{
	uint8_t head[OX_PEER_HEAD_MAX];
	char cluster[OX_PEER_CLUSTER_ID_MAX + 1];
	char addr[OX_PEER_ADDRESS_MAX + 1];

	memset(cluster, 'x', OX_PEER_CLUSTER_ID_MAX);
	cluster[OX_PEER_CLUSTER_ID_MAX] = '\0';
	memset(addr, '7', OX_PEER_ADDRESS_MAX);
	addr[OX_PEER_ADDRESS_MAX] = '\0';
	cr_assert_gt(ox_peer_head_encode(head, UINT64_MAX, UINT64_MAX, cluster,
					 addr, OX_PEER_MSG_BYTES_MAX,
					 OX_FRAME_BYTES_MAX - OX_PEER_HEAD_MAX -
						 OX_PEER_MSG_BYTES_MAX), 0);
	cr_assert_eq(ox_peer_head_encode(head, 1, 1, CLUSTER, NULL, 10,
					 OX_FRAME_BYTES_MAX),
		     -OX_ETOOBIG);
}

// --- forwards (RaftBatch.forwards) ------------------------------------------

Test(peer_codec, forwards_round_trip_after_the_messages)
{
	struct ox_raft_msg m = msg_of(OX_RAFT_MSG_VOTE);
	struct ox_peer_group g = { 0, 0 };
	uint8_t body[OX_PEER_MSG_BYTES_MAX + 3 * (OX_PEER_FORWARD_HEAD_MAX + 200)];
	uint8_t head[OX_PEER_HEAD_MAX], e[3][200];
	size_t body_len, elen[3] = { 1, 200, 77 };
	uint32_t frame_len, header_len;
	struct got got = { 0 };
	char why[160] = "";

	body_len = ox_peer_msg_encode(body, &g, &m, 0, 0);
	for (int i = 0; i < 3; i++) {
		memset(e[i], 'a' + i, elen[i]);
		body_len += ox_peer_forward_encode(body + body_len, e[i],
						   elen[i]);
	}
	long hl = ox_peer_head_encode(head, 1, FROM, CLUSTER, "h:1", body_len,
				      0);
	cr_assert_gt(hl, 0);
	uint8_t *frame = malloc((size_t)hl + body_len);
	cr_assert(frame != NULL);
	memcpy(frame, head, (size_t)hl);
	memcpy(frame + hl, body, body_len);
	cr_assert_eq(ox_frame_prefix_decode(frame, (size_t)hl + body_len,
					    &frame_len, &header_len), 0);
	size_t pre = OX_FRAME_PREFIX_BYTES + header_len;
	long n = ox_peer_frame_decode(frame + pre, (size_t)hl + body_len - pre,
				      SELF, CLUSTER, collect, collect_fwd,
				      &got, why, sizeof(why));
	cr_assert_eq(n, 4, "decode: %ld (%s)", n, why);
	cr_assert_eq(got.n, 1);
	msg_eq(&m, &got.d[0].msg);
	cr_assert_eq(got.forwards, 3);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(got.fwd_from[i], FROM);
		cr_assert_eq(got.fwd_len[i], elen[i]);
		cr_assert_eq(memcmp(got.fwd[i], e[i], elen[i]), 0);
	}
	// Without a forward callback the forwards are dropped, the
	// messages still delivered.
	memset(&got, 0, sizeof(got));
	n = ox_peer_frame_decode(frame + pre, (size_t)hl + body_len - pre, SELF,
				 CLUSTER, collect, NULL, &got, why, sizeof(why));
	cr_assert_eq(n, 4);
	cr_assert_eq(got.n, 1);
	cr_assert_eq(got.forwards, 0);
	free(frame);
}

// A batch of one good message and `n` forwards of `len` bytes each.
static void refused_forwards(size_t n, size_t len, const char *reason)
{
	Oxbow__RaftBatch b = OXBOW__RAFT_BATCH__INIT;
	Oxbow__RaftMessage m = pb_msg(), *mp = &m;
	ProtobufCBinaryData *f = calloc(n + 1, sizeof(*f));
	uint8_t *bytes = calloc(1, len + 1);
	size_t plen;

	cr_assert(f != NULL && bytes != NULL);
	for (size_t i = 0; i < n; i++)
		f[i] = (ProtobufCBinaryData){ len, bytes };
	b.from_node = FROM;
	b.cluster_id = CLUSTER;
	b.n_messages = 1;
	b.messages = &mp;
	b.n_forwards = n;
	b.forwards = f;
	uint8_t *p = payload_of(&b, 0, &plen);
	refused(p, plen, reason);
	free(p);
	free(f);
	free(bytes);
}

Test(peer_codec, forwards_over_their_bounds_refused)
{
	refused_forwards(OX_PEER_FRAME_FORWARDS_MAX + 1, 10, "forward");
	refused_forwards(1, 0, "forward 0: empty");
	refused_forwards(1, OX_PEER_FORWARD_BYTES_MAX + 1, "forward 0");
}

Test(peer_codec, forward_of_the_wrong_wire_type_refused)
{
	Oxbow__RaftBatch b = OXBOW__RAFT_BATCH__INIT;
	size_t body_len;

	b.from_node = FROM;
	b.cluster_id = CLUSTER;
	body_len = oxbow__raft_batch__get_packed_size(&b);
	uint8_t *p = calloc(1, OX_PAYLOAD_PREFIX_BYTES + body_len + 2);
	cr_assert(p != NULL);
	oxbow__raft_batch__pack(&b, p + OX_PAYLOAD_PREFIX_BYTES);
	// Field 5 (forwards) as a varint.
	p[OX_PAYLOAD_PREFIX_BYTES + body_len] = 5 << 3;
	p[OX_PAYLOAD_PREFIX_BYTES + body_len + 1] = 0x01;
	ox_payload_prefix_encode(p, (uint32_t)(body_len + 2));
	refused(p, OX_PAYLOAD_PREFIX_BYTES + body_len + 2, "forward 0");
	free(p);
}
