// SPDX-License-Identifier: Apache-2.0
//
// Replicas read offline and checked against the ledger (replicas.h).
#include "tests/integration/replicas.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "tests/integration/log_digest.h"

// Reported one by one, at most, per kind of failure.
#define REPORT_MAX 5

// What the offline scan of one replica found.
struct scan {
	int node;
	int part;
	size_t sent;
	bc_record_ok ok;
	void *arg;
	size_t records, bad, dups;
	uint8_t *seen; // per record index: 1 stored, 2 stored where acked
};

static void scan_record(void *arg, const struct ld_batch *b,
			const struct ox_record *r)
{
	struct scan *s = arg;
	int64_t i = r->value_len < 8 ? -1 :
		    bc_value_check(r->value, (size_t)r->value_len);

	s->records++;
	if (i < 0 || (size_t)i >= s->sent || r->key_len < 0 ||
	    !s->ok(s->arg, i, r->key, (size_t)r->key_len,
		   (size_t)r->value_len)) {
		if (s->bad++ < REPORT_MAX)
			CHECK(0, "node %d partition %d: the record at %" PRId64
			      " (batch %" PRId64 "..%" PRId64 ", term %" PRIu64
			      ") is not one that was sent, or is damaged",
			      s->node, s->part, r->offset, b->base, b->last,
			      b->term);
		return;
	}
	if (s->seen[i]) {
		if (s->dups++ < REPORT_MAX)
			CHECK(0, "node %d partition %d: record %" PRId64
			      " stored twice in one log (again at %" PRId64
			      ", term %" PRIu64 ")", s->node, s->part, i,
			      r->offset, b->term);
		return;
	}
	s->seen[i] = atomic_load(&bc_led.state[i]) == BC_ACKED &&
				     bc_led.acked_part[i] == s->part &&
				     bc_led.acked_off[i] == r->offset ?
			     2 : 1;
}

// Reads partition q of node `node` (b) offline into *log and checks it.
static void replica_read(const struct bc_broker *b, int node, int q,
			 struct scan *s, struct ld_log *log)
{
	char dir[LD_PATH_MAX], pdir[LD_PATH_MAX + 16];
	size_t missing = 0;

	s->node = node;
	s->part = q;
	s->records = s->bad = s->dups = 0;
	memset(s->seen, 0, s->sent ? s->sent : 1);
	memset(log, 0, sizeof(*log));
	int rc = ld_cluster_topic_dir(b->data_dir, dir, sizeof(dir));
	if (rc == 0) {
		snprintf(pdir, sizeof(pdir), "%s/%d", dir, q);
		rc = ld_log_read(pdir, scan_record, s, log);
	}
	CHECK(rc == 0, "node %d partition %d: the log under %s cannot be read "
	      "offline: %s", node, q, b->data_dir, ox_strerror(rc));
	if (rc < 0)
		return;
	for (size_t i = 0; i < s->sent; i++) {
		if (atomic_load(&bc_led.state[i]) != BC_ACKED ||
		    bc_led.acked_part[i] != q || s->seen[i] == 2)
			continue;
		if (missing++ < REPORT_MAX)
			CHECK(0, "node %d partition %d: record %zu, "
			      "acknowledged at %" PRId64 ", is %s", node, q, i,
			      bc_led.acked_off[i],
			      s->seen[i] ? "elsewhere in the log" : "missing");
	}
	printf("node %d partition %d: %zu batches, offsets %" PRId64 "..%"
	       PRId64 ", %zu records (%zu not sent or damaged, %zu twice), "
	       "%zu acknowledged records missing\n", node, q, log->n,
	       log->start, log->end, s->records, s->bad, s->dups, missing);
	CHECK(s->bad == 0 && s->dups == 0 && missing == 0,
	      "node %d partition %d: its log is not what was acknowledged",
	      node, q);
}

void bc_check_replicas(const char *what, const struct bc_broker *nodes, int n,
		       int partitions, const int64_t *end, size_t sent,
		       bc_record_ok ok, void *arg)
{
	struct scan s = { .sent = sent, .ok = ok, .arg = arg };

	if (n < 1 || n > BC_CLUSTER_MAX)
		bc_dief("%d replicas to check", n);
	s.seen = malloc(sent ? sent : 1);
	if (s.seen == NULL)
		bc_die("malloc", -ENOMEM);
	for (int q = 0; q < partitions; q++) {
		struct ld_log logs[BC_CLUSTER_MAX];
		char why[512];

		for (int i = 0; i < n; i++)
			replica_read(&nodes[i], i + 1, q, &s, &logs[i]);
		int64_t agree = ld_logs_agree(logs, (size_t)n, why,
					      sizeof(why));
		printf("%s: partition %d: replicas agree up to %" PRId64
		       " (high watermark %" PRId64 ")\n", what, q, agree,
		       end[q]);
		CHECK(agree >= 0, "%s: partition %d: replicas differ: %s (logs "
		      "are node 1..%d)", what, q, why, n);
		CHECK(agree < 0 || agree >= end[q], "%s: partition %d: the "
		      "replicas agree only up to %" PRId64 ", below the high "
		      "watermark %" PRId64, what, q, agree, end[q]);
		for (int i = 1; i < n; i++)
			CHECK(logs[i].start == logs[0].start, "%s: partition "
			      "%d: node %d's log starts at %" PRId64 ", node "
			      "1's at %" PRId64, what, q, i + 1, logs[i].start,
			      logs[0].start);
		for (int i = 0; i < n; i++)
			ld_log_free(&logs[i]);
	}
	free(s.seen);
}
