// SPDX-License-Identifier: Apache-2.0
//
// oxbowctl's commands as far as they go without a broker: exit codes of
// help (0), misuse (2: a bad flag or value, a missing or extra argument,
// an unknown subcommand) and errors (1: no broker listening), and the
// line on stderr that names the problem. Each test runs in its own
// process, so getopt's global state starts afresh.
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "client/ctl/ctl.h"

#define ARGS_MAX 16

static void redirect_all(void)
{
	cr_redirect_stdout();
	cr_redirect_stderr();
}

TestSuite(commands, .init = redirect_all);

// Runs a command family with the NULL-terminated words (copied: parsers
// split k=v in place) and bootstrap, returning its exit code. The first
// word names the command in messages, as main() sets it.
static int run(int (*family)(struct ox_ctl *, int, char **),
	       const char *bootstrap, ...)
{
	static char *argv[ARGS_MAX + 1];
	struct ox_ctl ctl = { .bootstrap = bootstrap };
	int argc = 0;
	va_list ap;
	const char *w;

	va_start(ap, bootstrap);
	while ((w = va_arg(ap, const char *)) != NULL) {
		cr_assert_lt(argc, ARGS_MAX);
		argv[argc] = strdup(w);
		cr_assert_not_null(argv[argc]);
		argc++;
	}
	va_end(ap);
	argv[argc] = NULL;
	cr_assert_gt(argc, 0);
	ctl.command = argv[0];
	return family(&ctl, argc, argv);
}

// Nobody listens on port 1 of the loopback address: connecting is refused
// at once, so no test waits for a timeout.
#define DEAD "127.0.0.1:1"
#define LIVE_UNUSED "127.0.0.1:7400" // never reached: misuse comes first

Test(commands, help_exits_0)
{
	cr_assert_eq(run(ox_ctl_topic, LIVE_UNUSED, "topic", "--help", NULL),
		     OX_CTL_EXIT_OK);
	cr_assert_eq(run(ox_ctl_topic, LIVE_UNUSED, "topic", "create",
			 "--help", NULL),
		     OX_CTL_EXIT_OK);
	cr_assert_eq(run(ox_ctl_topic, LIVE_UNUSED, "topic", "reassign",
			 "--help", NULL),
		     OX_CTL_EXIT_OK);
	cr_assert_eq(run(ox_ctl_group, LIVE_UNUSED, "group", "-h", NULL),
		     OX_CTL_EXIT_OK);
	cr_assert_eq(run(ox_ctl_consume, LIVE_UNUSED, "consume", "--help",
			 NULL),
		     OX_CTL_EXIT_OK);
	cr_assert_eq(run(ox_ctl_produce, LIVE_UNUSED, "produce", "t", "--help",
			 NULL),
		     OX_CTL_EXIT_OK);
}

Test(commands, family_without_subcommand_is_misuse)
{
	cr_assert_eq(run(ox_ctl_topic, LIVE_UNUSED, "topic", NULL),
		     OX_CTL_EXIT_USAGE);
	cr_assert_eq(run(ox_ctl_group, LIVE_UNUSED, "group", "--bootstrap",
			 "h:1", NULL),
		     OX_CTL_EXIT_USAGE);
}

Test(commands, unknown_subcommand_is_named)
{
	cr_assert_eq(run(ox_ctl_topic, LIVE_UNUSED, "topic", "frob", NULL),
		     OX_CTL_EXIT_USAGE);
	fflush(stderr);
	cr_assert_stderr_eq_str("oxbowctl: unknown topic subcommand 'frob' "
				"(see oxbowctl topic --help)\n");
}

Test(commands, topic_create_misuse)
{
	cr_assert_eq(run(ox_ctl_topic, LIVE_UNUSED, "topic", "create", NULL),
		     OX_CTL_EXIT_USAGE);
	cr_assert_eq(run(ox_ctl_topic, LIVE_UNUSED, "topic", "create", "t",
			 NULL),
		     OX_CTL_EXIT_USAGE);
	cr_assert_eq(run(ox_ctl_topic, LIVE_UNUSED, "topic", "create", "t",
			 "--partitions", "0", NULL),
		     OX_CTL_EXIT_USAGE);
	cr_assert_eq(run(ox_ctl_topic, LIVE_UNUSED, "topic", "create", "t",
			 "--partitions", "3", "--config", "novalue", NULL),
		     OX_CTL_EXIT_USAGE);
	cr_assert_eq(run(ox_ctl_topic, LIVE_UNUSED, "topic", "create", "t",
			 "u", "--partitions", "3", NULL),
		     OX_CTL_EXIT_USAGE);
	cr_assert_eq(run(ox_ctl_topic, LIVE_UNUSED, "topic", "create", "t",
			 "--partitions", NULL),
		     OX_CTL_EXIT_USAGE);
	cr_assert_eq(run(ox_ctl_topic, LIVE_UNUSED, "topic", "create", "t",
			 "--partitions", "3", "--bogus", NULL),
		     OX_CTL_EXIT_USAGE);
}

