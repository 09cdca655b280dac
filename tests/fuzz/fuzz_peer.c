// SPDX-License-Identifier: Apache-2.0
//
// libFuzzer harness for broker/peer's frame decoder (ox_peer_frame_decode),
// which reads what other nodes send. The first input byte picks a mode:
// even, the rest is a RAFT payload as it comes off the wire; odd, the rest
// describes messages that the transport's own encoder turns into a frame
// (so decoding goes deep), then a few of its bytes are overwritten from the
// input; such a frame may carry forwarded entries (RaftBatch.forwards) too.
// Whatever the bytes, decoding either refuses the whole frame with a
// reason and delivers nothing (D2), or delivers messages that are
// structurally sound (to this node, a known type, runs and conf within
// bounds, raw slices inside the payload) and that encode and decode again
// to the same messages, and forwards of 1..OX_PEER_FORWARD_BYTES_MAX bytes,
// at most OX_PEER_FRAME_FORWARDS_MAX of them.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/peer/peer_int.h"
#include "proto/error.h"
#include "proto/frame.h"
#include "proto/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) \
	do { \
		if (!(cond)) { \
			fprintf(stderr, "fuzz_peer: check failed: %s (line %d)\n", \
				#cond, __LINE__); \
			abort(); \
		} \
	} while (0)

#define SELF 2u
#define FROM 1u
#define CLUSTER "c"
// Messages the structured mode builds, and deliveries kept for the round
// trip.
#define BUILD_MAX 8u
#define KEEP_MAX 64u
// Forwards the structured mode adds, and their longest.
#define FORWARDS_BUILT 3u
#define FORWARD_BUILT_BYTES 64u

struct seen {
	const uint8_t *payload;
	size_t len;
	size_t n;
	size_t forwards;
	unsigned forward_sum;
	struct ox_peer_delivery d[KEEP_MAX];
};

static void check_forward(void *arg, uint64_t from, const uint8_t *entry,
			  size_t len)
{
	struct seen *s = arg;

	CHECK(from != 0 && from != SELF);
	CHECK(len > 0 && len <= OX_PEER_FORWARD_BYTES_MAX);
	// protobuf-c hands over its own copy: every byte must be readable.
	unsigned sum = 0;
	for (size_t k = 0; k < len; k++)
		sum += entry[k];
	s->forward_sum += sum;
	s->forwards++;
}

static void check_delivery(void *arg, const struct ox_peer_delivery *d)
{
	struct seen *s = arg;

	CHECK(d->msg.to == SELF && d->msg.from != 0);
	CHECK(d->msg.type >= OX_RAFT_MSG_PRE_VOTE &&
	      d->msg.type <= OX_RAFT_MSG_TIMEOUT_NOW);
	CHECK(d->msg.runs_n <= OX_RAFT_MSG_RUNS_MAX);
	CHECK(d->msg.conf.voters_n <= OX_RAFT_NODES_MAX &&
	      d->msg.conf.learners_n <= OX_RAFT_NODES_MAX);
	CHECK(d->msg.term < OX_RAFT_TERM_MAX && d->msg.index >= 0 &&
	      d->msg.index < OX_RAFT_INDEX_MAX);
	CHECK(d->raw_len == 0 ||
	      (d->raw >= s->payload && d->raw + d->raw_len <= s->payload + s->len));
	if (s->n < KEEP_MAX)
		s->d[s->n] = *d;
	s->n++;
}

static int msg_same(const struct ox_raft_msg *a, const struct ox_raft_msg *b)
{
	if (a->type != b->type || a->from != b->from || a->to != b->to ||
	    a->term != b->term || a->index != b->index ||
	    a->log_term != b->log_term || a->transfer != b->transfer ||
	    a->ok != b->ok || a->prev_index != b->prev_index ||
	    a->prev_term != b->prev_term || a->end_index != b->end_index ||
	    a->commit != b->commit || a->runs_n != b->runs_n ||
	    a->conf.voters_n != b->conf.voters_n ||
	    a->conf.learners_n != b->conf.learners_n)
		return 0;
	for (uint32_t i = 0; i < a->runs_n; i++)
		if (a->runs[i].start != b->runs[i].start ||
		    a->runs[i].term != b->runs[i].term)
			return 0;
	for (uint32_t i = 0; i < a->conf.voters_n; i++)
		if (a->conf.voters[i] != b->conf.voters[i])
			return 0;
	for (uint32_t i = 0; i < a->conf.learners_n; i++)
		if (a->conf.learners[i] != b->conf.learners[i])
			return 0;
	return 1;
}

// The second decode of a round trip: each message as the first gave it.
static void count_only(void *arg, const struct ox_peer_delivery *d)
{
	struct seen *s = arg;

	CHECK(s->n < KEEP_MAX);
	CHECK(msg_same(&s->d[s->n].msg, &d->msg));
	CHECK(s->d[s->n].group.topic_id == d->group.topic_id &&
	      s->d[s->n].group.partition == d->group.partition &&
	      d->raw_len == 0);
	s->n++;
}

// buf has OX_PEER_HEAD_MAX bytes of room, then msgs_len bytes of encoded
// messages and raw_total raw bytes: writes the payload's start (body
// length, RaftBatch's from_node and cluster id) just before the messages
// and returns the payload, *len its length.
static uint8_t *payload_around(uint8_t *buf, uint64_t from, size_t msgs_len,
			       size_t raw_total, size_t *len)
{
	uint8_t head[OX_PEER_HEAD_MAX];
	uint32_t frame_len, header_len;
	long hl = ox_peer_head_encode(head, 1, from, CLUSTER, NULL, msgs_len,
				      raw_total);

	CHECK(hl > 0);
	CHECK(ox_frame_prefix_decode(head, (size_t)hl, &frame_len,
				     &header_len) == 0);
	size_t pre = OX_FRAME_PREFIX_BYTES + header_len;
	uint8_t *payload = buf + OX_PEER_HEAD_MAX - ((size_t)hl - pre);

	memcpy(payload, head + pre, (size_t)hl - pre);
	*len = (size_t)hl - pre + msgs_len + raw_total;
	CHECK(frame_len == 4 + header_len + *len);
	return payload;
}

// Encodes what was delivered again (without raw bytes) and checks that
// it decodes to the same messages.
static void round_trip(struct seen *s)
{
	size_t n = s->n < KEEP_MAX ? s->n : KEEP_MAX, msgs_len = 0, len;
	uint8_t *buf = malloc(OX_PEER_HEAD_MAX + n * OX_PEER_MSG_BYTES_MAX + 1);
	char why[160] = "";

	CHECK(buf != NULL);
	for (size_t i = 0; i < n; i++) {
		CHECK(ox_peer_msg_check(&s->d[i].msg) == 0);
		msgs_len += ox_peer_msg_encode(buf + OX_PEER_HEAD_MAX + msgs_len,
					       &s->d[i].group, &s->d[i].msg, 0, 0);
		s->d[i].raw_len = 0;
	}
	uint8_t *payload = payload_around(buf, s->d[0].msg.from, msgs_len, 0,
					  &len);
	struct seen again = { .payload = payload, .len = len };
	memcpy(again.d, s->d, sizeof(s->d[0]) * n);
	again.n = 0;
	long got = ox_peer_frame_decode(payload, len, SELF, CLUSTER, count_only,
					NULL, &again, why, sizeof(why));
	CHECK(got == (long)n && again.n == n);
	free(buf);
}

static void decode(const uint8_t *payload, size_t len)
{
	struct seen s = { .payload = payload, .len = len };
	char why[160] = "";
	long n = ox_peer_frame_decode(payload, len, SELF, CLUSTER,
				      check_delivery, check_forward, &s, why,
				      sizeof(why));

	if (n < 0) {
		CHECK(n == -OX_ECORRUPT);
		CHECK(s.n == 0 && s.forwards == 0); // D2: nothing of a refused frame
		CHECK(why[0] != '\0');
		return;
	}
	CHECK((size_t)n == s.n + s.forwards && s.n <= OX_PEER_FRAME_MSGS_MAX &&
	      s.forwards <= OX_PEER_FRAME_FORWARDS_MAX);
	if (s.n > 0 && s.n <= KEEP_MAX)
		round_trip(&s);
}

struct input {
	const uint8_t *p;
	size_t n;
};

static uint64_t take(struct input *in, unsigned bytes)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < bytes; i++) {
		v = v << 8 | (in->n ? *in->p : 0);
		if (in->n) {
			in->p++;
			in->n--;
		}
	}
	return v;
}

