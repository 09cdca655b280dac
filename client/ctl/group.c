// SPDX-License-Identifier: Apache-2.0
//
// `oxbowctl group ...`: list consumer groups, show a group's committed
// offsets with their lag, and reset a group's offsets on one topic (to
// the earliest stored record, an offset, or a point in time). Groups here
// are committed offsets under a name; there is no membership to check, so
// a reset while a consumer of the group runs is overwritten by that
// consumer's next commit.
#include <stdlib.h>
#include <string.h>

#include "client/ctl/ctl.h"

static const char group_help[] =
	"usage: oxbowctl group SUBCOMMAND ...\n"
	"  list                 groups with committed offsets, one per line\n"
	"  describe G           topic, partition, committed offset, end offset, lag\n"
	"  reset G --topic T (--to-earliest | --to-offset N | --to-time T)\n"
	"Run `oxbowctl group SUBCOMMAND --help` for details.\n";

static const char list_help[] =
	"usage: oxbowctl group list\n"
	"Prints every group that has committed offsets, one per line, sorted.\n";

static const char describe_help[] =
	"usage: oxbowctl group describe G\n"
	"Prints, per partition the group committed: the topic, the partition,\n"
	"the committed offset (the next record the group reads), the end offset\n"
	"and the lag between them.\n";

static const char reset_help[] =
	"usage: oxbowctl group reset G --topic T (--to-earliest | --to-offset N | --to-time T)\n"
	"Commits new offsets for group G on every partition of topic T.\n"
	"  --to-earliest   the first record still stored\n"
	"  --to-offset N   offset N, kept within each partition's stored range\n"
	"  --to-time T     the first record with a timestamp at or after T\n"
	"                  (ms since the epoch or ISO-8601; the end if none)\n"
	"Prints the new offset of each partition.\n";

static int parse_positional(struct ox_ctl *ctl, int argc, char **argv,
			    const char *help, int want, int *first_pos)
{
	static const struct option options[] = {
		OX_CTL_GLOBAL_OPTIONS,
		{ NULL, 0, NULL, 0 },
	};
	int opt;
	ox_ctl_getopt_reset();
	while ((opt = getopt_long(argc, argv, ":", options, NULL)) != -1) {
		int rc = ox_ctl_global_flag(ctl, opt, argv, help);
		if (rc >= 0)
			return rc;
	}
	if (argc - optind < want)
		return ox_ctl_misuse(ctl, "missing group name");
	if (argc - optind > want)
		return ox_ctl_misuse(ctl, "unexpected argument '%s'",
				     argv[optind + want]);
	*first_pos = optind;
	return -1;
}

static int group_list(struct ox_ctl *ctl, int argc, char **argv)
{
	char **groups = NULL;
	size_t n = 0;
	int pos, exit_code;
	int rc = parse_positional(ctl, argc, argv, list_help, 0, &pos);
	if (rc >= 0)
		return rc;
	struct ox_admin *admin = ox_ctl_admin(ctl, &exit_code);
	if (admin == NULL)
		return exit_code;
	rc = ox_admin_group_list(admin, &groups, &n);
	if (rc != 0) {
		exit_code = ox_ctl_report(ctl, rc, "listing groups", NULL, NULL,
					  ox_admin_last_error(admin));
	} else {
		for (size_t i = 0; i < n; i++)
			printf("%s\n", groups[i]);
		ox_strings_free(groups, n);
		exit_code = OX_CTL_EXIT_OK;
	}
	ox_admin_destroy(admin);
	return exit_code;
}

