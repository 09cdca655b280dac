// SPDX-License-Identifier: Apache-2.0
//
// Topic names, topic configuration and the topic metadata file
// (topics.h). The file is text so an operator can read it; a checksum on
// its last line makes damage detectable, and it is only ever replaced
// whole (write a temporary file, fsync, rename, fsync the directory), so
// after a crash it is either the old or the new version.
#include "broker/server/topics.h"
#include "broker/server/server_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "broker/io/file.h"
#include "proto/assert.h"
#include "proto/batch.h"
#include "proto/error.h"

#define FILE_MAGIC "oxbow-topics 1"
#define MS_PER_YEAR (366ll * 24 * 3600 * 1000)

static const char *const key_names[OX_TK_COUNT] = {
	[OX_TK_CLEANUP_POLICY] = "cleanup.policy",
	[OX_TK_DELETE_RETENTION_MS] = "delete.retention.ms",
	[OX_TK_MAX_MESSAGE_BYTES] = "max.message.bytes",
	[OX_TK_RETENTION_BYTES] = "retention.bytes",
	[OX_TK_RETENTION_MS] = "retention.ms",
	[OX_TK_SEGMENT_BYTES] = "segment.bytes",
	[OX_TK_SEGMENT_MS] = "segment.ms",
};

int ox_topic_name_check(const char *name, size_t len)
{
	if (len == 0 || len > OX_TOPIC_NAME_MAX)
		return -EINVAL;
	if ((len == 1 && name[0] == '.') ||
	    (len == 2 && name[0] == '.' && name[1] == '.'))
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '.' || c == '_' ||
			  c == '-';
		if (!ok)
			return -EINVAL;
	}
	return 0;
}

bool ox_topic_name_reserved(const char *name)
{
	return name[0] == '_' && name[1] == '_';
}

const char *ox_topic_key_name(unsigned i)
{
	OX_ASSERT(i < OX_TK_COUNT);
	return key_names[i];
}

static int key_index(const char *key)
{
	for (unsigned i = 0; i < OX_TK_COUNT; i++)
		if (strcmp(key_names[i], key) == 0)
			return (int)i;
	return -1;
}

static int parse_cleanup(const char *v, unsigned *out)
{
	if (strcmp(v, "delete") == 0)
		*out = OX_LOG_CLEANUP_DELETE;
	else if (strcmp(v, "compact") == 0)
		*out = OX_LOG_CLEANUP_COMPACT;
	else if (strcmp(v, "compact,delete") == 0 ||
		 strcmp(v, "delete,compact") == 0)
		*out = OX_LOG_CLEANUP_COMPACT | OX_LOG_CLEANUP_DELETE;
	else
		return -EINVAL;
	return 0;
}

// Range of each numeric key: [lo, hi].
static void key_range(unsigned i, int64_t *lo, int64_t *hi)
{
	switch (i) {
	case OX_TK_DELETE_RETENTION_MS:
		*lo = 0, *hi = INT64_MAX;
		break;
	case OX_TK_MAX_MESSAGE_BYTES:
		*lo = OX_BATCH_HEADER_BYTES + 1, *hi = OX_BATCH_BYTES_MAX;
		break;
	case OX_TK_RETENTION_BYTES:
	case OX_TK_RETENTION_MS:
		*lo = -1, *hi = INT64_MAX;
		break;
	case OX_TK_SEGMENT_BYTES:
		*lo = 1, *hi = (int64_t)OX_LOG_SEGMENT_BYTES_MAX;
		break;
	default:
		*lo = 1, *hi = MS_PER_YEAR;
		break;
	}
}

