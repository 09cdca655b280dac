// SPDX-License-Identifier: Apache-2.0
//
// One segment file: create/open, reference counting, the bookkeeping of
// batches placed in it (append position, offsets, timestamps, index
// entries), walking batch headers with chunked preads, recovery scans that
// verify every batch, and truncation. It knows nothing of the pending
// appends, group commit or the other segments: log.c, append.c, read.c and
// recover.c call it.
#include "broker/log/log_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proto/assert.h"
#include "proto/error.h"

void ox_log_file_name(char *out, int64_t base_offset, const char *suffix)
{
	OX_ASSERT(base_offset >= 0);
	int n = snprintf(out, OX_LOG_NAME_MAX, "%020" PRId64 "%s", base_offset,
			 suffix);
	OX_ASSERT(n > 0 && n < OX_LOG_NAME_MAX);
}

ssize_t ox_pread_full(int fd, void *buf, size_t n, uint64_t off)
{
	size_t done = 0;
	while (done < n) {
		ssize_t r = pread(fd, (uint8_t *)buf + done, n - done,
				  (off_t)(off + done));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			break;
		done += (size_t)r;
	}
	return (ssize_t)done;
}

static struct ox_segment *segment_new(int fd, int64_t base, int64_t now_ms)
{
	struct ox_segment *seg = calloc(1, sizeof(*seg));
	if (!seg)
		return NULL;
	seg->refs = 1;
	seg->fd = fd;
	seg->base_offset = base;
	seg->next_offset = base;
	seg->max_timestamp = INT64_MIN;
	seg->created_ms = now_ms;
	seg->index_state = OX_INDEX_ACTIVE;
	ox_index_init(&seg->index);
	return seg;
}

int ox_segment_create(int dirfd, int64_t base_offset, const char *suffix,
		      int64_t now_ms, struct ox_segment **out)
{
	char name[OX_LOG_NAME_MAX];
	OX_ASSERT(dirfd >= 0 && base_offset >= 0);

	ox_log_file_name(name, base_offset, suffix);
	int fd = openat(dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC,
			0644);
	if (fd < 0)
		return -errno;
	struct ox_segment *seg = segment_new(fd, base_offset, now_ms);
	if (!seg) {
		close(fd);
		unlinkat(dirfd, name, 0);
		return -ENOMEM;
	}
	*out = seg;
	return 0;
}

int ox_segment_open(int dirfd, int64_t base_offset, int64_t now_ms,
		    struct ox_segment **out)
{
	char name[OX_LOG_NAME_MAX];
	struct stat st;
	int rc;

	ox_log_file_name(name, base_offset, OX_LOG_SUFFIX_LOG);
	int fd = openat(dirfd, name, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		goto fail;
	}
	struct ox_segment *seg = segment_new(fd, base_offset, now_ms);
	if (!seg) {
		rc = -ENOMEM;
		goto fail;
	}
	seg->size = (uint64_t)st.st_size;
	seg->written_bytes = seg->size;
	*out = seg;
	return 0;
fail:
	close(fd);
	return rc;
}

void ox_segment_ref(struct ox_segment *seg)
{
	OX_ASSERT(seg->refs > 0 && seg->refs < INT32_MAX);
	seg->refs++;
}

void ox_segment_unref(struct ox_segment *seg)
{
	if (!seg)
		return;
	OX_ASSERT(seg->refs > 0);
	if (--seg->refs > 0)
		return;
	close(seg->fd);
	ox_index_deinit(&seg->index);
	free(seg);
}

void ox_segment_track(struct ox_segment *seg, const struct ox_batch_header *hdr,
		      uint64_t pos, uint32_t interval)
{
	int64_t last = hdr->base_offset + hdr->last_offset_delta;
	// I1: offsets strictly increase; the position is the append position.
	OX_ASSERT(pos == seg->size && hdr->base_offset >= seg->next_offset);
	OX_ASSERT(last - seg->base_offset <= (int64_t)UINT32_MAX &&
		  pos + hdr->length <= OX_SEGMENT_FILE_MAX);

	int64_t max_ts = seg->max_timestamp > hdr->max_timestamp
				 ? seg->max_timestamp
				 : hdr->max_timestamp;
	if (seg->bytes_since_index >= interval) {
		ox_index_add(&seg->index,
			     (uint32_t)(hdr->base_offset - seg->base_offset),
			     (uint32_t)pos, max_ts);
		seg->bytes_since_index = 0;
	}
	seg->bytes_since_index = hdr->length > UINT32_MAX - seg->bytes_since_index
					 ? UINT32_MAX
					 : seg->bytes_since_index + hdr->length;
	seg->size = pos + hdr->length;
	seg->next_offset = last + 1;
	seg->max_timestamp = max_ts;
	seg->last_term = hdr->term;
	seg->last_pos = pos;
	seg->last_checksum = hdr->checksum;
}

