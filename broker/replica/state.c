// SPDX-License-Identifier: Apache-2.0
//
// The hard state file of a replica (replica.h describes the format):
// reading it at open and replacing it, durably, whenever Raft's hard
// state changes (invariant P1). Synchronous on purpose: it changes only on
// elections, votes, membership changes and log-start moves.
#include "broker/replica/replica_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "broker/io/file.h"
#include "proto/assert.h"
#include "proto/error.h"
#include "proto/raft.pb-c.h"

#define MAGIC "OXRS"
// A hard state is a few dozen bytes; anything larger is not ours.
#define STATE_BYTES_MAX 4096u

static void conf_to_pb(const struct ox_raft_conf *c, Oxbow__RaftConf *pb,
		       uint64_t *voters, uint64_t *learners)
{
	oxbow__raft_conf__init(pb);
	memcpy(voters, c->voters, c->voters_n * sizeof(*voters));
	memcpy(learners, c->learners, c->learners_n * sizeof(*learners));
	pb->n_voters = c->voters_n;
	pb->voters = voters;
	pb->n_learners = c->learners_n;
	pb->learners = learners;
}

static int conf_from_pb(const Oxbow__RaftConf *pb, struct ox_raft_conf *c)
{
	memset(c, 0, sizeof(*c));
	if (pb == NULL)
		return 0; // none (conf_prev of a fresh group)
	if (pb->n_voters > OX_RAFT_NODES_MAX ||
	    pb->n_learners > OX_RAFT_NODES_MAX)
		return -OX_ECORRUPT;
	c->voters_n = (uint32_t)pb->n_voters;
	c->learners_n = (uint32_t)pb->n_learners;
	memcpy(c->voters, pb->voters, pb->n_voters * sizeof(uint64_t));
	memcpy(c->learners, pb->learners, pb->n_learners * sizeof(uint64_t));
	return 0;
}

// The file's payload: the RaftHardState protobuf.
static int decode(const uint8_t *buf, size_t len, struct replica_state *st)
{
	Oxbow__RaftHardState *pb;
	int rc;

	pb = oxbow__raft_hard_state__unpack(NULL, len, buf);
	if (pb == NULL)
		return -OX_ECORRUPT;
	memset(st, 0, sizeof(*st));
	st->hard.term = pb->term;
	st->hard.vote = pb->vote;
	st->hard.rejoining = pb->rejoining;
	st->hard.conf_index = pb->conf_index;
	st->log_start = pb->log_start;
	st->log_start_term = pb->log_start_term;
	rc = conf_from_pb(pb->conf, &st->hard.conf);
	if (rc == 0)
		rc = conf_from_pb(pb->conf_prev, &st->hard.conf_prev);
	oxbow__raft_hard_state__free_unpacked(pb, NULL);
	if (rc == 0 && (st->hard.conf.voters_n == 0 || st->log_start < 0 ||
			st->hard.conf_index < 0 ||
			st->hard.rejoining > OX_RAFT_REJOIN_BEHIND))
		rc = -OX_ECORRUPT;
	return rc;
}

int ox_replica_state_read(const char *path, struct replica_state *st)
{
	uint8_t *buf;
	size_t n;
	int rc;

	rc = ox_file_read_sealed(path, MAGIC, STATE_BYTES_MAX, &buf, &n);
	if (rc < 0)
		return rc; // -ENOENT: a new replica
	rc = decode(buf, n, st);
	free(buf);
	return rc;
}

int ox_replica_state_write(const char *path, const struct replica_state *st)
{
	uint64_t v[OX_RAFT_NODES_MAX], l[OX_RAFT_NODES_MAX];
	uint64_t pv[OX_RAFT_NODES_MAX], pl[OX_RAFT_NODES_MAX];
	Oxbow__RaftConf conf, prev;
	Oxbow__RaftHardState pb;
	uint8_t buf[STATE_BYTES_MAX];
	size_t len;

	oxbow__raft_hard_state__init(&pb);
	conf_to_pb(&st->hard.conf, &conf, v, l);
	conf_to_pb(&st->hard.conf_prev, &prev, pv, pl);
	pb.term = st->hard.term;
	pb.vote = st->hard.vote;
	pb.rejoining = st->hard.rejoining;
	pb.conf = &conf;
	pb.conf_index = st->hard.conf_index;
	pb.conf_prev = &prev;
	pb.log_start = st->log_start;
	pb.log_start_term = st->log_start_term;
	len = oxbow__raft_hard_state__get_packed_size(&pb);
	OX_ASSERT(len <= sizeof(buf));
	OX_ASSERT(oxbow__raft_hard_state__pack(&pb, buf) == len);
	return ox_file_replace_sealed(path, MAGIC, buf, len);
}

int ox_replica_conf_encode(const struct ox_raft_conf *c, uint8_t *buf,
			   size_t cap)
{
	uint64_t v[OX_RAFT_NODES_MAX], l[OX_RAFT_NODES_MAX];
	Oxbow__RaftConf pb;
	size_t len;

	conf_to_pb(c, &pb, v, l);
	len = oxbow__raft_conf__get_packed_size(&pb);
	if (len > cap)
		return -ENOSPC;
	return (int)oxbow__raft_conf__pack(&pb, buf);
}

int ox_replica_conf_decode(const uint8_t *buf, size_t len,
			   struct ox_raft_conf *c)
{
	Oxbow__RaftConf *pb = oxbow__raft_conf__unpack(NULL, len, buf);
	int rc;

	if (pb == NULL)
		return -OX_ECORRUPT;
	rc = conf_from_pb(pb, c);
	oxbow__raft_conf__free_unpacked(pb, NULL);
	if (rc == 0 && c->voters_n == 0)
		rc = -OX_ECORRUPT;
	return rc;
}
