// SPDX-License-Identifier: Apache-2.0
//
// Small files read and written whole (file.h).
#include "broker/io/file.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "proto/error.h"

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int fsync_dir_of(const char *path)
{
	char copy[PATH_MAX];
	int fd, rc = 0;

	if (strlen(path) >= sizeof(copy))
		return -ENAMETOOLONG;
	strcpy(copy, path);
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

int ox_file_replace(const char *path, const void *buf, size_t len)
{
	char tmp[PATH_MAX];
	int fd, rc;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	rc = write_all(fd, buf, len);
	if (rc == 0 && fdatasync(fd) < 0)
		rc = -errno;
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp, path) < 0)
		rc = -errno;
	if (rc == 0)
		rc = fsync_dir_of(path);
	if (rc < 0)
		unlink(tmp);
	return rc;
}

int ox_file_read(const char *path, size_t max, uint8_t **out, size_t *len)
{
	struct stat st;
	uint8_t *buf = NULL;
	size_t got = 0;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	rc = fstat(fd, &st) < 0 ? -errno : 0;
	if (rc == 0 && (st.st_size < 0 || (uint64_t)st.st_size > max))
		rc = -OX_ETOOBIG;
	if (rc == 0 && (buf = malloc((size_t)st.st_size + 1)) == NULL)
		rc = -ENOMEM;
	while (rc == 0 && got < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			// Shorter than fstat said: changed under us.
			rc = r < 0 ? -errno : -OX_ECORRUPT;
			break;
		}
		got += (size_t)r;
	}
	close(fd);
	if (rc < 0) {
		free(buf);
		return rc;
	}
	buf[got] = '\0';
	*out = buf;
	*len = got;
	return 0;
}

// Magic, length, payload, checksum.
#define SEALED_OVERHEAD 16u

int ox_file_replace_sealed(const char *path, const char magic[4],
			   const void *payload, size_t len)
{
	uint8_t *buf;
	uint32_t len32 = (uint32_t)len;
	uint64_t sum = XXH3_64bits(payload, len);
	int rc;

	if (len > UINT32_MAX)
		return -EINVAL;
	buf = malloc(len + SEALED_OVERHEAD);
	if (buf == NULL)
		return -ENOMEM;
	memcpy(buf, magic, 4);
	memcpy(buf + 4, &len32, 4);
	memcpy(buf + 8, payload, len);
	memcpy(buf + 8 + len, &sum, 8);
	rc = ox_file_replace(path, buf, len + SEALED_OVERHEAD);
	free(buf);
	return rc;
}

int ox_file_read_sealed(const char *path, const char magic[4], size_t max,
			uint8_t **out, size_t *len)
{
	uint8_t *buf;
	uint32_t len32;
	uint64_t sum;
	size_t n;
	int rc = ox_file_read(path, max + SEALED_OVERHEAD, &buf, &n);

	if (rc == -OX_ETOOBIG)
		return -OX_ECORRUPT;
	if (rc < 0)
		return rc;
	if (n < SEALED_OVERHEAD || memcmp(buf, magic, 4) != 0) {
		free(buf);
		return -OX_ECORRUPT;
	}
	memcpy(&len32, buf + 4, 4);
	memcpy(&sum, buf + n - 8, 8);
	if ((size_t)len32 + SEALED_OVERHEAD != n ||
	    XXH3_64bits(buf + 8, len32) != sum) {
		free(buf);
		return -OX_ECORRUPT;
	}
	memmove(buf, buf + 8, len32);
	*out = buf;
	*len = len32;
	return 0;
}
