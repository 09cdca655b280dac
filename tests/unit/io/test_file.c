// SPDX-License-Identifier: Apache-2.0
//
// Small files read and written whole (broker/io/file.h): a replace leaves
// the new bytes and no temporary file; a sealed file's payload comes back
// as written, and one whose magic, length or checksum does not match, or
// whose payload is over the bound, is refused as corrupt.
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker/io/file.h"
#include "proto/error.h"

static char root[64];
static char path[128];

static void setup(void)
{
	strcpy(root, "/tmp/ox-file-XXXXXX");
	cr_assert_not_null(mkdtemp(root));
	snprintf(path, sizeof(path), "%s/f", root);
}

static void teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	cr_assert_eq(system(cmd), 0);
}

static void flip_byte(long at)
{
	FILE *f = fopen(path, "r+b");
	int c;

	cr_assert_not_null(f);
	cr_assert_eq(fseek(f, at, SEEK_SET), 0);
	c = fgetc(f);
	cr_assert_eq(fseek(f, at, SEEK_SET), 0);
	cr_assert_eq(fputc(c ^ 0x40, f), c ^ 0x40);
	cr_assert_eq(fclose(f), 0);
}

TestSuite(file, .init = setup, .fini = teardown);

Test(file, replace_then_read)
{
	char tmp[160];
	uint8_t *out;
	size_t n;
	struct stat st;

	cr_assert_eq(ox_file_read(path, 100, &out, &n), -ENOENT);
	cr_assert_eq(ox_file_replace(path, "first", 5), 0);
	cr_assert_eq(ox_file_replace(path, "second!", 7), 0);
	cr_assert_eq(ox_file_read(path, 100, &out, &n), 0);
	cr_assert_eq(n, 7);
	cr_assert_eq(memcmp(out, "second!", 7), 0);
	cr_assert_eq(out[7], '\0', "a NUL follows the bytes");
	free(out);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	cr_assert_eq(stat(tmp, &st), -1, "no temporary file left");
	cr_assert_eq(ox_file_read(path, 6, &out, &n), -OX_ETOOBIG);
}

Test(file, sealed_round_trip_and_damage)
{
	static const char payload[] = "a payload of some bytes";
	size_t len = sizeof(payload) - 1;
	uint8_t *out;
	size_t n;

	cr_assert_eq(ox_file_replace_sealed(path, "TEST", payload, len), 0);
	cr_assert_eq(ox_file_read_sealed(path, "TEST", len, &out, &n), 0);
	cr_assert_eq(n, len);
	cr_assert_eq(memcmp(out, payload, len), 0);
	free(out);
	cr_assert_eq(ox_file_read_sealed(path, "OTHR", len, &out, &n),
		     -OX_ECORRUPT, "another magic");
	cr_assert_eq(ox_file_read_sealed(path, "TEST", len - 1, &out, &n),
		     -OX_ECORRUPT, "over the bound");
	flip_byte(8 + 3);
	cr_assert_eq(ox_file_read_sealed(path, "TEST", len, &out, &n),
		     -OX_ECORRUPT, "a payload byte changed");
	cr_assert_eq(ox_file_replace_sealed(path, "TEST", payload, len), 0);
	flip_byte(4);
	cr_assert_eq(ox_file_read_sealed(path, "TEST", len, &out, &n),
		     -OX_ECORRUPT, "the length changed");
	cr_assert_eq(ox_file_replace_sealed(path, "TEST", payload, len), 0);
	cr_assert_eq(truncate(path, 10), 0);
	cr_assert_eq(ox_file_read_sealed(path, "TEST", len, &out, &n),
		     -OX_ECORRUPT, "cut short");
	cr_assert_eq(ox_file_read_sealed("/nonexistent/x", "TEST", len, &out,
					 &n), -ENOENT);
}
