// SPDX-License-Identifier: Apache-2.0
//
// `oxbowctl topic reassign` against the liboxbow unit tests' fake broker
// (tests/unit/client/fake_broker.h): the request it sends (topic,
// partition, replicas in the order given), its one line on success, and
// a broker's refusal, an unknown topic or partition, or a broker that
// predates the call as one line on stderr with exit 1. Misuse (exit 2) is in test_commands.c: it is found before any
// broker is asked.
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/ctl/ctl.h"
#include "proto/envelope.pb-c.h"
#include "tests/unit/client/fake_broker.h"
#include "tests/unit/ctl/slurp.h"

static void redirect_all(void)
{
	cr_redirect_stdout();
	cr_redirect_stderr();
}

TestSuite(reassign, .init = redirect_all);

// Runs `topic reassign TOPIC --partition P --replicas LIST` against
// bootstrap.
static int run_reassign(const char *bootstrap, const char *topic,
			const char *partition, const char *list)
{
	static char words[7][64];
	static const char *const fixed[] = { "topic", "reassign", NULL,
					     "--partition", NULL, "--replicas",
					     NULL };
	char *argv[8];
	struct ox_ctl ctl = { .bootstrap = bootstrap, .command = "topic" };

	for (int i = 0; i < 7; i++) {
		const char *w = fixed[i];
		if (i == 2)
			w = topic;
		else if (i == 4)
			w = partition;
		else if (i == 6)
			w = list;
		snprintf(words[i], sizeof(words[i]), "%s", w);
		argv[i] = words[i];
	}
	argv[7] = NULL;
	return ox_ctl_topic(&ctl, 7, argv);
}


Test(reassign, sends_the_list_and_prints_one_line)
{
	struct fb *fb = fb_start("orders", 3);

	cr_assert_eq(run_reassign(fb->bootstrap, "orders", "2", "4,1,3"),
		     OX_CTL_EXIT_OK);
	fflush(stdout);
	cr_assert_stdout_eq_str(
		"reassigning orders partition 2 to replicas 4,1,3\n");
	pthread_mutex_lock(&fb->lock);
	cr_expect_eq(fb->reassign_requests, 1);
	cr_expect_str_eq(fb->reassign_topic, "orders");
	cr_expect_eq(fb->reassign_partition, 2);
	cr_assert_eq(fb->reassign_replica_count, 3);
	cr_expect_eq(fb->reassign_replicas[0], 4);
	cr_expect_eq(fb->reassign_replicas[1], 1);
	cr_expect_eq(fb->reassign_replicas[2], 3);
	pthread_mutex_unlock(&fb->lock);
	fb_stop(fb);
}

Test(reassign, broker_refusal_is_one_line_exit_1)
{
	struct fb *fb = fb_start("orders", 3);
	char want[512];

	pthread_mutex_lock(&fb->lock);
	fb->reassign_code = OXBOW__ERROR_CODE__INVALID_REQUEST;
	snprintf(fb->reassign_message, sizeof(fb->reassign_message),
		 "node 9 is not registered");
	pthread_mutex_unlock(&fb->lock);
	cr_assert_eq(run_reassign(fb->bootstrap, "orders", "0", "1,2,9"),
		     OX_CTL_EXIT_ERROR);
	fflush(stderr);
	snprintf(want, sizeof(want),
		 "oxbowctl: reassigning partition 0 of topic 'orders': %s "
		 "(orders: node 9 is not registered)\n",
		 ox_strerror(-OX_EINVALID_REQUEST));
	char *err = ctl_slurp(cr_get_redirected_stderr());
	cr_expect_str_eq(err, want);
	free(err);
	fflush(stdout);
	char *out = ctl_slurp(cr_get_redirected_stdout());
	cr_expect_str_eq(out, "");
	free(out);
	fb_stop(fb);
}

Test(reassign, unknown_topic_is_exit_1)
{
	struct fb *fb = fb_start("orders", 1);

	cr_assert_eq(run_reassign(fb->bootstrap, "nope", "0", "1"),
		     OX_CTL_EXIT_ERROR);
	fflush(stderr);
	cr_assert_stderr_eq_str("oxbowctl: unknown topic 'nope' or "
				"partition 0\n");
	fb_stop(fb);
}

Test(reassign, unknown_partition_is_exit_1)
{
	// UNKNOWN_TOPIC also stands for a partition the topic lacks.
	struct fb *fb = fb_start("orders", 1);

	cr_assert_eq(run_reassign(fb->bootstrap, "orders", "5", "1"),
		     OX_CTL_EXIT_ERROR);
	fflush(stderr);
	cr_assert_stderr_eq_str("oxbowctl: unknown topic 'orders' or "
				"partition 5\n");
	fb_stop(fb);
}

Test(reassign, old_broker_is_exit_1)
{
	struct fb *fb = fb_start("orders", 1);

	pthread_mutex_lock(&fb->lock);
	fb->reassign_unsupported = true;
	pthread_mutex_unlock(&fb->lock);
	cr_assert_eq(run_reassign(fb->bootstrap, "orders", "0", "1"),
		     OX_CTL_EXIT_ERROR);
	fflush(stderr);
	char *err = ctl_slurp(cr_get_redirected_stderr());
	cr_expect_eq(strncmp(err, "oxbowctl: reassigning partition 0 of "
				  "topic 'orders': ", 53), 0, "%s", err);
	cr_expect_eq(strchr(err, '\n'), err + strlen(err) - 1, "%s", err);
	free(err);
	fb_stop(fb);
}
