// SPDX-License-Identifier: Apache-2.0
//
// Shared parts of oxbow-bench's broker modes (see bench_client.h): flag
// parsing, the liboxbow configuration, topic set-up, the payload pool and
// rate pacing.
#include "perf/bench_client.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "perf/bench.h"
#include "proto/assert.h"

static void client_usage(FILE *f, const char *mode)
{
	fprintf(f,
		"usage: oxbow-bench %s --topic T --records N%s [flags]\n"
		"  --bootstrap L     brokers (default 127.0.0.1:7400)\n"
		"  --topic T         the topic to use\n"
		"  --records N       records to send or read (k and m suffixes)\n"
		"  --size B          value bytes per record\n"
		"  --acks A          all | leader | none (default all)\n"
		"  --rate R          records per second (default: as fast as possible)\n"
		"  --partitions P    create the topic with P partitions if missing\n"
		"  --replicas R      ... and R replicas (default the broker's)\n"
		"  --linger-ms MS    producer linger.ms (default the library's)\n"
		"  --batch-size B    producer batch.size (default the library's)\n"
		"  --idempotence B   producer enable.idempotence: true | false\n"
		"                    (default the library's)\n"
		"  --timeout-s S     fail after S seconds without progress (default 30)\n",
		mode,
		strcmp(mode, "consume") == 0 ? "" :
		strcmp(mode, "e2e") == 0 ? " --size B --rate R" : " --size B");
}

static int parse_flag(struct ox_bench_client_opts *o, int c)
{
	switch (c) {
	case 'b': o->bootstrap = optarg; return 0;
	case 't': o->topic = optarg; return 0;
	case 'n': return ox_bench_parse_u64(optarg, &o->records);
	case 's': return ox_bench_parse_u64(optarg, &o->size);
	case 'r': return ox_bench_parse_u64(optarg, &o->rate);
	case 'p': return ox_bench_parse_u64(optarg, &o->partitions);
	case 'R': return ox_bench_parse_u64(optarg, &o->replicas);
	case 'T': return ox_bench_parse_u64(optarg, &o->timeout_s);
	case 'l': o->linger_ms = optarg; return 0;
	case 'B': o->batch_size = optarg; return 0;
	case 'I': o->idempotence = optarg; return 0;
	case 'a':
		if (strcmp(optarg, "all") != 0 && strcmp(optarg, "leader") != 0 &&
		    strcmp(optarg, "none") != 0)
			return -EINVAL;
		o->acks = optarg;
		return 0;
	default:
		return -EINVAL;
	}
}

