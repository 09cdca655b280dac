// SPDX-License-Identifier: Apache-2.0
//
// The __offsets record encoding (round trip, every decode error), the
// group-offset map and its shards (the partitions of a cluster's
// __offsets).
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/cluster/cluster.h"
#include "broker/server/offsets.h"
#include "proto/error.h"

static struct ox_offset_key key(const char *g, const char *t, uint32_t p)
{
	return (struct ox_offset_key){.group = g, .group_len = strlen(g),
				      .topic = t, .topic_len = strlen(t),
				      .partition = p};
}

Test(offsets, key_round_trip)
{
	uint8_t buf[OX_OFFSET_KEY_MAX];
	struct ox_offset_key k = key("billing", "orders", 7), d;
	int n = ox_offset_key_encode(&k, buf);
	cr_assert_eq(n, 1 + 1 + 7 + 1 + 6 + 4);
	cr_assert_eq(buf[0], 1);
	cr_assert_eq(buf[1], 7);
	cr_assert_eq(buf[n - 4], 7); // partition, little-endian
	cr_assert_eq(ox_offset_key_decode(buf, (size_t)n, &d), 0);
	cr_assert_eq(d.group_len, 7u);
	cr_assert(memcmp(d.group, "billing", 7) == 0);
	cr_assert(memcmp(d.topic, "orders", 6) == 0);
	cr_assert_eq(d.partition, 7u);
	// Every cut, a trailing byte, another version.
	for (int cut = 0; cut < n; cut++)
		cr_assert_eq(ox_offset_key_decode(buf, (size_t)cut, &d),
			     -OX_ECORRUPT, "cut %d", cut);
	uint8_t longer[OX_OFFSET_KEY_MAX + 1];
	memcpy(longer, buf, (size_t)n);
	longer[n] = 0;
	cr_assert_eq(ox_offset_key_decode(longer, (size_t)n + 1, &d), -OX_ECORRUPT);
	buf[0] = 2;
	cr_assert_eq(ox_offset_key_decode(buf, (size_t)n, &d), -OX_ECORRUPT);

	char big[OX_GROUP_NAME_MAX + 2];
	memset(big, 'g', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	k = key(big, "t", 0);
	cr_assert_eq(ox_offset_key_encode(&k, buf), -EINVAL);
	big[OX_GROUP_NAME_MAX] = '\0';
	k = key(big, "t", 0);
	cr_assert_gt(ox_offset_key_encode(&k, buf), 0);
	k = key("", "t", 0);
	cr_assert_eq(ox_offset_key_encode(&k, buf), -EINVAL);
}

Test(offsets, value_round_trip)
{
	uint8_t buf[OX_OFFSET_VALUE_MAX];
	int64_t off;
	const char *meta;
	size_t mlen;
	int n = ox_offset_value_encode(12345678901ll, "host-a", 6, buf);
	cr_assert_eq(n, 11 + 6);
	cr_assert_eq(ox_offset_value_decode(buf, (size_t)n, &off, &meta, &mlen), 0);
	cr_assert_eq(off, 12345678901ll);
	cr_assert_eq(mlen, 6u);
	cr_assert(memcmp(meta, "host-a", 6) == 0);
	for (int cut = 0; cut < n; cut++)
		cr_assert_eq(ox_offset_value_decode(buf, (size_t)cut, &off, &meta,
						    &mlen), -OX_ECORRUPT);
	n = ox_offset_value_encode(-1, NULL, 0, buf);
	cr_assert_eq(ox_offset_value_decode(buf, (size_t)n, &off, &meta, &mlen), 0);
	cr_assert_eq(off, -1);
	cr_assert_eq(ox_offset_value_encode(-2, NULL, 0, buf), -EINVAL);
	cr_assert_eq(ox_offset_value_encode(0, "x", OX_OFFSET_METADATA_MAX + 1,
					    buf), -EINVAL);
	// An offset below -1 on disk is damage.
	n = ox_offset_value_encode(5, NULL, 0, buf);
	memset(buf + 1, 0xfe, 8);
	cr_assert_eq(ox_offset_value_decode(buf, (size_t)n, &off, &meta, &mlen),
		     -OX_ECORRUPT);
}

static void count(void *arg, const struct ox_offset_entry *e)
{
	(void)e;
	(*(int *)arg)++;
}

Test(offsets, map)
{
	struct ox_offsets *m;
	struct ox_offset_entry e;
	cr_assert_eq(ox_offsets_create(&m), 0);
	for (uint32_t p = 0; p < 1000; p++) {
		struct ox_offset_key k = key(p % 2 ? "odd" : "even", "t", p);
		cr_assert_eq(ox_offsets_put(m, &k, p * 10, "m", 1), 0);
	}
	struct ox_offset_key k = key("odd", "t", 3);
	cr_assert_eq(ox_offsets_get(m, &k, &e), 1);
	cr_assert_eq(e.offset, 30);
	cr_assert_str_eq(e.metadata, "m");
	cr_assert_eq(ox_offsets_put(m, &k, 31, NULL, 0), 0);
	cr_assert_eq(ox_offsets_get(m, &k, &e), 1);
	cr_assert_eq(e.offset, 31);
	cr_assert_str_eq(e.metadata, "");
	cr_assert_eq(ox_offsets_count(m), 1000u);
	int n = 0;
	cr_assert_eq(ox_offsets_each(m, "odd", NULL, count, &n), 500u);
	cr_assert_eq(n, 500);
	k = key("even", "t", 3);
	cr_assert_eq(ox_offsets_get(m, &k, &e), 0, "even has no odd partition");

	// apply: a value, then a tombstone.
	uint8_t kb[OX_OFFSET_KEY_MAX], vb[OX_OFFSET_VALUE_MAX];
	k = key("g2", "u", 1);
	int kl = ox_offset_key_encode(&k, kb);
	int vl = ox_offset_value_encode(77, "z", 1, vb);
	cr_assert_eq(ox_offsets_apply(m, kb, (size_t)kl, vb, vl), 0);
	cr_assert_eq(ox_offsets_get(m, &k, &e), 1);
	cr_assert_eq(e.offset, 77);
	cr_assert_eq(ox_offsets_apply(m, kb, (size_t)kl, NULL, -1), 0);
	cr_assert_eq(ox_offsets_get(m, &k, &e), 0);
	cr_assert_eq(ox_offsets_apply(m, kb, 3, vb, vl), -OX_ECORRUPT);
	cr_assert_eq(ox_offsets_apply(m, kb, (size_t)kl, vb, 2), -OX_ECORRUPT);
	ox_offsets_destroy(m);
}

Test(offsets, group_names)
{
	char g[OX_GROUP_NAME_MAX + 1];
	memset(g, 'x', sizeof(g));
	cr_assert_eq(ox_group_name_check("g", 1), 0);
	cr_assert_eq(ox_group_name_check(g, OX_GROUP_NAME_MAX), 0);
	cr_assert_eq(ox_group_name_check(g, OX_GROUP_NAME_MAX + 1), -EINVAL);
	cr_assert_eq(ox_group_name_check("", 0), -EINVAL);
	cr_assert_eq(ox_group_name_check("a\0b", 3), -EINVAL);
}

// The shard of a group is the partition ox_cluster_group_partition names,
// so a client, any node and the coordinator agree on it.
Test(offsets, shards_follow_the_cluster_rule)
{
	struct ox_cluster *c;
	struct ox_cluster_node n = {.id = 1, .client_address = "127.0.0.1:1",
				    .peer_address = "127.0.0.1:2", .rack = ""};
	uint64_t as[OX_OFFSETS_PARTITIONS];
	struct ox_cluster_topic_spec spec = {
		.name = OX_OFFSETS_TOPIC, .partitions = OX_OFFSETS_PARTITIONS,
		.replication_factor = 1, .assignment = as};
	struct ox_cluster_result res;
	uint8_t *e;
	size_t len;

	for (size_t i = 0; i < OX_OFFSETS_PARTITIONS; i++)
		as[i] = 1;
	cr_assert_eq(ox_cluster_create(&c), 0);
	cr_assert_eq(ox_cluster_entry_register_node(&n, &e, &len), 0);
	cr_assert_eq(ox_cluster_apply(c, 1, e, len, &res), 0);
	cr_assert_eq(res.verdict, 0);
	free(e);
	cr_assert_eq(ox_cluster_entry_create_topic(&spec, &e, &len), 0);
	cr_assert_eq(ox_cluster_apply(c, 2, e, len, &res), 0);
	cr_assert_eq(res.verdict, 0);
	free(e);
	char name[OX_GROUP_NAME_MAX + 1];
	for (size_t i = 1; i <= OX_GROUP_NAME_MAX; i++) {
		for (size_t k = 0; k < i; k++)
			name[k] = (char)('a' + (k * 7 + i) % 26);
		name[i] = '\0';
		uint64_t tid;
		uint32_t part;
		cr_assert_eq(ox_cluster_group_partition(c, name, i, &tid, &part),
			     0);
		cr_assert_eq(ox_offsets_shard_of(name, i, OX_OFFSETS_PARTITIONS),
			     part, "group of %zu bytes", i);
	}
	ox_cluster_destroy(c);
}

Test(offsets, shards_hold_and_drop)
{
	struct ox_offsets *m;
	struct ox_offset_entry e;
	const char *groups[] = {"billing", "audit", "search", "mail", "x",
				"reports", "index", "ingest"};
	size_t ng = sizeof(groups) / sizeof(groups[0]);

	cr_assert_eq(ox_offsets_create(&m), 0);
	// A node alone: one shard, held for good.
	cr_assert_eq(ox_offsets_shards(m), 1u);
	cr_assert_neq(ox_offsets_shard_term(m, 0), 0u);
	cr_assert_eq(ox_offsets_set_shards(m, 0), -EINVAL);
	cr_assert_eq(ox_offsets_set_shards(m, OX_OFFSETS_SHARDS_MAX + 1),
		     -EINVAL);
	cr_assert_eq(ox_offsets_set_shards(m, 4), 0);
	for (uint32_t s = 0; s < 4; s++)
		cr_assert_eq(ox_offsets_shard_term(m, s), 0u);
	for (size_t i = 0; i < ng; i++) {
		struct ox_offset_key k = key(groups[i], "orders", 0);
		cr_assert_eq(ox_offsets_put(m, &k, (int64_t)i, "", 0), 0);
		k = key(groups[i], "users", 3);
		cr_assert_eq(ox_offsets_put(m, &k, 10 + (int64_t)i, "m", 1), 0);
	}
	cr_assert_eq(ox_offsets_set_shards(m, 8), -EBUSY);
	uint32_t victim = ox_offsets_shard(m, "billing");
	size_t in_victim = 0;
	for (size_t i = 0; i < ng; i++)
		in_victim += ox_offsets_shard(m, groups[i]) == victim;
	ox_offsets_shard_hold(m, victim, 7);
	cr_assert_eq(ox_offsets_shard_term(m, victim), 7u);
	ox_offsets_shard_drop(m, victim);
	cr_assert_eq(ox_offsets_shard_term(m, victim), 0u);
	cr_assert_eq(ox_offsets_count(m), 2 * (ng - in_victim));
	for (size_t i = 0; i < ng; i++) {
		struct ox_offset_key k = key(groups[i], "users", 3);
		int want = ox_offsets_shard(m, groups[i]) != victim;
		cr_assert_eq(ox_offsets_get(m, &k, &e), want, "%s", groups[i]);
		if (want)
			cr_assert_eq(e.offset, 10 + (int64_t)i);
	}
	for (uint32_t s = 0; s < 4; s++)
		ox_offsets_shard_drop(m, s);
	cr_assert_eq(ox_offsets_count(m), 0u);
	cr_assert_eq(ox_offsets_set_shards(m, 8), 0);
	ox_offsets_destroy(m);
}
