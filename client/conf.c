// SPDX-License-Identifier: Apache-2.0
//
// Client configuration: string keys and values as in Kafka clients, parsed
// and range-checked once in ox_conf_set so that the producer, consumer and
// admin handles read plain typed fields. Cross-key rules (buffer.memory
// against batch.size, say) are checked where a handle is created, since
// keys may be set in any order. Also the small helpers every file uses:
// error strings and clocks.
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client/client_int.h"
#include "proto/assert.h"
#include "proto/batch.h"

void ox_errstr_set(char *errstr, size_t errstr_size, const char *fmt, ...)
{
	va_list ap;

	if (errstr == NULL || errstr_size == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(errstr, errstr_size, fmt, ap);
	va_end(ap);
}

int64_t ox_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t ox_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *ox_version(void)
{
	return "0.1.0";
}

int ox_conf_parse_bootstrap(const char *text, struct ox_hostport *out,
			    size_t max, size_t *n)
{
	const char *p = text;

	*n = 0;
	while (*p != '\0') {
		const char *end = strchr(p, ',');
		size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
		const char *colon = NULL;

		for (size_t i = 0; i < len; i++)
			if (p[i] == ':')
				colon = p + i;
		if (colon == NULL || colon == p || *n == max ||
		    (size_t)(colon - p) >= OX_HOST_MAX)
			return -EINVAL;
		size_t port_len = len - (size_t)(colon - p) - 1;
		unsigned long port = 0;
		if (port_len == 0 || port_len > 5)
			return -EINVAL;
		for (size_t i = 0; i < port_len; i++) {
			char ch = colon[1 + i];
			if (ch < '0' || ch > '9')
				return -EINVAL;
			port = port * 10 + (unsigned long)(ch - '0');
		}
		if (port == 0 || port > 65535)
			return -EINVAL;
		// "[::1]:7400": an IPv6 literal loses its brackets.
		const char *h = p;
		size_t hl = (size_t)(colon - p);
		if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
			h++;
			hl -= 2;
		}
		if (hl == 0)
			return -EINVAL;
		memcpy(out[*n].host, h, hl);
		out[*n].host[hl] = '\0';
		out[*n].port = (uint16_t)port;
		(*n)++;
		if (end == NULL)
			break;
		p = end + 1;
	}
	return *n > 0 ? 0 : -EINVAL;
}

// Numeric keys: where the value goes, its default and its accepted range.
// The bounds keep every derived computation (deadlines, doubling backoff,
// buffer sizes) far from overflow and reject values that cannot work.
struct num_key {
	const char *key;
	size_t off;
	int64_t def;
	int64_t min;
	int64_t max;
};

#define NUM(k, field, d, lo, hi) \
	{ k, offsetof(struct ox_conf, field), d, lo, hi }
// A day: no timeout or delay of this library makes sense beyond it.
#define DAY_MS 86400000

static const struct num_key num_keys[] = {
	NUM("request.timeout.ms", request_timeout_ms, 30000, 1, DAY_MS),
	NUM("socket.connect.timeout.ms", connect_timeout_ms, 10000, 1,
	    DAY_MS),
	NUM("linger.ms", linger_ms, 5, 0, DAY_MS),
	// A batch must hold its header and a small record.
	NUM("batch.size", batch_size, 262144, 128, OX_BATCH_BYTES_MAX),
	NUM("buffer.memory", buffer_memory, 67108864, 1024,
	    INT64_C(1) << 40),
	NUM("max.block.ms", max_block_ms, 60000, 0, DAY_MS),
	NUM("retries", retries, INT32_MAX, 0, INT32_MAX),
	NUM("retry.backoff.ms", retry_backoff_ms, 100, 0, DAY_MS),
	NUM("retry.backoff.max.ms", retry_backoff_max_ms, 1000, 0, DAY_MS),
	NUM("delivery.timeout.ms", delivery_timeout_ms, 120000, 1,
	    INT32_MAX),
	// In-flight requests each hold a slot and their batches: 1000 is
	// beyond any useful pipelining depth.
	NUM("max.in.flight.requests.per.connection", max_in_flight, 5, 1,
	    1000),
	NUM("max.request.size", max_request_size, 1048576, 1024,
	    OX_BATCH_BYTES_MAX),
	NUM("fetch.min.bytes", fetch_min_bytes, 1, 0, INT32_MAX),
	NUM("fetch.max.wait.ms", fetch_max_wait_ms, 500, 0, 600000),
	NUM("fetch.max.bytes", fetch_max_bytes, 52428800, 1024,
	    OX_BATCH_BYTES_MAX),
	NUM("max.partition.fetch.bytes", max_partition_fetch_bytes, 8388608,
	    1024, OX_BATCH_BYTES_MAX),
};

#define NUM_KEYS_N (sizeof(num_keys) / sizeof(num_keys[0]))