void ox_segment_apply_meta(struct ox_segment *seg,
			   const struct ox_index_meta *meta)
{
	OX_ASSERT(meta->base_offset == seg->base_offset);
	OX_ASSERT(meta->segment_bytes == seg->size);
	seg->next_offset = meta->next_offset;
	seg->written_bytes = meta->segment_bytes;
	seg->max_timestamp = meta->max_timestamp;
	seg->last_term = meta->last_term;
	seg->last_pos = meta->last_pos;
	seg->last_checksum = meta->last_checksum;
}

void ox_segment_meta(const struct ox_segment *seg, struct ox_index_meta *out)
{
	OX_ASSERT(seg->written_bytes == seg->size);
	*out = (struct ox_index_meta){
		.base_offset = seg->base_offset,
		.segment_bytes = seg->size,
		.next_offset = seg->next_offset,
		.max_timestamp = seg->max_timestamp,
		.last_term = seg->last_term,
		.last_pos = seg->size ? seg->last_pos : 0,
		.last_checksum = seg->size ? seg->last_checksum : 0,
	};
}

int ox_segment_check_meta(const struct ox_segment *seg,
			  const struct ox_index_meta *meta)
{
	uint8_t buf[OX_BATCH_HEADER_BYTES];
	struct ox_batch_header hdr;

	OX_ASSERT(meta->segment_bytes == seg->size);
	if (meta->segment_bytes == 0)
		return meta->next_offset == seg->base_offset ? 0 : -OX_ECORRUPT;
	ssize_t n = ox_pread_full(seg->fd, buf, sizeof(buf), meta->last_pos);
	if (n < 0)
		return (int)n;
	if ((size_t)n < sizeof(buf) ||
	    ox_batch_header_decode(buf, sizeof(buf), &hdr) < 0)
		return -OX_ECORRUPT;
	if (hdr.checksum != meta->last_checksum || hdr.term != meta->last_term ||
	    hdr.base_offset < seg->base_offset ||
	    hdr.base_offset + hdr.last_offset_delta + 1 != meta->next_offset ||
	    meta->last_pos + hdr.length != meta->segment_bytes)
		return -OX_ECORRUPT;
	return 0;
}

void ox_walk_init(struct ox_walk *w, const struct ox_segment *seg,
		  struct ox_scan *scan, size_t chunk, uint64_t pos,
		  uint64_t end)
{
	OX_ASSERT(chunk >= OX_BATCH_HEADER_BYTES && chunk <= scan->cap);
	OX_ASSERT(pos <= end);
	*w = (struct ox_walk){
		.seg = seg,
		.scan = scan,
		.chunk = chunk,
		.pos = pos,
		.end = end,
	};
}

// Makes [pos, pos + need) available in the scan buffer.
static int walk_fill(struct ox_walk *w, uint64_t pos, size_t need)
{
	if (pos >= w->buf_pos && pos + need <= w->buf_pos + w->buf_len)
		return 0;
	size_t want = need > w->chunk ? need : w->chunk;
	if (want > w->scan->cap)
		want = w->scan->cap;
	if (want > w->end - pos)
		want = (size_t)(w->end - pos);
	OX_ASSERT(need <= want);
	ssize_t n = ox_pread_full(w->seg->fd, w->scan->buf, want, pos);
	if (n < 0) {
		w->buf_len = 0;
		return (int)n;
	}
	w->buf_pos = pos;
	w->buf_len = (size_t)n;
	// The file is shorter than the range the caller believed it had.
	return (size_t)n < need ? -OX_ETRUNCATED : 0;
}

