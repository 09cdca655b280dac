// SPDX-License-Identifier: Apache-2.0
//
// The write path of the partition log: ox_log_append (verify, stamp, roll,
// submit the write), the pending ring of appends in flight, the written
// prefix, group commit (one round of fdatasyncs covers every batch written
// while the previous round was in flight), the fsync timer of
// OX_LOG_FSYNC_INTERVAL, the sticky failed state, and writing the index
// files of sealed segments once their data is durable. Everything here runs
// on the thread that owns the log's io loop; completions arrive from
// ox_io_run(). The invariants cited (I1..I9) are listed in log.c.
#include "broker/log/log_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "broker/io/io.h"
#include "proto/assert.h"
#include "proto/error.h"

static struct ox_log_pending *slot(struct ox_log *log, uint32_t i)
{
	return &log->ring[i & (OX_LOG_APPENDS_MAX - 1)];
}

static bool interval_mode(const struct ox_log *log)
{
	return log->cfg.fsync == OX_LOG_FSYNC_INTERVAL;
}

// I7: the first I/O error sticks until the log is reopened.
static void log_fail(struct ox_log *log, int err)
{
	OX_ASSERT(err < 0);
	if (log->failed == 0)
		log->failed = err;
	OX_ASSERT(log->failed < 0);
}

// Pops and fires, in offset order, the callbacks that are due: durable
// ones (fsync always), written ones (interval), or every completed one with
// the error once the log failed. An entry leaves the ring only after its
// write completed: the io loop holds a pointer to it until then.
static void deliver(struct ox_log *log)
{
	while (log->head != log->tail) {
		struct ox_log_pending *p = slot(log, log->head);
		int res = log->failed;

		if (!p->done)
			break;
		if (res == 0 && interval_mode(log) && log->head == log->wcur)
			break;
		if (res == 0 && !interval_mode(log) &&
		    p->last_offset >= log->durable)
			break;
		// I3: success is reported only for durable (or, with the
		// interval policy, written) batches.
		OX_ASSERT(res < 0 || p->last_offset < (interval_mode(log)
							       ? log->written
							       : log->durable));
		struct ox_log_pending e = *p;
		if (log->wcur == log->head)
			log->wcur++;
		log->head++;
		if (e.cb)
			e.cb(e.arg, res, e.base_offset, e.last_offset);
	}
}

// Moves `written` over the in-order prefix of completed writes (I2).
static void advance_written(struct ox_log *log)
{
	while (!log->failed && log->wcur != log->tail) {
		struct ox_log_pending *p = slot(log, log->wcur);
		if (!p->done)
			break;
		OX_ASSERT(p->res == 0 && p->base_offset >= log->written);
		log->written = p->last_offset + 1;
		p->seg->written_bytes = p->pos + p->len;
		log->wcur++;
	}
	OX_ASSERT(log->durable <= log->written && log->written <= log->end);
}

static void append_write_done(void *arg, int res)
{
	struct ox_log_pending *p = arg;
	struct ox_log *log = p->log;

	OX_ASSERT(!p->done && log->ops > 0);
	log->ops--;
	p->done = true;
	p->res = res < 0 ? res : (res == (int)p->len ? 0 : -EIO);
	if (p->res == 0 && p->dsync && log->fault_sync_err) {
		p->res = log->fault_sync_err;
		log->fault_sync_err = 0;
	}
	if (p->res < 0)
		log_fail(log, p->res);
	advance_written(log);
	if (p->dsync && !log->failed) {
		// It carried its own fdatasync, and everything before it was
		// durable when it went out; no round runs meanwhile, since
		// nothing before it can be written and not durable (I3).
		OX_ASSERT(!log->round.active && log->durable == p->base_offset);
		OX_ASSERT(log->written > p->last_offset);
		log->durable = p->last_offset + 1;
	}
	// Our own follow-up first: the slot this write freed is then ours.
	if (!interval_mode(log))
		ox_log_round_kick(log);
	deliver(log);
}

// ------------------------------------------------------- group commit

static void round_step(struct ox_log *log);

static void round_abort(struct ox_log *log, int err)
{
	log_fail(log, err);
	log->round.active = false;
	log->round.op_inflight = false;
}

