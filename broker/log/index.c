// SPDX-License-Identifier: Apache-2.0
//
// The sparse offset index and the time index of one segment: in memory
// while the log is open, persisted as two small files when a segment is
// sealed and its data durable. The files are an optimisation only: a file
// that is missing, damaged, or does not describe the segment file it sits
// next to is ignored and the index rebuilt by scanning the segment. So a
// persisted index carries a header with the segment's size and the
// checksum of its last batch, and an XXH3 checksum of everything.
//
// File layout (little-endian), ".index" and ".timeindex" alike:
//
//   0  u32 magic ("OXIX" offset index, "OXTI" time index)
//   4  u16 version (1)
//   6  u16 entry bytes (8 offset, 12 time)
//   8  u64 XXH3-64 of bytes [16, end)
//  16  i64 base offset      24 u64 segment bytes    32 i64 next offset
//  40  i64 max timestamp    48 u64 last term        56 u64 last batch pos
//  64  u64 last batch checksum                      72 u32 entry count
//  76  u32 zero
//  80  entries: offset (u32 rel, u32 pos) / time (i64 ts, u32 rel)
//
// Called by segment.c (entries as batches are placed), log.c and append.c
// (persisting), recover.c (loading). No I/O loop here: index files are
// written synchronously or handed to append.c as buffers.
#include "broker/log/log_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "proto/assert.h"
#include "proto/error.h"

#define INDEX_MAGIC_OFFSET 0x5849584fu // "OXIX"
#define INDEX_MAGIC_TIME 0x4954584fu   // "OXTI"
#define INDEX_VERSION 1u
#define INDEX_HEADER_BYTES 80u
#define INDEX_OFFSET_ENTRY_BYTES 8u
#define INDEX_TIME_ENTRY_BYTES 12u
// First allocation of each entry array; doubles from there.
#define INDEX_CAP_MIN 64u

