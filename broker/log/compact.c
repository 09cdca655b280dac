// SPDX-License-Identifier: Apache-2.0
//
// Log compaction (cleanup.policy compact or compact,delete): keeps the
// latest record of every key in the sealed segments, drops tombstones once
// they are older than delete.retention.ms, keeps every kept record at its
// offset, and replaces each cleaned segment atomically. Called by the owner
// of the log (the broker's retention timer, tests); the heavy work runs on a
// helper thread so appends and reads go on meanwhile.
//
// Design notes
//
// A pass has three phases:
//   start (owner thread)   picks the job: the longest prefix of sealed,
//                          durable segments below the limit offset whose
//                          index files are not being written; takes a
//                          reference on each and
//                          snapshots what the worker needs.
//   work (helper thread)   builds the key map (key hash -> latest offset)
//                          over the dirty part of the job (the segments
//                          above the clean point: everything below holds
//                          at most one record per key already, C8), then
//                          filters the whole job, writing one cleaned file per
//                          segment ("<base>.cleaned"): batches whose records
//                          all survive are copied as they are, others are
//                          rebuilt with their surviving records at their
//                          original offset deltas; fdatasync; index files.
//   swap (owner thread)    raises the gap horizon (the offset below which
//                          compaction may have left gaps, read by
//                          recovery), then in offset order renames each
//                          cleaned file over its segment and puts the new
//                          segment in the log's array (its index files are
//                          written later by the log's own index writer); a
//                          segment left with nothing is removed. Once every
//                          rename is durable it raises the clean point to
//                          the end of the job.
//
// The cleaner checkpoint file holds both offsets, the gap horizon and the
// clean point, and is rewritten whole (tmp file, fdatasync, rename,
// directory fsync) whenever either moves. They move at different moments
// of a pass: the horizon before the first rename (C7), the clean point
// after the last one (C8). A pass cut short between the two (a crash, a
// failed rename) leaves segments below the horizon that still hold older
// records of their keys, and the next pass maps them again.
//
// Invariants:
//   C1 Only sealed segments whose bytes are all durable and whose index
//      files are not being written are cleaned; the active segment never
//      is (with log I5).
//   C2 A record is dropped only when the map holds a later offset for its
//      key (a key missing from the map has no record in the dirty part, so
//      its one record in the clean part is its latest), or it is a
//      tombstone that is the latest for its key in a
//      segment last written more than delete.retention.ms ago (the file's
//      mtime: the broker's clock, not the producer's timestamps). Records
//      without a key and control batches are always kept. Kept records keep
//      their offsets (offsets are never reused: a dropped record leaves a
//      gap); a batch whose survivors cannot be re-encoded as one batch is
//      split, each piece at its records' offsets.
//   C3 The job is a prefix of the log, and cleaned segments are renamed in
//      offset order; before a rename or removal that drops a tombstone the
//      directory is synced if an earlier one of the pass is not: once a
//      tombstone is gone, every older record of its key is gone for good,
//      so a crash never brings an old value back.
//   C4 A cleaned file is fdatasynced before it is renamed over its segment:
//      a crash at any moment leaves each segment either old or cleaned,
//      both valid; leftover ".cleaned" files are removed at open.
//   C5 A pass that overlaps a truncation (truncate_gen moved) is discarded:
//      its map may name records the truncation removed.
//   C6 The worker touches no log state: only its snapshots, its own io
//      loop, scan buffer and new segments, and the source segments' fds,
//      kept open by the job's references. It never writes a file under a
//      live segment's name (only "<base>.cleaned").
//   C7 Gaps between segments exist only below the gap horizon, which is
//      durable before the first rename that can make one; recovery accepts
//      a gap there and treats any other as a lost tail (log I6).
//   C8 Below the clean point every key has at most one record. It is
//      raised only after every rename and removal of a pass succeeded and
//      the directory is synced, so that a key missing from the map (C2)
//      really has no older record left anywhere in the job: were it raised
//      earlier, a pass cut short would leave old segments under it, and
//      the next pass would keep their values while it drops the key's
//      tombstone.
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "broker/io/io.h"
#include "broker/log/log_int.h"
#include "proto/assert.h"
#include "proto/error.h"
#include "proto/varint.h"

