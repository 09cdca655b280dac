// SPDX-License-Identifier: Apache-2.0
//
// oxbowd's configuration keys (config.h). One table lists every key with
// its default, its parser and its help line; defaults are applied through
// the same parsers, so a default can never be a value the parser would
// refuse. Keys of features that are not built yet (metrics, TLS,
// authentication) are refused by name rather than silently ignored.
#include "broker/server/config.h"
#include "broker/server/server_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto/assert.h"
#include "proto/batch.h"

#define MS_PER_DAY (24ll * 3600 * 1000)

// Largest partition count a topic may have (CREATE_TOPICS uses the same).
#define NUM_PARTITIONS_MAX 10000u
// Replication factors the cluster design supports (RF 1, 3 or 5, and the
// values between).
#define REPLICATION_FACTOR_MAX 5u
// Timers longer than a year are a typo, not a setting.
#define MS_MAX (366ll * MS_PER_DAY)
// net.memory.bytes: below 16 MiB a single maximal produce frame would
// hold the whole node back; beyond 1 TiB it is a typo.
#define NET_MEMORY_BYTES_MIN (16ll << 20)
#define NET_MEMORY_BYTES_MAX (1ll << 40)

typedef int (*set_fn)(struct ox_config *c, const char *v, char *err,
		      size_t err_len);

struct key {
	const char *name;
	const char *def; // NULL: no default (required or optional)
	set_fn set;
	const char *help;
};

int ox_srv_parse_i64(const char *v, int64_t lo, int64_t hi, int64_t *out)
{
	char *end;

	if (*v == '\0' || *v == ' ' || *v == '+')
		return -EINVAL;
	errno = 0;
	long long x = strtoll(v, &end, 10);
	if (errno != 0 || *end != '\0' || x < lo || x > hi)
		return -EINVAL;
	*out = x;
	return 0;
}

static int set_int(const char *v, int64_t lo, int64_t hi, int64_t *out,
		   char *err, size_t err_len)
{
	if (ox_srv_parse_i64(v, lo, hi, out) < 0) {
		ox_srv_fmt_err(err, err_len,
			"'%s' is not a whole number in [%lld, %lld]",
			v, (long long)lo, (long long)hi);
		return -EINVAL;
	}
	return 0;
}

// set_int for the keys held in a uint32_t: [lo, hi] must fit one.
static int set_u32(const char *v, int64_t lo, int64_t hi, uint32_t *out,
		   char *err, size_t err_len)
{
	int64_t x;

	OX_ASSERT(lo >= 0 && hi <= UINT32_MAX);
	int rc = set_int(v, lo, hi, &x, err, err_len);
	if (rc == 0)
		*out = (uint32_t)x;
	return rc;
}

int ox_config_addr_parse(const char *addr, char *host, size_t host_cap,
			 uint16_t *port)
{
	const char *colon, *h = addr;
	size_t hlen;

	if (addr[0] == '[') {
		const char *close = strchr(addr, ']');
		if (!close || close[1] != ':')
			return -EINVAL;
		h = addr + 1;
		hlen = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = strrchr(addr, ':');
		if (!colon)
			return -EINVAL;
		hlen = (size_t)(colon - addr);
		if (memchr(addr, ':', hlen))
			return -EINVAL; // an IPv6 address needs brackets
	}
	int64_t p;
	if (hlen == 0 || hlen >= host_cap ||
	    ox_srv_parse_i64(colon + 1, 0, 65535, &p))
		return -EINVAL;
	for (size_t i = 0; i < hlen; i++)
		if (h[i] <= ' ' || h[i] == '@' || h[i] == ',')
			return -EINVAL;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	*port = (uint16_t)p;
	return 0;
}

static int set_addr(char *dst, const char *v, bool empty_ok, char *err,
		    size_t err_len)
{
	char host[OX_CONFIG_ADDR_MAX];
	uint16_t port;

	if (empty_ok && *v == '\0') {
		dst[0] = '\0';
		return 0;
	}
	if (strlen(v) >= OX_CONFIG_ADDR_MAX ||
	    ox_config_addr_parse(v, host, sizeof(host), &port) < 0) {
		ox_srv_fmt_err(err, err_len,
			"'%s' is not HOST:PORT (port 0-65535, IPv6 in brackets)",
			v);
		return -EINVAL;
	}
	strcpy(dst, v);
	return 0;
}

