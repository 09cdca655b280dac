// SPDX-License-Identifier: Apache-2.0
//
// Unit tests of broker/cluster: entries applied in sequence and the state
// they leave (nodes, topics, ids, assignments, configs), entries refused
// as no-ops with their verdicts, the bounds of C6, and the name rule.
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/cluster/cluster.h"
#include "proto/error.h"
#include "proto/meta.pb-c.h"
#include "tests/unit/cluster/helpers.h"

static uint8_t *pack_entry(const Oxbow__MetaEntry *e, size_t *len)
{
	*len = oxbow__meta_entry__get_packed_size(e);
	uint8_t *b = malloc(*len + 1);
	cr_assert_not_null(b);
	cr_assert_eq(oxbow__meta_entry__pack(e, b), *len);
	return b;
}

Test(cluster, empty_state)
{
	struct ox_cluster *c = tc_new();
	struct ox_cluster_topic t;
	struct ox_cluster_node n;

	cr_assert_eq(ox_cluster_applied_index(c), 0);
	cr_assert_eq(ox_cluster_nodes_n(c), 0);
	cr_assert_eq(ox_cluster_topics_n(c), 0);
	cr_assert_eq(ox_cluster_topic_at(c, 0, &t), -OX_EUNKNOWN_TOPIC);
	cr_assert_eq(ox_cluster_topic_by_name(c, "a", &t), -OX_EUNKNOWN_TOPIC);
	cr_assert_eq(ox_cluster_node_at(c, 0, &n), -ENOENT);
	ox_cluster_destroy(c);
	ox_cluster_destroy(NULL);
}

Test(cluster, nodes_register_and_update)
{
	struct ox_cluster *c = tc_new();
	struct ox_cluster_node n;

	cr_assert_eq(tc_node(c, 3), 0);
	cr_assert_eq(tc_node(c, 1), 0);
	cr_assert_eq(tc_node_at(c, 2, "b:1", "b:2", "rack-a"), 0);
	cr_assert_eq(ox_cluster_nodes_n(c), 3);
	for (uint32_t i = 0; i < 3; i++) {
		cr_assert_eq(ox_cluster_node_at(c, i, &n), 0);
		cr_assert_eq(n.id, i + 1); // in id order
	}
	cr_assert_eq(ox_cluster_node_by_id(c, 2, &n), 0);
	cr_assert_str_eq(n.client_address, "b:1");
	cr_assert_str_eq(n.rack, "rack-a");
	cr_assert_eq(ox_cluster_node_by_id(c, 1, &n), 0);
	cr_assert_str_eq(n.rack, "");
	// The same id again updates it.
	cr_assert_eq(tc_node_at(c, 2, "[::1]:9000", "[::1]:9001", NULL), 0);
	cr_assert_eq(ox_cluster_nodes_n(c), 3);
	cr_assert_eq(ox_cluster_node_by_id(c, 2, &n), 0);
	cr_assert_str_eq(n.client_address, "[::1]:9000");
	cr_assert_str_eq(n.rack, "");
	cr_assert_eq(ox_cluster_node_by_id(c, 9, &n), -ENOENT);
	ox_cluster_destroy(c);
}

static void refuse_node(struct ox_cluster *c, uint64_t id, const char *cl,
			const char *peer, const char *rack)
{
	struct ox_cluster_node n = {
		.id = id, .client_address = cl, .peer_address = peer,
		.rack = rack,
	};
	uint8_t *e;
	size_t len;

	cr_assert_eq(ox_cluster_entry_register_node(&n, &e, &len), 0);
	tc_refused(c, e, len, -OX_EINVALID_REQUEST);
}

Test(cluster, bad_nodes_are_refused)
{
	struct ox_cluster *c = tc_new();

	cr_assert_eq(tc_node(c, 1), 0);
	refuse_node(c, 0, "a:1", "a:2", NULL);
	refuse_node(c, 0x80000000u, "a:1", "a:2", NULL);
	refuse_node(c, 2, "a", "a:2", NULL);
	refuse_node(c, 2, ":1", "a:2", NULL);
	refuse_node(c, 2, "a:0", "a:2", NULL);
	refuse_node(c, 2, "a:65536", "a:2", NULL);
	refuse_node(c, 2, "a:12x", "a:2", NULL);
	refuse_node(c, 2, "a b:1", "a:2", NULL);
	refuse_node(c, 2, "a:1", "a:1", NULL);
	refuse_node(c, 2, "a:1", "a:2", "two words");
	// Another node's address.
	refuse_node(c, 2, "10.0.0.1:7400", "a:2", NULL);
	refuse_node(c, 2, "a:1", "10.0.0.1:7400", NULL);
	cr_assert_eq(ox_cluster_nodes_n(c), 1);
	ox_cluster_destroy(c);
}

