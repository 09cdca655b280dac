// SPDX-License-Identifier: Apache-2.0
//
// Unit tests of the idempotent producers' table (broker/replica/
// producers.h): next batch, retries found with their offsets (D1), gaps
// and stale epochs refused, sequences wrapping, cuts of the log, and
// eviction of the least recently written producer (D2).
#include <criterion/criterion.h>
#include <stdint.h>

#include "broker/replica/producers.h"
#include "proto/error.h"

static struct ox_batch_header hdr(int64_t pid, int16_t epoch, int32_t seq,
				  uint32_t records, int64_t base)
{
	return (struct ox_batch_header){
		.producer_id = pid,
		.producer_epoch = epoch,
		.base_sequence = seq,
		.last_offset_delta = records - 1,
		.record_count = records,
		.base_offset = base,
	};
}

static int check(struct ox_producers *ps, struct ox_batch_header h,
		 int64_t *base, int64_t *last)
{
	return ox_producers_check(ps, &h, base, last);
}

static void record(struct ox_producers *ps, struct ox_batch_header h)
{
	cr_assert_eq(ox_producers_record(ps, &h), 0);
}

Test(producers, next_batches_retries_and_gaps)
{
	struct ox_producers *ps = ox_producers_create();
	int64_t base = -1, last = -1;

	cr_assert_not_null(ps);
	// An unknown producer starts anywhere.
	cr_assert_eq(check(ps, hdr(7, 0, 0, 10, 0), &base, &last),
		     OX_PRODUCERS_NEW);
	record(ps, hdr(7, 0, 0, 10, 100));
	record(ps, hdr(7, 0, 10, 5, 110));
	cr_assert_eq(ox_producers_count(ps), 1);
	// The next batch follows the last one.
	cr_assert_eq(check(ps, hdr(7, 0, 15, 3, 0), &base, &last),
		     OX_PRODUCERS_NEW);
	// A retry of either batch gets its stored offsets.
	cr_assert_eq(check(ps, hdr(7, 0, 0, 10, 0), &base, &last),
		     OX_PRODUCERS_DUPLICATE);
	cr_assert_eq(base, 100);
	cr_assert_eq(last, 109);
	cr_assert_eq(check(ps, hdr(7, 0, 10, 5, 0), &base, &last),
		     OX_PRODUCERS_DUPLICATE);
	cr_assert_eq(base, 110);
	cr_assert_eq(last, 114);
	// A gap, and a batch that overlaps a stored one without matching it.
	cr_assert_eq(check(ps, hdr(7, 0, 16, 3, 0), &base, &last),
		     -OX_ESEQUENCE);
	cr_assert_eq(check(ps, hdr(7, 0, 12, 3, 0), &base, &last),
		     -OX_EDUPLICATE);
	// Another producer is independent.
	cr_assert_eq(check(ps, hdr(8, 0, 40, 1, 0), &base, &last),
		     OX_PRODUCERS_NEW);
	// Negative sequences or epochs are refused.
	cr_assert_eq(check(ps, hdr(7, 0, -5, 1, 0), &base, &last),
		     -OX_ESEQUENCE);
	ox_producers_destroy(ps);
}

Test(producers, epochs)
{
	struct ox_producers *ps = ox_producers_create();
	int64_t base, last;

	record(ps, hdr(3, 2, 0, 4, 0));
	cr_assert_eq(check(ps, hdr(3, 1, 4, 1, 0), &base, &last),
		     -OX_ESEQUENCE, "an older epoch is fenced");
	cr_assert_eq(check(ps, hdr(3, 3, 0, 1, 0), &base, &last),
		     OX_PRODUCERS_NEW, "a newer epoch starts again");
	record(ps, hdr(3, 3, 0, 1, 4));
	cr_assert_eq(check(ps, hdr(3, 3, 0, 1, 0), &base, &last),
		     OX_PRODUCERS_DUPLICATE);
	cr_assert_eq(base, 4);
	cr_assert_eq(check(ps, hdr(3, 2, 0, 4, 0), &base, &last),
		     -OX_ESEQUENCE, "the old epoch's batches are gone");
	ox_producers_destroy(ps);
}

