// SPDX-License-Identifier: Apache-2.0
//
// Helpers every oxbowctl command shares (see ctl.h): messages and exit
// codes, global flags, value parsers (integers, points in time, k=v) and
// the library handles set up the way the CLI wants them.
#include "client/ctl/ctl.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "proto/assert.h"

int ox_ctl_fail(const char *fmt, ...)
{
	va_list ap;
	fflush(stdout);
	fputs("oxbowctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return OX_CTL_EXIT_ERROR;
}

int ox_ctl_misuse(const struct ox_ctl *ctl, const char *fmt, ...)
{
	va_list ap;
	fputs("oxbowctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	if (ctl != NULL && ctl->command != NULL)
		fprintf(stderr, " (see oxbowctl %s --help)\n", ctl->command);
	else
		fputs(" (see oxbowctl --help)\n", stderr);
	return OX_CTL_EXIT_USAGE;
}

static int is_unreachable(int err)
{
	return err == -OX_EUNREACHABLE || err == -ECONNREFUSED ||
	       err == -EHOSTUNREACH || err == -ENETUNREACH ||
	       err == -ECONNRESET || err == -EPIPE;
}

void ox_ctl_error_text(char *buf, size_t size, const struct ox_ctl *ctl,
		       int err, const char *what, const char *topic,
		       const char *group, const char *broker_msg)
{
	const char *extra = broker_msg != NULL ? broker_msg : "";

	OX_ASSERT(buf != NULL && size > 0);
	if (is_unreachable(err))
		snprintf(buf, size, "broker unreachable (%s)", ctl->bootstrap);
	else if (err == -ETIMEDOUT)
		snprintf(buf, size, "%s: no answer from the broker in time (%s)",
			 what, ctl->bootstrap);
	else if (err == -OX_EUNKNOWN_TOPIC && topic != NULL)
		snprintf(buf, size, "unknown topic '%s'", topic);
	else if (err == -OX_ETOPIC_EXISTS && topic != NULL)
		snprintf(buf, size, "topic '%s' already exists", topic);
	else if (err == -OX_ENOTFOUND && group != NULL)
		snprintf(buf, size, "unknown group '%s'", group);
	else if (extra[0] != '\0' && strcmp(extra, ox_strerror(err)) != 0)
		snprintf(buf, size, "%s: %s (%s)", what, ox_strerror(err),
			 extra);
	else
		snprintf(buf, size, "%s: %s", what, ox_strerror(err));
}

int ox_ctl_report(const struct ox_ctl *ctl, int err, const char *topic,
		  const char *group, const char *broker_msg,
		  const char *what_fmt, ...)
{
	// Room for a topic or group name (at most a few hundred bytes) and
	// the broker's message (OX_ERRMSG_MAX in the library, 512).
	char what[512], line[1280];
	va_list ap;

	va_start(ap, what_fmt);
	vsnprintf(what, sizeof(what), what_fmt, ap);
	va_end(ap);
	ox_ctl_error_text(line, sizeof(line), ctl, err, what, topic, group,
			  broker_msg);
	return ox_ctl_fail("%s", line);
}

int ox_ctl_global_flag(struct ox_ctl *ctl, int opt, char **argv,
		       const char *help_text)
{
	switch (opt) {
	case OX_CTL_OPT_BOOTSTRAP:
		if (optarg[0] == '\0')
			return ox_ctl_misuse(ctl, "--bootstrap needs HOST:PORT");
		ctl->bootstrap = optarg;
		return -1;
	case OX_CTL_OPT_HELP:
		fputs(help_text, stdout);
		return OX_CTL_EXIT_OK;
	case ':':
		return ox_ctl_misuse(ctl, "flag '%s' needs a value",
				     argv[optind - 1]);
	default:
		// getopt leaves the offending word just before optind.
		return ox_ctl_misuse(ctl, "unknown flag '%s'", argv[optind - 1]);
	}
}

int ox_ctl_family_globals(struct ox_ctl *ctl, int *argc, char ***argv)
{
	char **v = *argv;
	int n = *argc;
	while (n >= 2) {
		const char *a = v[1];
		if (strncmp(a, "--bootstrap=", 12) == 0 && a[12] != '\0') {
			ctl->bootstrap = a + 12;
			v[1] = v[0];
			v++, n--;
		} else if (strcmp(a, "--bootstrap") == 0) {
			if (n < 3 || v[2][0] == '\0')
				return ox_ctl_misuse(ctl, "--bootstrap needs HOST:PORT");
			ctl->bootstrap = v[2];
			v[2] = v[0];
			v += 2, n -= 2;
		} else {
			break;
		}
	}
	*argc = n;
	*argv = v;
	return -1;
}

void ox_ctl_getopt_reset(void)
{
	// glibc reinitialises fully (permutation state included) on 0.
	optind = 0;
	opterr = 0;
}

int ox_ctl_parse(struct ox_ctl *ctl, int argc, char **argv,
		 const struct ox_ctl_cmdline *cl, void *opts, int *first_pos)
{
	static const struct option globals[] = {
		OX_CTL_GLOBAL_OPTIONS,
		{ NULL, 0, NULL, 0 },
	};
	const struct option *options =
		cl->options != NULL ? cl->options : globals;
	int opt, rc;

	ox_ctl_getopt_reset();
	while ((opt = getopt_long(argc, argv, ":", options, NULL)) != -1) {
		if (opt >= OX_CTL_OPT_FIRST_LOCAL && cl->flag != NULL)
			rc = cl->flag(ctl, opt, optarg, opts);
		else
			rc = ox_ctl_global_flag(ctl, opt, argv, cl->help);
		if (rc >= 0)
			return rc;
	}
	int n = argc - optind;
	if (n < cl->min_pos)
		return ox_ctl_misuse(ctl, "missing %s", cl->missing);
	if (cl->max_pos >= 0 && n > cl->max_pos)
		return ox_ctl_misuse(ctl, "unexpected argument '%s'",
				     argv[optind + cl->max_pos]);
	*first_pos = optind;
	return -1;
}

int ox_ctl_dispatch(struct ox_ctl *ctl, int argc, char **argv,
		    const char *family, const char *help,
		    const struct ox_ctl_subcommand *subs, size_t n)
{
	int rc = ox_ctl_family_globals(ctl, &argc, &argv);
	if (rc >= 0)
		return rc;
	if (argc < 2) {
		fputs(help, stderr);
		return OX_CTL_EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fputs(help, stdout);
		return OX_CTL_EXIT_OK;
	}
	for (size_t i = 0; i < n; i++) {
		if (strcmp(argv[1], subs[i].name) == 0) {
			ctl->command = subs[i].command;
			return subs[i].run(ctl, argc - 1, argv + 1);
		}
	}
	return ox_ctl_misuse(ctl, "unknown %s subcommand '%s'", family,
			     argv[1]);
}

int ox_ctl_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
	char *end = NULL;
	if (s == NULL || s[0] == '\0' || s[0] == ' ')
		return -EINVAL;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

// Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar
// (Howard Hinnant's days_from_civil).
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

// Reads exactly n digits at *p into *out.
static int digits(const char **p, int n, int64_t *out)
{
	int64_t v = 0;
	for (int i = 0; i < n; i++) {
		char ch = (*p)[i];
		if (ch < '0' || ch > '9')
			return -1;
		v = v * 10 + (ch - '0');
	}
	*p += n;
	*out = v;
	return 0;
}

static int days_in_month(int64_t y, int64_t m)
{
	static const int days[12] = { 31, 28, 31, 30, 31, 30,
				      31, 31, 30, 31, 30, 31 };
	int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	return days[m - 1] + (m == 2 && leap);
}

// The "[Z|+HH:MM|-HH:MM]" suffix, as an offset in minutes east of UTC.
static int parse_zone(const char *p, int64_t *minutes)
{
	int64_t hh, mm;
	*minutes = 0;
	if (*p == '\0' || (p[0] == 'Z' && p[1] == '\0'))
		return 0;
	if (*p != '+' && *p != '-')
		return -1;
	int sign = *p == '-' ? -1 : 1;
	p++;
	if (digits(&p, 2, &hh) != 0 || *p++ != ':' ||
	    digits(&p, 2, &mm) != 0 || *p != '\0' || hh > 23 || mm > 59)
		return -1;
	*minutes = sign * (hh * 60 + mm);
	return 0;
}

// Time of day "HH:MM[:SS[.fff]]" at *p, in milliseconds.
static int parse_clock(const char **p, int64_t *ms)
{
	int64_t hh, mi, ss = 0, frac = 0;
	if (digits(p, 2, &hh) != 0 || *(*p)++ != ':' ||
	    digits(p, 2, &mi) != 0 || hh > 23 || mi > 59)
		return -1;
	if (**p == ':') {
		(*p)++;
		if (digits(p, 2, &ss) != 0 || ss > 59)
			return -1;
		if (**p == '.') {
			(*p)++;
			int n = 0;
			int64_t scale = 100;
			while (**p >= '0' && **p <= '9') {
				frac += (**p - '0') * scale;
				scale /= 10;
				(*p)++;
				n++;
			}
			if (n == 0)
				return -1;
		}
	}
	*ms = ((hh * 60 + mi) * 60 + ss) * 1000 + frac;
	return 0;
}

int ox_ctl_parse_time(const char *s, int64_t *ms_out)
{
	const char *p = s;
	int64_t y, m, d, clock_ms = 0, zone_min = 0;
	if (s == NULL || s[0] == '\0')
		return -EINVAL;
	if (strspn(s, "0123456789") == strlen(s))
		return ox_ctl_parse_i64(s, 0, INT64_MAX, ms_out);
	if (digits(&p, 4, &y) != 0 || *p++ != '-' || digits(&p, 2, &m) != 0 ||
	    *p++ != '-' || digits(&p, 2, &d) != 0 || m < 1 || m > 12 ||
	    d < 1 || d > days_in_month(y, m))
		return -EINVAL;
	if (*p == 'T' || *p == 't' || *p == ' ') {
		p++;
		if (parse_clock(&p, &clock_ms) != 0)
			return -EINVAL;
	}
	if (parse_zone(p, &zone_min) != 0)
		return -EINVAL;
	int64_t ms = days_from_civil(y, m, d) * 86400000 + clock_ms -
		     zone_min * 60000;
	if (ms < 0)
		return -EINVAL;
	*ms_out = ms;
	return 0;
}

int ox_ctl_parse_config(char *s, struct ox_config_entry *out)
{
	char *eq = strchr(s, '=');
	if (eq == NULL || eq == s)
		return -EINVAL;
	*eq = '\0';
	out->key = s;
	out->value = eq + 1;
	return 0;
}

int ox_ctl_conf_set(struct ox_conf *conf, const char *key, const char *value)
{
	char errstr[256];
	if (ox_conf_set(conf, key, value, errstr, sizeof(errstr)) != 0)
		return ox_ctl_fail("setting %s=%s: %s", key, value, errstr);
	return 0;
}

struct ox_conf *ox_ctl_conf(const struct ox_ctl *ctl, int *exit_out)
{
	char errstr[256];
	struct ox_conf *conf = ox_conf_create();
	if (conf == NULL) {
		*exit_out = ox_ctl_fail("out of memory");
		return NULL;
	}
	// A bad bootstrap list is the user's input: misuse, in their words.
	if (ox_conf_set(conf, "bootstrap.servers", ctl->bootstrap, errstr,
			sizeof(errstr)) != 0) {
		*exit_out = ox_ctl_misuse(ctl, "bad --bootstrap '%s': %s",
					  ctl->bootstrap, errstr);
		goto fail;
	}
	if (ox_ctl_conf_set(conf, "client.id", "oxbowctl") != 0 ||
	    ox_ctl_conf_set(conf, "socket.connect.timeout.ms",
			    OX_CTL_CONNECT_TIMEOUT_MS) != 0 ||
	    ox_ctl_conf_set(conf, "request.timeout.ms",
			    OX_CTL_REQUEST_TIMEOUT_MS) != 0) {
		*exit_out = OX_CTL_EXIT_ERROR;
		goto fail;
	}
	return conf;
fail:
	ox_conf_destroy(conf);
	return NULL;
}

struct ox_admin *ox_ctl_admin(const struct ox_ctl *ctl, int *exit_out)
{
	char errstr[256];
	struct ox_admin *admin = NULL;
	struct ox_conf *conf = ox_ctl_conf(ctl, exit_out);
	if (conf == NULL)
		return NULL;
	int rc = ox_admin_create(&admin, conf, errstr, sizeof(errstr));
	ox_conf_destroy(conf);
	if (rc != 0) {
		*exit_out = ox_ctl_fail("cannot create an admin client: %s",
					errstr);
		return NULL;
	}
	return admin;
}

int ox_ctl_topic_lookup(const struct ox_ctl *ctl, struct ox_admin *admin,
			const char *topic, struct ox_topic_info **out)
{
	int rc = ox_admin_topic_describe(admin, topic, out);
	if (rc == 0)
		return 0;
	return ox_ctl_report(ctl, rc, topic, NULL, ox_admin_last_error(admin),
			     "looking up topic '%s'", topic);
}

int ox_ctl_admin_topic(const struct ox_ctl *ctl, const char *topic,
		       struct ox_admin **admin_out,
		       struct ox_topic_info **info_out)
{
	int exit_code;
	struct ox_admin *admin = ox_ctl_admin(ctl, &exit_code);
	if (admin == NULL)
		return exit_code;
	exit_code = ox_ctl_topic_lookup(ctl, admin, topic, info_out);
	if (exit_code != OX_CTL_EXIT_OK) {
		ox_admin_destroy(admin);
		return exit_code;
	}
	*admin_out = admin;
	return OX_CTL_EXIT_OK;
}

int ox_ctl_topic_partitions(const struct ox_ctl *ctl, const char *topic,
			    int64_t partition, size_t *partitions_out)
{
	struct ox_admin *admin = NULL;
	struct ox_topic_info *info = NULL;
	int exit_code = ox_ctl_admin_topic(ctl, topic, &admin, &info);
	if (exit_code != OX_CTL_EXIT_OK)
		return exit_code;
	size_t partitions = info->partition_count;
	ox_topic_infos_free(info, 1);
	ox_admin_destroy(admin);
	if (partition >= 0 && (uint64_t)partition >= partitions)
		return ox_ctl_fail("topic '%s' has no partition %lld (it has %zu)",
				   topic, (long long)partition, partitions);
	*partitions_out = partitions;
	return OX_CTL_EXIT_OK;
}

int ox_ctl_parse_ids(const char *s, int32_t *ids, size_t max, size_t *n_out)
{
	// An id has at most 10 digits; a longer word is no id at all.
	char word[16];
	size_t n = 0;

	OX_ASSERT(ids != NULL && n_out != NULL);
	if (s == NULL || s[0] == '\0')
		return -EINVAL;
	for (const char *p = s;; p++) {
		size_t len = strcspn(p, ",");
		int64_t v;
		if (len == 0 || len >= sizeof(word))
			return -EINVAL;
		memcpy(word, p, len);
		word[len] = '\0';
		if (strspn(word, "0123456789") != len ||
		    ox_ctl_parse_i64(word, 0, INT32_MAX, &v) != 0)
			return -EINVAL;
		if (n == max)
			return -E2BIG;
		ids[n++] = (int32_t)v;
		p += len;
		if (*p == '\0')
			break;
	}
	*n_out = n;
	return 0;
}
