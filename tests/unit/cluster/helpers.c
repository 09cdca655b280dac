// SPDX-License-Identifier: Apache-2.0
//
// Helpers of the broker/cluster unit tests (helpers.h).
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/cluster/helpers.h"

struct ox_cluster *tc_new(void)
{
	struct ox_cluster *c = NULL;

	cr_assert_eq(ox_cluster_create(&c), 0);
	cr_assert_not_null(c);
	return c;
}

int tc_apply(struct ox_cluster *c, uint8_t *entry, size_t len)
{
	struct ox_cluster_result res;
	int64_t index = ox_cluster_applied_index(c) + 2;

	int checked = ox_cluster_check(c, entry, len, NULL);
	cr_assert_eq(ox_cluster_apply(c, index, entry, len, &res), 0);
	cr_assert_eq(ox_cluster_applied_index(c), index); // C7
	// What the leader checks is what every node decides.
	cr_assert_eq(checked, res.verdict);
	free(entry);
	return res.verdict;
}

void tc_refused(struct ox_cluster *c, uint8_t *entry, size_t len,
		int verdict)
{
	struct ox_cluster *twin = tc_new();
	size_t n;
	uint8_t *snap = tc_snap(c, &n);
	uint8_t *noop;
	size_t noop_len;

	cr_assert_eq(ox_cluster_restore(twin, snap, n), 0);
	free(snap);
	cr_assert_eq(ox_cluster_entry_noop(&noop, &noop_len), 0);
	cr_assert_eq(tc_apply(twin, noop, noop_len), 0);
	int v = tc_apply(c, entry, len);
	cr_assert_eq(v, verdict, "verdict %d, expected %d", v, verdict);
	tc_same(c, twin);
	ox_cluster_destroy(twin);
}

int tc_node_at(struct ox_cluster *c, uint64_t id, const char *client,
	       const char *peer, const char *rack)
{
	struct ox_cluster_node n = {
		.id = id,
		.client_address = client,
		.peer_address = peer,
		.rack = rack,
	};
	uint8_t *e;
	size_t len;

	cr_assert_eq(ox_cluster_entry_register_node(&n, &e, &len), 0);
	return tc_apply(c, e, len);
}

int tc_node(struct ox_cluster *c, uint64_t id)
{
	char client[64], peer[64];

	snprintf(client, sizeof(client), "10.0.0.%u:7400", (unsigned)id);
	snprintf(peer, sizeof(peer), "10.0.0.%u:7401", (unsigned)id);
	return tc_node_at(c, id, client, peer, NULL);
}

int tc_topic(struct ox_cluster *c, const char *name, uint32_t partitions,
	     uint32_t rf, const uint64_t *assignment)
{
	struct ox_cluster_topic_spec spec = {
		.name = name,
		.partitions = partitions,
		.replication_factor = rf,
		.assignment = assignment,
	};
	uint8_t *e;
	size_t len;

	cr_assert_eq(ox_cluster_entry_create_topic(&spec, &e, &len), 0);
	return tc_apply(c, e, len);
}

int tc_topic_placed(struct ox_cluster *c, const char *name,
		    uint32_t partitions, uint32_t rf)
{
	uint64_t *a = calloc((size_t)partitions * rf, sizeof(*a));

	cr_assert_not_null(a);
	cr_assert_eq(ox_cluster_place(c, NULL, 0, partitions, rf, a), 0);
	int v = tc_topic(c, name, partitions, rf, a);
	free(a);
	return v;
}

int tc_delete(struct ox_cluster *c, const char *name, uint64_t id)
{
	uint8_t *e;
	size_t len;

	cr_assert_eq(ox_cluster_entry_delete_topic(name, id, &e, &len), 0);
	return tc_apply(c, e, len);
}

uint8_t *tc_snap(const struct ox_cluster *c, size_t *len)
{
	uint8_t *s = NULL;

	cr_assert_eq(ox_cluster_snapshot(c, &s, len), 0);
	cr_assert_not_null(s);
	return s;
}

void tc_same(const struct ox_cluster *a, const struct ox_cluster *b)
{
	size_t na, nb;
	uint8_t *sa = tc_snap(a, &na), *sb = tc_snap(b, &nb);

	cr_assert_eq(na, nb, "snapshots of %zu and %zu bytes (C1)", na, nb);
	cr_assert_eq(memcmp(sa, sb, na), 0, "snapshots differ (C1)");
	free(sa);
	free(sb);
}

void tc_unchanged(const struct ox_cluster *c, const uint8_t *snap,
		  size_t len)
{
	size_t n;
	uint8_t *s = tc_snap(c, &n);

	cr_assert_eq(n, len);
	cr_assert_eq(memcmp(s, snap, n), 0, "the state changed");
	free(s);
}
