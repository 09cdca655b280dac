// SPDX-License-Identifier: Apache-2.0
//
// Responses of broker/net: ox_net_respond encodes the frame prefix, the
// ResponseHeader, the body length prefix and a copy of the (small) body
// into one buffer, and queues it with the raw bytes, which are sent from
// the caller's buffer without a copy. Each connection sends its queue in
// order, one sendmsg in flight carrying up to OX_NET_SEND_BATCH responses
// (invariant 5 in net.c); raw buffers are freed once sent. The server
// calls ox_net_respond; conn.c starts sends.
#include "broker/net/net_int.h"

#include "broker/io/io.h"
#include "broker/slog/slog.h"
#include "proto/assert.h"
#include "proto/envelope.pb-c.h"
#include "proto/error.h"
#include "proto/frame.h"
#include "proto/wire.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

static void out_free(struct net_out *out)
{
	free(out->raw_owner);
	free(out);
}

// Frees the first n queued responses (sent, or dropped) and returns the
// bytes they counted in out_bytes.
static size_t out_pop(struct net_conn *conn, unsigned n)
{
	size_t bytes = 0;

	while (n-- > 0) {
		struct net_out *out = conn->out_head;

		OX_ASSERT(out != NULL);
		conn->out_head = out->next;
		bytes += out->head_len + out->raw_len;
		out_free(out);
	}
	if (!conn->out_head)
		conn->out_tail = NULL;
	OX_ASSERT(conn->out_bytes >= bytes);
	conn->out_bytes -= bytes;
	ox_net_mem_sub(conn, bytes);
	return bytes;
}

void ox_net_out_drop_queued(struct net_conn *conn)
{
	struct net_out **link = &conn->out_head, *out;
	unsigned keep = conn->send_armed ? conn->sending_n : 0;

	// The responses in flight stay until the send's callback: their
	// buffers are lent to the loop.
	for (unsigned i = 0; i < keep; i++)
		link = &(*link)->next;
	while ((out = *link) != NULL) {
		*link = out->next;
		conn->out_bytes -= out->head_len + out->raw_len;
		ox_net_mem_sub(conn, out->head_len + out->raw_len);
		out_free(out);
	}
	conn->out_tail = NULL;
	for (out = conn->out_head; out; out = out->next)
		conn->out_tail = out;
}

static void send_done(void *arg, int res)
{
	struct net_conn *conn = arg;
	struct ox_net *net = conn->net; // set while an op is in flight

	OX_ASSERT(conn->ops > 0 && conn->send_armed && net->ops > 0);
	conn->ops--;
	net->ops--;
	conn->send_armed = false;
	out_pop(conn, conn->sending_n);
	conn->sending_n = 0;
	conn->busy = true; // closing must not free conn under our feet
	if (res < 0)
		ox_net_conn_close(conn, NULL); // the client left or reset
	conn->busy = false;
	// Sends the next batch and, if the send limit held reading back,
	// resumes it (or frees the closed connection).
	ox_net_conn_kick(conn);
	ox_net_poke(net);
}

void ox_net_send_start(struct net_conn *conn)
{
	struct iovec iov[2 * OX_NET_SEND_BATCH];
	struct net_out *out;
	unsigned n = 0, k = 0;
	size_t total = 0;
	int rc;

	if (!conn->open || conn->send_armed || !conn->out_head)
		return;
	for (out = conn->out_head; out && k < OX_NET_SEND_BATCH; out = out->next) {
		size_t len = out->head_len + out->raw_len;

		if (k > 0 && len > OX_IO_LEN_MAX - total)
			break;
		iov[n++] = (struct iovec){ out->head, out->head_len };
		if (out->raw_len > 0)
			iov[n++] = (struct iovec){ (void *)out->raw, out->raw_len };
		total += len;
		k++;
	}
	rc = ox_io_sendv(conn->net->io, conn->fd, iov, (int)n, send_done, conn);
	if (ox_net_submitted(conn, rc, "send")) {
		conn->send_armed = true;
		conn->sending_n = k;
	}
}