// A message from the input: small values mostly, so that checks near the
// bounds are reached; to and from right most of the time.
static void build_msg(struct input *in, struct ox_peer_group *g,
		      struct ox_raft_msg *m, size_t *raw_len)
{
	uint8_t sel = (uint8_t)take(in, 1);

	memset(m, 0, sizeof(*m));
	m->type = (enum ox_raft_msg_type)(1 + take(in, 1) % 9);
	m->from = sel & 1 ? take(in, 1) : FROM;
	m->to = sel & 2 ? take(in, 1) : SELF;
	m->term = sel & 4 ? take(in, 8) : take(in, 1);
	m->index = (int64_t)(sel & 8 ? take(in, 8) : take(in, 2));
	m->prev_index = (int64_t)take(in, 2);
	m->end_index = (int64_t)take(in, 2);
	m->commit = (int64_t)take(in, 2);
	m->log_term = take(in, 1);
	m->runs_n = (uint32_t)(take(in, 1) % (OX_RAFT_MSG_RUNS_MAX + 1));
	for (uint32_t i = 0; i < m->runs_n; i++)
		m->runs[i] = (struct ox_raft_run){ (int64_t)take(in, 2), take(in, 1) };
	m->conf.voters_n = (uint32_t)(take(in, 1) % (OX_RAFT_NODES_MAX + 1));
	for (uint32_t i = 0; i < m->conf.voters_n; i++)
		m->conf.voters[i] = take(in, 1);
	g->topic_id = take(in, 1);
	g->partition = (uint32_t)take(in, 1);
	*raw_len = take(in, 1) % 32;
}

