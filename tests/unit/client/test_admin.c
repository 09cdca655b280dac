// SPDX-License-Identifier: Apache-2.0
//
// The admin handle and the bootstrap walk against the fake broker: a dead
// first bootstrap address is skipped, all dead is -OX_EUNREACHABLE, and
// metadata, offsets and the cluster's status come back as the broker says
// (the status sorted by node id and by topic and partition, moving
// partitions marked), and a partition reassignment carries its topic,
// partition and replicas and comes back with the broker's verdict.
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/envelope.pb-c.h"
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

// An admin handle on the fake broker's bootstrap address.
static struct ox_admin *admin_on(const struct fb *fb)
{
	struct ox_conf *conf = ox_conf_create();
	struct ox_admin *a = NULL;
	char err[256];

	cr_assert_not_null(conf);
	cr_assert_eq(ox_conf_set(conf, "bootstrap.servers", fb->bootstrap, err,
				 sizeof(err)), 0);
	cr_assert_eq(ox_admin_create(&a, conf, err, sizeof(err)), 0);
	ox_conf_destroy(conf);
	return a;
}

Test(admin, cluster_status_copies_and_sorts)
{
	struct fb *fb = fb_start("t", 3);
	struct ox_admin *a = admin_on(fb);
	struct ox_cluster_status *s = NULL;
	char peer[32];
	uint8_t *b;
	size_t len = fb_make_batch(&b, 0, 5, false);

	fb_append_raw(fb, 1, b, len, 0, 4, 5);
	free(b);
	cr_assert_eq(ox_admin_cluster_status(a, &s), 0, "%s",
		     ox_admin_last_error(a));
	cr_assert_not_null(s);
	cr_expect_eq(s->answering_node, 1);
	cr_expect_eq(s->meta_leader, 2);
	cr_expect_eq(s->meta_term, 7);
	cr_assert_eq(s->node_count, 3);
	snprintf(peer, sizeof(peer), "127.0.0.1:%u", fb->port + 1u);
	for (size_t i = 0; i < 3; i++)
		cr_expect_eq(s->nodes[i].node_id, (int32_t)i + 1);
	cr_expect_str_eq(s->nodes[0].address, fb->bootstrap);
	cr_expect_str_eq(s->nodes[0].peer_address, peer);
	cr_expect_str_eq(s->nodes[2].address, "127.0.0.1:7420");
	cr_expect_eq(s->nodes[0].reachable, 1);
	cr_expect_eq(s->nodes[1].reachable, 1);
	cr_expect_eq(s->nodes[2].reachable, 0);
	cr_assert_eq(s->partition_count, 3);
	for (size_t i = 0; i < 3; i++) {
		const struct ox_partition_status *p = &s->partitions[i];
		cr_expect_str_eq(p->topic, "t");
		cr_expect_eq(p->partition, (int32_t)i);
		cr_assert_eq(p->replica_count, 3);
		cr_expect_eq(p->replicas[0], 3);
		cr_expect_eq(p->replicas[2], 1);
		cr_expect_eq(p->in_sync_count, i == 0 ? 3u : 2u);
		cr_expect_eq(p->high_watermark, i == 1 ? 5 : 0);
	}
	cr_expect_eq(s->partitions[0].leader, 1);
	cr_expect_eq(s->partitions[1].leader, 2);
	cr_expect_eq(s->partitions[2].leader, -1);
	ox_cluster_status_free(s);
	ox_cluster_status_free(NULL);
	ox_admin_destroy(a);
	fb_stop(fb);
}