struct ox_conf *ox_conf_create(void)
{
	struct ox_conf *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	strcpy(c->bootstrap, "127.0.0.1:7400");
	strcpy(c->boot[0].host, "127.0.0.1");
	c->boot[0].port = 7400;
	c->boot_n = 1;
	strcpy(c->client_id, "oxbow");
	c->acks = OX_ACKS_ALL;
	c->auto_offset_reset = OX_RESET_LATEST;
	c->check_crcs = true;
	c->idempotence = true;
	for (size_t i = 0; i < NUM_KEYS_N; i++) {
		const struct num_key *k = &num_keys[i];
		OX_ASSERT(k->def >= k->min && k->def <= k->max);
		memcpy((char *)c + k->off, &k->def, sizeof(k->def));
	}
	return c;
}

void ox_conf_destroy(struct ox_conf *conf)
{
	free(conf);
}

static int parse_i64(const char *s, int64_t *out)
{
	char *end;
	long long v;

	if (*s == '\0' || *s == ' ' || *s == '+')
		return -EINVAL;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return -EINVAL;
	*out = v;
	return 0;
}

static int bad(char *errstr, size_t size, const char *key, const char *value,
	       const char *why)
{
	ox_errstr_set(errstr, size, "invalid value \"%s\" for %s: %s", value,
		      key, why);
	return -OX_EINVALID_CONFIG;
}

static int set_enum(const char *key, const char *value, const char *const *names,
		    size_t n, int *out, char *errstr, size_t size,
		    const char *expect)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(value, names[i]) == 0) {
			*out = (int)i;
			return 0;
		}
	return bad(errstr, size, key, value, expect);
}

static int set_string(const char *key, const char *value, char *out,
		      size_t cap, bool allow_empty, char *errstr, size_t size)
{
	size_t len = strlen(value);

	if (len >= cap)
		return bad(errstr, size, key, value, "too long");
	if (len == 0 && !allow_empty)
		return bad(errstr, size, key, value, "must not be empty");
	memcpy(out, value, len + 1);
	return 0;
}

int ox_conf_set(struct ox_conf *conf, const char *key, const char *value,
		char *errstr, size_t errstr_size)
{
	static const char *const acks[] = { "all", "leader", "none" };
	static const char *const reset[] = { "latest", "earliest", "none" };
	static const char *const bools[] = { "false", "true" };

	if (conf == NULL || key == NULL || value == NULL) {
		ox_errstr_set(errstr, errstr_size,
			      "conf, key and value must not be NULL");
		return -OX_EINVALID_CONFIG;
	}
	for (size_t i = 0; i < NUM_KEYS_N; i++) {
		const struct num_key *k = &num_keys[i];
		int64_t v;

		if (strcmp(key, k->key) != 0)
			continue;
		if (parse_i64(value, &v) < 0)
			return bad(errstr, errstr_size, key, value,
				   "not an integer");
		if (v < k->min || v > k->max) {
			ox_errstr_set(errstr, errstr_size,
				      "invalid value \"%s\" for %s: must be "
				      "between %" PRId64 " and %" PRId64,
				      value, key, k->min, k->max);
			return -OX_EINVALID_CONFIG;
		}
		memcpy((char *)conf + k->off, &v, sizeof(v));
		return 0;
	}
	if (strcmp(key, "bootstrap.servers") == 0) {
		struct ox_hostport *tmp = malloc(sizeof(conf->boot));
		size_t n;
		int rc;

		if (tmp == NULL)
			return -ENOMEM;
		if (strlen(value) >= sizeof(conf->bootstrap) ||
		    ox_conf_parse_bootstrap(value, tmp, OX_BOOTSTRAP_MAX,
					    &n) < 0) {
			free(tmp);
			return bad(errstr, errstr_size, key, value,
				   "expected host:port[,host:port...] with "
				   "ports 1-65535");
		}
		memcpy(conf->boot, tmp, sizeof(conf->boot));
		conf->boot_n = n;
		free(tmp);
		rc = set_string(key, value, conf->bootstrap,
				sizeof(conf->bootstrap), false, errstr,
				errstr_size);
		OX_ASSERT(rc == 0);
		return 0;
	}
	if (strcmp(key, "client.id") == 0)
		return set_string(key, value, conf->client_id,
				  sizeof(conf->client_id), true, errstr,
				  errstr_size);
	if (strcmp(key, "group.id") == 0)
		return set_string(key, value, conf->group_id,
				  sizeof(conf->group_id), true, errstr,
				  errstr_size);
	if (strcmp(key, "acks") == 0)
		return set_enum(key, value, acks, 3, &conf->acks, errstr,
				errstr_size, "expected all, leader or none");
	if (strcmp(key, "auto.offset.reset") == 0)
		return set_enum(key, value, reset, 3, &conf->auto_offset_reset,
				errstr, errstr_size,
				"expected earliest, latest or none");
	if (strcmp(key, "enable.idempotence") == 0) {
		int b;
		int rc = set_enum(key, value, bools, 2, &b, errstr,
				  errstr_size, "expected true or false");
		if (rc == 0)
			conf->idempotence = b != 0;
		return rc;
	}
	if (strcmp(key, "check.crcs") == 0) {
		int b;
		int rc = set_enum(key, value, bools, 2, &b, errstr,
				  errstr_size, "expected true or false");
		if (rc == 0)
			conf->check_crcs = b != 0;
		return rc;
	}
	ox_errstr_set(errstr, errstr_size, "unknown configuration key \"%s\"",
		      key);
	return -OX_EINVALID_CONFIG;
}
