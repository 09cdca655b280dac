// SPDX-License-Identifier: Apache-2.0
//
// The configuration of oxbowd: every key, its default and its checks, read
// from a `key = value` file and from `--key value` flags (flags win).
// oxbowd parses it once at start; the server reads the result. Errors are
// one line in words naming where the bad key came from (FILE:LINE or the
// flag) and the key. It does not touch the data directory or the network:
// it only checks that values are well formed and in range.
#ifndef OX_BROKER_SERVER_CONFIG_H
#define OX_BROKER_SERVER_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "broker/io/io.h"
#include "broker/log/log.h"

// A host:port, with room for a bracketed IPv6 address or a long name.
#define OX_CONFIG_ADDR_MAX 256
// Nodes named in `peers`: the reference cluster has 3, Raft groups of
// more than a few dozen voters are not useful.
#define OX_CONFIG_PEERS_MAX 64
// Nodes of a cluster: every node in `peers` votes in the metadata
// group, whose Raft configuration holds at most this many voters.
#define OX_CONFIG_VOTERS_MAX 7
// The cluster's name, carried in every frame between nodes.
#define OX_CONFIG_CLUSTER_ID_MAX 64
// Room for one error line.
#define OX_CONFIG_ERR_MAX 512
// A config file line; longer ones are an error rather than cut.
#define OX_CONFIG_LINE_MAX 4096
// data.dir must leave room for the files the broker names inside it.
#define OX_CONFIG_DIR_MAX (PATH_MAX - 128)

struct ox_config_peer {
	int32_t id;
	char addr[OX_CONFIG_ADDR_MAX];
};

struct ox_config {
	int32_t node_id;
	char data_dir[OX_CONFIG_DIR_MAX];
	char listen[OX_CONFIG_ADDR_MAX];
	char advertised_listen[OX_CONFIG_ADDR_MAX]; // "" until checked
	char peer_listen[OX_CONFIG_ADDR_MAX];       // "" for none
	struct ox_config_peer peers[OX_CONFIG_PEERS_MAX];
	unsigned npeers;
	char cluster_id[OX_CONFIG_CLUSTER_ID_MAX];
	uint64_t meta_segment_bytes;     // segments of the __meta log
	uint32_t meta_snapshot_entries;  // __meta entries between snapshots
	uint64_t segment_bytes;
	int64_t segment_ms;
	uint32_t index_interval_bytes;
	enum ox_log_fsync fsync;
	int64_t fsync_interval_ms;
	int64_t retention_ms;          // -1: forever
	int64_t retention_bytes;       // -1: no limit
	unsigned cleanup;              // OX_LOG_CLEANUP_* bits
	int64_t delete_retention_ms;
	int64_t retention_check_interval_ms;
	uint32_t num_partitions;
	uint32_t default_replication_factor;
	uint32_t message_max_bytes;
	uint64_t net_memory_bytes; // broker/net's node-wide memory_bytes_max
	enum ox_io_backend io_backend;
};

// Every key at its default (data.dir empty: it has none).
void ox_config_default(struct ox_config *c);

// Sets one key from its text value. Returns 0, or -EINVAL with a sentence
// in err (naming the key, without the source: callers prefix it).
int ox_config_set(struct ox_config *c, const char *key, const char *value,
		  char *err, size_t err_len);

// Reads a `key = value` file (`#` starts a comment, blank lines are
// skipped) into c. Returns 0, or -EINVAL / -errno with "FILE:LINE: ..."
// (or "FILE: ..." when the file cannot be read) in err.
int ox_config_load(struct ox_config *c, const char *path, char *err,
		   size_t err_len);

// Parses oxbowd's arguments: `--config FILE` (read first, whatever its
// position), then every `--key value` or `--key=value` in order, over it.
// `--help` sets *help and stops. Returns 0 or -EINVAL with err filled.
// Does not run ox_config_check.
int ox_config_parse_args(struct ox_config *c, int argc, char **argv,
			 bool *help, char *err, size_t err_len);

// Checks the keys against each other once all are set: data.dir is
// given, advertised.listen defaults to listen, peers (if any) name this
// node and at most OX_CONFIG_VOTERS_MAX nodes, peer.listen is set when
// they name others, the replication factor fits the nodes.
// Returns 0 or -EINVAL with err filled.
int ox_config_check(struct ox_config *c, char *err, size_t err_len);

// Prints usage and every key with its default and meaning.
void ox_config_help(FILE *out);

// Splits "host:port" or "[v6]:port" into host (without brackets) and
// port. Returns 0 or -EINVAL (no port, a port over 65535, an empty or too
// long host).
int ox_config_addr_parse(const char *addr, char *host, size_t host_cap,
			 uint16_t *port);

#endif