static int k_node_id(struct ox_config *c, const char *v, char *e, size_t n)
{
	int64_t x;
	int rc = set_int(v, 0, INT32_MAX, &x, e, n);
	if (rc == 0)
		c->node_id = (int32_t)x;
	return rc;
}

static int k_data_dir(struct ox_config *c, const char *v, char *e, size_t n)
{
	if (*v == '\0' || strlen(v) >= sizeof(c->data_dir)) {
		ox_srv_fmt_err(e, n,
			"a directory path of 1 to %zu bytes is needed",
			sizeof(c->data_dir) - 1);
		return -EINVAL;
	}
	strcpy(c->data_dir, v);
	return 0;
}

static int k_listen(struct ox_config *c, const char *v, char *e, size_t n)
{
	return set_addr(c->listen, v, false, e, n);
}

static int k_advertised(struct ox_config *c, const char *v, char *e, size_t n)
{
	int rc = set_addr(c->advertised_listen, v, true, e, n);
	if (rc == 0 && *v) {
		char host[OX_CONFIG_ADDR_MAX];
		uint16_t port;
		ox_config_addr_parse(v, host, sizeof(host), &port);
		if (port == 0) {
			ox_srv_fmt_err(e, n,
				"'%s': an advertised port cannot be 0", v);
			return -EINVAL;
		}
	}
	return rc;
}

static int k_peer_listen(struct ox_config *c, const char *v, char *e, size_t n)
{
	return set_addr(c->peer_listen, v, true, e, n);
}

static int k_cluster_id(struct ox_config *c, const char *v, char *e,
			size_t n)
{
	size_t len = strlen(v);

	if (len == 0 || len >= sizeof(c->cluster_id)) {
		ox_srv_fmt_err(e, n, "a cluster id is 1 to %zu characters",
			       sizeof(c->cluster_id) - 1);
		return -EINVAL;
	}
	memcpy(c->cluster_id, v, len + 1);
	return 0;
}

// peers = 1@host:port,2@host:port,...
static int k_peers(struct ox_config *c, const char *v, char *e, size_t n)
{
	struct ox_config_peer peers[OX_CONFIG_PEERS_MAX];
	unsigned np = 0;
	const char *p = v;

	while (*p) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		char item[OX_CONFIG_ADDR_MAX + 16];
		if (len == 0 || len >= sizeof(item) || np == OX_CONFIG_PEERS_MAX) {
			ox_srv_fmt_err(e, n,
				"'%s' is not a list of up to %u ID@HOST:PORT",
				v, OX_CONFIG_PEERS_MAX);
			return -EINVAL;
		}
		memcpy(item, p, len);
		item[len] = '\0';
		char *at = strchr(item, '@');
		int64_t id;
		if (!at) {
			ox_srv_fmt_err(e, n,
				"peer '%s' is not ID@HOST:PORT", item);
			return -EINVAL;
		}
		*at = '\0';
		if (ox_srv_parse_i64(item, 0, INT32_MAX, &id) < 0 ||
		    set_addr(peers[np].addr, at + 1, false, NULL, 0) < 0) {
			*at = '@';
			ox_srv_fmt_err(e, n,
				"peer '%s' is not ID@HOST:PORT", item);
			return -EINVAL;
		}
		for (unsigned i = 0; i < np; i++) {
			if (peers[i].id == id) {
				ox_srv_fmt_err(e, n, "node %lld is named twice",
					(long long)id);
				return -EINVAL;
			}
		}
		peers[np++].id = (int32_t)id;
		p += len;
		if (*p == ',' && *++p == '\0') {
			ox_srv_fmt_err(e, n, "'%s' ends with a comma", v);
			return -EINVAL;
		}
	}
	memcpy(c->peers, peers, sizeof(peers[0]) * np);
	c->npeers = np;
	return 0;
}