Test(cluster, create_topics_and_query)
{
	struct ox_cluster *c = tc_new();
	struct ox_cluster_topic t;
	struct ox_cluster_partition p;
	const uint64_t a[] = { 2, 3, 1, 3, 1, 2 };

	for (uint64_t id = 1; id <= 3; id++)
		cr_assert_eq(tc_node(c, id), 0);
	cr_assert_eq(tc_topic(c, "orders", 2, 3, a), 0);
	cr_assert_eq(tc_topic(c, "audit", 1, 1, (const uint64_t[]){ 2 }), 0);
	cr_assert_eq(ox_cluster_topics_n(c), 2);
	cr_assert_eq(ox_cluster_partitions_total(c), 3);
	cr_assert_eq(ox_cluster_topic_by_name(c, "orders", &t), 0);
	cr_assert_eq(t.id, 1); // C3: ids from the counter
	cr_assert_eq(t.partitions, 2);
	cr_assert_eq(t.replication_factor, 3);
	cr_assert_gt(t.created_index, 0);
	cr_assert_eq(ox_cluster_topic_by_id(c, 2, &t), 0);
	cr_assert_str_eq(t.name, "audit");
	cr_assert_eq(ox_cluster_topic_at(c, 0, &t), 0);
	cr_assert_str_eq(t.name, "orders"); // id order
	cr_assert_eq(ox_cluster_partition_get(c, 1, 1, &p), 0);
	cr_assert_eq(p.replicas_n, 3);
	cr_assert_eq(p.replicas[0], 3);
	cr_assert_eq(p.replicas[2], 2);
	cr_assert_eq(p.epoch, 0);
	cr_assert_eq(ox_cluster_partition_get(c, 1, 2, &p), -ENOENT);
	cr_assert_eq(ox_cluster_partition_get(c, 7, 0, &p), -OX_EUNKNOWN_TOPIC);
	// Node 2 holds three replicas and leads partition 0 of orders and
	// audit's only one.
	cr_assert_eq(ox_cluster_node_replicas(c, 2), 3);
	cr_assert_eq(ox_cluster_node_leaders(c, 2), 2);
	cr_assert_eq(ox_cluster_node_leaders(c, 3), 1);
	cr_assert_eq(ox_cluster_node_leaders(c, 1), 0);
	ox_cluster_destroy(c);
}

Test(cluster, create_refusals)
{
	struct ox_cluster *c = tc_new();
	struct ox_cluster_topic_spec spec = { .name = "t", .partitions = 1,
		.replication_factor = 1, .assignment = (const uint64_t[]){ 1 } };
	uint8_t *e;
	size_t len;

	cr_assert_eq(tc_node(c, 1), 0);
	cr_assert_eq(tc_node(c, 2), 0);
	cr_assert_eq(tc_topic(c, "t", 1, 1, (const uint64_t[]){ 1 }), 0);
	cr_assert_eq(ox_cluster_entry_create_topic(&spec, &e, &len), 0);
	tc_refused(c, e, len, -OX_ETOPIC_EXISTS);
	// Bad names; an unknown node; one node twice; RF 2.
	const char *bad[] = { "", ".", "..", "a/b", "a b", "é" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		spec.name = bad[i];
		cr_assert_eq(ox_cluster_entry_create_topic(&spec, &e, &len), 0);
		tc_refused(c, e, len, -OX_EINVALID_REQUEST);
	}
	spec.name = "u";
	spec.assignment = (const uint64_t[]){ 9 };
	cr_assert_eq(ox_cluster_entry_create_topic(&spec, &e, &len), 0);
	tc_refused(c, e, len, -OX_EINVALID_REQUEST);
	spec.replication_factor = 2;
	spec.assignment = (const uint64_t[]){ 1, 2 };
	cr_assert_eq(ox_cluster_entry_create_topic(&spec, &e, &len), 0);
	tc_refused(c, e, len, -OX_EINVALID_REQUEST);
	cr_assert_eq(tc_node(c, 3), 0);
	spec.replication_factor = 3;
	spec.assignment = (const uint64_t[]){ 1, 2, 1 };
	cr_assert_eq(ox_cluster_entry_create_topic(&spec, &e, &len), 0);
	tc_refused(c, e, len, -OX_EINVALID_REQUEST);
	// Bad configs: a bad key, an empty value, a key twice.
	spec.replication_factor = 1;
	spec.assignment = (const uint64_t[]){ 1 };
	struct ox_cluster_kv kv[3] = { { "Retention", "1" } };
	spec.configs = kv;
	spec.configs_n = 1;
	cr_assert_eq(ox_cluster_entry_create_topic(&spec, &e, &len), 0);
	tc_refused(c, e, len, -OX_EINVALID_CONFIG);
	kv[0] = (struct ox_cluster_kv){ "retention.ms", "" };
	cr_assert_eq(ox_cluster_entry_create_topic(&spec, &e, &len), 0);
	tc_refused(c, e, len, -OX_EINVALID_CONFIG);
	kv[0] = (struct ox_cluster_kv){ "retention.ms", "5" };
	kv[1] = (struct ox_cluster_kv){ "retention.ms", "6" };
	spec.configs_n = 2;
	cr_assert_eq(ox_cluster_entry_create_topic(&spec, &e, &len), 0);
	tc_refused(c, e, len, -OX_EINVALID_CONFIG);
	cr_assert_eq(ox_cluster_topics_n(c), 1);
	ox_cluster_destroy(c);
}

