// SPDX-License-Identifier: Apache-2.0
//
// The fake broker of the liboxbow unit tests (fake_broker.h): one thread,
// poll() over the listener and its connections, one topic in memory.
// Requests are answered at once (no long polling), so tests never wait on
// its timers.
#include "tests/unit/client/fake_broker.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proto/api.pb-c.h"
#include "proto/batch.h"
#include "proto/envelope.pb-c.h"
#include "proto/frame.h"
#include "proto/varint.h"
#include "proto/wire.h"

#define FB_CONNS_MAX 16

struct fb_conn {
	int fd;
	uint8_t *buf;
	size_t len, cap;
};

static void send_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

// Sends a response frame: header, body, raw bytes.
static void respond(int fd, uint64_t corr, int code,
		    const ProtobufCMessage *body, const uint8_t *raw,
		    size_t raw_len)
{
	Oxbow__ResponseHeader h = OXBOW__RESPONSE_HEADER__INIT;
	size_t hl, bl;
	uint8_t *f;

	h.correlation_id = corr;
	h.error_code = (Oxbow__ErrorCode)code;
	h.error_message = code != 0 ? (char *)"scripted error" : (char *)"";
	hl = protobuf_c_message_get_packed_size(&h.base);
	bl = body != NULL ? protobuf_c_message_get_packed_size(body) : 0;
	f = malloc(8 + hl + 4 + bl + raw_len);
	if (f == NULL)
		return;
	ox_frame_prefix_encode(f, hl, 4 + bl + raw_len);
	protobuf_c_message_pack(&h.base, f + 8);
	ox_payload_prefix_encode(f + 8 + hl, (uint32_t)bl);
	if (body != NULL)
		protobuf_c_message_pack(body, f + 12 + hl);
	if (raw_len > 0)
		memcpy(f + 12 + hl + bl, raw, raw_len);
	send_all(fd, f, 12 + hl + bl + raw_len);
	free(f);
}

static void on_metadata(struct fb *fb, int fd, uint64_t corr,
			const uint8_t *body, size_t len)
{
	Oxbow__MetadataRequest *req =
		oxbow__metadata_request__unpack(NULL, len, body);
	Oxbow__MetadataResponse resp = OXBOW__METADATA_RESPONSE__INIT;
	Oxbow__BrokerInfo b = OXBOW__BROKER_INFO__INIT, *bp = &b;
	Oxbow__TopicMetadata tms[8], *tmp[8];
	Oxbow__PartitionMetadata pms[FB_PARTITIONS_MAX], *pmp[FB_PARTITIONS_MAX];
	int32_t replica = 1;
	size_t n = 0;

	if (req == NULL)
		return;
	fb->metadata_requests++;
	b.node_id = 1;
	b.host = (char *)"127.0.0.1";
	b.port = fb->port;
	for (uint32_t i = 0; i < fb->partitions; i++) {
		Oxbow__PartitionMetadata pm = OXBOW__PARTITION_METADATA__INIT;
		pms[i] = pm;
		pms[i].partition = i;
		pms[i].leader = 1;
		pms[i].n_replicas = 1;
		pms[i].replicas = &replica;
		pms[i].n_in_sync = 1;
		pms[i].in_sync = &replica;
		pmp[i] = &pms[i];
	}
	for (size_t i = 0; i < req->n_topics && n < 8; i++) {
		Oxbow__TopicMetadata tm = OXBOW__TOPIC_METADATA__INIT;
		tms[n] = tm;
		tms[n].name = req->topics[i];
		if (strcmp(req->topics[i], fb->topic) == 0 &&
		    !fb->metadata_unknown) {
			tms[n].n_partitions = fb->partitions;
			tms[n].partitions = pmp;
		} else {
			tms[n].error_code = OXBOW__ERROR_CODE__UNKNOWN_TOPIC;
		}
		tmp[n] = &tms[n];
		n++;
	}
	if (req->n_topics == 0) {
		Oxbow__TopicMetadata tm = OXBOW__TOPIC_METADATA__INIT;
		tms[0] = tm;
		tms[0].name = fb->topic;
		tms[0].n_partitions = fb->partitions;
		tms[0].partitions = pmp;
		tmp[0] = &tms[0];
		n = 1;
	}
	resp.n_brokers = 1;
	resp.brokers = &bp;
	resp.controller_id = 1;
	resp.n_topics = n;
	resp.topics = tmp;
	respond(fd, corr, 0, &resp.base, NULL, 0);
	oxbow__metadata_request__free_unpacked(req, NULL);
}

