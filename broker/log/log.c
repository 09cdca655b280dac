// SPDX-License-Identifier: Apache-2.0
//
// The partition log: open and close, configuration, offsets, truncation
// and retention. The write path (append, group commit, index files) is in
// append.c, reads and lookups in read.c, recovery at open in recover.c,
// one segment file in segment.c, the indexes in index.c; all share the
// structs of log_int.h. Raft, the broker and the benchmarks call it through
// log.h. Compaction lives in compact.c.
//
// Design notes
//
// A partition directory holds segment files "<base offset>.log", each with
// a sparse offset index and a time index. The last segment is the active
// one: it takes appends. Segments are held in an array sorted by base
// offset and are refcounted, so a reader's slice keeps a segment's fd open
// after retention, truncation or compaction dropped the file.
//
// Offsets: start <= durable <= written <= end.
//   end      the next offset to assign: moves at append (forward) and at
//            truncate (back).
//   written  every batch below it is in the file: moves forward when the
//            in-order prefix of the pending ring completes its writes.
//   durable  every batch below it survived an fdatasync: moves forward
//            when a group-commit round finishes.
//   start    the base offset of the first segment: moves forward when
//            retention deletes segments.
// Truncate and open set end = written = durable.
//
// Appends in flight sit in a ring of OX_LOG_APPENDS_MAX entries, in offset
// order: [head, wcur) written, [wcur, tail) writing. Writes may complete in
// any order; only the in-order prefix counts as written.
//
// Group commit (fsync always): when a write completes and no round is in
// flight, a round starts with target = written; it fdatasyncs, one after
// the other, each segment holding bytes in [durable, target) and then the
// directory if a segment file was created or removed since the last
// round, and then sets durable = target and fires the callbacks of every
// append below it, in order. If more was written meanwhile the next round
// starts at once. So one fdatasync covers every batch that completed while
// the previous round ran. An append to an idle log (nothing in flight,
// everything durable, no directory change pending) goes out as one
// write+fdatasync operation instead and is durable when it completes.
// With fsync interval, callbacks fire at written and a timer runs a round
// every fsync_interval_ms.
//
// States of the log: OPEN -> (I/O error) FAILED -> (close) gone; OPEN ->
// (close) CLOSING -> gone. A write or sync error moves OPEN to FAILED
// (append.c: log_fail); ox_log_close moves to CLOSING. Segment index
// states (log_int.h): ACTIVE -> (roll) PENDING -> (durable, append.c)
// WRITING -> STORED; truncate moves a segment back to ACTIVE.
//
// Invariants (cited by number in assertions and tests):
//  I1 Offsets strictly increase from batch to batch, within a segment and
//     across segments; appends assign them densely (base = end), so gaps
//     exist only where compaction removed records. Each segment's batches
//     lie in [its base offset, the next segment's base offset).
//  I2 start <= durable <= written <= end. A segment's written_bytes covers
//     exactly its batches below `written`; reads never go past it, and
//     index entries beyond it describe only offsets >= written.
//  I3 An append callback reports success only when its batch is durable
//     (fsync always) or written (interval); callbacks fire once each, in
//     offset order.
//  I4 A batch is served by ox_log_read (and recovery keeps it) only after
//     its checksum and structure verified (ox_batch_verify). read_slice
//     leaves the check to its reader.
//  I5 The active segment is never deleted by retention (or compaction),
//     nor any segment holding bytes that are not durable yet.
//  I6 After open, the log holds exactly the longest prefix of good batches
//     (verified, offsets increasing, no lost tail before a later segment),
//     everything after it is cut, and all of it is durable.
//  I7 The first write or sync error sticks: later appends get -OX_EFAILED,
//     every callback not yet run gets the error, no fsync is retried,
//     durable and written stop moving, until the log is reopened.
//  I8 Index entries are sorted: offset entries by rel and pos strictly,
//     time entries by ts strictly; each time entry sits on an offset entry
//     and its ts is the max timestamp up to and including that batch.
//  I9 An index file on disk describes a sealed segment's durable bytes
//     exactly (size, last batch checksum): it is written only after the
//     segment's data is durable, and removed (durably) before a segment is
//     appended to again; a file that does not match is ignored.
#include "broker/log/log_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "broker/io/io.h"
#include "proto/assert.h"
#include "proto/error.h"