Test(cluster, malformed_entries_are_refused)
{
	struct ox_cluster *c = tc_new();
	Oxbow__MetaEntry e = OXBOW__META_ENTRY__INIT;
	Oxbow__MetaCreateTopic m = OXBOW__META_CREATE_TOPIC__INIT;
	Oxbow__MetaRegisterNode r = OXBOW__META_REGISTER_NODE__INIT;
	size_t len;

	cr_assert_eq(tc_node(c, 1), 0);
	// Not protobuf at all, and an entry with no operation.
	uint8_t *junk = malloc(4);
	memcpy(junk, "\xff\xff\xff\xff", 4);
	tc_refused(c, junk, 4, -OX_ECORRUPT);
	tc_refused(c, malloc(1), 0, -OX_ECORRUPT);
	// Partitions and assignments disagree.
	m.name = "t";
	m.partitions = 2;
	m.replication_factor = 1;
	e.op_case = OXBOW__META_ENTRY__OP_CREATE_TOPIC;
	e.create_topic = &m;
	{
		uint8_t *b = pack_entry(&e, &len);
		tc_refused(c, b, len, -OX_EINVALID_REQUEST);
	}
	// A registration without a node.
	e.op_case = OXBOW__META_ENTRY__OP_REGISTER_NODE;
	e.register_node = &r;
	{
		uint8_t *b = pack_entry(&e, &len);
		tc_refused(c, b, len, -OX_EINVALID_REQUEST);
	}
	// Too long to decode.
	size_t big = OX_CLUSTER_ENTRY_BYTES_MAX + 1;
	tc_refused(c, calloc(big, 1), big, -OX_ECORRUPT);
	ox_cluster_destroy(c);
}

Test(cluster, apply_wants_growing_indices)
{
	struct ox_cluster *c = tc_new();
	uint8_t *e;
	size_t len;

	cr_assert_eq(ox_cluster_entry_noop(&e, &len), 0);
	cr_assert_eq(ox_cluster_apply(c, 5, e, len, NULL), 0);
	cr_assert_eq(ox_cluster_apply(c, 5, e, len, NULL), -EINVAL); // C7
	cr_assert_eq(ox_cluster_apply(c, 4, e, len, NULL), -EINVAL);
	cr_assert_eq(ox_cluster_applied_index(c), 5);
	free(e);
	ox_cluster_destroy(c);
}

Test(cluster, delete_topics)
{
	struct ox_cluster *c = tc_new();
	struct ox_cluster_topic t;
	uint8_t *e;
	size_t len;

	for (uint64_t id = 1; id <= 3; id++)
		cr_assert_eq(tc_node(c, id), 0);
	cr_assert_eq(tc_topic_placed(c, "a", 3, 3), 0);
	cr_assert_eq(tc_topic_placed(c, "b", 2, 1), 0);
	cr_assert_eq(ox_cluster_entry_delete_topic("a", 2, &e, &len), 0);
	tc_refused(c, e, len, -OX_EUNKNOWN_TOPIC); // "a" is topic 1
	cr_assert_eq(ox_cluster_entry_delete_topic("zz", 0, &e, &len), 0);
	tc_refused(c, e, len, -OX_EUNKNOWN_TOPIC);
	cr_assert_eq(tc_delete(c, "a", 1), 0);
	cr_assert_eq(ox_cluster_topics_n(c), 1);
	cr_assert_eq(ox_cluster_partitions_total(c), 2);
	cr_assert_eq(ox_cluster_node_replicas(c, 1) +
		     ox_cluster_node_replicas(c, 2) +
		     ox_cluster_node_replicas(c, 3), 2);
	cr_assert_eq(ox_cluster_topic_by_name(c, "a", &t), -OX_EUNKNOWN_TOPIC);
	// A new "a" gets a new id (C3).
	cr_assert_eq(tc_topic_placed(c, "a", 1, 1), 0);
	cr_assert_eq(ox_cluster_topic_by_name(c, "a", &t), 0);
	cr_assert_eq(t.id, 3);
	cr_assert_eq(tc_delete(c, "a", 0), 0);
	cr_assert_eq(tc_delete(c, "b", 0), 0);
	cr_assert_eq(ox_cluster_topics_n(c), 0);
	for (uint64_t id = 1; id <= 3; id++) {
		cr_assert_eq(ox_cluster_node_replicas(c, id), 0);
		cr_assert_eq(ox_cluster_node_leaders(c, id), 0);
	}
	ox_cluster_destroy(c);
}

static int alter(struct ox_cluster *c, const char *name,
		 const struct ox_cluster_kv *set, uint32_t set_n,
		 const char *const *reset, uint32_t reset_n, int verdict)
{
	uint8_t *e;
	size_t len;

	cr_assert_eq(ox_cluster_entry_alter_configs(name, set, set_n, reset,
						    reset_n, &e, &len), 0);
	if (verdict == 0)
		return tc_apply(c, e, len);
	tc_refused(c, e, len, verdict);
	return verdict;
}