static void store(struct fb *fb, uint32_t p, const uint8_t *bytes, size_t len,
		  int64_t base, int64_t last, uint32_t count)
{
	struct fb_part *part = &fb->parts[p];
	struct fb_batch *b;

	if (part->n == FB_BATCHES_MAX)
		return;
	b = &part->batches[part->n++];
	b->bytes = malloc(len);
	if (b->bytes == NULL) {
		part->n--;
		return;
	}
	memcpy(b->bytes, bytes, len);
	b->len = len;
	b->base = base;
	b->last = last;
	b->count = count;
	if (last + 1 > part->next_offset)
		part->next_offset = last + 1;
}

static void on_produce(struct fb *fb, int fd, uint64_t corr,
		       const uint8_t *body, size_t len, const uint8_t *raw,
		       size_t raw_len)
{
	Oxbow__ProduceRequest *req =
		oxbow__produce_request__unpack(NULL, len, body);
	Oxbow__ProduceResponse resp = OXBOW__PRODUCE_RESPONSE__INIT;
	Oxbow__ProduceResult *res, **resp_p;
	size_t off = 0;
	int fail = 0, lost = 0;

	if (req == NULL)
		return;
	fb->produce_requests++;
	if (fb->lost_acks > 0) {
		fb->lost_acks--;
		lost = OXBOW__ERROR_CODE__NOT_LEADER;
	}
	if (fb->produce_fail_times != 0) {
		fail = fb->produce_fail_code;
		if (fb->produce_fail_times > 0)
			fb->produce_fail_times--;
	}
	res = calloc(req->n_batches + 1, sizeof(*res));
	resp_p = calloc(req->n_batches + 1, sizeof(*resp_p));
	for (size_t i = 0; res != NULL && resp_p != NULL && i < req->n_batches;
	     i++) {
		const Oxbow__ProduceBatch *pb = req->batches[i];
		Oxbow__ProduceResult r = OXBOW__PRODUCE_RESULT__INIT;
		struct ox_batch_header h;
		uint8_t *copy;
		res[i] = r;
		res[i].topic = pb->topic;
		res[i].partition = pb->partition;
		resp_p[i] = &res[i];
		fb->produce_batches++;
		if (pb->bytes > raw_len - off ||
		    ox_batch_verify(raw + off, pb->bytes, &h) < 0 ||
		    pb->partition >= fb->partitions) {
			fb->bad_batches++;
			res[i].error_code = OXBOW__ERROR_CODE__CORRUPT_MESSAGE;
			off += pb->bytes <= raw_len - off ? pb->bytes : 0;
			continue;
		}
		if (fail != 0) {
			res[i].error_code = (Oxbow__ErrorCode)fail;
			off += pb->bytes;
			continue;
		}
		if (fb->discard) {
			res[i].base_offset = fb->parts[pb->partition].next_offset;
			fb->parts[pb->partition].next_offset +=
				(int64_t)h.last_offset_delta + 1;
			off += pb->bytes;
			continue;
		}
		struct fb_part *fp = &fb->parts[pb->partition];
		if (h.producer_id > 0) {
			if (h.producer_id != fp->producer_id ||
			    h.producer_epoch != fp->producer_epoch) {
				fp->producer_id = h.producer_id;
				fp->producer_epoch = h.producer_epoch;
				fp->next_sequence = h.base_sequence;
			}
			if (h.base_sequence > fp->next_sequence) {
				res[i].error_code =
				    OXBOW__ERROR_CODE__OUT_OF_ORDER_SEQUENCE;
				off += pb->bytes;
				continue;
			}
			if (h.base_sequence + (int32_t)h.record_count >
			    fp->next_sequence)
				fp->next_sequence = h.base_sequence +
						    (int32_t)h.record_count;
		}
		copy = malloc(pb->bytes);
		if (copy == NULL)
			continue;
		memcpy(copy, raw + off, pb->bytes);
		int64_t base = fb->parts[pb->partition].next_offset;
		ox_batch_stamp(copy, base, 1);
		store(fb, pb->partition, copy, pb->bytes, base,
		      base + h.last_offset_delta, h.record_count);
		free(copy);
		res[i].base_offset = base;
		if (lost != 0) {
			res[i].error_code = (Oxbow__ErrorCode)lost;
			res[i].base_offset = -1;
		}
		off += pb->bytes;
	}
	resp.n_results = req->n_batches;
	resp.results = resp_p;
	if (!fb->produce_silent && req->acks != OXBOW__ACKS__ACKS_NONE)
		respond(fd, corr, 0, &resp.base, NULL, 0);
	free(res);
	free(resp_p);
	oxbow__produce_request__free_unpacked(req, NULL);
}

