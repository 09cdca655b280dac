// SPDX-License-Identifier: Apache-2.0
//
// oxbowctl's value parsers: integers in a range, points in time (epoch
// milliseconds or ISO-8601, as --from-time and --to-time take them), k=v
// configs, node id lists (--replicas 1,2,3), --bootstrap between a family
// and its subcommand, and the words a failed call is reported in.
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "client/ctl/ctl.h"

Test(parse, integers_in_range)
{
	int64_t v = 7;

	cr_assert_eq(ox_ctl_parse_i64("0", 0, 10, &v), 0);
	cr_assert_eq(v, 0);
	cr_assert_eq(ox_ctl_parse_i64("-1", -1, 10, &v), 0);
	cr_assert_eq(v, -1);
	cr_assert_eq(ox_ctl_parse_i64("9223372036854775807", 0, INT64_MAX, &v),
		     0);
	cr_assert_eq(v, INT64_MAX);
}

Test(parse, bad_integers_leave_the_output_alone)
{
	static const char *const bad[] = {
		"", " 1", "1 ", "1x", "x", "0x10", "11", "-2",
		"99999999999999999999", "1.0",
	};
	int64_t v = 42;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(ox_ctl_parse_i64(bad[i], -1, 10, &v), -EINVAL,
			     "'%s'", bad[i]);
	cr_assert_eq(ox_ctl_parse_i64(NULL, 0, 10, &v), -EINVAL);
	cr_assert_eq(v, 42);
}

static int64_t time_ok(const char *s)
{
	int64_t ms = -42;

	cr_assert_eq(ox_ctl_parse_time(s, &ms), 0, "'%s' should parse", s);
	return ms;
}

Test(parse, time_as_epoch_milliseconds)
{
	cr_assert_eq(time_ok("0"), 0);
	cr_assert_eq(time_ok("1714564800000"), INT64_C(1714564800000));
}

Test(parse, time_as_iso8601)
{
	// 2024-05-01T12:00:00Z is 1714564800 s after the epoch.
	cr_assert_eq(time_ok("2024-05-01T12:00:00Z"), INT64_C(1714564800000));
	cr_assert_eq(time_ok("2024-05-01T12:00:00"), INT64_C(1714564800000));
	cr_assert_eq(time_ok("2024-05-01 12:00"), INT64_C(1714564800000));
	cr_assert_eq(time_ok("2024-05-01t12:00:00Z"), INT64_C(1714564800000));
	cr_assert_eq(time_ok("2024-05-01"), INT64_C(1714521600000));
	cr_assert_eq(time_ok("1970-01-01T00:00:00.001Z"), 1);
	cr_assert_eq(time_ok("1970-01-01T00:00:00.5Z"), 500);
	cr_assert_eq(time_ok("1970-01-01T00:00:00.123Z"), 123);
	// Offsets: 14:00+02:00 is 12:00 UTC; 07:30-04:30 is 12:00 UTC.
	cr_assert_eq(time_ok("2024-05-01T14:00:00+02:00"),
		     INT64_C(1714564800000));
	cr_assert_eq(time_ok("2024-05-01T07:30:00-04:30"),
		     INT64_C(1714564800000));
	// Leap days.
	cr_assert_eq(time_ok("2024-02-29") - time_ok("2024-02-28"), 86400000);
	cr_assert_eq(time_ok("2000-02-29") - time_ok("2000-02-28"), 86400000);
	cr_assert_eq(time_ok("2023-03-01") - time_ok("2023-02-28"), 86400000);
}

