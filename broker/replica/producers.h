// SPDX-License-Identifier: Apache-2.0
//
// What one partition knows of its idempotent producers: per producer id,
// its epoch and its last few batches (sequence range and offsets), so a
// leader can tell a retry of a batch it already has (a duplicate: answer
// with the offsets it got the first time) from the next batch (append)
// and from a gap (refuse). It is fed every batch that enters the log in
// Raft's order, whether the leader proposed it, a follower received it
// or a scan of the log at open found it, and it is cut when the log is:
// so every replica holds the same table and a new leader dedups retries
// that crossed the leadership change. It does no I/O; broker/replica
// owns one per replica and calls it.
//
// Invariants:
//   D1  A producer's ring holds its newest batches in log order, at most
//       PRODUCERS_RING of them, every one below the log's end.
//   D2  At most PRODUCERS_MAX producers are kept; the least recently
//       written one goes first. A producer no longer known is taken at
//       any sequence (a retry of its batches is then not recognised).
//
// Only ids above 0 name idempotent producers: -1 (OX_PRODUCER_NONE) is
// the format's "none", and batches the broker writes itself leave 0.
//
// Sequences are those of the batch format: a batch's base_sequence
// numbers its first record, the next batch starts at base_sequence +
// last_offset_delta + 1, and they wrap from INT32_MAX to 0.
#ifndef OX_BROKER_REPLICA_PRODUCERS_H
#define OX_BROKER_REPLICA_PRODUCERS_H

#include <stdbool.h>
#include <stdint.h>

#include "proto/batch.h"

// Batches kept per producer: a client keeps at most five requests in
// flight per connection, one batch of a partition each; the rest is room
// for the batches a leader change leaves on both sides.
#define PRODUCERS_RING 8u
// Producers kept per partition (about 250 bytes each): enough for every
// live producer of a partition; short-lived ones age out first.
#define PRODUCERS_MAX 4096u

struct ox_producers;

// The verdict on a batch a leader is asked to append.
enum ox_producers_verdict {
	OX_PRODUCERS_NEW = 0,       // append it
	OX_PRODUCERS_DUPLICATE = 1, // stored already, at *base..*last
};

struct ox_producers *ox_producers_create(void);
void ox_producers_destroy(struct ox_producers *ps);

// Whether a batch of header h comes from an idempotent producer.
static inline bool ox_producers_idempotent(const struct ox_batch_header *h)
{
	return h->producer_id > 0 &&
	       !(h->attributes & OX_BATCH_ATTR_CONTROL);
}

// Judges a batch of header h (ox_producers_idempotent).
// Returns OX_PRODUCERS_NEW, OX_PRODUCERS_DUPLICATE (with *base_out and
// *last_out, the offsets the batch was stored at), -OX_EDUPLICATE (an
// older batch than the ones still known: stored, offsets forgotten), or
// -OX_ESEQUENCE (a gap in the sequence, an epoch older than the
// producer's, or a negative sequence or epoch).
int ox_producers_check(const struct ox_producers *ps,
		       const struct ox_batch_header *h, int64_t *base_out,
		       int64_t *last_out);

// Records a batch that entered the log at [h->base_offset, base + delta].
// Batches without a producer id are ignored. Returns 0 or -ENOMEM (the
// producer is then unknown: taken at any sequence, D2).
int ox_producers_record(struct ox_producers *ps,
			const struct ox_batch_header *h);

// The log was cut at `at`: batches at or after it are forgotten.
void ox_producers_truncate(struct ox_producers *ps, int64_t at);

// The log was emptied: every producer is forgotten.
void ox_producers_clear(struct ox_producers *ps);

// Producers known (for tests and status).
uint32_t ox_producers_count(const struct ox_producers *ps);

#endif