static void on_fetch(struct fb *fb, int fd, uint64_t corr, const uint8_t *body,
		     size_t len)
{
	Oxbow__FetchRequest *req = oxbow__fetch_request__unpack(NULL, len, body);
	Oxbow__FetchResponse resp = OXBOW__FETCH_RESPONSE__INIT;
	Oxbow__FetchPartition fps[FB_PARTITIONS_MAX], *fpp[FB_PARTITIONS_MAX];
	uint8_t *raw = NULL;
	size_t raw_len = 0, n = 0;

	if (req == NULL)
		return;
	for (size_t i = 0; i < req->n_targets && n < FB_PARTITIONS_MAX; i++) {
		const Oxbow__FetchTarget *t = req->targets[i];
		Oxbow__FetchPartition fp = OXBOW__FETCH_PARTITION__INIT;
		fps[n] = fp;
		fps[n].topic = t->topic;
		fps[n].partition = t->partition;
		fpp[n] = &fps[n];
		n++;
		if (t->partition >= fb->partitions) {
			fps[n - 1].error_code = OXBOW__ERROR_CODE__UNKNOWN_TOPIC;
			continue;
		}
		struct fb_part *p = &fb->parts[t->partition];
		fps[n - 1].high_watermark = p->next_offset;
		if (t->offset > p->next_offset || t->offset < 0) {
			fps[n - 1].error_code =
				OXBOW__ERROR_CODE__OFFSET_OUT_OF_RANGE;
			continue;
		}
		size_t bytes = 0;
		for (size_t j = 0; j < p->n; j++) {
			struct fb_batch *b = &p->batches[j];
			if (b->last < t->offset)
				continue;
			if (bytes > 0 && bytes + b->len > t->max_bytes)
				break;
			uint8_t *r = realloc(raw, raw_len + b->len);
			if (r == NULL)
				break;
			raw = r;
			memcpy(raw + raw_len, b->bytes, b->len);
			raw_len += b->len;
			bytes += b->len;
		}
		fps[n - 1].bytes = (uint32_t)bytes;
	}
	resp.n_partitions = n;
	resp.partitions = fpp;
	respond(fd, corr, 0, &resp.base, raw, raw_len);
	free(raw);
	oxbow__fetch_request__free_unpacked(req, NULL);
}

static void on_list_offsets(struct fb *fb, int fd, uint64_t corr,
			    const uint8_t *body, size_t len)
{
	Oxbow__ListOffsetsRequest *req =
		oxbow__list_offsets_request__unpack(NULL, len, body);
	Oxbow__ListOffsetsResponse resp = OXBOW__LIST_OFFSETS_RESPONSE__INIT;
	Oxbow__ListOffsetsResult r = OXBOW__LIST_OFFSETS_RESULT__INIT, *rp = &r;

	if (req == NULL || req->n_targets != 1)
		return;
	const Oxbow__ListOffsetsTarget *t = req->targets[0];
	r.topic = t->topic;
	r.partition = t->partition;
	if (t->partition >= fb->partitions) {
		r.error_code = OXBOW__ERROR_CODE__UNKNOWN_TOPIC;
	} else {
		struct fb_part *p = &fb->parts[t->partition];
		r.offset = t->spec == OXBOW__OFFSET_SPEC__OFFSET_SPEC_EARLIEST ?
				   (p->n > 0 ? p->batches[0].base : 0) :
				   p->next_offset;
	}
	resp.n_results = 1;
	resp.results = &rp;
	respond(fd, corr, 0, &resp.base, NULL, 0);
	oxbow__list_offsets_request__free_unpacked(req, NULL);
}