static void round_finish(struct ox_log *log)
{
	struct ox_log_round *r = &log->round;

	// I2: durable only moves forward, and never past written.
	OX_ASSERT(r->target >= log->durable && r->target <= log->written);
	log->durable = r->target;
	r->active = false;
	if (!interval_mode(log) && log->written > log->durable)
		ox_log_round_kick(log);
	ox_log_persist_indexes(log);
	deliver(log);
}

static void round_sync_done(void *arg, int res)
{
	struct ox_log *log = arg;
	struct ox_log_round *r = &log->round;

	OX_ASSERT(r->active && r->op_inflight && log->ops > 0);
	log->ops--;
	r->op_inflight = false;
	if (r->seg && log->fault_sync_err) {
		res = log->fault_sync_err;
		log->fault_sync_err = 0;
	}
	ox_segment_unref(r->seg);
	r->seg = NULL;
	if (res < 0) {
		// I7: never retry an fsync that failed.
		round_abort(log, res);
		deliver(log);
		return;
	}
	round_step(log);
}

// The next segment holding bytes in [durable, target) after the cursor.
// Segments' offsets increase along the array, so the walk from the end
// stops at the first segment wholly durable.
static struct ox_segment *round_next_segment(const struct ox_log *log)
{
	const struct ox_log_round *r = &log->round;
	struct ox_segment *cand = NULL;

	for (unsigned i = log->nsegs; i-- > 0;) {
		struct ox_segment *s = log->segs[i];
		if (s->next_offset <= log->durable)
			break;
		if (s->base_offset < r->target && s->base_offset > r->cursor)
			cand = s;
	}
	return cand;
}

// Submits the round's next sync, or finishes the round. A submission the
// loop refuses (-EBUSY) leaves the round stalled; ox_log_round_kick()
// resumes it from the next completion, append or close.
static void round_step(struct ox_log *log)
{
	struct ox_log_round *r = &log->round;
	struct ox_segment *seg = round_next_segment(log);
	int rc;

	OX_ASSERT(r->active && !r->op_inflight);
	if (seg) {
		rc = ox_io_fsync(log->io, seg->fd, 1, round_sync_done, log);
		if (rc == 0) {
			ox_segment_ref(seg);
			r->seg = seg;
			r->cursor = seg->base_offset;
		}
	} else if (r->dir) {
		rc = ox_io_fsync(log->io, log->dirfd, 0, round_sync_done, log);
		if (rc == 0)
			r->dir = false;
	} else {
		round_finish(log);
		return;
	}
	if (rc == -EBUSY)
		return;
	if (rc < 0) {
		round_abort(log, rc);
		deliver(log);
		return;
	}
	r->op_inflight = true;
	log->ops++;
}

void ox_log_round_kick(struct ox_log *log)
{
	struct ox_log_round *r = &log->round;

	if (log->failed)
		return;
	if (r->active) {
		if (!r->op_inflight)
			round_step(log);
		return;
	}
	if (log->written <= log->durable)
		return;
	*r = (struct ox_log_round){
		.active = true,
		.target = log->written,
		.cursor = -1,
		.dir = log->dir_dirty,
	};
	log->dir_dirty = false;
	round_step(log);
}

// ------------------------------------------------------ fsync timer

// The timer's argument. The log owns it while the timer is armed; close
// detaches it (log = NULL) instead of waiting out the interval, and the
// callback frees a detached token when the loop completes the timer.
struct ox_log_timer {
	struct ox_log *log;
};

static void timer_fired(void *arg, int res)
{
	struct ox_log_timer *t = arg;
	struct ox_log *log = t->log;

	if (!log) {
		free(t);
		return;
	}
	OX_ASSERT(log->timer_armed && log->timer == t);
	log->timer_armed = false;
	if (log->failed || log->closing)
		return;
	ox_log_round_kick(log);
	// A refusal leaves it disarmed; the next append arms it again.
	ox_log_arm_timer(log);
}

int ox_log_arm_timer(struct ox_log *log)
{
	OX_ASSERT(interval_mode(log) && !log->timer_armed);
	if (!log->timer) {
		log->timer = calloc(1, sizeof(*log->timer));
		if (!log->timer)
			return -ENOMEM;
		log->timer->log = log;
	}
	uint64_t ns = (uint64_t)log->cfg.fsync_interval_ms * 1000000u;
	int rc = ox_io_timer(log->io, ns, timer_fired, log->timer);
	if (rc < 0)
		return rc;
	log->timer_armed = true;
	return 0;
}

