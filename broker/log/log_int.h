// SPDX-License-Identifier: Apache-2.0
//
// Private structures of the partition log, shared by the log's .c files
// (log.c, append.c, read.c, recover.c, segment.c, index.c) and by the log's
// own unit tests. No other module includes this header: everyone else goes
// through log.h. The invariants I1..I9 cited here are listed in log.c.
//
// compact.c builds a cleaned segment with ox_segment_create()
// using the OX_LOG_SUFFIX_CLEANED suffix, fills it with verified batches,
// builds its index with ox_segment_track(), stores the index with
// ox_index_store() and swaps it in on the owner thread; the replaced
// segment keeps serving readers through its reference count.
#ifndef OX_BROKER_LOG_LOG_INT_H
#define OX_BROKER_LOG_LOG_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "broker/log/log.h"
#include "proto/batch.h"

// File name suffixes inside a partition directory. A segment file is
// "<base offset as 20 digits><suffix>".
#define OX_LOG_SUFFIX_LOG ".log"
#define OX_LOG_SUFFIX_INDEX ".index"
#define OX_LOG_SUFFIX_TIMEINDEX ".timeindex"
#define OX_LOG_SUFFIX_DELETED ".deleted" // being deleted: removed at open
#define OX_LOG_SUFFIX_TMP ".tmp"         // index being written: removed at open
#define OX_LOG_SUFFIX_CLEANED ".cleaned" // compaction output: removed at open

// 20 digits, the longest suffix (".timeindex.tmp") and the terminator.
#define OX_LOG_NAME_MAX 48

// Positions inside a segment are u32 in the index (and relative offsets
// too), so a segment file never grows past this. Appends keep segments
// under OX_LOG_SEGMENT_BYTES_MAX + one batch; recovery treats bytes beyond
// this as a corrupt tail.
#define OX_SEGMENT_FILE_MAX UINT32_MAX

// Segments per partition: each holds an open fd, so the process fd limit
// is the real bound; 64 Ki segments is 64 TiB at the default 1 GiB.
#define OX_LOG_SEGMENTS_MAX (1u << 16)

// Recovery reads segments in chunks of this size (one pread per chunk, not
// per batch). Reads and lookups read OX_LOG_READ_CHUNK at a time: they walk
// about index_interval_bytes from an index entry, so big chunks would only
// copy bytes nobody looks at.
#define OX_LOG_SCAN_BYTES (1u << 20)
#define OX_LOG_READ_CHUNK (64u << 10)

// ---------------------------------------------------------------- index

// Offset index entry: the batch whose base offset is base + rel starts at
// file position pos.
struct ox_index_entry {
	uint32_t rel;
	uint32_t pos;
};

// Time index entry: every batch up to and including the one starting at
// relative offset rel has max_timestamp <= ts, and ts is reached there.
struct ox_time_entry {
	int64_t ts;
	uint32_t rel;
};

// The sparse offset index and the time index of one segment, in memory.
// Both are sorted: rel and pos strictly increase in off[], ts strictly
// increases and rel does not decrease in time[] (I8).
struct ox_index {
	struct ox_index_entry *off;
	uint32_t off_len;
	uint32_t off_cap;
	struct ox_time_entry *time;
	uint32_t time_len;
	uint32_t time_cap;
};

// What a persisted index says about its segment besides the entries; an
// index file is loaded only if all of it matches the segment file.
struct ox_index_meta {
	int64_t base_offset;
	uint64_t segment_bytes;  // file size of the sealed segment
	int64_t next_offset;     // after its last batch
	int64_t max_timestamp;   // INT64_MIN when empty
	uint64_t last_term;      // 0 when empty
	uint64_t last_pos;       // position of the last batch (0 when empty)
	uint64_t last_checksum;  // checksum field of the last batch (0 when empty)
};

void ox_index_init(struct ox_index *idx);
void ox_index_deinit(struct ox_index *idx);

// Makes room for one more entry in each index. Returns 0 or -ENOMEM; after
// 0, the next ox_index_add() cannot fail.
int ox_index_reserve(struct ox_index *idx);

// Adds an offset entry (rel, pos) and, when max_ts is above the last time
// entry, a time entry (max_ts, rel). Needs a prior ox_index_reserve().
void ox_index_add(struct ox_index *idx, uint32_t rel, uint32_t pos,
		  int64_t max_ts);