Test(parse, bad_times_are_refused)
{
	static const char *const bad[] = {
		"", "yesterday", "2024-", "2024-05", "2024-5-01", "2024-13-01",
		"2024-00-10", "2024-04-31", "2023-02-29", "1900-02-29",
		"2024-05-01T", "2024-05-01T24:00", "2024-05-01T12:60",
		"2024-05-01T12:00:60", "2024-05-01T12", "2024-05-01T12:00:00.",
		"2024-05-01T12:00:00Zjunk", "2024-05-01T12:00:00+2",
		"2024-05-01T12:00:00+24:00", "2024-05-01X12:00",
		"1969-12-31T23:59:59Z", "-1", "1e3", "12:00",
	};
	int64_t ms = 42;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(ox_ctl_parse_time(bad[i], &ms), -EINVAL, "'%s'",
			     bad[i]);
	cr_assert_eq(ox_ctl_parse_time(NULL, &ms), -EINVAL);
	cr_assert_eq(ms, 42);
}

Test(parse, config_splits_at_the_first_equals)
{
	char a[] = "retention.ms=86400000";
	char b[] = "k=v=w";
	char c[] = "empty=";
	struct ox_config_entry e;

	cr_assert_eq(ox_ctl_parse_config(a, &e), 0);
	cr_assert_str_eq(e.key, "retention.ms");
	cr_assert_str_eq(e.value, "86400000");
	cr_assert_eq(ox_ctl_parse_config(b, &e), 0);
	cr_assert_str_eq(e.key, "k");
	cr_assert_str_eq(e.value, "v=w");
	cr_assert_eq(ox_ctl_parse_config(c, &e), 0);
	cr_assert_str_eq(e.value, "");
}

Test(parse, config_without_key_or_equals_is_refused)
{
	char a[] = "noequals";
	char b[] = "=value";
	struct ox_config_entry e = { "untouched", "untouched" };

	cr_assert_eq(ox_ctl_parse_config(a, &e), -EINVAL);
	cr_assert_eq(ox_ctl_parse_config(b, &e), -EINVAL);
	cr_assert_str_eq(e.key, "untouched");
}

Test(parse, node_ids_in_order)
{
	int32_t ids[4] = { -7, -7, -7, -7 };
	size_t n = 0;

	cr_assert_eq(ox_ctl_parse_ids("3,1,2", ids, 4, &n), 0);
	cr_assert_eq(n, 3);
	cr_expect_eq(ids[0], 3);
	cr_expect_eq(ids[1], 1);
	cr_expect_eq(ids[2], 2);
	cr_expect_eq(ids[3], -7, "nothing written past the list");
	cr_assert_eq(ox_ctl_parse_ids("0", ids, 4, &n), 0);
	cr_assert_eq(n, 1);
	cr_expect_eq(ids[0], 0);
	cr_assert_eq(ox_ctl_parse_ids("2147483647,4", ids, 4, &n), 0);
	cr_expect_eq(ids[0], INT32_MAX);
	// Duplicates are the caller's to refuse.
	cr_assert_eq(ox_ctl_parse_ids("1,1", ids, 4, &n), 0);
	cr_assert_eq(n, 2);
}

Test(parse, bad_node_id_lists_are_refused)
{
	static const char *const bad[] = {
		"", ",", "1,", ",1", "1,,2", "a", "1,b", "-1", "1,-2", "+1",
		" 1", "1 ", "1, 2", "2147483648", "1.5", "0x3",
		"99999999999999999999",
	};
	int32_t ids[4];
	size_t n = 42;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(ox_ctl_parse_ids(bad[i], ids, 4, &n), -EINVAL,
			     "'%s'", bad[i]);
	cr_expect_eq(ox_ctl_parse_ids(NULL, ids, 4, &n), -EINVAL);
	cr_expect_eq(ox_ctl_parse_ids("1,2,3,4,5", ids, 4, &n), -E2BIG);
	cr_expect_eq(n, 42, "the count is left alone on error");
	cr_expect_eq(ox_ctl_parse_ids("1,2,3,4", ids, 4, &n), 0);
	cr_expect_eq(n, 4);
}

