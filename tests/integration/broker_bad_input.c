// SPDX-License-Identifier: Apache-2.0
//
// Hostile-client test of one oxbowd over raw sockets. After records are
// stored (through liboxbow and one raw produce, which also proves the raw
// framing here is right), each bad input goes on a fresh connection:
// random bytes, truncated frames, absurd frame lengths (0xffffffff, under
// 4, over the limit), header lengths past the frame or over their limit,
// headers and bodies that are not protobuf, body lengths past the payload,
// batches with a wrong checksum or record count, ProduceBatch.bytes that
// does not match the batch, unknown topics and partitions, unknown api
// keys and versions, raw bytes after a body that carries none. Each must
// get an error response or a closed connection within a bound (a silent
// open connection fails), and the process must stay alive. At the end no
// partition has grown from the bad inputs, every stored record is intact
// at its offset, and a fresh client still produces and consumes.
// A plain program (exit 0 pass, 1 fail, 77 skip): argv[1] is oxbowd.
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proto/batch.h"
#include "proto/frame.h"
#include "proto/varint.h"
#include "proto/wire.h"
#include "tests/integration/broker_common.h"

#define PARTITIONS 2
#define STORED 300           // records produced through liboxbow first
#define RAW_INDEX 100000     // indices of the records of the raw produce
#define BAD_INDEX 200000     // indices in batches that must be refused
#define AFTER_INDEX 300000   // indices produced after the bad inputs
#define AFTER 20
#define VALUE_BYTES 64
#define ANSWER_MS 10000      // an error response or a close within this
#define RANDOM_ROUNDS 40
#define TRUNCATED_ROUNDS 20
#define BATCH_CAP 65536
#define WATCHDOG_S 300

static const char topic[] = "bad";
static struct bc_broker broker;
static uint64_t corr = 1;

// Where each good record is expected, by index.
struct where {
	uint64_t index;
	int32_t part;
	int64_t off;
	bool seen;
};
static struct where expect[STORED + 8 + AFTER];
static size_t nexpect;

static void delivered(void *opaque, int err, const char *t, int32_t part,
		      int64_t off)
{
	struct where *w = opaque;

	(void)t;
	CHECK(err == 0, "delivery of record %" PRIu64 ": %s", w->index,
	      ox_strerror(err));
	w->part = part;
	w->off = off;
}

static void produce_good(uint64_t first, size_t n)
{
	uint8_t value[VALUE_BYTES];
	struct ox_producer *p = NULL;
	struct ox_conf *c = bc_conf(&broker, NULL);
	char err[256];

	if (ox_producer_create(&p, c, err, sizeof(err)) < 0)
		bc_dief("ox_producer_create: %s", err);
	ox_conf_destroy(c);
	for (size_t k = 0; k < n; k++) {
		struct where *w = &expect[nexpect++];
		w->index = first + k;
		w->part = -1;
		bc_value_fill(value, w->index, sizeof(value));
		struct ox_message m = { .topic = topic,
					.partition = (int32_t)(k % PARTITIONS),
					.value = value,
					.value_len = sizeof(value),
					.cb = delivered,
					.opaque = w };
		int rc = ox_producer_send(p, &m);
		CHECK(rc == 0, "send: %s", ox_strerror(rc));
	}
	int rc = ox_producer_flush(p, 60000);
	CHECK(rc == 0, "flush: %s", ox_strerror(rc));
	ox_producer_destroy(p);
}

