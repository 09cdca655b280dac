// SPDX-License-Identifier: Apache-2.0
//
// The hard state file of a replica (replica.h describes the format):
// reading it at open and replacing it, durably, whenever Raft's hard
// state changes (invariant P1). Synchronous on purpose: it changes only on
// elections, votes, membership changes and log-start moves.
#include "broker/replica/replica_int.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

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

int ox_replica_state_read(const char *path, struct replica_state *st)
{
	uint8_t buf[STATE_BYTES_MAX];
	ssize_t n;
	uint32_t len;
	uint64_t sum;
	Oxbow__RaftHardState *pb;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno; // -ENOENT: a new replica
	n = read(fd, buf, sizeof(buf));
	rc = n < 0 ? -errno : 0;
	close(fd);
	if (rc < 0)
		return rc;
	if (n < 16 || memcmp(buf, MAGIC, 4) != 0)
		return -OX_ECORRUPT;
	memcpy(&len, buf + 4, 4);
	if ((size_t)len + 16 != (size_t)n)
		return -OX_ECORRUPT;
	memcpy(&sum, buf + 8 + len, 8);
	if (XXH3_64bits(buf + 8, len) != sum)
		return -OX_ECORRUPT;
	pb = oxbow__raft_hard_state__unpack(NULL, len, buf + 8);
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

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int fsync_dir_of(const char *path)
{
	char copy[PATH_MAX];
	int fd, rc = 0;

	if (strlen(path) >= sizeof(copy))
		return -ENAMETOOLONG;
	strcpy(copy, path);
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

int ox_replica_state_write(const char *path, const struct replica_state *st)
{
	uint64_t v[OX_RAFT_NODES_MAX], l[OX_RAFT_NODES_MAX];
	uint64_t pv[OX_RAFT_NODES_MAX], pl[OX_RAFT_NODES_MAX];
	Oxbow__RaftConf conf, prev;
	Oxbow__RaftHardState pb;
	uint8_t buf[STATE_BYTES_MAX];
	char tmp[PATH_MAX];
	size_t len;
	uint32_t len32;
	uint64_t sum;
	int fd, rc;

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
	OX_ASSERT(len + 16 <= sizeof(buf));
	memcpy(buf, MAGIC, 4);
	len32 = (uint32_t)len;
	memcpy(buf + 4, &len32, 4);
	OX_ASSERT(oxbow__raft_hard_state__pack(&pb, buf + 8) == len);
	sum = XXH3_64bits(buf + 8, len);
	memcpy(buf + 8 + len, &sum, 8);

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	rc = write_all(fd, buf, len + 16);
	if (rc == 0 && fdatasync(fd) < 0)
		rc = -errno;
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp, path) < 0)
		rc = -errno;
	if (rc == 0)
		rc = fsync_dir_of(path);
	if (rc < 0)
		unlink(tmp);
	return rc;
}