static int set_segment_bytes(const char *v, uint64_t *out, char *e, size_t n)
{
	int64_t x;
	int rc = set_int(v, 1, (int64_t)OX_LOG_SEGMENT_BYTES_MAX, &x, e, n);
	if (rc == 0)
		*out = (uint64_t)x;
	return rc;
}

static int k_segment_bytes(struct ox_config *c, const char *v, char *e,
			   size_t n)
{
	return set_segment_bytes(v, &c->segment_bytes, e, n);
}

static int k_meta_segment_bytes(struct ox_config *c, const char *v, char *e,
				size_t n)
{
	return set_segment_bytes(v, &c->meta_segment_bytes, e, n);
}

static int k_meta_snapshot_entries(struct ox_config *c, const char *v,
				   char *e, size_t n)
{
	return set_u32(v, 1, INT32_MAX, &c->meta_snapshot_entries, e, n);
}

static int k_segment_ms(struct ox_config *c, const char *v, char *e, size_t n)
{
	return set_int(v, 1, MS_MAX, &c->segment_ms, e, n);
}

static int k_index_interval(struct ox_config *c, const char *v, char *e,
			    size_t n)
{
	return set_u32(v, 1, 1 << 30, &c->index_interval_bytes, e, n);
}

static int k_fsync(struct ox_config *c, const char *v, char *e, size_t n)
{
	if (strcmp(v, "always") == 0)
		c->fsync = OX_LOG_FSYNC_ALWAYS;
	else if (strcmp(v, "interval") == 0)
		c->fsync = OX_LOG_FSYNC_INTERVAL;
	else {
		ox_srv_fmt_err(e, n, "'%s' is neither always nor interval", v);
		return -EINVAL;
	}
	return 0;
}

static int k_fsync_interval(struct ox_config *c, const char *v, char *e,
			    size_t n)
{
	return set_int(v, 1, 86400000, &c->fsync_interval_ms, e, n);
}

static int k_retention_ms(struct ox_config *c, const char *v, char *e,
			  size_t n)
{
	return set_int(v, -1, INT64_MAX, &c->retention_ms, e, n);
}

static int k_retention_bytes(struct ox_config *c, const char *v, char *e,
			     size_t n)
{
	return set_int(v, -1, INT64_MAX, &c->retention_bytes, e, n);
}

static int k_cleanup(struct ox_config *c, const char *v, char *e, size_t n)
{
	if (strcmp(v, "delete") == 0)
		c->cleanup = OX_LOG_CLEANUP_DELETE;
	else if (strcmp(v, "compact") == 0)
		c->cleanup = OX_LOG_CLEANUP_COMPACT;
	else if (strcmp(v, "compact,delete") == 0 ||
		 strcmp(v, "delete,compact") == 0)
		c->cleanup = OX_LOG_CLEANUP_COMPACT | OX_LOG_CLEANUP_DELETE;
	else {
		ox_srv_fmt_err(e, n,
			"'%s' is not delete, compact or compact,delete",
			v);
		return -EINVAL;
	}
	return 0;
}

static int k_delete_retention(struct ox_config *c, const char *v, char *e,
			      size_t n)
{
	return set_int(v, 0, INT64_MAX, &c->delete_retention_ms, e, n);
}

static int k_retention_check(struct ox_config *c, const char *v, char *e,
			     size_t n)
{
	return set_int(v, 1, MS_MAX, &c->retention_check_interval_ms, e, n);
}

static int k_num_partitions(struct ox_config *c, const char *v, char *e,
			    size_t n)
{
	return set_u32(v, 1, NUM_PARTITIONS_MAX, &c->num_partitions, e, n);
}

static int k_replication(struct ox_config *c, const char *v, char *e,
			 size_t n)
{
	return set_u32(v, 1, REPLICATION_FACTOR_MAX,
		       &c->default_replication_factor, e, n);
}

static int k_message_max(struct ox_config *c, const char *v, char *e,
			 size_t n)
{
	return set_u32(v, OX_BATCH_HEADER_BYTES + 1, OX_BATCH_BYTES_MAX,
		       &c->message_max_bytes, e, n);
}

