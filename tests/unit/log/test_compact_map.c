// SPDX-License-Identifier: Apache-2.0
//
// Compaction when the live keys outgrow the key map (built against a log
// whose map holds 8 Ki slots, about 5,700 keys): a pass cuts its job where
// the map filled, and the next pass builds its map from the clean point
// of the cleaner checkpoint on, so the log still shrinks instead of
// stalling.
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/log/log_int.h"
#include "proto/batch.h"
#include "tests/unit/log/helpers.h"

#define COLD_KEYS 7000   // more than the map holds
#define HOT_WRITES 20000 // one key written over and over after them
#define PER_BATCH 50

static void done(void *arg, int res, int64_t base, int64_t last)
{
	struct tl_cb *cb = arg;
	(void)base;
	(void)last;
	cb->calls++;
	cb->res = res;
}

// Appends records for keys key0, key0 + step, ... (step 0: one key).
static void put_keys(int key0, int step, int n)
{
	uint8_t buf[8192];
	struct ox_batch_params p = {.producer_id = OX_PRODUCER_NONE,
				    .base_sequence = OX_SEQUENCE_NONE};
	for (int done_n = 0; done_n < n; done_n += PER_BATCH) {
		struct ox_batch_builder b;
		cr_assert_eq(ox_batch_builder_init(&b, buf, sizeof(buf), &p), 0);
		for (int i = 0; i < PER_BATCH && done_n + i < n; i++) {
			char key[16];
			snprintf(key, sizeof(key), "key%d", key0 + step * (done_n + i));
			struct ox_record r = {.key = (const uint8_t *)key,
					      .key_len = (int32_t)strlen(key),
					      .value = (const uint8_t *)"value",
					      .value_len = 5, .timestamp = T.now_ms};
			cr_assert_eq(ox_batch_builder_add(&b, &r), 0);
		}
		size_t len;
		struct tl_cb cb = {0};
		cr_assert_eq(ox_batch_builder_finish(&b, &len), 0);
		cr_assert_eq(ox_log_append(T.log, buf, len, 1, 0, done, &cb, NULL), 0);
		tl_wait(&cb);
		cr_assert_eq(cb.res, 0);
	}
}

LOG_TEST(compact_map, keys_beyond_the_map_still_compact)
{
	T.cfg.cleanup = OX_LOG_CLEANUP_COMPACT;
	T.cfg.segment_bytes = 16 * 1024;
	tl_open();
	put_keys(0, 1, COLD_KEYS);
	put_keys(-1, 0, HOT_WRITES);
	uint64_t before = ox_log_size_bytes(T.log);
	for (int pass = 0; pass < 4; pass++) {
		for (int i = 0; T.log->index_jobs > 0 && i < 1000; i++)
			cr_assert_geq(ox_io_run(T.io, 1), 0);
		cr_assert_eq(ox_log_compact(T.log, ox_log_end_offset(T.log)), 0);
	}
	uint64_t after = ox_log_size_bytes(T.log);
	cr_assert_lt(after * 2, before, "log %llu -> %llu bytes: compaction stalled",
		     (unsigned long long)before, (unsigned long long)after);
	// Every cold key is still there: count the records.
	size_t len, pos = 0;
	uint8_t *all = tl_read_all(&len);
	struct ox_batch_header h;
	long records = 0;
	while (ox_batch_next(all, len, &pos, &h) == 1)
		records += h.record_count;
	cr_assert_geq(records, COLD_KEYS + 1);
	free(all);
}