static int group_describe(struct ox_ctl *ctl, int argc, char **argv)
{
	struct ox_group_offset *offs = NULL;
	size_t n = 0;
	int pos, exit_code;
	int rc = parse_positional(ctl, argc, argv, describe_help, 1, &pos);
	if (rc >= 0)
		return rc;
	const char *group = argv[pos];
	struct ox_admin *admin = ox_ctl_admin(ctl, &exit_code);
	if (admin == NULL)
		return exit_code;
	rc = ox_admin_group_describe(admin, group, &offs, &n);
	if (rc != 0) {
		char what[300];
		snprintf(what, sizeof(what), "describing group '%s'", group);
		exit_code = ox_ctl_report(ctl, rc, what, NULL, group,
					  ox_admin_last_error(admin));
		ox_admin_destroy(admin);
		return exit_code;
	}
	printf("%-24s  %-9s  %-12s  %-12s  %s\n", "topic", "partition",
	       "committed", "end", "lag");
	for (size_t i = 0; i < n; i++)
		printf("%-24s  %-9d  %-12lld  %-12lld  %lld\n", offs[i].topic,
		       (int)offs[i].partition, (long long)offs[i].offset,
		       (long long)offs[i].end_offset, (long long)offs[i].lag);
	ox_group_offsets_free(offs, n);
	ox_admin_destroy(admin);
	return OX_CTL_EXIT_OK;
}

enum reset_to { RESET_NONE, RESET_EARLIEST, RESET_OFFSET, RESET_TIME };

struct reset_opts {
	const char *group;
	const char *topic;
	enum reset_to to;
	int64_t value;
};

static int parse_reset(struct ox_ctl *ctl, int argc, char **argv,
		       struct reset_opts *o)
{
	enum { OPT_TOPIC = OX_CTL_OPT_FIRST_LOCAL, OPT_EARLIEST, OPT_OFFSET,
	       OPT_TIME };
	static const struct option options[] = {
		OX_CTL_GLOBAL_OPTIONS,
		{ "topic", required_argument, NULL, OPT_TOPIC },
		{ "to-earliest", no_argument, NULL, OPT_EARLIEST },
		{ "to-offset", required_argument, NULL, OPT_OFFSET },
		{ "to-time", required_argument, NULL, OPT_TIME },
		{ NULL, 0, NULL, 0 },
	};
	int opt, rc;
	enum reset_to to;
	ox_ctl_getopt_reset();
	while ((opt = getopt_long(argc, argv, ":", options, NULL)) != -1) {
		switch (opt) {
		case OPT_TOPIC:
			o->topic = optarg;
			continue;
		case OPT_EARLIEST:
			to = RESET_EARLIEST;
			break;
		case OPT_OFFSET:
			if (ox_ctl_parse_i64(optarg, 0, INT64_MAX, &o->value) != 0)
				return ox_ctl_misuse(ctl,
					"--to-offset wants an offset from 0, not '%s'",
					optarg);
			to = RESET_OFFSET;
			break;
		case OPT_TIME:
			if (ox_ctl_parse_time(optarg, &o->value) != 0)
				return ox_ctl_misuse(ctl,
					"--to-time wants ms since the epoch or an ISO-8601 time, not '%s'",
					optarg);
			to = RESET_TIME;
			break;
		default:
			rc = ox_ctl_global_flag(ctl, opt, argv, reset_help);
			if (rc >= 0)
				return rc;
			continue;
		}
		if (o->to != RESET_NONE)
			return ox_ctl_misuse(ctl, "give one of --to-earliest, "
					     "--to-offset and --to-time");
		o->to = to;
	}
	if (optind >= argc)
		return ox_ctl_misuse(ctl, "missing group name");
	if (optind + 1 < argc)
		return ox_ctl_misuse(ctl, "unexpected argument '%s'",
				     argv[optind + 1]);
	if (o->topic == NULL || o->topic[0] == '\0')
		return ox_ctl_misuse(ctl, "missing --topic T");
	if (o->to == RESET_NONE)
		return ox_ctl_misuse(ctl, "missing --to-earliest, --to-offset N "
				     "or --to-time T");
	o->group = argv[optind];
	return -1;
}

