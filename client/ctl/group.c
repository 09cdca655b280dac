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
	const struct ox_ctl_cmdline cl = {
		NULL, help, NULL, want, want, "group name"
	};
	return ox_ctl_parse(ctl, argc, argv, &cl, NULL, first_pos);
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
		exit_code = ox_ctl_report(ctl, rc, NULL, NULL,
					  ox_admin_last_error(admin),
					  "listing groups");
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
		exit_code = ox_ctl_report(ctl, rc, NULL, group,
					  ox_admin_last_error(admin),
					  "describing group '%s'", group);
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

enum { OPT_TOPIC = OX_CTL_OPT_FIRST_LOCAL, OPT_EARLIEST, OPT_OFFSET,
       OPT_TIME };

static int reset_flag(struct ox_ctl *ctl, int opt, char *arg, void *opts)
{
	struct reset_opts *o = opts;
	enum reset_to to;
	switch (opt) {
	case OPT_TOPIC:
		o->topic = arg;
		return -1;
	case OPT_EARLIEST:
		to = RESET_EARLIEST;
		break;
	case OPT_OFFSET:
		if (ox_ctl_parse_i64(arg, 0, INT64_MAX, &o->value) != 0)
			return ox_ctl_misuse(ctl,
				"--to-offset wants an offset from 0, not '%s'",
				arg);
		to = RESET_OFFSET;
		break;
	default:
		if (ox_ctl_parse_time(arg, &o->value) != 0)
			return ox_ctl_misuse(ctl,
				"--to-time wants ms since the epoch or an ISO-8601 time, not '%s'",
				arg);
		to = RESET_TIME;
		break;
	}
	if (o->to != RESET_NONE)
		return ox_ctl_misuse(ctl, "give one of --to-earliest, "
				     "--to-offset and --to-time");
	o->to = to;
	return -1;
}

static const struct option reset_options[] = {
	OX_CTL_GLOBAL_OPTIONS,
	{ "topic", required_argument, NULL, OPT_TOPIC },
	{ "to-earliest", no_argument, NULL, OPT_EARLIEST },
	{ "to-offset", required_argument, NULL, OPT_OFFSET },
	{ "to-time", required_argument, NULL, OPT_TIME },
	{ NULL, 0, NULL, 0 },
};

static const struct ox_ctl_cmdline reset_cmdline = {
	reset_options, reset_help, reset_flag, 1, 1, "group name"
};

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
	if (rc != 0)
		return ox_ctl_report(ctl, rc, o->topic, NULL,
				     ox_admin_last_error(admin),
				     "listing offsets of partition %d",
				     (int)p->partition);
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
		if (rc != 0)
			exit_code = ox_ctl_report(ctl, rc, o->topic, o->group,
						  ox_admin_last_error(admin),
						  "committing offsets of group '%s'",
						  o->group);
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
	struct ox_admin *admin = NULL;
	int pos;
	int rc = ox_ctl_parse(ctl, argc, argv, &reset_cmdline, &o, &pos);
	if (rc >= 0)
		return rc;
	if (o.topic == NULL || o.topic[0] == '\0')
		return ox_ctl_misuse(ctl, "missing --topic T");
	if (o.to == RESET_NONE)
		return ox_ctl_misuse(ctl, "missing --to-earliest, --to-offset N "
				     "or --to-time T");
	o.group = argv[pos];
	int exit_code = ox_ctl_admin_topic(ctl, o.topic, &admin, &info);
	if (exit_code != OX_CTL_EXIT_OK)
		return exit_code;
	exit_code = commit_reset(ctl, admin, &o, info);
	ox_topic_infos_free(info, 1);
	ox_admin_destroy(admin);
	return exit_code;
}

int ox_ctl_group(struct ox_ctl *ctl, int argc, char **argv)
{
	static const struct ox_ctl_subcommand subs[] = {
		{ "list", "group list", group_list },
		{ "describe", "group describe", group_describe },
		{ "reset", "group reset", group_reset },
	};
	return ox_ctl_dispatch(ctl, argc, argv, "group", group_help, subs,
			       sizeof(subs) / sizeof(subs[0]));
}
