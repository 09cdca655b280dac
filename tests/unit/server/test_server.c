// SPDX-License-Identifier: Apache-2.0
//
// The request handlers through a real net on loopback: a server runs on
// its own thread with its own io loop over a temporary data.dir, and the
// test thread talks to it with the blocking client of client.c. Covers
// every API, their per-item errors, malformed requests, long-polls,
// persistence across a restart, the data.dir lock and shutdown.
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker/io/io.h"
#include "broker/server/offsets.h"
#include "broker/server/server.h"
#include "proto/batch.h"
#include "proto/error.h"
#include "proto/frame.h"
#include "tests/unit/server/client.h"

struct harness {
	char dir[64];
	struct ox_config cfg;
	pthread_t th;
	atomic_int ready;  // 1 running, -1 failed to start
	atomic_int stop;
	atomic_int shutdown;
	int create_rc;
	int destroy_rc;
	uint16_t port;
};

static struct harness H;

static void *server_main(void *arg)
{
	struct harness *h = arg;
	struct ox_io_opts opts = {.backend = OX_IO_BACKEND_URING};
	struct ox_server *srv;
	struct ox_io *io;
	char err[512];

	if (ox_io_create(&io, &opts) < 0) {
		opts.backend = OX_IO_BACKEND_SYNC;
		cr_assert_eq(ox_io_create(&io, &opts), 0);
	}
	h->create_rc = ox_server_create(&srv, io, &h->cfg, err, sizeof(err));
	if (h->create_rc < 0) {
		ox_io_destroy(io);
		atomic_store(&h->ready, -1);
		return NULL;
	}
	h->port = ox_server_port(srv);
	atomic_store(&h->ready, 1);
	for (;;) {
		if (atomic_load(&h->shutdown) || atomic_load(&h->stop))
			ox_server_shutdown(srv);
		if (atomic_load(&h->stop) && ox_server_stopped(srv))
			break;
		int rc = ox_io_run(io, 1);
		if (rc < 0) {
			fprintf(stderr, "the server's io loop failed: %s\n",
				ox_strerror(rc));
			abort();
		}
		ox_server_poll(srv);
	}
	h->destroy_rc = ox_server_destroy(srv);
	ox_io_destroy(io);
	return NULL;
}

static int start(void)
{
	atomic_store(&H.ready, 0);
	atomic_store(&H.stop, 0);
	atomic_store(&H.shutdown, 0);
	cr_assert_eq(pthread_create(&H.th, NULL, server_main, &H), 0);
	while (atomic_load(&H.ready) == 0)
		usleep(1000);
	if (atomic_load(&H.ready) < 0) {
		pthread_join(H.th, NULL);
		return H.create_rc;
	}
	return 0;
}

static void stop(void)
{
	atomic_store(&H.stop, 1);
	pthread_join(H.th, NULL);
	cr_assert_eq(H.destroy_rc, 0);
}

static void setup(void)
{
	char err[512];
	strcpy(H.dir, "/tmp/oxbow-server-XXXXXX");
	cr_assert_not_null(mkdtemp(H.dir));
	ox_config_default(&H.cfg);
	ox_config_set(&H.cfg, "data.dir", H.dir, err, sizeof(err));
	ox_config_set(&H.cfg, "listen", "127.0.0.1:0", err, sizeof(err));
	cr_assert_eq(ox_config_check(&H.cfg, err, sizeof(err)), 0);
	cr_assert_eq(start(), 0);
}

