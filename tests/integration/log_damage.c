// SPDX-License-Identifier: Apache-2.0
//
// Damage test of the partition log's recovery (broker/log, invariants I4,
// I6 and I9 of log.c). A log of several sealed segments is built once and
// its files kept in memory. Then, for a bounded number of rounds, the files
// are restored and damaged at random: bytes flipped or zeroed in a segment,
// a segment cut short or given a garbage or zero-filled tail, an index file
// flipped, cut or removed. The log is reopened and must:
//   - open;
//   - serve, at every offset, either the very batch that was written there
//     or nothing (-OX_ECORRUPT for a batch that fails its checksum,
//     -OX_EOFFSET past the recovered end): never other bytes;
//   - still serve every batch that lies wholly before the first damaged
//     byte (in segment order), and all of them when only an index file was
//     damaged;
//   - take appends again and reopen cleanly.
// Rounds alternate the io backends. A plain program: exit 0 when every
// check held. The seed is printed; OX_TEST_SEED=<seed> replays a run, and
// OX_DAMAGE_DEBUG=1 prints each damage and any batch served wrongly.
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker/io/io.h"
#include "broker/log/log.h"
#include "proto/batch.h"
#include "proto/error.h"
#include "tests/integration/log_common.h"

#define ROUNDS 150
#define BATCHES 300
#define FILES_MAX 256
#define BATCH_CAP 16384
#define READ_CAP (1 << 20)

struct file {
	char name[256];
	uint8_t *bytes;
	size_t len;
	int64_t base;  // segment base offset
	bool is_log;
};

// A batch as built: where it lies and its bytes (in its file's copy).
struct batch {
	int64_t base;
	int64_t last;
	unsigned seg;  // index among the segment files, in offset order
	uint64_t pos;
	const uint8_t *bytes;
	uint32_t len;
};

static struct file files[FILES_MAX];
static unsigned nfiles;
static unsigned seg_file[FILES_MAX]; // segment index -> files[] index
static unsigned nsegs;
static struct batch batches[BATCHES];
static unsigned nbatches;
static char dir[LC_PATH_MAX + 2];

static void config(struct ox_log_config *cfg)
{
	ox_log_config_default(cfg);
	cfg->segment_bytes = 12 * 1024;
	cfg->index_interval_bytes = 512;
	cfg->retention_ms = -1;
}

static void append_one(struct ox_log *log, struct ox_io *io, uint32_t n)
{
	static uint8_t buf[BATCH_CAP];
	struct ox_batch_params params = { .producer_id = OX_PRODUCER_NONE,
					  .base_sequence = OX_SEQUENCE_NONE };
	struct ox_batch_builder b;
	uint8_t value[200];
	size_t len = 0;

	if (ox_batch_builder_init(&b, buf, sizeof(buf), &params) < 0)
		lc_die("builder", -EINVAL);
	for (uint32_t i = 0; i < n; i++) {
		uint32_t vlen = (uint32_t)(lc_rng() % sizeof(value));
		for (uint32_t j = 0; j < vlen; j++)
			value[j] = (uint8_t)lc_rng();
		struct ox_record r = { .key = value, .key_len = vlen > 8 ? 8 : 0,
				       .value = value, .value_len = (int32_t)vlen,
				       .timestamp = 1700000000000 + (int64_t)i };
		if (ox_batch_builder_add(&b, &r) < 0)
			lc_die("builder add", -ENOSPC);
	}
	if (ox_batch_builder_finish(&b, &len) < 0)
		lc_die("builder finish", -EINVAL);
	lc_append_wait(log, io, buf, len, 3);
}

static int cmp_file(const void *a, const void *b)
{
	const struct file *x = a, *y = b;
	if (x->base != y->base)
		return x->base < y->base ? -1 : 1;
	return strcmp(x->name, y->name);
}

// Walks the partition directory: every file in it, dot entries skipped.
static void each_file(lc_dir_each_cb fn)
{
	int rc = lc_dir_each(dir, fn, NULL);
	if (rc < 0)
		lc_die("opendir", rc);
}

static void snapshot_file(void *arg, const char *name, const char *path)
{
	struct stat st;

	(void)arg;
	if (name[0] == '.')
		return;
	if (nfiles == FILES_MAX)
		lc_die("snapshot", -OX_ETOOBIG);
	struct file *f = &files[nfiles++];
	snprintf(f->name, sizeof(f->name), "%.255s", name);
	FILE *fp = fopen(path, "rb");
	if (!fp || stat(path, &st) < 0)
		lc_die("snapshot read", -errno);
	f->len = (size_t)st.st_size;
	f->bytes = malloc(f->len + 1);
	if (!f->bytes || fread(f->bytes, 1, f->len, fp) != f->len)
		lc_die("snapshot read", -EIO);
	fclose(fp);
	f->base = strtoll(f->name, NULL, 10);
	f->is_log = strstr(f->name, ".log") != NULL;
}

static void snapshot(void)
{
	each_file(snapshot_file);
	qsort(files, nfiles, sizeof(files[0]), cmp_file);
}