// Key map slots: 24 bytes each, so the largest map is 192 MiB and holds
// about 5.8 M distinct keys at the 70% load kept. A job with more keys is
// cut at the segment where the map filled; the next pass goes further.
// A test build shrinks the limit (tests/unit/log/test_compact_map.c).
#define COMPACT_SLOTS_MIN (1u << 12)
#ifndef OX_COMPACT_SLOTS_MAX
#define OX_COMPACT_SLOTS_MAX (1u << 23)
#endif
#define COMPACT_SLOTS_MAX OX_COMPACT_SLOTS_MAX
// Cleaned output is gathered into writes of this size.
#define COMPACT_OUT_BYTES (1u << 20)
// The worker's scan buffer: whole batches must fit (any batch up to the
// format's limit) plus one read chunk.
#define COMPACT_SCAN_BYTES (OX_BATCH_BYTES_MAX + OX_LOG_SCAN_BYTES)

// The cleaner checkpoint file: magic, the gap horizon (C7), the clean
// point (C8), XXH3-64 of the three, all little-endian u64. The first
// version held the horizon alone (magic "OXCLEAN1", 24 bytes).
#define CHECKPOINT_NAME "cleaner-checkpoint"
#define CHECKPOINT_TMP "cleaner-checkpoint.tmp"
#define CHECKPOINT_MAGIC 0x324e41454c43584full    // "OXCLEAN2"
#define CHECKPOINT_MAGIC_V1 0x314e41454c43584full // "OXCLEAN1"
#define CHECKPOINT_BYTES 32
#define CHECKPOINT_V1_BYTES 24

struct key_slot {
	uint64_t lo;
	uint64_t hi;
	int64_t offset; // -1: empty
};

struct key_map {
	struct key_slot *slots;
	uint32_t cap; // power of two
	uint32_t used;
};

struct compact_seg {
	struct ox_segment *src; // a reference held by the job
	int64_t base;
	uint64_t size;          // snapshot at start (C6)
	int64_t mtime_ms;       // when the file was last written (C2)
	struct ox_segment *out; // the cleaned segment; NULL: unchanged or empty
	bool changed;           // some record was dropped
	bool empty;             // nothing survived: remove the segment
	bool drops_tombstone;
};

struct ox_compact {
	// Snapshots and settings, read by the worker.
	int dirfd;
	uint32_t interval;
	uint32_t max_batch_bytes;
	int64_t now_ms;
	int64_t tomb_before; // tombstones with timestamp < this may go
	uint64_t gen;        // the log's truncate_gen at start (C5)
	struct compact_seg *segs;
	unsigned nsegs;
	unsigned dirty_first; // first segment above the clean point (C8)
	// Worker state.
	struct key_map map;
	struct ox_scan scan;
	struct ox_io *io;
	uint8_t *out_buf;
	size_t out_len;
	uint8_t *rebuild;    // batch rebuild buffer
	size_t rebuild_cap;
	pthread_t thread;
	atomic_int cancel; // set by the owner: stop at the next batch
	atomic_int done;
	int result;
};

// ---------------------------------------------------------------- key map

static int map_init(struct key_map *m, uint32_t cap)
{
	m->slots = malloc((size_t)cap * sizeof(*m->slots));
	if (!m->slots)
		return -ENOMEM;
	for (uint32_t i = 0; i < cap; i++)
		m->slots[i].offset = -1;
	m->cap = cap;
	m->used = 0;
	return 0;
}

static struct key_slot *map_slot(const struct key_map *m, XXH128_hash_t h)
{
	uint32_t mask = m->cap - 1;
	for (uint32_t i = (uint32_t)h.low64 & mask;; i = (i + 1) & mask) {
		struct key_slot *s = &m->slots[i];
		if (s->offset < 0 || (s->lo == h.low64 && s->hi == h.high64))
			return s;
	}
}

