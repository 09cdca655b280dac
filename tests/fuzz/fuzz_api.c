// SPDX-License-Identifier: Apache-2.0
//
// libFuzzer harness for the API bodies (proto/api.proto), the peer
// messages and Raft state (proto/raft.proto), the metadata entries and
// snapshots (proto/meta.proto), and the payload
// split in front of them (proto/wire.h). The first input byte picks one of
// the request or response messages; the rest is split like a frame payload
// and its body unpacked by protobuf-c, the way broker and client read
// every body. Whatever the bytes, unpacking either fails or yields a
// message that packs, unpacks again and packs to the same bytes.
#include <protobuf-c/protobuf-c.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/api.pb-c.h"
#include "proto/meta.pb-c.h"
#include "proto/raft.pb-c.h"
#include "proto/error.h"
#include "proto/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) \
	do { \
		if (!(cond)) { \
			fprintf(stderr, "fuzz_api: check failed: %s (line %d)\n", \
				#cond, __LINE__); \
			abort(); \
		} \
	} while (0)

static const ProtobufCMessageDescriptor *const bodies[] = {
	&oxbow__api_versions_request__descriptor,
	&oxbow__api_versions_response__descriptor,
	&oxbow__metadata_request__descriptor,
	&oxbow__metadata_response__descriptor,
	&oxbow__create_topics_request__descriptor,
	&oxbow__create_topics_response__descriptor,
	&oxbow__delete_topics_request__descriptor,
	&oxbow__delete_topics_response__descriptor,
	&oxbow__describe_configs_request__descriptor,
	&oxbow__describe_configs_response__descriptor,
	&oxbow__alter_configs_request__descriptor,
	&oxbow__alter_configs_response__descriptor,
	&oxbow__produce_request__descriptor,
	&oxbow__produce_response__descriptor,
	&oxbow__fetch_request__descriptor,
	&oxbow__fetch_response__descriptor,
	&oxbow__list_offsets_request__descriptor,
	&oxbow__list_offsets_response__descriptor,
	&oxbow__offset_commit_request__descriptor,
	&oxbow__offset_commit_response__descriptor,
	&oxbow__offset_fetch_request__descriptor,
	&oxbow__offset_fetch_response__descriptor,
	&oxbow__list_groups_request__descriptor,
	&oxbow__list_groups_response__descriptor,
	&oxbow__raft_batch__descriptor,
	&oxbow__raft_hard_state__descriptor,
	&oxbow__meta_entry__descriptor,
	&oxbow__meta_snapshot__descriptor,
	&oxbow__init_producer_id_request__descriptor,
	&oxbow__init_producer_id_response__descriptor,
	&oxbow__find_coordinator_request__descriptor,
	&oxbow__find_coordinator_response__descriptor,
	&oxbow__cluster_status_request__descriptor,
	&oxbow__cluster_status_response__descriptor,
};

#define BODIES_N (sizeof(bodies) / sizeof(bodies[0]))

// protobuf-c keeps unknown fields verbatim, even ones it then refuses to
// parse back (field number 0): such messages are left out of the round
// trip. Walks nested messages too.
static int has_unknown(const ProtobufCMessage *m)
{
	if (m == NULL)
		return 0;
	if (m->n_unknown_fields > 0)
		return 1;
	const ProtobufCMessageDescriptor *d = m->descriptor;
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		if (f->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		const char *base = (const char *)m;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)(base + f->quantifier_offset);
			ProtobufCMessage *const *v =
				*(ProtobufCMessage *const *const *)(base + f->offset);
			for (size_t j = 0; j < n; j++)
				if (has_unknown(v[j]))
					return 1;
		} else {
			const ProtobufCMessage *sub =
				*(const ProtobufCMessage *const *)(base + f->offset);
			if (has_unknown(sub))
				return 1;
		}
	}
	return 0;
}

static void round_trip(const ProtobufCMessageDescriptor *d,
		       const uint8_t *p, size_t n)
{
	ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, n, p);

	if (m == NULL)
		return;
	if (has_unknown(m)) {
		protobuf_c_message_free_unpacked(m, NULL);
		return;
	}
	size_t len = protobuf_c_message_get_packed_size(m);
	uint8_t *a = malloc(len + 1);
	CHECK(a != NULL);
	CHECK(protobuf_c_message_pack(m, a) == len);
	ProtobufCMessage *again = protobuf_c_message_unpack(d, NULL, len, a);
	CHECK(again != NULL);
	CHECK(protobuf_c_message_get_packed_size(again) == len);
	uint8_t *b = malloc(len + 1);
	CHECK(b != NULL);
	CHECK(protobuf_c_message_pack(again, b) == len);
	CHECK(memcmp(a, b, len) == 0);
	protobuf_c_message_free_unpacked(again, NULL);
	protobuf_c_message_free_unpacked(m, NULL);
	free(a);
	free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *body, *raw;
	size_t body_len, raw_len;

	if (size == 0)
		return 0;
	const ProtobufCMessageDescriptor *d = bodies[data[0] % BODIES_N];
	int rc = ox_payload_split(data + 1, size - 1, &body, &body_len, &raw,
				  &raw_len);
	CHECK(rc == 0 || rc == -OX_ECORRUPT);
	if (rc != 0)
		return 0;
	CHECK(body >= data + 1 && raw + raw_len == data + size);
	CHECK(body_len + raw_len <= size - 1);
	round_trip(d, body, body_len);
	return 0;
}
