// SPDX-License-Identifier: Apache-2.0
//
// One client connection: a non-blocking TCP socket with an output buffer of
// whole request frames and an input buffer of response bytes, framed as
// proto/FRAMING.md says. The producer's I/O thread and the consumer drive
// it from their own poll() loops; ox_conn_call wraps it into one blocking
// request for the admin handle and metadata lookups. It knows nothing of
// what the APIs mean beyond the envelope header.
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/client_int.h"
#include "proto/assert.h"
#include "proto/envelope.pb-c.h"
#include "proto/frame.h"
#include "proto/varint.h"
#include "proto/wire.h"

void ox_conn_init(struct ox_conn *c, const struct ox_hostport *addr,
		  const char *client_id)
{
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->addr = *addr;
	c->client_id = client_id;
	c->next_corr = 1;
}

void ox_conn_close(struct ox_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->connecting = false;
	c->wlen = c->woff = 0;
	c->rstart = c->rlen = 0;
	c->qtotal = c->wtotal;
}

void ox_conn_deinit(struct ox_conn *c)
{
	ox_conn_close(c);
	free(c->wbuf);
	free(c->rbuf);
	free(c->spare);
	c->spare = NULL;
	c->spare_cap = 0;
	c->wbuf = c->rbuf = NULL;
	c->wcap = c->rcap = 0;
}

int ox_conn_connect_start(struct ox_conn *c)
{
	struct addrinfo hints = { 0 }, *res = NULL;
	char port[8];
	int fd, rc, one = 1;

	OX_ASSERT(c->fd < 0);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	snprintf(port, sizeof(port), "%u", (unsigned)c->addr.port);
	rc = getaddrinfo(c->addr.host, port, &hints, &res);
	if (rc != 0)
		return -EHOSTUNREACH;
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
	if (fd < 0) {
		rc = -errno;
		goto fail;
	}
	// Requests are whole frames written at once; Nagle would only
	// delay the last segment of each.
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, res->ai_addr, res->ai_addrlen) < 0 &&
	    errno != EINPROGRESS) {
		rc = -errno;
		close(fd);
		goto fail;
	}
	freeaddrinfo(res);
	c->fd = fd;
	c->connecting = true;
	c->wlen = c->woff = 0;
	c->rstart = c->rlen = 0;
	return 0;
fail:
	freeaddrinfo(res);
	return rc;
}

int ox_conn_connect_finish(struct ox_conn *c)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err != 0)
		return -err;
	c->connecting = false;
	return 0;
}

static int reserve(uint8_t **buf, size_t *cap, size_t need)
{
	size_t n = *cap != 0 ? *cap : 4096;
	uint8_t *p;

	if (need <= *cap)
		return 0;
	while (n < need)
		n *= 2;
	p = realloc(*buf, n);
	if (p == NULL)
		return -ENOMEM;
	*buf = p;
	*cap = n;
	return 0;
}

int ox_conn_queue(struct ox_conn *c, uint32_t api_key,
		  const ProtobufCMessage *body, const struct iovec *raw,
		  size_t raw_n, uint64_t *corr_out)
{
	Oxbow__RequestHeader h = OXBOW__REQUEST_HEADER__INIT;
	size_t hlen, blen, rawlen = 0, total;
	uint8_t *p;
	int rc;

	h.api_key = (Oxbow__ApiKey)api_key;
	h.api_version = 1;
	h.correlation_id = c->next_corr++;
	h.client_id = (char *)c->client_id;
	hlen = protobuf_c_message_get_packed_size(&h.base);
	blen = protobuf_c_message_get_packed_size(body);
	for (size_t i = 0; i < raw_n; i++)
		rawlen += raw[i].iov_len;
	total = OX_FRAME_PREFIX_BYTES + hlen + OX_PAYLOAD_PREFIX_BYTES + blen +
		rawlen;
	if (blen > UINT32_MAX)
		return -OX_ETOOBIG;
	// Drop what was written already before growing the buffer.
	if (c->woff == c->wlen)
		c->woff = c->wlen = 0;
	rc = reserve(&c->wbuf, &c->wcap, c->wlen + total);
	if (rc < 0)
		return rc;
	p = c->wbuf + c->wlen;
	rc = ox_frame_prefix_encode(p, hlen,
				    OX_PAYLOAD_PREFIX_BYTES + blen + rawlen);
	if (rc < 0)
		return rc;
	p += OX_FRAME_PREFIX_BYTES;
	p += protobuf_c_message_pack(&h.base, p);
	ox_payload_prefix_encode(p, (uint32_t)blen);
	p += OX_PAYLOAD_PREFIX_BYTES;
	p += protobuf_c_message_pack(body, p);
	for (size_t i = 0; i < raw_n; i++) {
		memcpy(p, raw[i].iov_base, raw[i].iov_len);
		p += raw[i].iov_len;
	}
	OX_ASSERT(p == c->wbuf + c->wlen + total);
	c->wlen += total;
	c->qtotal += total;
	*corr_out = h.correlation_id;
	return 0;
}

int ox_conn_write(struct ox_conn *c)
{
	while (c->woff < c->wlen) {
		ssize_t n = send(c->fd, c->wbuf + c->woff, c->wlen - c->woff,
				 MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return 0;
			return -errno;
		}
		c->woff += (size_t)n;
		c->wtotal += (uint64_t)n;
	}
	c->woff = c->wlen = 0;
	return 0;
}