static void on_offsets(struct fb *fb, int fd, uint64_t corr, uint32_t api,
		       const uint8_t *body, size_t len)
{
	Oxbow__OffsetCommitRequest *req =
		oxbow__offset_commit_request__unpack(NULL, len, body);
	Oxbow__OffsetCommitResponse resp = OXBOW__OFFSET_COMMIT_RESPONSE__INIT;

	// OffsetFetchRequest has the same field numbers for group and the
	// offsets list, so one parse serves both.
	if (req == NULL)
		return;
	for (size_t i = 0; i < req->n_offsets; i++) {
		Oxbow__GroupOffset *o = req->offsets[i];
		if (o->partition >= FB_PARTITIONS_MAX)
			continue;
		if (api == OXBOW__API_KEY__OFFSET_COMMIT)
			fb->committed[o->partition] = o->offset;
		else
			o->offset = fb->committed[o->partition];
	}
	resp.n_offsets = req->n_offsets;
	resp.offsets = req->offsets;
	respond(fd, corr, 0, &resp.base, NULL, 0);
	oxbow__offset_commit_request__free_unpacked(req, NULL);
}

// Records the request, then answers reassign_code or judges it: the
// topic's partitions are accepted (and move), other topics and
// partitions are unknown, an empty or overlong list is invalid.
static void on_reassign(struct fb *fb, int fd, uint64_t corr,
			const uint8_t *body, size_t len)
{
	Oxbow__ReassignPartitionRequest *req =
		oxbow__reassign_partition_request__unpack(NULL, len, body);
	Oxbow__ReassignPartitionResponse resp =
		OXBOW__REASSIGN_PARTITION_RESPONSE__INIT;
	Oxbow__TopicResult res = OXBOW__TOPIC_RESULT__INIT;

	if (req == NULL)
		return;
	fb->reassign_requests++;
	snprintf(fb->reassign_topic, sizeof(fb->reassign_topic), "%s",
		 req->topic);
	fb->reassign_partition = req->partition;
	fb->reassign_replica_count = req->n_replicas;
	for (size_t i = 0; i < req->n_replicas && i < FB_REPLICAS_MAX; i++)
		fb->reassign_replicas[i] = req->replicas[i];
	res.name = req->topic;
	if (fb->reassign_code != 0) {
		res.error_code = (Oxbow__ErrorCode)fb->reassign_code;
		res.error_message = fb->reassign_message;
	} else if (req->n_replicas == 0 || req->n_replicas > FB_REPLICAS_MAX) {
		res.error_code = OXBOW__ERROR_CODE__INVALID_REQUEST;
	} else if (strcmp(req->topic, fb->topic) != 0 || req->partition < 0 ||
		   (uint32_t)req->partition >= fb->partitions) {
		res.error_code = OXBOW__ERROR_CODE__UNKNOWN_TOPIC;
	} else {
		fb->moving[req->partition] = true;
		fb->targets_n[req->partition] = req->n_replicas;
		memcpy(fb->targets[req->partition], req->replicas,
		       req->n_replicas * sizeof(*req->replicas));
	}
	resp.result = &res;
	respond(fd, corr, 0, &resp.base, NULL, 0);
	oxbow__reassign_partition_request__free_unpacked(req, NULL);
}