static int map_grow(struct key_map *m)
{
	struct key_map bigger;
	if (m->cap >= COMPACT_SLOTS_MAX)
		return -ENOSPC;
	int rc = map_init(&bigger, m->cap * 2);
	if (rc < 0)
		return rc;
	for (uint32_t i = 0; i < m->cap; i++) {
		struct key_slot *s = &m->slots[i];
		if (s->offset < 0)
			continue;
		XXH128_hash_t h = {.low64 = s->lo, .high64 = s->hi};
		*map_slot(&bigger, h) = *s;
		bigger.used++;
	}
	OX_ASSERT(bigger.used == m->used);
	free(m->slots);
	*m = bigger;
	return 0;
}

// Records offset as the latest of key. Returns 0, -ENOSPC when the map is
// at its limit, -ENOMEM.
static int map_put(struct key_map *m, const struct ox_record *r)
{
	XXH128_hash_t h = XXH3_128bits(r->key, (size_t)r->key_len);
	struct key_slot *s = map_slot(m, h);
	if (s->offset < 0) {
		if ((uint64_t)(m->used + 1) * 10 > (uint64_t)m->cap * 7) {
			int rc = map_grow(m);
			if (rc < 0)
				return rc;
			s = map_slot(m, h);
		}
		s->lo = h.low64;
		s->hi = h.high64;
		m->used++;
	}
	OX_ASSERT(r->offset > s->offset); // offsets increase along the job
	s->offset = r->offset;
	return 0;
}

static int64_t map_latest(const struct key_map *m, const struct ox_record *r)
{
	XXH128_hash_t h = XXH3_128bits(r->key, (size_t)r->key_len);
	return map_slot(m, h)->offset;
}

// ------------------------------------------------------------ worker side

// Walks the batches of one job segment, verifying each, and calls fn on
// each whole batch. Returns 0 or the first error (fn's included).
typedef int (*batch_fn)(struct ox_compact *c, struct compact_seg *cs,
			const uint8_t *batch, const struct ox_batch_header *h);

static int walk_segment(struct ox_compact *c, struct compact_seg *cs,
			batch_fn fn)
{
	struct ox_walk w;
	struct ox_batch_header h;
	const uint8_t *bytes;
	int rc;

	ox_walk_init(&w, cs->src, &c->scan, OX_LOG_SCAN_BYTES, 0, cs->size);
	while ((rc = ox_walk_next(&w, &h, &bytes)) == 1) {
		OX_ASSERT(bytes != NULL); // the scan buffer fits any batch
		if (atomic_load(&c->cancel))
			return -ECANCELED;
		if (ox_batch_verify(bytes, h.length, NULL) < 0)
			return -OX_ECORRUPT;
		rc = fn(c, cs, bytes, &h);
		if (rc < 0)
			return rc;
		w.pos += h.length;
	}
	return rc;
}

static int map_batch(struct ox_compact *c, struct compact_seg *cs,
		     const uint8_t *batch, const struct ox_batch_header *h)
{
	struct ox_batch_iter it;
	struct ox_record r;
	int rc;

	if (h->attributes & OX_BATCH_ATTR_CONTROL)
		return 0;
	ox_batch_iter_init(&it, batch, h->length);
	while ((rc = ox_batch_iter_next(&it, &r)) == 1) {
		if (r.key_len < 0)
			continue;
		rc = map_put(&c->map, &r);
		if (rc < 0)
			return rc;
	}
	return rc;
}

// Builds the map over the dirty part of the job; when the map fills up,
// the job is cut to the segments before the one being read. The map may
// still hold keys of that one, pointing at records it keeps untouched: the
// pass then drops older records of those keys, which is right (C2). The
// next pass starts its map where this one's job ended.
static int build_map(struct ox_compact *c)
{
	int rc = map_init(&c->map, COMPACT_SLOTS_MIN);
	for (unsigned i = c->dirty_first; rc == 0 && i < c->nsegs; i++) {
		rc = walk_segment(c, &c->segs[i], map_batch);
		if (rc == -ENOSPC) {
			c->nsegs = i;
			return 0;
		}
	}
	return rc;
}

static bool keep_record(const struct ox_compact *c,
			const struct compact_seg *cs, const struct ox_record *r)
{
	if (r->key_len < 0)
		return true;
	int64_t latest = map_latest(&c->map, r);
	if (latest >= 0 && latest != r->offset)
		return false; // superseded
	return r->value_len >= 0 || cs->mtime_ms >= c->tomb_before;
}

