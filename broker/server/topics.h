// SPDX-License-Identifier: Apache-2.0
//
// Topics as the server stores them: name rules, per-topic configuration
// (overrides of the broker's defaults, checked key by key), and the topic
// metadata file under data.dir that makes topics survive restarts
// (README.md, "Topic metadata file"). No logs, no network: the server
// (server.c, admin.c) calls these, and the unit tests call them directly.
#ifndef OX_BROKER_SERVER_TOPICS_H
#define OX_BROKER_SERVER_TOPICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/log/log.h"
#include "broker/server/config.h"

// Kafka's limit, so topic names move between the two systems.
#define OX_TOPIC_NAME_MAX 249
// Partitions of one topic.
#define OX_TOPIC_PARTITIONS_MAX 10000u
// Partitions open on one node: each log holds a pending-append ring and
// file descriptors, so this bounds memory and descriptors per node.
#define OX_NODE_PARTITIONS_MAX 10000u
// Topics on one node (each has at least one partition).
#define OX_TOPICS_MAX OX_NODE_PARTITIONS_MAX
// A config value as text (the longest is a 19-digit number or a policy).
#define OX_TOPIC_VALUE_MAX 32
// The topic metadata file: every topic with its overrides fits easily
// (a line is at most ~600 bytes); a larger file is damage.
#define OX_TOPICS_FILE_BYTES_MAX (16u << 20)

// The name of the metadata file inside data.dir.
#define OX_TOPICS_FILE "topics.meta"

// Topic configuration keys, as bits of ox_topic_config.set.
enum ox_topic_key {
	OX_TK_CLEANUP_POLICY = 0,
	OX_TK_DELETE_RETENTION_MS,
	OX_TK_MAX_MESSAGE_BYTES,
	OX_TK_RETENTION_BYTES,
	OX_TK_RETENTION_MS,
	OX_TK_SEGMENT_BYTES,
	OX_TK_SEGMENT_MS,
	OX_TK_COUNT,
};

// Overrides of the broker defaults; a key whose bit is clear in `set`
// follows the broker's value.
struct ox_topic_config {
	unsigned set;
	unsigned cleanup;
	int64_t delete_retention_ms;
	uint32_t max_message_bytes;
	int64_t retention_bytes;
	int64_t retention_ms;
	uint64_t segment_bytes;
	int64_t segment_ms;
};

// What the metadata file holds per topic.
struct ox_topic_meta {
	char name[OX_TOPIC_NAME_MAX + 1];
	uint64_t id;          // unique for the node's life: names its directory
	uint32_t partitions;
	uint32_t replicas;
	struct ox_topic_config cfg;
};

// 0 when name[0, len) is a valid topic name: 1..249 bytes of
// [A-Za-z0-9._-], not "." or "..". Reserved names (leading "__") pass:
// callers decide with ox_topic_name_reserved.
int ox_topic_name_check(const char *name, size_t len);
bool ox_topic_name_reserved(const char *name);

// Sets one key from text. "partitions" and "replicas" are not handled
// here. Returns 0 or -OX_EINVALID_CONFIG with a sentence in err.
int ox_topic_config_set(struct ox_topic_config *tc, const char *key,
			const char *value, char *err, size_t err_len);

// Returns a key to the broker default. 0 or -OX_EINVALID_CONFIG.
int ox_topic_config_reset(struct ox_topic_config *tc, const char *key,
			  char *err, size_t err_len);

// The log configuration of a partition of a topic with these overrides.
void ox_topic_log_config(const struct ox_topic_config *tc,
			 const struct ox_config *broker,
			 struct ox_log_config *out);

// The name of key i (enum ox_topic_key) and its effective value as text.
const char *ox_topic_key_name(unsigned i);
void ox_topic_config_value(const struct ox_topic_config *tc,
			   const struct ox_config *broker, unsigned i,
			   char *buf, size_t cap);

// Writes the metadata file atomically: DIR/topics.meta.tmp, fsync,
// rename, fsync of DIR. Returns 0 or -errno (the old file then stays).
int ox_topics_file_write(const char *dir, uint64_t next_id,
			 const struct ox_topic_meta *const *topics, size_t n);

// Reads DIR/topics.meta. A missing file is an empty set (0, *n = 0,
// *next_id = 1). Returns 0 with *topics malloc'd (the caller frees it),
// or -OX_ECORRUPT (bad checksum, bad line, duplicate name or id) /
// -errno with a sentence in err naming the file and line.
int ox_topics_file_read(const char *dir, uint64_t *next_id,
			struct ox_topic_meta **topics, size_t *n, char *err,
			size_t err_len);

#endif
