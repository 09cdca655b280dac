// SPDX-License-Identifier: Apache-2.0
//
// One partition's log: a directory of segments named by base offset, each
// with a sparse offset index and a time index. Append assigns offsets and
// makes batches durable with group commit; reads return whole batches as
// stored; truncate, retention and compaction remove records. Recovery on
// open verifies the tail and cuts a torn or corrupt tail.
//
// A log belongs to the thread that owns its `struct ox_io`: every function
// here must be called on that thread (compaction does its heavy work on a
// helper thread of its own and swaps results in on the owner's thread).
// Raft, the broker and the benchmarks call it. It knows nothing of networks,
// replication or topics. The invariants are listed in log.c.
#ifndef OX_BROKER_LOG_LOG_H
#define OX_BROKER_LOG_LOG_H

#include <stddef.h>
#include <stdint.h>

struct ox_io;
struct ox_log;
struct ox_segment;

enum ox_log_fsync {
	OX_LOG_FSYNC_ALWAYS = 0,   // callbacks fire after fdatasync
	OX_LOG_FSYNC_INTERVAL = 1, // callbacks fire after the write; fsync on a timer
};

#define OX_LOG_CLEANUP_DELETE 0x1u
#define OX_LOG_CLEANUP_COMPACT 0x2u

// Appends accepted and not yet called back, per log: beyond it append
// returns -EBUSY. 4096 batches keep a disk busy through several fsync
// rounds (4096 x 64 KiB = 256 MiB) while bounding the pending ring.
#define OX_LOG_APPENDS_MAX 4096u

// Largest segment_bytes: file positions in the index are 32-bit, and a
// segment never holds more than segment_bytes plus one batch.
#define OX_LOG_SEGMENT_BYTES_MAX (1ull << 31)

// Milliseconds since the epoch; tests substitute their own clock.
typedef int64_t (*ox_log_clock)(void *arg);

// ox_log_open() rejects with -EINVAL: segment_bytes outside
// [1, OX_LOG_SEGMENT_BYTES_MAX], index_interval_bytes == 0, an unknown fsync
// policy, fsync_interval_ms outside [1, 86400000] with the interval policy,
// unknown cleanup bits, max_batch_bytes outside [OX_BATCH_HEADER_BYTES,
// OX_BATCH_BYTES_MAX].
struct ox_log_config {
	uint64_t segment_bytes;        // roll when a segment would pass this
	int64_t segment_ms;            // roll a segment this old (<= 0: never);
				       // age counts from its first append (or
				       // from open for a recovered last one)
	uint32_t index_interval_bytes; // bytes of log between index entries
	enum ox_log_fsync fsync;
	int64_t fsync_interval_ms;     // with OX_LOG_FSYNC_INTERVAL
	int64_t retention_ms;          // < 0: keep forever
	int64_t retention_bytes;       // < 0: no size limit
	unsigned cleanup;              // OX_LOG_CLEANUP_* bits
	int64_t delete_retention_ms;   // tombstones kept this long once cleanable
	uint32_t max_batch_bytes;      // appends above it fail with -OX_ETOOBIG
	ox_log_clock clock;            // NULL: CLOCK_REALTIME
	void *clock_arg;
};

// Fills the defaults: 1 GiB segments rolled after 7 days, 4 KiB index
// interval, fsync always (interval 1 s if switched), delete policy,
// retention 7 days, no size limit, tombstones kept 1 day, 1 MiB batches.
void ox_log_config_default(struct ox_log_config *cfg);

// Replaces the configuration of an open log (a topic's settings were
// altered). Segment size and age, retention, cleanup policy, tombstone
// delay and the batch limit take effect from the next append, retention
// run or compaction pass; a pass already running keeps the settings it
// started with. Returns 0, or -EINVAL when cfg fails ox_log_open's checks
// or changes the fsync policy, the fsync interval, the index interval or
// the clock (fixed while the log is open). Copies cfg.
int ox_log_set_config(struct ox_log *log, const struct ox_log_config *cfg);

