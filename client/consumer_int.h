// SPDX-License-Identifier: Apache-2.0
//
// Private state of the consumer, shared by consumer.c (create, assign,
// seek, positions, commits) and consumer_fetch.c (pipelined fetches, batch
// verification and record decoding for poll).
//
// Invariants:
//   1. recs[0, recs_n) point into `cur` (the response they were decoded
//      from), into hdrs and into strs; none of the three is freed or moved
//      until every record was handed out and poll is called again, or a
//      seek or assign discards them.
//   2. A partition's fetch_node is the node whose in-flight fetch covers
//      it (-1: none); data for it is used only while position equals the
//      offset that fetch asked for (fetch_pos), so a seek voids it.
#ifndef OX_CLIENT_CONSUMER_INT_H
#define OX_CLIENT_CONSUMER_INT_H

#include "client/client_int.h"

struct cpart {
	char *topic;
	int32_t partition;
	int32_t leader;
	int64_t position;
	int64_t fetch_pos;
	int32_t fetch_node;
	int err;            // sticky until a seek: corrupt batch, no offset
};

struct fnode {
	int32_t id;
	struct ox_conn conn;
	bool inflight;
	uint64_t corr;
	int64_t deadline_ms;
	int64_t retry_after_ms;
};

struct acommit {
	uint64_t corr;
	ox_commit_cb cb;
	void *opaque;
};

struct ox_consumer {
	struct ox_client cl;
	struct cpart *parts;
	size_t parts_n;
	struct fnode *fnodes;
	size_t fnodes_n;
	bool meta_stale;
	// Records handed out by poll (invariant 1).
	struct ox_resp cur;
	int32_t cur_node;             // the node cur came from
	struct ox_consumer_record *recs;
	size_t recs_n, recs_cap, recs_idx;
	struct ox_header *hdrs;
	size_t hdrs_n, hdrs_cap;
	char *strs;
	size_t strs_len, strs_cap;
	// Asynchronous commits on their own connection.
	struct ox_conn commit_conn;
	struct acommit *acommits;
	size_t acommits_n, acommits_cap;
	struct acommit *cb_due;       // answered, callbacks not yet run
	int *cb_due_err;
	size_t cb_due_n;
};

// consumer_fetch.c
int ox_consumer_fetch_poll(struct ox_consumer *c, int timeout_ms);
void ox_consumer_drop_records(struct ox_consumer *c);
void ox_consumer_fetch_close(struct ox_consumer *c);

// consumer.c
int ox_consumer_refresh_leaders(struct ox_consumer *c);
int ox_consumer_list_offset(struct ox_consumer *c, struct cpart *p,
			    int64_t spec, int64_t *out);
int ox_consumer_reset(struct ox_consumer *c, struct cpart *p);

#endif