int ox_topic_config_set(struct ox_topic_config *tc, const char *key,
			const char *value, char *err, size_t err_len)
{
	int64_t x = 0, lo, hi;
	int i = key_index(key);

	if (i < 0) {
		ox_srv_fmt_err(err, err_len,
			"unknown topic config key '%s' (known: partitions, "
			"cleanup.policy, delete.retention.ms, "
			"max.message.bytes, retention.bytes, retention.ms, "
			"segment.bytes, segment.ms)", key);
		return -OX_EINVALID_CONFIG;
	}
	if (i == OX_TK_CLEANUP_POLICY) {
		unsigned c;
		if (parse_cleanup(value, &c) < 0) {
			ox_srv_fmt_err(err, err_len,
				"cleanup.policy '%s' is not delete, compact or "
				"compact,delete", value);
			return -OX_EINVALID_CONFIG;
		}
		tc->cleanup = c;
		tc->set |= 1u << i;
		return 0;
	}
	key_range((unsigned)i, &lo, &hi);
	if (ox_srv_parse_i64(value, lo, hi, &x) < 0) {
		ox_srv_fmt_err(err, err_len,
			"%s '%s' is not a whole number in [%lld, %lld]", key,
			value, (long long)lo, (long long)hi);
		return -OX_EINVALID_CONFIG;
	}
	switch (i) {
	case OX_TK_DELETE_RETENTION_MS:
		tc->delete_retention_ms = x;
		break;
	case OX_TK_MAX_MESSAGE_BYTES:
		tc->max_message_bytes = (uint32_t)x;
		break;
	case OX_TK_RETENTION_BYTES:
		tc->retention_bytes = x;
		break;
	case OX_TK_RETENTION_MS:
		tc->retention_ms = x;
		break;
	case OX_TK_SEGMENT_BYTES:
		tc->segment_bytes = (uint64_t)x;
		break;
	default:
		tc->segment_ms = x;
		break;
	}
	tc->set |= 1u << i;
	return 0;
}

int ox_topic_config_reset(struct ox_topic_config *tc, const char *key,
			  char *err, size_t err_len)
{
	int i = key_index(key);

	if (i < 0) {
		ox_srv_fmt_err(err, err_len,
			"unknown topic config key '%s'", key);
		return -OX_EINVALID_CONFIG;
	}
	tc->set &= ~(1u << i);
	return 0;
}

static bool has(const struct ox_topic_config *tc, unsigned i)
{
	return tc->set & (1u << i);
}

void ox_topic_log_config(const struct ox_topic_config *tc,
			 const struct ox_config *b, struct ox_log_config *out)
{
	ox_log_config_default(out);
	out->segment_bytes = has(tc, OX_TK_SEGMENT_BYTES) ? tc->segment_bytes
							  : b->segment_bytes;
	out->segment_ms = has(tc, OX_TK_SEGMENT_MS) ? tc->segment_ms
						    : b->segment_ms;
	out->index_interval_bytes = b->index_interval_bytes;
	out->fsync = b->fsync;
	out->fsync_interval_ms = b->fsync_interval_ms;
	out->retention_ms = has(tc, OX_TK_RETENTION_MS) ? tc->retention_ms
							: b->retention_ms;
	out->retention_bytes = has(tc, OX_TK_RETENTION_BYTES)
				       ? tc->retention_bytes
				       : b->retention_bytes;
	out->cleanup = has(tc, OX_TK_CLEANUP_POLICY) ? tc->cleanup : b->cleanup;
	out->delete_retention_ms = has(tc, OX_TK_DELETE_RETENTION_MS)
					   ? tc->delete_retention_ms
					   : b->delete_retention_ms;
	out->max_batch_bytes = has(tc, OX_TK_MAX_MESSAGE_BYTES)
				       ? tc->max_message_bytes
				       : b->message_max_bytes;
}

void ox_topic_config_value(const struct ox_topic_config *tc,
			   const struct ox_config *b, unsigned i, char *buf,
			   size_t cap)
{
	struct ox_log_config lc;

	OX_ASSERT(i < OX_TK_COUNT);
	ox_topic_log_config(tc, b, &lc);
	switch (i) {
	case OX_TK_CLEANUP_POLICY:
		snprintf(buf, cap, "%s",
			 lc.cleanup == OX_LOG_CLEANUP_DELETE    ? "delete"
			 : lc.cleanup == OX_LOG_CLEANUP_COMPACT ? "compact"
								: "compact,delete");
		break;
	case OX_TK_DELETE_RETENTION_MS:
		snprintf(buf, cap, "%" PRId64, lc.delete_retention_ms);
		break;
	case OX_TK_MAX_MESSAGE_BYTES:
		snprintf(buf, cap, "%" PRIu32, lc.max_batch_bytes);
		break;
	case OX_TK_RETENTION_BYTES:
		snprintf(buf, cap, "%" PRId64, lc.retention_bytes);
		break;
	case OX_TK_RETENTION_MS:
		snprintf(buf, cap, "%" PRId64, lc.retention_ms);
		break;
	case OX_TK_SEGMENT_BYTES:
		snprintf(buf, cap, "%" PRIu64, lc.segment_bytes);
		break;
	default:
		snprintf(buf, cap, "%" PRId64, lc.segment_ms);
		break;
	}
}