#define MS_PER_DAY (24 * 3600 * 1000LL)
// The interval policy's timer period is capped at a day: longer is no
// policy at all.
#define FSYNC_INTERVAL_MS_MAX MS_PER_DAY
// Close runs the loop until this log's operations are done (the fsync
// timer excepted: it is detached); a loop that keeps failing this many
// times in a row is broken.
#define CLOSE_RUN_ERRORS_MAX 100

void ox_log_config_default(struct ox_log_config *cfg)
{
	OX_ASSERT(cfg != NULL);
	*cfg = (struct ox_log_config){
		.segment_bytes = 1ull << 30,
		.segment_ms = 7 * MS_PER_DAY,
		.index_interval_bytes = 4096,
		.fsync = OX_LOG_FSYNC_ALWAYS,
		.fsync_interval_ms = 1000,
		.retention_ms = 7 * MS_PER_DAY,
		.retention_bytes = -1,
		.cleanup = OX_LOG_CLEANUP_DELETE,
		.delete_retention_ms = MS_PER_DAY,
		.max_batch_bytes = 1u << 20,
		.clock = NULL,
		.clock_arg = NULL,
	};
}

static int config_check(const struct ox_log_config *c)
{
	if (c->segment_bytes < 1 || c->segment_bytes > OX_LOG_SEGMENT_BYTES_MAX)
		return -EINVAL;
	if (c->index_interval_bytes == 0)
		return -EINVAL;
	if (c->fsync != OX_LOG_FSYNC_ALWAYS && c->fsync != OX_LOG_FSYNC_INTERVAL)
		return -EINVAL;
	if (c->fsync == OX_LOG_FSYNC_INTERVAL &&
	    (c->fsync_interval_ms < 1 ||
	     c->fsync_interval_ms > FSYNC_INTERVAL_MS_MAX))
		return -EINVAL;
	if (c->cleanup & ~(OX_LOG_CLEANUP_DELETE | OX_LOG_CLEANUP_COMPACT))
		return -EINVAL;
	if (c->delete_retention_ms < 0)
		return -EINVAL;
	if (c->max_batch_bytes < OX_BATCH_HEADER_BYTES ||
	    c->max_batch_bytes > OX_BATCH_BYTES_MAX)
		return -EINVAL;
	return 0;
}

int ox_log_set_config(struct ox_log *log, const struct ox_log_config *cfg)
{
	OX_ASSERT(log != NULL);
	if (cfg == NULL || config_check(cfg) < 0)
		return -EINVAL;
	// The fsync policy drives the group-commit timer and the index
	// interval the entries already tracked; the clock is a test hook.
	// None of them can change under a live log.
	if (cfg->fsync != log->cfg.fsync ||
	    (cfg->fsync == OX_LOG_FSYNC_INTERVAL &&
	     cfg->fsync_interval_ms != log->cfg.fsync_interval_ms) ||
	    cfg->index_interval_bytes != log->cfg.index_interval_bytes ||
	    cfg->clock != log->cfg.clock || cfg->clock_arg != log->cfg.clock_arg)
		return -EINVAL;
	log->cfg = *cfg;
	return 0;
}

