// SPDX-License-Identifier: Apache-2.0
//
// `oxbowctl consume TOPIC`: reads records through a liboxbow consumer and
// prints their values, one per line, or one JSON object per record. It
// ends after --count records, when --timeout-ms pass with nothing new, or
// on SIGINT/SIGTERM; with --group it commits the positions it reached
// before exiting, so the next run of the same group goes on from there.
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client/ctl/ctl.h"
#include "client/ctl/json.h"

// With nothing new for this long, consume ends: long enough for the first
// fetch to connect and for a producer writing now to be seen, short enough
// that `consume` of a finished topic returns promptly. -1 waits forever.
#define CONSUME_TIMEOUT_MS_DEFAULT 3000
// Poll in slices this long so a signal or the deadline is noticed soon.
#define CONSUME_POLL_SLICE_MS 200
// Records taken from one poll at most.
#define CONSUME_POLL_MAX 512

static const char consume_help[] =
	"usage: oxbowctl consume TOPIC [--group G]\n"
	"                        [--from-beginning | --offset N | --from-time T]\n"
	"                        [--partition P] [--count N] [--timeout-ms MS]\n"
	"                        [--format value|json]\n"
	"Prints records of TOPIC (every partition, or P) as they arrive.\n"
	"  --group G          read as consumer group G: start at its committed\n"
	"                     offsets and commit the positions reached on exit\n"
	"  --from-beginning   where the group has no committed offset (or with no\n"
	"                     group), start at the first stored record instead of\n"
	"                     the end (only new records)\n"
	"  --offset N         start every partition read at offset N\n"
	"  --from-time T      start at the first record with a timestamp at or\n"
	"                     after T: ms since the epoch or ISO-8601, such as\n"
	"                     2024-05-01T12:00:00Z (UTC unless an offset is given)\n"
	"  --partition P      read partition P only\n"
	"  --count N          stop after N records\n"
	"  --timeout-ms MS    stop when MS pass with no new record (default 3000;\n"
	"                     -1: never, until interrupted)\n"
	"  --format F         value (default): each value on its own line;\n"
	"                     json: {\"partition\":P,\"offset\":O,\"timestamp\":T,\n"
	"                     \"key\":K,\"value\":V} a line, null for a null key or\n"
	"                     value, bytes that are not UTF-8 as \\u00XX\n";

enum start { START_DEFAULT, START_BEGINNING, START_OFFSET, START_TIME };

struct consume_opts {
	const char *topic;
	const char *group;
	enum start start;
	int64_t start_value; // the offset or the time
	int64_t partition;   // -1: all
	int64_t count;       // -1: no limit
	int64_t timeout_ms;
	int json;
};

static volatile sig_atomic_t consume_stop;

static void consume_on_signal(int sig)
{
	(void)sig;
	consume_stop = 1;
}

static int set_start(struct ox_ctl *ctl, struct consume_opts *o,
		     enum start s, int64_t v)
{
	if (o->start != START_DEFAULT)
		return ox_ctl_misuse(ctl, "--from-beginning, --offset and "
				     "--from-time exclude each other");
	o->start = s;
	o->start_value = v;
	return -1;
}

enum { OPT_GROUP = OX_CTL_OPT_FIRST_LOCAL, OPT_BEGINNING, OPT_OFFSET,
       OPT_TIME, OPT_PARTITION, OPT_COUNT, OPT_TIMEOUT, OPT_FORMAT };