static void put_u16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t get_u16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get_u32(const uint8_t *p)
{
	uint32_t v = 0;
	for (int i = 3; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static uint64_t get_u64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

void ox_index_init(struct ox_index *idx)
{
	memset(idx, 0, sizeof(*idx));
}

void ox_index_deinit(struct ox_index *idx)
{
	free(idx->off);
	free(idx->time);
	memset(idx, 0, sizeof(*idx));
}

static int grow(void **arr, uint32_t *cap, uint32_t len, size_t elem)
{
	if (len < *cap)
		return 0;
	// Entries are bounded by the batches of one segment (< 2^26 at the
	// smallest batch of 72 bytes in 4 GiB), so the doubling cannot wrap.
	OX_ASSERT(*cap <= UINT32_MAX / 2);
	uint32_t ncap = *cap ? *cap * 2 : INDEX_CAP_MIN;
	void *p = realloc(*arr, (size_t)ncap * elem);
	if (!p)
		return -ENOMEM;
	*arr = p;
	*cap = ncap;
	return 0;
}

int ox_index_reserve(struct ox_index *idx)
{
	int rc = grow((void **)&idx->off, &idx->off_cap, idx->off_len,
		      sizeof(*idx->off));
	if (rc < 0)
		return rc;
	return grow((void **)&idx->time, &idx->time_cap, idx->time_len,
		    sizeof(*idx->time));
}

void ox_index_add(struct ox_index *idx, uint32_t rel, uint32_t pos,
		  int64_t max_ts)
{
	OX_ASSERT(idx->off_len < idx->off_cap && idx->time_len < idx->time_cap);
	// I8: entries stay sorted.
	OX_ASSERT(idx->off_len == 0 || (idx->off[idx->off_len - 1].rel < rel &&
					 idx->off[idx->off_len - 1].pos < pos));
	idx->off[idx->off_len++] = (struct ox_index_entry){ rel, pos };
	if (idx->time_len == 0 || idx->time[idx->time_len - 1].ts < max_ts)
		idx->time[idx->time_len++] = (struct ox_time_entry){ max_ts, rel };
}

struct ox_index_entry ox_index_floor(const struct ox_index *idx, uint32_t rel)
{
	uint32_t lo = 0, hi = idx->off_len;
	// Invariant: entries below lo have rel <= target, from hi on > target.
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (idx->off[mid].rel <= rel)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return (struct ox_index_entry){ 0, 0 };
	OX_ASSERT(idx->off[lo - 1].rel <= rel);
	return idx->off[lo - 1];
}

bool ox_index_floor_pos(const struct ox_index *idx, uint64_t pos,
			struct ox_index_entry *out)
{
	uint32_t lo = 0, hi = idx->off_len;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (idx->off[mid].pos < pos)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return false;
	*out = idx->off[lo - 1];
	OX_ASSERT(out->pos < pos);
	return true;
}

bool ox_index_time_floor(const struct ox_index *idx, int64_t ts_ms,
			 uint32_t *rel_out)
{
	uint32_t lo = 0, hi = idx->time_len;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (idx->time[mid].ts < ts_ms)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return false;
	OX_ASSERT(idx->time[lo - 1].ts < ts_ms);
	*rel_out = idx->time[lo - 1].rel;
	return true;
}

int64_t ox_index_max_ts_upto(const struct ox_index *idx, uint32_t rel)
{
	uint32_t lo = 0, hi = idx->time_len;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (idx->time[mid].rel <= rel)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo == 0 ? INT64_MIN : idx->time[lo - 1].ts;
}

void ox_index_trim(struct ox_index *idx, bool keep_any, uint32_t keep_rel)
{
	if (!keep_any) {
		idx->off_len = 0;
		idx->time_len = 0;
		return;
	}
	while (idx->off_len > 0 && idx->off[idx->off_len - 1].rel > keep_rel)
		idx->off_len--;
	while (idx->time_len > 0 && idx->time[idx->time_len - 1].rel > keep_rel)
		idx->time_len--;
	OX_ASSERT(idx->off_len == 0 || idx->off[idx->off_len - 1].rel <= keep_rel);
}

static size_t entry_bytes(enum ox_index_kind kind)
{
	return kind == OX_INDEX_KIND_OFFSET ? INDEX_OFFSET_ENTRY_BYTES
					    : INDEX_TIME_ENTRY_BYTES;
}

static void put_header(uint8_t *p, const struct ox_index_meta *m,
		       enum ox_index_kind kind, uint32_t count)
{
	put_u32(p, kind == OX_INDEX_KIND_OFFSET ? INDEX_MAGIC_OFFSET
						: INDEX_MAGIC_TIME);
	put_u16(p + 4, INDEX_VERSION);
	put_u16(p + 6, (uint16_t)entry_bytes(kind));
	put_u64(p + 16, (uint64_t)m->base_offset);
	put_u64(p + 24, m->segment_bytes);
	put_u64(p + 32, (uint64_t)m->next_offset);
	put_u64(p + 40, (uint64_t)m->max_timestamp);
	put_u64(p + 48, m->last_term);
	put_u64(p + 56, m->last_pos);
	put_u64(p + 64, m->last_checksum);
	put_u32(p + 72, count);
	put_u32(p + 76, 0);
}

int ox_index_serialize(const struct ox_index *idx,
		       const struct ox_index_meta *meta, enum ox_index_kind kind,
		       uint8_t **buf_out, size_t *len_out)
{
	uint32_t count = kind == OX_INDEX_KIND_OFFSET ? idx->off_len
						      : idx->time_len;
	size_t len = INDEX_HEADER_BYTES + (size_t)count * entry_bytes(kind);
	uint8_t *buf = malloc(len);
	if (!buf)
		return -ENOMEM;
	put_header(buf, meta, kind, count);
	uint8_t *p = buf + INDEX_HEADER_BYTES;
	for (uint32_t i = 0; i < count; i++) {
		if (kind == OX_INDEX_KIND_OFFSET) {
			put_u32(p, idx->off[i].rel);
			put_u32(p + 4, idx->off[i].pos);
			p += INDEX_OFFSET_ENTRY_BYTES;
		} else {
			put_u64(p, (uint64_t)idx->time[i].ts);
			put_u32(p + 8, idx->time[i].rel);
			p += INDEX_TIME_ENTRY_BYTES;
		}
	}
	OX_ASSERT(p == buf + len);
	put_u64(buf + 8, XXH3_64bits(buf + 16, len - 16));
	*buf_out = buf;
	*len_out = len;
	return 0;
}

static const char *kind_suffix(enum ox_index_kind kind)
{
	return kind == OX_INDEX_KIND_OFFSET ? OX_LOG_SUFFIX_INDEX
					    : OX_LOG_SUFFIX_TIMEINDEX;
}

static int write_all(int fd, const uint8_t *buf, size_t len)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = pwrite(fd, buf + done, len - done, (off_t)done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		done += (size_t)n;
	}
	return 0;
}

static int store_one(int dirfd, const struct ox_index *idx,
		     const struct ox_index_meta *meta, enum ox_index_kind kind)
{
	char tmp[OX_LOG_NAME_MAX], name[OX_LOG_NAME_MAX];
	char sfx[24];
	uint8_t *buf = NULL;
	size_t len = 0;
	int fd = -1;

	snprintf(sfx, sizeof(sfx), "%s%s", kind_suffix(kind), OX_LOG_SUFFIX_TMP);
	ox_log_file_name(tmp, meta->base_offset, sfx);
	ox_log_file_name(name, meta->base_offset, kind_suffix(kind));
	int rc = ox_index_serialize(idx, meta, kind, &buf, &len);
	if (rc < 0)
		goto fail;
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = -errno;
		goto fail;
	}
	rc = write_all(fd, buf, len);
	if (rc == 0 && fdatasync(fd) < 0)
		rc = -errno;
	if (rc < 0)
		goto fail_unlink;
	if (renameat(dirfd, tmp, dirfd, name) < 0) {
		rc = -errno;
		goto fail_unlink;
	}
	close(fd);
	free(buf);
	return 0;
fail_unlink:
	close(fd);
	unlinkat(dirfd, tmp, 0);
fail:
	free(buf);
	return rc;
}

