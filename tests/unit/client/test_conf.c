// SPDX-License-Identifier: Apache-2.0
//
// Configuration: every key accepts good values and rejects bad ones with
// -OX_EINVALID_CONFIG and a sentence; handles check cross-key rules.
#include <criterion/criterion.h>
#include <string.h>

// proto/error.h first: the public header then skips its copy of the codes.
#include "proto/error.h"
#include "client/include/oxbow/oxbow.h"

int header_alone_ecorrupt(void);
int header_alone_eunreachable(void);
const char *header_alone_version(void);

static struct ox_conf *conf;
static char err[256];

static void setup(void)
{
	conf = ox_conf_create();
	cr_assert_not_null(conf);
	err[0] = '\0';
}

static void teardown(void)
{
	ox_conf_destroy(conf);
}

TestSuite(conf, .init = setup, .fini = teardown);

static int set(const char *k, const char *v)
{
	err[0] = '\0';
	return ox_conf_set(conf, k, v, err, sizeof(err));
}

Test(conf, good_values)
{
	static const char *const good[][2] = {
		{ "bootstrap.servers", "127.0.0.1:7400,localhost:7410" },
		{ "client.id", "app" },
		{ "request.timeout.ms", "1000" },
		{ "socket.connect.timeout.ms", "500" },
		{ "acks", "leader" },
		{ "acks", "none" },
		{ "linger.ms", "0" },
		{ "batch.size", "16384" },
		{ "buffer.memory", "1048576" },
		{ "max.block.ms", "0" },
		{ "retries", "0" },
		{ "retry.backoff.ms", "10" },
		{ "retry.backoff.max.ms", "100" },
		{ "delivery.timeout.ms", "1000" },
		{ "max.in.flight.requests.per.connection", "1" },
		{ "max.request.size", "65536" },
		{ "group.id", "g" },
		{ "auto.offset.reset", "earliest" },
		{ "fetch.min.bytes", "1" },
		{ "fetch.max.wait.ms", "100" },
		{ "fetch.max.bytes", "1048576" },
		{ "max.partition.fetch.bytes", "65536" },
		{ "check.crcs", "false" },
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		cr_expect_eq(set(good[i][0], good[i][1]), 0, "%s=%s: %s",
			     good[i][0], good[i][1], err);
}

Test(conf, bad_values)
{
	static const char *const bad[][2] = {
		{ "no.such.key", "1" },
		{ "bootstrap.servers", "" },
		{ "bootstrap.servers", "host" },
		{ "bootstrap.servers", "host:0" },
		{ "bootstrap.servers", "host:65536" },
		{ "bootstrap.servers", "host:12x" },
		{ "bootstrap.servers", "a:1,,b:2" },
		{ "bootstrap.servers", ":7400" },
		{ "request.timeout.ms", "0" },
		{ "request.timeout.ms", "-5" },
		{ "request.timeout.ms", "abc" },
		{ "request.timeout.ms", "10 " },
		{ "request.timeout.ms", "" },
		{ "linger.ms", "99999999999999999999" },
		{ "batch.size", "10" },
		{ "acks", "ALL" },
		{ "acks", "1" },
		{ "auto.offset.reset", "smallest" },
		{ "check.crcs", "yes" },
		{ "max.in.flight.requests.per.connection", "0" },
		{ "retries", "-1" },
		{ "delivery.timeout.ms", "0" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_expect_eq(set(bad[i][0], bad[i][1]), -OX_EINVALID_CONFIG,
			     "%s=%s accepted", bad[i][0], bad[i][1]);
		cr_expect(strlen(err) > 10, "no sentence for %s=%s",
			  bad[i][0], bad[i][1]);
		cr_expect_not_null(strstr(err, bad[i][0]),
				   "sentence does not name %s: %s", bad[i][0],
				   err);
	}
}

Test(conf, null_arguments)
{
	cr_expect_eq(ox_conf_set(NULL, "acks", "all", err, sizeof(err)),
		     -OX_EINVALID_CONFIG);
	cr_expect_eq(ox_conf_set(conf, NULL, "all", NULL, 0),
		     -OX_EINVALID_CONFIG);
	cr_expect_eq(ox_conf_set(conf, "acks", NULL, err, 0),
		     -OX_EINVALID_CONFIG);
}

Test(conf, errstr_truncated_and_terminated)
{
	char small[8];

	memset(small, 'x', sizeof(small));
	cr_expect_eq(ox_conf_set(conf, "acks", "bogus", small, sizeof(small)),
		     -OX_EINVALID_CONFIG);
	cr_expect_eq(small[sizeof(small) - 1], '\0');
}

Test(conf, producer_checks_buffer_against_batch)
{
	struct ox_producer *p = NULL;

	cr_assert_eq(set("batch.size", "65536"), 0);
	cr_assert_eq(set("buffer.memory", "4096"), 0);
	cr_expect_eq(ox_producer_create(&p, conf, err, sizeof(err)),
		     -OX_EINVALID_CONFIG);
	cr_expect_null(p);
	cr_expect_not_null(strstr(err, "buffer.memory"));
}

Test(conf, header_compiles_alone)
{
	cr_expect_eq(header_alone_ecorrupt(), OX_ECORRUPT);
	cr_expect_eq(header_alone_eunreachable(), OX_EUNREACHABLE);
	cr_expect_str_eq(header_alone_version(), "0.1.0");
}