Test(cluster, alter_configs)
{
	struct ox_cluster *c = tc_new();
	struct ox_cluster_kv kv;
	const char *v;
	const struct ox_cluster_kv set1[] = { { "segment.bytes", "1048576" },
		{ "cleanup.policy", "compact" } };

	cr_assert_eq(tc_node(c, 1), 0);
	cr_assert_eq(tc_topic(c, "t", 1, 1, (const uint64_t[]){ 1 }), 0);
	cr_assert_eq(alter(c, "t", set1, 2, NULL, 0, 0), 0);
	cr_assert_eq(ox_cluster_config_at(c, 1, 0, &kv), 0);
	cr_assert_str_eq(kv.key, "cleanup.policy"); // key order
	cr_assert_eq(ox_cluster_config_at(c, 1, 1, &kv), 0);
	cr_assert_str_eq(kv.key, "segment.bytes");
	cr_assert_eq(ox_cluster_config_at(c, 1, 2, &kv), -ENOENT);
	// Set one, reset another, in one entry.
	const struct ox_cluster_kv set2[] = { { "segment.bytes", "4096" } };
	const char *reset[] = { "cleanup.policy", "retention.ms" };
	cr_assert_eq(alter(c, "t", set2, 1, reset, 2, 0), 0);
	cr_assert_eq(ox_cluster_config_get(c, 1, "segment.bytes", &v), 0);
	cr_assert_str_eq(v, "4096");
	cr_assert_eq(ox_cluster_config_get(c, 1, "cleanup.policy", &v), -ENOENT);
	// Refused: a key both set and reset, an unknown topic, too many keys.
	const char *reset2[] = { "segment.bytes" };
	alter(c, "t", set2, 1, reset2, 1, -OX_EINVALID_CONFIG);
	alter(c, "nope", set2, 1, NULL, 0, -OX_EUNKNOWN_TOPIC);
	struct ox_cluster_kv many[OX_CLUSTER_CONFIGS_MAX];
	char keys[OX_CLUSTER_CONFIGS_MAX][16];
	for (uint32_t i = 0; i < OX_CLUSTER_CONFIGS_MAX; i++) {
		snprintf(keys[i], sizeof(keys[i]), "k%u", i);
		many[i] = (struct ox_cluster_kv){ keys[i], "1" };
	}
	// 16 new keys beside segment.bytes make 17.
	alter(c, "t", many, OX_CLUSTER_CONFIGS_MAX, NULL, 0,
	      -OX_EINVALID_CONFIG);
	cr_assert_eq(alter(c, "t", many, OX_CLUSTER_CONFIGS_MAX, reset2, 1, 0),
		     0);
	struct ox_cluster_topic t;
	cr_assert_eq(ox_cluster_topic_by_id(c, 1, &t), 0);
	cr_assert_eq(t.configs_n, OX_CLUSTER_CONFIGS_MAX);
	ox_cluster_destroy(c);
}

Test(cluster, add_partitions_and_reassign)
{
	struct ox_cluster *c = tc_new();
	struct ox_cluster_partition p;
	struct ox_cluster_topic t;
	uint8_t *e;
	size_t len;

	for (uint64_t id = 1; id <= 4; id++)
		cr_assert_eq(tc_node(c, id), 0);
	cr_assert_eq(tc_topic(c, "t", 1, 3, (const uint64_t[]){ 1, 2, 3 }), 0);
	const uint64_t added[] = { 2, 3, 4, 4, 1, 2 };
	cr_assert_eq(ox_cluster_entry_add_partitions("t", 2, 3, added, &e,
						     &len), 0);
	cr_assert_eq(tc_apply(c, e, len), 0);
	cr_assert_eq(ox_cluster_topic_by_id(c, 1, &t), 0);
	cr_assert_eq(t.partitions, 3);
	cr_assert_eq(ox_cluster_partition_get(c, 1, 2, &p), 0);
	cr_assert_eq(p.replicas[0], 4);
	cr_assert_eq(ox_cluster_node_replicas(c, 4), 2);
	// The wrong replication factor for the topic.
	cr_assert_eq(ox_cluster_entry_add_partitions("t", 1, 1, added, &e,
						     &len), 0);
	tc_refused(c, e, len, -OX_EINVALID_REQUEST);
	// Reassign partition 0 from {1,2,3} to {4,2,3}.
	const uint64_t to[] = { 4, 2, 3 };
	cr_assert_eq(ox_cluster_entry_reassign_partition("t", 0, to, 3, &e,
							 &len), 0);
	cr_assert_eq(tc_apply(c, e, len), 0);
	cr_assert_eq(ox_cluster_partition_get(c, 1, 0, &p), 0);
	cr_assert_eq(p.replicas[0], 4);
	cr_assert_eq(p.epoch, 1);
	cr_assert_eq(ox_cluster_node_replicas(c, 1), 1);
	cr_assert_eq(ox_cluster_node_replicas(c, 4), 3);
	cr_assert_eq(ox_cluster_node_leaders(c, 1), 0);
	cr_assert_eq(ox_cluster_node_leaders(c, 4), 2);
	// Refused: a partition that does not exist, a short list, a
	// duplicate, an unknown topic.
	cr_assert_eq(ox_cluster_entry_reassign_partition("t", 3, to, 3, &e,
							 &len), 0);
	tc_refused(c, e, len, -OX_EINVALID_REQUEST);
	cr_assert_eq(ox_cluster_entry_reassign_partition("t", 0, to, 1, &e,
							 &len), 0);
	tc_refused(c, e, len, -OX_EINVALID_REQUEST);
	const uint64_t dup[] = { 4, 4, 3 };
	cr_assert_eq(ox_cluster_entry_reassign_partition("t", 0, dup, 3, &e,
							 &len), 0);
	tc_refused(c, e, len, -OX_EINVALID_REQUEST);
	cr_assert_eq(ox_cluster_entry_reassign_partition("u", 0, to, 3, &e,
							 &len), 0);
	tc_refused(c, e, len, -OX_EUNKNOWN_TOPIC);
	ox_cluster_destroy(c);
}