int ox_index_store(int dirfd, const struct ox_index *idx,
		   const struct ox_index_meta *meta)
{
	OX_ASSERT(dirfd >= 0 && meta->next_offset >= meta->base_offset);
	int rc = store_one(dirfd, idx, meta, OX_INDEX_KIND_OFFSET);
	if (rc == 0)
		rc = store_one(dirfd, idx, meta, OX_INDEX_KIND_TIME);
	return rc;
}

// Reads a whole index file, bounded by what a segment of segment_bytes can
// need: one entry per batch at most.
static int read_file(int dirfd, int64_t base, enum ox_index_kind kind,
		     uint64_t segment_bytes, uint8_t **buf_out, size_t *len_out)
{
	char name[OX_LOG_NAME_MAX];
	struct stat st;
	uint8_t *buf = NULL;
	int rc;

	ox_log_file_name(name, base, kind_suffix(kind));
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		goto fail;
	}
	uint64_t max = INDEX_HEADER_BYTES +
		       (segment_bytes / OX_BATCH_HEADER_BYTES + 1) * entry_bytes(kind);
	if (st.st_size < (off_t)INDEX_HEADER_BYTES || (uint64_t)st.st_size > max) {
		rc = -OX_ECORRUPT;
		goto fail;
	}
	buf = malloc((size_t)st.st_size);
	if (!buf) {
		rc = -ENOMEM;
		goto fail;
	}
	ssize_t n = ox_pread_full(fd, buf, (size_t)st.st_size, 0);
	if (n != st.st_size) {
		rc = n < 0 ? (int)n : -OX_ECORRUPT;
		goto fail;
	}
	close(fd);
	*buf_out = buf;
	*len_out = (size_t)st.st_size;
	return 0;
fail:
	free(buf);
	close(fd);
	return rc;
}

static int parse_header(const uint8_t *buf, size_t len, enum ox_index_kind kind,
			struct ox_index_meta *m, uint32_t *count)
{
	uint32_t magic = kind == OX_INDEX_KIND_OFFSET ? INDEX_MAGIC_OFFSET
						      : INDEX_MAGIC_TIME;
	if (get_u32(buf) != magic || get_u16(buf + 4) != INDEX_VERSION ||
	    get_u16(buf + 6) != entry_bytes(kind) || get_u32(buf + 76) != 0)
		return -OX_ECORRUPT;
	if (get_u64(buf + 8) != XXH3_64bits(buf + 16, len - 16))
		return -OX_ECORRUPT;
	m->base_offset = (int64_t)get_u64(buf + 16);
	m->segment_bytes = get_u64(buf + 24);
	m->next_offset = (int64_t)get_u64(buf + 32);
	m->max_timestamp = (int64_t)get_u64(buf + 40);
	m->last_term = get_u64(buf + 48);
	m->last_pos = get_u64(buf + 56);
	m->last_checksum = get_u64(buf + 64);
	*count = get_u32(buf + 72);
	if ((len - INDEX_HEADER_BYTES) / entry_bytes(kind) != *count ||
	    (len - INDEX_HEADER_BYTES) % entry_bytes(kind) != 0)
		return -OX_ECORRUPT;
	return 0;
}

// I8 on what came from disk: sorted, inside the segment, and every time
// entry sits on an offset entry (lookups go from one to the other).
static int check_entries(const struct ox_index *idx,
			 const struct ox_index_meta *m)
{
	uint64_t span = (uint64_t)(m->next_offset - m->base_offset);
	uint32_t j = 0;

	for (uint32_t i = 0; i < idx->off_len; i++) {
		const struct ox_index_entry *e = &idx->off[i];
		if (e->rel >= span || e->pos >= m->segment_bytes)
			return -OX_ECORRUPT;
		if (i > 0 && (e->rel <= idx->off[i - 1].rel ||
			      e->pos <= idx->off[i - 1].pos))
			return -OX_ECORRUPT;
	}
	for (uint32_t i = 0; i < idx->time_len; i++) {
		const struct ox_time_entry *t = &idx->time[i];
		if (t->ts > m->max_timestamp ||
		    (i > 0 && t->ts <= idx->time[i - 1].ts))
			return -OX_ECORRUPT;
		while (j < idx->off_len && idx->off[j].rel < t->rel)
			j++;
		if (j == idx->off_len || idx->off[j].rel != t->rel)
			return -OX_ECORRUPT;
	}
	return 0;
}

