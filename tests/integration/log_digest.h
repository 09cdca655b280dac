// SPDX-License-Identifier: Apache-2.0
//
// A partition log read offline, after its oxbowd has stopped: the list of
// its batches (offsets, length, attributes, term and the XXH3-64 of their
// bytes) and, through a callback, every record of its data batches. The
// cluster tests compare the replicas of a partition with it: the logs of a
// Raft group must agree batch for batch wherever they all hold data. It
// opens the log with broker/log, so it recovers the directory exactly as
// oxbowd would at start (a torn tail is cut); it never writes batches.
// It includes neither broker_common.h nor log_common.h and reports errors
// as return values, so both kinds of program can use it. Not a library:
// a program compiles this file in.
#ifndef OX_TESTS_INTEGRATION_LOG_DIGEST_H
#define OX_TESTS_INTEGRATION_LOG_DIGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/batch.h"

// Directories under data.dir/topics whose id is at least this are the
// topics of a cluster (broker/server: OX_CLUSTER_TOPIC_ID_BASE).
#define LD_CLUSTER_TOPIC_ID_BASE (UINT64_C(1) << 40)

// Room for a partition directory.
#define LD_PATH_MAX 320

// One batch as stored.
struct ld_batch {
	int64_t base;        // base offset
	int64_t last;        // last offset
	uint32_t len;        // bytes, header included
	uint16_t attributes; // OX_BATCH_ATTR_CONTROL: a leader's no-op
	uint64_t term;
	uint64_t hash;       // XXH3-64 of all len bytes
};

// A log's batches in offset order (malloc'd, freed by ld_log_free), and
// the offsets the log reported: first stored and next to assign.
struct ld_log {
	struct ld_batch *batches;
	size_t n;
	int64_t start;
	int64_t end;
};

// Called with every record of every data (not control) batch, in offset
// order; `b` is the batch holding it. Borrowed for the call only.
typedef void (*ld_record_cb)(void *arg, const struct ld_batch *b,
			     const struct ox_record *r);

// Reads the log in `dir` (borrowed) into *out, calling fn (may be NULL)
// for its records. Returns 0, or a negative error: -ENOENT when dir does
// not exist, the error of ox_log_open or ox_log_read, -OX_ECORRUPT when a
// batch fails its checks, -OX_EOFFSET when batches do not follow each
// other without gaps. *out is empty on error.
int ld_log_read(const char *dir, ld_record_cb fn, void *arg,
		struct ld_log *out);
void ld_log_free(struct ld_log *log);

// Writes "<data_dir>/topics/<id>" into buf (cap bytes) for the one cluster
// topic directory under data_dir other than the cluster's __offsets (a
// directory of BC_OFFSETS_PARTITIONS partitions). Returns 0, -ENOENT when there is none,
// -EEXIST when there are several (the caller must then name the topic's
// directory another way), -ENAMETOOLONG, or -errno of opendir.
int ld_cluster_topic_dir(const char *data_dir, char *buf, size_t cap);

// Compares the batches of n logs (replicas of one partition) in the part
// where every one of them holds data: from the highest start to the
// lowest end. Returns that lowest end when every batch there is the same
// in every log (offsets, length, attributes, term and hash), or -1 with
// the first difference described in why (cap bytes).
int64_t ld_logs_agree(const struct ld_log *logs, size_t n, char *why,
		      size_t cap);

#endif