// Opens (creating if missing) the log in `dir`, recovering it: leftover
// temporary files of an interrupted compaction are removed, indexes are
// loaded or rebuilt, the tail is verified batch by batch and a torn or
// corrupt tail is truncated to the last good batch. Borrows io (it must
// outlive the log) and copies cfg and dir (the parent of dir must exist).
// cfg NULL means the defaults. On return every offset (end, written,
// durable) is just after the last good batch, and all of it is durable.
// Errors: -EINVAL (cfg), -OX_ETOOBIG (more than 65536 segments), -ENOMEM,
// or the errno of a failed file operation.
int ox_log_open(struct ox_log **out, struct ox_io *io, const char *dir,
		const struct ox_log_config *cfg);

// Waits for appends in flight and a final fsync (running the io loop; an
// armed fsync-interval timer is not waited for: it completes later as a
// no-op), writes the index files of sealed segments still without them,
// then frees the log. Returns 0 or the sticky error. NULL is a no-op.
// Must not be called from an append callback.
int ox_log_close(struct ox_log *log);

// Called when an append is durable (fsync always) or written (interval).
// res is 0 or a negative error; on success base/last are the batch's
// offsets.
typedef void (*ox_log_append_cb)(void *arg, int res, int64_t base_offset,
				 int64_t last_offset);

// Append flags.
#define OX_LOG_APPEND_KEEP_OFFSETS 0x1u // follower: batch already carries
					// base offset == end offset and term

// Appends one batch. The log verifies it, assigns the next offsets and
// `term` (rewriting base offset, term and checksum in `batch`; with
// KEEP_OFFSETS the batch is written as it is and `term` is ignored), and
// writes it. The log borrows `batch` until cb runs; cb runs from
// ox_io_run() on the owner thread, exactly once per successful append, in
// offset order; cb may be NULL and may call ox_log_append. On success
// *base_out (if non-NULL) holds the assigned base offset. Once the log has
// failed, callbacks not yet run get the I/O error. Errors (no callback
// then; the batch may have been restamped): -EINVAL (unknown flags),
// -OX_ECORRUPT (bad batch, or len is not its length), -OX_ETOOBIG (len >
// max_batch_bytes, or too many segments), -OX_EOFFSET (KEEP_OFFSETS and
// the base offset is not the end offset), -EBUSY (OX_LOG_APPENDS_MAX in
// flight, or the io loop is full: run the loop), -OX_EFAILED (sticky
// failure), -OX_ECLOSED (closing), or the errno of creating a segment.
int ox_log_append(struct ox_log *log, void *batch, size_t len, uint64_t term,
		  unsigned flags, ox_log_append_cb cb, void *arg,
		  int64_t *base_out);

// Offsets. start: first offset still stored. end: next offset to assign.
// written: every batch below it has been written (readable). durable:
// every batch below it has been fsynced.
int64_t ox_log_start_offset(const struct ox_log *log);
int64_t ox_log_end_offset(const struct ox_log *log);
int64_t ox_log_written_offset(const struct ox_log *log);
int64_t ox_log_durable_offset(const struct ox_log *log);

// Term of the last batch (0 for an empty log), and the term of the batch
// holding `offset` (for Raft's consistency check). term_at works for every
// offset in [start, end), appends in flight included, and takes the term
// only from a batch that verifies; an offset in a compaction gap gets the
// term of the next batch. Returns 0, -OX_EOFFSET, -OX_ECORRUPT or -errno.
uint64_t ox_log_last_term(const struct ox_log *log);
int ox_log_term_at(struct ox_log *log, int64_t offset, uint64_t *term_out);

// Reads whole batches starting with the one holding `offset`, stopping
// before `max_bytes` would be passed (but always at least one whole batch
// if buf can hold it) and before any batch reaching `limit_offset` (pass
// ox_log_written_offset() or a high watermark). Every batch is checked
// against its checksum; reading stops before a corrupt one and returns
// -OX_ECORRUPT if it is the first. Returns 0 with *len_out bytes in buf
// (0 when offset == limit), -OX_EOFFSET when offset is outside
// [start, limit], -ENOSPC when buf cannot hold the first batch. limit is
// clamped to the written offset, so a read never sees a batch in flight.
// An offset inside a batch returns that whole batch (the reader skips the
// records before it); an offset in a compaction gap returns the next one.
// Reads use pread on the owner thread and still work after a failure.
int ox_log_read(struct ox_log *log, int64_t offset, size_t max_bytes,
		int64_t limit_offset, void *buf, size_t buf_cap,
		size_t *len_out);