Test(admin, cluster_status_errors)
{
	struct fb *fb = fb_start("t", 1);
	struct ox_admin *a = admin_on(fb);
	struct ox_cluster_status *s = NULL;

	cr_expect_eq(ox_admin_cluster_status(NULL, &s), -EINVAL);
	cr_expect_eq(ox_admin_cluster_status(a, NULL), -EINVAL);
	pthread_mutex_lock(&fb->lock);
	fb->cluster_status_code = OXBOW__ERROR_CODE__UNSUPPORTED_VERSION;
	pthread_mutex_unlock(&fb->lock);
	cr_expect_eq(ox_admin_cluster_status(a, &s), -OX_EUNSUPPORTED);
	cr_expect_null(s);
	cr_expect_str_eq(ox_admin_last_error(a), "scripted error");
	pthread_mutex_lock(&fb->lock);
	fb->cluster_status_code = 0;
	fb->meta_leader = -5;
	pthread_mutex_unlock(&fb->lock);
	cr_assert_eq(ox_admin_cluster_status(a, &s), 0);
	cr_expect_eq(s->meta_leader, -1, "a negative leader reads as none");
	ox_cluster_status_free(s);
	ox_admin_destroy(a);
	fb_stop(fb);

	s = NULL;
	a = NULL;
	struct ox_conf *conf = ox_conf_create();
	char err[256];
	cr_assert_eq(ox_conf_set(conf, "bootstrap.servers", "127.0.0.1:1", err,
				 sizeof(err)), 0);
	cr_assert_eq(ox_admin_create(&a, conf, err, sizeof(err)), 0);
	cr_expect_eq(ox_admin_cluster_status(a, &s), -OX_EUNREACHABLE);
	cr_expect_null(s);
	cr_expect_neq(ox_admin_last_error(a)[0], '\0');
	ox_admin_destroy(a);
	ox_conf_destroy(conf);
}

Test(admin, cluster_status_marks_moving_partitions)
{
	struct fb *fb = fb_start("t", 3);
	struct ox_admin *a = admin_on(fb);
	struct ox_cluster_status *s = NULL;

	pthread_mutex_lock(&fb->lock);
	fb->moving[2] = true;
	pthread_mutex_unlock(&fb->lock);
	cr_assert_eq(ox_admin_cluster_status(a, &s), 0, "%s",
		     ox_admin_last_error(a));
	cr_assert_eq(s->partition_count, 3);
	cr_expect_eq(s->partitions[0].moving, 0);
	cr_expect_eq(s->partitions[1].moving, 0);
	cr_expect_eq(s->partitions[2].moving, 1);
	ox_cluster_status_free(s);
	ox_admin_destroy(a);
	fb_stop(fb);
}

Test(admin, partition_reassign_sends_topic_partition_replicas)
{
	struct fb *fb = fb_start("t", 3);
	struct ox_admin *a = admin_on(fb);
	struct ox_cluster_status *s = NULL;
	const int32_t to[3] = { 5, 1, 4 };

	cr_assert_eq(ox_admin_partition_reassign(a, "t", 1, to, 3), 0, "%s",
		     ox_admin_last_error(a));
	cr_expect_str_eq(ox_admin_last_error(a), "");
	pthread_mutex_lock(&fb->lock);
	cr_expect_eq(fb->reassign_requests, 1);
	cr_expect_str_eq(fb->reassign_topic, "t");
	cr_expect_eq(fb->reassign_partition, 1);
	cr_assert_eq(fb->reassign_replica_count, 3);
	// In the caller's order: the first is the preferred leader.
	cr_expect_eq(fb->reassign_replicas[0], 5);
	cr_expect_eq(fb->reassign_replicas[1], 1);
	cr_expect_eq(fb->reassign_replicas[2], 4);
	pthread_mutex_unlock(&fb->lock);

	// The status then shows the move and where it goes.
	cr_assert_eq(ox_admin_cluster_status(a, &s), 0);
	cr_assert_eq(s->partition_count, 3);
	const struct ox_partition_status *p = &s->partitions[1];
	cr_expect_eq(p->partition, 1);
	cr_expect_eq(p->moving, 1);
	cr_assert_eq(p->replica_count, 3);
	cr_expect_eq(p->replicas[0], 5);
	cr_expect_eq(p->replicas[2], 4);
	cr_expect_eq(s->partitions[0].moving, 0);
	cr_expect_eq(s->partitions[2].moving, 0);
	ox_cluster_status_free(s);

	// One replica is a list too (a topic of replication factor 1).
	cr_expect_eq(ox_admin_partition_reassign(a, "t", 0, to, 1), 0);
	pthread_mutex_lock(&fb->lock);
	cr_expect_eq(fb->reassign_requests, 2);
	cr_expect_eq(fb->reassign_partition, 0);
	cr_expect_eq(fb->reassign_replica_count, 1);
	pthread_mutex_unlock(&fb->lock);
	ox_admin_destroy(a);
	fb_stop(fb);
}

