// SPDX-License-Identifier: Apache-2.0
//
// `oxbowctl produce TOPIC`: one record per line of stdin, through a
// liboxbow producer, then the number of records the broker acknowledged
// on stdout. Keys come from --key (the same for every record) or from a
// JSON field of each line (--key-field). The first failure (a line that
// is not JSON, a record the producer refuses, a failed delivery) stops
// reading; records already sent still get their acknowledgement counted.
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "client/ctl/ctl.h"
#include "client/ctl/json.h"

// The longest line taken as one record. The broker refuses records over
// message.max.bytes (1 MiB by default) anyway; past this bound the line is
// reported instead of buffered further.
#define PRODUCE_LINE_MAX (16u << 20)

// How long a send may block for metadata or buffer space, and how long a
// record may take to be acknowledged, retries included: bounded so a
// broker that goes away ends the command with an error, not a hang.
#define PRODUCE_MAX_BLOCK_MS "15000"
#define PRODUCE_DELIVERY_TIMEOUT_MS "30000"

static const char produce_help[] =
	"usage: oxbowctl produce TOPIC [--key K | --key-field PATH]\n"
	"                        [--acks all|leader|none] [--partition P]\n"
	"Sends one record per line of stdin (the newline is not part of the\n"
	"value) and prints the number of records acknowledged as the last line.\n"
	"  --key K           the key of every record (default: no key)\n"
	"  --key-field PATH  take each record's key from a field of the line,\n"
	"                    read as a JSON object; PATH is dotted (user.id).\n"
	"                    A string field gives its text, other values their\n"
	"                    JSON text, null a null key. A line that is not JSON\n"
	"                    or lacks the field is an error.\n"
	"  --acks A          all (default): every in-sync replica has the record;\n"
	"                    leader: the leader has it; none: sent, not awaited\n"
	"  --partition P     send every record to partition P (default: by key\n"
	"                    hash, keyless records spread over partitions)\n";

// Delivery reports run on the producer's thread; the main thread reads
// these after flush.
static atomic_uint_fast64_t acked_count;
static atomic_int delivery_err;
static atomic_uint_fast64_t delivery_err_line;

static void produce_delivered(void *opaque, int err, const char *topic,
			      int32_t partition, int64_t offset)
{
	if (err == 0) {
		atomic_fetch_add(&acked_count, 1);
		return;
	}
	int expected = 0;
	if (atomic_compare_exchange_strong(&delivery_err, &expected, err))
		atomic_store(&delivery_err_line, (uintptr_t)opaque);
}

struct produce_opts {
	const char *topic;
	const char *key;
	const char *key_field;
	const char *acks;
	int64_t partition;
};

enum { OPT_KEY = OX_CTL_OPT_FIRST_LOCAL, OPT_KEY_FIELD, OPT_ACKS,
       OPT_PARTITION };

static int produce_flag(struct ox_ctl *ctl, int opt, char *arg, void *opts)
{
	struct produce_opts *o = opts;
	switch (opt) {
	case OPT_KEY:
		o->key = arg;
		return -1;
	case OPT_KEY_FIELD:
		if (arg[0] == '\0' || arg[0] == '.' ||
		    arg[strlen(arg) - 1] == '.' || strstr(arg, "..") != NULL)
			return ox_ctl_misuse(ctl,
				"--key-field wants a dotted path such as user.id, not '%s'",
				arg);
		o->key_field = arg;
		return -1;
	case OPT_ACKS:
		if (strcmp(arg, "all") != 0 && strcmp(arg, "leader") != 0 &&
		    strcmp(arg, "none") != 0)
			return ox_ctl_misuse(ctl,
				"--acks wants all, leader or none, not '%s'",
				arg);
		o->acks = arg;
		return -1;
	default:
		if (ox_ctl_parse_i64(arg, 0, INT32_MAX, &o->partition) != 0)
			return ox_ctl_misuse(ctl,
				"--partition wants a number from 0, not '%s'",
				arg);
		return -1;
	}
}

static const struct option produce_options[] = {
	OX_CTL_GLOBAL_OPTIONS,
	{ "key", required_argument, NULL, OPT_KEY },
	{ "key-field", required_argument, NULL, OPT_KEY_FIELD },
	{ "acks", required_argument, NULL, OPT_ACKS },
	{ "partition", required_argument, NULL, OPT_PARTITION },
	{ NULL, 0, NULL, 0 },
};

static const struct ox_ctl_cmdline produce_cmdline = {
	produce_options, produce_help, produce_flag, 1, 1, "topic name"
};

static struct ox_producer *make_producer(const struct ox_ctl *ctl,
					 const struct produce_opts *o,
					 int *exit_out)
{
	char errstr[256];
	struct ox_producer *p = NULL;
	struct ox_conf *conf = ox_ctl_conf(ctl, exit_out);
	if (conf == NULL)
		return NULL;
	if (ox_ctl_conf_set(conf, "acks", o->acks) != 0 ||
	    ox_ctl_conf_set(conf, "max.block.ms", PRODUCE_MAX_BLOCK_MS) != 0 ||
	    ox_ctl_conf_set(conf, "delivery.timeout.ms",
			    PRODUCE_DELIVERY_TIMEOUT_MS) != 0) {
		*exit_out = OX_CTL_EXIT_ERROR;
		goto done;
	}
	if (ox_producer_create(&p, conf, errstr, sizeof(errstr)) != 0) {
		*exit_out = ox_ctl_fail("cannot create a producer: %s", errstr);
		p = NULL;
	}
done:
	ox_conf_destroy(conf);
	return p;
}

