// SPDX-License-Identifier: Apache-2.0
//
// The metadata log compacted by snapshots. Three oxbowd processes take a
// snapshot every META_ENTRIES metadata entries and keep their metadata
// log in tiny segments, so that a few dozen admin changes delete the
// log's head on every running node. Then:
//   1. A node that was down (SIGTERM) while topics were created, deleted
//      and altered comes back behind the leader's log start: it gets the
//      leader's snapshot (its log says so), lists exactly the topics the
//      others list, sees the altered config, removes the directory of a
//      topic deleted while it was down, and its replicas of a topic with
//      records come in sync.
//   2. The whole cluster stops (SIGTERM) and starts again: every node
//      loads its snapshot, and every node lists the same topics.
//   3. That node's data directory is wiped: it rejoins through a
//      snapshot again.
//   4. Its meta.snap is damaged: it refuses to start, saying so; with its
//      metadata files removed it rejoins, its partition data kept.
// A plain program (exit 0 pass, 1 fail, 77 skip): argv[1] is oxbowd.
#include <dirent.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tests/integration/broker_common.h"

#define NODES 3
#define META_ENTRIES "16"
#define META_SEGMENT_BYTES "1024"
#define CREATED 24      // topics t-00 .. t-23 created while a node is down
#define DELETED 4       // t-00 .. t-03 deleted again
#define ALTERED "t-05"
#define RECORDS 1000    // produced to kept-early
#define WAIT_MS 30000
#define WATCHDOG_S 280

static struct bc_broker nodes[NODES];
static char bootstrap_all[256];
static _Atomic int acked;

// The topics every node must list at the end: kept-early and the created
// ones not deleted, sorted by name.
static char expected[CREATED + 1][16];
static int expected_n;

static void expect_topics(void)
{
	snprintf(expected[expected_n++], sizeof(expected[0]), "kept-early");
	for (int i = DELETED; i < CREATED; i++)
		snprintf(expected[expected_n++], sizeof(expected[0]), "t-%02d",
			 i);
}

// Occurrences of `what` in node b's output.
static int log_count(const struct bc_broker *b, const char *what)
{
	FILE *f = fopen(b->log_path, "r");
	char line[4096];
	int n = 0;

	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strstr(line, what) != NULL)
			n++;
	fclose(f);
	return n;
}

// Topic directories under b's data directory.
static int topic_dirs(const struct bc_broker *b)
{
	char path[BC_PATH_MAX + 16];
	struct dirent *de;
	int n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "%s/topics", b->data_dir);
	d = opendir(path);
	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] >= '0' && de->d_name[0] <= '9')
			n++;
	closedir(d);
	return n;
}

static bool file_exists(const char *dir, const char *name)
{
	char path[BC_PATH_MAX + 64];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return stat(path, &st) == 0;
}

// Whether node i lists exactly the expected topics (not internal ones).
static bool lists_expected(int i)
{
	struct ox_admin *a = bc_admin(&nodes[i]);
	struct ox_topic_info *infos = NULL;
	size_t n = 0;
	bool same;
	int rc = ox_admin_topic_list(a, 0, &infos, &n);

	same = rc == 0 && (int)n == expected_n;
	for (size_t k = 0; same && k < n; k++)
		same = strcmp(infos[k].name, expected[k]) == 0;
	if (rc == 0)
		ox_topic_infos_free(infos, n);
	ox_admin_destroy(a);
	return same;
}

// Whether node i describes ALTERED with retention.ms = 3600000.
static bool sees_altered(int i)
{
	struct ox_admin *a = bc_admin(&nodes[i]);
	struct ox_topic_info *info = NULL;
	bool seen = false;

	if (ox_admin_topic_describe(a, ALTERED, &info) == 0) {
		for (size_t k = 0; k < info->config_count; k++)
			if (strcmp(info->configs[k].key, "retention.ms") == 0)
				seen = strcmp(info->configs[k].value,
					      "3600000") == 0;
		ox_topic_infos_free(info, 1);
	}
	ox_admin_destroy(a);
	return seen;
}

// Waits until node i lists the expected topics, sees the altered config
// and holds a directory per topic (the expected ones and __offsets).
static void wait_node_caught_up(int i, const char *when)
{
	int64_t t0 = bc_now_ms(), until = t0 + WAIT_MS;
	bool listed = false, altered = false;
	int dirs = -1;

	while (bc_now_ms() < until) {
		listed = lists_expected(i);
		altered = listed && sees_altered(i);
		dirs = topic_dirs(&nodes[i]);
		if (listed && altered && dirs == expected_n + 1)
			break;
		bc_sleep_ms(50);
	}
	CHECK(listed, "%s: node %d does not list the %d expected topics",
	      when, i + 1, expected_n);
	CHECK(altered, "%s: node %d does not see %s's altered config", when,
	      i + 1, ALTERED);
	CHECK(dirs == expected_n + 1, "%s: node %d holds %d topic "
	      "directories, not %d", when, i + 1, dirs, expected_n + 1);
	printf("%s: node %d caught up in %lld ms\n", when, i + 1,
	       (long long)(bc_now_ms() - t0));
}