// A reassigned partition is moving until its leader says the move of
// that epoch is done; a list it has already changes nothing.
Test(cluster, a_reassignment_moves_until_its_leader_says_done)
{
	struct ox_cluster *c = tc_new();
	struct ox_cluster_partition p;
	struct ox_cluster_result res;
	struct ox_cluster *twin;
	uint8_t *e, *snap;
	size_t len;

	for (uint64_t id = 1; id <= 4; id++)
		cr_assert_eq(tc_node(c, id), 0);
	cr_assert_eq(tc_topic(c, "t", 2, 3,
			      (const uint64_t[]){ 1, 2, 3, 2, 3, 1 }), 0);
	cr_assert_eq(ox_cluster_partition_get(c, 1, 0, &p), 0);
	cr_assert(!p.moving, "a new partition is where it belongs");

	// The same list: nothing moves.
	cr_assert_eq(ox_cluster_entry_reassign_partition("t", 0,
			(const uint64_t[]){ 1, 2, 3 }, 3, &e, &len), 0);
	cr_assert_eq(tc_apply(c, e, len), 0);
	cr_assert_eq(ox_cluster_partition_get(c, 1, 0, &p), 0);
	cr_assert(!p.moving);
	cr_assert_eq(p.epoch, 0);

	cr_assert_eq(ox_cluster_entry_reassign_partition("t", 0,
			(const uint64_t[]){ 4, 2, 3 }, 3, &e, &len), 0);
	cr_assert_eq(ox_cluster_check(c, e, len, &res), 0);
	cr_assert_eq(res.op, OX_CLUSTER_OP_REASSIGN_PARTITION);
	cr_assert_eq(res.topic_id, 1);
	cr_assert_eq(res.partition, 0);
	cr_assert_eq(tc_apply(c, e, len), 0);
	cr_assert_eq(ox_cluster_partition_get(c, 1, 0, &p), 0);
	cr_assert(p.moving);
	cr_assert_eq(p.epoch, 1);
	cr_assert_not_null(p.from);
	cr_assert_eq(p.from[0], 1, "from lists the replicas it had");

	// The flag travels in snapshots.
	snap = tc_snap(c, &len);
	cr_assert_eq(ox_cluster_create(&twin), 0);
	cr_assert_eq(ox_cluster_restore(twin, snap, len), 0);
	free(snap);
	cr_assert_eq(ox_cluster_partition_get(twin, 1, 0, &p), 0);
	cr_assert(p.moving);
	cr_assert_eq(p.from[0], 1);
	ox_cluster_destroy(twin);

	// Refused: another epoch, another topic id, a partition not moving.
	cr_assert_eq(ox_cluster_entry_partition_moved("t", 1, 0, 0, &e, &len),
		     0);
	tc_refused(c, e, len, -OX_EINVALID_REQUEST);
	cr_assert_eq(ox_cluster_entry_partition_moved("t", 9, 0, 1, &e, &len),
		     0);
	tc_refused(c, e, len, -OX_EUNKNOWN_TOPIC);
	cr_assert_eq(ox_cluster_entry_partition_moved("t", 1, 1, 0, &e, &len),
		     0);
	tc_refused(c, e, len, -OX_EINVALID_REQUEST);

	cr_assert_eq(ox_cluster_entry_partition_moved("t", 1, 0, 1, &e, &len),
		     0);
	cr_assert_eq(ox_cluster_check(c, e, len, &res), 0);
	cr_assert_eq(res.op, OX_CLUSTER_OP_PARTITION_MOVED);
	cr_assert_eq(res.partition, 0);
	cr_assert_eq(tc_apply(c, e, len), 0);
	cr_assert_eq(ox_cluster_partition_get(c, 1, 0, &p), 0);
	cr_assert(!p.moving);
	cr_assert_null(p.from);
	cr_assert_eq(p.epoch, 1);
	cr_assert_eq(p.replicas[0], 4);
	// Done once: the same entry again is refused.
	cr_assert_eq(ox_cluster_entry_partition_moved("t", 1, 0, 1, &e, &len),
		     0);
	tc_refused(c, e, len, -OX_EINVALID_REQUEST);
	ox_cluster_destroy(c);
}

