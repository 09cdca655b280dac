// SPDX-License-Identifier: Apache-2.0
//
// `oxbow-bench failover`: how long writes stop when a partition's leader
// dies. Keyless records go to partition 0 of a topic at a steady --rate
// with acks=all and linger.ms=0. After --warmup-ms the mode looks up the
// partition's leader in the metadata, reads that node's pid from
// --pid-file-pattern (the node id in place of %d, as deploy/local-cluster
// lays out its nodes) and sends it SIGKILL. The figure is the time from
// the kill to the first acknowledgement of a record sent after the kill:
// only a new leader can acknowledge such a record, so it spans the
// election and the producer finding the new leader. It also reports the
// new leader and the deliveries that failed.
//
// It kills nothing but the pid its pid file names, and only when that
// process's argv[0] names oxbowd. It does not restart the node: whoever
// runs it (perf/cluster-bench) does. Not a test: it judges nothing.
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "perf/bench.h"
#include "perf/bench_client.h"
#include "proto/assert.h"

_Static_assert(UINTPTR_MAX >= UINT64_MAX, "send times ride in a pointer");

#define FAILOVER_RATE_DEFAULT 2000u
#define FAILOVER_SIZE_DEFAULT 100u
#define FAILOVER_WARMUP_MS_DEFAULT 1000u
// A pid file holds one decimal pid and a newline; anything longer is not
// one.
#define FAILOVER_PID_FILE_MAX 32
// /proc/PID/cmdline is read this far: argv[0] is all that is checked.
#define FAILOVER_CMDLINE_MAX 4096
// How often the metadata is asked for the new leader once writes resume.
#define FAILOVER_LEADER_POLL_MS 50

struct failover_opts {
	struct ox_bench_client_opts c;
	const char *pid_pattern;
	const char *retry_backoff_ms; // NULL: the library's default
	uint64_t warmup_ms;
};

struct failover_run {
	// CLOCK_MONOTONIC ns just before kill(); 0 until then. Written by
	// the main thread before it sends any record after the kill.
	atomic_uint_fast64_t kill_ns;
	// When the first record sent after kill_ns was acknowledged; 0 until
	// then. Written once by the producer's callback thread.
	atomic_uint_fast64_t first_ack_ns;
	atomic_uint_fast64_t acked;
	atomic_uint_fast64_t acked_before_kill;
	atomic_uint_fast64_t failed;
	atomic_int first_err;
	uint64_t sent;         // main thread only
	uint64_t send_errors;  // main thread only
	int first_send_err;    // main thread only
	int32_t killed_leader;
	long killed_pid;
};

// One run per process: the callback finds it here.
static struct failover_run *failover_current;

static void failover_delivered(void *opaque, int err, const char *topic,
			       int32_t partition, int64_t offset)
{
	struct failover_run *run = failover_current;
	uint64_t now = ox_bench_now_ns();
	uint64_t sent = (uintptr_t)opaque;
	uint64_t kill_ns = atomic_load(&run->kill_ns);
	if (err != 0) {
		int expected = 0;
		atomic_compare_exchange_strong(&run->first_err, &expected, err);
		atomic_fetch_add(&run->failed, 1);
		return;
	}
	atomic_fetch_add(&run->acked, 1);
	if (kill_ns == 0) {
		atomic_fetch_add(&run->acked_before_kill, 1);
	} else if (sent > kill_ns) {
		uint_fast64_t expected = 0;
		atomic_compare_exchange_strong(&run->first_ack_ns, &expected,
					       now);
	}
}