static void on_cluster_status(struct fb *fb, int fd, uint64_t corr)
{
	Oxbow__ClusterStatusResponse resp = OXBOW__CLUSTER_STATUS_RESPONSE__INIT;
	Oxbow__NodeStatus ns[3], *nsp[3];
	Oxbow__PartitionStatus ps[FB_PARTITIONS_MAX], *psp[FB_PARTITIONS_MAX];
	int32_t replicas[3] = { 3, 2, 1 };
	char peer[32];

	if (fb->cluster_status_code != 0) {
		respond(fd, corr, fb->cluster_status_code, NULL, NULL, 0);
		return;
	}
	snprintf(peer, sizeof(peer), "127.0.0.1:%u", fb->port + 1u);
	for (int i = 0; i < 3; i++) {
		Oxbow__NodeStatus init = OXBOW__NODE_STATUS__INIT;
		ns[i] = init;
		ns[i].node_id = 3 - i;
		ns[i].reachable = ns[i].node_id != 3;
		nsp[i] = &ns[i];
	}
	ns[0].address = (char *)"127.0.0.1:7420";
	ns[0].peer_address = (char *)"127.0.0.1:7421";
	ns[1].address = (char *)"127.0.0.1:7410";
	ns[1].peer_address = (char *)"127.0.0.1:7411";
	ns[2].address = fb->bootstrap;
	ns[2].peer_address = peer;
	for (uint32_t i = 0; i < fb->partitions; i++) {
		Oxbow__PartitionStatus init = OXBOW__PARTITION_STATUS__INIT;
		uint32_t p = fb->partitions - 1 - i;
		ps[i] = init;
		ps[i].topic = fb->topic;
		ps[i].partition = (int32_t)p;
		ps[i].leader = p == 0 ? 1 : 2;
		if (p > 0 && p == fb->partitions - 1)
			ps[i].leader = -1;
		ps[i].n_replicas = 3;
		ps[i].replicas = replicas;
		ps[i].n_in_sync = p == 0 ? 3 : 2;
		ps[i].in_sync = replicas + (p == 0 ? 0 : 1);
		ps[i].high_watermark = fb->parts[p].next_offset;
		ps[i].moving = fb->moving[p];
		if (fb->targets_n[p] > 0) {
			ps[i].n_replicas = fb->targets_n[p];
			ps[i].replicas = fb->targets[p];
		}
		psp[i] = &ps[i];
	}
	resp.answering_node = 1;
	resp.meta_leader = fb->meta_leader;
	resp.meta_term = 7;
	resp.n_nodes = 3;
	resp.nodes = nsp;
	resp.n_partitions = fb->partitions;
	resp.partitions = psp;
	respond(fd, corr, 0, &resp.base, NULL, 0);
}