// Where to read whole batches without copying them (sendfile, io_uring):
// a file region of one segment. The slice holds a reference on the segment
// so its fd stays valid even if retention or compaction replaces it;
// release it with ox_log_slice_release(). Same bounds rules as ox_log_read
// except that checksums are not checked (the reader checks them), and the
// slice ends at the end of the segment: read on from next_offset. An empty
// result (offset == limit) has segment NULL, fd -1 and len 0. Releasing
// after ox_log_close() is fine.
struct ox_log_slice {
	struct ox_segment *segment;
	int fd;
	uint64_t pos;
	uint32_t len;
	int64_t base_offset; // of the first batch in the slice
	int64_t next_offset; // after the last batch in the slice
};
int ox_log_read_slice(struct ox_log *log, int64_t offset, size_t max_bytes,
		      int64_t limit_offset, struct ox_log_slice *out);
void ox_log_slice_release(struct ox_log_slice *slice);

// The first offset whose record timestamp is >= ts_ms (Kafka's
// ListOffsets), among written batches. Returns 0 with *offset_out,
// -OX_EOFFSET when no record is that recent, -OX_ECORRUPT when the batch
// that should hold it fails its checksum.
int ox_log_offset_for_time(struct ox_log *log, int64_t ts_ms,
			   int64_t *offset_out);

// Drops every batch whose last offset is >= offset, across segments; the
// end offset becomes the offset after the last batch kept (so a cut inside
// a batch drops the whole batch). Durable before it returns: end, written
// and durable are all equal then. offset >= end is a no-op; offset < start
// is -OX_EOFFSET. Returns -EBUSY while appends or a sync round are in
// flight (run the loop), -OX_EFAILED after a failure; an I/O error during
// the cut fails the log (sticky).
int ox_log_truncate(struct ox_log *log, int64_t offset);

// Empties the log and restarts it at `offset` (>= 0): every segment is
// deleted and one empty segment with that base offset takes their place,
// so start, end, written and durable all become `offset`. Raft calls it on
// a follower that must install a snapshot: its leader no longer has the
// offsets in between. Durable before it returns. -EBUSY while appends or
// a sync round are in flight (run the loop), -OX_EOFFSET for offset < 0,
// -OX_EFAILED after a failure; an I/O error part way fails the log
// (sticky), which then reopens with what was left.
int ox_log_reset(struct ox_log *log, int64_t offset);

// Deletes whole sealed segments past retention.ms (by their newest
// timestamp) or beyond retention.bytes (oldest first); never the active
// segment, nor one holding bytes not yet durable. Does nothing without
// OX_LOG_CLEANUP_DELETE. Readers holding a slice keep reading a deleted
// segment through its fd. Returns the number of segments deleted or a
// negative error.
int ox_log_enforce_retention(struct ox_log *log);

// Deletes the oldest whole segments holding only offsets below `offset`
// (a snapshot covers them), whatever the cleanup policy; never the
// active segment, nor one holding bytes not yet durable. The start moves
// to the first segment kept, so it stays at or below `offset`. Returns the
// number of segments deleted or a negative error (-OX_EFAILED after a
// failure).
int ox_log_delete_before(struct ox_log *log, int64_t offset);

// Compaction (cleanup.policy contains compact). Keeps the latest record per
// key in the sealed segments below `limit_offset`, drops tombstones older
// than delete.retention.ms, keeps offsets, and swaps each cleaned segment in
// atomically (new file, fsync, rename). The work runs on a helper thread:
// ox_log_compact_start() begins a pass (-EALREADY if one runs),
// ox_log_compact_poll() swaps in a finished pass on the owner thread
// (returns 1 when it swapped, 0 when still running or idle, < 0 on error),
// ox_log_compact() does both and waits.
int ox_log_compact_start(struct ox_log *log, int64_t limit_offset);
int ox_log_compact_poll(struct ox_log *log);
int ox_log_compact(struct ox_log *log, int64_t limit_offset);

// Sealed and active segments, and the bytes stored in them.
unsigned ox_log_segment_count(const struct ox_log *log);
uint64_t ox_log_size_bytes(const struct ox_log *log);

#endif
