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

// Milliseconds since the epoch; tests substitute their own clock.
typedef int64_t (*ox_log_clock)(void *arg);

struct ox_log_config {
	uint64_t segment_bytes;        // roll when a segment would pass this
	int64_t segment_ms;            // roll a segment this old (<= 0: never)
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

// Fills the defaults: 1 GiB segments, 4 KiB index interval, fsync always,
// delete policy, retention 7 days, no size limit, 1 MiB batches.
void ox_log_config_default(struct ox_log_config *cfg);

// Opens (creating if missing) the log in `dir`, recovering it: leftover
// temporary files of an interrupted compaction are removed, indexes are
// loaded or rebuilt, the tail is verified batch by batch and a torn or
// corrupt tail is truncated to the last good batch. Borrows io (it must
// outlive the log) and copies cfg and dir.
int ox_log_open(struct ox_log **out, struct ox_io *io, const char *dir,
		const struct ox_log_config *cfg);

// Waits for appends in flight and a final fsync, then frees the log.
// Returns 0 or the sticky error. NULL is a no-op.
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
// `term` (rewriting base offset, term and checksum in `batch`), and writes
// it. The log borrows `batch` until cb runs; cb runs from ox_io_run() on
// the owner thread. On success *base_out (if non-NULL) holds the assigned
// base offset. Errors: -OX_ECORRUPT (bad batch), -OX_ETOOBIG, -OX_EOFFSET
// (KEEP_OFFSETS and the base offset is not the end offset), -EBUSY (too
// many appends in flight: run the loop), -OX_EFAILED (sticky failure).
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
// holding `offset` (for Raft's consistency check).
uint64_t ox_log_last_term(const struct ox_log *log);
int ox_log_term_at(struct ox_log *log, int64_t offset, uint64_t *term_out);

// Reads whole batches starting with the one holding `offset`, stopping
// before `max_bytes` would be passed (but always at least one whole batch
// if buf can hold it) and before any batch reaching `limit_offset` (pass
// ox_log_written_offset() or a high watermark). Every batch is checked
// against its checksum; reading stops before a corrupt one and returns
// -OX_ECORRUPT if it is the first. Returns 0 with *len_out bytes in buf
// (0 when offset == limit), -OX_EOFFSET when offset is outside
// [start, limit], -ENOSPC when buf cannot hold the first batch.
int ox_log_read(struct ox_log *log, int64_t offset, size_t max_bytes,
		int64_t limit_offset, void *buf, size_t buf_cap,
		size_t *len_out);

// Where to read whole batches without copying them (sendfile, io_uring):
// a file region of one segment. The slice holds a reference on the segment
// so its fd stays valid even if retention or compaction replaces it;
// release it with ox_log_slice_release(). Same bounds rules as ox_log_read
// except that checksums are not checked (the reader checks them).
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

// The first offset whose record timestamp is >= ts_ms. Returns 0 with
// *offset_out, or -OX_EOFFSET when no record is that recent.
int ox_log_offset_for_time(struct ox_log *log, int64_t ts_ms,
			   int64_t *offset_out);

// Drops every batch whose last offset is >= offset, across segments; the
// end offset becomes the offset after the last batch kept. Durable before
// it returns. Returns -EBUSY while appends are in flight.
int ox_log_truncate(struct ox_log *log, int64_t offset);

// Deletes whole sealed segments past retention.ms (by their newest
// timestamp) or beyond retention.bytes (oldest first); never the active
// segment. Returns the number of segments deleted or a negative error.
int ox_log_enforce_retention(struct ox_log *log);

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
