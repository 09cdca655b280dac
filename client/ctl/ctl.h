// SPDX-License-Identifier: Apache-2.0
//
// oxbowctl's shared pieces: exit codes, the global flags every command
// accepts, error reporting in words, flag value parsing, and the entry
// point of each command family. main.c dispatches to the commands; each
// command file (topic.c, produce.c, consume.c, group.c, cluster.c) talks
// to the broker through liboxbow's public API only, never through the
// library's internals. Nothing here keeps state between commands: one process runs
// one command.
#ifndef OX_CLIENT_CTL_CTL_H
#define OX_CLIENT_CTL_CTL_H

#include <getopt.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <oxbow/oxbow.h>

// Exit codes (INTERFACES.md): success, an error reported in one line on
// stderr, and misuse (a bad flag, a missing argument, an unknown command).
#define OX_CTL_EXIT_OK 0
#define OX_CTL_EXIT_ERROR 1
#define OX_CTL_EXIT_USAGE 2

// The bootstrap list when neither --bootstrap nor $OXBOW_BOOTSTRAP names one.
#define OX_CTL_BOOTSTRAP_DEFAULT "127.0.0.1:7400"

// A command line gives at most this many `k=v` configs: far more than a
// topic has keys, and it bounds what one request carries.
#define OX_CTL_CONFIGS_MAX 64

// A --replicas list names at most this many nodes: more than any
// replication factor a cluster runs with, and it bounds the list on the
// stack and in one request.
#define OX_CTL_REPLICAS_MAX 64

// Deadlines of one CLI run. A person waits at the terminal: a broker that
// does not answer within these is reported as unreachable rather than
// retried for the library's default half a minute.
#define OX_CTL_CONNECT_TIMEOUT_MS "5000"
#define OX_CTL_REQUEST_TIMEOUT_MS "15000"

// Global flags, accepted before the command and after it. Each command's
// option table lists OX_CTL_GLOBAL_OPTIONS and passes unknown option codes
// to ox_ctl_global_flag.
enum {
	OX_CTL_OPT_BOOTSTRAP = 1000,
	OX_CTL_OPT_HELP,
	OX_CTL_OPT_FIRST_LOCAL, // commands number their own options from here
};
#define OX_CTL_GLOBAL_OPTIONS                                             \
	{ "bootstrap", required_argument, NULL, OX_CTL_OPT_BOOTSTRAP },   \
	{ "help", no_argument, NULL, OX_CTL_OPT_HELP }

struct ox_ctl {
	const char *bootstrap; // borrowed from argv or the environment
	const char *command;   // "topic create", for messages
};

// Prints "oxbowctl: <message>" on stderr and returns OX_CTL_EXIT_ERROR.
int ox_ctl_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

// Prints "oxbowctl: <message>" and a pointer to the command's --help on
// stderr and returns OX_CTL_EXIT_USAGE.
int ox_ctl_misuse(const struct ox_ctl *ctl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

// The line ox_ctl_report prints for a failed library call, without the
// "oxbowctl: " prefix, written into buf (always NUL-terminated). `what`
// says what was being done ("creating topic 'x'"); `topic` and `group`
// (either may be NULL) name the objects the unknown-topic, topic-exists
// and not-found codes refer to; broker_msg (may be NULL or "") is the
// broker's own message, added when it says more than the code. A broker
// that cannot be reached is named by ctl->bootstrap.
void ox_ctl_error_text(char *buf, size_t size, const struct ox_ctl *ctl,
		       int err, const char *what, const char *topic,
		       const char *group, const char *broker_msg);

// Reports a failed library call in words (see ox_ctl_error_text; `what`
// is formatted from what_fmt) and returns OX_CTL_EXIT_ERROR.
int ox_ctl_report(const struct ox_ctl *ctl, int err, const char *topic,
		  const char *group, const char *broker_msg,
		  const char *what_fmt, ...)
	__attribute__((format(printf, 6, 7)));

// Handles a global option or an option getopt rejected. Returns -1 when
// the option was global and parsing goes on, OX_CTL_EXIT_OK after
// printing help (help_text on stdout), or OX_CTL_EXIT_USAGE after
// reporting a bad flag.
int ox_ctl_global_flag(struct ox_ctl *ctl, int opt, char **argv,
		       const char *help_text);

// Takes --bootstrap flags between a command family and its subcommand
// ("topic --bootstrap L list"), shifting argv[1..] past them. Returns -1
// to go on, or OX_CTL_EXIT_USAGE when --bootstrap lacks its value.
int ox_ctl_family_globals(struct ox_ctl *ctl, int *argc, char ***argv);

// Resets getopt for a new parse of argv (argv[0] is the command name).
void ox_ctl_getopt_reset(void);

// A command's own option, with its value (NULL for a flag without one;
// it points into argv, so a parser may split it in place). Returns -1 to
// go on, or an exit code after reporting.
typedef int (*ox_ctl_flag_fn)(struct ox_ctl *ctl, int opt, char *arg,
			      void *opts);

// How a command's words are read by ox_ctl_parse: usually a static
// const table per command.
struct ox_ctl_cmdline {
	const struct option *options; // with OX_CTL_GLOBAL_OPTIONS; NULL:
				      // the global options only
	const char *help;             // printed by --help
	ox_ctl_flag_fn flag;          // the command's own options; may be
				      // NULL when it has none
	int min_pos;                  // positional arguments wanted
	int max_pos;                  // at most; < 0: no limit
	const char *missing;          // what too few names: "topic name"
};

// Parses argv (argv[0] is the command's name): global options and bad
// flags through ox_ctl_global_flag, the command's own through cl->flag
// (handed opts), then the count of positional arguments ("missing
// <cl->missing>", "unexpected argument 'x'"). Returns -1 to go on with
// *first_pos the index of the first positional argument, or an exit code
// after reporting (OX_CTL_EXIT_OK after --help).
int ox_ctl_parse(struct ox_ctl *ctl, int argc, char **argv,
		 const struct ox_ctl_cmdline *cl, void *opts, int *first_pos);

// A subcommand of a command family ("topic create").
struct ox_ctl_subcommand {
	const char *name;    // "create"
	const char *command; // for messages: "topic create"
	int (*run)(struct ox_ctl *ctl, int argc, char **argv);
};

// Runs the subcommand argv[1] names (after any --bootstrap given between
// the family and it) with argv[1..]. No subcommand prints help on stderr
// (OX_CTL_EXIT_USAGE); --help or -h prints it on stdout (OX_CTL_EXIT_OK);
// an unknown one is misuse naming the family.
int ox_ctl_dispatch(struct ox_ctl *ctl, int argc, char **argv,
		    const char *family, const char *help,
		    const struct ox_ctl_subcommand *subs, size_t n);

// Parses a decimal integer in [min, max]. Returns 0 or -EINVAL.
int ox_ctl_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);

