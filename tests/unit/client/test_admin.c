// SPDX-License-Identifier: Apache-2.0
//
// The admin handle and the bootstrap walk against the fake broker: a dead
// first bootstrap address is skipped, all dead is -OX_EUNREACHABLE, and
// metadata and offsets come back as the broker says.
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/error.h"
#include "client/include/oxbow/oxbow.h"
#include "tests/unit/client/fake_broker.h"

Test(admin, bootstrap_list_is_walked)
{
	struct fb *fb = fb_start("t", 3);
	struct ox_conf *conf = ox_conf_create();
	struct ox_admin *a = NULL;
	struct ox_topic_info *topics = NULL;
	char err[256], list[128];
	size_t n = 0;
	int64_t off;

	// Port 1 on loopback refuses connections.
	snprintf(list, sizeof(list), "127.0.0.1:1,%s", fb->bootstrap);
	cr_assert_eq(ox_conf_set(conf, "bootstrap.servers", list, err,
				 sizeof(err)), 0);
	cr_assert_eq(ox_admin_create(&a, conf, err, sizeof(err)), 0);
	cr_assert_eq(ox_admin_topic_list(a, 0, &topics, &n), 0, "%s",
		     ox_admin_last_error(a));
	cr_assert_eq(n, 1);
	cr_expect_str_eq(topics[0].name, "t");
	cr_assert_eq(topics[0].partition_count, 3);
	for (size_t i = 0; i < 3; i++) {
		cr_expect_eq(topics[0].partitions[i].partition, (int32_t)i);
		cr_expect_eq(topics[0].partitions[i].leader, 1);
		cr_expect_eq(topics[0].partitions[i].replica_count, 1);
	}
	ox_topic_infos_free(topics, n);

	uint8_t *b;
	size_t len = fb_make_batch(&b, 0, 7, false);
	fb_append_raw(fb, 2, b, len, 0, 6, 7);
	free(b);
	cr_assert_eq(ox_admin_list_offsets(a, "t", 2, OX_OFFSET_END, &off), 0);
	cr_expect_eq(off, 7);
	cr_assert_eq(ox_admin_list_offsets(a, "t", 2, OX_OFFSET_BEGINNING,
					   &off), 0);
	cr_expect_eq(off, 0);
	cr_expect_eq(ox_admin_list_offsets(a, "t", 9, OX_OFFSET_END, &off),
		     -OX_EUNKNOWN_TOPIC);
	cr_expect_eq(ox_admin_list_offsets(a, NULL, 0, OX_OFFSET_END, &off),
		     -EINVAL);
	ox_admin_destroy(a);
	ox_conf_destroy(conf);
	fb_stop(fb);
}

Test(admin, all_bootstrap_brokers_down)
{
	struct ox_conf *conf = ox_conf_create();
	struct ox_admin *a = NULL;
	char err[256], **groups = NULL;
	size_t n = 0;

	cr_assert_eq(ox_conf_set(conf, "bootstrap.servers",
				 "127.0.0.1:1,127.0.0.1:2", err, sizeof(err)),
		     0);
	cr_assert_eq(ox_admin_create(&a, conf, err, sizeof(err)), 0);
	cr_expect_eq(ox_admin_group_list(a, &groups, &n), -OX_EUNREACHABLE);
	cr_expect_neq(ox_admin_last_error(a)[0], '\0');
	ox_admin_destroy(a);
	ox_conf_destroy(conf);
}