// Largest offset entry with entry.rel <= rel; (0, 0) when there is none.
struct ox_index_entry ox_index_floor(const struct ox_index *idx, uint32_t rel);

// Largest offset entry with entry.pos < pos; returns false when none.
bool ox_index_floor_pos(const struct ox_index *idx, uint64_t pos,
			struct ox_index_entry *out);

// Relative offset of the largest time entry with ts < ts_ms: every batch up
// to and including that one is older than ts_ms. Returns false when none.
bool ox_index_time_floor(const struct ox_index *idx, int64_t ts_ms,
			 uint32_t *rel_out);

// The max timestamp of every batch up to and including the one at rel (an
// offset entry): the ts of the last time entry with rel <= rel, or
// INT64_MIN.
int64_t ox_index_max_ts_upto(const struct ox_index *idx, uint32_t rel);

// Drops offset entries with rel > keep_rel and time entries with
// rel > keep_rel; with keep_any false drops everything.
void ox_index_trim(struct ox_index *idx, bool keep_any, uint32_t keep_rel);

// Persisted form. kind selects the file: 0 offset index, 1 time index.
enum ox_index_kind {
	OX_INDEX_KIND_OFFSET = 0,
	OX_INDEX_KIND_TIME = 1,
};

// Serializes one index file into a malloc'ed buffer the caller frees.
// Returns 0 or -ENOMEM.
int ox_index_serialize(const struct ox_index *idx,
		       const struct ox_index_meta *meta, enum ox_index_kind kind,
		       uint8_t **buf_out, size_t *len_out);

// Writes both index files of a sealed segment synchronously: each to
// <name>.tmp, fdatasync, rename. Returns 0 or a negative errno (the index
// is an optimisation: callers may ignore a failure, open rebuilds it).
int ox_index_store(int dirfd, const struct ox_index *idx,
		   const struct ox_index_meta *meta);

// Loads both index files of the segment at base. Returns 0 with *idx
// filled (it must be empty) and *meta read, -ENOENT when a file is missing,
// -OX_ECORRUPT when one fails its checks (checksum, sizes, ordering, or a
// meta that differs from `expect`'s segment_bytes/base_offset), or another
// negative errno. The caller still checks meta against the segment file.
int ox_index_load(int dirfd, int64_t base_offset, uint64_t segment_bytes,
		  struct ox_index *idx, struct ox_index_meta *meta);

// Unlinks both index files (and their .tmp). Missing files are fine.
// Returns 0 or the first other negative errno.
int ox_index_unlink(int dirfd, int64_t base_offset);

// ------------------------------------------------------------- segment

// Where a sealed segment's persisted index stands.
enum ox_index_state {
	OX_INDEX_ACTIVE = 0,  // the segment takes appends; no index file
	OX_INDEX_PENDING = 1, // sealed; index written once its data is durable
	OX_INDEX_WRITING = 2, // index files being written
	OX_INDEX_STORED = 3,  // index files on disk (or given up: rebuilt at open)
};

// One segment file. Refcounted: the log holds one reference while the
// segment is in its array, each read slice and each I/O on its fd one more.
// The fd is closed and the struct freed at the last unref; the file is
// unlinked (or replaced) when the log drops the segment, so readers keep
// reading the old bytes through the fd.
struct ox_segment {
	int refs;
	int fd;
	int64_t base_offset;     // from the file name
	int64_t next_offset;     // after the last batch appended (in flight too)
	uint64_t size;           // append position: bytes appended, in flight too
	uint64_t written_bytes;  // bytes of batches in the written prefix (I2)
	int64_t max_timestamp;   // largest batch max_timestamp; INT64_MIN empty
	uint64_t last_term;      // term of the last batch; 0 when empty
	uint64_t last_pos;       // position of the last batch
	uint64_t last_checksum;  // its checksum field
	int64_t created_ms;      // clock at its first append or at open (age)
	uint32_t bytes_since_index;
	bool sealed;
	bool removed;            // dropped from the log: unlinked or replaced
	enum ox_index_state index_state;
	uint64_t index_job;      // WRITING: the sequence of the pair writing
	struct ox_index index;
};

// Creates <base><suffix> in dirfd (O_EXCL), empty, one reference. Returns 0
// or a negative errno.
int ox_segment_create(int dirfd, int64_t base_offset, const char *suffix,
		      int64_t now_ms, struct ox_segment **out);