static int k_net_memory(struct ox_config *c, const char *v, char *e, size_t n)
{
	int64_t x;
	int rc = set_int(v, NET_MEMORY_BYTES_MIN, NET_MEMORY_BYTES_MAX, &x, e,
			 n);
	if (rc == 0)
		c->net_memory_bytes = (uint64_t)x;
	return rc;
}

static int k_io_backend(struct ox_config *c, const char *v, char *e, size_t n)
{
	if (ox_io_backend_parse(v, &c->io_backend) < 0) {
		ox_srv_fmt_err(e, n, "'%s' is neither uring nor sync", v);
		return -EINVAL;
	}
	return 0;
}

static const struct key keys[] = {
	{"node.id", "1", k_node_id, "this node's id"},
	{"data.dir", NULL, k_data_dir,
	 "directory of this node's logs and metadata (required)"},
	{"listen", "127.0.0.1:7400", k_listen,
	 "HOST:PORT for clients; port 0 picks a free one"},
	{"advertised.listen", NULL, k_advertised,
	 "HOST:PORT clients are told to use (default: listen)"},
	{"peer.listen", NULL, k_peer_listen, "HOST:PORT for other nodes"},
	{"peers", NULL, k_peers,
	 "ID@HOST:PORT,... every node's peer listener, this one's too"},
	{"cluster.id", "oxbow", k_cluster_id,
	 "name shared by the cluster's nodes; frames of others are refused"},
	{"meta.log.segment.bytes", "1048576", k_meta_segment_bytes,
	 "roll a segment of the cluster's metadata log at this size"},
	{"meta.snapshot.entries", "4096", k_meta_snapshot_entries,
	 "metadata entries applied between two snapshots, after which the "
	 "metadata log's older segments are deleted"},
	{"log.segment.bytes", "1073741824", k_segment_bytes,
	 "roll a segment at this size"},
	{"log.segment.ms", "604800000", k_segment_ms,
	 "roll a segment this old"},
	{"log.index.interval.bytes", "4096", k_index_interval,
	 "log bytes between offset index entries"},
	{"log.fsync", "always", k_fsync,
	 "always: acknowledge after fdatasync; interval: after the write"},
	{"log.fsync.interval.ms", "1000", k_fsync_interval,
	 "fdatasync period with log.fsync = interval"},
	{"log.retention.ms", "604800000", k_retention_ms,
	 "delete segments older than this (-1: never)"},
	{"log.retention.bytes", "-1", k_retention_bytes,
	 "delete oldest segments beyond this size per partition (-1: no limit)"},
	{"log.cleanup.policy", "delete", k_cleanup,
	 "delete, compact or compact,delete"},
	{"log.delete.retention.ms", "86400000", k_delete_retention,
	 "keep tombstones this long in compacted topics"},
	{"log.retention.check.interval.ms", "300000", k_retention_check,
	 "how often retention and compaction run"},
	{"num.partitions", "1", k_num_partitions,
	 "partitions of a topic created without a count"},
	{"default.replication.factor", "1", k_replication,
	 "replicas of a topic created without a count"},
	{"message.max.bytes", "1048576", k_message_max,
	 "largest batch a topic accepts by default (at most 67108864)"},
	{"net.memory.bytes", "536870912", k_net_memory,
	 "request and response bytes held over all connections (16 MiB-1 TiB)"},
	{"io.backend", "uring", k_io_backend,
	 "uring or sync (uring falls back to sync where unavailable)"},
};

#define NKEYS (sizeof(keys) / sizeof(keys[0]))

void ox_config_default(struct ox_config *c)
{
	OX_ASSERT(c != NULL);
	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < NKEYS; i++) {
		if (keys[i].def) {
			int rc = keys[i].set(c, keys[i].def, NULL, 0);
			OX_ASSERT(rc == 0);
		}
	}
}