struct flag_res {
	int done;
	int res;
};

static void io_done(void *arg, int res)
{
	struct flag_res *f = arg;
	f->res = res;
	f->done = 1;
}

static int write_at(struct ox_compact *c, int fd, const void *buf,
		    size_t len, uint64_t pos)
{
	struct flag_res f = {0};
	int rc = ox_io_write(c->io, fd, buf, len, pos, 0, io_done, &f);
	if (rc == 0)
		rc = ox_io_run_until(c->io, &f.done);
	return rc < 0 ? rc : f.res < 0 ? f.res : 0;
}

static int flush_out(struct ox_compact *c, struct compact_seg *cs)
{
	if (c->out_len == 0)
		return 0;
	uint64_t pos = cs->out->size - c->out_len;
	int rc = write_at(c, cs->out->fd, c->out_buf, c->out_len, pos);
	c->out_len = 0;
	return rc;
}

// Places one whole batch at the end of the cleaned segment.
static int emit(struct ox_compact *c, struct compact_seg *cs,
		const uint8_t *batch, const struct ox_batch_header *h)
{
	int rc = ox_index_reserve(&cs->out->index);
	if (rc < 0)
		return rc;
	uint64_t pos = cs->out->size;
	if (pos + h->length > OX_SEGMENT_FILE_MAX)
		return -OX_ETOOBIG; // re-encoding grew it past what an index maps
	if (c->out_len + h->length > COMPACT_OUT_BYTES) {
		rc = flush_out(c, cs);
		if (rc < 0)
			return rc;
	}
	ox_segment_track(cs->out, h, pos, c->interval);
	if (h->length > COMPACT_OUT_BYTES)
		return write_at(c, cs->out->fd, batch, h->length, pos);
	memcpy(c->out_buf + c->out_len, batch, h->length);
	c->out_len += h->length;
	return 0;
}

static int rebuild_reserve(struct ox_compact *c, size_t need)
{
	if (need <= c->rebuild_cap)
		return 0;
	uint8_t *p = realloc(c->rebuild, need);
	if (!p)
		return -ENOMEM;
	c->rebuild = p;
	c->rebuild_cap = need;
	return 0;
}

static int rebuild_begin(struct ox_compact *c, struct ox_batch_builder *b,
			 const struct ox_batch_header *h, int64_t base)
{
	struct ox_batch_params p = {
		.attributes = h->attributes, .base_offset = base,
		.term = h->term, .producer_id = h->producer_id,
		.producer_epoch = h->producer_epoch,
		.base_sequence = h->base_sequence,
	};
	return ox_batch_builder_init(b, c->rebuild, c->rebuild_cap, &p);
}

// Finishes a rebuilt batch (spanning up to `last` when last >= 0), checks
// it before it is written, and emits it.
static int rebuild_end(struct ox_compact *c, struct compact_seg *cs,
		       struct ox_batch_builder *b, int64_t base, int64_t last)
{
	struct ox_batch_header nh;
	size_t len;
	if (last >= 0)
		ox_batch_builder_set_last_delta(b, (uint32_t)(last - base));
	int rc = ox_batch_builder_finish(b, &len);
	OX_ASSERT(rc == 0);
	rc = ox_batch_verify(c->rebuild, len, &nh);
	OX_ASSERT(rc == 0);
	return emit(c, cs, c->rebuild, &nh);
}

