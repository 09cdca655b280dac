// SPDX-License-Identifier: Apache-2.0
//
// oxbowctl: the command-line client of Oxbow (INTERFACES.md). This file
// reads the global flags, picks the command family and hands it the rest
// of the command line; the families live in topic.c, produce.c,
// consume.c, group.c and cluster.c. Commands that later releases bring
// (processor, table) are unknown commands here, not stubs.
#include <stdlib.h>
#include <string.h>

#include "client/ctl/ctl.h"

static const char usage_text[] =
	"usage: oxbowctl [--bootstrap HOST:PORT[,HOST:PORT...]] COMMAND ...\n"
	"\n"
	"Commands:\n"
	"  topic create NAME --partitions N [--replicas R] [--config k=v]...\n"
	"  topic list | describe NAME | delete NAME | config NAME k=v...\n"
	"  topic reassign NAME --partition P --replicas ID,ID,...\n"
	"  produce TOPIC [--key K | --key-field PATH] [--acks all|leader|none]\n"
	"          [--partition P]          one record per stdin line\n"
	"  consume TOPIC [--group G] [--from-beginning | --offset N | --from-time T]\n"
	"          [--partition P] [--count N] [--timeout-ms MS] [--format value|json]\n"
	"  group list | describe G\n"
	"  group reset G --topic T (--to-earliest | --to-offset N | --to-time T)\n"
	"  cluster status [--format text|json]\n"
	"\n"
	"Global flags (before or after the command):\n"
	"  --bootstrap LIST   brokers to ask first (default $OXBOW_BOOTSTRAP,\n"
	"                     else " OX_CTL_BOOTSTRAP_DEFAULT ")\n"
	"  --help             this text; `oxbowctl COMMAND --help` for a command\n"
	"  --version          the version of oxbowctl and liboxbow\n"
	"\n"
	"Exit status: 0 success, 1 an error (one line on stderr), 2 misuse.\n";

struct family {
	const char *name;
	int (*run)(struct ox_ctl *ctl, int argc, char **argv);
};

static const struct family families[] = {
	{ "topic", ox_ctl_topic },
	{ "produce", ox_ctl_produce },
	{ "consume", ox_ctl_consume },
	{ "group", ox_ctl_group },
	{ "cluster", ox_ctl_cluster },
};

int main(int argc, char **argv)
{
	enum { OPT_VERSION = OX_CTL_OPT_FIRST_LOCAL };
	static const struct option options[] = {
		OX_CTL_GLOBAL_OPTIONS,
		{ "version", no_argument, NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	struct ox_ctl ctl = { .bootstrap = OX_CTL_BOOTSTRAP_DEFAULT };
	const char *env = getenv("OXBOW_BOOTSTRAP");
	if (env != NULL && env[0] != '\0')
		ctl.bootstrap = env;

	// '+': stop at the command word, whose own flags come after it.
	ox_ctl_getopt_reset();
	int opt;
	while ((opt = getopt_long(argc, argv, "+:", options, NULL)) != -1) {
		if (opt == OPT_VERSION) {
			printf("oxbowctl %s\n", ox_version());
			return OX_CTL_EXIT_OK;
		}
		int rc = ox_ctl_global_flag(&ctl, opt, argv, usage_text);
		if (rc >= 0)
			return rc;
	}
	if (optind >= argc) {
		fputs(usage_text, stderr);
		return OX_CTL_EXIT_USAGE;
	}
	const char *name = argv[optind];
	for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
		if (strcmp(name, families[i].name) == 0) {
			ctl.command = families[i].name;
			return families[i].run(&ctl, argc - optind,
					       argv + optind);
		}
	}
	return ox_ctl_misuse(NULL, "unknown command '%s'", name);
}