// Waits until node i has saved a snapshot and its metadata log no longer
// starts at offset 0.
static void wait_compacted(int i)
{
	char meta[BC_PATH_MAX + 16];
	int64_t until = bc_now_ms() + WAIT_MS;
	bool snap = false, cut = false;

	snprintf(meta, sizeof(meta), "%s/meta", nodes[i].data_dir);
	while (bc_now_ms() < until) {
		snap = file_exists(nodes[i].data_dir, "meta.snap");
		cut = !file_exists(meta, "00000000000000000000.log");
		if (snap && cut)
			break;
		bc_sleep_ms(20);
	}
	CHECK(snap, "node %d saved no metadata snapshot", i + 1);
	CHECK(cut, "node %d kept its metadata log's first segment", i + 1);
}

// Flips one byte in the middle of node i's meta.snap.
static void damage_snapshot(int i)
{
	char path[BC_PATH_MAX + 16];
	struct stat st;
	uint8_t b;
	FILE *f;

	snprintf(path, sizeof(path), "%s/meta.snap", nodes[i].data_dir);
	if (stat(path, &st) < 0 || st.st_size < 32 ||
	    (f = fopen(path, "r+b")) == NULL)
		bc_dief("cannot open %s", path);
	fseek(f, st.st_size / 2, SEEK_SET);
	if (fread(&b, 1, 1, f) != 1)
		bc_dief("cannot read %s", path);
	b ^= 0x5a;
	fseek(f, st.st_size / 2, SEEK_SET);
	if (fwrite(&b, 1, 1, f) != 1 || fclose(f) != 0)
		bc_dief("cannot write %s", path);
}

// Removes node i's metadata files, as the message of a damaged meta.snap
// tells the operator to.
static void remove_metadata(int i)
{
	char cmd[BC_PATH_MAX * 3 + 64];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s/meta' '%s/meta.raft' "
		 "'%s/meta.snap'", nodes[i].data_dir, nodes[i].data_dir,
		 nodes[i].data_dir);
	if (system(cmd) != 0)
		bc_dief("%s failed", cmd);
}

static void delivered(void *opaque, int err, const char *t, int32_t part,
		      int64_t off)
{
	(void)opaque, (void)t, (void)part, (void)off;
	if (err == 0)
		atomic_fetch_add(&acked, 1);
}

static void produce(void)
{
	static const char *const kv[] = { "acks", "all", NULL };
	struct ox_producer *p = bc_producer(&nodes[0], bootstrap_all, kv);
	char value[32];
	int rc;

	for (int i = 0; i < RECORDS; i++) {
		struct ox_message m = { .topic = "kept-early",
					.partition = OX_PARTITION_ANY,
					.value = value, .cb = delivered };

		m.value_len = (size_t)snprintf(value, sizeof(value), "r%d", i);
		rc = ox_producer_send(p, &m);
		if (rc < 0)
			bc_dief("send: %s", ox_strerror(rc));
	}
	rc = ox_producer_flush(p, 60000);
	CHECK(rc == 0, "flush: %s", ox_strerror(rc));
	ox_producer_destroy(p);
	CHECK(atomic_load(&acked) == RECORDS, "%d of %d records acknowledged",
	      atomic_load(&acked), RECORDS);
}

static void admin_ok(int rc, struct ox_admin *a, const char *what,
		     const char *name)
{
	if (rc < 0)
		bc_dief("%s %s: %s (%s)", what, name, ox_strerror(rc),
			ox_admin_last_error(a));
}

// Creates, deletes and alters topics through node `via` (any node: the
// changes go to the metadata leader).
static void change_topics(int via)
{
	struct ox_admin *a = bc_admin(&nodes[via]);
	struct ox_config_entry ret = { "retention.ms", "3600000" };
	char name[16];

	for (int i = 0; i < CREATED; i++) {
		snprintf(name, sizeof(name), "t-%02d", i);
		admin_ok(ox_admin_topic_create(a, name, 1, NODES, NULL, 0), a,
			 "create", name);
	}
	for (int i = 0; i < DELETED; i++) {
		snprintf(name, sizeof(name), "t-%02d", i);
		admin_ok(ox_admin_topic_delete(a, name), a, "delete", name);
	}
	admin_ok(ox_admin_topic_delete(a, "gone-early"), a, "delete",
		 "gone-early");
	admin_ok(ox_admin_config_alter(a, ALTERED, &ret, 1), a, "alter",
		 ALTERED);
	ox_admin_destroy(a);
}

static void stop_all(const char *when)
{
	for (int i = 0; i < NODES; i++) {
		int st = bc_broker_stop(&nodes[i]);

		CHECK(st == 0, "%s: node %d exited with status %d on SIGTERM",
		      when, i + 1, st);
	}
}