// Opens an existing <base>.log; size holds the file size, nothing else is
// known until ox_segment_recover() or an index load. Returns 0 or -errno.
int ox_segment_open(int dirfd, int64_t base_offset, int64_t now_ms,
		    struct ox_segment **out);

void ox_segment_ref(struct ox_segment *seg);
void ox_segment_unref(struct ox_segment *seg);

// Accounts for one batch placed at pos (appended or found by a scan):
// size, offsets, timestamps, term and an index entry every interval bytes.
// Needs a prior ox_index_reserve() on seg->index.
void ox_segment_track(struct ox_segment *seg, const struct ox_batch_header *hdr,
		      uint64_t pos, uint32_t interval);

// Sets the segment's metadata from a loaded index.
void ox_segment_apply_meta(struct ox_segment *seg,
			   const struct ox_index_meta *meta);
void ox_segment_meta(const struct ox_segment *seg, struct ox_index_meta *out);

// Reads the header of the batch at meta->last_pos and checks it against
// meta (checksum field, offsets, end at segment_bytes): an index must
// describe these very bytes. Returns 0 or -OX_ECORRUPT / -errno.
int ox_segment_check_meta(const struct ox_segment *seg,
			  const struct ox_index_meta *meta);

// Scratch memory for reading segments, owned by the log (one thread).
struct ox_scan {
	uint8_t *buf;
	size_t cap;
};

// A forward walk over batch headers of one segment in [pos, end),
// reading chunk bytes per pread into the scan buffer.
struct ox_walk {
	const struct ox_segment *seg;
	struct ox_scan *scan;
	size_t chunk;
	uint64_t buf_pos;  // file position of scan->buf[0]
	size_t buf_len;    // valid bytes in scan->buf
	uint64_t pos;      // next batch
	uint64_t end;
};

void ox_walk_init(struct ox_walk *w, const struct ox_segment *seg,
		  struct ox_scan *scan, size_t chunk, uint64_t pos,
		  uint64_t end);

// Decodes the header of the batch at w->pos. Returns 1 (the batch ends at
// or before w->end), 0 at w->end, -OX_ETRUNCATED when a partial batch
// ends the range, -OX_ECORRUPT for a bad header, or -errno from pread.
// With bytes_out non-NULL, *bytes_out points at the whole batch in the
// scan buffer when it fits there, else NULL. The caller advances w->pos.
int ox_walk_next(struct ox_walk *w, struct ox_batch_header *hdr,
		 const uint8_t **bytes_out);

// Finds the first batch with last offset >= offset among the batches
// below end (starting from the offset index floor). Returns 1 with *pos_out
// and *hdr_out, 0 when no batch below end qualifies, or a negative error.
int ox_segment_locate(const struct ox_segment *seg, struct ox_scan *scan,
		      int64_t offset, uint64_t end, uint64_t *pos_out,
		      struct ox_batch_header *hdr_out);

// Reads the batch at [pos, pos + len) and verifies it whole (I4).
// Returns 0, -OX_ECORRUPT, -ENOMEM or -errno.
int ox_segment_verify_at(const struct ox_segment *seg, uint64_t pos,
			 uint32_t len);

// Scans the whole file from position 0, verifying every batch (checksum,
// offsets strictly increasing from the segment's base offset), and rebuilds
// index and metadata for the good prefix. Sets *damaged when the file holds
// anything after the last good batch. Returns 0 or a negative errno (I/O
// failure; damage is not an error).
int ox_segment_recover(struct ox_segment *seg, struct ox_scan *scan,
		       uint32_t interval, bool *damaged);

// Cuts the segment at cut (a batch boundary at or below size): recomputes
// metadata and index for [0, cut), ftruncates and fdatasyncs the file.
// Returns 0 or a negative error.
int ox_segment_truncate(struct ox_segment *seg, struct ox_scan *scan,
			uint64_t cut, uint32_t interval);

// pread until n bytes or EOF; returns the bytes read or -errno.
ssize_t ox_pread_full(int fd, void *buf, size_t n, uint64_t off);

// "<base as 20 digits><suffix>" into out[OX_LOG_NAME_MAX].
void ox_log_file_name(char *out, int64_t base_offset, const char *suffix);

// ----------------------------------------------------------------- log

// One append in flight, in the pending ring (in offset order).
struct ox_log_pending {
	struct ox_log *log;
	struct ox_segment *seg;
	int64_t base_offset;
	int64_t last_offset;
	uint64_t term;
	uint64_t pos;
	uint32_t len;
	int res;    // write result once done: 0 or -errno
	bool done;  // the write completed
	bool dsync; // written with OX_IO_DSYNC on an idle log (append.c)
	ox_log_append_cb cb;
	void *arg;
};