Test(parse, bootstrap_between_family_and_subcommand)
{
	char *words[] = { "topic", "--bootstrap", "h1:1", "--bootstrap=h2:2",
			  "list", NULL };
	char **argv = words;
	int argc = 5;
	struct ox_ctl ctl = { .bootstrap = "default:7400" };

	cr_assert_eq(ox_ctl_family_globals(&ctl, &argc, &argv), -1);
	cr_assert_eq(argc, 2);
	cr_assert_str_eq(argv[0], "topic");
	cr_assert_str_eq(argv[1], "list");
	cr_assert_str_eq(ctl.bootstrap, "h2:2");
}

Test(parse, bootstrap_without_value_is_misuse, .init = cr_redirect_stderr)
{
	char *words[] = { "topic", "--bootstrap", NULL };
	char **argv = words;
	int argc = 2;
	struct ox_ctl ctl = { .bootstrap = "default:7400" };

	cr_assert_eq(ox_ctl_family_globals(&ctl, &argc, &argv),
		     OX_CTL_EXIT_USAGE);
	cr_assert_str_eq(ctl.bootstrap, "default:7400");
}

static const char *error_text(int err, const char *topic, const char *group,
			      const char *broker_msg)
{
	static char buf[512];
	const struct ox_ctl ctl = { .bootstrap = "127.0.0.1:7400" };

	ox_ctl_error_text(buf, sizeof(buf), &ctl, err, "doing x", topic, group,
			  broker_msg);
	return buf;
}

Test(report, errors_in_words)
{
	cr_assert_str_eq(error_text(-OX_EUNREACHABLE, "t", NULL, NULL),
			 "broker unreachable (127.0.0.1:7400)");
	cr_assert_str_eq(error_text(-ECONNREFUSED, NULL, NULL, NULL),
			 "broker unreachable (127.0.0.1:7400)");
	cr_assert_str_eq(error_text(-ETIMEDOUT, NULL, NULL, NULL),
			 "doing x: no answer from the broker in time "
			 "(127.0.0.1:7400)");
	cr_assert_str_eq(error_text(-OX_EUNKNOWN_TOPIC, "orders", NULL, NULL),
			 "unknown topic 'orders'");
	cr_assert_str_eq(error_text(-OX_ETOPIC_EXISTS, "orders", NULL, NULL),
			 "topic 'orders' already exists");
	cr_assert_str_eq(error_text(-OX_ENOTFOUND, "t", "g1", NULL),
			 "unknown group 'g1'");
}

Test(report, broker_message_added_only_when_it_says_more)
{
	char want[256];

	snprintf(want, sizeof(want), "doing x: %s (bad value for x)",
		 ox_strerror(-OX_EINVALID_CONFIG));
	cr_assert_str_eq(error_text(-OX_EINVALID_CONFIG, "t", NULL,
				    "bad value for x"),
			 want);
	snprintf(want, sizeof(want), "doing x: %s",
		 ox_strerror(-OX_EINVALID_CONFIG));
	cr_assert_str_eq(error_text(-OX_EINVALID_CONFIG, "t", NULL,
				    ox_strerror(-OX_EINVALID_CONFIG)),
			 want);
	cr_assert_str_eq(error_text(-OX_EINVALID_CONFIG, "t", NULL, ""), want);
	// Without a topic to name, an unknown topic is reported as a code.
	snprintf(want, sizeof(want), "doing x: %s",
		 ox_strerror(-OX_EUNKNOWN_TOPIC));
	cr_assert_str_eq(error_text(-OX_EUNKNOWN_TOPIC, NULL, NULL, NULL),
			 want);
}

Test(report, long_text_is_cut_not_overrun)
{
	char buf[16];
	const struct ox_ctl ctl = { .bootstrap = "127.0.0.1:7400" };

	memset(buf, 'z', sizeof(buf));
	ox_ctl_error_text(buf, sizeof(buf), &ctl, -OX_EUNKNOWN_TOPIC,
			  "doing x", "a-very-long-topic-name", NULL, NULL);
	cr_assert_eq(buf[sizeof(buf) - 1], '\0');
	cr_assert_eq(strncmp(buf, "unknown topic '", 15), 0);
}
