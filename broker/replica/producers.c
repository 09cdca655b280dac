// SPDX-License-Identifier: Apache-2.0
//
// The idempotent producers' table of one partition (producers.h): a hash
// of producer ids, each with a ring of its newest batches, and a list
// from least to most recently written for eviction (D2).
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "broker/replica/producers.h"
#include "proto/assert.h"
#include "proto/error.h"

// Hash buckets: a power of two above PRODUCERS_MAX keeps chains short.
#define BUCKETS 8192u
// Sequences wrap within [0, SEQ_SPAN).
#define SEQ_SPAN (INT64_C(1) << 31)

struct seen {
	int32_t first_seq;
	int32_t last_seq;
	int64_t base;
	int64_t last;
};

struct pentry {
	struct pentry *chain;
	struct pentry *older, *newer; // the eviction list
	int64_t id;
	int16_t epoch;
	uint32_t head; // oldest batch in ring
	uint32_t n;
	struct seen ring[PRODUCERS_RING];
};

struct ox_producers {
	struct pentry *buckets[BUCKETS];
	struct pentry *oldest, *newest;
	uint32_t count;
};

static uint32_t bucket_of(int64_t id)
{
	uint64_t x = (uint64_t)id * UINT64_C(0x9E3779B97F4A7C15);

	return (uint32_t)(x >> 51) & (BUCKETS - 1);
}

static struct pentry *find(const struct ox_producers *ps, int64_t id)
{
	struct pentry *e = ps->buckets[bucket_of(id)];

	while (e != NULL && e->id != id)
		e = e->chain;
	return e;
}

static void list_unlink(struct ox_producers *ps, struct pentry *e)
{
	if (e->older != NULL)
		e->older->newer = e->newer;
	else
		ps->oldest = e->newer;
	if (e->newer != NULL)
		e->newer->older = e->older;
	else
		ps->newest = e->older;
	e->older = e->newer = NULL;
}

static void list_push_newest(struct ox_producers *ps, struct pentry *e)
{
	e->older = ps->newest;
	e->newer = NULL;
	if (ps->newest != NULL)
		ps->newest->newer = e;
	else
		ps->oldest = e;
	ps->newest = e;
}

static void forget(struct ox_producers *ps, struct pentry *e)
{
	struct pentry **p = &ps->buckets[bucket_of(e->id)];

	while (*p != e)
		p = &(*p)->chain;
	*p = e->chain;
	list_unlink(ps, e);
	OX_ASSERT(ps->count > 0);
	ps->count--;
	free(e);
}

struct ox_producers *ox_producers_create(void)
{
	return calloc(1, sizeof(struct ox_producers));
}

void ox_producers_clear(struct ox_producers *ps)
{
	while (ps->oldest != NULL)
		forget(ps, ps->oldest);
	OX_ASSERT(ps->count == 0);
}

void ox_producers_destroy(struct ox_producers *ps)
{
	if (ps == NULL)
		return;
	ox_producers_clear(ps);
	free(ps);
}

uint32_t ox_producers_count(const struct ox_producers *ps)
{
	return ps->count;
}

static int32_t seq_add(int32_t seq, int64_t n)
{
	return (int32_t)(((int64_t)seq + n) % SEQ_SPAN);
}

// The last sequence of a batch: one per offset it spans (compaction may
// leave fewer records, never fewer offsets).
static int32_t last_seq_of(const struct ox_batch_header *h)
{
	return seq_add(h->base_sequence, h->last_offset_delta);
}

static const struct seen *newest_batch(const struct pentry *e)
{
	OX_ASSERT(e->n > 0);
	return &e->ring[(e->head + e->n - 1) % PRODUCERS_RING];
}

int ox_producers_check(const struct ox_producers *ps,
		       const struct ox_batch_header *h, int64_t *base_out,
		       int64_t *last_out)
{
	const struct pentry *e = find(ps, h->producer_id);

	OX_ASSERT(ox_producers_idempotent(h));
	if (h->base_sequence < 0 || h->producer_epoch < 0)
		return -OX_ESEQUENCE;
	if (e == NULL || e->n == 0 || h->producer_epoch > e->epoch)
		return OX_PRODUCERS_NEW; // D2, or a new epoch
	if (h->producer_epoch < e->epoch)
		return -OX_ESEQUENCE;
	int32_t expected = seq_add(newest_batch(e)->last_seq, 1);
	if (h->base_sequence == expected)
		return OX_PRODUCERS_NEW;
	for (uint32_t i = 0; i < e->n; i++) {
		const struct seen *b =
			&e->ring[(e->head + i) % PRODUCERS_RING];
		if (b->first_seq == h->base_sequence &&
		    b->last_seq == last_seq_of(h)) {
			*base_out = b->base;
			*last_out = b->last;
			return OX_PRODUCERS_DUPLICATE;
		}
	}
	// Ahead of the next sequence by less than half the span: a gap;
	// otherwise behind it: a batch older than the ring.
	int64_t ahead = ((int64_t)h->base_sequence - expected + SEQ_SPAN) %
			SEQ_SPAN;
	return ahead < SEQ_SPAN / 2 ? -OX_ESEQUENCE : -OX_EDUPLICATE;
}

static struct pentry *entry_get(struct ox_producers *ps, int64_t id)
{
	struct pentry *e = find(ps, id);

	if (e != NULL) {
		list_unlink(ps, e);
		list_push_newest(ps, e);
		return e;
	}
	if (ps->count == PRODUCERS_MAX)
		forget(ps, ps->oldest); // D2
	e = calloc(1, sizeof(*e));
	if (e == NULL)
		return NULL;
	e->id = id;
	uint32_t bk = bucket_of(id);
	e->chain = ps->buckets[bk];
	ps->buckets[bk] = e;
	list_push_newest(ps, e);
	ps->count++;
	return e;
}

int ox_producers_record(struct ox_producers *ps,
			const struct ox_batch_header *h)
{
	struct pentry *e;

	if (!ox_producers_idempotent(h) || h->base_sequence < 0 ||
	    h->producer_epoch < 0)
		return 0;
	e = entry_get(ps, h->producer_id);
	if (e == NULL)
		return -ENOMEM;
	if (e->n > 0 && h->producer_epoch != e->epoch)
		e->n = 0; // a new epoch starts its sequences again
	e->epoch = h->producer_epoch;
	if (e->n == PRODUCERS_RING) {
		e->head = (e->head + 1) % PRODUCERS_RING;
		e->n--;
	}
	e->ring[(e->head + e->n) % PRODUCERS_RING] = (struct seen){
		.first_seq = h->base_sequence,
		.last_seq = last_seq_of(h),
		.base = h->base_offset,
		.last = h->base_offset + h->last_offset_delta,
	};
	e->n++;
	return 0;
}

void ox_producers_truncate(struct ox_producers *ps, int64_t at)
{
	struct pentry *e = ps->oldest, *next;

	for (; e != NULL; e = next) {
		next = e->newer;
		while (e->n > 0 && newest_batch(e)->last >= at)
			e->n--; // D1: the newest are the ones cut
		if (e->n == 0)
			forget(ps, e);
	}
}