int ox_walk_next(struct ox_walk *w, struct ox_batch_header *hdr,
		 const uint8_t **bytes_out)
{
	if (bytes_out)
		*bytes_out = NULL;
	if (w->pos == w->end)
		return 0;
	OX_ASSERT(w->pos < w->end);
	uint64_t left = w->end - w->pos;
	if (left < OX_BATCH_HEADER_BYTES)
		return -OX_ETRUNCATED;
	int rc = walk_fill(w, w->pos, OX_BATCH_HEADER_BYTES);
	if (rc < 0)
		return rc;
	const uint8_t *p = w->scan->buf + (w->pos - w->buf_pos);
	size_t avail = w->buf_len - (size_t)(w->pos - w->buf_pos);
	rc = ox_batch_header_decode(p, avail, hdr);
	if (rc < 0)
		return -OX_ECORRUPT;
	if (hdr->length < OX_BATCH_HEADER_BYTES)
		return -OX_ECORRUPT;
	if (hdr->length > left)
		return -OX_ETRUNCATED;
	if (bytes_out && hdr->length <= w->scan->cap) {
		rc = walk_fill(w, w->pos, hdr->length);
		if (rc < 0)
			return rc;
		*bytes_out = w->scan->buf + (w->pos - w->buf_pos);
	}
	return 1;
}

int ox_segment_verify_at(const struct ox_segment *seg, uint64_t pos,
			 uint32_t len)
{
	uint8_t *buf = malloc(len);
	int rc;

	if (!buf)
		return -ENOMEM;
	ssize_t n = ox_pread_full(seg->fd, buf, len, pos);
	if (n < 0)
		rc = (int)n;
	else if ((size_t)n < len || ox_batch_verify(buf, len, NULL) < 0)
		rc = -OX_ECORRUPT;
	else
		rc = 0;
	free(buf);
	return rc;
}

// Headers are not checksummed on their own, so the walk checks what it
// can (I1): the batch at an index entry has exactly the entry's offset,
// offsets strictly increase, and where the walk passes a gap to reach
// `offset` (which only compaction makes) the batch before the gap must
// verify: a damaged header there could hide the batch that holds offset.
int ox_segment_locate(const struct ox_segment *seg, struct ox_scan *scan,
		      int64_t offset, uint64_t end, uint64_t *pos_out,
		      struct ox_batch_header *hdr_out)
{
	struct ox_walk w;
	struct ox_batch_header hdr;
	uint64_t prev_pos = 0;
	uint32_t rel = 0, prev_len = 0;

	if (offset > seg->base_offset)
		rel = offset - seg->base_offset > (int64_t)UINT32_MAX
			      ? UINT32_MAX
			      : (uint32_t)(offset - seg->base_offset);
	struct ox_index_entry e = ox_index_floor(&seg->index, rel);
	// I2: an entry at or below an offset the caller may read points into
	// bytes already written.
	OX_ASSERT(e.pos <= end);
	bool exact = e.pos > 0; // entries never sit at position 0
	int64_t prev_last = seg->base_offset + e.rel - 1;
	ox_walk_init(&w, seg, scan, OX_LOG_READ_CHUNK, e.pos, end);
	for (;;) {
		int rc = ox_walk_next(&w, &hdr, NULL);
		if (rc < 0)
			return rc == -OX_ETRUNCATED ? -OX_ECORRUPT : rc;
		if (rc == 0)
			return prev_len ? ox_segment_verify_at(seg, prev_pos,
							       prev_len)
					: 0;
		int64_t last = hdr.base_offset + hdr.last_offset_delta;
		if (hdr.base_offset <= prev_last ||
		    (exact && hdr.base_offset != prev_last + 1))
			return -OX_ECORRUPT;
		exact = false;
		if (last >= offset) {
			if (hdr.base_offset > offset && prev_len) {
				rc = ox_segment_verify_at(seg, prev_pos, prev_len);
				if (rc < 0)
					return rc;
			}
			*pos_out = w.pos;
			*hdr_out = hdr;
			return 1;
		}
		prev_last = last;
		prev_pos = w.pos;
		prev_len = hdr.length;
		w.pos += hdr.length;
	}
}

