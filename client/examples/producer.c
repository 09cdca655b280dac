// SPDX-License-Identifier: Apache-2.0
//
// Example: produce every line of stdin to a topic, then wait for the
// deliveries. Usage: producer BOOTSTRAP TOPIC < lines
// Shows the conf, send with a delivery callback, flush and destroy; only
// the public header <oxbow/oxbow.h> is used.
#include <oxbow/oxbow.h>
#include <stdio.h>
#include <string.h>

static long delivered, failed;

// Runs on the producer's I/O thread, once per record.
static void on_delivery(void *opaque, int err, const char *topic,
			int32_t partition, int64_t offset)
{
	(void)opaque;
	if (err != 0) {
		fprintf(stderr, "%s[%d]: %s\n", topic, (int)partition,
			ox_strerror(err));
		failed++;
		return;
	}
	(void)offset;
	delivered++;
}

int main(int argc, char **argv)
{
	struct ox_producer *p = NULL;
	struct ox_conf *conf;
	char err[256], line[4096];
	int rc;

	if (argc != 3) {
		fprintf(stderr, "usage: %s BOOTSTRAP TOPIC < lines\n", argv[0]);
		return 2;
	}
	conf = ox_conf_create();
	if (conf == NULL ||
	    ox_conf_set(conf, "bootstrap.servers", argv[1], err,
			sizeof(err)) < 0 ||
	    ox_producer_create(&p, conf, err, sizeof(err)) < 0) {
		fprintf(stderr, "producer: %s\n", conf ? err : "out of memory");
		ox_conf_destroy(conf);
		return 1;
	}
	ox_conf_destroy(conf);
	while (fgets(line, sizeof(line), stdin) != NULL) {
		struct ox_message m = {
			.topic = argv[2],
			.partition = OX_PARTITION_ANY,
			.value = line,
			.value_len = strcspn(line, "\n"),
			.cb = on_delivery,
		};
		rc = ox_producer_send(p, &m);
		if (rc < 0) {
			fprintf(stderr, "send: %s\n", ox_strerror(rc));
			break;
		}
	}
	rc = ox_producer_flush(p, 30000);
	ox_producer_destroy(p);
	printf("%ld delivered, %ld failed\n", delivered, failed);
	return rc == 0 && failed == 0 ? 0 : 1;
}