void ox_log_timer_detach(struct ox_log *log)
{
	if (log->timer_armed) {
		log->timer->log = NULL; // freed by timer_fired
		log->timer_armed = false;
	} else {
		free(log->timer);
	}
	log->timer = NULL;
}

// -------------------------------------------------- index persistence

// The two index files of one sealed segment, written through the loop
// (write + fdatasync each) under names of their own and renamed into place
// when both succeeded and nothing changed the segment meanwhile.
struct index_job {
	int fd;
	int res;
	uint8_t *buf;
	size_t len;
};

struct index_pair {
	struct ox_log *log;
	struct ox_segment *seg;
	uint64_t seq;          // in the temporary names
	uint64_t truncate_gen; // log->truncate_gen when it started
	int left;
	struct index_job job[2];
};

static const char *const index_sfx[2] = { OX_LOG_SUFFIX_INDEX,
					  OX_LOG_SUFFIX_TIMEINDEX };

// "<base>.index.<seq>.tmp": a pair outliving its segment (truncated,
// deleted, and a new one made at the same base) never touches another
// pair's files. Open removes every "*.tmp".
static void tmp_name(char *out, const struct index_pair *pair, int kind)
{
	char sfx[OX_LOG_NAME_MAX - 20];
	snprintf(sfx, sizeof(sfx), "%s.%u%s", index_sfx[kind],
		 (unsigned)(pair->seq % 1000000000u), OX_LOG_SUFFIX_TMP);
	ox_log_file_name(out, pair->seg->base_offset, sfx);
}

static void pair_free(struct index_pair *pair)
{
	for (int k = 0; k < 2; k++) {
		if (pair->job[k].fd >= 0)
			close(pair->job[k].fd);
		free(pair->job[k].buf);
	}
	ox_segment_unref(pair->seg);
	free(pair);
}

static void pair_unlink(const struct index_pair *pair)
{
	char tmp[OX_LOG_NAME_MAX];

	for (int k = 0; k < 2; k++) {
		tmp_name(tmp, pair, k);
		unlinkat(pair->log->dirfd, tmp, 0);
	}
}

// Renames both files into place unless a write failed, the segment left
// the log, or a truncation happened meanwhile (I9); otherwise the
// temporary files go and the segment waits for the next round.
static void pair_finish(struct index_pair *pair)
{
	struct ox_log *log = pair->log;
	struct ox_segment *seg = pair->seg;
	char tmp[OX_LOG_NAME_MAX], name[OX_LOG_NAME_MAX];
	// A truncation may have made the segment active and sealed it again
	// since: then a newer pair owns its state.
	bool owner = seg->index_state == OX_INDEX_WRITING &&
		     seg->index_job == pair->seq;
	bool current = owner && !seg->removed &&
		       pair->truncate_gen == log->truncate_gen;
	bool ok = current && pair->job[0].res == 0 && pair->job[1].res == 0;

	for (int k = 0; ok && k < 2; k++) {
		tmp_name(tmp, pair, k);
		ox_log_file_name(name, seg->base_offset, index_sfx[k]);
		if (renameat(log->dirfd, tmp, log->dirfd, name) < 0)
			ok = false;
	}
	if (!ok)
		pair_unlink(pair);
	// A write error gives up on the files (open rebuilds them); a
	// truncation elsewhere in the log only delays them.
	if (owner)
		seg->index_state = ok || current ? OX_INDEX_STORED
						 : OX_INDEX_PENDING;
	OX_ASSERT(log->index_jobs > 0);
	log->index_jobs--;
	pair_free(pair);
}

static void index_job_done(struct index_pair *pair, int k, int res)
{
	struct ox_log *log = pair->log;

	OX_ASSERT(pair->left > 0 && log->ops > 0);
	log->ops--;
	pair->job[k].res = res < 0 ? res : 0;
	if (--pair->left == 0)
		pair_finish(pair);
}

static void index_done0(void *arg, int res)
{
	index_job_done(arg, 0, res);
}

