// SPDX-License-Identifier: Apache-2.0
//
// The single-node broker: topics and their partition logs, the request
// handlers of every client API, consumer-group offsets, retention and
// compaction timers, and an orderly shutdown. One server runs on one
// thread, the one that owns its io loop; every piece of state lives in
// struct ox_server (server_int.h), so more shards can come later.
//
// oxbowd (broker/main.c) is the caller: it parses the configuration,
// creates the io loop and the server, runs the loop calling
// ox_server_poll() after each round, and on SIGTERM calls
// ox_server_shutdown(), runs the loop until ox_server_stopped(), then
// destroys the server. Replication, TLS, authentication and metrics are not
// here yet.
#ifndef OX_BROKER_SERVER_SERVER_H
#define OX_BROKER_SERVER_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/server/config.h"

struct ox_io;
struct ox_server;

// Starts the node: locks data.dir (data.dir/lock, flock), opens every
// topic's partition logs (recovering them), creates or replays __offsets,
// starts listening, then writes data.dir/ready atomically with
// "client=HOST:PORT" and logs the ready line. Borrows io (it must outlive
// the server) and copies cfg (already checked by ox_config_check).
// Returns 0, -EWOULDBLOCK when another process holds the lock, or another
// negative error; err then holds one line in words. The caller owns *out
// and frees it with ox_server_destroy.
int ox_server_create(struct ox_server **out, struct ox_io *io,
		     const struct ox_config *cfg, char *err, size_t err_len);

// Work that must run outside io callbacks: appends waiting for room,
// long-polls whose data arrived, logs of deleted topics to close. Call it
// after every ox_io_run(); it never blocks for long.
void ox_server_poll(struct ox_server *srv);

// Begins stopping: removes data.dir/ready, stops accepting connections,
// answers new requests SHUTTING_DOWN and parked fetches with what they
// have. Idempotent.
void ox_server_shutdown(struct ox_server *srv);

// True once shutdown began and no append is in flight or waiting.
bool ox_server_stopped(const struct ox_server *srv);

// Closes the net and every log (final fsync), releases the lock and
// frees the server. Returns 0 or the first error of closing a log. Must
// not be called from an io callback. NULL is a no-op.
int ox_server_destroy(struct ox_server *srv);

// The client port actually bound.
uint16_t ox_server_port(const struct ox_server *srv);

#endif