// The new offset of one partition, as the reset asks.
static int reset_target(const struct ox_ctl *ctl, struct ox_admin *admin,
			const struct reset_opts *o,
			const struct ox_partition_info *p, int64_t *out)
{
	int rc = 0;
	switch (o->to) {
	case RESET_EARLIEST:
		rc = ox_admin_list_offsets(admin, o->topic, p->partition,
					   OX_OFFSET_BEGINNING, out);
		break;
	case RESET_TIME:
		rc = ox_admin_list_offsets(admin, o->topic, p->partition,
					   o->value, out);
		break;
	default:
		// Like Kafka's reset tool, an offset outside the stored range
		// is moved to its nearest edge rather than committed as is.
		*out = o->value;
		if (*out < p->start_offset)
			*out = p->start_offset;
		if (*out > p->end_offset)
			*out = p->end_offset;
		break;
	}
	if (rc != 0) {
		char what[300];
		snprintf(what, sizeof(what), "listing offsets of partition %d",
			 (int)p->partition);
		return ox_ctl_report(ctl, rc, what, o->topic, NULL,
				     ox_admin_last_error(admin));
	}
	return OX_CTL_EXIT_OK;
}

static int commit_reset(const struct ox_ctl *ctl, struct ox_admin *admin,
			const struct reset_opts *o,
			const struct ox_topic_info *t)
{
	size_t n = t->partition_count;
	int exit_code = OX_CTL_EXIT_OK;
	struct ox_topic_partition *tps = calloc(n ? n : 1, sizeof(*tps));
	if (tps == NULL)
		return ox_ctl_fail("out of memory");
	for (size_t i = 0; i < n && exit_code == OX_CTL_EXIT_OK; i++) {
		tps[i].topic = o->topic;
		tps[i].partition = t->partitions[i].partition;
		exit_code = reset_target(ctl, admin, o, &t->partitions[i],
					 &tps[i].offset);
	}
	if (exit_code == OX_CTL_EXIT_OK) {
		int rc = ox_admin_group_commit(admin, o->group, tps, n);
		if (rc != 0) {
			char what[300];
			snprintf(what, sizeof(what), "committing offsets of group '%s'",
				 o->group);
			exit_code = ox_ctl_report(ctl, rc, what, o->topic,
						  o->group,
						  ox_admin_last_error(admin));
		}
	}
	if (exit_code == OX_CTL_EXIT_OK) {
		printf("%-24s  %-9s  %s\n", "topic", "partition", "offset");
		for (size_t i = 0; i < n; i++)
			printf("%-24s  %-9d  %lld\n", o->topic,
			       (int)tps[i].partition,
			       (long long)tps[i].offset);
	}
	free(tps);
	return exit_code;
}

static int group_reset(struct ox_ctl *ctl, int argc, char **argv)
{
	struct reset_opts o = { .to = RESET_NONE };
	struct ox_topic_info *info = NULL;
	int exit_code;
	int rc = parse_reset(ctl, argc, argv, &o);
	if (rc >= 0)
		return rc;
	struct ox_admin *admin = ox_ctl_admin(ctl, &exit_code);
	if (admin == NULL)
		return exit_code;
	exit_code = ox_ctl_topic_lookup(ctl, admin, o.topic, &info);
	if (exit_code == OX_CTL_EXIT_OK) {
		exit_code = commit_reset(ctl, admin, &o, info);
		ox_topic_infos_free(info, 1);
	}
	ox_admin_destroy(admin);
	return exit_code;
}

int ox_ctl_group(struct ox_ctl *ctl, int argc, char **argv)
{
	static const struct {
		const char *name;
		const char *command;
		int (*run)(struct ox_ctl *ctl, int argc, char **argv);
	} subs[] = {
		{ "list", "group list", group_list },
		{ "describe", "group describe", group_describe },
		{ "reset", "group reset", group_reset },
	};
	int rc = ox_ctl_family_globals(ctl, &argc, &argv);
	if (rc >= 0)
		return rc;
	if (argc < 2) {
		fputs(group_help, stderr);
		return OX_CTL_EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fputs(group_help, stdout);
		return OX_CTL_EXIT_OK;
	}
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		if (strcmp(argv[1], subs[i].name) == 0) {
			ctl->command = subs[i].command;
			return subs[i].run(ctl, argc - 1, argv + 1);
		}
	}
	return ox_ctl_misuse(ctl, "unknown group subcommand '%s'", argv[1]);
}