static void failover_usage(FILE *f)
{
	fprintf(f,
		"usage: oxbow-bench failover --topic T --pid-file-pattern P [flags]\n"
		"  --bootstrap L          brokers (default 127.0.0.1:7400)\n"
		"  --topic T              writes go to its partition 0\n"
		"  --pid-file-pattern P   each node's pid file, %%d for its node id\n"
		"                         (e.g. /tmp/lc/n%%d/oxbowd.pid)\n"
		"  --rate R               records per second (default %u)\n"
		"  --size B               value bytes per record (default %u)\n"
		"  --warmup-ms MS         writes before the kill (default %u)\n"
		"  --partitions P         create the topic with P partitions if missing\n"
		"  --replicas R           ... and R replicas (default the broker's)\n"
		"  --retry-backoff-ms MS  producer retry.backoff.ms (default the\n"
		"                         library's; also its metadata refresh gap)\n"
		"  --timeout-s S          give up S seconds after the kill (default 30)\n",
		FAILOVER_RATE_DEFAULT, FAILOVER_SIZE_DEFAULT,
		FAILOVER_WARMUP_MS_DEFAULT);
}

// A pattern holds exactly one %d and no other '%': it never reaches printf.
static int check_pattern(const char *p)
{
	const char *d = strstr(p, "%d");
	if (d == NULL || strchr(p, '%') != d || strchr(d + 2, '%') != NULL)
		return -EINVAL;
	return 0;
}

