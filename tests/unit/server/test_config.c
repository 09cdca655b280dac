// SPDX-License-Identifier: Apache-2.0
//
// oxbowd's configuration (broker/server/config.h): defaults, every key's
// checks, the file parser's error lines (FILE:LINE and the key), flags
// over the file, and the cross-key checks.
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/server/config.h"

static struct ox_config cfg;
static char err[OX_CONFIG_ERR_MAX];

static void setup(void)
{
	ox_config_default(&cfg);
	err[0] = '\0';
}

TestSuite(config, .init = setup);

// Writes text to a fresh temporary file; returns its path (static).
static const char *write_tmp(const char *text)
{
	static char path[64];
	strcpy(path, "/tmp/oxbow-config-XXXXXX");
	int fd = mkstemp(path);
	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

Test(config, defaults)
{
	cr_assert_eq(cfg.node_id, 1);
	cr_assert_str_eq(cfg.listen, "127.0.0.1:7400");
	cr_assert_str_empty(cfg.data_dir);
	cr_assert_eq(cfg.segment_bytes, 1ull << 30);
	cr_assert_eq(cfg.segment_ms, 7ll * 86400000);
	cr_assert_eq(cfg.index_interval_bytes, 4096u);
	cr_assert_eq(cfg.fsync, OX_LOG_FSYNC_ALWAYS);
	cr_assert_eq(cfg.fsync_interval_ms, 1000);
	cr_assert_eq(cfg.retention_ms, 7ll * 86400000);
	cr_assert_eq(cfg.retention_bytes, -1);
	cr_assert_eq(cfg.cleanup, OX_LOG_CLEANUP_DELETE);
	cr_assert_eq(cfg.delete_retention_ms, 86400000);
	cr_assert_eq(cfg.retention_check_interval_ms, 300000);
	cr_assert_eq(cfg.num_partitions, 1u);
	cr_assert_eq(cfg.default_replication_factor, 1u);
	cr_assert_eq(cfg.message_max_bytes, 1u << 20);
	cr_assert_eq(cfg.io_backend, OX_IO_BACKEND_URING);
	cr_assert_eq(cfg.meta_segment_bytes, 1u << 20);
	cr_assert_eq(cfg.meta_snapshot_entries, 4096u);
}

struct kv {
	const char *key;
	const char *value;
};

Test(config, good_values)
{
	static const struct kv good[] = {
		{"node.id", "0"}, {"node.id", "2147483647"},
		{"data.dir", "/tmp/x"}, {"listen", "0.0.0.0:0"},
		{"listen", "[::1]:9000"}, {"advertised.listen", "host.example:1"},
		{"peer.listen", "127.0.0.1:7401"}, {"peers", "1@127.0.0.1:7401"},
		{"log.segment.bytes", "1"}, {"log.segment.bytes", "2147483648"},
		{"log.segment.ms", "1"}, {"log.index.interval.bytes", "1"},
		{"log.fsync", "interval"}, {"log.fsync.interval.ms", "86400000"},
		{"log.retention.ms", "-1"}, {"log.retention.bytes", "0"},
		{"log.cleanup.policy", "compact,delete"},
		{"log.cleanup.policy", "compact"},
		{"log.delete.retention.ms", "0"},
		{"log.retention.check.interval.ms", "1"},
		{"num.partitions", "10000"}, {"default.replication.factor", "1"},
		{"message.max.bytes", "67108864"}, {"io.backend", "sync"},
		{"meta.log.segment.bytes", "4096"},
		{"meta.snapshot.entries", "16"},
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		cr_expect_eq(ox_config_set(&cfg, good[i].key, good[i].value, err,
					   sizeof(err)), 0, "%s = %s: %s",
			     good[i].key, good[i].value, err);
	cr_assert_eq(cfg.io_backend, OX_IO_BACKEND_SYNC);
	cr_assert_eq(cfg.message_max_bytes, 64u << 20);
	cr_assert_eq(cfg.npeers, 1u);
	cr_assert_eq(cfg.meta_segment_bytes, 4096u);
	cr_assert_eq(cfg.meta_snapshot_entries, 16u);
}

Test(config, bad_values)
{
	static const struct kv bad[] = {
		{"node.id", "-1"}, {"node.id", "x"}, {"node.id", "1x"},
		{"node.id", ""}, {"node.id", "2147483648"},
		{"data.dir", ""}, {"listen", "nohost"}, {"listen", ":80"},
		{"listen", "h:65536"}, {"listen", "::1:80"},
		{"advertised.listen", "h:0"}, {"peer.listen", "h"},
		{"peers", "1@"}, {"peers", "x@h:1"}, {"peers", "1@h:1,"},
		{"peers", "1@h:1,1@h:2"}, {"peers", "h:1"},
		{"log.segment.bytes", "0"}, {"log.segment.bytes", "2147483649"},
		{"log.segment.ms", "0"}, {"log.index.interval.bytes", "0"},
		{"log.fsync", "sometimes"}, {"log.fsync.interval.ms", "0"},
		{"log.retention.ms", "-2"}, {"log.retention.bytes", "-5"},
		{"log.cleanup.policy", "keep"}, {"log.delete.retention.ms", "-1"},
		{"log.retention.check.interval.ms", "0"},
		{"num.partitions", "0"}, {"num.partitions", "10001"},
		{"default.replication.factor", "0"},
		{"default.replication.factor", "6"},
		{"message.max.bytes", "67108865"}, {"message.max.bytes", "72"},
		{"io.backend", "epoll"},
		{"meta.log.segment.bytes", "0"}, {"meta.snapshot.entries", "0"},
		{"meta.snapshot.entries", "x"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		cr_expect_eq(ox_config_set(&cfg, bad[i].key, bad[i].value, err,
					   sizeof(err)), -EINVAL, "%s = '%s'",
			     bad[i].key, bad[i].value);
		cr_expect(strstr(err, bad[i].key) != NULL,
			  "the error names the key: %s", err);
	}
}

Test(config, unknown_and_unbuilt_keys)
{
	cr_assert_eq(ox_config_set(&cfg, "log.segmnet.bytes", "1", err,
				   sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "unknown key") && strstr(err, "log.segmnet.bytes"));
	const char *unbuilt[] = {"metrics.listen", "tls.cert", "auth.users"};
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(ox_config_set(&cfg, unbuilt[i], "x", err,
					   sizeof(err)), -EINVAL);
		cr_assert(strstr(err, "not built yet"), "%s", err);
	}
}

Test(config, file_parses_comments_and_blanks)
{
	const char *path = write_tmp("# a node\n\n  node.id = 3  # trailing\n"
				     "data.dir=/tmp/d\r\nlog.fsync = interval\n");
	cr_assert_eq(ox_config_load(&cfg, path, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(cfg.node_id, 3);
	cr_assert_str_eq(cfg.data_dir, "/tmp/d");
	cr_assert_eq(cfg.fsync, OX_LOG_FSYNC_INTERVAL);
	unlink(path);
}

Test(config, file_errors_name_file_line_and_key)
{
	const char *path = write_tmp("node.id = 2\n\nbogus.key = 1\n");
	char want[128];
	cr_assert_eq(ox_config_load(&cfg, path, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s:3: key bogus.key", path);
	cr_assert(strstr(err, want), "%s", err);
	unlink(path);

	path = write_tmp("node.id = 2\nnum.partitions = lots\n");
	cr_assert_eq(ox_config_load(&cfg, path, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s:2: key num.partitions", path);
	cr_assert(strstr(err, want), "%s", err);
	unlink(path);

	path = write_tmp("just words\n");
	cr_assert_eq(ox_config_load(&cfg, path, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s:1:", path);
	cr_assert(strstr(err, want), "%s", err);
	unlink(path);

	path = write_tmp(" = 4\n");
	cr_assert_eq(ox_config_load(&cfg, path, err, sizeof(err)), -EINVAL);
	unlink(path);

	cr_assert_eq(ox_config_load(&cfg, "/nonexistent/oxbow.conf", err,
				    sizeof(err)), -ENOENT);
	cr_assert(strstr(err, "/nonexistent/oxbow.conf"), "%s", err);
}

Test(config, file_line_too_long)
{
	char *text = malloc(OX_CONFIG_LINE_MAX + 64);
	memset(text, 'a', OX_CONFIG_LINE_MAX + 10);
	strcpy(text + OX_CONFIG_LINE_MAX + 10, " = 1\n");
	const char *path = write_tmp(text);
	cr_assert_eq(ox_config_load(&cfg, path, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "longer than"), "%s", err);
	unlink(path);
	free(text);
}

Test(config, flags_override_file_wherever_it_is)
{
	const char *path = write_tmp("node.id = 2\ndata.dir = /tmp/a\n");
	char p[64];
	strcpy(p, path);
	char *argv[] = {"oxbowd", "--node.id", "5", "--config", p,
			"--listen=127.0.0.1:0", NULL};
	bool help;
	cr_assert_eq(ox_config_parse_args(&cfg, 6, argv, &help, err,
					  sizeof(err)), 0, "%s", err);
	cr_assert(!help);
	cr_assert_eq(cfg.node_id, 5);
	cr_assert_str_eq(cfg.data_dir, "/tmp/a");
	cr_assert_str_eq(cfg.listen, "127.0.0.1:0");
	unlink(p);
}

Test(config, flag_errors)
{
	bool help;
	char *a1[] = {"oxbowd", "--node.id", NULL};
	cr_assert_eq(ox_config_parse_args(&cfg, 2, a1, &help, err, sizeof(err)),
		     -EINVAL);
	cr_assert(strstr(err, "--node.id"), "%s", err);
	char *a2[] = {"oxbowd", "--nope", "1", NULL};
	cr_assert_eq(ox_config_parse_args(&cfg, 3, a2, &help, err, sizeof(err)),
		     -EINVAL);
	cr_assert(strstr(err, "--nope") && strstr(err, "unknown key"), "%s",
		  err);
	char *a3[] = {"oxbowd", "stray", NULL};
	cr_assert_eq(ox_config_parse_args(&cfg, 2, a3, &help, err, sizeof(err)),
		     -EINVAL);
	char *a4[] = {"oxbowd", "--config", "/nonexistent/x.conf", NULL};
	cr_assert_eq(ox_config_parse_args(&cfg, 3, a4, &help, err, sizeof(err)),
		     -EINVAL);
	cr_assert(strstr(err, "/nonexistent/x.conf"), "%s", err);
	char *a5[] = {"oxbowd", "--config", "a", "--config", "b", NULL};
	cr_assert_eq(ox_config_parse_args(&cfg, 5, a5, &help, err, sizeof(err)),
		     -EINVAL);
	char *a6[] = {"oxbowd", "--node.id", "1", "--help", NULL};
	cr_assert_eq(ox_config_parse_args(&cfg, 4, a6, &help, err, sizeof(err)),
		     0);
	cr_assert(help);
}

Test(config, check_cross_keys)
{
	cr_assert_eq(ox_config_check(&cfg, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "data.dir"), "%s", err);

	ox_config_set(&cfg, "data.dir", "/tmp/d", err, sizeof(err));
	cr_assert_eq(ox_config_check(&cfg, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(cfg.advertised_listen, cfg.listen);

	ox_config_set(&cfg, "peers", "1@127.0.0.1:7401", err, sizeof(err));
	cr_assert_eq(ox_config_check(&cfg, err, sizeof(err)), 0, "%s", err);
	ox_config_set(&cfg, "peers", "1@127.0.0.1:7401,2@127.0.0.1:7411", err,
		      sizeof(err));
	cr_assert_eq(ox_config_check(&cfg, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "peer.listen"), "%s", err);
	ox_config_set(&cfg, "peer.listen", "127.0.0.1:7401", err, sizeof(err));
	cr_assert_eq(ox_config_check(&cfg, err, sizeof(err)), 0, "%s", err);
	ox_config_set(&cfg, "default.replication.factor", "3", err, sizeof(err));
	cr_assert_eq(ox_config_check(&cfg, err, sizeof(err)), -EINVAL,
		     "3 replicas on 2 nodes");
	ox_config_set(&cfg, "default.replication.factor", "1", err, sizeof(err));
	ox_config_set(&cfg, "peers", "2@127.0.0.1:7411,3@127.0.0.1:7421", err,
		      sizeof(err));
	cr_assert_eq(ox_config_check(&cfg, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "does not name this node"), "%s", err);
	ox_config_set(&cfg, "peers", "1@127.0.0.1:7401,2@a:1,3@a:2,4@a:3,5@a:4,"
		      "6@a:5,7@a:6,8@a:7", err, sizeof(err));
	cr_assert_eq(ox_config_check(&cfg, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "at most 7"), "%s", err);
	cr_assert_eq(ox_config_set(&cfg, "cluster.id", "", err, sizeof(err)),
		     -EINVAL);

	ox_config_set(&cfg, "peers", "", err, sizeof(err));
	ox_config_set(&cfg, "default.replication.factor", "3", err, sizeof(err));
	cr_assert_eq(ox_config_check(&cfg, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "default.replication.factor"), "%s", err);
}

Test(config, help_lists_every_key_with_default)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	ox_config_help(f);
	fclose(f);
	const char *keys[] = {"node.id", "data.dir", "listen",
			      "advertised.listen", "peer.listen", "peers",
			      "log.segment.bytes", "log.segment.ms",
			      "log.index.interval.bytes", "log.fsync",
			      "log.fsync.interval.ms", "log.retention.ms",
			      "log.retention.bytes", "log.cleanup.policy",
			      "log.delete.retention.ms",
			      "log.retention.check.interval.ms",
			      "num.partitions", "default.replication.factor",
			      "message.max.bytes", "io.backend",
			      "meta.log.segment.bytes", "meta.snapshot.entries",
			      "1073741824",
			      "127.0.0.1:7400", "300000"};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		cr_expect(strstr(buf, keys[i]), "help lacks %s", keys[i]);
	free(buf);
}

Test(config, addr_parse)
{
	char host[64];
	uint16_t port;
	cr_assert_eq(ox_config_addr_parse("[::1]:7", host, sizeof(host), &port), 0);
	cr_assert_str_eq(host, "::1");
	cr_assert_eq(port, 7);
	cr_assert_eq(ox_config_addr_parse("a.b:65535", host, sizeof(host),
					  &port), 0);
	cr_assert_eq(ox_config_addr_parse("[::1:7", host, sizeof(host), &port),
		     -EINVAL);
	cr_assert_eq(ox_config_addr_parse("a b:1", host, sizeof(host), &port),
		     -EINVAL);
	cr_assert_eq(ox_config_addr_parse("h:-1", host, sizeof(host), &port),
		     -EINVAL);
}