// Parses a point in time: milliseconds since the Unix epoch (digits only),
// or an ISO-8601 date-time `YYYY-MM-DD[THH:MM[:SS[.fff]]][Z|+HH:MM|-HH:MM]`
// (UTC when no offset is given; a space may replace the T). Returns 0 or
// -EINVAL.
int ox_ctl_parse_time(const char *s, int64_t *ms_out);

// Splits "k=v" in place into a config entry (s is modified: the '=' becomes
// NUL). Returns 0, or -EINVAL when there is no '=' or the key is empty.
int ox_ctl_parse_config(char *s, struct ox_config_entry *out);

// Parses a comma-separated list of node ids ("1,2,3": decimal digits
// only, each from 0 to INT32_MAX) into ids, in order, without changing s.
// Returns 0 with *n_out ids (at least one), -EINVAL for an empty list or
// a word that is no id, or -E2BIG for more than max. Duplicates are the
// caller's to judge.
int ox_ctl_parse_ids(const char *s, int32_t *ids, size_t max, size_t *n_out);

// Returns a configuration with bootstrap.servers and the CLI's deadlines
// set, or NULL after reporting the error (*exit_out holds the exit code).
struct ox_conf *ox_ctl_conf(const struct ox_ctl *ctl, int *exit_out);

// Sets one conf key the CLI chose itself; a failure is a program error
// reported as such. Returns 0 or OX_CTL_EXIT_ERROR.
int ox_ctl_conf_set(struct ox_conf *conf, const char *key, const char *value);

// Creates an admin handle from ctl. Returns NULL after reporting.
struct ox_admin *ox_ctl_admin(const struct ox_ctl *ctl, int *exit_out);

// Looks the topic up (leaders, partitions, offsets). Returns 0 or an exit
// code after reporting: the usual first step of produce and consume, so
// an unknown topic or a dead broker gets a clear message at once.
int ox_ctl_topic_lookup(const struct ox_ctl *ctl, struct ox_admin *admin,
			const char *topic, struct ox_topic_info **out);

// Creates an admin handle and looks topic up with it. Returns 0 with both
// (the caller frees *info_out with ox_topic_infos_free(*info_out, 1) and
// *admin_out with ox_admin_destroy), or an exit code after reporting,
// with nothing to free.
int ox_ctl_admin_topic(const struct ox_ctl *ctl, const char *topic,
		       struct ox_admin **admin_out,
		       struct ox_topic_info **info_out);

// The number of partitions of topic, checking that partition (< 0: any)
// is one of them. Returns 0 or an exit code after reporting.
int ox_ctl_topic_partitions(const struct ox_ctl *ctl, const char *topic,
			    int64_t partition, size_t *partitions_out);

// Command families. argv[0] is the family's name; each returns an exit code.
int ox_ctl_topic(struct ox_ctl *ctl, int argc, char **argv);
int ox_ctl_produce(struct ox_ctl *ctl, int argc, char **argv);
int ox_ctl_consume(struct ox_ctl *ctl, int argc, char **argv);
int ox_ctl_group(struct ox_ctl *ctl, int argc, char **argv);
int ox_ctl_cluster(struct ox_ctl *ctl, int argc, char **argv);

#endif
