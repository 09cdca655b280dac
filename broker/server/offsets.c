// SPDX-License-Identifier: Apache-2.0
//
// The __offsets record codec and the group-offset map (offsets.h). The
// map is a chained hash table keyed by (group, topic, partition), grown by
// doubling; entries own copies of their strings and know their shard (the
// partition of __offsets their group lives in), so a shard can be dropped
// whole when this node stops coordinating it.
#include "broker/server/offsets.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "proto/assert.h"
#include "proto/error.h"
#include "proto/varint.h"

int ox_group_name_check(const char *group, size_t len)
{
	if (len == 0 || len > OX_GROUP_NAME_MAX || memchr(group, '\0', len))
		return -EINVAL;
	return 0;
}

int ox_offset_key_encode(const struct ox_offset_key *k, uint8_t *buf)
{
	if (k->group_len == 0 || k->group_len > OX_GROUP_NAME_MAX ||
	    k->topic_len == 0 || k->topic_len > OX_TOPIC_NAME_MAX)
		return -EINVAL;
	size_t n = 0;
	buf[n++] = OX_OFFSETS_VERSION;
	buf[n++] = (uint8_t)k->group_len;
	memcpy(buf + n, k->group, k->group_len);
	n += k->group_len;
	buf[n++] = (uint8_t)k->topic_len;
	memcpy(buf + n, k->topic, k->topic_len);
	n += k->topic_len;
	ox_store_le32(buf + n, k->partition);
	n += 4;
	OX_ASSERT(n <= OX_OFFSET_KEY_MAX);
	return (int)n;
}

int ox_offset_value_encode(int64_t offset, const char *meta, size_t meta_len,
			   uint8_t *buf)
{
	if (meta_len > OX_OFFSET_METADATA_MAX || offset < -1)
		return -EINVAL;
	buf[0] = OX_OFFSETS_VERSION;
	ox_store_le64(buf + 1, (uint64_t)offset);
	ox_store_le16(buf + 9, (uint16_t)meta_len);
	if (meta_len)
		memcpy(buf + 11, meta, meta_len);
	return (int)(11 + meta_len);
}

int ox_offset_key_decode(const uint8_t *buf, size_t len,
			 struct ox_offset_key *out)
{
	size_t n = 0;

	if (len < 2 || buf[0] != OX_OFFSETS_VERSION)
		return -OX_ECORRUPT;
	out->group_len = buf[1];
	n = 2;
	if (out->group_len == 0 || len - n < out->group_len + 1)
		return -OX_ECORRUPT;
	out->group = (const char *)buf + n;
	n += out->group_len;
	out->topic_len = buf[n++];
	if (out->topic_len == 0 || out->topic_len > OX_TOPIC_NAME_MAX ||
	    len - n != out->topic_len + 4)
		return -OX_ECORRUPT;
	out->topic = (const char *)buf + n;
	n += out->topic_len;
	out->partition = ox_load_le32(buf + n);
	return 0;
}

int ox_offset_value_decode(const uint8_t *buf, size_t len, int64_t *offset,
			   const char **meta, size_t *meta_len)
{
	if (len < 11 || buf[0] != OX_OFFSETS_VERSION)
		return -OX_ECORRUPT;
	*offset = (int64_t)ox_load_le64(buf + 1);
	*meta_len = ox_load_le16(buf + 9);
	if (*offset < -1 || *meta_len > OX_OFFSET_METADATA_MAX ||
	    len != 11 + *meta_len)
		return -OX_ECORRUPT;
	*meta = (const char *)buf + 11;
	return 0;
}

struct node {
	struct node *next;
	uint64_t hash;
	char *group;
	char *topic;
	char *metadata;
	uint32_t partition;
	uint32_t shard;
	int64_t offset;
};

struct ox_offsets {
	struct node **slots;
	size_t nslots; // a power of two
	size_t count;
	uint32_t shards;     // 1 until set
	uint64_t *shard_term; // per shard: the term it was loaded in, 0 none
};

#define SLOTS_MIN 64u