static void dispatch(struct fb *fb, int fd, const uint8_t *frame,
		     uint32_t flen, uint32_t hlen)
{
	Oxbow__RequestHeader *h =
		oxbow__request_header__unpack(NULL, hlen, frame + 8);
	const uint8_t *body, *raw;
	size_t body_len, raw_len;

	if (h == NULL)
		return;
	if (ox_payload_split(frame + 8 + hlen, flen - 4 - hlen, &body,
			     &body_len, &raw, &raw_len) < 0)
		goto out;
	pthread_mutex_lock(&fb->lock);
	switch (h->api_key) {
	case OXBOW__API_KEY__METADATA:
		on_metadata(fb, fd, h->correlation_id, body, body_len);
		break;
	case OXBOW__API_KEY__PRODUCE:
		on_produce(fb, fd, h->correlation_id, body, body_len, raw,
			   raw_len);
		break;
	case OXBOW__API_KEY__FETCH:
		on_fetch(fb, fd, h->correlation_id, body, body_len);
		break;
	case OXBOW__API_KEY__LIST_OFFSETS:
		on_list_offsets(fb, fd, h->correlation_id, body, body_len);
		break;
	case OXBOW__API_KEY__OFFSET_COMMIT:
	case OXBOW__API_KEY__OFFSET_FETCH:
		fb->offset_requests++;
		if (fb->offsets_not_leader > 0) {
			fb->offsets_not_leader--;
			respond(fd, h->correlation_id,
				OXBOW__ERROR_CODE__NOT_LEADER, NULL, NULL, 0);
			break;
		}
		on_offsets(fb, fd, h->correlation_id, h->api_key, body,
			   body_len);
		break;
	case OXBOW__API_KEY__FIND_COORDINATOR:
		fb->find_coordinator_requests++;
		if (fb->coordinator_port != 0) {
			Oxbow__FindCoordinatorResponse r =
				OXBOW__FIND_COORDINATOR_RESPONSE__INIT;
			r.node_id = fb->coordinator_id;
			r.host = (char *)"127.0.0.1";
			r.port = fb->coordinator_port;
			respond(fd, h->correlation_id, 0, &r.base, NULL, 0);
			break;
		}
		respond(fd, h->correlation_id,
			OXBOW__ERROR_CODE__UNSUPPORTED_VERSION, NULL, NULL, 0);
		break;
	case OXBOW__API_KEY__CLUSTER_STATUS:
		on_cluster_status(fb, fd, h->correlation_id);
		break;
	case OXBOW__API_KEY__REASSIGN_PARTITION:
		if (fb->reassign_unsupported) {
			respond(fd, h->correlation_id,
				OXBOW__ERROR_CODE__UNSUPPORTED_VERSION, NULL,
				NULL, 0);
			break;
		}
		on_reassign(fb, fd, h->correlation_id, body, body_len);
		break;
	case OXBOW__API_KEY__INIT_PRODUCER_ID:
		fb->init_producer_requests++;
		if (fb->producer_id > 0) {
			Oxbow__InitProducerIdResponse r =
				OXBOW__INIT_PRODUCER_ID_RESPONSE__INIT;
			r.producer_id = fb->producer_id;
			respond(fd, h->correlation_id, 0, &r.base, NULL, 0);
			break;
		}
		respond(fd, h->correlation_id,
			OXBOW__ERROR_CODE__UNSUPPORTED_VERSION, NULL, NULL, 0);
		break;
	default:
		respond(fd, h->correlation_id,
			OXBOW__ERROR_CODE__UNSUPPORTED_VERSION, NULL, NULL, 0);
	}
	pthread_mutex_unlock(&fb->lock);
out:
	oxbow__request_header__free_unpacked(h, NULL);
}

// Reads what a connection has and answers every whole frame. Returns -1
// when the connection is done.
static int conn_pump(struct fb *fb, struct fb_conn *c)
{
	if (c->cap - c->len < 65536) {
		size_t cap = c->cap ? c->cap * 2 : 1 << 20;
		uint8_t *b = realloc(c->buf, cap);
		if (b == NULL)
			return -1;
		c->buf = b;
		c->cap = cap;
	}
	ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
	if (n <= 0)
		return -1;
	c->len += (size_t)n;
	for (;;) {
		uint32_t flen, hlen;
		if (ox_frame_prefix_decode(c->buf, c->len, &flen, &hlen) < 0 ||
		    c->len < 4 + (size_t)flen)
			return 0;
		dispatch(fb, c->fd, c->buf, flen, hlen);
		memmove(c->buf, c->buf + 4 + flen, c->len - 4 - flen);
		c->len -= 4 + flen;
	}
}

static void *fb_main(void *arg)
{
	struct fb *fb = arg;
	struct fb_conn conns[FB_CONNS_MAX] = { 0 };
	struct pollfd pfd[FB_CONNS_MAX + 2];

	for (size_t i = 0; i < FB_CONNS_MAX; i++)
		conns[i].fd = -1;
	for (;;) {
		pfd[0].fd = fb->listen_fd;
		pfd[0].events = POLLIN;
		pfd[1].fd = fb->stop_fd[0];
		pfd[1].events = POLLIN;
		for (size_t i = 0; i < FB_CONNS_MAX; i++) {
			pfd[i + 2].fd = conns[i].fd;
			pfd[i + 2].events = POLLIN;
		}
		if (poll(pfd, FB_CONNS_MAX + 2, -1) < 0 && errno != EINTR)
			break;
		if (pfd[1].revents)
			break;
		if (pfd[0].revents) {
			int fd = accept(fb->listen_fd, NULL, NULL);
			size_t i;
			for (i = 0; fd >= 0 && i < FB_CONNS_MAX; i++)
				if (conns[i].fd < 0) {
					conns[i].fd = fd;
					conns[i].len = 0;
					break;
				}
			if (fd >= 0 && i == FB_CONNS_MAX)
				close(fd);
		}
		for (size_t i = 0; i < FB_CONNS_MAX; i++)
			if (conns[i].fd >= 0 && pfd[i + 2].revents &&
			    conn_pump(fb, &conns[i]) < 0) {
				close(conns[i].fd);
				conns[i].fd = -1;
			}
	}
	for (size_t i = 0; i < FB_CONNS_MAX; i++) {
		if (conns[i].fd >= 0)
			close(conns[i].fd);
		free(conns[i].buf);
	}
	return NULL;
}