// Writes a batch's surviving records, at their offsets and with the
// batch's term and producer fields (C2). The last piece keeps the batch's
// span. Survivors that do not fit one batch of the original's size (their
// timestamp deltas are re-based on the first survivor and can grow, or
// even overflow) go on in a new batch: a record alone always fits, since
// it then takes no more bytes than it did.
static int rebuild_batch(struct ox_compact *c, struct compact_seg *cs,
			 const uint8_t *batch, const struct ox_batch_header *h)
{
	struct ox_batch_builder b;
	struct ox_batch_iter it;
	struct ox_record r;
	int64_t base = -1;
	size_t cap = h->length > c->max_batch_bytes ? h->length : c->max_batch_bytes;
	int rc = rebuild_reserve(c, cap);
	if (rc == 0)
		rc = ox_batch_iter_init(&it, batch, h->length);
	while (rc == 0 && (rc = ox_batch_iter_next(&it, &r)) == 1) {
		rc = 0;
		if (!keep_record(c, cs, &r))
			continue;
		if (base < 0 && (rc = rebuild_begin(c, &b, h, base = r.offset)) < 0)
			break;
		rc = ox_batch_builder_add_at(&b, &r, (uint32_t)(r.offset - base));
		if ((rc == -ENOSPC || rc == -EINVAL) && ox_batch_builder_count(&b) > 0) {
			rc = rebuild_end(c, cs, &b, base, -1);
			if (rc == 0)
				rc = rebuild_begin(c, &b, h, base = r.offset);
			if (rc == 0)
				rc = ox_batch_builder_add_at(&b, &r, 0);
		}
	}
	if (rc < 0)
		return rc;
	OX_ASSERT(base >= 0); // called only when something survives
	return rebuild_end(c, cs, &b, base, h->base_offset + h->last_offset_delta);
}

// Counts the batch's surviving records and notes dropped tombstones.
static uint32_t count_kept(struct ox_compact *c, struct compact_seg *cs,
			   const uint8_t *batch, const struct ox_batch_header *h)
{
	struct ox_batch_iter it;
	struct ox_record r;
	uint32_t kept = 0;
	ox_batch_iter_init(&it, batch, h->length);
	while (ox_batch_iter_next(&it, &r) == 1) {
		if (keep_record(c, cs, &r)) {
			kept++;
		} else if (r.value_len < 0) {
			int64_t latest = map_latest(&c->map, &r);
			if (latest < 0 || latest == r.offset)
				cs->drops_tombstone = true; // the key's last word goes
		}
	}
	return kept;
}

static int clean_batch(struct ox_compact *c, struct compact_seg *cs,
		       const uint8_t *batch, const struct ox_batch_header *h)
{
	if (h->attributes & OX_BATCH_ATTR_CONTROL)
		return emit(c, cs, batch, h);
	uint32_t kept = count_kept(c, cs, batch, h);
	if (kept == h->record_count)
		return emit(c, cs, batch, h);
	cs->changed = true;
	return kept == 0 ? 0 : rebuild_batch(c, cs, batch, h);
}

static void discard_out(struct ox_compact *c, struct compact_seg *cs)
{
	char name[OX_LOG_NAME_MAX];
	if (!cs->out)
		return;
	ox_log_file_name(name, cs->base, OX_LOG_SUFFIX_CLEANED);
	unlinkat(c->dirfd, name, 0);
	ox_segment_unref(cs->out);
	cs->out = NULL;
}

static int finish_out(struct ox_compact *c, struct compact_seg *cs)
{
	struct flag_res f = {0};
	int rc = flush_out(c, cs);
	if (rc == 0)
		rc = ox_io_fsync(c->io, cs->out->fd, 1, io_done, &f);
	if (rc == 0)
		rc = ox_io_run_until(c->io, &f.done);
	if (rc == 0)
		rc = f.res; // C4: durable before the rename
	if (rc < 0)
		return rc;
	cs->out->written_bytes = cs->out->size; // all of it, durable (I2)
	cs->out->sealed = true;
	// Its index files are written by the log once it is in place (C6):
	// until then the old ones do not match it, and open rebuilds them.
	cs->out->index_state = OX_INDEX_PENDING;
	return 0;
}

// Writes the cleaned file of one segment. Leaves cs->out NULL when nothing
// changed, or with cs->empty when nothing survived.
static int clean_segment(struct ox_compact *c, struct compact_seg *cs)
{
	char name[OX_LOG_NAME_MAX];
	ox_log_file_name(name, cs->base, OX_LOG_SUFFIX_CLEANED);
	unlinkat(c->dirfd, name, 0); // left by a pass that was abandoned
	int rc = ox_segment_create(c->dirfd, cs->base, OX_LOG_SUFFIX_CLEANED,
				   c->now_ms, &cs->out);
	if (rc < 0)
		return rc;
	c->out_len = 0;
	rc = walk_segment(c, cs, clean_batch);
	if (rc == 0 && !cs->changed) {
		discard_out(c, cs); // every record survived: keep the segment
		return 0;
	}
	if (rc == 0 && cs->out->size == 0) {
		cs->empty = true;
		discard_out(c, cs);
		return 0;
	}
	if (rc == 0)
		rc = finish_out(c, cs);
	return rc;
}