// Appends one topic line to buf (cap bytes, *len used). The overrides
// are written through the same text form ox_topic_config_set reads.
static int put_topic(char *buf, size_t cap, size_t *len,
		     const struct ox_topic_meta *t)
{
	int n = snprintf(buf + *len, cap - *len, "topic %" PRIu64 " %s %u %u",
			 t->id, t->name, t->partitions, t->replicas);
	if (n < 0 || (size_t)n >= cap - *len)
		return -ENOSPC;
	*len += (size_t)n;
	for (unsigned i = 0; i < OX_TK_COUNT; i++) {
		char v[OX_TOPIC_VALUE_MAX];
		if (!has(&t->cfg, i))
			continue;
		ox_topic_config_value(&t->cfg, &(struct ox_config){0}, i, v,
				      sizeof(v));
		n = snprintf(buf + *len, cap - *len, " %s=%s", key_names[i], v);
		if (n < 0 || (size_t)n >= cap - *len)
			return -ENOSPC;
		*len += (size_t)n;
	}
	if (*len + 1 >= cap)
		return -ENOSPC;
	buf[(*len)++] = '\n';
	return 0;
}

int ox_topics_file_write(const char *dir, uint64_t next_id,
			 const struct ox_topic_meta *const *topics, size_t n)
{
	char path[PATH_MAX];
	size_t cap = 4096 + n * 1024, len = 0;
	int rc;

	snprintf(path, sizeof(path), "%s/%s", dir, OX_TOPICS_FILE);
	char *buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	len = (size_t)snprintf(buf, cap, FILE_MAGIC "\nnext-id %" PRIu64 "\n",
			       next_id);
	for (size_t i = 0; i < n; i++) {
		rc = put_topic(buf, cap - 64, &len, topics[i]);
		OX_ASSERT(rc == 0); // cap leaves 1 KiB per topic line
	}
	uint64_t sum = XXH3_64bits(buf, len);
	len += (size_t)snprintf(buf + len, cap - len, "checksum %016" PRIx64 "\n",
				sum);
	rc = ox_file_replace(path, buf, len);
	free(buf);
	return rc;
}

// Parses "topic ID NAME PARTITIONS REPLICAS [key=value]...".
static int parse_topic(char *line, struct ox_topic_meta *t, char *why,
		       size_t why_len)
{
	char *save, *tok[5];
	int64_t id, parts, reps;

	memset(t, 0, sizeof(*t));
	for (int i = 0; i < 5; i++) {
		tok[i] = strtok_r(i == 0 ? line : NULL, " ", &save);
		if (!tok[i]) {
			ox_srv_fmt_err(why, why_len,
				"a topic line is cut short");
			return -OX_ECORRUPT;
		}
	}
	if (strcmp(tok[0], "topic") != 0 ||
	    ox_srv_parse_i64(tok[1], 1, INT64_MAX, &id) < 0 ||
	    ox_topic_name_check(tok[2], strlen(tok[2])) < 0 ||
	    ox_srv_parse_i64(tok[3], 1, OX_TOPIC_PARTITIONS_MAX, &parts) < 0 ||
	    ox_srv_parse_i64(tok[4], 1, 255, &reps) < 0) {
		ox_srv_fmt_err(why, why_len, "a malformed topic line");
		return -OX_ECORRUPT;
	}
	t->id = (uint64_t)id;
	strcpy(t->name, tok[2]);
	t->partitions = (uint32_t)parts;
	t->replicas = (uint32_t)reps;
	char *kv;
	while ((kv = strtok_r(NULL, " ", &save)) != NULL) {
		char *eq = strchr(kv, '=');
		if (!eq) {
			ox_srv_fmt_err(why, why_len,
				"'%s' is not key=value", kv);
			return -OX_ECORRUPT;
		}
		*eq = '\0';
		if (ox_topic_config_set(&t->cfg, kv, eq + 1, why, why_len) < 0)
			return -OX_ECORRUPT;
	}
	return 0;
}

