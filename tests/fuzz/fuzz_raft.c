// SPDX-License-Identifier: Apache-2.0
//
// libFuzzer harness for broker/raft's handling of peer input. A node of a
// three-voter group (id 1, a log of a few terms on start) gets a stream of
// operations read from the input: messages with fields drawn from small
// ranges (so they hit real code paths: matching terms, indices near the
// log), ticks, proposals, persisted reports, fills and log starts. Peer
// messages are untrusted, so whatever they say must end in a return code,
// never in an OX_ASSERT abort, and the outputs must stay within their
// bounds (R8). Host calls are made the way a correct host makes them.
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/raft/raft.h"
#include "tests/fuzz/fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) \
	do { \
		if (!(cond)) { \
			fprintf(stderr, "fuzz_raft: check failed: %s (line %d)\n", \
				#cond, __LINE__); \
			abort(); \
		} \
	} while (0)

// Indices and terms near the log's: small values, sometimes absurd ones.
static int64_t take_index(struct input *in)
{
	uint8_t b = take(in);

	if (b == 0xff)
		return INT64_MAX;
	if (b == 0xfe)
		return -1;
	return b;
}

static uint64_t take_term(struct input *in)
{
	uint8_t b = take(in);

	return b == 0xff ? UINT64_MAX : b % 12;
}

static void take_conf(struct input *in, struct ox_raft_conf *c)
{
	c->voters_n = take(in) % (OX_RAFT_NODES_MAX + 2);
	c->learners_n = take(in) % 3;
	for (uint32_t i = 0; i < c->voters_n && i < OX_RAFT_NODES_MAX; i++)
		c->voters[i] = take(in) % 6;
	for (uint32_t i = 0; i < c->learners_n; i++)
		c->learners[i] = take(in) % 6;
}

static void take_msg(struct input *in, struct ox_raft_msg *m)
{
	memset(m, 0, sizeof(*m));
	m->type = (enum ox_raft_msg_type)(take(in) % 11);
	m->from = take(in) % 5;
	m->to = take(in) % 8 == 0 ? 2 : 1;
	m->term = take_term(in);
	m->index = take_index(in);
	m->log_term = take_term(in);
	m->transfer = take(in) & 1;
	m->ok = take(in) & 1;
	m->prev_index = take_index(in);
	m->prev_term = take_term(in);
	m->end_index = take_index(in);
	m->commit = take_index(in);
	m->runs_n = take(in) % (OX_RAFT_MSG_RUNS_MAX + 2);
	for (uint32_t i = 0; i < m->runs_n && i < OX_RAFT_MSG_RUNS_MAX; i++) {
		m->runs[i].start = take_index(in);
		m->runs[i].term = take_term(in);
	}
	m->wants_entries = take(in) & 1;
	if (m->type == OX_RAFT_MSG_SNAPSHOT)
		take_conf(in, &m->conf);
}

static void drain(struct ox_raft *r)
{
	struct ox_raft_ready rd;

	ox_raft_ready(r, &rd);
	CHECK(rd.msgs_n <= OX_RAFT_OUTBOX_MAX);
	for (uint32_t i = 0; i < rd.msgs_n; i++) {
		struct ox_raft_msg m = rd.msgs[i];

		CHECK(m.from == 1);
		if (!m.wants_entries)
			continue;
		// The host reads from the batch holding prev_index; batches
		// here are 3 offsets long, starting at 0.
		int64_t base = m.prev_index - m.prev_index % 3;
		int64_t last = ox_raft_last_index(r);
		int rc;

		if (base < ox_raft_start_index(r))
			base = ox_raft_start_index(r);
		rc = ox_raft_append_fill(r, &m, base, last);
		CHECK(rc == 0 || rc == -ESTALE || rc == -EINVAL);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct ox_raft_run runs[] = { { 0, 1 }, { 6, 2 },
						   { 12, 4 } };
	struct ox_raft_restore rs = {
		.hard = { .term = 4, .vote = 0,
			  .conf = { .voters_n = 3, .voters = { 1, 2, 3 } } },
		.last_index = 18,
		.runs = runs,
		.runs_n = 3,
		.commit = 6,
	};
	struct ox_raft_config cfg = {
		.id = 1, .election_ticks = 4, .heartbeat_ticks = 1,
		.inflight_max = 2, .seed = 7, .pre_vote = true,
		.check_quorum = true,
	};
	struct input in = { data, size };
	struct ox_raft *r;

	CHECK(ox_raft_create(&r, &cfg, &rs, 16) == 0);
	for (int ops = 0; in.n > 0 && ops < 512; ops++) {
		struct ox_raft_msg m;
		struct ox_raft_plan plan;
		uint64_t term;
		int64_t end;

		switch (take(&in) % 6) {
		case 0:
		case 1:
			take_msg(&in, &m);
			(void)ox_raft_step(r, &m, &plan);
			break;
		case 2:
			ox_raft_tick(r);
			break;
		case 3:
			end = ox_raft_last_index(r) + 1 + take(&in) % 4;
			(void)ox_raft_propose(r, end, &term);
			break;
		case 4:
			// A correct host reports what its log holds.
			end = ox_raft_last_index(r) - take(&in) % 3;
			if (ox_raft_term_at(r, end, &term) == 0)
				ox_raft_persisted(r, end, term);
			break;
		case 5:
			end = ox_raft_start_index(r) + take(&in) % 3;
			if (end <= ox_raft_commit(r) &&
			    ox_raft_term_at(r, end, &term) == 0)
				CHECK(ox_raft_log_start(r, end, term) == 0);
			break;
		}
		drain(r);
		CHECK(ox_raft_commit(r) <= ox_raft_last_index(r));
		CHECK(ox_raft_start_index(r) <= ox_raft_last_index(r));
	}
	ox_raft_destroy(r);
	return 0;
}
