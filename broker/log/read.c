// SPDX-License-Identifier: Apache-2.0
//
// The read side of the partition log: ox_log_read (copy whole verified
// batches into a buffer), ox_log_read_slice (a file region for zero-copy
// sends), ox_log_offset_for_time (the time index) and ox_log_term_at. All
// of them find a segment by binary search, start at the floor entry of its
// sparse index and walk batch headers forward in chunks read with pread;
// none goes past the written prefix (I2). They run synchronously on the
// owner thread, through the page cache. The invariants are in log.c.
#include "broker/log/log_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto/assert.h"
#include "proto/error.h"

// Clamps *limit to the written offset (I2) and checks offset against
// [start, limit]. Returns 1 when there is something to read, 0 when
// offset == limit, -OX_EOFFSET outside.
static int read_bounds(const struct ox_log *log, int64_t offset,
		       int64_t *limit)
{
	if (*limit > log->written)
		*limit = log->written;
	if (offset < ox_log_start_offset(log) || offset > *limit)
		return -OX_EOFFSET;
	return offset < *limit;
}

// The batch holding offset or, in a compaction gap, the next batch; only
// batches wholly below limit count. Returns 1 with *segi, *pos, *hdr; 0
// when there is none; or a negative error.
static int find_batch(struct ox_log *log, int64_t offset, int64_t limit,
		      unsigned *segi, uint64_t *pos, struct ox_batch_header *hdr)
{
	OX_ASSERT(limit <= log->written);
	for (unsigned i = ox_log_seg_find(log, offset); i < log->nsegs; i++) {
		struct ox_segment *s = log->segs[i];
		if (s->base_offset >= limit)
			return 0;
		int rc = ox_segment_locate(s, &log->scan, offset,
					   s->written_bytes, pos, hdr);
		if (rc < 0)
			return rc;
		int64_t last = hdr->base_offset + hdr->last_offset_delta;
		// I2: written bytes hold only batches below `written`, and a
		// segment holds every offset below its end but for gaps: a
		// header saying otherwise is damaged.
		if (rc == 1 && last >= log->written)
			return -OX_ECORRUPT;
		if (rc == 1) {
			*segi = i;
			return last < limit;
		}
		if (offset < s->next_offset && offset < log->written)
			return -OX_ECORRUPT;
	}
	return 0;
}

struct read_state {
	int64_t limit;
	size_t max_bytes;
	uint8_t *buf;
	size_t cap;
	size_t used;
};

// Copies whole batches of seg from pos (the first is first_len bytes)
// into the buffer, verifying each (I4). Returns 1 when the segment's
// written bytes ran out (the read may go on in the next segment), 0 when
// it stopped at the byte budget, the limit or a corrupt batch, or a
// negative error (-OX_ECORRUPT only when nothing at all was read).
static int copy_batches(struct read_state *st, const struct ox_segment *seg,
			uint64_t pos, uint32_t first_len, int64_t *next)
{
	struct ox_batch_header h;
	size_t want = st->max_bytes > st->used ? st->max_bytes - st->used : 0;
	size_t p = 0, kept = 0;
	int rc;

	if (st->used == 0 && want < first_len)
		want = first_len; // at least one batch
	if (want > st->cap - st->used)
		want = st->cap - st->used;
	if (want > seg->written_bytes - pos)
		want = (size_t)(seg->written_bytes - pos);
	if (want < first_len)
		return 0;
	// I2: never past the segment's written bytes.
	OX_ASSERT(pos + want <= seg->written_bytes);
	uint8_t *dst = st->buf + st->used;
	ssize_t n = ox_pread_full(seg->fd, dst, want, pos);
	if (n < 0)
		return (int)n;
	while ((rc = ox_batch_next(dst, (size_t)n, &p, &h)) == 1) {
		if (h.base_offset + h.last_offset_delta >= st->limit)
			break;
		if (ox_batch_verify(dst + kept, h.length, NULL) < 0) {
			rc = -OX_ECORRUPT;
			break;
		}
		kept = p;
		*next = h.base_offset + h.last_offset_delta + 1;
	}
	OX_ASSERT(kept <= (size_t)n && st->used + kept <= st->cap);
	st->used += kept;
	if (rc == -OX_ECORRUPT)
		return st->used == 0 ? -OX_ECORRUPT : 0;
	return rc == 0 && pos + (uint64_t)n == seg->written_bytes;
}