static int consume_flag(struct ox_ctl *ctl, int opt, char *arg, void *opts)
{
	struct consume_opts *o = opts;
	int64_t v;
	switch (opt) {
	case OPT_GROUP:
		if (arg[0] == '\0')
			return ox_ctl_misuse(ctl, "--group wants a name");
		o->group = arg;
		return -1;
	case OPT_BEGINNING:
		return set_start(ctl, o, START_BEGINNING, 0);
	case OPT_OFFSET:
		if (ox_ctl_parse_i64(arg, 0, INT64_MAX, &v) != 0)
			return ox_ctl_misuse(ctl,
				"--offset wants an offset from 0, not '%s'", arg);
		return set_start(ctl, o, START_OFFSET, v);
	case OPT_TIME:
		if (ox_ctl_parse_time(arg, &v) != 0)
			return ox_ctl_misuse(ctl,
				"--from-time wants ms since the epoch or an ISO-8601 time, not '%s'",
				arg);
		return set_start(ctl, o, START_TIME, v);
	case OPT_PARTITION:
		if (ox_ctl_parse_i64(arg, 0, INT32_MAX, &o->partition) != 0)
			return ox_ctl_misuse(ctl,
				"--partition wants a number from 0, not '%s'", arg);
		return -1;
	case OPT_COUNT:
		if (ox_ctl_parse_i64(arg, 1, INT64_MAX, &o->count) != 0)
			return ox_ctl_misuse(ctl,
				"--count wants a number from 1, not '%s'", arg);
		return -1;
	case OPT_TIMEOUT:
		if (ox_ctl_parse_i64(arg, -1, INT32_MAX, &o->timeout_ms) != 0)
			return ox_ctl_misuse(ctl,
				"--timeout-ms wants milliseconds (or -1), not '%s'",
				arg);
		return -1;
	default:
		if (strcmp(arg, "json") == 0)
			o->json = 1;
		else if (strcmp(arg, "value") == 0)
			o->json = 0;
		else
			return ox_ctl_misuse(ctl,
				"--format wants value or json, not '%s'", arg);
		return -1;
	}
}

static const struct option consume_options[] = {
	OX_CTL_GLOBAL_OPTIONS,
	{ "group", required_argument, NULL, OPT_GROUP },
	{ "from-beginning", no_argument, NULL, OPT_BEGINNING },
	{ "offset", required_argument, NULL, OPT_OFFSET },
	{ "from-time", required_argument, NULL, OPT_TIME },
	{ "partition", required_argument, NULL, OPT_PARTITION },
	{ "count", required_argument, NULL, OPT_COUNT },
	{ "timeout-ms", required_argument, NULL, OPT_TIMEOUT },
	{ "format", required_argument, NULL, OPT_FORMAT },
	{ NULL, 0, NULL, 0 },
};

static const struct ox_ctl_cmdline consume_cmdline = {
	consume_options, consume_help, consume_flag, 1, 1, "topic name"
};

static struct ox_consumer *make_consumer(const struct ox_ctl *ctl,
					 const struct consume_opts *o,
					 int *exit_out)
{
	char errstr[256];
	struct ox_consumer *c = NULL;
	struct ox_conf *conf = ox_ctl_conf(ctl, exit_out);
	if (conf == NULL)
		return NULL;
	const char *reset = o->start == START_BEGINNING ? "earliest" : "latest";
	if (ox_ctl_conf_set(conf, "auto.offset.reset", reset) != 0 ||
	    (o->group != NULL &&
	     ox_ctl_conf_set(conf, "group.id", o->group) != 0)) {
		*exit_out = OX_CTL_EXIT_ERROR;
		goto done;
	}
	if (ox_consumer_create(&c, conf, errstr, sizeof(errstr)) != 0) {
		*exit_out = ox_ctl_fail("cannot create a consumer: %s", errstr);
		c = NULL;
	}
done:
	ox_conf_destroy(conf);
	return c;
}

// Assigns the partitions to read and moves them to an explicit start.
static int position(const struct ox_ctl *ctl, const struct consume_opts *o,
		    struct ox_consumer *c, size_t partitions)
{
	struct ox_topic_partition tp = { o->topic, (int32_t)o->partition, 0 };
	int rc = o->partition >= 0 ? ox_consumer_assign(c, &tp, 1)
				   : ox_consumer_assign_topic(c, o->topic);
	if (rc != 0)
		return ox_ctl_report(ctl, rc, o->topic, NULL,
				     ox_consumer_last_error(c),
				     "assigning partitions");
	if (o->start != START_OFFSET && o->start != START_TIME)
		return OX_CTL_EXIT_OK;
	for (size_t i = 0; i < partitions; i++) {
		int32_t part = o->partition >= 0 ? (int32_t)o->partition
						 : (int32_t)i;
		rc = o->start == START_OFFSET
			? ox_consumer_seek(c, o->topic, part, o->start_value)
			: ox_consumer_seek_time(c, o->topic, part,
						o->start_value);
		if (rc != 0)
			return ox_ctl_report(ctl, rc, o->topic, NULL,
					     ox_consumer_last_error(c),
					     "seeking partition %d", (int)part);
		if (o->partition >= 0)
			break;
	}
	return OX_CTL_EXIT_OK;
}

