// SPDX-License-Identifier: Apache-2.0
//
// Helpers shared by the broker/cluster unit tests: building entries with
// the module's encoders and applying them, and comparing snapshots.
#ifndef OX_TESTS_UNIT_CLUSTER_HELPERS_H
#define OX_TESTS_UNIT_CLUSTER_HELPERS_H

#include <stddef.h>
#include <stdint.h>

#include "broker/cluster/cluster.h"

// A state that the test owns; every helper asserts with Criterion.
struct ox_cluster *tc_new(void);

// Applies entry bytes (freed here) at the next index (applied + 2, so
// indices are not dense, like batch ends) and returns the verdict.
int tc_apply(struct ox_cluster *c, uint8_t *entry, size_t len);

// Applies entry bytes (freed here) that must be refused with `verdict`,
// and asserts the state is exactly that of a no-op at the same index.
void tc_refused(struct ox_cluster *c, uint8_t *entry, size_t len,
		int verdict);

// Builders: each returns the verdict of applying its entry.
int tc_node(struct ox_cluster *c, uint64_t id);
int tc_node_at(struct ox_cluster *c, uint64_t id, const char *client,
	       const char *peer, const char *rack);
int tc_topic(struct ox_cluster *c, const char *name, uint32_t partitions,
	     uint32_t rf, const uint64_t *assignment);
// Places with ox_cluster_place over every node, then creates.
int tc_topic_placed(struct ox_cluster *c, const char *name,
		    uint32_t partitions, uint32_t rf);
int tc_delete(struct ox_cluster *c, const char *name, uint64_t id);

// The state's snapshot (malloc'd; the caller frees it).
uint8_t *tc_snap(const struct ox_cluster *c, size_t *len);
// Asserts that two states have byte-identical snapshots (C1).
void tc_same(const struct ox_cluster *a, const struct ox_cluster *b);
// Asserts that c's snapshot is still snap[0, len).
void tc_unchanged(const struct ox_cluster *c, const uint8_t *snap,
		  size_t len);

#endif