int ox_config_set(struct ox_config *c, const char *key, const char *value,
		  char *err, size_t err_len)
{
	char why[OX_CONFIG_ERR_MAX];

	OX_ASSERT(c != NULL && key != NULL && value != NULL);
	for (size_t i = 0; i < NKEYS; i++) {
		if (strcmp(keys[i].name, key) != 0)
			continue;
		why[0] = '\0';
		if (keys[i].set(c, value, why, sizeof(why)) < 0) {
			ox_srv_fmt_err(err, err_len, "key %s: %s", key, why);
			return -EINVAL;
		}
		return 0;
	}
	if (strcmp(key, "metrics.listen") == 0 || strncmp(key, "tls.", 4) == 0 ||
	    strncmp(key, "auth.", 5) == 0) {
		ox_srv_fmt_err(err, err_len,
			"key %s: this feature is not built yet; remove the key",
			key);
		return -EINVAL;
	}
	ox_srv_fmt_err(err, err_len,
		"key %s: unknown key (oxbowd --help lists them)",
		key);
	return -EINVAL;
}

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen(s);
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' ||
			 s[n - 1] == '\r' || s[n - 1] == '\n'))
		s[--n] = '\0';
	return s;
}

static int load_line(struct ox_config *c, char *line, const char *path,
		     unsigned lineno, char *err, size_t err_len)
{
	char why[OX_CONFIG_ERR_MAX];
	char *hash = strchr(line, '#');

	if (hash)
		*hash = '\0';
	char *s = trim(line);
	if (*s == '\0')
		return 0;
	char *eq = strchr(s, '=');
	if (!eq) {
		ox_srv_fmt_err(err, err_len,
			"%s:%u: '%s' is not key = value", path,
			lineno, s);
		return -EINVAL;
	}
	*eq = '\0';
	char *key = trim(s), *value = trim(eq + 1);
	if (*key == '\0') {
		ox_srv_fmt_err(err, err_len,
			"%s:%u: a value without a key", path,
			lineno);
		return -EINVAL;
	}
	if (ox_config_set(c, key, value, why, sizeof(why)) < 0) {
		ox_srv_fmt_err(err, err_len, "%s:%u: %s", path, lineno, why);
		return -EINVAL;
	}
	return 0;
}

int ox_config_load(struct ox_config *c, const char *path, char *err,
		   size_t err_len)
{
	char line[OX_CONFIG_LINE_MAX + 2];
	unsigned lineno = 0;
	int rc = 0;

	OX_ASSERT(c != NULL && path != NULL);
	FILE *f = fopen(path, "r");
	if (!f) {
		rc = -errno;
		ox_srv_fmt_err(err, err_len,
			"%s: cannot read the config file: %s",
			path, strerror(errno));
		return rc;
	}
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		size_t len = strlen(line);
		if (len > OX_CONFIG_LINE_MAX ||
		    (len == sizeof(line) - 1 && line[len - 1] != '\n')) {
			ox_srv_fmt_err(err, err_len,
				"%s:%u: line longer than %u bytes",
				path, lineno, OX_CONFIG_LINE_MAX);
			rc = -EINVAL;
			goto out;
		}
		if (memchr(line, '\0', len) != NULL && strlen(line) != len) {
			rc = -EINVAL;
			goto out;
		}
		rc = load_line(c, line, path, lineno, err, err_len);
		if (rc < 0)
			goto out;
	}
	if (ferror(f)) {
		rc = -EIO;
		ox_srv_fmt_err(err, err_len, "%s: read error", path);
	}
out:
	fclose(f);
	return rc;
}

// The value of flag argv[*i] ("--key=value" or "--key value"); advances
// *i past what it used. NULL when the value is missing.
static const char *flag_value(int argc, char **argv, int *i, char *key,
			      size_t key_cap)
{
	const char *arg = argv[*i] + 2;
	const char *eq = strchr(arg, '=');

	if (eq) {
		size_t n = (size_t)(eq - arg);
		if (n >= key_cap)
			n = key_cap - 1;
		memcpy(key, arg, n);
		key[n] = '\0';
		return eq + 1;
	}
	snprintf(key, key_cap, "%s", arg);
	if (*i + 1 >= argc)
		return NULL;
	*i += 1;
	return argv[*i];
}

