// SPDX-License-Identifier: Apache-2.0
//
// Topic names, topic configuration keys, and the topic metadata file:
// round trip, atomic replacement, and every kind of damage being refused.
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker/server/topics.h"
#include "proto/error.h"

static char dir[64];
static char err[512];

static void setup(void)
{
	strcpy(dir, "/tmp/oxbow-topics-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(topics, .init = setup, .fini = teardown);

Test(topics, names)
{
	char long_ok[OX_TOPIC_NAME_MAX + 2];
	memset(long_ok, 'a', sizeof(long_ok));
	cr_assert_eq(ox_topic_name_check("orders", 6), 0);
	cr_assert_eq(ox_topic_name_check("A-z_0.9", 7), 0);
	cr_assert_eq(ox_topic_name_check("...", 3), 0);
	cr_assert_eq(ox_topic_name_check(long_ok, OX_TOPIC_NAME_MAX), 0);
	cr_assert_eq(ox_topic_name_check(long_ok, OX_TOPIC_NAME_MAX + 1), -EINVAL);
	cr_assert_eq(ox_topic_name_check("", 0), -EINVAL);
	cr_assert_eq(ox_topic_name_check(".", 1), -EINVAL);
	cr_assert_eq(ox_topic_name_check("..", 2), -EINVAL);
	cr_assert_eq(ox_topic_name_check("a/b", 3), -EINVAL);
	cr_assert_eq(ox_topic_name_check("a b", 3), -EINVAL);
	cr_assert_eq(ox_topic_name_check("é", strlen("é")), -EINVAL);
	cr_assert(ox_topic_name_reserved("__offsets"));
	cr_assert(!ox_topic_name_reserved("_x"));
}

Test(topics, config_keys)
{
	struct ox_topic_config tc = {0};
	struct ox_config b;
	struct ox_log_config lc;
	char v[OX_TOPIC_VALUE_MAX];

	ox_config_default(&b);
	cr_assert_eq(ox_topic_config_set(&tc, "retention.ms", "1000", err,
					 sizeof(err)), 0);
	cr_assert_eq(ox_topic_config_set(&tc, "cleanup.policy",
					 "compact,delete", err, sizeof(err)), 0);
	cr_assert_eq(ox_topic_config_set(&tc, "max.message.bytes", "4096", err,
					 sizeof(err)), 0);
	ox_topic_log_config(&tc, &b, &lc);
	cr_assert_eq(lc.retention_ms, 1000);
	cr_assert_eq(lc.cleanup, OX_LOG_CLEANUP_COMPACT | OX_LOG_CLEANUP_DELETE);
	cr_assert_eq(lc.max_batch_bytes, 4096u);
	cr_assert_eq(lc.segment_bytes, b.segment_bytes); // the default
	ox_topic_config_value(&tc, &b, OX_TK_CLEANUP_POLICY, v, sizeof(v));
	cr_assert_str_eq(v, "compact,delete");
	ox_topic_config_value(&tc, &b, OX_TK_SEGMENT_MS, v, sizeof(v));
	cr_assert_str_eq(v, "604800000");

	cr_assert_eq(ox_topic_config_reset(&tc, "retention.ms", err,
					   sizeof(err)), 0);
	ox_topic_log_config(&tc, &b, &lc);
	cr_assert_eq(lc.retention_ms, b.retention_ms);

	static const char *const bad[][2] = {
		{"retention.ms", "-2"}, {"retention.ms", "soon"},
		{"retention.bytes", "1.5"}, {"cleanup.policy", "never"},
		{"segment.bytes", "0"}, {"segment.bytes", "4294967296"},
		{"segment.ms", "0"}, {"max.message.bytes", "67108865"},
		{"max.message.bytes", "10"}, {"delete.retention.ms", "-1"},
		{"compression", "zstd"}, {"partitions", "3"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		cr_expect_eq(ox_topic_config_set(&tc, bad[i][0], bad[i][1], err,
						 sizeof(err)),
			     -OX_EINVALID_CONFIG, "%s=%s", bad[i][0], bad[i][1]);
		cr_expect(err[0] != '\0');
	}
	cr_assert_eq(ox_topic_config_reset(&tc, "bogus", err, sizeof(err)),
		     -OX_EINVALID_CONFIG);
	// Keys sorted by name, as DESCRIBE_CONFIGS lists them.
	for (unsigned i = 1; i < OX_TK_COUNT; i++)
		cr_assert(strcmp(ox_topic_key_name(i - 1), ox_topic_key_name(i)) < 0);
}

static struct ox_topic_meta topic(uint64_t id, const char *name, uint32_t n)
{
	struct ox_topic_meta m = {0};
	m.id = id;
	strcpy(m.name, name);
	m.partitions = n;
	m.replicas = 1;
	return m;
}

static void write_two(void)
{
	struct ox_topic_meta a = topic(1, "__offsets", 1), b = topic(4, "orders", 3);
	ox_topic_config_set(&a.cfg, "cleanup.policy", "compact", NULL, 0);
	ox_topic_config_set(&b.cfg, "retention.ms", "60000", NULL, 0);
	ox_topic_config_set(&b.cfg, "segment.bytes", "1048576", NULL, 0);
	const struct ox_topic_meta *all[] = {&a, &b};
	cr_assert_eq(ox_topics_file_write(dir, 5, all, 2), 0);
}

Test(topics, file_round_trip)
{
	struct ox_topic_meta *t;
	uint64_t next;
	size_t n;

	cr_assert_eq(ox_topics_file_read(dir, &next, &t, &n, err, sizeof(err)), 0);
	cr_assert_eq(n, 0u);
	cr_assert_eq(next, 1u);
	write_two();
	cr_assert_eq(ox_topics_file_read(dir, &next, &t, &n, err, sizeof(err)),
		     0, "%s", err);
	cr_assert_eq(next, 5u);
	cr_assert_eq(n, 2u);
	cr_assert_str_eq(t[1].name, "orders");
	cr_assert_eq(t[1].id, 4u);
	cr_assert_eq(t[1].partitions, 3u);
	cr_assert_eq(t[1].cfg.retention_ms, 60000);
	cr_assert_eq(t[1].cfg.segment_bytes, 1048576u);
	cr_assert_eq(t[1].cfg.set, (1u << OX_TK_RETENTION_MS) |
					   (1u << OX_TK_SEGMENT_BYTES));
	cr_assert_eq(t[0].cfg.cleanup, OX_LOG_CLEANUP_COMPACT);
	free(t);
	char tmp[128];
	snprintf(tmp, sizeof(tmp), "%s/topics.meta.tmp", dir);
	cr_assert_eq(access(tmp, F_OK), -1, "no temporary file is left");
}

static char *slurp(size_t *len)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/topics.meta", dir);
	FILE *f = fopen(path, "r");
	cr_assert_not_null(f);
	char *buf = calloc(1, 65536);
	*len = fread(buf, 1, 65535, f);
	fclose(f);
	return buf;
}

static void put(const char *buf, size_t len)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/topics.meta", dir);
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fwrite(buf, 1, len, f);
	fclose(f);
}

static void expect_corrupt(void)
{
	struct ox_topic_meta *t;
	uint64_t next;
	size_t n;
	err[0] = '\0';
	cr_assert_eq(ox_topics_file_read(dir, &next, &t, &n, err, sizeof(err)),
		     -OX_ECORRUPT);
	cr_assert(strstr(err, "topics.meta"), "%s", err);
}

Test(topics, file_damage_is_refused)
{
	size_t len;
	write_two();
	char *good = slurp(&len);
	char *buf = malloc(len + 1);

	// Every single-byte flip is caught.
	for (size_t i = 0; i < len; i++) {
		memcpy(buf, good, len);
		buf[i] ^= 0x20;
		put(buf, len);
		expect_corrupt();
	}
	// Every cut is caught.
	for (size_t cut = 1; cut < len; cut++) {
		put(good, cut);
		expect_corrupt();
	}
	put("", 0);
	expect_corrupt();
	free(buf);
	free(good);
}

Test(topics, file_duplicates_are_refused)
{
	struct ox_topic_meta a = topic(1, "x", 1), b = topic(2, "x", 1);
	const struct ox_topic_meta *all[] = {&a, &b};
	cr_assert_eq(ox_topics_file_write(dir, 3, all, 2), 0);
	expect_corrupt();
	b = topic(1, "y", 1);
	cr_assert_eq(ox_topics_file_write(dir, 3, all, 2), 0);
	expect_corrupt();
	// An id at or above next-id would be handed out again.
	b = topic(3, "y", 1);
	cr_assert_eq(ox_topics_file_write(dir, 3, all, 2), 0);
	expect_corrupt();
}
