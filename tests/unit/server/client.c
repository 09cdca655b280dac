// SPDX-License-Identifier: Apache-2.0
//
// The server tests' blocking client (client.h).
#include "tests/unit/server/client.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proto/batch.h"
#include "proto/frame.h"
#include "proto/varint.h"
#include "proto/wire.h"

int tc_connect(uint16_t port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	int one = 1;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert(fd >= 0);
	cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0,
		     "connect: %s", strerror(errno));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static void write_all(int fd, const void *p, size_t len)
{
	const uint8_t *b = p;
	while (len > 0) {
		ssize_t w = write(fd, b, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return; // the server closed: the read says so
		b += w;
		len -= (size_t)w;
	}
}

static int read_all(int fd, void *p, size_t len)
{
	uint8_t *b = p;
	while (len > 0) {
		ssize_t r = read(fd, b, len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		b += r;
		len -= (size_t)r;
	}
	return 0;
}

void tc_send(int fd, uint32_t api_key, uint32_t version, uint64_t corr,
	     const ProtobufCMessage *body, const void *raw, size_t raw_len)
{
	Oxbow__RequestHeader h = OXBOW__REQUEST_HEADER__INIT;
	h.api_key = (Oxbow__ApiKey)api_key;
	h.api_version = version;
	h.correlation_id = corr;
	h.client_id = (char *)"server-test";
	size_t hl = oxbow__request_header__get_packed_size(&h);
	size_t bl = body ? protobuf_c_message_get_packed_size(body) : 0;
	size_t total = OX_FRAME_PREFIX_BYTES + hl + 4 + bl + raw_len;
	uint8_t *f = malloc(total);
	cr_assert_not_null(f);
	cr_assert_eq(ox_frame_prefix_encode(f, hl, 4 + bl + raw_len), 0);
	oxbow__request_header__pack(&h, f + 8);
	ox_payload_prefix_encode(f + 8 + hl, (uint32_t)bl);
	if (body)
		protobuf_c_message_pack(body, f + 8 + hl + 4);
	if (raw_len)
		memcpy(f + 8 + hl + 4 + bl, raw, raw_len);
	write_all(fd, f, total);
	free(f);
}

int tc_recv(int fd, struct tc_resp *out)
{
	uint8_t pre[8];
	uint32_t flen, hlen;

	memset(out, 0, sizeof(*out));
	if (read_all(fd, pre, 8) < 0)
		return -1;
	cr_assert_eq(ox_frame_prefix_decode(pre, 8, &flen, &hlen), 0);
	out->frame = malloc(flen);
	cr_assert_not_null(out->frame);
	cr_assert_eq(read_all(fd, out->frame, flen - 4), 0);
	Oxbow__ResponseHeader *h =
		oxbow__response_header__unpack(NULL, hlen, out->frame);
	cr_assert_not_null(h);
	out->corr = h->correlation_id;
	out->error_code = h->error_code;
	snprintf(out->error_message, sizeof(out->error_message), "%s",
		 h->error_message);
	oxbow__response_header__free_unpacked(h, NULL);
	cr_assert_eq(ox_payload_split(out->frame + hlen, flen - 4 - hlen,
				      &out->body, &out->body_len, &out->raw,
				      &out->raw_len), 0);
	return 0;
}

void tc_call(int fd, uint32_t api_key, const ProtobufCMessage *body,
	     const void *raw, size_t raw_len, struct tc_resp *out)
{
	static uint64_t corr = 1000;
	uint64_t c = corr++;
	tc_send(fd, api_key, 1, c, body, raw, raw_len);
	cr_assert_eq(tc_recv(fd, out), 0, "the server closed the connection");
	cr_assert_eq(out->corr, c);
}

void tc_resp_free(struct tc_resp *r)
{
	free(r->frame);
	r->frame = NULL;
}

size_t tc_batch(uint8_t *buf, size_t cap, int n, const char *prefix,
		int keyed, int64_t ts)
{
	struct ox_batch_params p = {.producer_id = OX_PRODUCER_NONE,
				    .producer_epoch = -1,
				    .base_sequence = OX_SEQUENCE_NONE};
	struct ox_batch_builder b;
	char v[64], k[32];
	size_t len;

	cr_assert_eq(ox_batch_builder_init(&b, buf, cap, &p), 0);
	for (int i = 0; i < n; i++) {
		int vl = snprintf(v, sizeof(v), "%s%d", prefix, i);
		int kl = snprintf(k, sizeof(k), "k%d", i);
		struct ox_record r = {
			.key = keyed ? (uint8_t *)k : NULL,
			.key_len = keyed ? kl : -1,
			.value = (uint8_t *)v,
			.value_len = vl,
			.timestamp = ts + i,
		};
		cr_assert_eq(ox_batch_builder_add(&b, &r), 0);
	}
	cr_assert_eq(ox_batch_builder_finish(&b, &len), 0);
	return len;
}
