// SPDX-License-Identifier: Apache-2.0
//
// Client connections of one shard: a listener, its connections, frame
// reading into bounded buffers, and responses written back. broker/net
// turns bytes into whole request frames (proto/FRAMING.md) and hands each
// one to the handler; it knows nothing of what the APIs mean. The server
// (broker/server) answers each request, now or later, with
// ox_net_respond(). Everything runs on the thread that owns the io loop.
//
// Limits (each bounds memory a client can make us hold):
//   - a frame over OX_FRAME_BYTES_MAX, a header that does not fit, or a
//     header protobuf-c cannot parse closes the connection (logged);
//   - a connection stops being read while its requests held by the handler
//     total more than inflight_bytes_max bytes or inflight_max requests, or
//     while more than send_bytes_max response bytes wait to be sent: the
//     kernel's socket buffers then push back on the client. Reading
//     resumes when it drops below.
//   - node-wide, while the request bytes held (frames handed to the
//     handler and not ended, and partly received big frames) plus the
//     response bytes queued, summed over every connection, are at or
//     over memory_bytes_max, no connection that holds any of them is
//     read; one that holds none may still take one request at a time,
//     so clients that never read their responses cannot stall the
//     others. Reading resumes when the sum drops below. Requests already
//     taken are never dropped or failed for it. The sum can pass the
//     budget by at most one request and its response per connection.
//     The fixed 64 KiB read buffers (conns_max of them) are not counted.
//   - at most conns_max connections; more are accepted and closed at once.
#ifndef OX_BROKER_NET_NET_H
#define OX_BROKER_NET_NET_H

#include <stddef.h>
#include <stdint.h>

struct sockaddr_in;

struct ox_io;
struct ox_net;
struct ox_net_req;

// What a request frame says. Every pointer is borrowed from the request
// and valid until it is ended (ox_net_respond, ox_net_finish,
// ox_net_reject): a handler may keep the request, and point into raw
// (say, batches being appended), across loop iterations.
struct ox_net_req_info {
	uint32_t api_key;        // oxbow.ApiKey, unchecked: the handler decides
	uint32_t api_version;
	uint64_t correlation_id;
	const char *client_id;   // NUL-terminated, maybe empty
	uint64_t conn_id;        // unique per connection for the net's life
	const uint8_t *body;     // the API body (proto/wire.h payload split)
	size_t body_len;
	uint8_t *raw;            // raw bytes after the body; writable, so
	size_t raw_len;          // batches can be stamped in place
};

// Called once per complete request frame whose header parsed; the
// handler owns `req` and must end it exactly once. A payload whose body
// prefix is malformed is not passed on: net answers INVALID_REQUEST itself.
typedef void (*ox_net_handler)(void *arg, struct ox_net_req *req);

struct ox_net_opts {
	const char *listen;          // "host:port"; port 0 picks a free port
	uint32_t conns_max;          // 0: 1024
	uint32_t inflight_max;       // requests per connection; 0: 256
	size_t inflight_bytes_max;   // per connection; 0: 128 MiB
	size_t send_bytes_max;       // per connection; 0: 64 MiB
	size_t memory_bytes_max;     // the whole net (see Limits); 0: 512 MiB
	ox_net_handler handler;
	void *handler_arg;
};

// Binds and listens (SO_REUSEADDR) and starts accepting on io. A port in
// use is waited for, up to 2 s (a process that just died may still hold
// it for a moment). Borrows io (it must outlive the net) and copies
// opts. Returns 0, -EINVAL (opts or an unparsable address), -ENOMEM, or
// the errno of socket/bind/listen (-EADDRINUSE). The caller owns *out
// and frees it with ox_net_destroy.
int ox_net_create(struct ox_net **out, struct ox_io *io,
		  const struct ox_net_opts *opts);

// Parses "host:port": host a dotted quad or "localhost", port 0 to 65535
// in decimal. Returns 0 or -EINVAL (NULL or anything else). The net's
// listener and broker/peer's links take addresses through it.
int ox_net_addr_parse(const char *s, struct sockaddr_in *out);

// The port actually bound (useful with port 0).
uint16_t ox_net_port(const struct ox_net *net);

// Stops accepting new connections; existing ones keep being served.
void ox_net_stop_accepting(struct ox_net *net);

// Connections open now, and request frames received since create.
uint32_t ox_net_conn_count(const struct ox_net *net);
uint64_t ox_net_requests_total(const struct ox_net *net);

// Open connections not being read now because of back-pressure (their
// inflight or send limits, or the node-wide memory_bytes_max): a gauge
// for metrics, and what tests watch.
uint32_t ox_net_conns_paused(const struct ox_net *net);

// Request and response bytes the net holds now, the sum that
// memory_bytes_max bounds (see Limits): a gauge for metrics and tests.
size_t ox_net_memory_bytes(const struct ox_net *net);

// Arms again what the net could not when the io loop's pool of
// operations was full: the kick of connections waiting to be read or
// written again. The net tries from its own callbacks too, but a net
// whose every connection waits has none: its owner calls this from a
// periodic timer, so no connection stays unread.
void ox_net_poke(struct ox_net *net);

// Closes the listener and every connection (running the io loop until
// their operations complete) and frees the net. Requests the handler
// still holds stay valid; ending them later frees them without sending.
// Must not be called from a handler or an io callback. NULL is a no-op.
void ox_net_destroy(struct ox_net *net);

// The request's frame, borrowed (see struct ox_net_req_info).
const struct ox_net_req_info *ox_net_req_info(const struct ox_net_req *req);

// Whether the request's connection is still open (a long-poll can stop
// waiting for a client that left).
int ox_net_req_conn_open(const struct ox_net_req *req);

struct ox_net_response {
	int error;                 // 0 or a negative code: ox_error_to_wire()
	const char *error_message; // copied; NULL or "" for none
	const void *body;          // packed API body, copied (small)
	size_t body_len;
	// Raw bytes sent after the body without copying: raw[0, raw_len)
	// inside raw_owner, which the net takes (free() once sent, or at
	// once if the connection is gone). NULL with raw_len 0 for none.
	void *raw_owner;
	const void *raw;
	size_t raw_len;
};

// Sends the response (ResponseHeader with the request's correlation id,
// then the payload) and ends the request. Takes resp->raw_owner in every
// case. Never fails: if the connection is gone or the frame would be over
// OX_FRAME_BYTES_MAX, the response is dropped (and the connection closed,
// for the latter) and logged.
void ox_net_respond(struct ox_net_req *req, const struct ox_net_response *resp);

// Ends the request without a response (acks=none produce).
void ox_net_finish(struct ox_net_req *req);

// Ends the request and closes its connection, logging `reason` (a body
// that protobuf-c cannot parse, a client that broke the protocol).
void ox_net_reject(struct ox_net_req *req, const char *reason);

#endif