// Whether a response says the request failed: its header, or for the
// APIs with per-partition results, every result.
static bool response_is_error(uint32_t api, const struct bc_response *r)
{
	if (r->header->error_code != OXBOW__ERROR_CODE__NONE)
		return true;
	if (api == OXBOW__API_KEY__PRODUCE) {
		Oxbow__ProduceResponse *pr = oxbow__produce_response__unpack(
			NULL, r->body_len, r->body);
		bool all = pr && pr->n_results > 0;
		for (size_t i = 0; pr && i < pr->n_results; i++)
			all = all && pr->results[i]->error_code !=
					     OXBOW__ERROR_CODE__NONE;
		if (pr)
			oxbow__produce_response__free_unpacked(pr, NULL);
		return all;
	}
	if (api == OXBOW__API_KEY__FETCH) {
		Oxbow__FetchResponse *fr = oxbow__fetch_response__unpack(
			NULL, r->body_len, r->body);
		bool all = fr && fr->n_partitions > 0;
		for (size_t i = 0; fr && i < fr->n_partitions; i++)
			all = all && fr->partitions[i]->error_code !=
					     OXBOW__ERROR_CODE__NONE;
		if (fr)
			oxbow__fetch_response__free_unpacked(fr, NULL);
		return all;
	}
	return false;
}

// Sends bytes on a fresh connection (then half-closes it when asked, for
// input that is incomplete by design) and requires an error response or
// a close within ANSWER_MS, and the broker alive after.
static void expect_refused(const char *what, uint32_t api, const void *buf,
			   size_t len, bool half_close)
{
	int fd = bc_connect(broker.port, ANSWER_MS);

	if (fd < 0) {
		CHECK(0, "%s: cannot connect: %s", what, strerror(-fd));
		return;
	}
	// A broker that closes early makes the send fail: that is a refusal.
	int rc = bc_send_all(fd, buf, len);
	if (rc == 0 && half_close)
		shutdown(fd, SHUT_WR);
	struct bc_response r;
	rc = bc_response_read(fd, ANSWER_MS, &r);
	if (rc == 1) {
		CHECK(response_is_error(api, &r), "%s: answered with "
		      "success (header error %d)", what,
		      (int)r.header->error_code);
		bc_response_free(&r);
	} else {
		CHECK(rc == 0, "%s: %s", what,
		      rc == -ETIMEDOUT ? "neither an error nor a close"
				       : "malformed response");
	}
	close(fd);
	CHECK(bc_broker_alive(&broker), "oxbowd died after: %s", what);
	if (!bc_broker_alive(&broker))
		bc_finish();
}

// A frame with the given prefix fields and body bytes after it.
static uint8_t *raw_frame(uint32_t frame_len, uint32_t header_len,
			  const void *rest, size_t rest_len, size_t *len_out)
{
	uint8_t *f = malloc(8 + rest_len);

	if (!f)
		bc_die("malloc", -ENOMEM);
	ox_store_le32(f, frame_len);
	ox_store_le32(f + 4, header_len);
	if (rest_len)
		memcpy(f + 8, rest, rest_len);
	*len_out = 8 + rest_len;
	return f;
}

static void random_bytes(void)
{
	uint8_t buf[4096];

	for (int round = 0; round < RANDOM_ROUNDS; round++) {
		size_t len = 1 + bc_rng_below(sizeof(buf));
		for (size_t i = 0; i < len; i++)
			buf[i] = (uint8_t)bc_rng();
		// Half the rounds carry a plausible prefix, so that the
		// random part reaches the header and body decoders.
		if (round % 2 && len >= 8) {
			ox_store_le32(buf, (uint32_t)(len - 4));
			ox_store_le32(buf + 4,
				      (uint32_t)bc_rng_below(len - 8 + 1));
		}
		char what[64];
		snprintf(what, sizeof(what), "random bytes #%d (%zu)", round,
			 len);
		expect_refused(what, 0, buf, len, true);
	}
}

static void truncated(const uint8_t *batch, size_t blen)
{
	size_t flen;
	uint8_t *f = bc_produce_frame(corr++, OXBOW__ACKS__ACKS_ALL, topic, 0,
				      batch, blen, (uint32_t)blen, &flen);

	for (int round = 0; round < TRUNCATED_ROUNDS; round++) {
		size_t cut = 1 + bc_rng_below(flen - 1);
		char what[64];
		snprintf(what, sizeof(what), "produce frame cut at %zu of %zu",
			 cut, flen);
		expect_refused(what, OXBOW__API_KEY__PRODUCE, f, cut, true);
	}
	free(f);
}

