// SPDX-License-Identifier: Apache-2.0
//
// `oxbowctl cluster status` against the liboxbow unit tests' fake broker,
// which describes a three-node cluster (tests/unit/client/fake_broker.h):
// the text tables and their counts of under-replicated and leaderless
// partitions, moving partitions marked at the end of their line and in
// the JSON, the JSON object (checked with oxbowctl's own JSON reader),
// a broker error and a dead broker (exit 1, one line on stderr), and
// misuse (exit 2).
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/ctl/ctl.h"
#include "client/ctl/json.h"
#include "proto/envelope.pb-c.h"
#include "tests/unit/client/fake_broker.h"
#include "tests/unit/ctl/slurp.h"

static void redirect_all(void)
{
	cr_redirect_stdout();
	cr_redirect_stderr();
}

TestSuite(cluster, .init = redirect_all);

// Runs `cluster status` with up to two more words against bootstrap.
static int run_status(const char *bootstrap, const char *w1, const char *w2)
{
	static char words[4][32];
	char *argv[5] = { words[0], words[1], NULL, NULL, NULL };
	struct ox_ctl ctl = { .bootstrap = bootstrap, .command = "cluster" };
	int argc = 2;

	snprintf(words[0], sizeof(words[0]), "cluster");
	snprintf(words[1], sizeof(words[1]), "status");
	if (w1 != NULL) {
		snprintf(words[2], sizeof(words[2]), "%s", w1);
		argv[argc++] = words[2];
	}
	if (w2 != NULL) {
		snprintf(words[3], sizeof(words[3]), "%s", w2);
		argv[argc++] = words[3];
	}
	return ox_ctl_cluster(&ctl, argc, argv);
}


static char *stdout_text(void)
{
	fflush(stdout);
	return ctl_slurp(cr_get_redirected_stdout());
}

// The JSON field at path in text, as oxbowctl's reader gives it.
static void expect_field(const char *text, const char *path, const char *want)
{
	size_t len = strlen(text), out_len = 0;
	char *out = malloc(len + 1);
	int is_null = 0;

	cr_assert_not_null(out);
	cr_assert_eq(ox_ctl_json_field(text, len, path, out, &out_len,
				       &is_null), OX_CTL_JSON_OK,
		     "field %s of %s", path, text);
	cr_expect_str_eq(out, want, "field %s", path);
	free(out);
}

// Checks a node line ("\n  ID  ADDRESS  PEER  REACHABLE").
static void expect_node(const char *at, int id, const char *address,
			const char *reachable)
{
	char addr[64], peer[64], r[8];
	int got = -1;

	cr_assert_eq(sscanf(at, " %d %63s %63s %7s", &got, addr, peer, r), 4,
		     "%s", at);
	cr_expect_eq(got, id);
	cr_expect_str_eq(addr, address);
	cr_expect_str_eq(r, reachable);
}

Test(cluster, status_text_tables)
{
	struct fb *fb = fb_start("orders", 3);
	char line[128];

	cr_assert_eq(run_status(fb->bootstrap, NULL, NULL), OX_CTL_EXIT_OK);
	char *out = stdout_text();
	cr_expect_not_null(strstr(out, "metadata leader: node 2 (term 7)\n"),
			   "%s", out);
	cr_expect_not_null(strstr(out, "answering node: 1\n"), "%s", out);
	cr_expect_not_null(strstr(out, "partitions: 3 (2 under-replicated, "
				       "1 without leader)\n"), "%s", out);
	// Nodes sorted by id (the fake sends them in reverse), node 3
	// unreachable; the column widths follow the addresses.
	const char *n1 = strstr(out, "\n  1 "), *n2 = strstr(out, "\n  2 "),
		   *n3 = strstr(out, "\n  3 ");
	cr_assert(n1 != NULL && n2 != NULL && n3 != NULL, "%s", out);
	cr_expect(n1 < n2 && n2 < n3, "%s", out);
	expect_node(n1, 1, fb->bootstrap, "yes");
	snprintf(line, sizeof(line), "127.0.0.1:%u", fb->port + 1u);
	cr_expect_not_null(strstr(n1, line), "%s", out);
	expect_node(n2, 2, "127.0.0.1:7410", "yes");
	expect_node(n3, 3, "127.0.0.1:7420", "no");
	// Partitions sorted, a missing leader shown as '-'.
	cr_expect_not_null(strstr(out, "orders  0          1       3,2,1       "
				       "3,2,1       0\n"), "%s", out);
	cr_expect_not_null(strstr(out, "orders  2          -       3,2,1       "
				       "2,1         0\n"), "%s", out);
	free(out);
	fb_stop(fb);
}