Test(commands, topic_create_names_the_missing_flag)
{
	cr_assert_eq(run(ox_ctl_topic, LIVE_UNUSED, "topic", "create", "t",
			 "--replicas", "1", NULL),
		     OX_CTL_EXIT_USAGE);
	fflush(stderr);
	cr_assert_stderr_eq_str("oxbowctl: missing --partitions N "
				"(see oxbowctl topic create --help)\n");
}

Test(commands, topic_reassign_misuse)
{
	cr_assert_eq(run(ox_ctl_topic, LIVE_UNUSED, "topic", "reassign", NULL),
		     OX_CTL_EXIT_USAGE);
	cr_assert_eq(run(ox_ctl_topic, LIVE_UNUSED, "topic", "reassign",
			 "--partition", "0", "--replicas", "1,2,3", NULL),
		     OX_CTL_EXIT_USAGE);
	cr_assert_eq(run(ox_ctl_topic, LIVE_UNUSED, "topic", "reassign", "t",
			 "--replicas", "1,2,3", NULL),
		     OX_CTL_EXIT_USAGE);
	cr_assert_eq(run(ox_ctl_topic, LIVE_UNUSED, "topic", "reassign", "t",
			 "--partition", "-1", "--replicas", "1,2,3", NULL),
		     OX_CTL_EXIT_USAGE);
	cr_assert_eq(run(ox_ctl_topic, LIVE_UNUSED, "topic", "reassign", "t",
			 "--partition", "0", "--replicas", "", NULL),
		     OX_CTL_EXIT_USAGE);
	cr_assert_eq(run(ox_ctl_topic, LIVE_UNUSED, "topic", "reassign", "t",
			 "--partition", "0", "--replicas", "1,,2", NULL),
		     OX_CTL_EXIT_USAGE);
	cr_assert_eq(run(ox_ctl_topic, LIVE_UNUSED, "topic", "reassign", "t",
			 "--partition", "0", "--replicas", NULL),
		     OX_CTL_EXIT_USAGE);
	cr_assert_eq(run(ox_ctl_topic, LIVE_UNUSED, "topic", "reassign", "t",
			 "u", "--partition", "0", "--replicas", "1", NULL),
		     OX_CTL_EXIT_USAGE);
	cr_assert_eq(run(ox_ctl_topic, LIVE_UNUSED, "topic", "reassign", "t",
			 "--partition", "0", "--replicas", "1", "--bogus",
			 NULL),
		     OX_CTL_EXIT_USAGE);
}

Test(commands, topic_reassign_names_the_missing_flag)
{
	cr_assert_eq(run(ox_ctl_topic, LIVE_UNUSED, "topic", "reassign", "t",
			 "--partition", "0", NULL),
		     OX_CTL_EXIT_USAGE);
	fflush(stderr);
	cr_assert_stderr_eq_str("oxbowctl: missing --replicas ID,ID,... "
				"(see oxbowctl topic reassign --help)\n");
}

Test(commands, topic_reassign_names_a_node_listed_twice)
{
	cr_assert_eq(run(ox_ctl_topic, LIVE_UNUSED, "topic", "reassign", "t",
			 "--partition", "0", "--replicas", "1,2,1", NULL),
		     OX_CTL_EXIT_USAGE);
	fflush(stderr);
	cr_assert_stderr_eq_str("oxbowctl: --replicas lists node 1 twice "
				"(see oxbowctl topic reassign --help)\n");
}

Test(commands, topic_reassign_names_a_bad_list)
{
	cr_assert_eq(run(ox_ctl_topic, LIVE_UNUSED, "topic", "reassign", "t",
			 "--partition", "0", "--replicas", "1,x", NULL),
		     OX_CTL_EXIT_USAGE);
	fflush(stderr);
	cr_assert_stderr_eq_str("oxbowctl: --replicas wants node ids such as "
				"1,2,3, not '1,x' "
				"(see oxbowctl topic reassign --help)\n");
}

Test(commands, too_many_configs_is_misuse)
{
	char *argv[OX_CTL_CONFIGS_MAX + 4];
	struct ox_ctl ctl = { .bootstrap = LIVE_UNUSED };
	int argc = 0;

	argv[argc++] = "config";
	argv[argc++] = "t";
	for (int i = 0; i <= OX_CTL_CONFIGS_MAX; i++)
		argv[argc++] = strdup("k=v");
	argv[argc] = NULL;
	// ox_ctl_topic hands "config t k=v ..." to the subcommand.
	char *family[OX_CTL_CONFIGS_MAX + 5];
	family[0] = "topic";
	memcpy(family + 1, argv, (size_t)(argc + 1) * sizeof(*argv));
	cr_assert_eq(ox_ctl_topic(&ctl, argc + 1, family), OX_CTL_EXIT_USAGE);
}

