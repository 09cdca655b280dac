// SPDX-License-Identifier: Apache-2.0
//
// Unit tests of broker/cluster as a whole state: placement (spread and
// leader balance), determinism over random entry sequences with invalid
// entries among them (C1), snapshots and their restore, and allocation
// failures at every point of apply, snapshot and restore (C2).
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/cluster/cluster.h"
#include "broker/cluster/cluster_int.h"
#include "proto/error.h"
#include "proto/meta.pb-c.h"
#include "tests/unit/cluster/helpers.h"

static void counts(const struct ox_cluster *c, uint32_t nodes,
		   uint32_t *rmin, uint32_t *rmax, uint32_t *lmin,
		   uint32_t *lmax)
{
	*rmin = *lmin = UINT32_MAX;
	*rmax = *lmax = 0;
	for (uint64_t id = 1; id <= nodes; id++) {
		uint32_t r = ox_cluster_node_replicas(c, id);
		uint32_t l = ox_cluster_node_leaders(c, id);
		*rmin = r < *rmin ? r : *rmin;
		*rmax = r > *rmax ? r : *rmax;
		*lmin = l < *lmin ? l : *lmin;
		*lmax = l > *lmax ? l : *lmax;
	}
}

Test(placement, three_nodes_rf3_balance_replicas_and_leaders)
{
	struct ox_cluster *c = tc_new();
	struct ox_cluster_partition p;

	for (uint64_t id = 1; id <= 3; id++)
		cr_assert_eq(tc_node(c, id), 0);
	cr_assert_eq(tc_topic_placed(c, "t", 30, 3), 0);
	for (uint64_t id = 1; id <= 3; id++) {
		cr_assert_eq(ox_cluster_node_replicas(c, id), 30);
		cr_assert_eq(ox_cluster_node_leaders(c, id), 10);
	}
	for (uint32_t i = 0; i < 30; i++) {
		cr_assert_eq(ox_cluster_partition_get(c, 1, i, &p), 0);
		cr_assert_neq(p.replicas[0], p.replicas[1]);
		cr_assert_neq(p.replicas[0], p.replicas[2]);
		cr_assert_neq(p.replicas[1], p.replicas[2]);
	}
	ox_cluster_destroy(c);
}

Test(placement, five_nodes_spread_within_one)
{
	uint32_t rmin, rmax, lmin, lmax;

	for (uint32_t parts = 1; parts <= 40; parts++) {
		struct ox_cluster *c = tc_new();
		for (uint64_t id = 1; id <= 5; id++)
			cr_assert_eq(tc_node(c, id), 0);
		cr_assert_eq(tc_topic_placed(c, "t", parts, 3), 0);
		counts(c, 5, &rmin, &rmax, &lmin, &lmax);
		cr_assert_leq(rmax - rmin, 1, "%u partitions: replicas %u..%u",
			      parts, rmin, rmax);
		cr_assert_leq(lmax - lmin, 1, "%u partitions: leaders %u..%u",
			      parts, lmin, lmax);
		ox_cluster_destroy(c);
	}
}

// Every cluster size up to nine, every replication factor, one topic of
// 1..60 partitions: replicas and leaderships within one of even.
Test(placement, spread_and_leaders_for_every_shape)
{
	uint32_t rmin, rmax, lmin, lmax;

	for (uint32_t nodes = 1; nodes <= 9; nodes++) {
		for (uint32_t rf = 1; rf <= 5 && rf <= nodes; rf += 2) {
			for (uint32_t parts = 1; parts <= 60; parts++) {
				struct ox_cluster *c = tc_new();
				for (uint64_t id = 1; id <= nodes; id++)
					cr_assert_eq(tc_node(c, id), 0);
				cr_assert_eq(tc_topic_placed(c, "t", parts, rf),
					     0);
				counts(c, nodes, &rmin, &rmax, &lmin, &lmax);
				cr_assert_leq(rmax - rmin, 1, "%u/%u/%u", nodes,
					      rf, parts);
				cr_assert_leq(lmax - lmin, 1, "%u/%u/%u", nodes,
					      rf, parts);
				ox_cluster_destroy(c);
			}
		}
	}
}