static void bad_prefixes(void)
{
	static const uint8_t filler[16];
	static const struct {
		const char *what;
		uint32_t frame_len, header_len;
	} cases[] = {
		{ "frame length 0xffffffff", 0xffffffffu, 4 },
		{ "frame length over the limit", OX_FRAME_BYTES_MAX + 1, 4 },
		{ "frame length 0", 0, 0 },
		{ "frame length 3", 3, 0 },
		{ "header length past the frame", 12, 100 },
		{ "header length 0xffffffff", 12, 0xffffffffu },
		{ "header length over its limit", OX_FRAME_HEADER_BYTES_MAX + 64,
		  OX_FRAME_HEADER_BYTES_MAX + 1 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len;
		uint8_t *f = raw_frame(cases[i].frame_len, cases[i].header_len,
				       filler, sizeof(filler), &len);
		// No half-close: the prefix alone must make the broker drop
		// the connection, without waiting for the rest.
		expect_refused(cases[i].what, 0, f, len, false);
		free(f);
	}
}

// Frames whose prefix is right but whose header or body is not.
static void bad_protobuf(void)
{
	uint8_t garbage[32], rest[64];
	size_t len;

	memset(garbage, 0xff, sizeof(garbage));
	// A header that is not a RequestHeader, then an empty payload.
	memcpy(rest, garbage, 16);
	ox_store_le32(rest + 16, 0);
	uint8_t *f = raw_frame(4 + 16 + 4, 16, rest, 20, &len);
	expect_refused("header not protobuf", 0, f, len, false);
	free(f);

	// A valid PRODUCE header with a body that is not protobuf.
	Oxbow__RequestHeader h = OXBOW__REQUEST_HEADER__INIT;
	h.api_key = OXBOW__API_KEY__PRODUCE;
	h.api_version = 1;
	h.correlation_id = corr++;
	size_t hlen = oxbow__request_header__get_packed_size(&h);
	oxbow__request_header__pack(&h, rest);
	ox_store_le32(rest + hlen, sizeof(garbage) - 8);
	memcpy(rest + hlen + 4, garbage, sizeof(garbage) - 8);
	size_t plen = hlen + 4 + sizeof(garbage) - 8;
	f = raw_frame((uint32_t)(4 + plen), (uint32_t)hlen, rest, plen, &len);
	expect_refused("produce body not protobuf", OXBOW__API_KEY__PRODUCE,
		       f, len, false);
	free(f);

	// A body length past the end of the payload.
	ox_store_le32(rest + hlen, 1000);
	f = raw_frame((uint32_t)(4 + hlen + 4 + 4), (uint32_t)hlen, rest,
		      hlen + 8, &len);
	expect_refused("body length past the payload", OXBOW__API_KEY__PRODUCE,
		       f, len, false);
	free(f);
}

static void produce_refused(const char *what, const char *t, uint32_t part,
			    const uint8_t *batch, size_t blen,
			    uint32_t declared)
{
	size_t flen;
	uint8_t *f = bc_produce_frame(corr++, OXBOW__ACKS__ACKS_ALL, t, part,
				      batch, blen, declared, &flen);

	expect_refused(what, OXBOW__API_KEY__PRODUCE, f, flen, false);
	free(f);
}

static void bad_batches(const uint8_t *good, size_t blen)
{
	uint8_t b[BATCH_CAP * 2];

	memcpy(b, good, blen);
	b[blen - 3] ^= 0x5a;
	produce_refused("batch with a wrong checksum", topic, 0, b, blen,
			(uint32_t)blen);

	memcpy(b, good, blen);
	ox_store_le32(b + 36, ox_load_le32(b + 36) + 1);
	ox_store_le64(b, ox_batch_checksum(b, blen));
	produce_refused("record count one too many", topic, 0, b, blen,
			(uint32_t)blen);

	memcpy(b, good, blen);
	ox_store_le32(b + 36, ox_load_le32(b + 36) - 1);
	ox_store_le64(b, ox_batch_checksum(b, blen));
	produce_refused("record count one too few", topic, 0, b, blen,
			(uint32_t)blen);

	memcpy(b, good, blen);
	ox_store_le32(b + 8, (uint32_t)blen + 100);
	ox_store_le64(b, ox_batch_checksum(b, blen));
	produce_refused("batch length past the frame", topic, 0, b, blen,
			(uint32_t)blen);

	produce_refused("ProduceBatch.bytes too large", topic, 0, good, blen,
			(uint32_t)blen + 7);
	produce_refused("ProduceBatch.bytes too small", topic, 0, good, blen,
			(uint32_t)blen - 7);
	produce_refused("ProduceBatch.bytes 0", topic, 0, good, blen, 0);
	produce_refused("a ProduceBatch without its batch", topic, 0, good, 0,
			(uint32_t)blen);
	memcpy(b, good, blen);
	memcpy(b + blen, good, blen);
	produce_refused("two batches for one ProduceBatch", topic, 0, b,
			2 * blen, (uint32_t)blen);
	produce_refused("unknown topic", "no-such-topic", 0, good, blen,
			(uint32_t)blen);
	produce_refused("partition out of range", topic, 99, good, blen,
			(uint32_t)blen);
	produce_refused("empty topic name", "", 0, good, blen, (uint32_t)blen);
}

static void bad_requests(void)
{
	size_t flen;
	uint8_t *f = bc_fetch_frame(corr++, "no-such-topic", 0, 0, 1 << 20, 0,
				    &flen);
	expect_refused("fetch of an unknown topic", OXBOW__API_KEY__FETCH, f,
		       flen, false);
	free(f);
	f = bc_fetch_frame(corr++, topic, 77, 0, 1 << 20, 0, &flen);
	expect_refused("fetch of a partition out of range",
		       OXBOW__API_KEY__FETCH, f, flen, false);
	free(f);

	static const uint32_t keys[] = { 0, 999, 0x7fffffff, 19 };
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		char what[64];
		snprintf(what, sizeof(what), "api key %u", keys[i]);
		f = bc_frame_build(keys[i], 1, corr++, NULL, NULL, 0, &flen);
		expect_refused(what, keys[i], f, flen, false);
		free(f);
	}
	f = bc_frame_build(OXBOW__API_KEY__METADATA, 99, corr++, NULL, NULL, 0,
			   &flen);
	expect_refused("metadata version 99", OXBOW__API_KEY__METADATA, f,
		       flen, false);
	free(f);
	static const uint8_t junk[5] = { 1, 2, 3, 4, 5 };
	f = bc_frame_build(OXBOW__API_KEY__METADATA, 1, corr++, NULL, junk,
			   sizeof(junk), &flen);
	expect_refused("raw bytes after a metadata body",
		       OXBOW__API_KEY__METADATA, f, flen, false);
	free(f);
}

