// SPDX-License-Identifier: Apache-2.0
//
// `oxbowctl topic ...`: create, list, describe, delete and configure
// topics, and move a partition's replicas, through liboxbow's admin API.
// Each subcommand parses its flags, makes one or two admin calls and
// prints what a person (or a script reading columns) needs; errors come
// back as one line naming the topic.
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client/ctl/ctl.h"

static const char topic_help[] =
	"usage: oxbowctl topic SUBCOMMAND ...\n"
	"  create NAME --partitions N [--replicas R] [--config k=v]...\n"
	"  list                      topic names, one per line\n"
	"  describe NAME             partitions, leaders, replicas, offsets, configs\n"
	"  delete NAME\n"
	"  config NAME k=v...        change configs (partitions=N grows a topic)\n"
	"  reassign NAME --partition P --replicas ID,ID,...\n"
	"                            move a partition to these nodes\n"
	"Run `oxbowctl topic SUBCOMMAND --help` for details.\n";

static const char create_help[] =
	"usage: oxbowctl topic create NAME --partitions N [--replicas R] [--config k=v]...\n"
	"Creates topic NAME with N partitions.\n"
	"  --partitions N   number of partitions (1 or more)\n"
	"  --replicas R     replicas of each partition (default: the broker's\n"
	"                   default.replication.factor)\n"
	"  --config k=v     a topic config such as retention.ms=86400000 or\n"
	"                   cleanup.policy=compact; repeat for more\n";

static const char list_help[] =
	"usage: oxbowctl topic list\n"
	"Prints every topic name, one per line, sorted.\n";

static const char describe_help[] =
	"usage: oxbowctl topic describe NAME\n"
	"Prints the topic's partitions (leader, replicas, in-sync replicas,\n"
	"start and end offsets) and every config with its value.\n";

static const char delete_help[] =
	"usage: oxbowctl topic delete NAME\n"
	"Deletes the topic and every record in it.\n";

static const char config_help[] =
	"usage: oxbowctl topic config NAME k=v...\n"
	"Sets topic configs, all or none. partitions=N adds partitions.\n";

static const char reassign_help[] =
	"usage: oxbowctl topic reassign NAME --partition P --replicas ID,ID,...\n"
	"Moves partition P of topic NAME to the nodes listed. The command\n"
	"returns once the cluster has recorded the new list; the move then\n"
	"runs in the background, and `oxbowctl cluster status` marks the\n"
	"partition `moving` until it is done.\n"
	"  --partition P       the partition to move (from 0)\n"
	"  --replicas ID,...   node ids, comma-separated, distinct, as many as\n"
	"                      the topic's replication factor; the preferred\n"
	"                      leader first\n";

// Parses a subcommand with no options of its own beyond the global ones
// and checks the positional count. Returns -1 to go on, or an exit code.
static int parse_plain(struct ox_ctl *ctl, int argc, char **argv,
		       const char *help, int min_pos, int max_pos,
		       int *first_pos)
{
	const struct ox_ctl_cmdline cl = {
		NULL, help, NULL, min_pos, max_pos, "argument"
	};
	return ox_ctl_parse(ctl, argc, argv, &cl, NULL, first_pos);
}

enum {
	OPT_PARTITIONS = OX_CTL_OPT_FIRST_LOCAL,
	OPT_REPLICAS,
	OPT_CONFIG,
	OPT_PARTITION,
};

struct create_opts {
	struct ox_config_entry configs[OX_CTL_CONFIGS_MAX];
	size_t n_configs;
	int64_t partitions; // -1 until given
	int64_t replicas;   // 0: the broker's default
};