static uint64_t key_hash(const struct ox_offset_key *k)
{
	uint8_t buf[OX_OFFSET_KEY_MAX];

	// The encoded key is the identity; names are bounded, so it always
	// encodes (lengths out of range hash as their truncation, harmless
	// for a hash).
	struct ox_offset_key c = *k;
	if (c.group_len > OX_GROUP_NAME_MAX)
		c.group_len = OX_GROUP_NAME_MAX;
	if (c.topic_len > OX_TOPIC_NAME_MAX)
		c.topic_len = OX_TOPIC_NAME_MAX;
	if (c.group_len == 0 || c.topic_len == 0)
		return c.partition;
	int n = ox_offset_key_encode(&c, buf);
	return XXH3_64bits(buf, (size_t)n);
}

static bool key_eq(const struct node *n, const struct ox_offset_key *k)
{
	return n->partition == k->partition &&
	       strlen(n->group) == k->group_len &&
	       memcmp(n->group, k->group, k->group_len) == 0 &&
	       strlen(n->topic) == k->topic_len &&
	       memcmp(n->topic, k->topic, k->topic_len) == 0;
}

int ox_offsets_create(struct ox_offsets **out)
{
	struct ox_offsets *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->slots = calloc(SLOTS_MIN, sizeof(*m->slots));
	if (!m->slots) {
		free(m);
		return -ENOMEM;
	}
	m->nslots = SLOTS_MIN;
	m->shards = 1;
	m->shard_term = calloc(1, sizeof(*m->shard_term));
	if (!m->shard_term) {
		free(m->slots);
		free(m);
		return -ENOMEM;
	}
	m->shard_term[0] = 1; // one shard: held for good
	*out = m;
	return 0;
}

static void node_free(struct node *n)
{
	free(n->group);
	free(n->topic);
	free(n->metadata);
	free(n);
}

void ox_offsets_destroy(struct ox_offsets *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->nslots; i++) {
		struct node *n = m->slots[i], *next;
		for (; n; n = next) {
			next = n->next;
			node_free(n);
		}
	}
	free(m->slots);
	free(m->shard_term);
	free(m);
}

static struct node **find(const struct ox_offsets *m,
			  const struct ox_offset_key *k, uint64_t h)
{
	struct node **p = &m->slots[h & (m->nslots - 1)];
	while (*p && !((*p)->hash == h && key_eq(*p, k)))
		p = &(*p)->next;
	return p;
}

static void grow(struct ox_offsets *m)
{
	size_t ns = m->nslots * 2;
	struct node **slots = calloc(ns, sizeof(*slots));
	if (!slots)
		return; // longer chains, still correct
	for (size_t i = 0; i < m->nslots; i++) {
		struct node *n = m->slots[i], *next;
		for (; n; n = next) {
			next = n->next;
			n->next = slots[n->hash & (ns - 1)];
			slots[n->hash & (ns - 1)] = n;
		}
	}
	free(m->slots);
	m->slots = slots;
	m->nslots = ns;
}

static char *dup_n(const char *s, size_t n)
{
	char *d = malloc(n + 1);
	if (d) {
		memcpy(d, s, n);
		d[n] = '\0';
	}
	return d;
}

int ox_offsets_put(struct ox_offsets *m, const struct ox_offset_key *k,
		   int64_t offset, const char *meta, size_t meta_len)
{
	uint64_t h = key_hash(k);
	struct node **p = find(m, k, h);
	char *md = dup_n(meta ? meta : "", meta_len);

	if (!md)
		return -ENOMEM;
	if (*p) {
		free((*p)->metadata);
		(*p)->metadata = md;
		(*p)->offset = offset;
		return 0;
	}
	if (m->count >= OX_GROUP_OFFSETS_MAX) {
		free(md);
		return -OX_ETOOBIG;
	}
	struct node *n = calloc(1, sizeof(*n));
	if (n) {
		n->group = dup_n(k->group, k->group_len);
		n->topic = dup_n(k->topic, k->topic_len);
	}
	if (!n || !n->group || !n->topic) {
		if (n) {
			n->metadata = md;
			node_free(n);
		} else {
			free(md);
		}
		return -ENOMEM;
	}
	n->metadata = md;
	n->hash = h;
	n->shard = ox_offsets_shard_of(k->group, k->group_len, m->shards);
	n->partition = k->partition;
	n->offset = offset;
	*p = n;
	m->count++;
	if (m->count > m->nslots)
		grow(m);
	return 0;
}

