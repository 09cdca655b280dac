// SPDX-License-Identifier: Apache-2.0
//
// Memory bound test of one oxbowd. A topic is filled so that a fetch from
// offset 0 has tens of MiB to return; then producers flood it (acks=none,
// then acks=all) while raw clients with tiny receive buffers send fetch
// requests for everything and never read a response. A broker that
// buffered every response, or every request it cannot answer yet, would
// grow without bound; oxbowd's resident memory must stay under
// RSS_LIMIT_KIB the whole time (sampled by a thread, the peak printed), and
// afterwards the node must still serve a normal client. oxbowd runs with
// net.memory.bytes = NET_MEMORY_BYTES: the per-connection send limit
// alone (64 MiB) would let the SLOW_READERS hold over 1 GiB of
// responses, so the bound holds only if the node-wide budget works. The
// bound is generous on purpose: it catches unbounded buffering, not
// tuning.
// A plain program (exit 0 pass, 1 fail, 77 skip): argv[1] is oxbowd.
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tests/integration/broker_common.h"

#define PARTITIONS 2
#define VALUE_BYTES 1000
#define PREFILL_RECORDS 40000  // ~40 MB a fetch from 0 could return
#define FLOOD_RECORDS 80000    // per phase
#define SLOW_READERS 16
#define SLOW_RCVBUF 4096
#define FETCH_MAX_BYTES (64u << 20)
#define NET_MEMORY_BYTES "268435456" // 256 MiB
#define RSS_LIMIT_KIB (700L * 1024)
#define SAMPLE_MS 20
#define WATCHDOG_S 600

static const char topic[] = "mem";
static struct bc_broker broker;
static atomic_bool stop_sampler;
static atomic_long peak_kib, peak_anon_kib, peak_file_kib;
static atomic_size_t fetches_sent;
static atomic_size_t acks_failed;

static void delivered(void *opaque, int err, const char *t, int32_t part,
		      int64_t off)
{
	(void)opaque;
	(void)t;
	(void)part;
	(void)off;
	if (err)
		atomic_fetch_add(&acks_failed, 1);
}

static void produce(const char *acks, uint64_t first, size_t n)
{
	const char *kv[] = { "acks", acks, "linger.ms", "5", NULL };
	uint8_t value[VALUE_BYTES];
	struct ox_producer *p = NULL;
	struct ox_conf *c = bc_conf(&broker, kv);
	char err[256];
	size_t refused = 0;

	if (ox_producer_create(&p, c, err, sizeof(err)) < 0)
		bc_dief("ox_producer_create: %s", err);
	ox_conf_destroy(c);
	for (size_t k = 0; k < n; k++) {
		bc_value_fill(value, first + k, sizeof(value));
		struct ox_message m = { .topic = topic,
					.partition = OX_PARTITION_ANY,
					.value = value,
					.value_len = sizeof(value),
					.cb = delivered };
		if (ox_producer_send(p, &m) < 0)
			refused++;
	}
	int rc = ox_producer_flush(p, 120000);
	CHECK(rc == 0, "flush (acks=%s): %s", acks, ox_strerror(rc));
	ox_producer_destroy(p);
	CHECK(refused == 0, "acks=%s: %zu sends refused", acks, refused);
	printf("produced %zu records with acks=%s\n", n, acks);
}

static int slow_reader(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons((uint16_t)broker.port) };
	int rcv = SLOW_RCVBUF;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		bc_die("socket", -errno);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	// Set before connect so that the window is small from the start.
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		bc_die("connect", -errno);
	return fd;
}

// Samples the broker's RSS and keeps the slow readers' request queues
// full: each gets fetch requests for everything until the broker stops
// reading them (its socket buffer fills and sends would block).
static void *sampler(void *arg)
{
	int *fds = arg;
	uint64_t corr = 1;

	while (!atomic_load(&stop_sampler)) {
		long kib = bc_broker_rss_kib(&broker);
		if (kib > atomic_load(&peak_kib))
			atomic_store(&peak_kib, kib);
		// Anonymous memory is what a broker buffers; file pages are
		// segments mapped or cached for reads. Both are printed so a
		// growth can be told apart; the bound is on the total.
		kib = bc_broker_status_kib(&broker, "RssAnon");
		if (kib > atomic_load(&peak_anon_kib))
			atomic_store(&peak_anon_kib, kib);
		kib = bc_broker_status_kib(&broker, "RssFile");
		if (kib > atomic_load(&peak_file_kib))
			atomic_store(&peak_file_kib, kib);
		for (int i = 0; i < SLOW_READERS; i++) {
			if (fds[i] < 0)
				continue;
			size_t len;
			uint8_t *f = bc_fetch_frame(corr++, topic,
						    (uint32_t)(i % PARTITIONS),
						    0, FETCH_MAX_BYTES, 0,
						    &len);
			ssize_t n = send(fds[i], f, len,
					 MSG_DONTWAIT | MSG_NOSIGNAL);
			free(f);
			// A partial send leaves a torn frame in the stream;
			// the connection is past caring, so stop using it.
			if (n > 0 && (size_t)n < len) {
				fds[i] = -fds[i] - 1;
				continue;
			}
			if (n == (ssize_t)len)
				atomic_fetch_add(&fetches_sent, 1);
			else if (n < 0 && errno != EAGAIN &&
				 errno != EWOULDBLOCK)
				fds[i] = -fds[i] - 1; // closed by the broker
		}
		bc_sleep_ms(SAMPLE_MS);
	}
	return NULL;
}