static void index_done1(void *arg, int res)
{
	index_job_done(arg, 1, res);
}

static int pair_prepare(struct index_pair *pair)
{
	struct ox_index_meta meta;
	char tmp[OX_LOG_NAME_MAX];
	int dirfd = pair->log->dirfd;

	ox_segment_meta(pair->seg, &meta);
	for (int k = 0; k < 2; k++) {
		int rc = ox_index_serialize(&pair->seg->index, &meta,
					    (enum ox_index_kind)k,
					    &pair->job[k].buf, &pair->job[k].len);
		if (rc < 0)
			return rc;
		tmp_name(tmp, pair, k);
		pair->job[k].fd = openat(dirfd, tmp,
					 O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
					 0644);
		if (pair->job[k].fd < 0)
			return -errno;
	}
	return 0;
}

// Starts writing both index files of seg. Returns 0 or a negative errno
// (nothing was submitted then; the segment stays PENDING).
static int persist_one(struct ox_log *log, struct ox_segment *seg)
{
	static const ox_io_cb done[2] = { index_done0, index_done1 };
	struct index_pair *pair = calloc(1, sizeof(*pair));

	if (!pair)
		return -ENOMEM;
	*pair = (struct index_pair){
		.log = log,
		.seg = seg,
		.seq = log->index_seq++,
		.truncate_gen = log->truncate_gen,
		.job = { { .fd = -1 }, { .fd = -1 } },
	};
	ox_segment_ref(seg);
	int rc = pair_prepare(pair);
	for (int k = 0; rc == 0 && k < 2; k++) {
		rc = ox_io_write(log->io, pair->job[k].fd, pair->job[k].buf,
				 pair->job[k].len, 0, OX_IO_DSYNC, done[k], pair);
		if (rc == 0) {
			pair->left++;
			log->ops++;
		}
	}
	if (rc < 0 && pair->left == 0) {
		pair_unlink(pair);
		pair_free(pair);
		return rc;
	}
	// With only the first write in flight, its completion cleans up and
	// counts the second as failed.
	pair->job[1].res = rc;
	seg->index_state = OX_INDEX_WRITING;
	seg->index_job = pair->seq;
	log->index_jobs++;
	return 0;
}

void ox_log_persist_indexes(struct ox_log *log)
{
	if (log->failed)
		return;
	// Sealed segments, newest first. Not only the newest can be pending:
	// compaction swaps in segments whose index is still to be written.
	for (unsigned i = log->nsegs - 1; i-- > 0;) {
		struct ox_segment *s = log->segs[i];
		if (s->index_state == OX_INDEX_STORED)
			continue;
		// I9: an index file describes durable bytes only.
		if (s->index_state != OX_INDEX_PENDING ||
		    s->next_offset > log->durable)
			continue;
		OX_ASSERT(s->sealed && s->written_bytes == s->size);
		if (persist_one(log, s) < 0)
			break; // tried again after the next round
	}
}

// --------------------------------------------------------------- append

static int roll(struct ox_log *log, int64_t now_ms)
{
	struct ox_segment *old = ox_log_active(log), *seg = NULL;

	OX_ASSERT(old->size > 0 && old->next_offset == log->end);
	if (log->nsegs >= OX_LOG_SEGMENTS_MAX)
		return -OX_ETOOBIG;
	int rc = ox_log_segs_reserve(log);
	if (rc == 0)
		rc = ox_segment_create(log->dirfd, log->end, OX_LOG_SUFFIX_LOG,
				       now_ms, &seg);
	if (rc < 0)
		return rc;
	old->sealed = true;
	old->index_state = OX_INDEX_PENDING;
	log->segs[log->nsegs++] = seg;
	log->dir_dirty = true;
	return 0;
}