int ox_bench_client_parse(int argc, char **argv, const char *mode,
			  const char *needs, struct ox_bench_client_opts *o,
			  int *done)
{
	static const struct option longopts[] = {
		{"bootstrap", required_argument, NULL, 'b'},
		{"topic", required_argument, NULL, 't'},
		{"records", required_argument, NULL, 'n'},
		{"size", required_argument, NULL, 's'},
		{"acks", required_argument, NULL, 'a'},
		{"rate", required_argument, NULL, 'r'},
		{"partitions", required_argument, NULL, 'p'},
		{"replicas", required_argument, NULL, 'R'},
		{"linger-ms", required_argument, NULL, 'l'},
		{"batch-size", required_argument, NULL, 'B'},
		{"idempotence", required_argument, NULL, 'I'},
		{"timeout-s", required_argument, NULL, 'T'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	*o = (struct ox_bench_client_opts){ .mode = mode,
		.bootstrap = "127.0.0.1:7400", .timeout_s = 30 };
	*done = 0;
	int c, rc = 0;
	optind = 1;
	while (rc == 0 &&
	       (c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (c == 'h') {
			client_usage(stdout, mode);
			*done = 1;
			return 0;
		}
		rc = parse_flag(o, c);
	}
	if (rc == 0 && (o->topic == NULL || o->records == 0 || optind != argc))
		rc = -EINVAL;
	if (rc == 0 && strchr(needs, 's') != NULL &&
	    (o->size == 0 || o->size > OX_BENCH_SIZE_MAX))
		rc = -EINVAL;
	if (rc == 0 && strchr(needs, 'r') != NULL && o->rate == 0)
		rc = -EINVAL;
	if (rc == 0 && (o->timeout_s == 0 || o->partitions > INT32_MAX ||
			o->replicas > INT32_MAX))
		rc = -EINVAL;
	if (rc != 0) {
		client_usage(stderr, mode);
		return OX_BENCH_EXIT_USAGE;
	}
	return -1;
}

void ox_bench_client_error(const struct ox_bench_client_opts *o,
			   const char *what, int err, const char *detail)
{
	fprintf(stderr, "oxbow-bench %s: %s: %s%s%s%s\n", o->mode, what,
		ox_strerror(err), detail != NULL && detail[0] ? " (" : "",
		detail != NULL ? detail : "",
		detail != NULL && detail[0] ? ")" : "");
}

struct ox_conf *ox_bench_client_conf(const struct ox_bench_client_opts *o)
{
	char errstr[256];
	struct ox_conf *conf = ox_conf_create();
	if (conf == NULL) {
		fprintf(stderr, "oxbow-bench %s: out of memory\n", o->mode);
		return NULL;
	}
	const char *keys[] = { "bootstrap.servers", "client.id", "acks",
			       "linger.ms", "batch.size",
			       "enable.idempotence" };
	const char *values[] = { o->bootstrap, "oxbow-bench", o->acks,
				 o->linger_ms, o->batch_size,
				 o->idempotence };
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (values[i] == NULL)
			continue;
		if (ox_conf_set(conf, keys[i], values[i], errstr,
				sizeof(errstr)) != 0) {
			fprintf(stderr, "oxbow-bench %s: %s=%s: %s\n", o->mode,
				keys[i], values[i], errstr);
			ox_conf_destroy(conf);
			return NULL;
		}
	}
	return conf;
}

int ox_bench_client_topic(const struct ox_bench_client_opts *o)
{
	char errstr[256];
	struct ox_admin *admin = NULL;
	struct ox_topic_info *info = NULL;
	struct ox_conf *conf = ox_bench_client_conf(o);
	if (conf == NULL)
		return -EINVAL;
	int rc = ox_admin_create(&admin, conf, errstr, sizeof(errstr));
	ox_conf_destroy(conf);
	if (rc != 0) {
		ox_bench_client_error(o, "admin client", rc, errstr);
		return rc;
	}
	if (o->partitions > 0) {
		rc = ox_admin_topic_create(admin, o->topic,
					   (int32_t)o->partitions,
					   (int32_t)o->replicas, NULL, 0);
		if (rc != 0 && rc != -OX_ETOPIC_EXISTS) {
			ox_bench_client_error(o, "creating the topic", rc,
					      ox_admin_last_error(admin));
			goto done;
		}
	}
	rc = ox_admin_topic_describe(admin, o->topic, &info);
	if (rc != 0) {
		ox_bench_client_error(o, o->topic, rc,
				      ox_admin_last_error(admin));
		goto done;
	}
	rc = (int)info->partition_count;
	ox_topic_infos_free(info, 1);
done:
	ox_admin_destroy(admin);
	return rc;
}

uint8_t *ox_bench_client_pool(uint64_t size)
{
	uint8_t *pool = malloc(size + OX_BENCH_POOL_EXTRA);
	if (pool == NULL)
		return NULL;
	for (uint64_t i = 0; i < size + OX_BENCH_POOL_EXTRA; i++)
		pool[i] = (uint8_t)(random() >> 7);
	return pool;
}

void ox_bench_client_pace(uint64_t start_ns, uint64_t i, uint64_t rate)
{
	if (rate == 0)
		return;
	uint64_t due = start_ns + (uint64_t)((double)i * 1e9 / (double)rate);
	uint64_t now = ox_bench_now_ns();
	if (due <= now)
		return;
	struct timespec ts = {
		.tv_sec = (time_t)(due / 1000000000u),
		.tv_nsec = (long)(due % 1000000000u),
	};
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) ==
	       EINTR)
		;
}