Test(cluster, status_without_meta_leader)
{
	struct fb *fb = fb_start("t", 1);

	pthread_mutex_lock(&fb->lock);
	fb->meta_leader = -1;
	pthread_mutex_unlock(&fb->lock);
	cr_assert_eq(run_status(fb->bootstrap, "--format", "text"),
		     OX_CTL_EXIT_OK);
	char *out = stdout_text();
	cr_expect_not_null(strstr(out, "metadata leader: none (term 7)\n"),
			   "%s", out);
	cr_expect_not_null(strstr(out, "partitions: 1 (0 under-replicated, "
				       "0 without leader)\n"), "%s", out);
	free(out);
	fb_stop(fb);
}

Test(cluster, status_json_object)
{
	// A topic name that needs escaping in JSON.
	struct fb *fb = fb_start("q\"t", 2);
	char addr[128];

	cr_assert_eq(run_status(fb->bootstrap, "--format", "json"),
		     OX_CTL_EXIT_OK);
	char *out = stdout_text();
	size_t len = strlen(out);
	cr_assert_gt(len, 1);
	cr_expect_eq(out[len - 1], '\n');
	cr_expect_eq(strchr(out, '\n'), out + len - 1, "one line: %s", out);
	expect_field(out, "answering_node", "1");
	expect_field(out, "meta_leader", "2");
	expect_field(out, "meta_term", "7");
	expect_field(out, "under_replicated", "1");
	expect_field(out, "without_leader", "1");
	snprintf(addr, sizeof(addr), "{\"id\":1,\"address\":\"%s\"",
		 fb->bootstrap);
	cr_expect_not_null(strstr(out, addr), "%s", out);
	cr_expect_not_null(strstr(out, "\"reachable\":false}]"), "%s", out);
	cr_expect_not_null(strstr(out,
		"{\"topic\":\"q\\\"t\",\"partition\":1,\"leader\":-1,"
		"\"replicas\":[3,2,1],\"in_sync\":[2,1],\"high_watermark\":0,"
		"\"moving\":false}"),
		"%s", out);
	free(out);
	fb_stop(fb);
}

Test(cluster, status_marks_moving_partitions)
{
	struct fb *fb = fb_start("orders", 3);

	pthread_mutex_lock(&fb->lock);
	fb->moving[1] = true;
	pthread_mutex_unlock(&fb->lock);
	cr_assert_eq(run_status(fb->bootstrap, NULL, NULL), OX_CTL_EXIT_OK);
	char *out = stdout_text();
	// Every column as before; only the moving partition gains a word.
	cr_expect_not_null(strstr(out, "partitions: 3 (2 under-replicated, "
				       "1 without leader)\n"), "%s", out);
	cr_expect_not_null(strstr(out, "orders  0          1       3,2,1       "
				       "3,2,1       0\n"), "%s", out);
	cr_expect_not_null(strstr(out, "orders  1          2       3,2,1       "
				       "2,1         0  moving\n"), "%s", out);
	cr_expect_not_null(strstr(out, "orders  2          -       3,2,1       "
				       "2,1         0\n"), "%s", out);
	const char *mark = strstr(out, "moving");
	cr_assert_not_null(mark, "%s", out);
	cr_expect_null(strstr(mark + 1, "moving"), "one partition marked: %s",
		       out);
	free(out);
	fb_stop(fb);
}