// Rolls when the batch would take the active segment past segment_bytes,
// its relative offsets past u32, or the segment is older than segment_ms.
// An empty segment never rolls: a batch bigger than segment_bytes gets a
// segment of its own.
static int maybe_roll(struct ox_log *log, size_t len, uint32_t delta)
{
	struct ox_segment *seg = ox_log_active(log);
	int64_t now = 0;

	if (seg->size == 0) {
		// A segment's age counts from its first batch.
		if (log->cfg.segment_ms > 0)
			seg->created_ms = ox_log_now_ms(log);
		return 0;
	}
	bool need = seg->size + len > log->cfg.segment_bytes ||
		    log->end + delta - seg->base_offset > (int64_t)UINT32_MAX;
	if (!need && log->cfg.segment_ms > 0) {
		now = ox_log_now_ms(log);
		need = now - seg->created_ms >= log->cfg.segment_ms;
	}
	if (!need)
		return 0;
	if (now == 0)
		now = ox_log_now_ms(log);
	return roll(log, now);
}

static int append_check(struct ox_log *log, const void *batch, size_t len,
			unsigned flags, struct ox_batch_header *hdr)
{
	if (log->failed)
		return -OX_EFAILED;
	if (log->closing)
		return -OX_ECLOSED;
	if (flags & ~OX_LOG_APPEND_KEEP_OFFSETS)
		return -EINVAL;
	if (len > log->cfg.max_batch_bytes)
		return -OX_ETOOBIG;
	if (ox_batch_verify(batch, len, hdr) < 0 || hdr->length != len)
		return -OX_ECORRUPT;
	if (log->tail - log->head == OX_LOG_APPENDS_MAX)
		return -EBUSY;
	if ((flags & OX_LOG_APPEND_KEEP_OFFSETS) && hdr->base_offset != log->end)
		return -OX_EOFFSET;
	if (log->end > INT64_MAX - 1 - (int64_t)hdr->last_offset_delta)
		return -OX_EOFFSET;
	return 0;
}

int ox_log_append(struct ox_log *log, void *batch, size_t len, uint64_t term,
		  unsigned flags, ox_log_append_cb cb, void *arg,
		  int64_t *base_out)
{
	struct ox_batch_header hdr;

	OX_ASSERT(log != NULL && batch != NULL);
	int rc = append_check(log, batch, len, flags, &hdr);
	if (rc == 0)
		rc = maybe_roll(log, len, hdr.last_offset_delta);
	struct ox_segment *seg = ox_log_active(log);
	if (rc == 0)
		rc = ox_index_reserve(&seg->index);
	if (rc < 0)
		return rc;
	if (!(flags & OX_LOG_APPEND_KEEP_OFFSETS))
		ox_batch_stamp(batch, log->end, term);
	// I1: the batch now carries exactly the next offset (and its new
	// checksum, which the segment remembers for its index header).
	rc = ox_batch_header_decode(batch, len, &hdr);
	OX_ASSERT(rc == 0 && hdr.base_offset == log->end);

	uint64_t pos = seg->size;
	struct ox_log_pending *p = slot(log, log->tail);
	// An idle log writes and fdatasyncs in one operation: a lone append
	// costs one round trip. Only when everything before it is durable,
	// the segment's directory entry included, so that fdatasync alone
	// makes it durable.
	bool dsync = !interval_mode(log) && log->head == log->tail &&
		     !log->round.active && log->durable == log->end &&
		     !log->dir_dirty;
	*p = (struct ox_log_pending){
		.log = log,
		.seg = seg,
		.base_offset = hdr.base_offset,
		.last_offset = hdr.base_offset + hdr.last_offset_delta,
		.term = hdr.term,
		.pos = pos,
		.len = (uint32_t)len,
		.dsync = dsync,
		.cb = cb,
		.arg = arg,
	};
	rc = ox_io_write(log->io, seg->fd, batch, len, pos,
			 dsync ? OX_IO_DSYNC : 0, append_write_done, p);
	if (rc < 0)
		return rc;
	log->tail++;
	log->ops++;
	ox_segment_track(seg, &hdr, pos, log->cfg.index_interval_bytes);
	log->end = p->last_offset + 1;
	log->last_term = hdr.term;
	log->total_bytes += len;
	if (log->round.active && !log->round.op_inflight)
		ox_log_round_kick(log);
	if (interval_mode(log) && !log->timer_armed)
		ox_log_arm_timer(log);
	if (base_out)
		*base_out = hdr.base_offset;
	return 0;
}

void ox_log_fault_sync(struct ox_log *log, int err)
{
	OX_ASSERT(err < 0);
	log->fault_sync_err = err;
}