int ox_config_parse_args(struct ox_config *c, int argc, char **argv,
			 bool *help, char *err, size_t err_len)
{
	char key[OX_CONFIG_ADDR_MAX], why[OX_CONFIG_ERR_MAX];
	const char *config = NULL;

	*help = false;
	// First pass: --help and --config, so the file sits under the flags
	// wherever it was named.
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			*help = true;
			return 0;
		}
		if (strncmp(argv[i], "--", 2) != 0) {
			ox_srv_fmt_err(err, err_len,
				"'%s': expected --key value (see --help)",
				argv[i]);
			return -EINVAL;
		}
		const char *v = flag_value(argc, argv, &i, key, sizeof(key));
		if (!v) {
			ox_srv_fmt_err(err, err_len,
				"--%s: a value is missing", key);
			return -EINVAL;
		}
		if (strcmp(key, "config") == 0) {
			if (config) {
				ox_srv_fmt_err(err, err_len,
					"--config given twice");
				return -EINVAL;
			}
			config = v;
		}
	}
	if (config && ox_config_load(c, config, err, err_len) < 0)
		return -EINVAL;
	for (int i = 1; i < argc; i++) {
		const char *v = flag_value(argc, argv, &i, key, sizeof(key));
		if (strcmp(key, "config") == 0)
			continue;
		if (ox_config_set(c, key, v, why, sizeof(why)) < 0) {
			ox_srv_fmt_err(err, err_len, "--%s: %s", key, why);
			return -EINVAL;
		}
	}
	return 0;
}

int ox_config_check(struct ox_config *c, char *err, size_t err_len)
{
	if (c->data_dir[0] == '\0') {
		ox_srv_fmt_err(err, err_len,
			"key data.dir: required (--data.dir DIR or data.dir = DIR)");
		return -EINVAL;
	}
	// Without advertised.listen clients are told the listen address; the
	// server puts the bound port in when listen has port 0.
	if (c->advertised_listen[0] == '\0')
		strcpy(c->advertised_listen, c->listen);
	bool self = false;
	for (unsigned i = 0; i < c->npeers; i++)
		self |= c->peers[i].id == c->node_id;
	if (c->npeers > 0 && !self) {
		ox_srv_fmt_err(err, err_len,
			"key peers: does not name this node (%d)", c->node_id);
		return -EINVAL;
	}
	// Every node in peers votes in the metadata group.
	if (c->npeers > OX_CONFIG_VOTERS_MAX) {
		ox_srv_fmt_err(err, err_len,
			"key peers: %u nodes; a cluster has at most %u",
			c->npeers, OX_CONFIG_VOTERS_MAX);
		return -EINVAL;
	}
	if (c->npeers > 1 && c->peer_listen[0] == '\0') {
		ox_srv_fmt_err(err, err_len,
			"key peer.listen: required with several peers");
		return -EINVAL;
	}
	unsigned nodes = c->npeers > 1 ? c->npeers : 1;
	if (c->default_replication_factor > nodes) {
		ox_srv_fmt_err(err, err_len,
			"key default.replication.factor: %u replicas need %u "
			"nodes and this cluster has %u",
			c->default_replication_factor,
			c->default_replication_factor, nodes);
		return -EINVAL;
	}
	return 0;
}

void ox_config_help(FILE *out)
{
	fprintf(out,
		"usage: oxbowd [--config FILE] [--KEY VALUE]...\n"
		"\n"
		"Runs one Oxbow broker node. Keys come from FILE (key = value, "
		"# comments)\nand from --KEY VALUE flags, which win. Keys and "
		"defaults:\n\n");
	for (size_t i = 0; i < NKEYS; i++)
		fprintf(out, "  %-32s %-14s %s\n", keys[i].name,
			keys[i].def ? keys[i].def : "(none)", keys[i].help);
	fprintf(out,
		"\nmetrics.listen, tls.* and auth.* are not built yet and are "
		"refused.\nSIGTERM or SIGINT stops the node cleanly.\n");
}