static int meta_plausible(const struct ox_index_meta *m, int64_t base,
			  uint64_t segment_bytes)
{
	if (m->base_offset != base || m->segment_bytes != segment_bytes ||
	    m->next_offset < base ||
	    (uint64_t)(m->next_offset - base) > (uint64_t)UINT32_MAX + 1)
		return -OX_ECORRUPT;
	if (segment_bytes == 0)
		return m->next_offset == base ? 0 : -OX_ECORRUPT;
	if (m->next_offset == base || m->last_pos >= segment_bytes)
		return -OX_ECORRUPT;
	return 0;
}

static int load_entries(const uint8_t *buf, uint32_t count,
			enum ox_index_kind kind, struct ox_index *idx)
{
	const uint8_t *p = buf + INDEX_HEADER_BYTES;
	size_t esz = kind == OX_INDEX_KIND_OFFSET ? sizeof(*idx->off)
						  : sizeof(*idx->time);
	void *arr = malloc((size_t)(count ? count : 1) * esz);
	if (!arr)
		return -ENOMEM;
	for (uint32_t i = 0; i < count; i++) {
		if (kind == OX_INDEX_KIND_OFFSET) {
			struct ox_index_entry *e = (struct ox_index_entry *)arr + i;
			e->rel = get_u32(p);
			e->pos = get_u32(p + 4);
			p += INDEX_OFFSET_ENTRY_BYTES;
		} else {
			struct ox_time_entry *t = (struct ox_time_entry *)arr + i;
			t->ts = (int64_t)get_u64(p);
			t->rel = get_u32(p + 8);
			p += INDEX_TIME_ENTRY_BYTES;
		}
	}
	if (kind == OX_INDEX_KIND_OFFSET) {
		idx->off = arr;
		idx->off_cap = count ? count : 1;
		idx->off_len = count;
	} else {
		idx->time = arr;
		idx->time_cap = count ? count : 1;
		idx->time_len = count;
	}
	return 0;
}

static int load_one(int dirfd, int64_t base, uint64_t segment_bytes,
		    enum ox_index_kind kind, struct ox_index *idx,
		    struct ox_index_meta *meta)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	uint32_t count = 0;

	int rc = read_file(dirfd, base, kind, segment_bytes, &buf, &len);
	if (rc < 0)
		return rc;
	rc = parse_header(buf, len, kind, meta, &count);
	if (rc == 0)
		rc = meta_plausible(meta, base, segment_bytes);
	if (rc == 0)
		rc = load_entries(buf, count, kind, idx);
	free(buf);
	return rc;
}

static bool meta_equal(const struct ox_index_meta *a,
		       const struct ox_index_meta *b)
{
	return a->base_offset == b->base_offset &&
	       a->segment_bytes == b->segment_bytes &&
	       a->next_offset == b->next_offset &&
	       a->max_timestamp == b->max_timestamp &&
	       a->last_term == b->last_term && a->last_pos == b->last_pos &&
	       a->last_checksum == b->last_checksum;
}

int ox_index_load(int dirfd, int64_t base_offset, uint64_t segment_bytes,
		  struct ox_index *idx, struct ox_index_meta *meta)
{
	struct ox_index_meta tmeta;
	OX_ASSERT(idx->off == NULL && idx->time == NULL);

	int rc = load_one(dirfd, base_offset, segment_bytes,
			  OX_INDEX_KIND_OFFSET, idx, meta);
	if (rc == 0)
		rc = load_one(dirfd, base_offset, segment_bytes,
			      OX_INDEX_KIND_TIME, idx, &tmeta);
	if (rc == 0 && !meta_equal(meta, &tmeta))
		rc = -OX_ECORRUPT;
	if (rc == 0)
		rc = check_entries(idx, meta);
	if (rc < 0)
		ox_index_deinit(idx);
	return rc;
}

int ox_index_unlink(int dirfd, int64_t base_offset)
{
	static const char *const sfx[] = {
		OX_LOG_SUFFIX_INDEX,
		OX_LOG_SUFFIX_TIMEINDEX,
		OX_LOG_SUFFIX_INDEX OX_LOG_SUFFIX_TMP,
		OX_LOG_SUFFIX_TIMEINDEX OX_LOG_SUFFIX_TMP,
	};
	char name[OX_LOG_NAME_MAX];
	int rc = 0;

	for (size_t i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++) {
		ox_log_file_name(name, base_offset, sfx[i]);
		if (unlinkat(dirfd, name, 0) < 0 && errno != ENOENT && rc == 0)
			rc = -errno;
	}
	return rc;
}