Test(placement, later_topics_balance_against_earlier_ones)
{
	struct ox_cluster *c = tc_new();
	uint32_t rmin, rmax, lmin, lmax;
	char name[16];

	for (uint64_t id = 1; id <= 4; id++)
		cr_assert_eq(tc_node(c, id), 0);
	// Many one-partition topics: without counting the state, node 1
	// would get every replica.
	for (int i = 0; i < 12; i++) {
		snprintf(name, sizeof(name), "t%d", i);
		cr_assert_eq(tc_topic_placed(c, name, 1, 1), 0);
	}
	counts(c, 4, &rmin, &rmax, &lmin, &lmax);
	cr_assert_eq(rmin, 3);
	cr_assert_eq(rmax, 3);
	// A node added later takes the next replicas.
	cr_assert_eq(tc_node(c, 5), 0);
	uint64_t out[3];
	cr_assert_eq(ox_cluster_place(c, NULL, 0, 1, 3, out), 0);
	cr_assert_eq(out[0], 5);
	ox_cluster_destroy(c);
}

Test(placement, live_subset_and_refusals)
{
	struct ox_cluster *c = tc_new();
	uint64_t out[15];

	for (uint64_t id = 1; id <= 5; id++)
		cr_assert_eq(tc_node(c, id), 0);
	const uint64_t live[] = { 2, 4, 5 };
	cr_assert_eq(ox_cluster_place(c, live, 3, 5, 3, out), 0);
	for (int i = 0; i < 15; i++)
		cr_assert(out[i] == 2 || out[i] == 4 || out[i] == 5);
	// RF 2 and 4 are refused; so are 0 and 7.
	cr_assert_eq(ox_cluster_place(c, NULL, 0, 1, 2, out), -EINVAL);
	cr_assert_eq(ox_cluster_place(c, NULL, 0, 1, 4, out), -EINVAL);
	cr_assert_eq(ox_cluster_place(c, NULL, 0, 1, 0, out), -EINVAL);
	cr_assert_eq(ox_cluster_place(c, NULL, 0, 1, 7, out), -EINVAL);
	// More replicas than live nodes.
	cr_assert_eq(ox_cluster_place(c, live, 3, 1, 5, out), -EINVAL);
	cr_assert_eq(ox_cluster_place(c, NULL, 0, 1, 5, out), 0);
	// Unknown or repeated live nodes; no partitions; too many.
	cr_assert_eq(ox_cluster_place(c, (const uint64_t[]){ 1, 9, 2 }, 3, 1, 1,
				      out), -EINVAL);
	cr_assert_eq(ox_cluster_place(c, (const uint64_t[]){ 1, 1, 2 }, 3, 1, 3,
				      out), -EINVAL);
	cr_assert_eq(ox_cluster_place(c, NULL, 0, 0, 1, out), -EINVAL);
	cr_assert_eq(ox_cluster_place(c, NULL, 0,
				      OX_CLUSTER_TOPIC_PARTITIONS_MAX + 1, 1,
				      out), -EINVAL);
	ox_cluster_destroy(c);
	// No nodes at all.
	c = tc_new();
	cr_assert_eq(ox_cluster_place(c, NULL, 0, 1, 1, out), -EINVAL);
	ox_cluster_destroy(c);
}

// ---- Random entry sequences ---------------------------------------------

static uint64_t rng_next(uint64_t *s)
{
	// xorshift64*
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ull;
}

static uint32_t pick(uint64_t *s, uint32_t n)
{
	return (uint32_t)(rng_next(s) % n);
}

static const char *const names[] = { "a", "b", "c", "d", "__offsets", "..",
				     "e" };
static const char *const keys[] = { "retention.ms", "segment.bytes",
				    "cleanup.policy", "Bad" };
static const char *const values[] = { "1", "compact", "", "60000" };

static void random_ids(uint64_t *s, uint64_t *ids, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		ids[i] = pick(s, 10); // 0 and 9: never registered
}