int ox_log_read(struct ox_log *log, int64_t offset, size_t max_bytes,
		int64_t limit_offset, void *buf, size_t buf_cap,
		size_t *len_out)
{
	struct read_state st = {
		.max_bytes = max_bytes, .buf = buf, .cap = buf_cap,
	};
	struct ox_batch_header hdr;
	unsigned i;
	uint64_t pos;

	OX_ASSERT(log != NULL && len_out != NULL);
	*len_out = 0;
	st.limit = limit_offset;
	int rc = read_bounds(log, offset, &st.limit);
	if (rc <= 0)
		return rc;
	rc = find_batch(log, offset, st.limit, &i, &pos, &hdr);
	if (rc <= 0)
		return rc;
	if (hdr.length > buf_cap)
		return -ENOSPC;
	OX_ASSERT(buf != NULL);
	for (;;) {
		rc = copy_batches(&st, log->segs[i], pos, hdr.length, &offset);
		if (rc <= 0 || st.used >= max_bytes)
			break;
		// Go on with the first batch of a following segment.
		do {
			if (++i == log->nsegs ||
			    log->segs[i]->base_offset >= st.limit)
				goto done;
			rc = ox_segment_locate(log->segs[i], &log->scan, offset,
					       log->segs[i]->written_bytes,
					       &pos, &hdr);
		} while (rc == 0);
		if (rc < 0)
			break;
	}
done:
	if (rc < 0 && st.used == 0)
		return rc;
	*len_out = st.used;
	return 0;
}

int ox_log_read_slice(struct ox_log *log, int64_t offset, size_t max_bytes,
		      int64_t limit_offset, struct ox_log_slice *out)
{
	struct ox_batch_header hdr;
	struct ox_walk w;
	unsigned i;
	uint64_t pos;

	OX_ASSERT(log != NULL && out != NULL);
	*out = (struct ox_log_slice){ .fd = -1, .base_offset = offset,
				      .next_offset = offset };
	int64_t limit = limit_offset;
	int rc = read_bounds(log, offset, &limit);
	if (rc > 0)
		rc = find_batch(log, offset, limit, &i, &pos, &hdr);
	if (rc <= 0)
		return rc;
	struct ox_segment *seg = log->segs[i];
	uint64_t len = 0;
	out->base_offset = hdr.base_offset;
	ox_walk_init(&w, seg, &log->scan, OX_LOG_READ_CHUNK, pos,
		     seg->written_bytes);
	// The first header was checked by find_batch; a damaged one later
	// just ends the slice (the reader verifies every batch).
	while (ox_walk_next(&w, &hdr, NULL) == 1) {
		int64_t last = hdr.base_offset + hdr.last_offset_delta;
		if (last >= limit || (len > 0 && len + hdr.length > max_bytes))
			break;
		len += hdr.length;
		out->next_offset = last + 1;
		w.pos += hdr.length;
	}
	OX_ASSERT(len > 0 && len <= UINT32_MAX);
	ox_segment_ref(seg);
	out->segment = seg;
	out->fd = seg->fd;
	out->pos = pos;
	out->len = (uint32_t)len;
	return 0;
}

void ox_log_slice_release(struct ox_log_slice *slice)
{
	if (!slice)
		return;
	ox_segment_unref(slice->segment);
	*slice = (struct ox_log_slice){ .fd = -1 };
}

// The first record with timestamp >= ts_ms in the batch at w->pos.
// Returns 1 with *offset_out, 0 when no record qualifies, or an error.
static int time_in_batch(struct ox_walk *w, const struct ox_batch_header *hdr,
			 const uint8_t *bytes, int64_t ts_ms,
			 int64_t *offset_out)
{
	struct ox_batch_iter it;
	struct ox_record r;
	uint8_t *big = NULL;
	int rc;

	if (!bytes) {
		big = malloc(hdr->length);
		if (!big)
			return -ENOMEM;
		ssize_t n = ox_pread_full(w->seg->fd, big, hdr->length, w->pos);
		if (n != (ssize_t)hdr->length) {
			rc = n < 0 ? (int)n : -OX_ECORRUPT;
			goto out;
		}
		bytes = big;
	}
	// I4: records are decoded only from a verified batch.
	rc = ox_batch_verify(bytes, hdr->length, NULL) < 0 ? -OX_ECORRUPT : 0;
	if (rc == 0)
		rc = ox_batch_iter_init(&it, bytes, hdr->length);
	while (rc == 0) {
		rc = ox_batch_iter_next(&it, &r);
		if (rc <= 0)
			break; // 0: no record that recent; < 0: corrupt
		if (r.timestamp >= ts_ms) {
			*offset_out = r.offset;
			break;
		}
		rc = 0;
	}
out:
	free(big);
	return rc;
}

