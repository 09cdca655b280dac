// SPDX-License-Identifier: Apache-2.0
//
// Small files read and written whole, synchronously, outside the loop:
// the replicas' hard state, the topics file, the metadata snapshot. They
// change rarely (elections, admin changes), so a blocking write costs
// less than a state machine around the loop would.
//
// ox_file_replace is atomic and durable: the bytes go to PATH.tmp, which
// is fsynced, renamed over PATH, and the directory is fsynced. After a
// crash PATH holds the old bytes or the new ones, whole; a PATH.tmp left
// behind is overwritten by the next replace.
#ifndef OX_BROKER_IO_FILE_H
#define OX_BROKER_IO_FILE_H

#include <stddef.h>
#include <stdint.h>

// Replaces the file at path with buf[0, len). Returns 0 or -errno (the
// old file is then untouched; -ENAMETOOLONG for a path without room for
// ".tmp").
int ox_file_replace(const char *path, const void *buf, size_t len);

// Reads the whole file at path into a malloc'd *out (the caller frees it)
// of *len bytes, plus a NUL after them (not counted) for text readers.
// Returns 0, -errno (-ENOENT: no such file), -OX_ETOOBIG (over max bytes),
// or -ENOMEM.
int ox_file_read(const char *path, size_t max, uint8_t **out, size_t *len);

// A sealed file: a 4-byte magic, the payload's length (u32 LE), the
// payload, and the XXH3-64 of the payload (u64 LE); replaced as above.
// Returns what ox_file_replace returns; len must fit in u32.
int ox_file_replace_sealed(const char *path, const char magic[4],
			   const void *payload, size_t len);

// Reads a sealed file whole: *out (malloc'd; the caller frees it) holds
// its payload of *len bytes. Returns 0, -ENOENT (no such file), -errno,
// -OX_ECORRUPT (another magic, a length or checksum that does not match,
// or a payload over max bytes), or -ENOMEM.
int ox_file_read_sealed(const char *path, const char magic[4], size_t max,
			uint8_t **out, size_t *len);

#endif