Test(cluster, bound_on_nodes)
{
	struct ox_cluster *c = tc_new();
	uint8_t *e;
	size_t len;

	for (uint64_t id = 1; id <= OX_CLUSTER_NODES_MAX; id++)
		cr_assert_eq(tc_node(c, id * 7), 0);
	struct ox_cluster_node n = { .id = 1000, .client_address = "x:1",
		.peer_address = "x:2" };
	cr_assert_eq(ox_cluster_entry_register_node(&n, &e, &len), 0);
	tc_refused(c, e, len, -OX_ETOOBIG); // C6
	// Updating a known node is still fine.
	cr_assert_eq(tc_node_at(c, 7, "y:1", "y:2", NULL), 0);
	ox_cluster_destroy(c);
}

Test(cluster, bound_on_topics_and_node_replicas)
{
	struct ox_cluster *c = tc_new();
	char name[32];

	cr_assert_eq(tc_node(c, 1), 0);
	cr_assert_eq(tc_node(c, 2), 0);
	for (uint32_t i = 0; i < OX_CLUSTER_TOPICS_MAX; i++) {
		snprintf(name, sizeof(name), "t%u", i);
		cr_assert_eq(tc_topic(c, name, 1, 1,
				      (const uint64_t[]){ 1 + i % 2 }), 0);
	}
	cr_assert_eq(ox_cluster_topics_n(c), OX_CLUSTER_TOPICS_MAX);
	uint8_t *e;
	size_t len;
	struct ox_cluster_topic_spec spec = { .name = "one-more",
		.partitions = 1, .replication_factor = 1,
		.assignment = (const uint64_t[]){ 1 } };
	cr_assert_eq(ox_cluster_entry_create_topic(&spec, &e, &len), 0);
	tc_refused(c, e, len, -OX_ETOOBIG); // C6
	ox_cluster_destroy(c);

	// One node holds at most OX_CLUSTER_NODE_REPLICAS_MAX replicas.
	c = tc_new();
	cr_assert_eq(tc_node(c, 1), 0);
	cr_assert_eq(tc_topic_placed(c, "big", OX_CLUSTER_TOPIC_PARTITIONS_MAX,
				     1), 0);
	cr_assert_eq(ox_cluster_node_replicas(c, 1),
		     OX_CLUSTER_NODE_REPLICAS_MAX);
	cr_assert_eq(ox_cluster_entry_create_topic(&spec, &e, &len), 0);
	tc_refused(c, e, len, -OX_ETOOBIG);
	uint64_t one;
	cr_assert_eq(ox_cluster_place(c, NULL, 0, 1, 1, &one), -OX_ETOOBIG);
	ox_cluster_destroy(c);
}

Test(cluster, bound_on_partitions)
{
	struct ox_cluster *c = tc_new();
	char name[32];
	uint32_t max = OX_CLUSTER_TOPIC_PARTITIONS_MAX;
	uint64_t *a = calloc(max + 1, sizeof(*a));
	uint8_t *e;
	size_t len;

	cr_assert_not_null(a);
	for (uint64_t id = 1; id <= 11; id++)
		cr_assert_eq(tc_node(c, id), 0);
	// Too many partitions for one topic.
	for (uint32_t i = 0; i <= max; i++)
		a[i] = 1 + i % 11;
	struct ox_cluster_topic_spec spec = { .name = "x", .partitions = max,
		.replication_factor = 1, .assignment = a };
	uint32_t parts_max = OX_CLUSTER_PARTITIONS_MAX / max;
	for (uint32_t t = 0; t < parts_max; t++) {
		snprintf(name, sizeof(name), "t%u", t);
		cr_assert_eq(tc_topic_placed(c, name, max, 1), 0);
	}
	cr_assert_eq(ox_cluster_partitions_total(c), OX_CLUSTER_PARTITIONS_MAX);
	spec.partitions = 1;
	cr_assert_eq(ox_cluster_entry_create_topic(&spec, &e, &len), 0);
	tc_refused(c, e, len, -OX_ETOOBIG); // C6: the cluster's total
	cr_assert_eq(ox_cluster_entry_add_partitions("t0", 1, 1, a, &e, &len),
		     0);
	tc_refused(c, e, len, -OX_ETOOBIG);
	cr_assert_eq(tc_delete(c, "t0", 0), 0);
	cr_assert_eq(ox_cluster_entry_add_partitions("t1", 1, 1, a, &e, &len),
		     0);
	tc_refused(c, e, len, -OX_ETOOBIG); // C6: the topic's
	// The encoder refuses a topic over the bound; a crafted entry is
	// refused by apply.
	spec.partitions = max + 1;
	cr_assert_eq(ox_cluster_entry_create_topic(&spec, &e, &len), -EINVAL);
	free(a);
	ox_cluster_destroy(c);
}