static void *compact_main(void *arg)
{
	struct ox_compact *c = arg;
	struct ox_io_opts opts = {.entries = 8};
	int rc = ox_io_create(&c->io, &opts);
	if (rc < 0) {
		opts.backend = OX_IO_BACKEND_SYNC;
		rc = ox_io_create(&c->io, &opts);
	}
	c->scan.cap = COMPACT_SCAN_BYTES;
	c->scan.buf = malloc(c->scan.cap);
	c->out_buf = malloc(COMPACT_OUT_BYTES);
	if (rc == 0 && (!c->scan.buf || !c->out_buf))
		rc = -ENOMEM;
	if (rc == 0)
		rc = build_map(c);
	for (unsigned i = 0; rc == 0 && i < c->nsegs; i++)
		rc = clean_segment(c, &c->segs[i]);
	ox_io_destroy(c->io);
	free(c->scan.buf);
	free(c->out_buf);
	free(c->rebuild);
	free(c->map.slots);
	c->result = rc;
	atomic_store(&c->done, 1);
	return NULL;
}

// -------------------------------------------------------------- owner side

// The job (C1, C3): the longest prefix of sealed segments that are durable,
// wholly below limit_offset and not having their index files written.
static unsigned job_length(const struct ox_log *log, int64_t limit_offset)
{
	unsigned n = 0;
	while (n + 1 < log->nsegs) {
		const struct ox_segment *s = log->segs[n];
		if (!s->sealed || s->index_state == OX_INDEX_WRITING ||
		    s->next_offset > limit_offset ||
		    s->next_offset > log->durable)
			break;
		n++;
	}
	return n;
}

static void compact_free(struct ox_log *log, struct ox_compact *c)
{
	for (unsigned i = 0; i < c->nsegs; i++)
		discard_out(c, &c->segs[i]);
	// nsegs may have been cut by the worker: release every reference.
	for (struct compact_seg *cs = c->segs; cs && cs->src; cs++)
		ox_segment_unref(cs->src);
	free(c->segs);
	free(c);
	log->compact = NULL;
}

