// SPDX-License-Identifier: Apache-2.0
//
// Example: print every record of a topic from the beginning until no
// record arrives for two seconds. Usage: consumer BOOTSTRAP TOPIC
// Shows the conf, assign_topic, poll and destroy; only the public header
// <oxbow/oxbow.h> is used.
#include <oxbow/oxbow.h>
#include <stdio.h>

int main(int argc, char **argv)
{
	const struct ox_consumer_record *recs;
	struct ox_consumer *c = NULL;
	struct ox_conf *conf;
	char err[256];
	int n;

	if (argc != 3) {
		fprintf(stderr, "usage: %s BOOTSTRAP TOPIC\n", argv[0]);
		return 2;
	}
	conf = ox_conf_create();
	if (conf == NULL ||
	    ox_conf_set(conf, "bootstrap.servers", argv[1], err,
			sizeof(err)) < 0 ||
	    ox_conf_set(conf, "auto.offset.reset", "earliest", err,
			sizeof(err)) < 0 ||
	    ox_consumer_create(&c, conf, err, sizeof(err)) < 0) {
		fprintf(stderr, "consumer: %s\n", conf ? err : "out of memory");
		ox_conf_destroy(conf);
		return 1;
	}
	ox_conf_destroy(conf);
	n = ox_consumer_assign_topic(c, argv[2]);
	while (n >= 0 && (n = ox_consumer_poll(c, 2000, &recs, 1000)) > 0)
		for (int i = 0; i < n; i++)
			printf("%d:%lld %.*s\n", (int)recs[i].partition,
			       (long long)recs[i].offset,
			       (int)recs[i].value_len,
			       recs[i].value != NULL ?
				       (const char *)recs[i].value : "");
	if (n < 0)
		fprintf(stderr, "consumer: %s (%s)\n", ox_strerror(n),
			ox_consumer_last_error(c));
	ox_consumer_destroy(c);
	return n < 0 ? 1 : 0;
}