// One random entry: mostly sensible, often invalid. malloc'd.
static uint8_t *random_entry(uint64_t *s, size_t *len)
{
	uint8_t *e = NULL;
	uint64_t ids[4 * 5];
	char client[32], peer[32];
	const char *name = names[pick(s, 7)];
	uint32_t rfs[] = { 1, 3, 3, 5, 2 };
	uint32_t rf = rfs[pick(s, 5)], parts = 1 + pick(s, 4);
	struct ox_cluster_kv kv[2] = {
		{ keys[pick(s, 4)], values[pick(s, 4)] },
		{ keys[pick(s, 4)], values[pick(s, 4)] },
	};
	const char *reset[1] = { keys[pick(s, 4)] };

	random_ids(s, ids, parts * rf);
	switch (pick(s, 10)) {
	case 0: {
		uint64_t id = pick(s, 9);
		snprintf(client, sizeof(client), "h%u:7400", pick(s, 9));
		snprintf(peer, sizeof(peer), "h%u:7401", (unsigned)id);
		struct ox_cluster_node n = { .id = id, .client_address = client,
			.peer_address = peer, .rack = pick(s, 2) ? "r1" : NULL };
		cr_assert_eq(ox_cluster_entry_register_node(&n, &e, len), 0);
		break;
	}
	case 1:
	case 2: {
		struct ox_cluster_topic_spec spec = { .name = name,
			.partitions = parts, .replication_factor = rf,
			.configs = kv, .configs_n = pick(s, 3),
			.assignment = ids };
		cr_assert_eq(ox_cluster_entry_create_topic(&spec, &e, len), 0);
		break;
	}
	case 3:
		cr_assert_eq(ox_cluster_entry_delete_topic(name, pick(s, 4),
							   &e, len), 0);
		break;
	case 4:
		cr_assert_eq(ox_cluster_entry_alter_configs(name, kv,
			pick(s, 3), reset, pick(s, 2), &e, len), 0);
		break;
	case 5:
		cr_assert_eq(ox_cluster_entry_add_partitions(name, parts, rf,
							     ids, &e, len), 0);
		break;
	case 6:
		cr_assert_eq(ox_cluster_entry_reassign_partition(name,
			pick(s, 5), ids, rf, &e, len), 0);
		break;
	case 7:
		if (pick(s, 2))
			cr_assert_eq(ox_cluster_entry_noop(&e, len), 0);
		else
			cr_assert_eq(ox_cluster_entry_partition_moved(name,
				pick(s, 4), pick(s, 5), pick(s, 3), &e, len),
				0);
		break;
	default:
		// Random bytes, or a valid entry cut short.
		*len = pick(s, 24);
		e = malloc(*len + 1);
		cr_assert_not_null(e);
		for (size_t i = 0; i < *len; i++)
			e[i] = (uint8_t)rng_next(s);
		break;
	}
	return e;
}

// Applies the same n random entries (from seed) to every state given.
static void apply_random(struct ox_cluster **cs, int cs_n, uint64_t seed,
			 int n, int *applied)
{
	for (int i = 0; i < n; i++) {
		size_t len;
		uint8_t *e = random_entry(&seed, &len);
		int verdict = 1;
		for (int k = 0; k < cs_n; k++) {
			struct ox_cluster_result res;
			int64_t index = ox_cluster_applied_index(cs[k]) + 1;
			cr_assert_eq(ox_cluster_apply(cs[k], index, e, len,
						      &res), 0);
			if (k > 0)
				cr_assert_eq(res.verdict, verdict);
			verdict = res.verdict;
		}
		*applied += verdict == 0;
		free(e);
	}
}

static void same_counts(const struct ox_cluster *a, const struct ox_cluster *b)
{
	for (uint64_t id = 0; id < 10; id++) {
		cr_assert_eq(ox_cluster_node_replicas(a, id),
			     ox_cluster_node_replicas(b, id));
		cr_assert_eq(ox_cluster_node_leaders(a, id),
			     ox_cluster_node_leaders(b, id));
	}
	cr_assert_eq(ox_cluster_partitions_total(a),
		     ox_cluster_partitions_total(b));
}