int ox_log_compact_start(struct ox_log *log, int64_t limit_offset)
{
	OX_ASSERT(log != NULL);
	if (!(log->cfg.cleanup & OX_LOG_CLEANUP_COMPACT))
		return -EINVAL;
	if (log->compact)
		return -EALREADY;
	if (log->failed)
		return -OX_EFAILED;
	unsigned n = job_length(log, limit_offset);
	if (n == 0)
		return 0;
	struct ox_compact *c = calloc(1, sizeof(*c));
	if (c)
		c->segs = calloc(n + 1, sizeof(*c->segs)); // NULL-terminated
	if (!c || !c->segs) {
		free(c);
		return -ENOMEM;
	}
	c->dirfd = log->dirfd;
	c->interval = log->cfg.index_interval_bytes;
	c->max_batch_bytes = log->cfg.max_batch_bytes;
	c->now_ms = ox_log_now_ms(log);
	if (__builtin_sub_overflow(c->now_ms, log->cfg.delete_retention_ms,
				   &c->tomb_before))
		c->tomb_before = INT64_MIN; // kept for ever, in effect
	c->gen = log->truncate_gen;
	c->nsegs = n;
	while (c->dirty_first < n &&
	       log->segs[c->dirty_first]->next_offset <= log->clean_upto)
		c->dirty_first++;
	for (unsigned i = 0; i < n; i++) {
		struct ox_segment *s = log->segs[i];
		struct stat st;
		// A file whose time cannot be read keeps its tombstones (C2).
		int64_t mtime = fstat(s->fd, &st) < 0 ? INT64_MAX
			: (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
		ox_segment_ref(s);
		c->segs[i] = (struct compact_seg){.src = s, .base = s->base_offset,
						  .size = s->size, .mtime_ms = mtime};
	}
	log->compact = c;
	if (pthread_create(&c->thread, NULL, compact_main, c) != 0) {
		compact_free(log, c);
		return -EAGAIN;
	}
	return 0;
}

static int seg_position(const struct ox_log *log, const struct ox_segment *s)
{
	for (unsigned i = 0; i < log->nsegs; i++)
		if (log->segs[i] == s)
			return (int)i;
	return -1;
}

static int fsync_dir(struct ox_log *log)
{
	return fsync(log->dirfd) < 0 ? -errno : 0;
}

// ------------------------------------------------------ cleaner checkpoint

int ox_log_checkpoint_store(struct ox_log *log, int64_t gaps_upto,
			    int64_t clean_upto)
{
	uint8_t buf[CHECKPOINT_BYTES];
	OX_ASSERT(gaps_upto >= 0 && clean_upto >= 0);
	ox_store_le64(buf, CHECKPOINT_MAGIC);
	ox_store_le64(buf + 8, (uint64_t)gaps_upto);
	ox_store_le64(buf + 16, (uint64_t)clean_upto);
	ox_store_le64(buf + 24, XXH3_64bits(buf, 24));
	int fd = openat(log->dirfd, CHECKPOINT_TMP,
			O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	int rc = pwrite(fd, buf, sizeof(buf), 0) == (ssize_t)sizeof(buf) ? 0 : -EIO;
	if (rc == 0 && fdatasync(fd) < 0)
		rc = -errno;
	close(fd);
	if (rc == 0 && renameat(log->dirfd, CHECKPOINT_TMP, log->dirfd,
				CHECKPOINT_NAME) < 0)
		rc = -errno;
	if (rc == 0)
		rc = fsync_dir(log); // C7: durable before any gap it allows
	if (rc == 0) {
		log->gaps_upto = gaps_upto;
		log->clean_upto = clean_upto;
	}
	return rc;
}

// Whether buf holds a whole, intact checkpoint of n bytes with the given
// magic: its last 8 bytes are the XXH3-64 of the others, and every offset
// fits an int64_t.
static bool checkpoint_intact(const uint8_t *buf, ssize_t n, ssize_t want,
			      uint64_t magic)
{
	if (n != want || ox_load_le64(buf) != magic ||
	    ox_load_le64(buf + want - 8) != XXH3_64bits(buf, (size_t)want - 8))
		return false;
	for (ssize_t i = 8; i < want - 8; i += 8)
		if (ox_load_le64(buf + i) > INT64_MAX)
			return false;
	return true;
}

int ox_log_checkpoint_load(struct ox_log *log)
{
	// One byte more than the file: a longer one is not a checkpoint.
	uint8_t buf[CHECKPOINT_BYTES + 1];
	unlinkat(log->dirfd, CHECKPOINT_TMP, 0);
	log->gaps_upto = 0;
	log->clean_upto = 0;
	int fd = openat(log->dirfd, CHECKPOINT_NAME, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	ssize_t n = ox_pread_full(fd, buf, sizeof(buf), 0);
	close(fd);
	if (n < 0)
		return (int)n;
	if (checkpoint_intact(buf, n, CHECKPOINT_BYTES, CHECKPOINT_MAGIC)) {
		log->gaps_upto = (int64_t)ox_load_le64(buf + 8);
		log->clean_upto = (int64_t)ox_load_le64(buf + 16);
		return 0;
	}
	// The first version wrote its one offset before the renames of a
	// pass: it bounds the gaps, but the segments under it may never have
	// been swapped in, so the clean point starts over (C8).
	if (checkpoint_intact(buf, n, CHECKPOINT_V1_BYTES, CHECKPOINT_MAGIC_V1)) {
		log->gaps_upto = (int64_t)ox_load_le64(buf + 8);
		return 0;
	}
	// It is written whole and renamed, so damage is bit rot. Rejecting
	// the gaps it vouched for would cut acknowledged records: accept any,
	// and map every segment again.
	log->gaps_upto = INT64_MAX;
	return 0;
}

// ------------------------------------------------------------------- swap

// Puts one cleaned segment in place of its source (C3, C4). *unsynced
// says whether a rename of this pass may not be durable yet. Returns 1
// when it changed the log, 0 when not, or a negative error.
static int swap_one(struct ox_log *log, struct ox_compact *c,
		    struct compact_seg *cs, bool *unsynced)
{
	char from[OX_LOG_NAME_MAX], to[OX_LOG_NAME_MAX];
	int i = seg_position(log, cs->src);
	if (i < 0 || (!cs->out && !cs->empty))
		return 0; // gone (retention) or unchanged
	if (cs->drops_tombstone && *unsynced) {
		int rc = fsync_dir(log); // C3: older values gone for good first
		if (rc < 0)
			return rc;
	}
	*unsynced = true;
	if (cs->empty) {
		int rc = ox_log_remove_segment(log, (unsigned)i);
		return rc < 0 ? rc : 1;
	}
	ox_log_file_name(from, cs->base, OX_LOG_SUFFIX_CLEANED);
	ox_log_file_name(to, cs->base, OX_LOG_SUFFIX_LOG);
	if (renameat(c->dirfd, from, c->dirfd, to) < 0)
		return -errno;
	struct ox_segment *old = log->segs[i];
	log->segs[i] = cs->out;
	log->total_bytes = log->total_bytes - old->size + cs->out->size;
	cs->out = NULL; // the log's reference now
	old->removed = true;
	ox_segment_unref(old);
	return 1;
}

// Swaps the whole pass in. Returns the number of segments changed or a
// negative error (the log stays valid: each segment is old or cleaned).
static int swap_all(struct ox_log *log, struct ox_compact *c)
{
	int rc = 0, changed = 0;
	bool unsynced = false, any = false;
	int64_t upto = c->segs[c->nsegs - 1].src->next_offset;
	for (unsigned i = 0; i < c->nsegs; i++)
		any = any || c->segs[i].out || c->segs[i].empty;
	// C7: the horizon first, only when a rename may make a gap.
	if (any && upto > log->gaps_upto)
		rc = ox_log_checkpoint_store(log, upto, log->clean_upto);
	for (unsigned i = 0; any && rc >= 0 && i < c->nsegs; i++) {
		rc = swap_one(log, c, &c->segs[i], &unsynced);
		changed += rc > 0;
	}
	if (changed > 0) {
		log->dir_dirty = true;
		int rc2 = fsync_dir(log);
		rc = rc < 0 ? rc : rc2;
		ox_log_persist_indexes(log);
	}
	// C8: the clean point last, once the whole job is swapped in and
	// durable. A pass that changed nothing found the job clean already;
	// raising the point still lets the next map start above it.
	if (rc >= 0 && upto > log->clean_upto) {
		int rc2 = ox_log_checkpoint_store(log, log->gaps_upto, upto);
		rc = rc2 < 0 ? rc2 : rc;
	}
	return rc < 0 ? rc : changed;
}

// Joins the worker and swaps its result in, unless the pass failed, the
// log failed (I7), or a truncation overlapped it (C5). Returns 1 when it
// changed the log, 0 when not, or a negative error.
static int compact_finish(struct ox_log *log)
{
	struct ox_compact *c = log->compact;
	pthread_join(c->thread, NULL);
	int rc = c->result;
	if (c->gen != log->truncate_gen || log->failed)
		rc = 0;
	else if (rc == 0 && c->nsegs > 0 && (rc = swap_all(log, c)) > 0)
		rc = 1;
	compact_free(log, c);
	return rc;
}

int ox_log_compact_poll(struct ox_log *log)
{
	OX_ASSERT(log != NULL);
	if (!log->compact || !atomic_load(&log->compact->done))
		return 0;
	return compact_finish(log);
}

void ox_log_compact_abort(struct ox_log *log)
{
	struct ox_compact *c = log->compact;
	if (!c)
		return;
	atomic_store(&c->cancel, 1);
	pthread_join(c->thread, NULL);
	compact_free(log, c);
}

int ox_log_compact(struct ox_log *log, int64_t limit_offset)
{
	int rc = ox_log_compact_start(log, limit_offset);
	if (rc < 0 || !log->compact)
		return rc;
	rc = compact_finish(log);
	return rc < 0 ? rc : 0;
}