static int print_record(const struct consume_opts *o,
			const struct ox_consumer_record *r)
{
	if (!o->json) {
		if (r->value != NULL)
			fwrite(r->value, 1, r->value_len, stdout);
		putchar('\n');
		return ferror(stdout) ? -EIO : 0;
	}
	printf("{\"partition\":%d,\"offset\":%lld,\"timestamp\":%lld,\"key\":",
	       (int)r->partition, (long long)r->offset,
	       (long long)r->timestamp_ms);
	if (r->key == NULL)
		fputs("null", stdout);
	else
		ox_ctl_json_write_string(stdout, r->key, r->key_len);
	fputs(",\"value\":", stdout);
	if (r->value == NULL)
		fputs("null", stdout);
	else
		ox_ctl_json_write_string(stdout, r->value, r->value_len);
	fputs("}\n", stdout);
	return ferror(stdout) ? -EIO : 0;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

// Polls and prints until the count, the idle timeout or a signal.
static int consume_loop(const struct ox_ctl *ctl, const struct consume_opts *o,
			struct ox_consumer *c)
{
	int64_t seen = 0;
	int64_t last_ms = now_ms();
	while (!consume_stop && (o->count < 0 || seen < o->count)) {
		int64_t wait = CONSUME_POLL_SLICE_MS;
		if (o->timeout_ms >= 0) {
			int64_t left = o->timeout_ms - (now_ms() - last_ms);
			if (left <= 0)
				break;
			if (left < wait)
				wait = left;
		}
		size_t max = CONSUME_POLL_MAX;
		if (o->count >= 0 && (uint64_t)(o->count - seen) < max)
			max = (size_t)(o->count - seen);
		const struct ox_consumer_record *recs = NULL;
		int n = ox_consumer_poll(c, (int)wait, &recs, max);
		if (n == -EINTR)
			continue;
		if (n < 0)
			return ox_ctl_report(ctl, n, o->topic, NULL,
					     ox_consumer_last_error(c),
					     "reading records");
		for (int i = 0; i < n; i++) {
			if (print_record(o, &recs[i]) != 0)
				return ox_ctl_fail("writing to stdout: %s",
						   strerror(errno));
		}
		if (n > 0) {
			seen += n;
			last_ms = now_ms();
			fflush(stdout);
		}
	}
	fflush(stdout);
	return OX_CTL_EXIT_OK;
}

int ox_ctl_consume(struct ox_ctl *ctl, int argc, char **argv)
{
	struct consume_opts o = {
		.partition = -1,
		.count = -1,
		.timeout_ms = CONSUME_TIMEOUT_MS_DEFAULT,
	};
	size_t partitions;
	int pos;
	int rc = ox_ctl_parse(ctl, argc, argv, &consume_cmdline, &o, &pos);
	if (rc >= 0)
		return rc;
	o.topic = argv[pos];
	int exit_code = ox_ctl_topic_partitions(ctl, o.topic, o.partition,
						&partitions);
	if (exit_code != OX_CTL_EXIT_OK)
		return exit_code;

	struct sigaction sa = { .sa_handler = consume_on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	struct ox_consumer *c = make_consumer(ctl, &o, &exit_code);
	if (c == NULL)
		return exit_code;
	exit_code = position(ctl, &o, c, partitions);
	if (exit_code == OX_CTL_EXIT_OK)
		exit_code = consume_loop(ctl, &o, c);
	if (exit_code == OX_CTL_EXIT_OK && o.group != NULL) {
		rc = ox_consumer_commit(c, NULL, 0);
		if (rc != 0)
			exit_code = ox_ctl_report(
				ctl, rc, o.topic, o.group,
				ox_consumer_last_error(c),
				"committing offsets of group '%s'", o.group);
	}
	ox_consumer_destroy(c);
	return exit_code;
}