Test(determinism, random_sequences_give_identical_snapshots)
{
	for (uint64_t seed = 1; seed <= 40; seed++) {
		struct ox_cluster *a = tc_new(), *b = tc_new(), *r = tc_new();
		struct ox_cluster *ab[] = { a, b };
		int applied = 0;

		apply_random(ab, 2, seed * 0x9e3779b97f4a7c15ull, 300, &applied);
		tc_same(a, b); // C1
		// Restore a's snapshot into a third state: same bytes, same
		// derived counts.
		size_t n;
		uint8_t *snap = tc_snap(a, &n);
		cr_assert_eq(ox_cluster_restore(r, snap, n), 0);
		free(snap);
		tc_same(a, r);
		same_counts(a, r);
		cr_assert_eq(ox_cluster_applied_index(r),
			     ox_cluster_applied_index(a));
		// And all three stay equal under the same entries.
		struct ox_cluster *abr[] = { a, b, r };
		apply_random(abr, 3, seed * 31 + 7, 300, &applied);
		tc_same(a, b);
		tc_same(a, r);
		same_counts(a, r);
		cr_assert_gt(applied, 20, "seed %llu applied too few entries",
			     (unsigned long long)seed);
		ox_cluster_destroy(a);
		ox_cluster_destroy(b);
		ox_cluster_destroy(r);
	}
}

// ---- Snapshots ----------------------------------------------------------

Test(snapshot, restore_replaces_the_state)
{
	struct ox_cluster *a = tc_new(), *b = tc_new();
	struct ox_cluster_topic t;
	size_t n;

	for (uint64_t id = 1; id <= 3; id++)
		cr_assert_eq(tc_node(a, id), 0);
	cr_assert_eq(tc_topic_placed(a, "x", 6, 3), 0);
	cr_assert_eq(tc_node(b, 7), 0);
	cr_assert_eq(tc_topic_placed(b, "y", 1, 1), 0);
	uint8_t *snap = tc_snap(a, &n);
	cr_assert_eq(ox_cluster_restore(b, snap, n), 0);
	free(snap);
	tc_same(a, b);
	cr_assert_eq(ox_cluster_topic_by_name(b, "y", &t), -OX_EUNKNOWN_TOPIC);
	cr_assert_eq(ox_cluster_node_replicas(b, 7), 0);
	cr_assert_eq(ox_cluster_node_replicas(b, 2), 6);
	// The counter came along: the next topic gets id 2 on both (C3).
	cr_assert_eq(tc_topic_placed(a, "z", 1, 1), 0);
	cr_assert_eq(tc_topic_placed(b, "z", 1, 1), 0);
	cr_assert_eq(ox_cluster_topic_by_name(b, "z", &t), 0);
	cr_assert_eq(t.id, 2);
	tc_same(a, b);
	// An empty state round-trips too.
	struct ox_cluster *e = tc_new(), *f = tc_new();
	snap = tc_snap(e, &n);
	cr_assert_eq(ox_cluster_restore(f, snap, n), 0);
	free(snap);
	tc_same(e, f);
	ox_cluster_destroy(e);
	ox_cluster_destroy(f);
	ox_cluster_destroy(a);
	ox_cluster_destroy(b);
}

static uint8_t *pack_snap(const Oxbow__MetaSnapshot *s, size_t *len)
{
	*len = oxbow__meta_snapshot__get_packed_size(s);
	uint8_t *b = malloc(*len + 1);
	cr_assert_not_null(b);
	cr_assert_eq(oxbow__meta_snapshot__pack(s, b), *len);
	return b;
}

// Restores a snapshot that must fail with rc, and checks c kept its state.
static void restore_fails(struct ox_cluster *c, uint8_t *snap, size_t len,
			  int rc)
{
	size_t n;
	uint8_t *before = tc_snap(c, &n);

	cr_assert_eq(ox_cluster_restore(c, snap, len), rc);
	tc_unchanged(c, before, n);
	free(before);
	free(snap);
}

