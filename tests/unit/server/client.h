// SPDX-License-Identifier: Apache-2.0
//
// A tiny blocking client for the server tests: raw request frames built
// with protobuf-c (proto/FRAMING.md, proto/api.proto), responses read and
// split, and batches built with the batch codec. Test code only.
#ifndef OX_TESTS_UNIT_SERVER_CLIENT_H
#define OX_TESTS_UNIT_SERVER_CLIENT_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/api.pb-c.h"
#include "proto/envelope.pb-c.h"

struct tc_resp {
	uint64_t corr;
	int error_code;        // oxbow.ErrorCode
	char error_message[256];
	uint8_t *frame;        // owned
	const uint8_t *body;
	size_t body_len;
	const uint8_t *raw;
	size_t raw_len;
};

// Connects to 127.0.0.1:port; returns the fd (asserts on failure).
int tc_connect(uint16_t port);

// Sends one request frame (body may be NULL: empty body).
void tc_send(int fd, uint32_t api_key, uint32_t version, uint64_t corr,
	     const ProtobufCMessage *body, const void *raw, size_t raw_len);

// Reads one response frame. Returns 0, or -1 when the connection closed.
int tc_recv(int fd, struct tc_resp *out);

// Sends and waits for the response (asserts it arrives, same corr).
void tc_call(int fd, uint32_t api_key, const ProtobufCMessage *body,
	     const void *raw, size_t raw_len, struct tc_resp *out);

void tc_resp_free(struct tc_resp *r);

// Builds a batch of n records with values "<prefix><i>" and keys
// "k<i>" (or no key when keyed is 0), timestamps ts + i; returns its
// length.
size_t tc_batch(uint8_t *buf, size_t cap, int n, const char *prefix,
		int keyed, int64_t ts);

#endif