static int create_flag(struct ox_ctl *ctl, int opt, char *arg, void *opts)
{
	struct create_opts *o = opts;
	switch (opt) {
	case OPT_PARTITIONS:
		if (ox_ctl_parse_i64(arg, 1, INT32_MAX, &o->partitions) != 0)
			return ox_ctl_misuse(ctl,
				"--partitions wants a number from 1, not '%s'",
				arg);
		return -1;
	case OPT_REPLICAS:
		if (ox_ctl_parse_i64(arg, 1, INT32_MAX, &o->replicas) != 0)
			return ox_ctl_misuse(ctl,
				"--replicas wants a number from 1, not '%s'",
				arg);
		return -1;
	default:
		if (o->n_configs == OX_CTL_CONFIGS_MAX)
			return ox_ctl_misuse(ctl, "more than %d --config flags",
					     OX_CTL_CONFIGS_MAX);
		if (ox_ctl_parse_config(arg, &o->configs[o->n_configs]) != 0)
			return ox_ctl_misuse(ctl,
				"--config wants k=v, not '%s'", arg);
		o->n_configs++;
		return -1;
	}
}

static const struct option create_options[] = {
	OX_CTL_GLOBAL_OPTIONS,
	{ "partitions", required_argument, NULL, OPT_PARTITIONS },
	{ "replicas", required_argument, NULL, OPT_REPLICAS },
	{ "config", required_argument, NULL, OPT_CONFIG },
	{ NULL, 0, NULL, 0 },
};

static const struct ox_ctl_cmdline create_cmdline = {
	create_options, create_help, create_flag, 1, 1, "topic name"
};

static int topic_create(struct ox_ctl *ctl, int argc, char **argv)
{
	struct create_opts o = { .partitions = -1 };
	int pos, exit_code;
	int rc = ox_ctl_parse(ctl, argc, argv, &create_cmdline, &o, &pos);
	if (rc >= 0)
		return rc;
	if (o.partitions < 0)
		return ox_ctl_misuse(ctl, "missing --partitions N");
	const char *name = argv[pos];

	struct ox_admin *admin = ox_ctl_admin(ctl, &exit_code);
	if (admin == NULL)
		return exit_code;
	rc = ox_admin_topic_create(admin, name, (int32_t)o.partitions,
				   (int32_t)o.replicas, o.configs, o.n_configs);
	if (rc != 0) {
		exit_code = ox_ctl_report(ctl, rc, name, NULL,
					  ox_admin_last_error(admin),
					  "creating topic '%s'", name);
	} else {
		printf("created topic '%s' with %d partition%s\n", name,
		       (int)o.partitions, o.partitions == 1 ? "" : "s");
		exit_code = OX_CTL_EXIT_OK;
	}
	ox_admin_destroy(admin);
	return exit_code;
}

static int topic_list(struct ox_ctl *ctl, int argc, char **argv)
{
	struct ox_topic_info *topics = NULL;
	size_t n = 0;
	int pos, exit_code;
	int rc = parse_plain(ctl, argc, argv, list_help, 0, 0, &pos);
	if (rc >= 0)
		return rc;
	struct ox_admin *admin = ox_ctl_admin(ctl, &exit_code);
	if (admin == NULL)
		return exit_code;
	rc = ox_admin_topic_list(admin, 0, &topics, &n);
	if (rc != 0) {
		exit_code = ox_ctl_report(ctl, rc, NULL, NULL,
					  ox_admin_last_error(admin),
					  "listing topics");
	} else {
		for (size_t i = 0; i < n; i++)
			printf("%s\n", topics[i].name);
		ox_topic_infos_free(topics, n);
		exit_code = OX_CTL_EXIT_OK;
	}
	ox_admin_destroy(admin);
	return exit_code;
}

// Prints node ids as "1,2,3" into a column of the partition table.
static void print_ids(const int32_t *ids, size_t n)
{
	char buf[96];
	size_t used = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < n && used < sizeof(buf); i++)
		used += (size_t)snprintf(buf + used, sizeof(buf) - used,
					 "%s%d", i ? "," : "", (int)ids[i]);
	printf("  %-10s", n == 0 ? "-" : buf);
}

