// SPDX-License-Identifier: Apache-2.0
//
// oxbowctl's shared pieces: exit codes, the global flags every command
// accepts, error reporting in words, flag value parsing, and the entry
// point of each command family. main.c dispatches to the commands; each
// command file (topic.c, produce.c, consume.c, group.c) talks to the broker
// through liboxbow's public API only, never through the library's
// internals. Nothing here keeps state between commands: one process runs
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

// Reports a failed library call in words and returns OX_CTL_EXIT_ERROR.
// `what` says what was being done ("creating topic 'x'"); `topic` and
// `group` (either may be NULL) name the objects the unknown-topic and
// not-found codes refer to; broker_msg (may be NULL or "") is the
// broker's own message, added when it says more than the code.
int ox_ctl_report(const struct ox_ctl *ctl, int err, const char *what,
		  const char *topic, const char *group, const char *broker_msg);

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

// Command families. argv[0] is the family's name; each returns an exit code.
int ox_ctl_topic(struct ox_ctl *ctl, int argc, char **argv);
int ox_ctl_produce(struct ox_ctl *ctl, int argc, char **argv);
int ox_ctl_consume(struct ox_ctl *ctl, int argc, char **argv);
int ox_ctl_group(struct ox_ctl *ctl, int argc, char **argv);

#endif