Test(snapshot, damaged_snapshots_are_refused)
{
	struct ox_cluster *c = tc_new();
	size_t len;

	cr_assert_eq(tc_node(c, 1), 0);
	cr_assert_eq(tc_topic_placed(c, "keep", 2, 1), 0);
	uint8_t *junk = malloc(3);
	memcpy(junk, "\xff\x01\x02", 3);
	restore_fails(c, junk, 3, -OX_ECORRUPT);

	Oxbow__MetaSnapshot s = OXBOW__META_SNAPSHOT__INIT;
	s.version = 2;
	s.next_topic_id = 1;
	{
		uint8_t *b = pack_snap(&s, &len);
		restore_fails(c, b, len, -OX_EUNSUPPORTED);
	}

	// A topic whose replica is not a registered node (C5), then a
	// topic id at or past the counter (C3), then two nodes out of order.
	Oxbow__MetaNode node = OXBOW__META_NODE__INIT, node2;
	Oxbow__MetaNode *nodes[2] = { &node, &node2 };
	Oxbow__MetaTopic topic = OXBOW__META_TOPIC__INIT;
	Oxbow__MetaTopic *topics[1] = { &topic };
	Oxbow__MetaPartition part = OXBOW__META_PARTITION__INIT;
	Oxbow__MetaPartition *parts[1] = { &part };
	uint64_t replica = 2;
	node.id = 1;
	node.client_address = "a:1";
	node.peer_address = "a:2";
	node2 = node;
	node2.client_address = "b:1";
	node2.peer_address = "b:2";
	part.replicas = &replica;
	part.n_replicas = 1;
	topic.name = "t";
	topic.id = 1;
	topic.replication_factor = 1;
	topic.created_index = 1;
	topic.partitions = parts;
	topic.n_partitions = 1;
	s.version = 1;
	s.index = 5;
	s.next_topic_id = 2;
	s.nodes = nodes;
	s.n_nodes = 1;
	s.topics = topics;
	s.n_topics = 1;
	{
		uint8_t *b = pack_snap(&s, &len);
		restore_fails(c, b, len, -OX_ECORRUPT);
	}
	replica = 1;
	s.next_topic_id = 1;
	{
		uint8_t *b = pack_snap(&s, &len);
		restore_fails(c, b, len, -OX_ECORRUPT);
	}
	s.next_topic_id = 2;
	s.n_nodes = 2; // node2 has id 1 too
	{
		uint8_t *b = pack_snap(&s, &len);
		restore_fails(c, b, len, -OX_ECORRUPT);
	}
	// With those fixed, the same snapshot restores.
	node2.id = 2;
	uint8_t *good = pack_snap(&s, &len);
	cr_assert_eq(ox_cluster_restore(c, good, len), 0);
	free(good);
	cr_assert_eq(ox_cluster_topics_n(c), 1);
	cr_assert_eq(ox_cluster_applied_index(c), 5);
	ox_cluster_destroy(c);
}

// ---- Allocation failures (C2) -------------------------------------------

// Builds a state with some of everything, for the failure tests.
static struct ox_cluster *busy_state(void)
{
	struct ox_cluster *c = tc_new();
	const struct ox_cluster_kv kv[] = { { "retention.ms", "1000" } };
	uint8_t *e;
	size_t len;

	for (uint64_t id = 1; id <= 3; id++)
		cr_assert_eq(tc_node(c, id), 0);
	cr_assert_eq(tc_topic_placed(c, "a", 4, 3), 0);
	cr_assert_eq(tc_topic_placed(c, "b", 2, 1), 0);
	cr_assert_eq(ox_cluster_entry_alter_configs("a", kv, 1, NULL, 0, &e,
						    &len), 0);
	cr_assert_eq(tc_apply(c, e, len), 0);
	return c;
}