int64_t ox_log_now_ms(const struct ox_log *log)
{
	struct timespec ts;

	if (log->cfg.clock)
		return log->cfg.clock(log->cfg.clock_arg);
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

unsigned ox_log_seg_find(const struct ox_log *log, int64_t offset)
{
	unsigned lo = 0, hi = log->nsegs;

	OX_ASSERT(log->nsegs > 0);
	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		if (log->segs[mid]->base_offset <= offset)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo == 0 ? 0 : lo - 1;
}

int ox_log_segs_reserve(struct ox_log *log)
{
	if (log->nsegs < log->segs_cap)
		return 0;
	unsigned ncap = log->segs_cap ? log->segs_cap * 2 : 16;
	OX_ASSERT(ncap > log->nsegs);
	struct ox_segment **p = realloc(log->segs, ncap * sizeof(*p));
	if (!p)
		return -ENOMEM;
	log->segs = p;
	log->segs_cap = ncap;
	return 0;
}

int ox_log_remove_segment(struct ox_log *log, unsigned i)
{
	char name[OX_LOG_NAME_MAX], del[OX_LOG_NAME_MAX];

	OX_ASSERT(i < log->nsegs);
	struct ox_segment *seg = log->segs[i];
	ox_log_file_name(name, seg->base_offset, OX_LOG_SUFFIX_LOG);
	ox_log_file_name(del, seg->base_offset, OX_LOG_SUFFIX_DELETED);
	// Renamed first, so a crash leaves a ".deleted" file that open
	// removes, never a segment half gone.
	if (renameat(log->dirfd, name, log->dirfd, del) < 0)
		return -errno;
	unlinkat(log->dirfd, del, 0);
	ox_index_unlink(log->dirfd, seg->base_offset);
	seg->removed = true;
	memmove(&log->segs[i], &log->segs[i + 1],
		(log->nsegs - i - 1) * sizeof(log->segs[0]));
	log->nsegs--;
	OX_ASSERT(log->total_bytes >= seg->size);
	log->total_bytes -= seg->size;
	log->dir_dirty = true;
	ox_segment_unref(seg);
	return 0;
}

static void log_destroy(struct ox_log *log)
{
	ox_log_timer_detach(log);
	for (unsigned i = 0; i < log->nsegs; i++)
		ox_segment_unref(log->segs[i]);
	if (log->dirfd >= 0)
		close(log->dirfd);
	free(log->segs);
	free(log->ring);
	free(log->scan.buf);
	free(log);
}

static int open_dir(const char *dir)
{
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return -errno;
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

int ox_log_open(struct ox_log **out, struct ox_io *io, const char *dir,
		const struct ox_log_config *cfg)
{
	struct ox_log *log;
	int rc;

	OX_ASSERT(out != NULL && io != NULL && dir != NULL);
	*out = NULL;
	log = calloc(1, sizeof(*log));
	if (!log)
		return -ENOMEM;
	log->dirfd = -1;
	log->io = io;
	if (cfg)
		log->cfg = *cfg;
	else
		ox_log_config_default(&log->cfg);
	rc = config_check(&log->cfg);
	if (rc < 0)
		goto fail;
	log->ring = calloc(OX_LOG_APPENDS_MAX, sizeof(*log->ring));
	log->scan.cap = OX_LOG_SCAN_BYTES;
	log->scan.buf = malloc(log->scan.cap);
	if (!log->ring || !log->scan.buf) {
		rc = -ENOMEM;
		goto fail;
	}
	rc = open_dir(dir);
	if (rc < 0)
		goto fail;
	log->dirfd = rc;
	rc = ox_log_recover(log);
	if (rc == 0 && log->cfg.fsync == OX_LOG_FSYNC_INTERVAL)
		rc = ox_log_arm_timer(log);
	if (rc < 0)
		goto fail;
	// I6: everything recovered is durable.
	OX_ASSERT(log->nsegs > 0 && log->durable == log->end);
	*out = log;
	return 0;
fail:
	log_destroy(log);
	return rc;
}

// Runs the loop until this log has nothing in flight and, unless it
// failed, everything written is durable.
static int drain(struct ox_log *log)
{
	int errors = 0;

	for (;;) {
		ox_log_round_kick(log);
		bool synced = log->failed || log->durable == log->written;
		if (log->ops == 0 && !log->round.active && synced)
			break;
		int rc = ox_io_run(log->io, 1);
		if (rc < 0 && ++errors >= CLOSE_RUN_ERRORS_MAX)
			return rc;
		if (rc >= 0)
			errors = 0;
	}
	// I3: every callback has run.
	OX_ASSERT(log->head == log->tail && log->index_jobs == 0);
	return 0;
}

int ox_log_close(struct ox_log *log)
{
	struct ox_index_meta meta;

	if (!log)
		return 0;
	log->closing = true;
	ox_log_compact_abort(log);
	int rc = drain(log);
	if (rc < 0)
		return rc; // the loop is broken: leak rather than free in use
	for (unsigned i = 0; !log->failed && i + 1 < log->nsegs; i++) {
		struct ox_segment *s = log->segs[i];
		if (s->index_state != OX_INDEX_PENDING)
			continue;
		// I9: durable by now (drain synced everything written).
		OX_ASSERT(s->next_offset <= log->durable);
		ox_segment_meta(s, &meta);
		ox_index_store(log->dirfd, &s->index, &meta);
		s->index_state = OX_INDEX_STORED;
	}
	rc = log->failed;
	log_destroy(log);
	return rc;
}

int64_t ox_log_start_offset(const struct ox_log *log)
{
	// I5: the active segment always stays, so there is a first one.
	OX_ASSERT(log->nsegs > 0);
	return log->segs[0]->base_offset;
}

int64_t ox_log_end_offset(const struct ox_log *log)
{
	return log->end;
}

int64_t ox_log_written_offset(const struct ox_log *log)
{
	OX_ASSERT(log->written <= log->end); // I2
	return log->written;
}

int64_t ox_log_durable_offset(const struct ox_log *log)
{
	OX_ASSERT(log->durable <= log->written); // I2
	return log->durable;
}

uint64_t ox_log_last_term(const struct ox_log *log)
{
	return log->last_term;
}

unsigned ox_log_segment_count(const struct ox_log *log)
{
	return log->nsegs;
}

uint64_t ox_log_size_bytes(const struct ox_log *log)
{
	return log->total_bytes;
}

static uint64_t find_last_term(const struct ox_log *log)
{
	for (unsigned i = log->nsegs; i-- > 0;)
		if (log->segs[i]->size > 0)
			return log->segs[i]->last_term;
	return 0;
}

// fdatasyncs every segment with bytes not yet durable, then the directory.
static int sync_all(struct ox_log *log)
{
	for (unsigned i = log->nsegs; i-- > 0;) {
		struct ox_segment *s = log->segs[i];
		if (s->next_offset <= log->durable && i + 1 < log->nsegs)
			break;
		if (fdatasync(s->fd) < 0)
			return -errno;
	}
	return fsync(log->dirfd) < 0 ? -errno : 0;
}

// Where truncation at offset cuts: segment index and byte position. A cut
// at the very start of a later segment keeps the previous one whole
// instead, so the active segment never starts past the end offset.
static int truncate_point(struct ox_log *log, int64_t offset, unsigned *i_out,
			  uint64_t *cut_out)
{
	struct ox_batch_header hdr;
	unsigned i = ox_log_seg_find(log, offset);
	struct ox_segment *seg = log->segs[i];
	uint64_t cut;

	int rc = ox_segment_locate(seg, &log->scan, offset, seg->size, &cut,
				   &hdr);
	if (rc < 0)
		return rc;
	if (rc == 0)
		cut = seg->size;
	if (cut == 0 && i > 0) {
		i--;
		cut = log->segs[i]->size;
	}
	*i_out = i;
	*cut_out = cut;
	return 0;
}

static int truncate_at(struct ox_log *log, unsigned i, uint64_t cut)
{
	int rc = 0;

	// Newest first: a crash in between leaves a prefix of the log.
	while (rc == 0 && log->nsegs > i + 1)
		rc = ox_log_remove_segment(log, log->nsegs - 1);
	struct ox_segment *seg = log->segs[i];
	uint64_t old = seg->size;
	if (rc == 0 && cut < seg->size)
		rc = ox_segment_truncate(seg, &log->scan, cut,
					 log->cfg.index_interval_bytes);
	if (rc < 0)
		return rc;
	log->total_bytes -= old - seg->size;
	// I9: the segment takes appends again, so its index files go, and
	// durably (sync_all syncs the directory) before any append.
	seg->sealed = false;
	seg->index_state = OX_INDEX_ACTIVE;
	rc = ox_index_unlink(log->dirfd, seg->base_offset);
	return rc < 0 ? rc : sync_all(log);
}

int ox_log_truncate(struct ox_log *log, int64_t offset)
{
	unsigned i;
	uint64_t cut;

	OX_ASSERT(log != NULL);
	if (log->failed)
		return -OX_EFAILED;
	if (log->closing)
		return -OX_ECLOSED;
	if (log->head != log->tail || log->round.active)
		return -EBUSY;
	if (offset >= log->end)
		return 0;
	if (offset < ox_log_start_offset(log))
		return -OX_EOFFSET;
	// Nothing in flight: the whole end is written (I2).
	OX_ASSERT(log->written == log->end);
	int rc = truncate_point(log, offset, &i, &cut);
	if (rc < 0)
		return rc; // nothing changed yet
	// A pass reading the segments about to be cut would be discarded
	// anyway (C5 in compact.c); stopping it first also keeps its files
	// and the truncation's apart.
	ox_log_compact_abort(log);
	// Offsets from the cut on are handed out again: compaction gaps there
	// are gone, and a gap there later would be a lost tail (C7); records
	// appended there are not clean (C8).
	if ((offset < log->gaps_upto || offset < log->clean_upto) &&
	    (rc = ox_log_checkpoint_store(
		     log, log->gaps_upto < offset ? log->gaps_upto : offset,
		     log->clean_upto < offset ? log->clean_upto : offset)) < 0)
		return rc; // nothing cut yet
	log->truncate_gen++;
	rc = truncate_at(log, i, cut);
	if (rc < 0) {
		// I7: the files are half cut: only a reopen can tell.
		if (log->failed == 0)
			log->failed = rc;
		return rc;
	}
	struct ox_segment *seg = ox_log_active(log);
	log->end = log->written = log->durable = seg->next_offset;
	log->last_term = find_last_term(log);
	// Every batch kept ends below the cut offset.
	OX_ASSERT(log->end <= offset && log->durable == log->end);
	return 0;
}

int ox_log_reset(struct ox_log *log, int64_t offset)
{
	struct ox_segment *seg = NULL;
	int rc;

	OX_ASSERT(log != NULL);
	if (log->failed)
		return -OX_EFAILED;
	if (log->closing)
		return -OX_ECLOSED;
	if (offset < 0)
		return -OX_EOFFSET;
	if (log->head != log->tail || log->round.active)
		return -EBUSY;
	OX_ASSERT(log->written == log->end);
	ox_log_compact_abort(log);
	rc = ox_log_segs_reserve(log);
	if (rc < 0)
		return rc; // nothing changed yet
	log->truncate_gen++;
	// Newest first: a crash part way leaves a shorter log, which the
	// caller (Raft's snapshot install) redoes the reset over.
	while (log->nsegs > 0) {
		rc = ox_log_remove_segment(log, log->nsegs - 1);
		if (rc < 0)
			goto fail;
	}
	rc = ox_segment_create(log->dirfd, offset, OX_LOG_SUFFIX_LOG,
			       ox_log_now_ms(log), &seg);
	if (rc < 0)
		goto fail;
	log->segs[log->nsegs++] = seg;
	log->end = log->written = log->durable = offset;
	log->last_term = 0;
	// No gaps and nothing clean in an empty log.
	rc = ox_log_checkpoint_store(log, 0, 0);
	if (rc == 0 && fsync(log->dirfd) < 0)
		rc = -errno;
	if (rc < 0)
		goto fail;
	log->dir_dirty = false;
	return 0;
fail:
	// I7: the directory is half changed: only a reopen can tell.
	if (log->failed == 0)
		log->failed = rc;
	return rc;
}

static bool expired(const struct ox_log *log, const struct ox_segment *s,
		    int64_t now)
{
	const struct ox_log_config *c = &log->cfg;

	if (c->retention_bytes >= 0 &&
	    log->total_bytes - s->size >= (uint64_t)c->retention_bytes)
		return true;
	if (c->retention_ms < 0)
		return false;
	if (s->max_timestamp == INT64_MIN)
		return true; // a sealed segment without batches keeps nothing
	if (s->max_timestamp >= now)
		return false;
	return (uint64_t)now - (uint64_t)s->max_timestamp >
	       (uint64_t)c->retention_ms;
}

// Deletes the oldest segments while gone(log, segment, arg) says so.
// I5: never the active segment (nsegs > 1 keeps it), never bytes not yet
// durable. Returns the number deleted or a negative error.
static int delete_oldest(struct ox_log *log,
			 bool (*gone)(const struct ox_log *log,
				      const struct ox_segment *s, int64_t arg),
			 int64_t arg)
{
	int deleted = 0;

	while (log->nsegs > 1) {
		struct ox_segment *s = log->segs[0];

		if (s->next_offset > log->durable || !gone(log, s, arg))
			break;
		OX_ASSERT(s != ox_log_active(log) && s->sealed);
		int rc = ox_log_remove_segment(log, 0);
		if (rc < 0)
			return rc;
		deleted++;
	}
	return deleted;
}

int ox_log_enforce_retention(struct ox_log *log)
{
	OX_ASSERT(log != NULL);
	if (log->failed)
		return -OX_EFAILED;
	if (!(log->cfg.cleanup & OX_LOG_CLEANUP_DELETE))
		return 0;
	return delete_oldest(log, expired, ox_log_now_ms(log));
}

static bool below(const struct ox_log *log, const struct ox_segment *s,
		  int64_t offset)
{
	(void)log;
	return s->next_offset <= offset;
}

int ox_log_delete_before(struct ox_log *log, int64_t offset)
{
	OX_ASSERT(log != NULL);
	if (log->failed)
		return -OX_EFAILED;
	return delete_oldest(log, below, offset);
}