// Fills the key of m from the line as the options say. keybuf holds at
// least len + 1 bytes. Returns 0 or an exit code after reporting.
static int line_key(const struct produce_opts *o, const char *line,
		    size_t len, uint64_t lineno, char *keybuf,
		    struct ox_message *m)
{
	if (o->key != NULL) {
		m->key = o->key;
		m->key_len = strlen(o->key);
		return 0;
	}
	if (o->key_field == NULL)
		return 0;
	size_t key_len = 0;
	int is_null = 0;
	int rc = ox_ctl_json_field(line, len, o->key_field, keybuf, &key_len,
				   &is_null);
	switch (rc) {
	case OX_CTL_JSON_OK:
		m->key = is_null ? NULL : keybuf;
		m->key_len = key_len;
		return 0;
	case OX_CTL_JSON_INVALID:
		return ox_ctl_fail("line %llu: not JSON",
				   (unsigned long long)lineno);
	case OX_CTL_JSON_NOT_OBJECT:
		return ox_ctl_fail("line %llu: not a JSON object along '%s'",
				   (unsigned long long)lineno, o->key_field);
	default:
		return ox_ctl_fail("line %llu: no field '%s'",
				   (unsigned long long)lineno, o->key_field);
	}
}

// Reads stdin and sends each line. Returns 0 or an exit code.
static int send_lines(const struct ox_ctl *ctl, const struct produce_opts *o,
		      struct ox_producer *p)
{
	char *line = NULL, *keybuf = NULL;
	size_t cap = 0, keycap = 0;
	uint64_t lineno = 0;
	int exit_code = OX_CTL_EXIT_OK;
	ssize_t n;

	while ((n = getline(&line, &cap, stdin)) >= 0) {
		lineno++;
		if (atomic_load(&delivery_err) != 0)
			break;
		size_t len = (size_t)n;
		if (len > 0 && line[len - 1] == '\n')
			len--;
		if (len > PRODUCE_LINE_MAX) {
			exit_code = ox_ctl_fail("line %llu: longer than %u bytes",
						(unsigned long long)lineno,
						PRODUCE_LINE_MAX);
			break;
		}
		if (keycap < len + 1) {
			char *nb = realloc(keybuf, len + 1);
			if (nb == NULL) {
				exit_code = ox_ctl_fail("out of memory");
				break;
			}
			keybuf = nb;
			keycap = len + 1;
		}
		struct ox_message m = {
			.topic = o->topic,
			.partition = o->partition >= 0 ? (int32_t)o->partition
						       : OX_PARTITION_ANY,
			.value = line,
			.value_len = len,
			.cb = produce_delivered,
			.opaque = (void *)(uintptr_t)lineno,
		};
		exit_code = line_key(o, line, len, lineno, keybuf, &m);
		if (exit_code != OX_CTL_EXIT_OK)
			break;
		int rc = ox_producer_send(p, &m);
		if (rc != 0) {
			exit_code = ox_ctl_report(ctl, rc, o->topic, NULL, NULL,
						  "line %llu",
						  (unsigned long long)lineno);
			break;
		}
	}
	if (exit_code == OX_CTL_EXIT_OK && ferror(stdin))
		exit_code = ox_ctl_fail("reading stdin: %s", strerror(errno));
	free(line);
	free(keybuf);
	return exit_code;
}

int ox_ctl_produce(struct ox_ctl *ctl, int argc, char **argv)
{
	struct produce_opts o = { .acks = "all", .partition = -1 };
	size_t partitions;
	int pos;
	int rc = ox_ctl_parse(ctl, argc, argv, &produce_cmdline, &o, &pos);
	if (rc >= 0)
		return rc;
	if (o.key != NULL && o.key_field != NULL)
		return ox_ctl_misuse(ctl, "--key and --key-field exclude each other");
	o.topic = argv[pos];

	// Looking the topic up first turns an unknown topic, a partition out
	// of range or a dead broker into one clear line before stdin is read.
	int exit_code = ox_ctl_topic_partitions(ctl, o.topic, o.partition,
						&partitions);
	if (exit_code != OX_CTL_EXIT_OK)
		return exit_code;
	struct ox_producer *p = make_producer(ctl, &o, &exit_code);
	if (p == NULL)
		return exit_code;
	exit_code = send_lines(ctl, &o, p);
	rc = ox_producer_flush(p, -1);
	ox_producer_destroy(p);

	printf("%llu\n", (unsigned long long)atomic_load(&acked_count));
	fflush(stdout);
	int err = atomic_load(&delivery_err);
	if (exit_code == OX_CTL_EXIT_OK && err != 0)
		exit_code = ox_ctl_report(
			ctl, err, o.topic, NULL, NULL, "line %llu",
			(unsigned long long)atomic_load(&delivery_err_line));
	else if (exit_code == OX_CTL_EXIT_OK && rc != 0)
		exit_code = ox_ctl_report(ctl, rc, o.topic, NULL, NULL,
					  "waiting for acknowledgements");
	return exit_code;
}