int main(int argc, char **argv)
{
	static const char *const args[] = {
		"--meta.snapshot.entries", META_ENTRIES,
		"--meta.log.segment.bytes", META_SEGMENT_BYTES,
		"--log.segment.bytes", "1048576", NULL
	};
	struct ox_admin *a;
	int leader, victim, installed;

	bc_start("broker-cluster-snapshot", argc, argv, WATCHDOG_S);
	expect_topics();
	bc_cluster_start(nodes, NODES, "snap", args);
	bc_cluster_bootstrap(nodes, NODES, bootstrap_all,
			     sizeof(bootstrap_all));
	leader = bc_meta_agreed(nodes, NODES, WAIT_MS);
	victim = leader % NODES; // index of a node that does not lead
	a = bc_admin(&nodes[leader - 1]);
	admin_ok(ox_admin_topic_create(a, "kept-early", 1, NODES, NULL, 0), a,
		 "create", "kept-early");
	admin_ok(ox_admin_topic_create(a, "gone-early", 1, NODES, NULL, 0), a,
		 "create", "gone-early");
	ox_admin_destroy(a);
	produce();
	CHECK(bc_partitions_in_sync(nodes, NODES, "gone-early", 1, WAIT_MS,
				    NULL, NULL), "gone-early never came in sync");
	CHECK(topic_dirs(&nodes[victim]) == 3, "node %d holds %d topic "
	      "directories before it stops, not 3", victim + 1,
	      topic_dirs(&nodes[victim]));

	// 1. A node down while the log's head goes.
	CHECK(bc_broker_stop(&nodes[victim]) == 0, "node %d: SIGTERM",
	      victim + 1);
	change_topics(leader - 1);
	for (int i = 0; i < NODES; i++)
		if (i != victim)
			wait_compacted(i);
	bc_broker_start(&nodes[victim]);
	wait_node_caught_up(victim, "restarted behind the log start");
	installed = log_count(&nodes[victim], "metadata snapshot installed");
	CHECK(installed >= 1, "node %d caught up without a snapshot",
	      victim + 1);
	CHECK(bc_partitions_in_sync(nodes, NODES, "kept-early", 1, WAIT_MS,
				    NULL, NULL),
	      "kept-early's replicas did not come in sync");
	wait_compacted(victim);

	// 2. The whole cluster from its snapshots.
	stop_all("before the whole-cluster restart");
	bc_cluster_restart(nodes, NODES);
	bc_cluster_settle(nodes, NODES);
	for (int i = 0; i < NODES; i++) {
		CHECK(log_count(&nodes[i], "metadata snapshot loaded") >= 1,
		      "node %d did not load its snapshot", i + 1);
		wait_node_caught_up(i, "whole-cluster restart");
	}

	// 3. A wiped node rejoins through a snapshot.
	CHECK(bc_broker_stop(&nodes[victim]) == 0, "node %d: SIGTERM",
	      victim + 1);
	bc_broker_wipe(&nodes[victim]);
	bc_broker_start(&nodes[victim]);
	bc_cluster_settle(nodes, NODES);
	wait_node_caught_up(victim, "wiped");
	CHECK(log_count(&nodes[victim], "metadata snapshot installed") >
		      installed,
	      "the wiped node %d caught up without a snapshot", victim + 1);
	CHECK(bc_partitions_in_sync(nodes, NODES, "kept-early", 1, WAIT_MS,
				    NULL, NULL),
	      "kept-early's replicas did not come in sync after the wipe");

	// 4. A damaged meta.snap stops the node at start, saying so; without
	// its metadata files it rejoins as a node whose metadata was wiped.
	CHECK(bc_broker_stop(&nodes[victim]) == 0, "node %d: SIGTERM",
	      victim + 1);
	damage_snapshot(victim);
	bc_broker_spawn(&nodes[victim]);
	int64_t until = bc_now_ms() + WAIT_MS;
	int st = -1;
	while ((st = bc_broker_reap(&nodes[victim])) < 0 &&
	       bc_now_ms() < until)
		bc_sleep_ms(20);
	CHECK(st > 0, "node %d started on a damaged meta.snap (status %d)",
	      victim + 1, st);
	if (st < 0)
		bc_broker_kill(&nodes[victim]);
	CHECK(log_count(&nodes[victim], "meta.snap is damaged") >= 1,
	      "node %d did not say its meta.snap is damaged", victim + 1);
	remove_metadata(victim);
	bc_broker_start(&nodes[victim]);
	bc_cluster_settle(nodes, NODES);
	wait_node_caught_up(victim, "metadata removed");
	CHECK(bc_partitions_in_sync(nodes, NODES, "kept-early", 1, WAIT_MS,
				    NULL, NULL),
	      "kept-early's replicas did not come in sync at the end");
	stop_all("at the end");
	bc_finish();
}