int ox_conn_read(struct ox_conn *c)
{
	size_t want = OX_CONN_READ_CHUNK;
	int rc;

	// Move a partial frame to the front so the buffer does not creep.
	if (c->rstart > 0) {
		memmove(c->rbuf, c->rbuf + c->rstart, c->rlen - c->rstart);
		c->rlen -= c->rstart;
		c->rstart = 0;
	}
	// When the frame length is known, make room for the whole frame.
	if (c->rlen >= 4) {
		size_t flen = 4 + (size_t)ox_load_le32(c->rbuf);
		if (flen <= 4 + (size_t)OX_FRAME_BYTES_MAX && flen > c->rlen &&
		    flen - c->rlen > want)
			want = flen - c->rlen;
	}
	rc = reserve(&c->rbuf, &c->rcap, c->rlen + want);
	if (rc < 0)
		return rc;
	for (;;) {
		ssize_t n = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen,
				 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return 0;
			return -errno;
		}
		if (n == 0)
			return -ECONNRESET;
		c->rlen += (size_t)n;
		return 0;
	}
}

void ox_resp_free(struct ox_resp *r)
{
	free(r->frame);
	r->frame = NULL;
}

void ox_conn_recycle(struct ox_conn *c, struct ox_resp *r)
{
	if (r->frame != NULL && r->frame_cap > c->spare_cap) {
		free(c->spare);
		c->spare = r->frame;
		c->spare_cap = r->frame_cap;
		r->frame = NULL;
	}
	ox_resp_free(r);
}

int ox_conn_next(struct ox_conn *c, struct ox_resp *out)
{
	const uint8_t *p = c->rbuf + c->rstart;
	size_t avail = c->rlen - c->rstart;
	uint32_t flen, hlen;
	Oxbow__ResponseHeader *h;
	int rc;

	if (avail < OX_FRAME_PREFIX_BYTES)
		return avail >= 4 && ox_load_le32(p) > OX_FRAME_BYTES_MAX ?
			       -OX_ETOOBIG : 0;
	rc = ox_frame_prefix_decode(p, avail, &flen, &hlen);
	if (rc < 0)
		return rc;
	if (avail < 4 + (size_t)flen)
		return 0;
	h = oxbow__response_header__unpack(NULL, hlen, p + 8);
	if (h == NULL)
		return -OX_ECORRUPT;
	memset(out, 0, sizeof(*out));
	out->corr = h->correlation_id;
	out->err = ox_error_from_wire((int)h->error_code);
	snprintf(out->errmsg, sizeof(out->errmsg), "%s",
		 h->error_message != NULL ? h->error_message : "");
	oxbow__response_header__free_unpacked(h, NULL);
	size_t plen = flen - 4 - hlen;
	if (c->spare != NULL && c->spare_cap >= plen) {
		out->frame = c->spare;
		out->frame_cap = c->spare_cap;
		c->spare = NULL;
		c->spare_cap = 0;
	} else {
		out->frame = malloc(plen > 0 ? plen : 1);
		out->frame_cap = plen > 0 ? plen : 1;
	}
	if (out->frame == NULL)
		return -ENOMEM;
	memcpy(out->frame, p + 8 + hlen, plen);
	c->rstart += 4 + (size_t)flen;
	if (c->rstart == c->rlen)
		c->rstart = c->rlen = 0;
	rc = ox_payload_split(out->frame, plen, &out->body, &out->body_len,
			      &out->raw, &out->raw_len);
	if (rc < 0) {
		ox_resp_free(out);
		return rc;
	}
	return 1;
}

int ox_conn_wait(struct ox_conn *c, short events, int64_t deadline)
{
	struct pollfd pfd = { .fd = c->fd, .events = events };
	int64_t left = deadline - ox_now_ms();
	int rc;

	if (left <= 0)
		return -ETIMEDOUT;
	rc = poll(&pfd, 1, left > INT32_MAX ? INT32_MAX : (int)left);
	if (rc < 0)
		return errno == EINTR ? 0 : -errno;
	if (rc == 0)
		return -ETIMEDOUT;
	return 0;
}

int ox_conn_connect(struct ox_conn *c, int64_t timeout_ms)
{
	int64_t deadline = ox_now_ms() + timeout_ms;
	int rc = ox_conn_connect_start(c);

	while (rc == 0 && c->connecting) {
		rc = ox_conn_wait(c, POLLOUT, deadline);
		if (rc == 0)
			rc = ox_conn_connect_finish(c);
	}
	if (rc < 0)
		ox_conn_close(c);
	return rc;
}

int ox_conn_call(struct ox_conn *c, int64_t connect_timeout_ms,
		 uint32_t api_key, const ProtobufCMessage *body,
		 int64_t timeout_ms, struct ox_resp *out)
{
	int64_t deadline = ox_now_ms() + timeout_ms;
	uint64_t corr;
	int rc;

	if (c->fd < 0) {
		rc = ox_conn_connect(c, connect_timeout_ms);
		if (rc < 0)
			return rc;
	}
	rc = ox_conn_queue(c, api_key, body, NULL, 0, &corr);
	if (rc < 0)
		return rc;
	for (;;) {
		rc = ox_conn_write(c);
		if (rc < 0)
			goto fail;
		rc = ox_conn_next(c, out);
		if (rc < 0)
			goto fail;
		if (rc == 1) {
			if (out->corr == corr)
				return 0;
			// A response to an earlier request that timed out
			// on this connection before it was closed cannot
			// happen; anything else is a broken stream.
			ox_resp_free(out);
			rc = -OX_ECORRUPT;
			goto fail;
		}
		rc = ox_conn_wait(c, (short)(POLLIN | (ox_conn_want_write(c) ?
							  POLLOUT : 0)),
			     deadline);
		if (rc < 0)
			goto fail;
		rc = ox_conn_read(c);
		if (rc < 0)
			goto fail;
	}
fail:
	ox_conn_close(c);
	return rc;
}