struct fb *fb_start(const char *topic, uint32_t partitions)
{
	struct fb *fb = calloc(1, sizeof(*fb));
	struct sockaddr_in sa = { 0 };
	socklen_t sl = sizeof(sa);

	if (fb == NULL || partitions > FB_PARTITIONS_MAX)
		abort();
	pthread_mutex_init(&fb->lock, NULL);
	snprintf(fb->topic, sizeof(fb->topic), "%s", topic);
	fb->partitions = partitions;
	fb->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fb->listen_fd < 0 ||
	    bind(fb->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(fb->listen_fd, 16) < 0 ||
	    getsockname(fb->listen_fd, (struct sockaddr *)&sa, &sl) < 0 ||
	    pipe(fb->stop_fd) < 0)
		abort();
	fb->port = ntohs(sa.sin_port);
	snprintf(fb->bootstrap, sizeof(fb->bootstrap), "127.0.0.1:%u",
		 (unsigned)fb->port);
	for (size_t i = 0; i < FB_PARTITIONS_MAX; i++)
		fb->committed[i] = -1;
	fb->meta_leader = 2;
	if (pthread_create(&fb->thread, NULL, fb_main, fb) != 0)
		abort();
	return fb;
}

void fb_stop(struct fb *fb)
{
	if (write(fb->stop_fd[1], "x", 1) != 1)
		abort();
	pthread_join(fb->thread, NULL);
	close(fb->listen_fd);
	close(fb->stop_fd[0]);
	close(fb->stop_fd[1]);
	for (size_t p = 0; p < FB_PARTITIONS_MAX; p++)
		for (size_t i = 0; i < fb->parts[p].n; i++)
			free(fb->parts[p].batches[i].bytes);
	pthread_mutex_destroy(&fb->lock);
	free(fb);
}

void fb_append_raw(struct fb *fb, uint32_t p, const void *bytes, size_t len,
		   int64_t base, int64_t last, uint32_t count)
{
	pthread_mutex_lock(&fb->lock);
	store(fb, p, bytes, len, base, last, count);
	pthread_mutex_unlock(&fb->lock);
}

size_t fb_make_batch(uint8_t **out, int64_t base, uint32_t n, bool control)
{
	struct ox_batch_params params = {
		.attributes = control ? OX_BATCH_ATTR_CONTROL : 0,
		.base_offset = base,
		.producer_id = OX_PRODUCER_NONE,
		.producer_epoch = -1,
		.base_sequence = OX_SEQUENCE_NONE,
	};
	struct ox_batch_builder b;
	size_t cap = OX_BATCH_HEADER_BYTES + n * 64u + 64u, len = 0;
	uint8_t *buf = malloc(cap);
	char val[32];

	if (buf == NULL || ox_batch_builder_init(&b, buf, cap, &params) < 0)
		abort();
	for (uint32_t i = 0; i < n; i++) {
		struct ox_record r = { 0 };
		int vl = snprintf(val, sizeof(val), "v%lld",
				  (long long)(base + i));
		r.key_len = -1;
		r.value = (const uint8_t *)val;
		r.value_len = vl;
		r.timestamp = 1000 + base + i;
		if (ox_batch_builder_add(&b, &r) < 0)
			abort();
	}
	if (ox_batch_builder_finish(&b, &len) < 0)
		abort();
	*out = buf;
	return len;
}