// Returns 1 with *offset_out when seg holds a written record with
// timestamp >= ts_ms, 0 when it does not, or an error.
static int time_in_segment(struct ox_log *log, const struct ox_segment *seg,
			   int64_t ts_ms, int64_t *offset_out)
{
	struct ox_batch_header hdr;
	const uint8_t *bytes;
	struct ox_walk w;
	uint64_t pos = 0;
	uint32_t rel;

	// I8: every batch up to the time entry's batch is older than ts_ms,
	// and that batch has an offset entry of its own.
	if (ox_index_time_floor(&seg->index, ts_ms, &rel)) {
		struct ox_index_entry e = ox_index_floor(&seg->index, rel);
		OX_ASSERT(e.rel == rel);
		pos = e.pos;
	}
	if (pos > seg->written_bytes)
		return 0; // only batches in flight can be that recent
	ox_walk_init(&w, seg, &log->scan, OX_LOG_READ_CHUNK, pos,
		     seg->written_bytes);
	for (;;) {
		int rc = ox_walk_next(&w, &hdr, &bytes);
		if (rc <= 0)
			return rc == -OX_ETRUNCATED ? -OX_ECORRUPT : rc;
		if (hdr.max_timestamp >= ts_ms) {
			rc = time_in_batch(&w, &hdr, bytes, ts_ms, offset_out);
			if (rc != 0)
				return rc;
		}
		w.pos += hdr.length;
	}
}

int ox_log_offset_for_time(struct ox_log *log, int64_t ts_ms,
			   int64_t *offset_out)
{
	OX_ASSERT(log != NULL && offset_out != NULL);
	for (unsigned i = 0; i < log->nsegs; i++) {
		const struct ox_segment *s = log->segs[i];
		if (s->max_timestamp < ts_ms)
			continue;
		int rc = time_in_segment(log, s, ts_ms, offset_out);
		if (rc != 0)
			return rc < 0 ? rc : 0;
	}
	return -OX_EOFFSET;
}

// The term of an append in flight at offset (written <= offset < end).
static uint64_t term_in_flight(const struct ox_log *log, int64_t offset)
{
	uint32_t lo = 0, hi = log->tail - log->wcur;

	OX_ASSERT(offset >= log->written && offset < log->end);
	// Pending entries cover [written, end) densely, in order (I1).
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		const struct ox_log_pending *p =
			&log->ring[(log->wcur + mid) & (OX_LOG_APPENDS_MAX - 1)];
		if (p->last_offset < offset)
			lo = mid + 1;
		else
			hi = mid;
	}
	OX_ASSERT(lo < log->tail - log->wcur);
	return log->ring[(log->wcur + lo) & (OX_LOG_APPENDS_MAX - 1)].term;
}

int ox_log_term_at(struct ox_log *log, int64_t offset, uint64_t *term_out)
{
	struct ox_batch_header hdr;
	unsigned i;
	uint64_t pos;

	OX_ASSERT(log != NULL && term_out != NULL);
	if (offset < ox_log_start_offset(log) || offset >= log->end)
		return -OX_EOFFSET;
	if (offset >= log->written) {
		*term_out = term_in_flight(log, offset);
		return 0;
	}
	int rc = find_batch(log, offset, log->written, &i, &pos, &hdr);
	if (rc == 0)
		return -OX_EOFFSET;
	// I4: Raft decides on this term: take it only from a sound batch.
	if (rc > 0)
		rc = ox_segment_verify_at(log->segs[i], pos, hdr.length);
	if (rc < 0)
		return rc;
	*term_out = hdr.term;
	return 0;
}
