// SPDX-License-Identifier: Apache-2.0
//
// Private structures of liboxbow shared by its files: the parsed
// configuration (conf.c), one TCP connection speaking the framed protocol
// (conn.c), and the synchronous request layer with the metadata cache that
// the admin handle, the consumer and the producer's metadata lookups use
// (client.c). Nothing outside client/ includes this header; the public API
// is client/include/oxbow/oxbow.h.
#ifndef OX_CLIENT_CLIENT_INT_H
#define OX_CLIENT_CLIENT_INT_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "proto/api.pb-c.h"
#include "proto/error.h"
#include "client/include/oxbow/oxbow.h"

// A host name or address literal; DNS names are at most 253 bytes.
#define OX_HOST_MAX 256
// Bootstrap brokers in one list: a cluster has a handful of nodes, 64
// leaves room for large ones while keeping the conf a plain struct.
#define OX_BOOTSTRAP_MAX 64
// bootstrap.servers text; 64 entries of "host:port" fit in practice.
#define OX_BOOTSTRAP_TEXT_MAX 4096
// client.id and group.id; long enough for any sensible name.
#define OX_NAME_MAX 256
// Error text kept per handle for *_last_error().
#define OX_ERRMSG_MAX 512
// A read pulls at least this much from the socket: fetch responses are
// large, so small reads would cost a syscall per few records.
#define OX_CONN_READ_CHUNK (256u << 10)

enum ox_acks { OX_ACKS_ALL = 0, OX_ACKS_LEADER = 1, OX_ACKS_NONE = 2 };
enum ox_reset { OX_RESET_LATEST = 0, OX_RESET_EARLIEST = 1, OX_RESET_NONE = 2 };

struct ox_hostport {
	char host[OX_HOST_MAX];
	uint16_t port;
};

// Every key of the public header, parsed. A plain struct so that handles
// copy it by assignment.
struct ox_conf {
	char bootstrap[OX_BOOTSTRAP_TEXT_MAX];
	struct ox_hostport boot[OX_BOOTSTRAP_MAX];
	size_t boot_n;
	char client_id[OX_NAME_MAX];
	int64_t request_timeout_ms;
	int64_t connect_timeout_ms;
	int acks;
	int64_t linger_ms;
	int64_t batch_size;
	int64_t buffer_memory;
	int64_t max_block_ms;
	int64_t retries;
	int64_t retry_backoff_ms;
	int64_t retry_backoff_max_ms;
	int64_t delivery_timeout_ms;
	int64_t max_in_flight;
	int64_t max_request_size;
	char group_id[OX_NAME_MAX];
	int auto_offset_reset;
	int64_t fetch_min_bytes;
	int64_t fetch_max_wait_ms;
	int64_t fetch_max_bytes;
	int64_t max_partition_fetch_bytes;
	bool check_crcs;
	bool idempotence;
};

// Parses "host:port[,host:port...]" into out[0, *n). Returns 0 or -EINVAL.
int ox_conf_parse_bootstrap(const char *text, struct ox_hostport *out,
			    size_t max, size_t *n);