static void print_topic(const struct ox_topic_info *t)
{
	printf("topic: %s\npartitions: %zu\n", t->name, t->partition_count);
	printf("%-10s  %-6s  %-10s  %-10s  %-12s  %s\n", "partition", "leader",
	       "replicas", "in-sync", "start", "end");
	for (size_t i = 0; i < t->partition_count; i++) {
		const struct ox_partition_info *p = &t->partitions[i];
		printf("%-10d  %-6d", (int)p->partition, (int)p->leader);
		print_ids(p->replicas, p->replica_count);
		print_ids(p->in_sync, p->in_sync_count);
		printf("  %-12lld  %lld\n", (long long)p->start_offset,
		       (long long)p->end_offset);
	}
	printf("configs:\n");
	for (size_t i = 0; i < t->config_count; i++)
		printf("  %s = %s\n", t->configs[i].key, t->configs[i].value);
}

static int topic_describe(struct ox_ctl *ctl, int argc, char **argv)
{
	struct ox_topic_info *info = NULL;
	int pos, exit_code;
	int rc = parse_plain(ctl, argc, argv, describe_help, 1, 1, &pos);
	if (rc >= 0)
		return rc;
	struct ox_admin *admin = ox_ctl_admin(ctl, &exit_code);
	if (admin == NULL)
		return exit_code;
	exit_code = ox_ctl_topic_lookup(ctl, admin, argv[pos], &info);
	if (exit_code == OX_CTL_EXIT_OK) {
		print_topic(info);
		ox_topic_infos_free(info, 1);
	}
	ox_admin_destroy(admin);
	return exit_code;
}

static int topic_delete(struct ox_ctl *ctl, int argc, char **argv)
{
	int pos, exit_code;
	int rc = parse_plain(ctl, argc, argv, delete_help, 1, 1, &pos);
	if (rc >= 0)
		return rc;
	const char *name = argv[pos];
	struct ox_admin *admin = ox_ctl_admin(ctl, &exit_code);
	if (admin == NULL)
		return exit_code;
	rc = ox_admin_topic_delete(admin, name);
	if (rc != 0) {
		exit_code = ox_ctl_report(ctl, rc, name, NULL,
					  ox_admin_last_error(admin),
					  "deleting topic '%s'", name);
	} else {
		printf("deleted topic '%s'\n", name);
		exit_code = OX_CTL_EXIT_OK;
	}
	ox_admin_destroy(admin);
	return exit_code;
}

static int topic_config(struct ox_ctl *ctl, int argc, char **argv)
{
	struct ox_config_entry configs[OX_CTL_CONFIGS_MAX];
	int pos, exit_code;
	int rc = parse_plain(ctl, argc, argv, config_help, 2, -1, &pos);
	if (rc >= 0)
		return rc;
	const char *name = argv[pos];
	size_t n = (size_t)(argc - pos - 1);
	if (n > OX_CTL_CONFIGS_MAX)
		return ox_ctl_misuse(ctl, "more than %d configs at once",
				     OX_CTL_CONFIGS_MAX);
	for (size_t i = 0; i < n; i++) {
		char *arg = argv[pos + 1 + i];
		if (ox_ctl_parse_config(arg, &configs[i]) != 0)
			return ox_ctl_misuse(ctl, "wanted k=v, not '%s'", arg);
	}
	struct ox_admin *admin = ox_ctl_admin(ctl, &exit_code);
	if (admin == NULL)
		return exit_code;
	rc = ox_admin_config_alter(admin, name, configs, n);
	if (rc != 0) {
		exit_code = ox_ctl_report(ctl, rc, name, NULL,
					  ox_admin_last_error(admin),
					  "changing configs of topic '%s'", name);
	} else {
		for (size_t i = 0; i < n; i++)
			printf("%s = %s\n", configs[i].key, configs[i].value);
		exit_code = OX_CTL_EXIT_OK;
	}
	ox_admin_destroy(admin);
	return exit_code;
}

struct reassign_opts {
	int32_t replicas[OX_CTL_REPLICAS_MAX];
	size_t n_replicas;  // 0 until given
	int64_t partition;  // -1 until given
};

// The first id of ids[0..n) that comes twice, or -1.
static int64_t id_repeated(const int32_t *ids, size_t n)
{
	for (size_t i = 1; i < n; i++)
		for (size_t j = 0; j < i; j++)
			if (ids[i] == ids[j])
				return ids[i];
	return -1;
}