static void serves_normal_client(void)
{
	static const char *const kv[] = { "auto.offset.reset", "latest",
					  NULL };
	struct ox_consumer *c = NULL;
	char err[256];
	struct ox_conf *conf = bc_conf(&broker, kv);

	if (ox_consumer_create(&c, conf, err, sizeof(err)) < 0)
		bc_dief("ox_consumer_create: %s", err);
	ox_conf_destroy(conf);
	struct ox_topic_partition tp = { topic, 0, 0 };
	int rc = ox_consumer_assign(c, &tp, 1);
	CHECK(rc == 0, "assign: %s", ox_strerror(rc));
	int64_t start = -1;
	ox_consumer_position(c, topic, 0, &start);

	uint8_t value[VALUE_BYTES];
	struct ox_producer *p = NULL;
	conf = bc_conf(&broker, NULL);
	if (ox_producer_create(&p, conf, err, sizeof(err)) < 0)
		bc_dief("ox_producer_create: %s", err);
	ox_conf_destroy(conf);
	size_t before = atomic_load(&acks_failed);
	for (uint64_t k = 0; k < 10; k++) {
		bc_value_fill(value, 900000 + k, sizeof(value));
		struct ox_message m = { .topic = topic, .partition = 0,
					.value = value,
					.value_len = sizeof(value),
					.cb = delivered };
		CHECK(ox_producer_send(p, &m) == 0, "send after the flood");
	}
	CHECK(ox_producer_flush(p, 60000) == 0, "flush after the flood");
	ox_producer_destroy(p);
	CHECK(atomic_load(&acks_failed) == before,
	      "records after the flood failed");

	uint64_t want = 900000;
	int64_t idle_since = bc_now_ms();
	while (want < 900010 && bc_now_ms() - idle_since < 30000) {
		const struct ox_consumer_record *rs;
		int n = ox_consumer_poll(c, 1000, &rs, 100);
		if (n < 0) {
			CHECK(0, "poll after the flood: %s", ox_strerror(n));
			break;
		}
		for (int k = 0; k < n; k++) {
			int64_t i = bc_value_check(rs[k].value,
						   rs[k].value_len);
			CHECK(i == (int64_t)want, "after the flood: record %"
			      PRId64 " where %" PRIu64 " was expected", i,
			      want);
			want++;
		}
		if (n)
			idle_since = bc_now_ms();
	}
	CHECK(want == 900010, "read %" PRIu64 " of 10 records after the "
	      "flood (from offset %" PRId64 ")", want - 900000, start);
	ox_consumer_destroy(c);
}

int main(int argc, char **argv)
{
	int fds[SLOW_READERS];
	pthread_t th;

	bc_start("broker-memory", argc, argv, WATCHDOG_S);
	static const char *const args[] = { "--node.id", "1",
					    "--log.fsync", "interval",
					    "--net.memory.bytes",
					    NET_MEMORY_BYTES, NULL };
	bc_broker_init(&broker, "mem", args);
	bc_broker_start(&broker);
	struct ox_admin *a = bc_admin(&broker);
	bc_topic_create(a, topic, PARTITIONS, NULL);
	ox_admin_destroy(a);

	produce("all", 0, PREFILL_RECORDS);
	long base_kib = bc_broker_rss_kib(&broker);
	for (int i = 0; i < SLOW_READERS; i++)
		fds[i] = slow_reader();
	atomic_store(&peak_kib, base_kib);
	if (pthread_create(&th, NULL, sampler, fds) != 0)
		bc_dief("pthread_create");
	produce("none", 100000, FLOOD_RECORDS);
	produce("all", 200000, FLOOD_RECORDS);
	// Let the slow readers' requests pile up a little longer while
	// nothing else runs.
	bc_sleep_ms(1000);
	atomic_store(&stop_sampler, true);
	pthread_join(th, NULL);

	long peak = atomic_load(&peak_kib);
	printf("oxbowd RSS: %ld KiB after the prefill, peak %ld KiB during "
	       "the flood (limit %ld KiB; peaks of RssAnon %ld KiB, RssFile "
	       "%ld KiB); %zu fetches sent and never read\n",
	       base_kib, peak, RSS_LIMIT_KIB, atomic_load(&peak_anon_kib),
	       atomic_load(&peak_file_kib), atomic_load(&fetches_sent));
	CHECK(peak > 0, "could not read oxbowd's RSS");
	CHECK(peak < RSS_LIMIT_KIB, "oxbowd RSS peaked at %ld KiB", peak);
	CHECK(atomic_load(&acks_failed) == 0, "%zu acks=all deliveries failed",
	      atomic_load(&acks_failed));
	CHECK(bc_broker_alive(&broker), "oxbowd died during the flood");
	for (int i = 0; i < SLOW_READERS; i++)
		close(fds[i] >= 0 ? fds[i] : -fds[i] - 1);
	serves_normal_client();
	bc_finish();
}