// Writes a sentence into errstr (if non-NULL and errstr_size > 0).
void ox_errstr_set(char *errstr, size_t errstr_size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

// Milliseconds of CLOCK_MONOTONIC and of the wall clock.
int64_t ox_now_ms(void);
int64_t ox_wall_ms(void);

// ---------------------------------------------------------------------
// One connection: non-blocking socket, an output buffer of whole request
// frames, an input buffer of response bytes.

struct ox_conn {
	int fd;                 // -1 when closed
	bool connecting;        // connect() in progress
	struct ox_hostport addr;
	const char *client_id;  // borrowed from the owner's conf
	uint8_t *wbuf;
	size_t wlen, woff, wcap;
	uint64_t wtotal;        // bytes written to the socket, ever
	uint64_t qtotal;        // bytes queued, ever
	uint8_t *rbuf;
	size_t rstart, rlen, rcap;
	uint64_t next_corr;
	uint8_t *spare;         // a recycled response buffer, reused by next
	size_t spare_cap;
};

// A response frame, copied out of the connection (owned: frame).
struct ox_resp {
	uint64_t corr;
	int err;                  // from the header's error_code
	char errmsg[OX_ERRMSG_MAX];
	uint8_t *frame;           // malloc'ed; body and raw point into it
	size_t frame_cap;
	const uint8_t *body;
	size_t body_len;
	const uint8_t *raw;
	size_t raw_len;
};

void ox_conn_init(struct ox_conn *c, const struct ox_hostport *addr,
		  const char *client_id);
void ox_conn_deinit(struct ox_conn *c);
// Closes the socket and drops buffered bytes both ways.
void ox_conn_close(struct ox_conn *c);
// Starts a non-blocking connect. Returns 0 (connected or in progress, see
// c->connecting) or a negative errno.
int ox_conn_connect_start(struct ox_conn *c);
// Connects, waiting up to timeout_ms. Returns 0 or a negative errno.
int ox_conn_connect(struct ox_conn *c, int64_t timeout_ms);
// Waits for events on the socket until deadline (ox_now_ms() clock).
// Returns 0 (ready or interrupted), -ETIMEDOUT, or a negative errno.
int ox_conn_wait(struct ox_conn *c, short events, int64_t deadline);
// Completes a connect after POLLOUT. Returns 0 or the connect error.
int ox_conn_connect_finish(struct ox_conn *c);
// Appends one request frame: header, body and raw parts copied. Returns 0
// and its correlation id, or -ENOMEM / -OX_ETOOBIG.
int ox_conn_queue(struct ox_conn *c, uint32_t api_key,
		  const ProtobufCMessage *body, const struct iovec *raw,
		  size_t raw_n, uint64_t *corr_out);
// Writes what the socket takes. Returns 0 or a negative errno.
int ox_conn_write(struct ox_conn *c);
static inline bool ox_conn_want_write(const struct ox_conn *c)
{
	return c->connecting || c->woff < c->wlen;
}
// Reads what the socket has. Returns 0, or -ECONNRESET on EOF, or errno.
int ox_conn_read(struct ox_conn *c);
// Takes the next complete response frame into *out. Returns 1, 0 when no
// whole frame is buffered, or a negative error (the stream is broken).
int ox_conn_next(struct ox_conn *c, struct ox_resp *out);
void ox_resp_free(struct ox_resp *r);
// Frees a response, keeping its buffer for the connection's next large
// response: fetch responses are megabytes, and fresh memory for each
// would cost page faults on every byte.
void ox_conn_recycle(struct ox_conn *c, struct ox_resp *r);

// Sends one request and waits for its response, connecting first when
// needed, all within timeout_ms. On a timeout or connection error the
// connection is closed (a late response must not be taken for another).
int ox_conn_call(struct ox_conn *c, int64_t connect_timeout_ms,
		 uint32_t api_key, const ProtobufCMessage *body,
		 int64_t timeout_ms, struct ox_resp *out);

// ---------------------------------------------------------------------
// The synchronous request layer: bootstrap brokers, known nodes.

struct ox_node {
	int32_t id;
	struct ox_conn conn;
};

// The coordinator of one consumer group (FIND_COORDINATOR): the node
// that serves its offsets. A handle works for one group at a time in
// practice (the consumer's group.id), so one is cached.
struct ox_coord {
	bool known;
	bool conn_init;         // conn holds buffers (ox_conn_init ran)
	char group[OX_NAME_MAX];
	int32_t node;
	struct ox_conn conn;
};

struct ox_client {
	struct ox_conf conf;
	struct ox_conn boot;    // a connection to one bootstrap broker
	size_t boot_idx;        // which one
	struct ox_node *nodes;
	size_t nodes_n;
	struct ox_coord coord;
	char last_error[OX_ERRMSG_MAX];
};

int ox_client_init(struct ox_client *cl, const struct ox_conf *conf);
void ox_client_deinit(struct ox_client *cl);

// Calls any broker (the bootstrap list, each in turn) and unpacks the
// response body with desc into *msg (free with
// protobuf_c_message_free_unpacked). Returns 0, the response's error
// (its message kept in last_error), -OX_EUNREACHABLE, or -OX_ECORRUPT.
int ox_client_call_any(struct ox_client *cl, uint32_t api_key,
		       const ProtobufCMessage *body,
		       const ProtobufCMessageDescriptor *desc,
		       ProtobufCMessage **msg);
// Same to one node by id (learned from metadata).
int ox_client_call_node(struct ox_client *cl, int32_t node,
			uint32_t api_key, const ProtobufCMessage *body,
			const ProtobufCMessageDescriptor *desc,
			ProtobufCMessage **msg);
// Calls the coordinator of `group`: found with FIND_COORDINATOR (asked of
// any broker) and cached; on NOT_LEADER, SHUTTING_DOWN, TIMEOUT or a lost
// connection it is forgotten, found again and called again after
// retry.backoff.ms (doubling up to retry.backoff.max.ms) until
// request.timeout.ms has passed since the call began. A broker that does
// not serve FIND_COORDINATOR is called as any broker. Returns as
// ox_client_call_any.
int ox_client_call_group(struct ox_client *cl, const char *group,
			 uint32_t api_key, const ProtobufCMessage *body,
			 const ProtobufCMessageDescriptor *desc,
			 ProtobufCMessage **msg);
// The address of group's coordinator, found when not cached (borrowed
// until the next call on cl). 0, -OX_EUNSUPPORTED (the broker has no
// FIND_COORDINATOR: any broker serves groups), or an error of the lookup.
int ox_client_coordinator(struct ox_client *cl, const char *group,
			  const struct ox_hostport **addr);
// Forgets the cached coordinator (it answered NOT_LEADER, or its
// connection failed) and turns to the next bootstrap broker, so that the
// next lookup asks another node.
void ox_client_coordinator_forget(struct ox_client *cl);
// Whether an error means "ask the coordinator again".
bool ox_client_coord_retriable(int err);

// The address of a node from the last metadata; NULL when unknown.
const struct ox_hostport *ox_client_node_addr(const struct ox_client *cl,
					      int32_t node);

// Metadata for the named topics (all when n is 0), also refreshing the
// node table. *out is freed with protobuf_c_message_free_unpacked.
int ox_client_metadata(struct ox_client *cl, const char *const *topics,
		       size_t n, bool include_internal,
		       Oxbow__MetadataResponse **out);

void ox_client_set_error(struct ox_client *cl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

// The shared start of ox_admin_create and ox_consumer_create: checks out
// and conf, allocates a zeroed handle of `size` bytes whose first member
// is a struct ox_client, and initialises that client from conf (copied).
// Returns the handle (the caller's, freed with free() after
// ox_client_deinit) or NULL with *rc set to -EINVAL or -ENOMEM and a
// sentence in errstr.
void *ox_client_handle_create(size_t size, const void *out,
			      const struct ox_conf *conf, char *errstr,
			      size_t errstr_size, int *rc);

// One LIST_OFFSETS target sent to node: OX_OFFSET_BEGINNING,
// OX_OFFSET_END, or a timestamp (ms >= 0). Returns 0 with the offset in
// *offset_out, or an error whose last_error reads
// "topic[partition]: <what><reason>" (what may be "").
int ox_client_list_offset(struct ox_client *cl, int32_t node,
			  const char *topic, int32_t partition, int64_t spec,
			  const char *what, int64_t *offset_out);

// The repeated GroupOffset field of an OFFSET_FETCH or OFFSET_COMMIT
// request: n messages, each initialised, and the pointer array protobuf-c
// wants. The caller fills topic, partition and offset; the strings stay
// borrowed.
struct ox_req_offsets {
	Oxbow__GroupOffset *v;
	Oxbow__GroupOffset **p;
	size_t n;
};
// Returns 0 or -ENOMEM (r is then empty; ox_req_offsets_free is safe).
int ox_req_offsets_alloc(struct ox_req_offsets *r, size_t n);
void ox_req_offsets_free(struct ox_req_offsets *r);

// Commits the offsets of r for group to its coordinator and maps the
// per-partition results: 0, or the first partition's error (last_error
// "commit: <reason>"), or a request error.
int ox_client_commit(struct ox_client *cl, const char *group,
		     const struct ox_req_offsets *r);
// The first error among a commit response's per-partition results, or 0.
int ox_commit_response_result(const Oxbow__OffsetCommitResponse *r);

#endif