static int reassign_flag(struct ox_ctl *ctl, int opt, char *arg, void *opts)
{
	struct reassign_opts *o = opts;
	int rc;

	if (opt == OPT_PARTITION) {
		if (ox_ctl_parse_i64(arg, 0, INT32_MAX, &o->partition) != 0)
			return ox_ctl_misuse(ctl,
				"--partition wants a number from 0, not '%s'",
				arg);
		return -1;
	}
	rc = ox_ctl_parse_ids(arg, o->replicas, OX_CTL_REPLICAS_MAX,
			      &o->n_replicas);
	if (rc == -E2BIG)
		return ox_ctl_misuse(ctl, "--replicas lists more than %d nodes",
				     OX_CTL_REPLICAS_MAX);
	if (rc != 0)
		return ox_ctl_misuse(ctl,
			"--replicas wants node ids such as 1,2,3, not '%s'",
			arg);
	int64_t twice = id_repeated(o->replicas, o->n_replicas);
	if (twice >= 0)
		return ox_ctl_misuse(ctl, "--replicas lists node %lld twice",
				     (long long)twice);
	return -1;
}

static const struct option reassign_options[] = {
	OX_CTL_GLOBAL_OPTIONS,
	{ "partition", required_argument, NULL, OPT_PARTITION },
	{ "replicas", required_argument, NULL, OPT_REPLICAS },
	{ NULL, 0, NULL, 0 },
};

static const struct ox_ctl_cmdline reassign_cmdline = {
	reassign_options, reassign_help, reassign_flag, 1, 1, "topic name"
};

static int topic_reassign(struct ox_ctl *ctl, int argc, char **argv)
{
	struct reassign_opts o = { .partition = -1 };
	char ids[OX_CTL_REPLICAS_MAX * 12];
	int pos, exit_code;
	int rc = ox_ctl_parse(ctl, argc, argv, &reassign_cmdline, &o, &pos);
	if (rc >= 0)
		return rc;
	if (o.partition < 0)
		return ox_ctl_misuse(ctl, "missing --partition P");
	if (o.n_replicas == 0)
		return ox_ctl_misuse(ctl, "missing --replicas ID,ID,...");
	const char *name = argv[pos];
	const int32_t partition = (int32_t)o.partition;

	struct ox_admin *admin = ox_ctl_admin(ctl, &exit_code);
	if (admin == NULL)
		return exit_code;
	rc = ox_admin_partition_reassign(admin, name, partition, o.replicas,
					 o.n_replicas);
	if (rc == -OX_EUNKNOWN_TOPIC) {
		// The code stands for a missing partition as well.
		exit_code = ox_ctl_fail("unknown topic '%s' or partition %d",
					name, (int)partition);
	} else if (rc != 0) {
		exit_code = ox_ctl_report(ctl, rc, name, NULL,
					  ox_admin_last_error(admin),
					  "reassigning partition %d of topic "
					  "'%s'", (int)partition, name);
	} else {
		// Each id is at most 10 digits and a comma: ids holds them all.
		size_t used = 0;
		for (size_t i = 0; i < o.n_replicas && used < sizeof(ids); i++)
			used += (size_t)snprintf(ids + used, sizeof(ids) - used,
						 "%s%d", i ? "," : "",
						 (int)o.replicas[i]);
		printf("reassigning %s partition %d to replicas %s\n", name,
		       (int)partition, ids);
		exit_code = OX_CTL_EXIT_OK;
	}
	ox_admin_destroy(admin);
	return exit_code;
}

int ox_ctl_topic(struct ox_ctl *ctl, int argc, char **argv)
{
	static const struct ox_ctl_subcommand subs[] = {
		{ "create", "topic create", topic_create },
		{ "list", "topic list", topic_list },
		{ "describe", "topic describe", topic_describe },
		{ "delete", "topic delete", topic_delete },
		{ "config", "topic config", topic_config },
		{ "reassign", "topic reassign", topic_reassign },
	};
	return ox_ctl_dispatch(ctl, argc, argv, "topic", topic_help, subs,
			       sizeof(subs) / sizeof(subs[0]));
}