Test(commands, produce_misuse)
{
	cr_assert_eq(run(ox_ctl_produce, LIVE_UNUSED, "produce", NULL),
		     OX_CTL_EXIT_USAGE);
	cr_assert_eq(run(ox_ctl_produce, LIVE_UNUSED, "produce", "t", "--key",
			 "a", "--key-field", "b", NULL),
		     OX_CTL_EXIT_USAGE);
	cr_assert_eq(run(ox_ctl_produce, LIVE_UNUSED, "produce", "t", "--acks",
			 "some", NULL),
		     OX_CTL_EXIT_USAGE);
	cr_assert_eq(run(ox_ctl_produce, LIVE_UNUSED, "produce", "t",
			 "--key-field", "a..b", NULL),
		     OX_CTL_EXIT_USAGE);
	cr_assert_eq(run(ox_ctl_produce, LIVE_UNUSED, "produce", "t",
			 "--partition", "-1", NULL),
		     OX_CTL_EXIT_USAGE);
}

Test(commands, consume_misuse)
{
	cr_assert_eq(run(ox_ctl_consume, LIVE_UNUSED, "consume", "t",
			 "--offset", "1", "--from-beginning", NULL),
		     OX_CTL_EXIT_USAGE);
	cr_assert_eq(run(ox_ctl_consume, LIVE_UNUSED, "consume", "t",
			 "--from-time", "yesterday", NULL),
		     OX_CTL_EXIT_USAGE);
	cr_assert_eq(run(ox_ctl_consume, LIVE_UNUSED, "consume", "t",
			 "--format", "xml", NULL),
		     OX_CTL_EXIT_USAGE);
	cr_assert_eq(run(ox_ctl_consume, LIVE_UNUSED, "consume", "t", "u",
			 NULL),
		     OX_CTL_EXIT_USAGE);
	cr_assert_eq(run(ox_ctl_consume, LIVE_UNUSED, "consume", "t",
			 "--timeout-ms", "-2", NULL),
		     OX_CTL_EXIT_USAGE);
	cr_assert_eq(run(ox_ctl_consume, LIVE_UNUSED, "consume", "t",
			 "--group", "", NULL),
		     OX_CTL_EXIT_USAGE);
}

Test(commands, consume_names_the_bad_time)
{
	cr_assert_eq(run(ox_ctl_consume, LIVE_UNUSED, "consume", "t",
			 "--from-time", "2024-13-01", NULL),
		     OX_CTL_EXIT_USAGE);
	fflush(stderr);
	cr_assert_stderr_eq_str(
		"oxbowctl: --from-time wants ms since the epoch or an ISO-8601 "
		"time, not '2024-13-01' (see oxbowctl consume --help)\n");
}

Test(commands, group_misuse)
{
	cr_assert_eq(run(ox_ctl_group, LIVE_UNUSED, "group", "describe", NULL),
		     OX_CTL_EXIT_USAGE);
	cr_assert_eq(run(ox_ctl_group, LIVE_UNUSED, "group", "describe", "a",
			 "b", NULL),
		     OX_CTL_EXIT_USAGE);
	cr_assert_eq(run(ox_ctl_group, LIVE_UNUSED, "group", "list", "x", NULL),
		     OX_CTL_EXIT_USAGE);
	cr_assert_eq(run(ox_ctl_group, LIVE_UNUSED, "group", "reset", "g",
			 "--topic", "t", NULL),
		     OX_CTL_EXIT_USAGE);
	cr_assert_eq(run(ox_ctl_group, LIVE_UNUSED, "group", "reset", "g",
			 "--to-earliest", NULL),
		     OX_CTL_EXIT_USAGE);
	cr_assert_eq(run(ox_ctl_group, LIVE_UNUSED, "group", "reset", "g",
			 "--topic", "t", "--to-earliest", "--to-offset", "3",
			 NULL),
		     OX_CTL_EXIT_USAGE);
	cr_assert_eq(run(ox_ctl_group, LIVE_UNUSED, "group", "reset", "g",
			 "--topic", "t", "--to-time", "noon", NULL),
		     OX_CTL_EXIT_USAGE);
}

Test(commands, bad_bootstrap_is_misuse)
{
	cr_assert_eq(run(ox_ctl_topic, "no-port-here", "topic", "list", NULL),
		     OX_CTL_EXIT_USAGE);
}

Test(commands, no_broker_is_an_error_exit_1)
{
	cr_assert_eq(run(ox_ctl_topic, DEAD, "topic", "list", NULL),
		     OX_CTL_EXIT_ERROR);
	fflush(stderr);
	cr_assert_stderr_eq_str("oxbowctl: broker unreachable (" DEAD ")\n");
}

Test(commands, no_broker_stops_produce_before_stdin)
{
	cr_assert_eq(run(ox_ctl_produce, DEAD, "produce", "t", NULL),
		     OX_CTL_EXIT_ERROR);
	cr_assert_eq(run(ox_ctl_group, DEAD, "group", "reset", "g", "--topic",
			 "t", "--to-earliest", NULL),
		     OX_CTL_EXIT_ERROR);
}

Test(commands, no_broker_fails_topic_reassign)
{
	cr_assert_eq(run(ox_ctl_topic, DEAD, "topic", "reassign", "t",
			 "--partition", "0", "--replicas", "1,2,3", NULL),
		     OX_CTL_EXIT_ERROR);
	fflush(stderr);
	cr_assert_stderr_eq_str("oxbowctl: broker unreachable (" DEAD ")\n");
	fflush(stdout);
	cr_assert_stdout_eq_str("");
}
