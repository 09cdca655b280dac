// SPDX-License-Identifier: Apache-2.0
//
// An in-process fake broker for the liboxbow unit tests: a thread with a
// listening socket on 127.0.0.1 (port 0) that speaks the frames of
// proto/FRAMING.md and the bodies of proto/api.proto for one topic held in
// memory. Tests script it through the fields below (under fb_lock): errors
// to answer produce requests with, silence, raw batches to serve. It
// checks what it receives with the proto codec, so a test also sees
// whether the client sent well-formed batches.
#ifndef OX_TESTS_CLIENT_FAKE_BROKER_H
#define OX_TESTS_CLIENT_FAKE_BROKER_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FB_PARTITIONS_MAX 16
#define FB_BATCHES_MAX 4096
#define FB_REPLICAS_MAX 16

struct fb_batch {
	uint8_t *bytes;
	size_t len;
	int64_t base;
	int64_t last;
	uint32_t count;
};

struct fb_part {
	struct fb_batch batches[FB_BATCHES_MAX];
	size_t n;
	int64_t next_offset;
	// An idempotent producer's next sequence here, as a broker checks
	// it: a batch past it is refused (OUT_OF_ORDER_SEQUENCE).
	int64_t producer_id;
	int32_t producer_epoch;
	int32_t next_sequence;
};

struct fb {
	pthread_t thread;
	pthread_mutex_t lock;
	int listen_fd;
	int stop_fd[2];
	uint16_t port;
	char bootstrap[64];
	char topic[64];
	uint32_t partitions;
	struct fb_part parts[FB_PARTITIONS_MAX];
	// Script.
	int produce_fail_code;     // ErrorCode answered per batch ...
	int produce_fail_times;    // ... this many requests (-1: always)
	bool produce_silent;       // never answer produce requests
	bool metadata_unknown;     // answer UNKNOWN_TOPIC for the topic
	bool discard;              // assign offsets but keep no batches
	int cluster_status_code;   // ErrorCode answered to CLUSTER_STATUS
	int32_t meta_leader;       // CLUSTER_STATUS's metadata leader [2]
	int64_t producer_id;       // INIT_PRODUCER_ID's answer; 0: unsupported
	int lost_acks;             // store this many produce requests' batches
				   // but answer NOT_LEADER (an ack lost)
	uint16_t coordinator_port; // FIND_COORDINATOR names 127.0.0.1 at this
				   // port (node coordinator_id); 0: the API
				   // is unsupported
	int32_t coordinator_id;
	int offsets_not_leader;    // answer this many OFFSET_COMMIT and
				   // OFFSET_FETCH requests NOT_LEADER
	int reassign_code;         // ErrorCode of REASSIGN_PARTITION's
	char reassign_message[128]; // TopicResult, with this message
	bool reassign_unsupported; // answer it UNSUPPORTED_VERSION (an old
				   // broker)
	bool moving[FB_PARTITIONS_MAX]; // CLUSTER_STATUS shows these moving
	// The lists of accepted reassignments, which CLUSTER_STATUS then
	// gives as the partitions' replicas (targets_n 0: 3,2,1).
	int32_t targets[FB_PARTITIONS_MAX][FB_REPLICAS_MAX];
	size_t targets_n[FB_PARTITIONS_MAX];
	// Observations.
	int produce_requests;
	int produce_batches;
	int metadata_requests;
	int init_producer_requests;
	int find_coordinator_requests;
	int offset_requests;       // OFFSET_COMMIT and OFFSET_FETCH
	int bad_batches;           // batches that failed ox_batch_verify
	int reassign_requests;     // REASSIGN_PARTITION requests, the last
	char reassign_topic[64];   // one as received below
	int32_t reassign_partition;
	int32_t reassign_replicas[FB_REPLICAS_MAX];
	size_t reassign_replica_count;
	int64_t committed[FB_PARTITIONS_MAX];
};

// Starts a fake broker serving `topic` with `partitions` partitions.
// CLUSTER_STATUS describes a three-node cluster as node 1 sees it, nodes
// and partitions in descending order (clients sort them): node 1 at
// fb->bootstrap (peer listener port + 1) and node 2 reachable, node 3
// not; metadata leader fb->meta_leader in term 7; every partition of the
// topic with replicas 3,2,1 and its end offset as high watermark,
// partition 0 led by node 1 with all three in sync, every other one with
// in-sync 2,1 (under-replicated) and led by node 2, except the last one
// of two or more, which has no leader; fb->moving[p] marks partition p
// moving. REASSIGN_PARTITION answers reassign_code (0: a partition of
// the topic is accepted and from then on shows as moving, its replicas
// the list received; another is UNKNOWN_TOPIC, an empty list or one of
// more than FB_REPLICAS_MAX INVALID_REQUEST).
struct fb *fb_start(const char *topic, uint32_t partitions);
void fb_stop(struct fb *fb);

// Appends raw bytes as one stored batch of partition p (they are served
// to fetches as they are, corrupt or not); base/last/count describe them.
void fb_append_raw(struct fb *fb, uint32_t p, const void *bytes, size_t len,
		   int64_t base, int64_t last, uint32_t count);

// Builds a batch of n records with values "v<offset>" at base offset
// `base`; control makes it a control batch. Returns its length; the
// caller frees *out.
size_t fb_make_batch(uint8_t **out, int64_t base, uint32_t n, bool control);

#endif