Test(producers, sequences_wrap)
{
	struct ox_producers *ps = ox_producers_create();
	int64_t base, last;

	record(ps, hdr(9, 0, INT32_MAX - 1, 2, 50));
	cr_assert_eq(check(ps, hdr(9, 0, 0, 3, 0), &base, &last),
		     OX_PRODUCERS_NEW, "after INT32_MAX comes 0");
	record(ps, hdr(9, 0, 0, 3, 52));
	cr_assert_eq(check(ps, hdr(9, 0, 3, 1, 0), &base, &last),
		     OX_PRODUCERS_NEW);
	cr_assert_eq(check(ps, hdr(9, 0, INT32_MAX - 1, 2, 0), &base, &last),
		     OX_PRODUCERS_DUPLICATE);
	cr_assert_eq(base, 50);
	cr_assert_eq(check(ps, hdr(9, 0, INT32_MAX - 10, 1, 0), &base, &last),
		     -OX_EDUPLICATE, "behind across the wrap");
	ox_producers_destroy(ps);
}

Test(producers, the_ring_keeps_the_newest)
{
	struct ox_producers *ps = ox_producers_create();
	int64_t base, last;
	uint32_t n = PRODUCERS_RING + 3;

	for (uint32_t i = 0; i < n; i++)
		record(ps, hdr(1, 0, (int32_t)i * 2, 2, (int64_t)i * 2));
	for (uint32_t i = 0; i < n; i++) {
		int rc = check(ps, hdr(1, 0, (int32_t)i * 2, 2, 0), &base,
			       &last);
		if (i < n - PRODUCERS_RING) {
			cr_assert_eq(rc, -OX_EDUPLICATE, "batch %u", i);
		} else {
			cr_assert_eq(rc, OX_PRODUCERS_DUPLICATE, "batch %u", i);
			cr_assert_eq(base, (int64_t)i * 2);
		}
	}
	ox_producers_destroy(ps);
}

Test(producers, cuts_forget_what_the_log_dropped)
{
	struct ox_producers *ps = ox_producers_create();
	int64_t base, last;

	record(ps, hdr(1, 0, 0, 10, 0));   // [0, 9]
	record(ps, hdr(2, 0, 0, 10, 10));  // [10, 19]
	record(ps, hdr(1, 0, 10, 10, 20)); // [20, 29]
	ox_producers_truncate(ps, 25);     // drops [20, 29]
	cr_assert_eq(check(ps, hdr(1, 0, 10, 10, 0), &base, &last),
		     OX_PRODUCERS_NEW, "the cut batch is the next again");
	cr_assert_eq(check(ps, hdr(1, 0, 0, 10, 0), &base, &last),
		     OX_PRODUCERS_DUPLICATE);
	ox_producers_truncate(ps, 10); // drops producer 2 whole
	cr_assert_eq(ox_producers_count(ps), 1);
	cr_assert_eq(check(ps, hdr(2, 0, 0, 10, 0), &base, &last),
		     OX_PRODUCERS_NEW);
	ox_producers_clear(ps);
	cr_assert_eq(ox_producers_count(ps), 0);
	ox_producers_destroy(ps);
}

Test(producers, the_least_recently_written_goes_first)
{
	struct ox_producers *ps = ox_producers_create();
	int64_t base, last;

	for (int64_t id = 1; id <= PRODUCERS_MAX; id++)
		record(ps, hdr(id, 0, 0, 1, id));
	record(ps, hdr(1, 0, 1, 1, 9999)); // 1 is now the newest
	record(ps, hdr(PRODUCERS_MAX + 1, 0, 0, 1, 10000));
	cr_assert_eq(ox_producers_count(ps), PRODUCERS_MAX);
	cr_assert_eq(check(ps, hdr(1, 0, 1, 1, 0), &base, &last),
		     OX_PRODUCERS_DUPLICATE);
	// Producer 2 was evicted: its old batch is taken again (D2).
	cr_assert_eq(check(ps, hdr(2, 0, 5, 1, 0), &base, &last),
		     OX_PRODUCERS_NEW);
	cr_assert_eq(check(ps, hdr(3, 0, 5, 1, 0), &base, &last),
		     -OX_ESEQUENCE);
	ox_producers_destroy(ps);
}