void ox_offsets_remove(struct ox_offsets *m, const struct ox_offset_key *k)
{
	struct node **p = find(m, k, key_hash(k));
	if (*p) {
		struct node *n = *p;
		*p = n->next;
		node_free(n);
		m->count--;
	}
}

static void fill(const struct node *n, struct ox_offset_entry *e)
{
	e->group = n->group;
	e->topic = n->topic;
	e->partition = n->partition;
	e->offset = n->offset;
	e->metadata = n->metadata;
}

int ox_offsets_get(const struct ox_offsets *m, const struct ox_offset_key *k,
		   struct ox_offset_entry *out)
{
	struct node **p = find(m, k, key_hash(k));
	if (!*p)
		return 0;
	fill(*p, out);
	return 1;
}

int ox_offsets_apply(struct ox_offsets *m, const uint8_t *key, size_t key_len,
		     const uint8_t *value, int32_t value_len)
{
	struct ox_offset_key k;
	int64_t offset;
	const char *meta;
	size_t meta_len;

	if (!key || ox_offset_key_decode(key, key_len, &k) < 0)
		return -OX_ECORRUPT;
	if (value_len < 0) {
		ox_offsets_remove(m, &k);
		return 0;
	}
	if (ox_offset_value_decode(value, (size_t)value_len, &offset, &meta,
				   &meta_len) < 0)
		return -OX_ECORRUPT;
	return ox_offsets_put(m, &k, offset, meta, meta_len);
}

size_t ox_offsets_each(const struct ox_offsets *m, const char *group,
		       const char *topic,
		       void (*fn)(void *arg, const struct ox_offset_entry *e),
		       void *arg)
{
	struct ox_offset_entry e;
	size_t calls = 0;

	for (size_t i = 0; i < m->nslots; i++) {
		for (const struct node *n = m->slots[i]; n; n = n->next) {
			if (group && strcmp(n->group, group) != 0)
				continue;
			if (topic && strcmp(n->topic, topic) != 0)
				continue;
			fill(n, &e);
			fn(arg, &e);
			calls++;
		}
	}
	return calls;
}

size_t ox_offsets_count(const struct ox_offsets *m)
{
	return m->count;
}

uint32_t ox_offsets_shard_of(const char *group, size_t len, uint32_t shards)
{
	uint32_t h = 2166136261u; // FNV-1a, 32 bits (ox_cluster_group_partition)

	OX_ASSERT(shards > 0);
	for (size_t i = 0; i < len; i++) {
		h ^= (uint8_t)group[i];
		h *= 16777619u;
	}
	return h % shards;
}

int ox_offsets_set_shards(struct ox_offsets *m, uint32_t shards)
{
	if (shards == 0 || shards > OX_OFFSETS_SHARDS_MAX)
		return -EINVAL;
	if (m->count > 0)
		return -EBUSY;
	uint64_t *t = calloc(shards, sizeof(*t));
	if (!t)
		return -ENOMEM;
	free(m->shard_term);
	m->shard_term = t;
	m->shards = shards;
	return 0;
}

uint32_t ox_offsets_shards(const struct ox_offsets *m)
{
	return m->shards;
}

uint32_t ox_offsets_shard(const struct ox_offsets *m, const char *group)
{
	return ox_offsets_shard_of(group, strlen(group), m->shards);
}

uint64_t ox_offsets_shard_term(const struct ox_offsets *m, uint32_t s)
{
	OX_ASSERT(s < m->shards);
	return m->shard_term[s];
}

void ox_offsets_shard_hold(struct ox_offsets *m, uint32_t s, uint64_t term)
{
	OX_ASSERT(s < m->shards && term > 0);
	m->shard_term[s] = term;
}

void ox_offsets_shard_drop(struct ox_offsets *m, uint32_t s)
{
	OX_ASSERT(s < m->shards);
	m->shard_term[s] = 0;
	for (size_t i = 0; i < m->nslots; i++) {
		struct node **p = &m->slots[i];
		while (*p) {
			struct node *n = *p;
			if (n->shard != s) {
				p = &n->next;
				continue;
			}
			*p = n->next;
			node_free(n);
			m->count--;
		}
	}
}