Test(cluster, status_json_marks_moving_partitions)
{
	struct fb *fb = fb_start("t", 2);

	pthread_mutex_lock(&fb->lock);
	fb->moving[0] = true;
	pthread_mutex_unlock(&fb->lock);
	cr_assert_eq(run_status(fb->bootstrap, "--format", "json"),
		     OX_CTL_EXIT_OK);
	char *out = stdout_text();
	cr_expect_not_null(strstr(out,
		"{\"topic\":\"t\",\"partition\":0,\"leader\":1,"
		"\"replicas\":[3,2,1],\"in_sync\":[3,2,1],\"high_watermark\":0,"
		"\"moving\":true}"), "%s", out);
	cr_expect_not_null(strstr(out,
		"{\"topic\":\"t\",\"partition\":1,\"leader\":-1,"
		"\"replicas\":[3,2,1],\"in_sync\":[2,1],\"high_watermark\":0,"
		"\"moving\":false}"), "%s", out);
	expect_field(out, "under_replicated", "1");
	free(out);
	fb_stop(fb);
}

Test(cluster, status_broker_error_is_exit_1)
{
	struct fb *fb = fb_start("t", 1);

	pthread_mutex_lock(&fb->lock);
	fb->cluster_status_code = OXBOW__ERROR_CODE__UNSUPPORTED_VERSION;
	pthread_mutex_unlock(&fb->lock);
	cr_assert_eq(run_status(fb->bootstrap, NULL, NULL), OX_CTL_EXIT_ERROR);
	fflush(stderr);
	char *err = ctl_slurp(cr_get_redirected_stderr());
	cr_expect_eq(strncmp(err, "oxbowctl: asking for the cluster status: ",
			     41), 0, "%s", err);
	cr_expect_not_null(strstr(err, "scripted error"), "%s", err);
	cr_expect_eq(strchr(err, '\n'), err + strlen(err) - 1, "%s", err);
	free(err);
	char *out = stdout_text();
	cr_expect_str_eq(out, "");
	free(out);
	fb_stop(fb);
}

Test(cluster, status_no_broker_is_exit_1)
{
	cr_assert_eq(run_status("127.0.0.1:1", NULL, NULL), OX_CTL_EXIT_ERROR);
	fflush(stderr);
	cr_assert_stderr_eq_str("oxbowctl: broker unreachable (127.0.0.1:1)\n");
}

Test(cluster, status_misuse_is_exit_2)
{
	// Misuse is found before any broker is asked.
	cr_expect_eq(run_status("127.0.0.1:1", "--format", "xml"),
		     OX_CTL_EXIT_USAGE);
	cr_expect_eq(run_status("127.0.0.1:1", "--format", NULL),
		     OX_CTL_EXIT_USAGE);
	cr_expect_eq(run_status("127.0.0.1:1", "extra", NULL),
		     OX_CTL_EXIT_USAGE);
	cr_expect_eq(run_status("127.0.0.1:1", "--bogus", NULL),
		     OX_CTL_EXIT_USAGE);
	cr_expect_eq(run_status("127.0.0.1:1", "--help", NULL), OX_CTL_EXIT_OK);
}

Test(cluster, family_dispatch)
{
	char w0[] = "cluster", w1[] = "frob", w2[] = "--help";
	char *unknown[] = { w0, w1, NULL };
	char *help[] = { w0, w2, NULL };
	char *none[] = { w0, NULL };
	struct ox_ctl ctl = { .bootstrap = "127.0.0.1:1", .command = "cluster" };

	cr_expect_eq(ox_ctl_cluster(&ctl, 2, unknown), OX_CTL_EXIT_USAGE);
	cr_expect_eq(ox_ctl_cluster(&ctl, 2, help), OX_CTL_EXIT_OK);
	cr_expect_eq(ox_ctl_cluster(&ctl, 1, none), OX_CTL_EXIT_USAGE);
}