// Builds the response's head: frame prefix, ResponseHeader, body length
// prefix, body. NULL with *err set (-OX_ETOOBIG, -ENOMEM) on failure.
static struct net_out *out_build(const struct ox_net_req *req,
				 const struct ox_net_response *resp, int *err)
{
	Oxbow__ResponseHeader h = OXBOW__RESPONSE_HEADER__INIT;
	char msg[OX_NET_ERROR_MESSAGE_MAX + 1];
	uint8_t prefix[OX_FRAME_PREFIX_BYTES];
	struct net_out *out;
	size_t header_len, head_len;

	h.correlation_id = req->info.correlation_id;
	h.error_code = (Oxbow__ErrorCode)ox_error_to_wire(resp->error);
	if (resp->error_message && resp->error_message[0]) {
		snprintf(msg, sizeof(msg), "%s", resp->error_message);
		h.error_message = msg;
	}
	header_len = oxbow__response_header__get_packed_size(&h);
	// Checked one by one first so that the sum cannot wrap.
	if (resp->body_len > OX_FRAME_BYTES_MAX ||
	    resp->raw_len > OX_FRAME_BYTES_MAX ||
	    ox_frame_prefix_encode(prefix, header_len,
				   OX_PAYLOAD_PREFIX_BYTES + resp->body_len +
					   resp->raw_len) < 0) {
		*err = -OX_ETOOBIG;
		return NULL;
	}
	head_len = OX_FRAME_PREFIX_BYTES + header_len + OX_PAYLOAD_PREFIX_BYTES +
		   resp->body_len;
	out = malloc(sizeof(*out) + head_len);
	if (!out) {
		*err = -ENOMEM;
		return NULL;
	}
	memcpy(out->head, prefix, sizeof(prefix));
	oxbow__response_header__pack(&h, out->head + OX_FRAME_PREFIX_BYTES);
	ox_payload_prefix_encode(out->head + OX_FRAME_PREFIX_BYTES + header_len,
				 (uint32_t)resp->body_len);
	if (resp->body_len > 0)
		memcpy(out->head + head_len - resp->body_len, resp->body,
		       resp->body_len);
	out->next = NULL;
	out->head_len = head_len;
	out->raw_owner = resp->raw_owner;
	out->raw = resp->raw;
	out->raw_len = resp->raw_len;
	return out;
}

void ox_net_respond(struct ox_net_req *req, const struct ox_net_response *resp)
{
	struct net_conn *conn;
	struct net_out *out;
	int err = 0;

	OX_ASSERT(req != NULL && resp != NULL);
	OX_ASSERT(resp->body != NULL || resp->body_len == 0);
	OX_ASSERT(resp->raw != NULL || resp->raw_len == 0);
	conn = req->conn;
	if (!conn->open) {
		ox_slog(OX_SLOG_INFO, "response dropped peer=%s "
			"correlation_id=%llu reason=\"connection closed\"",
			conn->peer, (unsigned long long)req->info.correlation_id);
		free(resp->raw_owner);
		ox_net_req_end(req);
		return;
	}
	out = out_build(req, resp, &err);
	if (!out) {
		char reason[128];

		snprintf(reason, sizeof(reason), "response %llu dropped: %s",
			 (unsigned long long)req->info.correlation_id,
			 err == -ENOMEM ? "out of memory" :
					  "over the frame size limit");
		free(resp->raw_owner);
		ox_net_conn_close(conn, reason);
		ox_net_req_end(req);
		return;
	}
	if (conn->out_tail)
		conn->out_tail->next = out;
	else
		conn->out_head = out;
	conn->out_tail = out;
	conn->out_bytes += out->head_len + out->raw_len;
	ox_net_mem_add(conn, out->head_len + out->raw_len);
	ox_net_req_end(req); // starts the send
}
