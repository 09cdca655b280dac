// SPDX-License-Identifier: Apache-2.0
//
// libFuzzer harness for broker/cluster, the metadata state machine.
// Committed entries are trusted to be what the leader wrote, but the
// state machine must survive any bytes: a state with three nodes and a
// topic gets a stream of entries read from the input, some raw bytes,
// some built with the encoders from input-chosen fields (so they reach
// the checks behind the decoder), and must answer each with a verdict,
// never an abort. After every entry the leader's check agrees with the
// verdict; at the end the snapshot restores into a fresh state that
// snapshots to the same bytes (C1), and the whole input, read as a
// snapshot, either fails to restore or round-trips the same way.
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/cluster/cluster.h"
#include "proto/error.h"
#include "tests/fuzz/fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) \
	do { \
		if (!(cond)) { \
			fprintf(stderr, "fuzz_cluster: check failed: %s (line %d)\n", \
				#cond, __LINE__); \
			abort(); \
		} \
	} while (0)

static const char *const names[] = { "a", "b", "c", "__offsets", "", ".",
				     "x y", "t" };
static const char *const keys[] = { "retention.ms", "segment.bytes", "K",
				    "cleanup.policy" };
static const char *const values[] = { "1", "", "compact", "a b" };

static void apply_one(struct ox_cluster *c, uint8_t *e, size_t len)
{
	struct ox_cluster_result res;
	int checked = ox_cluster_check(c, e, len, NULL);
	int64_t index = ox_cluster_applied_index(c) + 1;

	CHECK(ox_cluster_apply(c, index, e, len, &res) == 0);
	CHECK(res.verdict <= 0 && res.verdict == checked);
	CHECK(ox_cluster_applied_index(c) == index);
}

// An entry built with an encoder from input bytes: 0, or -EINVAL when
// the encoder refused the fields (nothing to apply then).
static int structured(struct input *in, uint8_t **e, size_t *len)
{
	uint64_t ids[8 * 5];
	char client[16], peer[16];
	const char *name = names[take(in) % 8];
	uint32_t rf = take(in) % 6, parts = take(in) % 9;
	struct ox_cluster_kv kv[3];
	const char *reset[3];

	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
		ids[i] = take(in) % 6;
	for (int i = 0; i < 3; i++) {
		kv[i].key = keys[take(in) % 4];
		kv[i].value = values[take(in) % 4];
		reset[i] = keys[take(in) % 4];
	}
	switch (take(in) % 8) {
	case 0: {
		snprintf(client, sizeof(client), "h%u:%u", take(in) % 8,
			 take(in) % 3);
		snprintf(peer, sizeof(peer), "h%u:9", take(in) % 8);
		struct ox_cluster_node n = { .id = take(in) % 7,
			.client_address = client, .peer_address = peer };
		return ox_cluster_entry_register_node(&n, e, len);
	}
	case 1: {
		struct ox_cluster_topic_spec spec = { .name = name,
			.partitions = parts, .replication_factor = rf,
			.configs = kv, .configs_n = take(in) % 4,
			.assignment = ids };
		return ox_cluster_entry_create_topic(&spec, e, len);
	}
	case 2:
		return ox_cluster_entry_delete_topic(name, take(in) % 4, e,
						     len);
	case 3:
		return ox_cluster_entry_alter_configs(name, kv, take(in) % 4,
						      reset, take(in) % 4, e,
						      len);
	case 4:
		return ox_cluster_entry_add_partitions(name, parts, rf, ids, e,
						       len);
	case 5:
		return ox_cluster_entry_reassign_partition(name, take(in) % 4,
							   ids, rf, e, len);
	case 6:
		return ox_cluster_entry_partition_moved(name, take(in) % 4,
							take(in) % 4,
							take(in) % 3, e, len);
	default:
		return ox_cluster_entry_noop(e, len);
	}
}

// Three nodes and a topic "t" placed over them.
static void seed_state(struct ox_cluster *c)
{
	uint64_t a[2 * 3];
	uint8_t *e;
	size_t len;

	for (uint64_t id = 1; id <= 3; id++) {
		char client[16], peer[16];
		snprintf(client, sizeof(client), "n%u:1", (unsigned)id);
		snprintf(peer, sizeof(peer), "n%u:2", (unsigned)id);
		struct ox_cluster_node n = { .id = id, .client_address = client,
			.peer_address = peer };
		CHECK(ox_cluster_entry_register_node(&n, &e, &len) == 0);
		apply_one(c, e, len);
		free(e);
	}
	CHECK(ox_cluster_place(c, NULL, 0, 2, 3, a) == 0);
	struct ox_cluster_topic_spec spec = { .name = "t", .partitions = 2,
		.replication_factor = 3, .assignment = a };
	CHECK(ox_cluster_entry_create_topic(&spec, &e, &len) == 0);
	apply_one(c, e, len);
	free(e);
}

// Snapshots c, restores into a fresh state and compares the bytes.
static void round_trip(const struct ox_cluster *c)
{
	struct ox_cluster *r = NULL;
	uint8_t *a, *b;
	size_t na, nb;

	CHECK(ox_cluster_snapshot(c, &a, &na) == 0);
	CHECK(ox_cluster_create(&r) == 0);
	CHECK(ox_cluster_restore(r, a, na) == 0);
	CHECK(ox_cluster_snapshot(r, &b, &nb) == 0);
	CHECK(na == nb && memcmp(a, b, na) == 0);
	CHECK(ox_cluster_applied_index(r) == ox_cluster_applied_index(c));
	CHECK(ox_cluster_topics_n(r) == ox_cluster_topics_n(c));
	CHECK(ox_cluster_partitions_total(r) == ox_cluster_partitions_total(c));
	free(a);
	free(b);
	ox_cluster_destroy(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ox_cluster *c = NULL;
	struct input in = { data, size };

	CHECK(ox_cluster_create(&c) == 0);
	seed_state(c);
	for (int steps = 0; in.n > 0 && steps < 64; steps++) {
		uint8_t *e = NULL;
		size_t len = 0;
		uint8_t op = take(&in);
		if (op & 1) {
			len = take(&in);
			len = len < in.n ? len : in.n;
			e = malloc(len + 1);
			CHECK(e != NULL);
			memcpy(e, in.p, len);
			in.p += len;
			in.n -= len;
		} else if (structured(&in, &e, &len) < 0) {
			continue;
		}
		apply_one(c, e, len);
		free(e);
	}
	round_trip(c);

	// The input as a snapshot: restored whole or refused, never half.
	struct ox_cluster *s = NULL;
	CHECK(ox_cluster_create(&s) == 0);
	int rc = ox_cluster_restore(s, data, size);
	CHECK(rc == 0 || rc == -OX_ECORRUPT || rc == -OX_EUNSUPPORTED);
	if (rc == 0)
		round_trip(s);
	else
		CHECK(ox_cluster_topics_n(s) == 0 &&
		      ox_cluster_nodes_n(s) == 0);
	ox_cluster_destroy(s);
	ox_cluster_destroy(c);
	return 0;
}