Test(cluster, crafted_entry_over_partition_bound)
{
	struct ox_cluster *c = tc_new();
	uint32_t n = OX_CLUSTER_TOPIC_PARTITIONS_MAX + 1;
	Oxbow__MetaAssignment *as = calloc(n, sizeof(*as));
	Oxbow__MetaAssignment **asp = calloc(n, sizeof(*asp));
	uint64_t one = 1;
	Oxbow__MetaEntry e = OXBOW__META_ENTRY__INIT;
	Oxbow__MetaCreateTopic m = OXBOW__META_CREATE_TOPIC__INIT;
	size_t len;

	cr_assert_eq(tc_node(c, 1), 0);
	for (uint32_t i = 0; i < n; i++) {
		oxbow__meta_assignment__init(&as[i]);
		as[i].replicas = &one;
		as[i].n_replicas = 1;
		asp[i] = &as[i];
	}
	m.name = "t";
	m.partitions = n;
	m.replication_factor = 1;
	m.assignments = asp;
	m.n_assignments = n;
	e.op_case = OXBOW__META_ENTRY__OP_CREATE_TOPIC;
	e.create_topic = &m;
	{
		uint8_t *b = pack_entry(&e, &len);
		tc_refused(c, b, len, -OX_ETOOBIG);
	}
	free(as);
	free(asp);
	ox_cluster_destroy(c);
}

Test(cluster, name_rule)
{
	cr_assert_eq(ox_cluster_name_check("orders.v1_x-2", 13), 0);
	cr_assert_eq(ox_cluster_name_check("__offsets", 9), 0);
	cr_assert(ox_cluster_name_reserved("__offsets", 9));
	cr_assert_not(ox_cluster_name_reserved("_x", 2));
	cr_assert_eq(ox_cluster_name_check("", 0), -EINVAL);
	cr_assert_eq(ox_cluster_name_check(".", 1), -EINVAL);
	cr_assert_eq(ox_cluster_name_check("..", 2), -EINVAL);
	cr_assert_eq(ox_cluster_name_check("a:b", 3), -EINVAL);
	cr_assert_eq(ox_cluster_name_check(NULL, 1), -EINVAL);
	char longest[OX_CLUSTER_TOPIC_NAME_MAX + 2];
	memset(longest, 'a', sizeof(longest));
	cr_assert_eq(ox_cluster_name_check(longest, OX_CLUSTER_TOPIC_NAME_MAX),
		     0);
	cr_assert_eq(ox_cluster_name_check(longest,
					   OX_CLUSTER_TOPIC_NAME_MAX + 1),
		     -EINVAL);
}

Test(cluster, group_partition)
{
	struct ox_cluster *c = tc_new();
	uint64_t topic;
	uint32_t part, seen[8] = { 0 };
	char group[16];

	cr_assert_eq(ox_cluster_group_partition(c, "g", 1, &topic, &part),
		     -OX_EUNKNOWN_TOPIC);
	cr_assert_eq(tc_node(c, 1), 0);
	cr_assert_eq(tc_topic_placed(c, "x", 1, 1), 0);
	cr_assert_eq(tc_topic_placed(c, OX_CLUSTER_OFFSETS_TOPIC, 8, 1), 0);
	cr_assert_eq(ox_cluster_group_partition(c, "g", 0, &topic, &part),
		     -EINVAL);
	for (int i = 0; i < 200; i++) {
		int n = snprintf(group, sizeof(group), "group-%d", i);
		cr_assert_eq(ox_cluster_group_partition(c, group, (size_t)n,
							&topic, &part), 0);
		cr_assert_eq(topic, 2);
		cr_assert_lt(part, 8);
		seen[part]++;
	}
	for (int i = 0; i < 8; i++)
		cr_assert_gt(seen[i], 0, "partition %d holds no group", i);
	// The same name always lands in the same place.
	uint32_t again;
	cr_assert_eq(ox_cluster_group_partition(c, "group-7", 7, &topic,
						&part), 0);
	cr_assert_eq(ox_cluster_group_partition(c, "group-7", 7, &topic,
						&again), 0);
	cr_assert_eq(part, again);
	ox_cluster_destroy(c);
}

Test(cluster, encoders_refuse_bad_arguments)
{
	uint8_t *e;
	size_t len;
	struct ox_cluster_node n = { .id = 1, .client_address = NULL,
		.peer_address = "a:1" };
	char longname[OX_CLUSTER_TOPIC_NAME_MAX + 2];

	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	cr_assert_eq(ox_cluster_entry_noop(NULL, &len), -EINVAL);
	cr_assert_eq(ox_cluster_entry_register_node(&n, &e, &len), -EINVAL);
	cr_assert_eq(ox_cluster_entry_delete_topic(longname, 0, &e, &len),
		     -EINVAL);
	cr_assert_eq(ox_cluster_entry_delete_topic(NULL, 0, &e, &len), -EINVAL);
	cr_assert_eq(ox_cluster_entry_reassign_partition("t", 0, NULL, 3, &e,
							 &len), -EINVAL);
	cr_assert_eq(ox_cluster_entry_add_partitions("t", 0, 1,
		     (const uint64_t[]){ 1 }, &e, &len), -EINVAL);
	struct ox_cluster_topic_spec spec = { .name = "t", .partitions = 1,
		.replication_factor = 1, .configs_n = 1 };
	cr_assert_eq(ox_cluster_entry_create_topic(&spec, &e, &len), -EINVAL);
}

