// SPDX-License-Identifier: Apache-2.0
//
// The replicas of a cluster test's one topic, read offline once every
// node has stopped (log_digest.h), checked against the record ledger
// (ledger.h).
#ifndef OX_TESTS_INTEGRATION_REPLICAS_H
#define OX_TESTS_INTEGRATION_REPLICAS_H

#include <stddef.h>
#include <stdint.h>

#include "tests/integration/ledger.h"

// For each partition q of the one cluster topic on nodes[0, n) (node ids
// 1..n): reads every replica's log offline and CHECKs that each record in
// it is one of [0, sent) that ok (with arg) accepts, stored once; that it
// holds every acknowledged record of q at its offset; and that all the
// replicas start at one offset and hold the same batches up to end[q] at
// least. what names the moment in the messages.
void bc_check_replicas(const char *what, const struct bc_broker *nodes, int n,
		       int partitions, const int64_t *end, size_t sent,
		       bc_record_ok ok, void *arg);

#endif