static int failover_parse(int argc, char **argv, struct failover_opts *o,
			  int *done)
{
	static const struct option longopts[] = {
		{"bootstrap", required_argument, NULL, 'b'},
		{"topic", required_argument, NULL, 't'},
		{"pid-file-pattern", required_argument, NULL, 'P'},
		{"rate", required_argument, NULL, 'r'},
		{"size", required_argument, NULL, 's'},
		{"warmup-ms", required_argument, NULL, 'w'},
		{"partitions", required_argument, NULL, 'p'},
		{"replicas", required_argument, NULL, 'R'},
		{"timeout-s", required_argument, NULL, 'T'},
		{"retry-backoff-ms", required_argument, NULL, 'B'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	*o = (struct failover_opts){
		.c = { .mode = "failover", .bootstrap = "127.0.0.1:7400",
		       .acks = "all", .linger_ms = "0",
		       .rate = FAILOVER_RATE_DEFAULT,
		       .size = FAILOVER_SIZE_DEFAULT, .timeout_s = 30 },
		.warmup_ms = FAILOVER_WARMUP_MS_DEFAULT,
	};
	*done = 0;
	int c, rc = 0;
	optind = 1;
	while (rc == 0 &&
	       (c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			failover_usage(stdout);
			*done = 1;
			return 0;
		case 'b': o->c.bootstrap = optarg; break;
		case 't': o->c.topic = optarg; break;
		case 'P': o->pid_pattern = optarg; break;
		case 'B': o->retry_backoff_ms = optarg; break;
		case 'r': rc = ox_bench_parse_u64(optarg, &o->c.rate); break;
		case 's': rc = ox_bench_parse_u64(optarg, &o->c.size); break;
		case 'w': rc = ox_bench_parse_u64(optarg, &o->warmup_ms); break;
		case 'p': rc = ox_bench_parse_u64(optarg, &o->c.partitions); break;
		case 'R': rc = ox_bench_parse_u64(optarg, &o->c.replicas); break;
		case 'T': rc = ox_bench_parse_u64(optarg, &o->c.timeout_s); break;
		default: rc = -EINVAL; break;
		}
	}
	if (rc == 0 && (o->c.topic == NULL || o->pid_pattern == NULL ||
			optind != argc || check_pattern(o->pid_pattern) != 0))
		rc = -EINVAL;
	// A day bounds the waits so that they fit the client's int
	// milliseconds.
	if (rc == 0 && (o->c.rate == 0 || o->c.size == 0 ||
			o->c.size > OX_BENCH_SIZE_MAX || o->c.timeout_s == 0 ||
			o->c.timeout_s > 86400 || o->warmup_ms > 86400000u ||
			o->c.partitions > INT32_MAX || o->c.replicas > INT32_MAX))
		rc = -EINVAL;
	if (rc != 0) {
		failover_usage(stderr);
		return OX_BENCH_EXIT_USAGE;
	}
	return -1;
}

// Partition 0's leader as the metadata names it: a node id, -1 when none
// is known, or a negative error after printing it.
static int64_t leader_of(const struct failover_opts *o, struct ox_admin *a)
{
	struct ox_topic_info *info = NULL;
	int rc = ox_admin_topic_describe(a, o->c.topic, &info);
	if (rc != 0) {
		ox_bench_client_error(&o->c, "describing the topic", rc,
				      ox_admin_last_error(a));
		return rc;
	}
	int64_t leader = -1;
	for (size_t i = 0; i < info->partition_count; i++) {
		if (info->partitions[i].partition == 0)
			leader = info->partitions[i].leader;
	}
	ox_topic_infos_free(info, 1);
	return leader < 0 ? -1 : leader;
}

// Reads node `node`'s pid from its pid file and checks that the process
// runs oxbowd. Returns the pid or a negative error after printing why.
static long node_pid(const struct failover_opts *o, int32_t node)
{
	char path[4096], buf[FAILOVER_PID_FILE_MAX + 1];
	const char *d = strstr(o->pid_pattern, "%d");
	OX_ASSERT(d != NULL && node >= 0);
	int len = snprintf(path, sizeof(path), "%.*s%d%s",
			   (int)(d - o->pid_pattern), o->pid_pattern,
			   (int)node, d + 2);
	if (len < 0 || (size_t)len >= sizeof(path)) {
		fprintf(stderr, "oxbow-bench failover: pid file path too long\n");
		return -ENAMETOOLONG;
	}
	FILE *f = fopen(path, "r");
	size_t n = f != NULL ? fread(buf, 1, FAILOVER_PID_FILE_MAX, f) : 0;
	if (f != NULL)
		fclose(f);
	buf[n] = '\0';
	char *end = NULL;
	long pid = n > 0 && buf[0] >= '1' && buf[0] <= '9' ?
		   strtol(buf, &end, 10) : 0;
	if (pid <= 0 || pid > INT32_MAX || (*end != '\0' && *end != '\n')) {
		fprintf(stderr, "oxbow-bench failover: %s names no pid "
			"(node %d, partition 0's leader)\n", path, (int)node);
		return -ENOENT;
	}
	snprintf(path, sizeof(path), "/proc/%ld/cmdline", pid);
	char cmd[FAILOVER_CMDLINE_MAX + 1];
	f = fopen(path, "r");
	n = f != NULL ? fread(cmd, 1, FAILOVER_CMDLINE_MAX, f) : 0;
	if (f != NULL)
		fclose(f);
	cmd[n] = '\0';
	// cmdline is NUL-separated: cmd now ends after argv[0].
	const char *base = strrchr(cmd, '/');
	if (strstr(base != NULL ? base + 1 : cmd, "oxbowd") == NULL) {
		fprintf(stderr, "oxbow-bench failover: pid %ld of node %d is "
			"not an oxbowd (argv[0] '%s'); killing nothing\n",
			pid, (int)node, cmd);
		return -ESRCH;
	}
	return pid;
}

// Finds partition 0's leader now and sends its process SIGKILL.
static int kill_leader(const struct failover_opts *o, struct ox_admin *a,
		       struct failover_run *run)
{
	int64_t leader = leader_of(o, a);
	if (leader < 0) {
		if (leader == -1)
			fprintf(stderr, "oxbow-bench failover: partition 0 of "
				"%s has no leader\n", o->c.topic);
		return leader == -1 ? -OX_ENOTLEADER : (int)leader;
	}
	long pid = node_pid(o, (int32_t)leader);
	if (pid < 0)
		return (int)pid;
	run->killed_leader = (int32_t)leader;
	run->killed_pid = pid;
	uint64_t now = ox_bench_now_ns();
	atomic_store(&run->kill_ns, now);
	if (kill((pid_t)pid, SIGKILL) != 0) {
		int err = errno;
		fprintf(stderr, "oxbow-bench failover: kill %ld: %s\n", pid,
			strerror(err));
		return -err;
	}
	return 0;
}

static int send_one(const struct failover_opts *o, struct ox_producer *p,
		    const uint8_t *pool, struct failover_run *run)
{
	struct ox_message m = {
		.topic = o->c.topic,
		.partition = 0,
		.value = pool + (run->sent * 7919u) % OX_BENCH_POOL_EXTRA,
		.value_len = o->c.size,
		.cb = failover_delivered,
		.opaque = (void *)(uintptr_t)ox_bench_now_ns(),
	};
	int rc = ox_producer_send(p, &m);
	if (rc == 0) {
		run->sent++;
		return 0;
	}
	// While the leader is gone a send may time out waiting for metadata;
	// it is counted and the run goes on. Anything else is fatal.
	if (run->send_errors++ == 0)
		run->first_send_err = rc;
	if (rc == -ETIMEDOUT || rc == -ENOBUFS)
		return 0;
	ox_bench_client_error(&o->c, "send", rc, NULL);
	return rc;
}

// Sends at the rate, kills the leader after the warm-up, and stops at the
// first acknowledgement of a record sent after the kill.
static int produce_through(const struct failover_opts *o,
			   struct ox_producer *p, struct ox_admin *a,
			   const uint8_t *pool, struct failover_run *run)
{
	uint64_t start = ox_bench_now_ns();
	uint64_t warmup_ns = o->warmup_ms * 1000000u;
	uint64_t timeout_ns = o->c.timeout_s * 1000000000u;
	for (uint64_t i = 0;; i++) {
		ox_bench_client_pace(start, i, o->c.rate);
		uint64_t now = ox_bench_now_ns();
		uint64_t kill_ns = atomic_load(&run->kill_ns);
		if (kill_ns == 0 && now - start >= warmup_ns) {
			if (atomic_load(&run->acked_before_kill) == 0) {
				fprintf(stderr, "oxbow-bench failover: no record "
					"was acknowledged in the warm-up\n");
				return -ETIMEDOUT;
			}
			int rc = kill_leader(o, a, run);
			if (rc != 0)
				return rc;
			continue;
		}
		if (kill_ns != 0 && atomic_load(&run->first_ack_ns) != 0)
			return 0;
		if (kill_ns != 0 && now - kill_ns > timeout_ns) {
			fprintf(stderr, "oxbow-bench failover: no record sent "
				"after the kill was acknowledged within %" PRIu64
				" s\n", o->c.timeout_s);
			return -ETIMEDOUT;
		}
		int rc = send_one(o, p, pool, run);
		if (rc != 0)
			return rc;
	}
}

// The leader the metadata names once it is another node than the killed
// one, or -1 when none is named within the timeout.
static int32_t new_leader(const struct failover_opts *o, struct ox_admin *a,
			  int32_t killed)
{
	uint64_t until = ox_bench_now_ns() + o->c.timeout_s * 1000000000u;
	do {
		int64_t leader = leader_of(o, a);
		if (leader >= 0 && leader != killed)
			return (int32_t)leader;
		struct timespec ts = { 0, FAILOVER_LEADER_POLL_MS * 1000000L };
		nanosleep(&ts, NULL);
	} while (ox_bench_now_ns() < until);
	return -1;
}

static void failover_print(const struct failover_opts *o,
			   const struct failover_run *run, int32_t leader,
			   uint64_t start_ns, uint64_t end_ns)
{
	char extra[512];
	uint64_t kill_ns = atomic_load(&run->kill_ns);
	uint64_t ack_ns = atomic_load(&run->first_ack_ns);
	int err = atomic_load(&run->first_err);
	if (err == 0)
		err = run->first_send_err;
	snprintf(extra, sizeof(extra),
		 "\"failover_ms\":%.3f,\"killed_leader\":%d,\"killed_pid\":%ld,"
		 "\"new_leader\":%d,\"rate\":%" PRIu64 ",\"acks\":\"all\","
		 "\"sent\":%" PRIu64 ",\"acked_before_kill\":%" PRIu64
		 ",\"failed\":%" PRIu64 ",\"send_errors\":%" PRIu64
		 ",\"first_error\":\"%s\"",
		 (double)(ack_ns - kill_ns) / 1e6, (int)run->killed_leader,
		 run->killed_pid, (int)leader, o->c.rate, run->sent,
		 (uint64_t)atomic_load(&run->acked_before_kill),
		 (uint64_t)atomic_load(&run->failed), run->send_errors,
		 err != 0 ? ox_strerror_name(err) : "");
	uint64_t acked = atomic_load(&run->acked);
	struct ox_bench_result r = {
		.mode = "failover",
		.records = acked,
		.bytes = acked * o->c.size,
		.seconds = (double)(end_ns - start_ns) / 1e9,
		.latency = NULL,
	};
	ox_bench_print(&r, extra);
}

// The producer gives up on a record timeout_s after its send, so that
// flushing and destroying it stay bounded by --timeout-s.
static struct ox_conf *failover_conf(const struct failover_opts *o)
{
	char errstr[256], ms[32];
	struct ox_conf *conf = ox_bench_client_conf(&o->c);
	if (conf == NULL)
		return NULL;
	snprintf(ms, sizeof(ms), "%" PRIu64, o->c.timeout_s * 1000u);
	const char *keys[] = { "delivery.timeout.ms", "retry.backoff.ms" };
	const char *values[] = { ms, o->retry_backoff_ms };
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (values[i] == NULL)
			continue;
		if (ox_conf_set(conf, keys[i], values[i], errstr,
				sizeof(errstr)) != 0) {
			fprintf(stderr, "oxbow-bench failover: %s=%s: %s\n",
				keys[i], values[i], errstr);
			ox_conf_destroy(conf);
			return NULL;
		}
	}
	return conf;
}

static int failover_with(const struct failover_opts *o, struct ox_conf *conf,
			 struct ox_admin *a, struct failover_run *run)
{
	char errstr[256];
	struct ox_producer *p = NULL;
	uint8_t *pool = ox_bench_client_pool(o->c.size);
	if (pool == NULL)
		return -ENOMEM;
	int rc = ox_producer_create(&p, conf, errstr, sizeof(errstr));
	if (rc != 0) {
		ox_bench_client_error(&o->c, "producer", rc, errstr);
		free(pool);
		return rc;
	}
	uint64_t start = ox_bench_now_ns();
	rc = produce_through(o, p, a, pool, run);
	// Records still in flight get their callbacks (or fail after
	// delivery.timeout.ms) before the counts are read.
	ox_producer_flush(p, (int)(o->c.timeout_s * 1000u));
	ox_producer_destroy(p);
	uint64_t end = ox_bench_now_ns();
	free(pool);
	if (rc != 0)
		return rc;
	int32_t leader = new_leader(o, a, run->killed_leader);
	failover_print(o, run, leader, start, end);
	return 0;
}

int ox_bench_failover(int argc, char **argv)
{
	struct failover_opts o;
	struct ox_admin *a = NULL;
	char errstr[256];
	int done;
	int rc = failover_parse(argc, argv, &o, &done);
	if (rc >= 0)
		return done ? 0 : rc;
	// The configuration first: a bad flag fails before any broker is
	// asked.
	struct ox_conf *conf = failover_conf(&o);
	if (conf == NULL)
		return OX_BENCH_EXIT_USAGE;
	struct failover_run *run = calloc(1, sizeof(*run));
	rc = -ENOMEM;
	if (run == NULL)
		goto out;
	rc = ox_bench_client_topic(&o.c);
	if (rc < 0)
		goto out;
	run->killed_leader = -1;
	failover_current = run;
	rc = ox_admin_create(&a, conf, errstr, sizeof(errstr));
	if (rc != 0) {
		ox_bench_client_error(&o.c, "admin client", rc, errstr);
		goto out;
	}
	// Check the pid file of the leader before producing, so that a wrong
	// pattern fails at once rather than after the warm-up.
	int64_t leader = leader_of(&o, a);
	if (leader >= 0 && node_pid(&o, (int32_t)leader) < 0) {
		rc = -ESRCH;
		goto out;
	}
	rc = failover_with(&o, conf, a, run);
out:
	ox_admin_destroy(a);
	ox_conf_destroy(conf);
	free(run);
	return rc == 0 ? 0 : OX_BENCH_EXIT_FAIL;
}