static void entries_for_failures(uint8_t **es, size_t *lens, int *n)
{
	const struct ox_cluster_kv kv[] = { { "segment.bytes", "4096" } };
	const char *reset[] = { "retention.ms" };
	const uint64_t three[] = { 3, 1, 2 };
	struct ox_cluster_topic_spec spec = { .name = "c", .partitions = 1,
		.replication_factor = 3, .configs = kv, .configs_n = 1,
		.assignment = three };
	struct ox_cluster_node node = { .id = 4, .client_address = "d:1",
		.peer_address = "d:2" };

	*n = 0;
	cr_assert_eq(ox_cluster_entry_create_topic(&spec, &es[*n], &lens[*n]),
		     0);
	(*n)++;
	cr_assert_eq(ox_cluster_entry_alter_configs("a", kv, 1, reset, 1,
		     &es[*n], &lens[*n]), 0);
	(*n)++;
	cr_assert_eq(ox_cluster_entry_add_partitions("a", 1, 3, three, &es[*n],
						     &lens[*n]), 0);
	(*n)++;
	cr_assert_eq(ox_cluster_entry_reassign_partition("a", 0, three, 3,
		     &es[*n], &lens[*n]), 0);
	(*n)++;
	cr_assert_eq(ox_cluster_entry_register_node(&node, &es[*n], &lens[*n]),
		     0);
	(*n)++;
	cr_assert_eq(ox_cluster_entry_delete_topic("b", 0, &es[*n], &lens[*n]),
		     0);
	(*n)++;
}

Test(failure, apply_fails_whole_or_not_at_all)
{
	struct ox_cluster *c = busy_state(), *ref = busy_state();
	uint8_t *es[8];
	size_t lens[8];
	int n, failures = 0;

	entries_for_failures(es, lens, &n);
	for (int i = 0; i < n; i++) {
		int64_t index = ox_cluster_applied_index(c) + 1;
		size_t before_n;
		uint8_t *before = tc_snap(c, &before_n);
		for (long k = 0;; k++) {
			struct ox_cluster_result res;
			cluster_alloc_fail_after = k;
			int rc = ox_cluster_check(c, es[i], lens[i], NULL);
			cr_assert(rc == 0 || rc == -ENOMEM);
			cluster_alloc_fail_after = k;
			rc = ox_cluster_apply(c, index, es[i], lens[i], &res);
			cluster_alloc_fail_after = -1;
			if (rc == 0) {
				cr_assert_eq(res.verdict, 0, "entry %d", i);
				break;
			}
			cr_assert_eq(rc, -ENOMEM);
			failures++;
			tc_unchanged(c, before, before_n); // C2
			cr_assert_lt(k, 1000);
		}
		free(before);
		cr_assert_eq(ox_cluster_apply(ref, index, es[i], lens[i], NULL),
			     0);
		tc_same(c, ref);
		same_counts(c, ref);
		free(es[i]);
	}
	cr_assert_gt(failures, n); // every entry allocates at least once
	ox_cluster_destroy(c);
	ox_cluster_destroy(ref);
}

Test(failure, snapshot_restore_and_create_fail_cleanly)
{
	struct ox_cluster *c = busy_state(), *r = busy_state(), *x = NULL;
	uint8_t *snap = NULL;
	size_t n;
	long k;

	for (k = 0;; k++) {
		cluster_alloc_fail_after = k;
		int rc = ox_cluster_snapshot(c, &snap, &n);
		cluster_alloc_fail_after = -1;
		if (rc == 0)
			break;
		cr_assert_eq(rc, -ENOMEM);
	}
	cr_assert_gt(k, 0);
	// r holds a different state; every failed restore leaves it as is.
	uint8_t *noop;
	size_t noop_len;
	cr_assert_eq(ox_cluster_entry_noop(&noop, &noop_len), 0);
	cr_assert_eq(tc_apply(r, noop, noop_len), 0);
	size_t rn;
	uint8_t *rsnap = tc_snap(r, &rn);
	for (k = 0;; k++) {
		cluster_alloc_fail_after = k;
		int rc = ox_cluster_restore(r, snap, n);
		cluster_alloc_fail_after = -1;
		if (rc == 0)
			break;
		cr_assert_eq(rc, -ENOMEM);
		tc_unchanged(r, rsnap, rn);
	}
	cr_assert_gt(k, 1);
	tc_same(c, r);
	for (k = 0;; k++) {
		cluster_alloc_fail_after = k;
		int rc = ox_cluster_create(&x);
		cluster_alloc_fail_after = -1;
		if (rc == 0)
			break;
		cr_assert_eq(rc, -ENOMEM);
	}
	ox_cluster_destroy(x);
	free(snap);
	free(rsnap);
	ox_cluster_destroy(c);
	ox_cluster_destroy(r);
}
