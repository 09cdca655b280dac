// SPDX-License-Identifier: Apache-2.0
//
// Recovery at open: turns whatever a crash, a torn write or a flipped bit
// left in a partition directory into the longest prefix of good batches
// (I6). It removes temporary files, lists the segments, loads the index of
// each sealed segment when the index provably describes it (I9) or else
// scans and verifies the segment, always scans the last segment batch by
// batch, and cuts everything from the first damage on: the rest of a
// damaged segment and every later segment. What is kept is fdatasynced
// before open returns. Called only by ox_log_open (log.c).
#include "broker/log/log_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto/assert.h"
#include "proto/error.h"

#define BASE_DIGITS 20

// Parses "<20 digits><suffix>": returns true with *base when name has
// that form exactly.
static bool parse_name(const char *name, const char *suffix, int64_t *base)
{
	int64_t v = 0;

	for (int i = 0; i < BASE_DIGITS; i++) {
		if (name[i] < '0' || name[i] > '9')
			return false;
		int d = name[i] - '0';
		if (v > (INT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	if (strcmp(name + BASE_DIGITS, suffix) != 0)
		return false;
	*base = v;
	return true;
}

static bool is_temp(const char *name)
{
	static const char *const sfx[] = { OX_LOG_SUFFIX_DELETED,
					   OX_LOG_SUFFIX_TMP,
					   OX_LOG_SUFFIX_CLEANED };
	size_t len = strlen(name);
	int64_t base;

	if (len <= BASE_DIGITS)
		return false;
	for (size_t i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++) {
		size_t sl = strlen(sfx[i]);
		if (len >= sl && strcmp(name + len - sl, sfx[i]) == 0) {
			char head[BASE_DIGITS + 1];
			memcpy(head, name, BASE_DIGITS);
			head[BASE_DIGITS] = '\0';
			return parse_name(head, "", &base);
		}
	}
	return false;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

struct listing {
	int64_t *bases;
	unsigned n;
	unsigned cap;
};

static int listing_push(struct listing *l, int64_t base)
{
	OX_ASSERT(l->n <= l->cap && l->n <= OX_LOG_SEGMENTS_MAX);
	if (l->n == OX_LOG_SEGMENTS_MAX)
		return -OX_ETOOBIG;
	if (l->n == l->cap) {
		unsigned ncap = l->cap ? l->cap * 2 : 16;
		int64_t *p = realloc(l->bases, ncap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		l->bases = p;
		l->cap = ncap;
	}
	l->bases[l->n++] = base;
	return 0;
}

// Opens the partition directory for a listing from its first entry. The
// stream gets a dup of dirfd because closedir closes the descriptor it is
// given and dirfd must stay open. The dup shares dirfd's read position,
// which an earlier listing left at the end: hence the rewind.
static int open_dir(const struct ox_log *log, DIR **out)
{
	int fd = dup(log->dirfd);
	if (fd < 0)
		return -errno;
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	rewinddir(d);
	*out = d;
	return 0;
}

// Removes temporary files and lists the segment base offsets, sorted.
static int list_dir(struct ox_log *log, struct listing *l)
{
	DIR *d = NULL;
	int rc = open_dir(log, &d);
	if (rc < 0)
		return rc;
	struct dirent *e;
	while (rc == 0 && (errno = 0, e = readdir(d)) != NULL) {
		int64_t base;
		if (is_temp(e->d_name)) {
			if (unlinkat(log->dirfd, e->d_name, 0) < 0 &&
			    errno != ENOENT)
				rc = -errno;
		} else if (parse_name(e->d_name, OX_LOG_SUFFIX_LOG, &base)) {
			rc = listing_push(l, base);
		}
	}
	if (rc == 0 && errno != 0)
		rc = -errno;
	closedir(d);
	if (rc == 0 && l->n > 1)
		qsort(l->bases, l->n, sizeof(l->bases[0]), cmp_i64);
	return rc;
}

// Removes index files whose segment is gone.
static int remove_orphans(struct ox_log *log)
{
	DIR *d = NULL;
	int rc = open_dir(log, &d);
	if (rc < 0)
		return rc;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		int64_t base;
		if (!parse_name(e->d_name, OX_LOG_SUFFIX_INDEX, &base) &&
		    !parse_name(e->d_name, OX_LOG_SUFFIX_TIMEINDEX, &base))
			continue;
		unsigned i = ox_log_seg_find(log, base);
		if (log->segs[i]->base_offset == base)
			continue;
		if (unlinkat(log->dirfd, e->d_name, 0) < 0 && errno != ENOENT)
			rc = -errno;
	}
	closedir(d);
	return rc;
}

// Deletes the segment files of bases[from, n), newest first, so that a
// crash in between still leaves a prefix.
static int delete_from(struct ox_log *log, const struct listing *l,
		       unsigned from)
{
	char name[OX_LOG_NAME_MAX], del[OX_LOG_NAME_MAX];

	OX_ASSERT(from <= l->n);
	for (unsigned k = l->n; k-- > from;) {
		ox_log_file_name(name, l->bases[k], OX_LOG_SUFFIX_LOG);
		ox_log_file_name(del, l->bases[k], OX_LOG_SUFFIX_DELETED);
		if (renameat(log->dirfd, name, log->dirfd, del) < 0 ||
		    unlinkat(log->dirfd, del, 0) < 0)
			return -errno;
		int rc = ox_index_unlink(log->dirfd, l->bases[k]);
		if (rc < 0)
			return rc;
	}
	return 0;
}

// A sealed segment: its index if that provably describes it (I9), else a
// full verifying scan. Sets *from_index accordingly.
static int load_sealed(struct ox_log *log, struct ox_segment *seg,
		       bool *from_index, bool *damaged)
{
	struct ox_index_meta meta;

	OX_ASSERT(seg->index.off == NULL && seg->next_offset == seg->base_offset);
	int rc = ox_index_load(log->dirfd, seg->base_offset, seg->size,
			       &seg->index, &meta);
	if (rc == 0) {
		rc = ox_segment_check_meta(seg, &meta);
		if (rc < 0)
			ox_index_deinit(&seg->index);
	}
	if (rc == -ENOMEM)
		return rc;
	seg->sealed = true;
	*from_index = rc == 0;
	*damaged = false;
	if (rc == 0) {
		ox_segment_apply_meta(seg, &meta);
		seg->index_state = OX_INDEX_STORED;
		return 0;
	}
	seg->index_state = OX_INDEX_PENDING;
	return ox_segment_recover(seg, &log->scan,
				  log->cfg.index_interval_bytes, damaged);
}

// Whether the segment at base may follow the previous one (I1): never
// overlapping it; a gap only below the gap horizon, where
// compaction may have made it (compact.c C7), or after a segment whose
// index proves it was complete and durable when sealed. Anything else is
// the lost tail of the previous segment (I6).
static bool boundary_ok(const struct ox_log *log, int64_t base,
			bool prev_from_index)
{
	if (log->nsegs == 0)
		return true;
	int64_t prev_next = ox_log_active(log)->next_offset;
	if (base < prev_next)
		return false;
	return base == prev_next || prev_from_index || base <= log->gaps_upto;
}

// Opens and checks the segments in order, stopping at the first damage.
static int load_segments(struct ox_log *log, const struct listing *l)
{
	int64_t now = ox_log_now_ms(log);
	bool prev_from_index = false;

	for (unsigned k = 0; k < l->n; k++) {
		struct ox_segment *seg;
		bool damaged = false, from_index = false;

		if (!boundary_ok(log, l->bases[k], prev_from_index))
			return delete_from(log, l, k);
		int rc = ox_log_segs_reserve(log);
		if (rc == 0)
			rc = ox_segment_open(log->dirfd, l->bases[k], now, &seg);
		if (rc < 0)
			return rc;
		log->segs[log->nsegs++] = seg;
		// Loading stops at the first damage: one segment per file so far.
		OX_ASSERT(log->nsegs == k + 1);
		if (k + 1 < l->n)
			rc = load_sealed(log, seg, &from_index, &damaged);
		else
			rc = ox_segment_recover(seg, &log->scan,
						log->cfg.index_interval_bytes,
						&damaged);
		// What was scanned may sit only in the page cache (a killed
		// process): make it durable before calling it durable (I6).
		if (rc == 0 && !from_index && damaged &&
		    ftruncate(seg->fd, (off_t)seg->size) < 0)
			rc = -errno;
		if (rc == 0 && !from_index && fdatasync(seg->fd) < 0)
			rc = -errno;
		if (rc < 0)
			return rc;
		// I6: what is kept ends at a batch boundary of the file.
		OX_ASSERT(seg->written_bytes == seg->size);
		if (damaged)
			return delete_from(log, l, k + 1);
		prev_from_index = from_index;
	}
	return 0;
}

// The last segment becomes the active one; sealed segments that were
// rebuilt by a scan get their index files back.
static int finish_segments(struct ox_log *log)
{
	struct ox_index_meta meta;
	int64_t now = ox_log_now_ms(log);

	if (log->nsegs == 0) {
		struct ox_segment *seg;
		int rc = ox_log_segs_reserve(log);
		if (rc == 0)
			rc = ox_segment_create(log->dirfd, 0, OX_LOG_SUFFIX_LOG,
					       now, &seg);
		if (rc < 0)
			return rc;
		log->segs[log->nsegs++] = seg;
	}
	struct ox_segment *active = ox_log_active(log);
	OX_ASSERT(active->next_offset >= active->base_offset);
	active->sealed = false;
	active->index_state = OX_INDEX_ACTIVE;
	active->created_ms = now;
	// I9: the active segment has no index file.
	int rc = ox_index_unlink(log->dirfd, active->base_offset);
	for (unsigned i = 0; rc == 0 && i + 1 < log->nsegs; i++) {
		struct ox_segment *s = log->segs[i];
		if (s->index_state != OX_INDEX_PENDING)
			continue;
		ox_segment_meta(s, &meta);
		// A failure only costs a scan at the next open.
		ox_index_store(log->dirfd, &s->index, &meta);
		s->index_state = OX_INDEX_STORED;
	}
	return rc;
}

int ox_log_recover(struct ox_log *log)
{
	struct listing l = { 0 };

	OX_ASSERT(log->nsegs == 0 && log->dirfd >= 0);
	int rc = ox_log_checkpoint_load(log);
	if (rc == 0)
		rc = list_dir(log, &l);
	if (rc == 0)
		rc = load_segments(log, &l);
	free(l.bases);
	if (rc == 0)
		rc = finish_segments(log);
	if (rc == 0)
		rc = remove_orphans(log);
	if (rc == 0 && fsync(log->dirfd) < 0)
		rc = -errno;
	if (rc < 0)
		return rc;
	struct ox_segment *active = ox_log_active(log);
	log->end = log->written = log->durable = active->next_offset;
	for (unsigned i = 0; i < log->nsegs; i++) {
		log->total_bytes += log->segs[i]->size;
		if (log->segs[i]->size > 0)
			log->last_term = log->segs[i]->last_term;
	}
	// A tail cut (I6) or a damaged checkpoint can leave the checkpoint
	// above the end: offsets from the end on are handed out again, as
	// after a truncation (log.c), and are neither gaps (C7) nor clean (C8).
	if (log->gaps_upto > log->end || log->clean_upto > log->end)
		rc = ox_log_checkpoint_store(
			log, log->gaps_upto < log->end ? log->gaps_upto : log->end,
			log->clean_upto < log->end ? log->clean_upto : log->end);
	if (rc < 0)
		return rc;
	// I6: offsets increase across the segments kept.
	for (unsigned i = 1; i < log->nsegs; i++)
		OX_ASSERT(log->segs[i]->base_offset >=
			  log->segs[i - 1]->next_offset);
	return 0;
}