Test(admin, partition_reassign_broker_errors)
{
	struct fb *fb = fb_start("t", 2);
	struct ox_admin *a = admin_on(fb);
	const int32_t to[2] = { 1, 9 };

	pthread_mutex_lock(&fb->lock);
	fb->reassign_code = OXBOW__ERROR_CODE__INVALID_REQUEST;
	snprintf(fb->reassign_message, sizeof(fb->reassign_message),
		 "node 9 is not registered");
	pthread_mutex_unlock(&fb->lock);
	cr_expect_eq(ox_admin_partition_reassign(a, "t", 0, to, 2),
		     -OX_EINVALID_REQUEST);
	cr_expect_str_eq(ox_admin_last_error(a), "t: node 9 is not registered");

	// Without a message the code's sentence stands in.
	pthread_mutex_lock(&fb->lock);
	fb->reassign_message[0] = '\0';
	pthread_mutex_unlock(&fb->lock);
	cr_expect_eq(ox_admin_partition_reassign(a, "t", 0, to, 2),
		     -OX_EINVALID_REQUEST);
	char want[256];
	snprintf(want, sizeof(want), "t: %s",
		 ox_strerror(-OX_EINVALID_REQUEST));
	cr_expect_str_eq(ox_admin_last_error(a), want);

	// The fake judges again: an unknown topic, a partition out of range.
	pthread_mutex_lock(&fb->lock);
	fb->reassign_code = 0;
	pthread_mutex_unlock(&fb->lock);
	cr_expect_eq(ox_admin_partition_reassign(a, "nope", 0, to, 2),
		     -OX_EUNKNOWN_TOPIC);
	cr_expect_eq(ox_admin_partition_reassign(a, "t", 2, to, 2),
		     -OX_EUNKNOWN_TOPIC);
	cr_expect_eq(ox_admin_partition_reassign(a, "t", 1, to, 2), 0);
	cr_expect_str_eq(ox_admin_last_error(a), "");

	// A broker that predates the call.
	pthread_mutex_lock(&fb->lock);
	fb->reassign_unsupported = true;
	pthread_mutex_unlock(&fb->lock);
	cr_expect_eq(ox_admin_partition_reassign(a, "t", 0, to, 2),
		     -OX_EUNSUPPORTED);
	cr_expect_str_eq(ox_admin_last_error(a), "scripted error");
	ox_admin_destroy(a);
	fb_stop(fb);

	// No broker at all.
	struct ox_conf *conf = ox_conf_create();
	char err[256];
	a = NULL;
	cr_assert_eq(ox_conf_set(conf, "bootstrap.servers", "127.0.0.1:1", err,
				 sizeof(err)), 0);
	cr_assert_eq(ox_admin_create(&a, conf, err, sizeof(err)), 0);
	cr_expect_eq(ox_admin_partition_reassign(a, "t", 0, to, 2),
		     -OX_EUNREACHABLE);
	cr_expect_neq(ox_admin_last_error(a)[0], '\0');
	ox_admin_destroy(a);
	ox_conf_destroy(conf);
}

Test(admin, partition_reassign_bad_arguments)
{
	struct fb *fb = fb_start("t", 2);
	struct ox_admin *a = admin_on(fb);
	const int32_t to[3] = { 1, 2, 3 }, negative[2] = { 1, -1 };

	cr_expect_eq(ox_admin_partition_reassign(NULL, "t", 0, to, 3), -EINVAL);
	cr_expect_eq(ox_admin_partition_reassign(a, NULL, 0, to, 3), -EINVAL);
	cr_expect_eq(ox_admin_partition_reassign(a, "", 0, to, 3), -EINVAL);
	cr_expect_eq(ox_admin_partition_reassign(a, "t", -1, to, 3), -EINVAL);
	cr_expect_eq(ox_admin_partition_reassign(a, "t", 0, NULL, 3), -EINVAL);
	cr_expect_eq(ox_admin_partition_reassign(a, "t", 0, to, 0), -EINVAL);
	cr_expect_eq(ox_admin_partition_reassign(a, "t", 0, negative, 2),
		     -EINVAL);
	// Refused before anything is sent.
	pthread_mutex_lock(&fb->lock);
	cr_expect_eq(fb->reassign_requests, 0);
	pthread_mutex_unlock(&fb->lock);
	ox_admin_destroy(a);
	fb_stop(fb);
}