static void structured(struct input *in)
{
	struct ox_peer_group g;
	struct ox_raft_msg m;
	size_t n = 1 + take(in, 1) % BUILD_MAX, msgs_len = 0, raw_total = 0;
	size_t raw_len, len, forwards = take(in, 1) % (FORWARDS_BUILT + 1);
	uint8_t *buf = malloc(OX_PEER_HEAD_MAX +
			      BUILD_MAX * (OX_PEER_MSG_BYTES_MAX + 32) +
			      FORWARDS_BUILT * (OX_PEER_FORWARD_HEAD_MAX +
						FORWARD_BUILT_BYTES));
	uint8_t entry[FORWARD_BUILT_BYTES];

	CHECK(buf != NULL);
	for (size_t i = 0; i < n; i++) {
		build_msg(in, &g, &m, &raw_len);
		msgs_len += ox_peer_msg_encode(buf + OX_PEER_HEAD_MAX + msgs_len,
					       &g, &m, raw_total, raw_len);
		raw_total += raw_len;
	}
	// Forwarded entries after the messages: bytes from the input.
	for (size_t i = 0; i < forwards; i++) {
		size_t elen = 1 + take(in, 1) % FORWARD_BUILT_BYTES;

		for (size_t k = 0; k < elen; k++)
			entry[k] = (uint8_t)take(in, 1);
		msgs_len += ox_peer_forward_encode(
			buf + OX_PEER_HEAD_MAX + msgs_len, entry, elen);
	}
	memset(buf + OX_PEER_HEAD_MAX + msgs_len, 0xab, raw_total);
	uint8_t *payload = payload_around(buf, FROM, msgs_len, raw_total, &len);
	// A few bytes overwritten, wherever the input says.
	for (unsigned k = (unsigned)(take(in, 1) % 4); k > 0; k--) {
		size_t at = (size_t)take(in, 2) % len;

		payload[at] = (uint8_t)take(in, 1);
	}
	decode(payload, len);
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	if (data[0] & 1) {
		struct input in = { data + 1, size - 1 };

		structured(&in);
		return 0;
	}
	// A copy of exactly the payload, so ASan sees any read past it.
	uint8_t *p = malloc(size - 1 + 1);
	CHECK(p != NULL);
	memcpy(p, data + 1, size - 1);
	decode(p, size - 1);
	free(p);
	return 0;
}