// The batches of every segment file, in offset order.
static void index_batches(void)
{
	for (unsigned i = 0; i < nfiles; i++) {
		struct ox_batch_header h;
		size_t pos = 0;
		if (!files[i].is_log)
			continue;
		seg_file[nsegs] = i;
		while (ox_batch_next(files[i].bytes, files[i].len, &pos, &h) == 1) {
			if (nbatches == BATCHES)
				lc_die("too many batches", -OX_ETOOBIG);
			batches[nbatches++] = (struct batch){
				.base = h.base_offset,
				.last = h.base_offset + h.last_offset_delta,
				.seg = nsegs,
				.pos = pos - h.length,
				.bytes = files[i].bytes + pos - h.length,
				.len = h.length,
			};
		}
		if (pos != files[i].len)
			lc_die("built log is not whole batches", -OX_ECORRUPT);
		nsegs++;
	}
}

static void build(void)
{
	struct ox_log_config cfg;
	struct ox_log *log = NULL;
	struct ox_io *io = lc_io_create(0);

	config(&cfg);
	int rc = ox_log_open(&log, io, dir, &cfg);
	if (rc < 0)
		lc_die("open", rc);
	for (int i = 0; i < BATCHES; i++)
		append_one(log, io, 1 + (uint32_t)(lc_rng() % 12));
	rc = ox_log_close(log);
	if (rc < 0)
		lc_die("close", rc);
	ox_io_destroy(io);
	snapshot();
	index_batches();
	if (nsegs < 4 || nbatches != BATCHES)
		lc_die("build: too few segments", -EINVAL);
}

static void write_file(const char *name, const uint8_t *bytes, size_t len)
{
	char path[400];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || (len && write(fd, bytes, len) != (ssize_t)len))
		lc_die("restore", -errno);
	close(fd);
}

static void remove_file(void *arg, const char *name, const char *path)
{
	(void)arg;
	if (name[0] != '.')
		unlink(path);
}

static void restore(void)
{
	each_file(remove_file);
	for (unsigned i = 0; i < nfiles; i++)
		write_file(files[i].name, files[i].bytes, files[i].len);
}

// Where the damage starts, in segment order; UINT64_MAX when only an index
// file was touched.
struct damage {
	unsigned seg;
	uint64_t pos;
	const char *what;
	bool rescanned; // open must scan that segment: it cuts all damage
};

static void edit_segment(unsigned seg, struct damage *dmg)
{
	struct file *f = &files[seg_file[seg]];
	uint8_t *copy = malloc(f->len + 4096);
	size_t len = f->len;
	uint64_t at = f->len ? lc_rng() % f->len : 0;

	if (!copy)
		lc_die("malloc", -ENOMEM);
	memcpy(copy, f->bytes, f->len);
	switch (lc_rng() % 4) {
	case 0: // a few flipped bytes from `at` on
		for (int k = 0, flips = 1 + (int)(lc_rng() % 4); k < flips; k++) {
			uint64_t p = at + (uint64_t)k * (lc_rng() % 64);
			if (p < len)
				copy[p] ^= (uint8_t)(1 + lc_rng() % 255);
		}
		dmg->what = "flipped bytes";
		break;
	case 1: // cut short
		len = at;
		dmg->what = "cut short";
		break;
	case 2: { // a garbage or zero-filled tail
		size_t extra = 1 + lc_rng() % 4000;
		bool zero = lc_rng() % 2;
		for (size_t k = 0; k < extra; k++)
			copy[len + k] = zero ? 0 : (uint8_t)lc_rng();
		at = len;
		len += extra;
		dmg->what = zero ? "zero tail" : "garbage tail";
		break;
	}
	default: { // a zeroed range
		size_t n = 1 + lc_rng() % 512;
		if (at + n > len)
			n = len - at;
		memset(copy + at, 0, n);
		dmg->what = "zeroed range";
		break;
	}
	}
	if (getenv("OX_DAMAGE_DEBUG"))
		fprintf(stderr, "damage seg %u (%s) at %" PRIu64 " len %zu -> %zu\n",
			seg, f->name, at, f->len, len);
	write_file(f->name, copy, len);
	free(copy);
	dmg->seg = seg;
	dmg->pos = at;
	// The last segment is always scanned; another one whose size changed
	// no longer matches its index (I9).
	dmg->rescanned = seg == nsegs - 1 || len != f->len;
}

static void edit_index(struct damage *dmg)
{
	unsigned idx[FILES_MAX], n = 0;
	for (unsigned i = 0; i < nfiles; i++)
		if (!files[i].is_log)
			idx[n++] = i;
	if (n == 0)
		lc_die("no index files", -ENOENT);
	struct file *f = &files[idx[lc_rng() % n]];
	uint8_t *copy = malloc(f->len + 1);
	if (!copy)
		lc_die("malloc", -ENOMEM);
	memcpy(copy, f->bytes, f->len);
	size_t len = f->len;
	dmg->seg = UINT32_MAX;
	dmg->pos = UINT64_MAX;
	switch (lc_rng() % 3) {
	case 0:
		copy[lc_rng() % len] ^= (uint8_t)(1 + lc_rng() % 255);
		dmg->what = "index byte flipped";
		break;
	case 1:
		len = lc_rng() % len;
		dmg->what = "index cut short";
		break;
	default: {
		char path[400];
		snprintf(path, sizeof(path), "%s/%s", dir, f->name);
		unlink(path);
		free(copy);
		dmg->what = "index removed";
		return;
	}
	}
	write_file(f->name, copy, len);
	free(copy);
}