// Checks one batch found by a recovery scan: its checksum and records
// (I4) and that its offsets fit after prev_last in this segment (I1).
// Returns 0, -OX_ECORRUPT, or -errno / -ENOMEM.
static int recover_check(const struct ox_segment *seg,
			 const struct ox_batch_header *hdr,
			 const uint8_t *bytes, uint64_t pos, int64_t prev_last)
{
	uint8_t *big = NULL;
	int rc;

	if (hdr->base_offset <= prev_last ||
	    hdr->last_offset_delta > (uint64_t)(INT64_MAX - hdr->base_offset) - 1 ||
	    hdr->base_offset + hdr->last_offset_delta - seg->base_offset >
		    (int64_t)UINT32_MAX)
		return -OX_ECORRUPT;
	if (!bytes) {
		big = malloc(hdr->length);
		if (!big)
			return -ENOMEM;
		ssize_t n = ox_pread_full(seg->fd, big, hdr->length, pos);
		if (n < 0) {
			rc = (int)n;
			goto out;
		}
		if ((size_t)n < hdr->length) {
			rc = -OX_ECORRUPT;
			goto out;
		}
		bytes = big;
	}
	rc = ox_batch_verify(bytes, hdr->length, NULL) < 0 ? -OX_ECORRUPT : 0;
out:
	free(big);
	return rc;
}

static bool is_damage(int rc)
{
	return rc == -OX_ECORRUPT || rc == -OX_ETRUNCATED;
}

int ox_segment_recover(struct ox_segment *seg, struct ox_scan *scan,
		       uint32_t interval, bool *damaged)
{
	struct ox_walk w;
	struct ox_batch_header hdr;
	const uint8_t *bytes;
	uint64_t file_size = seg->size;
	int64_t prev_last = seg->base_offset - 1;
	int rc;

	OX_ASSERT(seg->index.off_len == 0 && seg->next_offset == seg->base_offset);
	seg->size = 0;
	ox_walk_init(&w, seg, scan, scan->cap, 0,
		     file_size < OX_SEGMENT_FILE_MAX ? file_size
						     : OX_SEGMENT_FILE_MAX);
	for (;;) {
		rc = ox_walk_next(&w, &hdr, &bytes);
		if (rc == 0 || is_damage(rc))
			break;
		if (rc < 0)
			return rc;
		rc = recover_check(seg, &hdr, bytes, w.pos, prev_last);
		if (is_damage(rc))
			break;
		if (rc == 0)
			rc = ox_index_reserve(&seg->index);
		if (rc < 0)
			return rc;
		ox_segment_track(seg, &hdr, w.pos, interval);
		prev_last = hdr.base_offset + hdr.last_offset_delta;
		w.pos += hdr.length;
	}
	OX_ASSERT(seg->size == w.pos && seg->size <= file_size);
	seg->written_bytes = seg->size;
	*damaged = seg->size != file_size;
	return 0;
}

int ox_segment_truncate(struct ox_segment *seg, struct ox_scan *scan,
			uint64_t cut, uint32_t interval)
{
	struct ox_index_entry e = { 0, 0 };
	struct ox_walk w;
	struct ox_batch_header hdr;
	int rc;

	OX_ASSERT(cut <= seg->size && seg->written_bytes == seg->size);
	// Restart the bookkeeping at the last index entry below the cut: the
	// time index knows the max timestamp up to and including that batch
	// (I8), the walk re-adds everything after it.
	bool have = ox_index_floor_pos(&seg->index, cut, &e);
	ox_index_trim(&seg->index, have, e.rel);
	seg->size = e.pos;
	seg->next_offset = seg->base_offset + e.rel;
	seg->max_timestamp = have ? ox_index_max_ts_upto(&seg->index, e.rel)
				  : INT64_MIN;
	seg->last_term = 0;
	seg->last_pos = 0;
	seg->last_checksum = 0;
	seg->bytes_since_index = 0;
	ox_walk_init(&w, seg, scan, scan->cap, e.pos, cut);
	while ((rc = ox_walk_next(&w, &hdr, NULL)) == 1) {
		rc = ox_index_reserve(&seg->index);
		if (rc < 0)
			return rc;
		ox_segment_track(seg, &hdr, w.pos, interval);
		w.pos += hdr.length;
	}
	if (rc < 0)
		return is_damage(rc) ? -OX_ECORRUPT : rc;
	OX_ASSERT(seg->size == cut);
	if (ftruncate(seg->fd, (off_t)cut) < 0 || fdatasync(seg->fd) < 0)
		return -errno;
	seg->written_bytes = cut;
	return 0;
}
