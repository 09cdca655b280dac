// SPDX-License-Identifier: Apache-2.0
//
// Private state of the producer, shared by producer.c (the application
// side: send, flush, pending, destroy) and producer_io.c (the I/O thread:
// lingering, requests, responses, retries, callbacks).
//
// Design notes.
//   One mutex (mu) guards everything the application threads touch: the
//   topic table, open batches, the ready list, memory accounting and the
//   outstanding list. The I/O thread takes batches off the ready list
//   under mu, then encodes, sends and completes them without it, so a
//   send never waits for a socket. Invariants:
//   1. A batch is in exactly one place: a partition's open slot, the
//      ready list, an in-flight request, or (being completed) the I/O
//      thread's hands; only the open one is ever written by send.
//   2. mem_used is the sum of `cap` over batches not yet completed, and
//      never exceeds buffer.memory, except by a single batch sized for
//      one record larger than batch.size, admitted only when it fits.
//   3. The outstanding list holds every batch not yet completed, in id
//      order; flush waits until its head is newer than the flush.
//   4. The per-record callback arrays of a batch have one slot per record
//      added (cbs_n == builder count).
#ifndef OX_CLIENT_PRODUCER_INT_H
#define OX_CLIENT_PRODUCER_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "client/client_int.h"
#include "proto/batch.h"

struct rec_cb {
	ox_delivery_cb cb;
	void *opaque;
};

struct pbatch {
	struct pbatch *next;              // ready list, free list
	struct pbatch *all_prev, *all_next; // outstanding list
	uint64_t id;
	struct ptopic *topic;
	uint32_t partition;
	uint8_t *buf;
	size_t cap;
	struct ox_batch_builder b;
	size_t len;                       // finished length; 0 while open
	struct rec_cb *cbs;
	size_t cbs_n, cbs_cap;
	int64_t created_ms;
	int64_t deadline_ms;              // delivery.timeout.ms after created
	int64_t retry_at_ms;
	int64_t backoff_ms;
	int64_t attempts;
	int err;                          // final result while completing
	int64_t base_offset;
	uint64_t scan;                    // request-building pass marker
	// Idempotence (I/O thread): the numbers the batch was first sent
	// with, kept across retries; set again only under a new producer
	// id or partition epoch (after an earlier batch failed for good).
	bool seq_set;
	int64_t pid;
	int16_t epoch;
	int32_t base_seq;
};

enum { T_NEW, T_FETCHING, T_KNOWN, T_ERROR };

struct ppart {
	struct pbatch *open;
	int32_t leader;                   // I/O thread only
	uint64_t blocked_scan;            // skipped in this pass: keep order
	// Idempotence (I/O thread only): the next record's sequence, and
	// the epoch the partition's batches carry; a batch that fails for
	// good leaves a gap, so the epoch moves on and sequences restart.
	int32_t next_seq;
	int16_t epoch;
};

struct ptopic {
	struct ptopic *next;
	char *name;
	int state;
	int err;                          // with T_ERROR
	uint32_t n;                       // partitions
	struct ppart *parts;
	uint32_t sticky;
	uint64_t sticky_id;
};

// One produce request in flight on a node connection.
struct preq {
	bool used;
	uint64_t corr;
	int64_t deadline_ms;
	uint64_t end_pos;                 // conn byte count when fully written
	struct pbatch **batches;
	size_t n;
};

struct pnode {
	int32_t id;
	struct ox_conn conn;
	struct preq *reqs;                // max.in.flight slots
	size_t inflight;
	int64_t connect_after_ms;         // backoff after a failed connect
	int64_t connect_started_ms;
	bool addr_known;
};

struct ox_producer {
	struct ox_client cl;              // metadata; I/O thread only
	const struct ox_conf *conf;       // &cl.conf
	pthread_mutex_t mu;
	pthread_cond_t cv_space;          // memory freed
	pthread_cond_t cv_done;           // batches completed
	pthread_cond_t cv_meta;           // metadata applied
	pthread_t thread;
	int wake_fd;                      // eventfd
	bool wake_pending;
	bool closing;
	bool stop;
	struct ptopic *topics;
	struct ptopic *last_topic;
	struct pbatch *ready_head, *ready_tail;
	struct pbatch *free_list;
	size_t free_n;
	struct pbatch *all_head, *all_tail;
	uint64_t next_batch_id;
	uint64_t flush_upto;
	size_t mem_used;
	size_t batch_cap;                 // capacity of a standard batch
	size_t req_overhead;              // room kept for a request's body
	atomic_size_t pending;
	atomic_bool meta_wanted;          // also set by the I/O thread unlocked
	int64_t meta_next_ms;
	// Idempotence: fixed at create; the id (-1 until the broker gave
	// one) and when to ask again are the I/O thread's.
	bool idempotent;
	int64_t pid;
	int16_t pid_epoch;
	int64_t pid_next_ms;
	// I/O thread only.
	struct pnode *nodes;
	size_t nodes_n;
	uint64_t scan;
};

// producer_io.c
void *ox_producer_io_main(void *arg);
// Wakes the I/O thread; mu held.
void ox_producer_wake(struct ox_producer *p);
// Moves an open batch to the ready list; mu held.
void ox_producer_close_batch(struct ox_producer *p, struct pbatch *b);
// Frees a batch's memory (or keeps it for reuse); mu held.
void ox_producer_batch_release(struct ox_producer *p, struct pbatch *b);
// Fills *ts with now + ms on CLOCK_MONOTONIC.
void ox_deadline_ts(struct timespec *ts, int64_t ms);

#endif