// An entry stamped with a request id carries it to every node that applies
// it, whatever the verdict, and changes nothing else: two states, one fed
// stamped entries and one the same entries unstamped, stay identical (C1).
Test(cluster, request_ids_ride_along)
{
	struct ox_cluster *c = tc_new(), *plain = tc_new();
	struct ox_cluster_request rq = { 7, 0xfeedfacecafebeefull, 41 };
	struct ox_cluster_result res;
	uint8_t *e, *stamped, *again;
	size_t len, slen, alen;

	for (uint64_t id = 1; id <= 3; id++) {
		cr_assert_eq(tc_node(c, id), 0);
		cr_assert_eq(tc_node(plain, id), 0);
	}
	cr_assert_eq(tc_topic_placed(c, "t", 2, 3), 0);
	cr_assert_eq(tc_topic_placed(plain, "t", 2, 3), 0);
	cr_assert_eq(ox_cluster_entry_delete_topic("t", 1, &e, &len), 0);
	cr_assert_eq(ox_cluster_entry_stamp(e, len, &rq, &stamped, &slen), 0);
	// Stamping again replaces the id.
	rq.seq = 42;
	cr_assert_eq(ox_cluster_entry_stamp(stamped, slen, &rq, &again, &alen),
		     0);
	cr_assert_eq(ox_cluster_check(c, again, alen, &res), 0);
	cr_assert_eq(res.request.node, 7);
	cr_assert_eq(res.request.nonce, 0xfeedfacecafebeefull);
	cr_assert_eq(res.request.seq, 42);
	cr_assert_eq(ox_cluster_apply(c, ox_cluster_applied_index(c) + 2, again,
				      alen, &res), 0);
	cr_assert_eq(res.verdict, 0);
	cr_assert_eq(res.op, OX_CLUSTER_OP_DELETE_TOPIC);
	cr_assert_eq(res.topic_id, 1);
	cr_assert_eq(res.request.seq, 42);
	cr_assert_eq(tc_apply(plain, e, len), 0);
	tc_same(c, plain);
	// Refused (the topic is gone): the verdict still names the request.
	cr_assert_eq(ox_cluster_apply(c, ox_cluster_applied_index(c) + 2,
				      stamped, slen, &res), 0);
	cr_assert_eq(res.verdict, -OX_EUNKNOWN_TOPIC);
	cr_assert_eq(res.request.seq, 41);
	// An entry of nobody's names no request.
	cr_assert_eq(ox_cluster_entry_noop(&e, &len), 0);
	cr_assert_eq(ox_cluster_check(c, e, len, &res), 0);
	cr_assert_eq(res.request.node, 0);
	cr_assert_eq(res.request.seq, 0);
	free(e);
	free(stamped);
	free(again);
	ox_cluster_destroy(c);
	ox_cluster_destroy(plain);
}

Test(cluster, stamp_refuses_bad_input)
{
	struct ox_cluster_request rq = { 1, 2, 3 };
	uint8_t junk[4] = { 0xff, 0xff, 0xff, 0xff }, *out = NULL;
	size_t len = 0;

	cr_assert_eq(ox_cluster_entry_stamp(junk, sizeof(junk), &rq, &out,
					    &len), -OX_ECORRUPT);
	cr_assert_eq(ox_cluster_entry_stamp(junk, OX_CLUSTER_ENTRY_BYTES_MAX + 1,
					    &rq, &out, &len), -OX_ECORRUPT);
	cr_assert_eq(ox_cluster_entry_stamp(junk, 1, NULL, &out, &len), -EINVAL);
	cr_assert_eq(ox_cluster_entry_stamp(NULL, 1, &rq, &out, &len), -EINVAL);
	cr_assert_null(out);
}

// A topic deleted and created again under its name gets a new id (C3),
// so its directories on the nodes never meet the old ones, and a delete
// aimed at the old id leaves the new topic alone.
Test(cluster, name_created_again_gets_a_new_id)
{
	struct ox_cluster *c = tc_new();
	struct ox_cluster_topic t;
	uint8_t *e;
	size_t len;

	for (uint64_t id = 1; id <= 3; id++)
		cr_assert_eq(tc_node(c, id), 0);
	cr_assert_eq(tc_topic_placed(c, "again", 1, 3), 0);
	cr_assert_eq(ox_cluster_topic_by_name(c, "again", &t), 0);
	uint64_t first = t.id;
	cr_assert_eq(tc_delete(c, "again", first), 0);
	cr_assert_eq(tc_topic_placed(c, "again", 1, 3), 0);
	cr_assert_eq(ox_cluster_topic_by_name(c, "again", &t), 0);
	cr_assert_gt(t.id, first);
	cr_assert_eq(ox_cluster_entry_delete_topic("again", first, &e, &len), 0);
	tc_refused(c, e, len, -OX_EUNKNOWN_TOPIC);
	cr_assert_eq(ox_cluster_topic_by_name(c, "again", &t), 0);
	ox_cluster_destroy(c);
}