static void teardown(void)
{
	char cmd[128];
	if (atomic_load(&H.ready) == 1 && !atomic_load(&H.stop))
		stop();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", H.dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(server, .init = setup, .fini = teardown, .timeout = 60);

// ---- helpers ----

static int create_topic(int fd, const char *name, uint32_t parts,
			uint32_t replicas, const char *k, const char *v)
{
	Oxbow__CreateTopicsRequest req = OXBOW__CREATE_TOPICS_REQUEST__INIT;
	Oxbow__TopicSpec spec = OXBOW__TOPIC_SPEC__INIT, *sp = &spec;
	Oxbow__ConfigEntry ce = OXBOW__CONFIG_ENTRY__INIT, *cp = &ce;
	struct tc_resp r;

	spec.name = (char *)name;
	spec.partitions = parts;
	spec.replicas = replicas;
	if (k) {
		ce.key = (char *)k;
		ce.value = (char *)v;
		spec.n_configs = 1;
		spec.configs = &cp;
	}
	req.n_topics = 1;
	req.topics = &sp;
	tc_call(fd, OXBOW__API_KEY__CREATE_TOPICS, &req.base, NULL, 0, &r);
	cr_assert_eq(r.error_code, 0);
	Oxbow__CreateTopicsResponse *m =
		oxbow__create_topics_response__unpack(NULL, r.body_len, r.body);
	cr_assert_not_null(m);
	cr_assert_eq(m->n_topics, 1u);
	cr_assert_str_eq(m->topics[0]->name, name);
	int code = m->topics[0]->error_code;
	if (code)
		cr_assert_str_neq(m->topics[0]->error_message, "");
	oxbow__create_topics_response__free_unpacked(m, NULL);
	tc_resp_free(&r);
	return code;
}

// Produces one batch; returns the error code, base offset in *base.
static int produce(int fd, const char *topic, uint32_t part, const void *b,
		   size_t len, uint32_t bytes, int64_t *base)
{
	Oxbow__ProduceRequest req = OXBOW__PRODUCE_REQUEST__INIT;
	Oxbow__ProduceBatch pb = OXBOW__PRODUCE_BATCH__INIT, *pp = &pb;
	struct tc_resp r;

	pb.topic = (char *)topic;
	pb.partition = part;
	pb.bytes = bytes;
	req.acks = OXBOW__ACKS__ACKS_LEADER;
	req.n_batches = 1;
	req.batches = &pp;
	tc_call(fd, OXBOW__API_KEY__PRODUCE, &req.base, b, len, &r);
	if (r.error_code) {
		int code = r.error_code;
		tc_resp_free(&r);
		return 1000 + code; // a request-level error
	}
	Oxbow__ProduceResponse *m =
		oxbow__produce_response__unpack(NULL, r.body_len, r.body);
	cr_assert_not_null(m);
	cr_assert_eq(m->n_results, 1u);
	int code = m->results[0]->error_code;
	if (base)
		*base = m->results[0]->base_offset;
	oxbow__produce_response__free_unpacked(m, NULL);
	tc_resp_free(&r);
	return code;
}

static int produce_n(int fd, const char *topic, uint32_t part, int n,
		     int64_t *base)
{
	static uint8_t buf[1 << 16];
	size_t len = tc_batch(buf, sizeof(buf), n, "v", 1, 1000);
	return produce(fd, topic, part, buf, len, (uint32_t)len, base);
}

struct fetched {
	int code;
	int64_t hw;
	int64_t start;
	uint32_t bytes;
	int64_t first_offset;
	int64_t next_offset;
	int records;
};

static void fetch(int fd, const char *topic, uint32_t part, int64_t off,
		  uint32_t wait_ms, uint32_t min_bytes, struct fetched *f)
{
	Oxbow__FetchRequest req = OXBOW__FETCH_REQUEST__INIT;
	Oxbow__FetchTarget t = OXBOW__FETCH_TARGET__INIT, *tp = &t;
	struct tc_resp r;

	t.topic = (char *)topic;
	t.partition = part;
	t.offset = off;
	req.max_wait_ms = wait_ms;
	req.min_bytes = min_bytes;
	req.max_bytes = 1 << 20;
	req.n_targets = 1;
	req.targets = &tp;
	tc_call(fd, OXBOW__API_KEY__FETCH, &req.base, NULL, 0, &r);
	cr_assert_eq(r.error_code, 0, "%s", r.error_message);
	Oxbow__FetchResponse *m =
		oxbow__fetch_response__unpack(NULL, r.body_len, r.body);
	cr_assert_not_null(m);
	cr_assert_eq(m->n_partitions, 1u);
	memset(f, 0, sizeof(*f));
	f->code = m->partitions[0]->error_code;
	f->hw = m->partitions[0]->high_watermark;
	f->start = m->partitions[0]->log_start_offset;
	f->bytes = m->partitions[0]->bytes;
	f->first_offset = -1;
	cr_assert_eq(f->bytes, r.raw_len);
	size_t pos = 0, prev = 0;
	struct ox_batch_header h;
	while (ox_batch_next(r.raw, r.raw_len, &pos, &h) == 1) {
		cr_assert_eq(ox_batch_verify(r.raw + prev, pos - prev, NULL), 0);
		if (f->first_offset < 0)
			f->first_offset = h.base_offset;
		f->next_offset = h.base_offset + h.last_offset_delta + 1;
		f->records += (int)h.record_count;
		prev = pos;
	}
	cr_assert_eq(pos, r.raw_len, "whole batches only");
	oxbow__fetch_response__free_unpacked(m, NULL);
	tc_resp_free(&r);
}

// ---- tests ----

Test(server, ready_file_and_api_versions)
{
	char path[128], line[128];
	snprintf(path, sizeof(path), "%s/ready", H.dir);
	FILE *f = fopen(path, "r");
	cr_assert_not_null(f);
	cr_assert_not_null(fgets(line, sizeof(line), f));
	fclose(f);
	char want[64];
	snprintf(want, sizeof(want), "client=127.0.0.1:%u\n", H.port);
	cr_assert_str_eq(line, want);

	int fd = tc_connect(H.port);
	struct tc_resp r;
	tc_call(fd, OXBOW__API_KEY__API_VERSIONS, NULL, NULL, 0, &r);
	cr_assert_eq(r.error_code, 0);
	Oxbow__ApiVersionsResponse *m =
		oxbow__api_versions_response__unpack(NULL, r.body_len, r.body);
	cr_assert_not_null(m);
	cr_assert_eq(m->n_apis, 16u);
	cr_assert_eq(m->node_id, 1);
	cr_assert_str_eq(m->server_version, "oxbowd 0.1.0");
	oxbow__api_versions_response__free_unpacked(m, NULL);
	tc_resp_free(&r);
	close(fd);
}

// A batch of n records from an idempotent producer.
static size_t idem_batch(uint8_t *buf, size_t cap, int64_t pid, int32_t seq,
			 int n)
{
	struct ox_batch_params p = { .producer_id = pid,
				     .producer_epoch = 0,
				     .base_sequence = seq };
	struct ox_batch_builder b;
	size_t len;

	cr_assert_eq(ox_batch_builder_init(&b, buf, cap, &p), 0);
	for (int i = 0; i < n; i++) {
		struct ox_record r = { .key_len = -1,
				       .value = (const uint8_t *)"x",
				       .value_len = 1,
				       .timestamp = 1000 + i };
		cr_assert_eq(ox_batch_builder_add(&b, &r), 0);
	}
	cr_assert_eq(ox_batch_builder_finish(&b, &len), 0);
	return len;
}

Test(server, idempotent_producer_retries_are_stored_once)
{
	int fd = tc_connect(H.port);
	struct tc_resp r;
	uint8_t buf[4096];
	int64_t pid, base1 = -1, base2 = -1, again = -1;
	size_t len;

	cr_assert_eq(create_topic(fd, "idem", 1, 0, NULL, NULL), 0);
	tc_call(fd, OXBOW__API_KEY__INIT_PRODUCER_ID, NULL, NULL, 0, &r);
	cr_assert_eq(r.error_code, 0, "%s", r.error_message);
	Oxbow__InitProducerIdResponse *m =
		oxbow__init_producer_id_response__unpack(NULL, r.body_len,
							 r.body);
	cr_assert_not_null(m);
	pid = m->producer_id;
	cr_assert_gt(pid, 0);
	cr_assert_eq(m->producer_epoch, 0);
	oxbow__init_producer_id_response__free_unpacked(m, NULL);
	tc_resp_free(&r);

	len = idem_batch(buf, sizeof(buf), pid, 0, 4);
	cr_assert_eq(produce(fd, "idem", 0, buf, len, (uint32_t)len, &base1),
		     0);
	len = idem_batch(buf, sizeof(buf), pid, 4, 2);
	cr_assert_eq(produce(fd, "idem", 0, buf, len, (uint32_t)len, &base2),
		     0);
	cr_assert_eq(base2, base1 + 4);
	// The first batch again: its offsets, and nothing appended.
	len = idem_batch(buf, sizeof(buf), pid, 0, 4);
	cr_assert_eq(produce(fd, "idem", 0, buf, len, (uint32_t)len, &again),
		     0);
	cr_assert_eq(again, base1);
	// A gap is refused.
	len = idem_batch(buf, sizeof(buf), pid, 9, 1);
	cr_assert_eq(produce(fd, "idem", 0, buf, len, (uint32_t)len, NULL),
		     OXBOW__ERROR_CODE__OUT_OF_ORDER_SEQUENCE);
	len = idem_batch(buf, sizeof(buf), pid, 6, 1);
	cr_assert_eq(produce(fd, "idem", 0, buf, len, (uint32_t)len, &again),
		     0);
	cr_assert_eq(again, base2 + 2, "the next batch follows");
	close(fd);
}

Test(server, cluster_status_of_one_node)
{
	int fd = tc_connect(H.port);
	struct tc_resp r;

	cr_assert_eq(create_topic(fd, "st", 3, 0, NULL, NULL), 0);
	cr_assert_eq(produce_n(fd, "st", 2, 5, NULL), 0);
	tc_call(fd, OXBOW__API_KEY__CLUSTER_STATUS, NULL, NULL, 0, &r);
	cr_assert_eq(r.error_code, 0);
	Oxbow__ClusterStatusResponse *m =
		oxbow__cluster_status_response__unpack(NULL, r.body_len, r.body);
	cr_assert_not_null(m);
	cr_assert_eq(m->answering_node, 1);
	cr_assert_eq(m->meta_leader, 1);
	cr_assert_eq(m->n_nodes, 1);
	cr_assert_eq(m->nodes[0]->node_id, 1);
	cr_assert(m->nodes[0]->reachable);
	int seen = 0;
	for (size_t i = 0; i < m->n_partitions; i++) {
		const Oxbow__PartitionStatus *p = m->partitions[i];
		cr_assert_eq(p->leader, 1, "%s/%d", p->topic, p->partition);
		cr_assert_eq(p->n_replicas, 1);
		cr_assert_eq(p->n_in_sync, 1);
		if (strcmp(p->topic, "st") != 0)
			continue;
		seen++;
		cr_assert_eq(p->high_watermark, p->partition == 2 ? 5 : 0);
	}
	cr_assert_eq(seen, 3);
	oxbow__cluster_status_response__free_unpacked(m, NULL);
	tc_resp_free(&r);
	close(fd);
}

Test(server, create_topics_checks)
{
	int fd = tc_connect(H.port);
	char long_name[260];
	memset(long_name, 'n', 250);
	long_name[250] = '\0';
	cr_assert_eq(create_topic(fd, "orders", 3, 0, NULL, NULL), 0);
	cr_assert_eq(create_topic(fd, "orders", 3, 0, NULL, NULL),
		     OXBOW__ERROR_CODE__TOPIC_ALREADY_EXISTS);
	cr_assert_eq(create_topic(fd, "bad/name", 1, 0, NULL, NULL),
		     OXBOW__ERROR_CODE__INVALID_REQUEST);
	cr_assert_eq(create_topic(fd, "..", 1, 0, NULL, NULL),
		     OXBOW__ERROR_CODE__INVALID_REQUEST);
	cr_assert_eq(create_topic(fd, long_name, 1, 0, NULL, NULL),
		     OXBOW__ERROR_CODE__INVALID_REQUEST);
	cr_assert_eq(create_topic(fd, "__mine", 1, 0, NULL, NULL),
		     OXBOW__ERROR_CODE__INVALID_REQUEST);
	cr_assert_eq(create_topic(fd, "wide", 10001, 0, NULL, NULL),
		     OXBOW__ERROR_CODE__INVALID_REQUEST);
	cr_assert_eq(create_topic(fd, "safe", 1, 3, NULL, NULL),
		     OXBOW__ERROR_CODE__NOT_ENOUGH_REPLICAS);
	cr_assert_eq(create_topic(fd, "cfg", 1, 0, "compression", "zstd"),
		     OXBOW__ERROR_CODE__INVALID_CONFIG);
	cr_assert_eq(create_topic(fd, "cfg", 1, 0, "retention.ms", "-7"),
		     OXBOW__ERROR_CODE__INVALID_CONFIG);
	cr_assert_eq(create_topic(fd, "cfg", 0, 1, "retention.ms", "1000"), 0);

	// METADATA: this node leads every partition; __offsets is hidden.
	Oxbow__MetadataRequest mr = OXBOW__METADATA_REQUEST__INIT;
	struct tc_resp r;
	tc_call(fd, OXBOW__API_KEY__METADATA, &mr.base, NULL, 0, &r);
	Oxbow__MetadataResponse *m =
		oxbow__metadata_response__unpack(NULL, r.body_len, r.body);
	cr_assert_not_null(m);
	cr_assert_eq(m->n_brokers, 1u);
	cr_assert_eq(m->brokers[0]->port, H.port);
	cr_assert_str_eq(m->brokers[0]->host, "127.0.0.1");
	cr_assert_eq(m->controller_id, 1);
	cr_assert_eq(m->n_topics, 2u);
	for (size_t i = 0; i < m->n_topics; i++) {
		Oxbow__TopicMetadata *t = m->topics[i];
		cr_assert(!t->internal);
		cr_assert_eq(t->n_partitions,
			     strcmp(t->name, "orders") == 0 ? 3u : 1u);
		cr_assert_eq(t->partitions[0]->leader, 1);
		cr_assert_eq(t->partitions[0]->n_replicas, 1u);
	}
	oxbow__metadata_response__free_unpacked(m, NULL);
	tc_resp_free(&r);

	char *names[] = {"nope", "__offsets"};
	mr.n_topics = 2;
	mr.topics = names;
	tc_call(fd, OXBOW__API_KEY__METADATA, &mr.base, NULL, 0, &r);
	m = oxbow__metadata_response__unpack(NULL, r.body_len, r.body);
	cr_assert_eq(m->topics[0]->error_code, OXBOW__ERROR_CODE__UNKNOWN_TOPIC);
	cr_assert_eq(m->topics[1]->error_code, 0);
	cr_assert(m->topics[1]->internal);
	oxbow__metadata_response__free_unpacked(m, NULL);
	tc_resp_free(&r);
	close(fd);
}

Test(server, produce_and_fetch)
{
	int fd = tc_connect(H.port);
	struct fetched f;
	int64_t base;

	cr_assert_eq(create_topic(fd, "t", 2, 0, NULL, NULL), 0);
	cr_assert_eq(produce_n(fd, "t", 1, 10, &base), 0);
	cr_assert_eq(base, 0);
	cr_assert_eq(produce_n(fd, "t", 1, 5, &base), 0);
	cr_assert_eq(base, 10);
	fetch(fd, "t", 1, 0, 0, 0, &f);
	cr_assert_eq(f.code, 0);
	cr_assert_eq(f.hw, 15);
	cr_assert_eq(f.start, 0);
	cr_assert_eq(f.first_offset, 0);
	cr_assert_eq(f.next_offset, 15);
	cr_assert_eq(f.records, 15);
	fetch(fd, "t", 1, 12, 0, 0, &f); // inside a batch: the whole batch
	cr_assert_eq(f.first_offset, 10);
	fetch(fd, "t", 1, 15, 0, 0, &f);
	cr_assert_eq(f.code, 0);
	cr_assert_eq(f.bytes, 0u);
	fetch(fd, "t", 1, 16, 0, 0, &f);
	cr_assert_eq(f.code, OXBOW__ERROR_CODE__OFFSET_OUT_OF_RANGE);
	cr_assert_eq(f.hw, 15);
	fetch(fd, "t", 0, 0, 0, 0, &f);
	cr_assert_eq(f.hw, 0);
	fetch(fd, "t", 2, 0, 0, 0, &f);
	cr_assert_eq(f.code, OXBOW__ERROR_CODE__UNKNOWN_TOPIC);
	close(fd);
}

Test(server, produce_errors_per_batch)
{
	int fd = tc_connect(H.port);
	uint8_t b[4096], two[8192];
	int64_t base;

	cr_assert_eq(create_topic(fd, "t", 1, 0, "max.message.bytes", "200"), 0);
	size_t len = tc_batch(b, sizeof(b), 3, "x", 0, 5);
	cr_assert_eq(produce(fd, "nope", 0, b, len, (uint32_t)len, NULL),
		     OXBOW__ERROR_CODE__UNKNOWN_TOPIC);
	cr_assert_eq(produce(fd, "t", 1, b, len, (uint32_t)len, NULL),
		     OXBOW__ERROR_CODE__UNKNOWN_TOPIC);
	cr_assert_eq(produce(fd, "__offsets", 0, b, len, (uint32_t)len, NULL),
		     OXBOW__ERROR_CODE__INVALID_REQUEST);
	// bytes disagrees with the raw part: the whole request is refused.
	cr_assert_eq(produce(fd, "t", 0, b, len, (uint32_t)len - 1, NULL),
		     1000 + OXBOW__ERROR_CODE__INVALID_REQUEST);
	b[len - 1] ^= 1; // a record byte: the checksum catches it
	cr_assert_eq(produce(fd, "t", 0, b, len, (uint32_t)len, NULL),
		     OXBOW__ERROR_CODE__CORRUPT_MESSAGE);
	b[len - 1] ^= 1;
	size_t big = tc_batch(two, sizeof(two), 40, "a-long-enough-value", 1, 5);
	cr_assert_gt(big, 200u);
	cr_assert_eq(produce(fd, "t", 0, two, big, (uint32_t)big, NULL),
		     OXBOW__ERROR_CODE__MESSAGE_TOO_LARGE);

	// A control batch from a client is refused.
	struct ox_batch_params p = {.attributes = OX_BATCH_ATTR_CONTROL,
				    .producer_id = -1, .producer_epoch = -1,
				    .base_sequence = -1};
	struct ox_batch_builder bb;
	struct ox_record rec = {.key_len = -1, .value_len = -1};
	size_t cl;
	ox_batch_builder_init(&bb, two, sizeof(two), &p);
	ox_batch_builder_add(&bb, &rec);
	ox_batch_builder_finish(&bb, &cl);
	cr_assert_eq(produce(fd, "t", 0, two, cl, (uint32_t)cl, NULL),
		     OXBOW__ERROR_CODE__INVALID_REQUEST);

	// Two batches, one good and one for a missing partition.
	Oxbow__ProduceRequest req = OXBOW__PRODUCE_REQUEST__INIT;
	Oxbow__ProduceBatch p0 = OXBOW__PRODUCE_BATCH__INIT,
			    p1 = OXBOW__PRODUCE_BATCH__INIT, *pp[2] = {&p0, &p1};
	memcpy(two, b, len);
	memcpy(two + len, b, len);
	p0.topic = "t";
	p0.bytes = (uint32_t)len;
	p1.topic = "t";
	p1.partition = 9;
	p1.bytes = (uint32_t)len;
	req.n_batches = 2;
	req.batches = pp;
	struct tc_resp r;
	tc_call(fd, OXBOW__API_KEY__PRODUCE, &req.base, two, 2 * len, &r);
	Oxbow__ProduceResponse *m =
		oxbow__produce_response__unpack(NULL, r.body_len, r.body);
	cr_assert_eq(m->n_results, 2u);
	cr_assert_eq(m->results[0]->error_code, 0);
	cr_assert_eq(m->results[0]->base_offset, 0);
	cr_assert_eq(m->results[1]->error_code, OXBOW__ERROR_CODE__UNKNOWN_TOPIC);
	cr_assert_str_neq(m->results[1]->error_message, "");
	oxbow__produce_response__free_unpacked(m, NULL);
	tc_resp_free(&r);
	cr_assert_eq(produce(fd, "t", 0, b, len, (uint32_t)len, &base), 0);
	cr_assert_eq(base, 3);
	close(fd);
}

Test(server, acks_none_sends_nothing)
{
	int fd = tc_connect(H.port);
	uint8_t b[4096];
	struct fetched f;

	cr_assert_eq(create_topic(fd, "t", 1, 0, NULL, NULL), 0);
	size_t len = tc_batch(b, sizeof(b), 4, "n", 0, 5);
	Oxbow__ProduceRequest req = OXBOW__PRODUCE_REQUEST__INIT;
	Oxbow__ProduceBatch pb = OXBOW__PRODUCE_BATCH__INIT, *pp = &pb;
	pb.topic = "t";
	pb.bytes = (uint32_t)len;
	req.acks = OXBOW__ACKS__ACKS_NONE;
	req.n_batches = 1;
	req.batches = &pp;
	tc_send(fd, OXBOW__API_KEY__PRODUCE, 1, 7, &req.base, b, len);
	// The next response on this connection is the fetch's: no produce
	// response came before it. Wait for the record with a long-poll.
	fetch(fd, "t", 0, 0, 10000, 1, &f);
	cr_assert_eq(f.records, 4);
	close(fd);
}

Test(server, long_poll_wakes_on_append)
{
	int a = tc_connect(H.port), b = tc_connect(H.port);
	Oxbow__FetchRequest req = OXBOW__FETCH_REQUEST__INIT;
	Oxbow__FetchTarget t = OXBOW__FETCH_TARGET__INIT, *tp = &t;
	struct tc_resp r;
	struct fetched f;

	cr_assert_eq(create_topic(a, "t", 1, 0, NULL, NULL), 0);
	// Nothing there and a short wait: an empty answer.
	fetch(a, "t", 0, 0, 50, 1, &f);
	cr_assert_eq(f.code, 0);
	cr_assert_eq(f.bytes, 0u);

	t.topic = "t";
	req.max_wait_ms = 30000;
	req.min_bytes = 1;
	req.n_targets = 1;
	req.targets = &tp;
	tc_send(b, OXBOW__API_KEY__FETCH, 1, 99, &req.base, NULL, 0);
	// The fetch is parked (or not yet read): either way its answer
	// must carry the record, which only the wake-up can deliver well
	// before the 30 s wait ends.
	cr_assert_eq(produce_n(a, "t", 0, 3, NULL), 0);
	cr_assert_eq(tc_recv(b, &r), 0);
	cr_assert_eq(r.corr, 99u);
	Oxbow__FetchResponse *m =
		oxbow__fetch_response__unpack(NULL, r.body_len, r.body);
	cr_assert_eq(m->partitions[0]->error_code, 0);
	cr_assert_gt(m->partitions[0]->bytes, 0u);
	cr_assert_eq(m->partitions[0]->high_watermark, 3);
	oxbow__fetch_response__free_unpacked(m, NULL);
	tc_resp_free(&r);
	close(a);
	close(b);
}

Test(server, list_offsets)
{
	int fd = tc_connect(H.port);
	Oxbow__ListOffsetsRequest req = OXBOW__LIST_OFFSETS_REQUEST__INIT;
	Oxbow__ListOffsetsTarget t[4], *tp[4];
	struct tc_resp r;

	cr_assert_eq(create_topic(fd, "t", 1, 0, NULL, NULL), 0);
	cr_assert_eq(produce_n(fd, "t", 0, 10, NULL), 0); // ts 1000..1009
	for (int i = 0; i < 4; i++) {
		Oxbow__ListOffsetsTarget init = OXBOW__LIST_OFFSETS_TARGET__INIT;
		t[i] = init;
		t[i].topic = "t";
		tp[i] = &t[i];
	}
	t[0].spec = OXBOW__OFFSET_SPEC__OFFSET_SPEC_EARLIEST;
	t[1].spec = OXBOW__OFFSET_SPEC__OFFSET_SPEC_LATEST;
	t[2].spec = OXBOW__OFFSET_SPEC__OFFSET_SPEC_TIMESTAMP;
	t[2].timestamp = 1004;
	t[3].spec = OXBOW__OFFSET_SPEC__OFFSET_SPEC_TIMESTAMP;
	t[3].timestamp = 999999;
	req.n_targets = 4;
	req.targets = tp;
	tc_call(fd, OXBOW__API_KEY__LIST_OFFSETS, &req.base, NULL, 0, &r);
	Oxbow__ListOffsetsResponse *m =
		oxbow__list_offsets_response__unpack(NULL, r.body_len, r.body);
	cr_assert_eq(m->n_results, 4u);
	cr_assert_eq(m->results[0]->offset, 0);
	cr_assert_eq(m->results[1]->offset, 10);
	cr_assert_eq(m->results[2]->offset, 4);
	cr_assert_eq(m->results[3]->offset, 10);
	oxbow__list_offsets_response__free_unpacked(m, NULL);
	tc_resp_free(&r);
	close(fd);
}

static void commit(int fd, const char *group, const char *topic,
		   uint32_t part, int64_t off, int *code)
{
	Oxbow__OffsetCommitRequest req = OXBOW__OFFSET_COMMIT_REQUEST__INIT;
	Oxbow__GroupOffset g = OXBOW__GROUP_OFFSET__INIT, *gp = &g;
	struct tc_resp r;

	req.group = (char *)group;
	g.topic = (char *)topic;
	g.partition = part;
	g.offset = off;
	g.metadata = "meta";
	req.n_offsets = 1;
	req.offsets = &gp;
	tc_call(fd, OXBOW__API_KEY__OFFSET_COMMIT, &req.base, NULL, 0, &r);
	cr_assert_eq(r.error_code, 0);
	Oxbow__OffsetCommitResponse *m =
		oxbow__offset_commit_response__unpack(NULL, r.body_len, r.body);
	cr_assert_eq(m->n_offsets, 1u);
	*code = m->offsets[0]->error_code;
	oxbow__offset_commit_response__free_unpacked(m, NULL);
	tc_resp_free(&r);
}

// The group's committed offsets, all of them: count and the sum.
static void fetch_group(int fd, const char *group, size_t *n, int64_t *sum)
{
	Oxbow__OffsetFetchRequest req = OXBOW__OFFSET_FETCH_REQUEST__INIT;
	struct tc_resp r;
	req.group = (char *)group;
	tc_call(fd, OXBOW__API_KEY__OFFSET_FETCH, &req.base, NULL, 0, &r);
	cr_assert_eq(r.error_code, 0);
	Oxbow__OffsetFetchResponse *m =
		oxbow__offset_fetch_response__unpack(NULL, r.body_len, r.body);
	*n = m->n_offsets;
	*sum = 0;
	for (size_t i = 0; i < m->n_offsets; i++) {
		*sum += m->offsets[i]->offset;
		cr_assert_str_eq(m->offsets[i]->metadata, "meta");
	}
	oxbow__offset_fetch_response__free_unpacked(m, NULL);
	tc_resp_free(&r);
}

static size_t list_groups(int fd, char *first, size_t cap)
{
	Oxbow__ListGroupsRequest req = OXBOW__LIST_GROUPS_REQUEST__INIT;
	struct tc_resp r;
	tc_call(fd, OXBOW__API_KEY__LIST_GROUPS, &req.base, NULL, 0, &r);
	Oxbow__ListGroupsResponse *m =
		oxbow__list_groups_response__unpack(NULL, r.body_len, r.body);
	size_t n = m->n_groups;
	if (n)
		snprintf(first, cap, "%s", m->groups[0]);
	oxbow__list_groups_response__free_unpacked(m, NULL);
	tc_resp_free(&r);
	return n;
}

Test(server, group_offsets_survive_restart_and_topic_delete)
{
	int fd = tc_connect(H.port), code;
	char first[64];
	size_t n;
	int64_t sum;

	cr_assert_eq(create_topic(fd, "t", 2, 0, NULL, NULL), 0);
	cr_assert_eq(create_topic(fd, "u", 1, 0, NULL, NULL), 0);
	commit(fd, "g1", "t", 0, 5, &code);
	cr_assert_eq(code, 0);
	commit(fd, "g1", "t", 0, 7, &code); // replaces
	commit(fd, "g1", "t", 1, 3, &code);
	commit(fd, "g0", "u", 0, 1, &code);
	commit(fd, "g1", "nope", 0, 1, &code);
	cr_assert_eq(code, OXBOW__ERROR_CODE__UNKNOWN_TOPIC);
	commit(fd, "g1", "t", 0, -2, &code);
	cr_assert_eq(code, OXBOW__ERROR_CODE__INVALID_REQUEST);
	commit(fd, "", "t", 0, 1, &code);
	cr_assert_eq(code, OXBOW__ERROR_CODE__INVALID_REQUEST);
	fetch_group(fd, "g1", &n, &sum);
	cr_assert_eq(n, 2u);
	cr_assert_eq(sum, 10);
	cr_assert_eq(list_groups(fd, first, sizeof(first)), 2u);
	cr_assert_str_eq(first, "g0");
	close(fd);

	stop();
	cr_assert_eq(start(), 0);
	fd = tc_connect(H.port);
	fetch_group(fd, "g1", &n, &sum);
	cr_assert_eq(n, 2u, "commits survive a restart");
	cr_assert_eq(sum, 10);

	// Deleting t drops its group offsets, now and after a restart.
	Oxbow__DeleteTopicsRequest dr = OXBOW__DELETE_TOPICS_REQUEST__INIT;
	char *names[] = {"t", "t", "__offsets"};
	struct tc_resp r;
	dr.n_names = 3;
	dr.names = names;
	tc_call(fd, OXBOW__API_KEY__DELETE_TOPICS, &dr.base, NULL, 0, &r);
	Oxbow__DeleteTopicsResponse *m =
		oxbow__delete_topics_response__unpack(NULL, r.body_len, r.body);
	cr_assert_eq(m->topics[0]->error_code, 0);
	cr_assert_eq(m->topics[1]->error_code, OXBOW__ERROR_CODE__UNKNOWN_TOPIC);
	cr_assert_eq(m->topics[2]->error_code, OXBOW__ERROR_CODE__INVALID_REQUEST);
	oxbow__delete_topics_response__free_unpacked(m, NULL);
	tc_resp_free(&r);
	fetch_group(fd, "g1", &n, &sum);
	cr_assert_eq(n, 0u);
	cr_assert_eq(list_groups(fd, first, sizeof(first)), 1u);
	struct fetched f;
	fetch(fd, "t", 0, 0, 0, 0, &f);
	cr_assert_eq(f.code, OXBOW__ERROR_CODE__UNKNOWN_TOPIC);
	// The name is free again, and the new topic starts empty.
	cr_assert_eq(create_topic(fd, "t", 1, 0, NULL, NULL), 0);
	fetch(fd, "t", 0, 0, 0, 0, &f);
	cr_assert_eq(f.hw, 0);
	close(fd);

	stop();
	cr_assert_eq(start(), 0);
	fd = tc_connect(H.port);
	fetch_group(fd, "g1", &n, &sum);
	cr_assert_eq(n, 0u);
	fetch_group(fd, "g0", &n, &sum);
	cr_assert_eq(n, 1u);
	close(fd);
}

// A node alone has nowhere to move a partition: REASSIGN_PARTITION is
// refused, saying why, for a topic it has and for one it has not.
Test(server, reassign_on_a_node_alone_is_refused)
{
	int fd = tc_connect(H.port);
	Oxbow__ReassignPartitionRequest req =
		OXBOW__REASSIGN_PARTITION_REQUEST__INIT;
	int32_t ids[] = { 1 };
	const char *names[] = { "lonely", "nothing" };
	const int want[] = { OXBOW__ERROR_CODE__INVALID_REQUEST,
			     OXBOW__ERROR_CODE__UNKNOWN_TOPIC };
	struct tc_resp r;

	cr_assert_eq(create_topic(fd, "lonely", 1, 0, NULL, NULL), 0);
	req.partition = 0;
	req.n_replicas = 1;
	req.replicas = ids;
	for (int i = 0; i < 2; i++) {
		req.topic = (char *)names[i];
		tc_call(fd, OXBOW__API_KEY__REASSIGN_PARTITION, &req.base, NULL,
			0, &r);
		cr_assert_eq(r.error_code, 0);
		Oxbow__ReassignPartitionResponse *m =
			oxbow__reassign_partition_response__unpack(
				NULL, r.body_len, r.body);
		cr_assert_not_null(m);
		cr_assert_not_null(m->result);
		cr_assert_eq(m->result->error_code, want[i], "%s", names[i]);
		cr_assert_not_null(strstr(m->result->error_message,
					  "without peers"));
		oxbow__reassign_partition_response__free_unpacked(m, NULL);
		tc_resp_free(&r);
	}
	close(fd);
}

// A node alone coordinates every group itself; a bad name is refused.
Test(server, find_coordinator_of_one_node)
{
	int fd = tc_connect(H.port);
	Oxbow__FindCoordinatorRequest req = OXBOW__FIND_COORDINATOR_REQUEST__INIT;
	char longname[300];
	struct tc_resp r;

	req.group = "billing";
	tc_call(fd, OXBOW__API_KEY__FIND_COORDINATOR, &req.base, NULL, 0, &r);
	cr_assert_eq(r.error_code, 0);
	Oxbow__FindCoordinatorResponse *m =
		oxbow__find_coordinator_response__unpack(NULL, r.body_len,
							 r.body);
	cr_assert_not_null(m);
	cr_assert_eq(m->node_id, 1);
	cr_assert_str_eq(m->host, "127.0.0.1");
	cr_assert_eq(m->port, H.port);
	oxbow__find_coordinator_response__free_unpacked(m, NULL);
	tc_resp_free(&r);

	memset(longname, 'g', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	const char *bad[] = {"", longname};
	for (size_t i = 0; i < 2; i++) {
		req.group = (char *)bad[i];
		tc_call(fd, OXBOW__API_KEY__FIND_COORDINATOR, &req.base, NULL,
			0, &r);
		cr_assert_eq(r.error_code, OXBOW__ERROR_CODE__INVALID_REQUEST);
		tc_resp_free(&r);
	}
	close(fd);
}

Test(server, topics_and_data_survive_restart)
{
	int fd = tc_connect(H.port);
	struct fetched f;

	cr_assert_eq(create_topic(fd, "keep", 2, 0, "retention.ms", "86400000"), 0);
	cr_assert_eq(produce_n(fd, "keep", 1, 20, NULL), 0);
	close(fd);
	stop();
	cr_assert_eq(start(), 0);
	fd = tc_connect(H.port);
	fetch(fd, "keep", 1, 0, 0, 0, &f);
	cr_assert_eq(f.records, 20);
	cr_assert_eq(f.hw, 20);
	cr_assert_eq(create_topic(fd, "keep", 2, 0, NULL, NULL),
		     OXBOW__ERROR_CODE__TOPIC_ALREADY_EXISTS);
	close(fd);
}

static void describe(int fd, const char *topic, char *out, size_t cap)
{
	Oxbow__DescribeConfigsRequest req = OXBOW__DESCRIBE_CONFIGS_REQUEST__INIT;
	char *names[] = {(char *)topic};
	struct tc_resp r;
	req.n_topics = 1;
	req.topics = names;
	tc_call(fd, OXBOW__API_KEY__DESCRIBE_CONFIGS, &req.base, NULL, 0, &r);
	Oxbow__DescribeConfigsResponse *m =
		oxbow__describe_configs_response__unpack(NULL, r.body_len, r.body);
	size_t len = 0;
	out[0] = '\0';
	if (m->topics[0]->error_code)
		snprintf(out, cap, "error %d", m->topics[0]->error_code);
	for (size_t i = 0; i < m->topics[0]->n_configs; i++)
		len += (size_t)snprintf(out + len, cap - len, "%s=%s;",
					m->topics[0]->configs[i]->key,
					m->topics[0]->configs[i]->value);
	oxbow__describe_configs_response__free_unpacked(m, NULL);
	tc_resp_free(&r);
}

static int alter(int fd, const char *topic, const char *k, const char *v,
		 const char *k2, const char *v2)
{
	Oxbow__AlterConfigsRequest req = OXBOW__ALTER_CONFIGS_REQUEST__INIT;
	Oxbow__ConfigEntry e[2] = {OXBOW__CONFIG_ENTRY__INIT,
				   OXBOW__CONFIG_ENTRY__INIT};
	Oxbow__ConfigEntry *ep[2] = {&e[0], &e[1]};
	struct tc_resp r;
	req.topic = (char *)topic;
	e[0].key = (char *)k;
	e[0].value = (char *)v;
	e[1].key = (char *)k2;
	e[1].value = (char *)v2;
	req.n_set = k2 ? 2 : 1;
	req.set = ep;
	tc_call(fd, OXBOW__API_KEY__ALTER_CONFIGS, &req.base, NULL, 0, &r);
	Oxbow__AlterConfigsResponse *m =
		oxbow__alter_configs_response__unpack(NULL, r.body_len, r.body);
	int code = m->result->error_code;
	oxbow__alter_configs_response__free_unpacked(m, NULL);
	tc_resp_free(&r);
	return code;
}

Test(server, describe_and_alter_configs)
{
	int fd = tc_connect(H.port);
	char d[1024];
	struct fetched f;

	cr_assert_eq(create_topic(fd, "t", 1, 0, "cleanup.policy", "compact"), 0);
	describe(fd, "t", d, sizeof(d));
	cr_assert_str_eq(d, "cleanup.policy=compact;delete.retention.ms=86400000;"
			    "max.message.bytes=1048576;partitions=1;"
			    "retention.bytes=-1;retention.ms=604800000;"
			    "segment.bytes=1073741824;segment.ms=604800000;");
	cr_assert_eq(alter(fd, "t", "retention.ms", "5000", "partitions", "3"), 0);
	describe(fd, "t", d, sizeof(d));
	cr_assert(strstr(d, "retention.ms=5000;") && strstr(d, "partitions=3;"),
		  "%s", d);
	cr_assert_eq(produce_n(fd, "t", 2, 2, NULL), 0, "a new partition works");
	fetch(fd, "t", 2, 0, 0, 0, &f);
	cr_assert_eq(f.records, 2);
	// All or nothing: one bad key and nothing changes.
	cr_assert_eq(alter(fd, "t", "retention.ms", "9", "bogus", "1"),
		     OXBOW__ERROR_CODE__INVALID_CONFIG);
	cr_assert_eq(alter(fd, "t", "partitions", "2", NULL, NULL),
		     OXBOW__ERROR_CODE__INVALID_CONFIG);
	cr_assert_eq(alter(fd, "t", "replicas", "3", NULL, NULL),
		     OXBOW__ERROR_CODE__INVALID_CONFIG);
	cr_assert_eq(alter(fd, "nope", "retention.ms", "1", NULL, NULL),
		     OXBOW__ERROR_CODE__UNKNOWN_TOPIC);
	cr_assert_eq(alter(fd, "__offsets", "retention.ms", "1", NULL, NULL),
		     OXBOW__ERROR_CODE__INVALID_REQUEST);
	describe(fd, "t", d, sizeof(d));
	cr_assert(strstr(d, "retention.ms=5000;"), "%s", d);
	describe(fd, "nope", d, sizeof(d));
	cr_assert_str_eq(d, "error 6");
	close(fd);
	// The change is in the metadata file.
	stop();
	cr_assert_eq(start(), 0);
	fd = tc_connect(H.port);
	describe(fd, "t", d, sizeof(d));
	cr_assert(strstr(d, "retention.ms=5000;") && strstr(d, "partitions=3;"),
		  "%s", d);
	close(fd);
}

Test(server, malformed_requests)
{
	int fd = tc_connect(H.port);
	struct tc_resp r;

	tc_send(fd, 77, 1, 1, NULL, NULL, 0); // unknown api
	cr_assert_eq(tc_recv(fd, &r), 0);
	cr_assert_eq(r.error_code, OXBOW__ERROR_CODE__UNSUPPORTED_VERSION);
	tc_resp_free(&r);
	tc_send(fd, OXBOW__API_KEY__METADATA, 2, 2, NULL, NULL, 0);
	cr_assert_eq(tc_recv(fd, &r), 0);
	cr_assert_eq(r.error_code, OXBOW__ERROR_CODE__UNSUPPORTED_VERSION);
	tc_resp_free(&r);
	tc_send(fd, OXBOW__API_KEY__TABLE_GET, 1, 3, NULL, NULL, 0);
	cr_assert_eq(tc_recv(fd, &r), 0);
	cr_assert_eq(r.error_code, OXBOW__ERROR_CODE__UNSUPPORTED_VERSION);
	tc_resp_free(&r);
	tc_send(fd, OXBOW__API_KEY__METADATA, 1, 4, NULL, "xx", 2);
	cr_assert_eq(tc_recv(fd, &r), 0);
	cr_assert_eq(r.error_code, OXBOW__ERROR_CODE__INVALID_REQUEST);
	tc_resp_free(&r);
	// A body protobuf-c cannot parse closes the connection.
	uint8_t junk[] = {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f};
	// Raw frame: header, body length 6, a truncated length-delimited field.
	Oxbow__RequestHeader h = OXBOW__REQUEST_HEADER__INIT;
	h.api_key = OXBOW__API_KEY__CREATE_TOPICS;
	h.api_version = 1;
	h.correlation_id = 5;
	uint8_t frame[128];
	size_t hl = oxbow__request_header__pack(&h, frame + 8);
	ox_frame_prefix_encode(frame, hl, 4 + sizeof(junk));
	frame[8 + hl] = sizeof(junk);
	frame[9 + hl] = frame[10 + hl] = frame[11 + hl] = 0;
	memcpy(frame + 12 + hl, junk, sizeof(junk));
	cr_assert_eq(write(fd, frame, 12 + hl + sizeof(junk)),
		     (ssize_t)(12 + hl + sizeof(junk)));
	cr_assert_eq(tc_recv(fd, &r), -1, "the connection is closed");
	close(fd);
	// The server is still fine.
	fd = tc_connect(H.port);
	tc_call(fd, OXBOW__API_KEY__API_VERSIONS, NULL, NULL, 0, &r);
	cr_assert_eq(r.error_code, 0);
	tc_resp_free(&r);
	close(fd);
}

Test(server, shutting_down_answers_and_removes_ready)
{
	int fd = tc_connect(H.port);
	char path[128];
	struct tc_resp r;

	atomic_store(&H.shutdown, 1);
	snprintf(path, sizeof(path), "%s/ready", H.dir);
	while (access(path, F_OK) == 0)
		usleep(1000); // shutdown removes it first
	tc_call(fd, OXBOW__API_KEY__API_VERSIONS, NULL, NULL, 0, &r);
	cr_assert_eq(r.error_code, OXBOW__ERROR_CODE__SHUTTING_DOWN);
	tc_resp_free(&r);
	close(fd);
}

Test(server, data_dir_is_locked)
{
	struct ox_io *io;
	struct ox_server *srv;
	char err[512];
	struct ox_io_opts opts = {.backend = OX_IO_BACKEND_SYNC};

	cr_assert_eq(ox_io_create(&io, &opts), 0);
	cr_assert_eq(ox_server_create(&srv, io, &H.cfg, err, sizeof(err)),
		     -EWOULDBLOCK);
	cr_assert(strstr(err, "in use"), "%s", err);
	ox_io_destroy(io);
	char path[128];
	snprintf(path, sizeof(path), "%s/ready", H.dir);
	cr_assert_eq(access(path, F_OK), 0, "the running node's file stays");
}

Test(server, damaged_metadata_refuses_to_start)
{
	char path[128];
	stop();
	snprintf(path, sizeof(path), "%s/topics.meta", H.dir);
	int fd = open(path, O_WRONLY);
	cr_assert(fd >= 0);
	cr_assert_eq(pwrite(fd, "X", 1, 3), 1);
	close(fd);
	cr_assert_eq(start(), -OX_ECORRUPT);
}

// Retention through the broker: small segments, a size limit, and the
// check on every tick; the old offsets then answer OFFSET_OUT_OF_RANGE.
Test(server, retention_moves_the_log_start)
{
	char err[512];
	struct fetched f;
	stop();
	ox_config_set(&H.cfg, "log.retention.check.interval.ms", "1", err,
		      sizeof(err));
	cr_assert_eq(start(), 0);
	int fd = tc_connect(H.port);
	cr_assert_eq(create_topic(fd, "r", 1, 0, "segment.bytes", "300"), 0);
	Oxbow__AlterConfigsRequest req = OXBOW__ALTER_CONFIGS_REQUEST__INIT;
	Oxbow__ConfigEntry e = OXBOW__CONFIG_ENTRY__INIT, *ep = &e;
	struct tc_resp r;
	req.topic = "r";
	e.key = "retention.bytes";
	e.value = "400";
	req.n_set = 1;
	req.set = &ep;
	tc_call(fd, OXBOW__API_KEY__ALTER_CONFIGS, &req.base, NULL, 0, &r);
	tc_resp_free(&r);
	for (int i = 0; i < 10; i++)
		cr_assert_eq(produce_n(fd, "r", 0, 5, NULL), 0);
	// Wait for a retention pass (each tick runs one); bounded, so a
	// broken timer fails the test instead of hanging it.
	for (int i = 0; i < 2000; i++) {
		fetch(fd, "r", 0, 0, 0, 0, &f);
		if (f.code)
			break;
		usleep(5000);
	}
	cr_assert_eq(f.code, OXBOW__ERROR_CODE__OFFSET_OUT_OF_RANGE);
	cr_assert_gt(f.start, 0);
	cr_assert_eq(f.hw, 50);
	fetch(fd, "r", 0, f.start, 0, 0, &f);
	cr_assert_eq(f.code, 0);
	cr_assert_eq(f.next_offset, 50);
	close(fd);
}