// One honest raw produce: the framing built here is what the broker
// expects, so the refusals above are about the damage, not the framing.
static void raw_produce_ok(const uint8_t *batch, size_t blen, uint32_t count)
{
	size_t flen;
	uint8_t *f = bc_produce_frame(corr++, OXBOW__ACKS__ACKS_ALL, topic, 1,
				      batch, blen, (uint32_t)blen, &flen);
	int fd = bc_connect(broker.port, ANSWER_MS);
	struct bc_response r;

	if (fd < 0)
		bc_dief("connect: %s", strerror(-fd));
	if (bc_send_all(fd, f, flen) < 0 ||
	    bc_response_read(fd, ANSWER_MS, &r) != 1)
		bc_dief("an honest raw produce got no response");
	free(f);
	close(fd);
	Oxbow__ProduceResponse *pr =
		oxbow__produce_response__unpack(NULL, r.body_len, r.body);
	if (r.header->error_code || !pr || pr->n_results != 1 ||
	    pr->results[0]->error_code)
		bc_dief("an honest raw produce failed: header %d, result %d "
			"(%s)", (int)r.header->error_code,
			pr && pr->n_results ? (int)pr->results[0]->error_code
					    : -1,
			r.header->error_message);
	for (uint32_t k = 0; k < count; k++) {
		struct where *w = &expect[nexpect++];
		w->index = RAW_INDEX + k;
		w->part = 1;
		w->off = pr->results[0]->base_offset + k;
	}
	oxbow__produce_response__free_unpacked(pr, NULL);
	bc_response_free(&r);
}