// Finds the checksum line (the last one) and checks it covers the rest.
static int check_sum(char *buf, size_t len, char *err, size_t err_len,
		     const char *path)
{
	if (len == 0 || buf[len - 1] != '\n') {
		ox_srv_fmt_err(err, err_len,
			"%s: damaged: it does not end with a "
			"complete line", path);
		return -OX_ECORRUPT;
	}
	buf[len - 1] = '\0';
	char *last = strrchr(buf, '\n');
	last = last ? last + 1 : buf;
	// Exactly "checksum " and 16 lowercase hex digits, as written: a
	// changed letter case is damage too.
	uint64_t want = 0;
	bool ok = strlen(last) == 25 && strncmp(last, "checksum ", 9) == 0;
	for (int i = 9; ok && i < 25; i++) {
		char c = last[i];
		ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
		want = want << 4 |
		       (uint64_t)(c <= '9' ? c - '0' : c - 'a' + 10);
	}
	if (!ok) {
		ox_srv_fmt_err(err, err_len,
			"%s: damaged: the checksum line is "
			"missing", path);
		return -OX_ECORRUPT;
	}
	if (XXH3_64bits(buf, (size_t)(last - buf)) != want) {
		ox_srv_fmt_err(err, err_len,
			"%s: damaged: the checksum does not "
			"match", path);
		return -OX_ECORRUPT;
	}
	*last = '\0';
	return 0;
}

static int check_dups(const struct ox_topic_meta *t, size_t n)
{
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++)
			if (t[i].id == t[j].id ||
			    strcmp(t[i].name, t[j].name) == 0)
				return -1;
	return 0;
}

int ox_topics_file_read(const char *dir, uint64_t *next_id,
			struct ox_topic_meta **topics, size_t *n, char *err,
			size_t err_len)
{
	char path[PATH_MAX], why[256];
	char *buf = NULL, *save, *line;
	struct ox_topic_meta *t = NULL;
	size_t len = 0, nt = 0;
	unsigned lineno = 0;
	int64_t next = 1;

	*topics = NULL;
	*n = 0;
	*next_id = 1;
	snprintf(path, sizeof(path), "%s/%s", dir, OX_TOPICS_FILE);
	int rc = ox_file_read(path, OX_TOPICS_FILE_BYTES_MAX, (uint8_t **)&buf,
			      &len);
	if (rc == -ENOENT)
		return 0;
	if (rc < 0) {
		ox_srv_fmt_err(err, err_len, "%s: cannot read: %s", path,
			ox_strerror(rc));
		return rc;
	}
	rc = check_sum(buf, len, err, err_len, path);
	if (rc < 0)
		goto fail;
	// At most one topic per line: the line count bounds the array.
	size_t cap = 1;
	for (size_t i = 0; i < len; i++)
		cap += buf[i] == '\n';
	t = calloc(cap, sizeof(*t));
	rc = -ENOMEM;
	if (!t)
		goto fail;
	rc = -OX_ECORRUPT;
	for (line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		lineno++;
		if (lineno == 1 && strcmp(line, FILE_MAGIC) == 0)
			continue;
		if (lineno == 1) {
			ox_srv_fmt_err(err, err_len,
				"%s:1: not an Oxbow topic file",
				path);
			goto fail;
		}
		if (lineno == 2) {
			if (strncmp(line, "next-id ", 8) != 0 ||
			    ox_srv_parse_i64(line + 8, 1, INT64_MAX,
					     &next) < 0) {
				ox_srv_fmt_err(err, err_len,
					"%s:2: bad next-id line",
					path);
				goto fail;
			}
			continue;
		}
		if (nt == OX_TOPICS_MAX ||
		    parse_topic(line, &t[nt], why, sizeof(why)) < 0) {
			ox_srv_fmt_err(err, err_len, "%s:%u: %s", path, lineno,
				nt == OX_TOPICS_MAX ? "too many topics" : why);
			goto fail;
		}
		if ((int64_t)t[nt].id >= next) {
			ox_srv_fmt_err(err, err_len,
				"%s:%u: topic id at or above "
				"next-id", path, lineno);
			goto fail;
		}
		nt++;
	}
	if (lineno < 2) {
		ox_srv_fmt_err(err, err_len,
			"%s: damaged: the header is missing", path);
		goto fail;
	}
	if (check_dups(t, nt) < 0) {
		ox_srv_fmt_err(err, err_len,
			"%s: a topic name or id is listed twice",
			path);
		goto fail;
	}
	free(buf);
	*topics = t;
	*n = nt;
	*next_id = (uint64_t)next;
	return 0;
fail:
	free(buf);
	free(t);
	return rc;
}
