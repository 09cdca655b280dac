// SPDX-License-Identifier: Apache-2.0
//
// The record ledger of a broker integration program: record i is the
// i-th record it hands to a producer (its value starts with i, see
// bc_value_fill); the ledger keeps whether its delivery callback said it
// was acknowledged, where (partition, offset), and where reading the
// topic back found it. One per program (bc_led). The delivery callback
// (bc_delivered, opaque = i) runs on the producer's thread; everything
// else on the test's.
#ifndef OX_TESTS_INTEGRATION_LEDGER_H
#define OX_TESTS_INTEGRATION_LEDGER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tests/integration/broker_common.h"

// A record's delivery state.
enum {
	BC_UNANSWERED = 0,
	BC_ACKED = 1,
	BC_FAILED = 2, // a failed delivery, or refused at send
};

struct bc_ledger {
	size_t cap;             // records it holds room for
	_Atomic uint8_t *state; // BC_*
	int32_t *acked_part;    // where the callback said (acknowledged)
	int64_t *acked_off;
	int32_t *found_part;    // where reading back found it; -1: not
	int64_t *found_off;
	atomic_int first_err;   // the first and last delivery error (0: none)
	atomic_int last_err;
	atomic_size_t acked_n;  // callbacks so far, by outcome
	atomic_size_t failed_n;
};

extern struct bc_ledger bc_led;

// Makes room for cap records (dies without memory); nothing is found or
// acknowledged yet.
void bc_ledger_init(size_t cap);

// The delivery callback of every record: opaque is its index.
void bc_delivered(void *opaque, int err, const char *topic, int32_t part,
		  int64_t off);

// Records [0, n) by delivery state.
struct bc_tally {
	size_t acked;
	size_t failed; // failed deliveries and records refused at send
	size_t unanswered;
};
struct bc_tally bc_ledger_tally(size_t n);

// Forgets where records [0, n) were found, before reading back again.
void bc_ledger_forget_found(size_t n);

// What one read back saw.
struct bc_read {
	size_t got;  // records read below the ends
	size_t bad;  // not one that was sent, or damaged
	size_t dups; // found a second time
};

// Whether a stored record (key, and value of value_len bytes) is record
// i's, intact; i is below the count sent, and the value starts with it.
typedef bool (*bc_record_ok)(void *arg, int64_t i, const void *key,
			     size_t key_len, size_t value_len);

// Reads partitions [0, partitions) of topic from their start up to
// end[q] (records at or past it are skipped) with a consumer of b (or of
// the nodes in `bootstrap`, when not NULL), noting where each record of
// [0, sent) is. CHECKs, the first few of each: a record that is not one
// that was sent or that ok (called with arg) refuses, one found twice,
// offsets that do not rise, a record in another partition, a poll error,
// and no progress for stall_ms.
struct bc_read bc_read_back(const struct bc_broker *b, const char *bootstrap,
			    const char *topic, int partitions,
			    const int64_t *end, size_t sent, bc_record_ok ok,
			    void *arg, int64_t stall_ms);

// A paced sender on its own thread: record after record (record i: key
// "key-<i % keys>", a value of value_bytes filled by bc_value_fill) to
// partition `partition` of `topic` (read for every record, so the test may
// switch topics while it runs), per_ms records a millisecond, until
// stopped or `max` records (at most the ledger's) were handed over. A send
// the producer refuses marks its record BC_FAILED and counts in refused
// (its first error is printed). Set the first six fields, then start.
struct bc_sender {
	struct ox_producer *p;
	const char *_Atomic topic;
	int32_t partition;        // OX_PARTITION_ANY: by key
	unsigned per_ms;
	unsigned keys;
	size_t value_bytes;       // at least 16, at most 256
	atomic_bool stop;
	size_t sent;              // records handed over; read once stopped
	size_t refused;
	pthread_t th;
};
void bc_sender_start(struct bc_sender *s);
// Stops the thread and waits for it.
void bc_sender_stop(struct bc_sender *s);
// The key of record i among `keys` keys.
size_t bc_sender_key(uint64_t i, unsigned keys, char *buf, size_t cap);
// A bc_record_ok for the sender's records (arg: the struct bc_sender).
bool bc_sender_record_ok(void *arg, int64_t i, const void *key,
			 size_t key_len, size_t value_len);

// Counts records [0, n) acknowledged (into *acked, may be NULL) and
// returns how many of them were not found where their callback said,
// CHECKing the first few (what names the moment in the message).
size_t bc_ledger_missing(const char *what, size_t n, size_t *acked);

#endif