static void end_offsets(int64_t end[PARTITIONS])
{
	struct ox_admin *a = bc_admin(&broker);

	for (int p = 0; p < PARTITIONS; p++) {
		int rc = ox_admin_list_offsets(a, topic, p, OX_OFFSET_END,
					       &end[p]);
		if (rc < 0)
			bc_dief("list_offsets: %s", ox_strerror(rc));
	}
	ox_admin_destroy(a);
}

// Reads both partitions to their end and matches every record to expect.
static void read_back(void)
{
	static const char *const kv[] = { "auto.offset.reset", "earliest",
					  NULL };
	struct ox_consumer *c = NULL;
	char err[256];
	size_t got = 0;
	struct ox_conf *conf = bc_conf(&broker, kv);

	if (ox_consumer_create(&c, conf, err, sizeof(err)) < 0)
		bc_dief("ox_consumer_create: %s", err);
	ox_conf_destroy(conf);
	if (ox_consumer_assign_topic(c, topic) < 0)
		bc_dief("assign");
	int64_t idle_since = bc_now_ms();
	while (got < nexpect && bc_now_ms() - idle_since < 30000) {
		const struct ox_consumer_record *rs;
		int n = ox_consumer_poll(c, 1000, &rs, 1000);
		if (n < 0) {
			CHECK(0, "poll: %s", ox_strerror(n));
			break;
		}
		if (n)
			idle_since = bc_now_ms();
		for (int k = 0; k < n; k++, got++) {
			int64_t i = bc_value_check(rs[k].value,
						   rs[k].value_len);
			struct where *w = NULL;
			for (size_t e = 0; e < nexpect && i >= 0; e++)
				if (expect[e].index == (uint64_t)i)
					w = &expect[e];
			CHECK(w && !w->seen && w->part == rs[k].partition &&
				      w->off == rs[k].offset,
			      "record at %d/%" PRId64 " (index %" PRId64 ") "
			      "is unexpected, damaged, moved or repeated",
			      rs[k].partition, rs[k].offset, i);
			if (w)
				w->seen = true;
		}
	}
	const struct ox_consumer_record *rs;
	int n = ox_consumer_poll(c, 300, &rs, 1);
	CHECK(n == 0, "records beyond the expected ones (poll: %d)", n);
	ox_consumer_destroy(c);
	CHECK(got == nexpect, "read %zu of %zu records", got, nexpect);
}

int main(int argc, char **argv)
{
	uint8_t good[BATCH_CAP];
	int64_t before[PARTITIONS], after[PARTITIONS];

	bc_start("broker-bad-input", argc, argv, WATCHDOG_S);
	static const char *const args[] = { "--node.id", "1", NULL };
	bc_broker_init(&broker, "bad", args);
	bc_broker_start(&broker);
	struct ox_admin *a = bc_admin(&broker);
	bc_topic_create(a, topic, PARTITIONS, NULL);
	ox_admin_destroy(a);

	produce_good(0, STORED);
	size_t blen = bc_batch_build(good, sizeof(good), RAW_INDEX, 5,
				     VALUE_BYTES);
	raw_produce_ok(good, blen, 5);
	blen = bc_batch_build(good, sizeof(good), BAD_INDEX, 5, VALUE_BYTES);
	end_offsets(before);

	random_bytes();
	truncated(good, blen);
	bad_prefixes();
	bad_protobuf();
	bad_batches(good, blen);
	bad_requests();

	end_offsets(after);
	for (int p = 0; p < PARTITIONS; p++)
		CHECK(after[p] == before[p], "partition %d grew from %" PRId64
		      " to %" PRId64 " on refused input", p, before[p],
		      after[p]);
	produce_good(AFTER_INDEX, AFTER);
	read_back();
	bc_finish();
}