static bool before(const struct batch *b, const struct damage *d)
{
	return b->seg < d->seg || (b->seg == d->seg && b->pos + b->len <= d->pos);
}

static void check_offsets(struct ox_log *log, const struct damage *d,
			  uint8_t *buf, int round)
{
	int64_t end = ox_log_end_offset(log);

	CHECK(ox_log_start_offset(log) == 0, "round %d: start moved", round);
	for (unsigned i = 0; i < nbatches; i++) {
		const struct batch *b = &batches[i];
		size_t n = 0;
		int rc = ox_log_read(log, b->base, 1, INT64_MAX, buf, READ_CAP, &n);
		if (rc == 0 && n > 0 && getenv("OX_DAMAGE_DEBUG") &&
		    (n != b->len || memcmp(buf, b->bytes, n) != 0)) {
			struct ox_batch_header h;
			ox_batch_header_decode(buf, n, &h);
			fprintf(stderr, "want %" PRId64 " len %u got base %" PRId64
				" last %" PRId64 " len %u n %zu verify %d\n",
				b->base, b->len, h.base_offset,
				h.base_offset + h.last_offset_delta, h.length, n,
				ox_batch_verify(buf, n, NULL));
		}
		if (rc == 0 && n > 0) {
			CHECK(n == b->len && memcmp(buf, b->bytes, n) == 0,
			      "round %d (%s): other bytes served at %" PRId64,
			      round, d->what, b->base);
			continue;
		}
		CHECK(!before(b, d), "round %d (%s): batch %" PRId64
		      " before the damage is lost (%s)", round, d->what,
		      b->base, ox_strerror(rc));
		// A scanned segment keeps only verified batches (I6), so only
		// damage under a valid index can still be met by a read (I4).
		CHECK(b->base < end ? rc == -OX_ECORRUPT && !d->rescanned
				    : rc == -OX_EOFFSET || (rc == 0 && n == 0),
		      "round %d (%s): read at %" PRId64 ": %s", round, d->what,
		      b->base, ox_strerror(rc));
	}
}

static void check_round(int round, const struct damage *d)
{
	struct ox_log_config cfg;
	struct ox_log *log = NULL;
	struct ox_io *io = lc_io_create(round);
	uint8_t *buf = malloc(READ_CAP);

	if (!buf)
		lc_die("malloc", -ENOMEM);
	config(&cfg);
	int rc = ox_log_open(&log, io, dir, &cfg);
	CHECK(rc == 0, "round %d (%s): open: %s", round, d->what, ox_strerror(rc));
	if (rc == 0) {
		// What recovery cut is gone from the files too.
		CHECK(ox_log_size_bytes(log) == lc_segment_files_bytes(dir, false),
		      "round %d (%s): log holds %" PRIu64 " bytes, files %" PRIu64,
		      round, d->what, ox_log_size_bytes(log),
		      lc_segment_files_bytes(dir, false));
		check_offsets(log, d, buf, round);
		int64_t end = ox_log_end_offset(log);
		append_one(log, io, 3);
		CHECK(ox_log_end_offset(log) == end + 3, "round %d: append", round);
		rc = ox_log_close(log);
		CHECK(rc == 0, "round %d: close: %s", round, ox_strerror(rc));
		rc = ox_log_open(&log, io, dir, &cfg);
		CHECK(rc == 0 && ox_log_end_offset(log) == end + 3,
		      "round %d: reopen after append", round);
		if (rc == 0)
			ox_log_close(log);
	}
	ox_io_destroy(io);
	free(buf);
}

int main(void)
{
	char root[LC_PATH_MAX];
	unsigned counts[2] = { 0, 0 };

	lc_start("log_damage");
	lc_tmpdir(root, "log-damage");
	snprintf(dir, sizeof(dir), "%s/p", root);
	build();
	printf("log_damage: %u batches in %u segments\n", nbatches, nsegs);
	for (int round = 0; round < ROUNDS; round++) {
		struct damage d = { 0 };
		restore();
		if (lc_rng() % 5 == 0) {
			edit_index(&d);
			counts[1]++;
		} else {
			edit_segment((unsigned)(lc_rng() % nsegs), &d);
			counts[0]++;
		}
		check_round(round, &d);
	}
	for (unsigned i = 0; i < nfiles; i++)
		free(files[i].bytes);
	lc_rmtree(root);
	printf("log_damage: %d failures in %d rounds (%u segment, %u index "
	       "damages)\n", lc_failures, ROUNDS, counts[0], counts[1]);
	return lc_failures ? 1 : 0;
}