// One group-commit round: fdatasync every segment holding bytes in
// [durable, target), one after the other, then the directory when a
// segment file was created or removed, then durable = target.
struct ox_log_round {
	bool active;
	bool op_inflight;  // a sync of this round is in flight
	bool dir;          // the directory still needs its fsync
	int64_t target;
	int64_t cursor;    // base offset of the last segment synced
	struct ox_segment *seg; // being synced (a reference)
};

struct ox_log_timer;
struct ox_compact;

struct ox_log {
	struct ox_io *io;
	struct ox_log_config cfg;
	int dirfd;

	// Sorted by base offset; the last one is the active segment.
	struct ox_segment **segs;
	unsigned nsegs;
	unsigned segs_cap;

	int64_t end;       // next offset to assign
	int64_t written;   // every batch below is written (I2)
	int64_t durable;   // every batch below is fsynced (I2)
	uint64_t last_term;
	uint64_t total_bytes;

	int failed;        // 0, or the first I/O error: sticky (I7)
	bool closing;
	bool dir_dirty;    // a segment file was created/removed since a round
	bool timer_armed;

	// Appends in flight: [head, wcur) written, [wcur, tail) not yet.
	struct ox_log_pending *ring;
	uint32_t head;
	uint32_t wcur;
	uint32_t tail;

	struct ox_log_round round;
	struct ox_log_timer *timer; // fsync interval timer's token
	unsigned ops;        // this log's I/O operations in flight (not the timer)
	unsigned index_jobs; // index file pairs being written
	uint64_t index_seq;  // names each pair's temporary files uniquely
	// Moves at every truncation: work started before it (index files,
	// a compaction pass) may describe bytes that are gone, so it is not
	// installed.
	uint64_t truncate_gen;
	// Compaction may have left gaps between segments below this offset
	// (the gap horizon of the durable cleaner checkpoint, compact.c C7);
	// recovery accepts a gap only there.
	int64_t gaps_upto;
	// Below this offset every key has at most one record (the clean point
	// of the cleaner checkpoint, compact.c C8): a pass maps only the
	// segments above it.
	int64_t clean_upto;
	struct ox_compact *compact; // a compaction pass (compact.c), or NULL

	struct ox_scan scan;

	// Test hook (fault injection): when non-zero, the next segment sync of
	// a round completes with this error instead of its real result.
	int fault_sync_err;
};

// The active segment.
static inline struct ox_segment *ox_log_active(const struct ox_log *log)
{
	return log->segs[log->nsegs - 1];
}

// Index of the last segment with base_offset <= offset (0 if none).
unsigned ox_log_seg_find(const struct ox_log *log, int64_t offset);

int64_t ox_log_now_ms(const struct ox_log *log);

// Recovery (recover.c): lists, checks and loads the directory into log.
int ox_log_recover(struct ox_log *log);

// Group commit and index persistence (append.c).
void ox_log_round_kick(struct ox_log *log);
void ox_log_persist_indexes(struct ox_log *log);
int ox_log_arm_timer(struct ox_log *log);
// Hands an armed timer's token to its callback (which frees it) so that
// close need not wait for it; frees it otherwise.
void ox_log_timer_detach(struct ox_log *log);

// Makes room for one more segment in log->segs. Returns 0 or -ENOMEM.
int ox_log_segs_reserve(struct ox_log *log);

// Unlinks the files of segs[i] and drops it from the array (log.c).
int ox_log_remove_segment(struct ox_log *log, unsigned i);

// The cleaner checkpoint (compact.c): store writes the gap horizon and
// the clean point durably (tmp file, fdatasync, rename, directory fsync)
// and then sets gaps_upto and clean_upto; load reads them at open (both 0
// when the file is missing). Both return 0 or -errno.
int ox_log_checkpoint_store(struct ox_log *log, int64_t gaps_upto,
			    int64_t clean_upto);
int ox_log_checkpoint_load(struct ox_log *log);

// Stops a compaction pass in flight (if any), waits for its thread and
// discards what it wrote (compact.c). Close and truncate call it.
void ox_log_compact_abort(struct ox_log *log);

// Fault injection for tests: makes the next round's segment sync fail
// with err (negative errno).
void ox_log_fault_sync(struct ox_log *log, int err);

#endif
