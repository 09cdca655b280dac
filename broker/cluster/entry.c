// SPDX-License-Identifier: Apache-2.0
//
// Encoders of metadata entries (proto/meta.proto MetaEntry), for the
// metadata leader. They bound what they encode (counts and string
// lengths), so an entry they produce is never refused as too long, but
// they judge nothing against the state: ox_cluster_check does.
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "broker/cluster/cluster.h"
#include "broker/cluster/cluster_int.h"
#include "proto/assert.h"
#include "proto/error.h"

// protobuf-c's structures hold non-const pointers, but packing only reads
// them: the borrowed inputs are never written through these.
static char *str_arg(const char *s)
{
	return (char *)(uintptr_t)s;
}

static uint64_t *ids_arg(const uint64_t *p)
{
	return (uint64_t *)(uintptr_t)p;
}

static bool str_fits(const char *s, size_t max)
{
	return s != NULL && strnlen(s, max + 1) <= max;
}

static int pack(const Oxbow__MetaEntry *e, uint8_t **out, size_t *len)
{
	size_t n = oxbow__meta_entry__get_packed_size(e);

	OX_ASSERT(n <= OX_CLUSTER_ENTRY_BYTES_MAX);
	uint8_t *buf = cluster_malloc(n);
	if (buf == NULL)
		return -ENOMEM;
	size_t w = oxbow__meta_entry__pack(e, buf);
	OX_ASSERT(w == n);
	*out = buf;
	*len = n;
	return 0;
}

int ox_cluster_entry_noop(uint8_t **out, size_t *len)
{
	Oxbow__MetaEntry e = OXBOW__META_ENTRY__INIT;
	Oxbow__MetaNoop noop = OXBOW__META_NOOP__INIT;

	if (out == NULL || len == NULL)
		return -EINVAL;
	e.op_case = OXBOW__META_ENTRY__OP_NOOP;
	e.noop = &noop;
	return pack(&e, out, len);
}

int ox_cluster_entry_register_node(const struct ox_cluster_node *n,
				   uint8_t **out, size_t *len)
{
	Oxbow__MetaEntry e = OXBOW__META_ENTRY__INIT;
	Oxbow__MetaRegisterNode reg = OXBOW__META_REGISTER_NODE__INIT;
	Oxbow__MetaNode node = OXBOW__META_NODE__INIT;

	if (n == NULL || out == NULL || len == NULL ||
	    !str_fits(n->client_address, OX_CLUSTER_ADDRESS_MAX) ||
	    !str_fits(n->peer_address, OX_CLUSTER_ADDRESS_MAX) ||
	    (n->rack != NULL && !str_fits(n->rack, OX_CLUSTER_RACK_MAX)))
		return -EINVAL;
	node.id = n->id;
	node.client_address = str_arg(n->client_address);
	node.peer_address = str_arg(n->peer_address);
	node.rack = str_arg(n->rack ? n->rack : "");
	reg.node = &node;
	e.op_case = OXBOW__META_ENTRY__OP_REGISTER_NODE;
	e.register_node = &reg;
	return pack(&e, out, len);
}

// Configs for an entry: kv[0, n) into structs and pointers the caller
// frees (cluster_free of *structs and *ptrs). 0, -EINVAL or -ENOMEM.
static int configs_build(const struct ox_cluster_kv *kv, uint32_t n,
			 Oxbow__MetaConfig **structs,
			 Oxbow__MetaConfig ***ptrs)
{
	*structs = NULL;
	*ptrs = NULL;
	if (n > OX_CLUSTER_CONFIGS_MAX || (n > 0 && kv == NULL))
		return -EINVAL;
	for (uint32_t i = 0; i < n; i++)
		if (!str_fits(kv[i].key, OX_CLUSTER_CONFIG_KEY_MAX) ||
		    !str_fits(kv[i].value, OX_CLUSTER_CONFIG_VALUE_MAX))
			return -EINVAL;
	if (n == 0)
		return 0;
	*structs = cluster_calloc(n, sizeof(**structs));
	*ptrs = cluster_calloc(n, sizeof(**ptrs));
	if (*structs == NULL || *ptrs == NULL)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		oxbow__meta_config__init(&(*structs)[i]);
		(*structs)[i].key = str_arg(kv[i].key);
		(*structs)[i].value = str_arg(kv[i].value);
		(*ptrs)[i] = &(*structs)[i];
	}
	return 0;
}

// Assignments for an entry, pointing into `ids` (n partitions of rf).
static int assignments_build(const uint64_t *ids, uint32_t n, uint32_t rf,
			     Oxbow__MetaAssignment **structs,
			     Oxbow__MetaAssignment ***ptrs)
{
	*structs = NULL;
	*ptrs = NULL;
	if (ids == NULL || n == 0 || n > OX_CLUSTER_TOPIC_PARTITIONS_MAX ||
	    rf == 0 || rf > OX_CLUSTER_RF_MAX)
		return -EINVAL;
	*structs = cluster_calloc(n, sizeof(**structs));
	*ptrs = cluster_calloc(n, sizeof(**ptrs));
	if (*structs == NULL || *ptrs == NULL)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		oxbow__meta_assignment__init(&(*structs)[i]);
		(*structs)[i].replicas = ids_arg(&ids[(size_t)i * rf]);
		(*structs)[i].n_replicas = rf;
		(*ptrs)[i] = &(*structs)[i];
	}
	return 0;
}

int ox_cluster_entry_create_topic(const struct ox_cluster_topic_spec *spec,
				  uint8_t **out, size_t *len)
{
	Oxbow__MetaEntry e = OXBOW__META_ENTRY__INIT;
	Oxbow__MetaCreateTopic m = OXBOW__META_CREATE_TOPIC__INIT;
	Oxbow__MetaConfig *kv = NULL, **kvp = NULL;
	Oxbow__MetaAssignment *as = NULL, **asp = NULL;
	int rc;

	if (spec == NULL || out == NULL || len == NULL ||
	    !str_fits(spec->name, OX_CLUSTER_TOPIC_NAME_MAX))
		return -EINVAL;
	rc = configs_build(spec->configs, spec->configs_n, &kv, &kvp);
	if (rc < 0)
		goto fail;
	rc = assignments_build(spec->assignment, spec->partitions,
			       spec->replication_factor, &as, &asp);
	if (rc < 0)
		goto fail;
	m.name = str_arg(spec->name);
	m.partitions = spec->partitions;
	m.replication_factor = spec->replication_factor;
	m.configs = kvp;
	m.n_configs = spec->configs_n;
	m.assignments = asp;
	m.n_assignments = spec->partitions;
	e.op_case = OXBOW__META_ENTRY__OP_CREATE_TOPIC;
	e.create_topic = &m;
	rc = pack(&e, out, len);
fail:
	cluster_free(kv);
	cluster_free(kvp);
	cluster_free(as);
	cluster_free(asp);
	return rc;
}

int ox_cluster_entry_delete_topic(const char *name, uint64_t topic_id,
				  uint8_t **out, size_t *len)
{
	Oxbow__MetaEntry e = OXBOW__META_ENTRY__INIT;
	Oxbow__MetaDeleteTopic m = OXBOW__META_DELETE_TOPIC__INIT;

	if (out == NULL || len == NULL ||
	    !str_fits(name, OX_CLUSTER_TOPIC_NAME_MAX))
		return -EINVAL;
	m.name = str_arg(name);
	m.topic_id = topic_id;
	e.op_case = OXBOW__META_ENTRY__OP_DELETE_TOPIC;
	e.delete_topic = &m;
	return pack(&e, out, len);
}

int ox_cluster_entry_alter_configs(const char *name,
				   const struct ox_cluster_kv *set,
				   uint32_t set_n, const char *const *reset,
				   uint32_t reset_n, uint8_t **out,
				   size_t *len)
{
	Oxbow__MetaEntry e = OXBOW__META_ENTRY__INIT;
	Oxbow__MetaAlterConfigs m = OXBOW__META_ALTER_CONFIGS__INIT;
	Oxbow__MetaConfig *kv = NULL, **kvp = NULL;
	char *keys[OX_CLUSTER_CONFIGS_MAX];
	int rc;

	if (out == NULL || len == NULL ||
	    !str_fits(name, OX_CLUSTER_TOPIC_NAME_MAX) ||
	    reset_n > OX_CLUSTER_CONFIGS_MAX || (reset_n > 0 && reset == NULL))
		return -EINVAL;
	for (uint32_t i = 0; i < reset_n; i++) {
		if (!str_fits(reset[i], OX_CLUSTER_CONFIG_KEY_MAX))
			return -EINVAL;
		keys[i] = str_arg(reset[i]);
	}
	rc = configs_build(set, set_n, &kv, &kvp);
	if (rc < 0)
		goto fail;
	m.name = str_arg(name);
	m.set = kvp;
	m.n_set = set_n;
	m.reset = reset_n ? keys : NULL;
	m.n_reset = reset_n;
	e.op_case = OXBOW__META_ENTRY__OP_ALTER_CONFIGS;
	e.alter_configs = &m;
	rc = pack(&e, out, len);
fail:
	cluster_free(kv);
	cluster_free(kvp);
	return rc;
}

int ox_cluster_entry_add_partitions(const char *name, uint32_t added,
				    uint32_t rf, const uint64_t *assignment,
				    uint8_t **out, size_t *len)
{
	Oxbow__MetaEntry e = OXBOW__META_ENTRY__INIT;
	Oxbow__MetaAddPartitions m = OXBOW__META_ADD_PARTITIONS__INIT;
	Oxbow__MetaAssignment *as = NULL, **asp = NULL;

	if (out == NULL || len == NULL ||
	    !str_fits(name, OX_CLUSTER_TOPIC_NAME_MAX))
		return -EINVAL;
	int rc = assignments_build(assignment, added, rf, &as, &asp);
	if (rc < 0)
		goto fail;
	m.name = str_arg(name);
	m.assignments = asp;
	m.n_assignments = added;
	e.op_case = OXBOW__META_ENTRY__OP_ADD_PARTITIONS;
	e.add_partitions = &m;
	rc = pack(&e, out, len);
fail:
	cluster_free(as);
	cluster_free(asp);
	return rc;
}

int ox_cluster_entry_reassign_partition(const char *name,
					uint32_t partition,
					const uint64_t *replicas,
					uint32_t replicas_n, uint8_t **out,
					size_t *len)
{
	Oxbow__MetaEntry e = OXBOW__META_ENTRY__INIT;
	Oxbow__MetaReassignPartition m = OXBOW__META_REASSIGN_PARTITION__INIT;

	if (out == NULL || len == NULL ||
	    !str_fits(name, OX_CLUSTER_TOPIC_NAME_MAX) || replicas == NULL ||
	    replicas_n == 0 || replicas_n > OX_CLUSTER_RF_MAX)
		return -EINVAL;
	m.name = str_arg(name);
	m.partition = partition;
	m.replicas = ids_arg(replicas);
	m.n_replicas = replicas_n;
	e.op_case = OXBOW__META_ENTRY__OP_REASSIGN_PARTITION;
	e.reassign_partition = &m;
	return pack(&e, out, len);
}

int ox_cluster_entry_partition_moved(const char *name, uint64_t topic_id,
				     uint32_t partition, uint64_t epoch,
				     uint8_t **out, size_t *len)
{
	Oxbow__MetaEntry e = OXBOW__META_ENTRY__INIT;
	Oxbow__MetaPartitionMoved m = OXBOW__META_PARTITION_MOVED__INIT;

	if (out == NULL || len == NULL ||
	    !str_fits(name, OX_CLUSTER_TOPIC_NAME_MAX))
		return -EINVAL;
	m.name = str_arg(name);
	m.topic_id = topic_id;
	m.partition = partition;
	m.epoch = epoch;
	e.op_case = OXBOW__META_ENTRY__OP_PARTITION_MOVED;
	e.partition_moved = &m;
	return pack(&e, out, len);
}

int ox_cluster_entry_stamp(const uint8_t *entry, size_t len,
			   const struct ox_cluster_request *rq,
			   uint8_t **out, size_t *out_len)
{
	Oxbow__MetaRequest r = OXBOW__META_REQUEST__INIT;
	ProtobufCAllocator a;
	Oxbow__MetaEntry *e;
	int failed, rc;

	if (rq == NULL || out == NULL || out_len == NULL ||
	    (entry == NULL && len > 0))
		return -EINVAL;
	if (len > OX_CLUSTER_ENTRY_BYTES_MAX)
		return -OX_ECORRUPT;
	cluster_pb_allocator_init(&a, &failed);
	e = oxbow__meta_entry__unpack(&a, len, entry);
	if (e == NULL)
		return failed ? -ENOMEM : -OX_ECORRUPT;
	r.node = rq->node;
	r.nonce = rq->nonce;
	r.seq = rq->seq;
	// Unpacked messages own what they point to: detach the old request
	// (freed below) while the borrowed one is in place.
	Oxbow__MetaRequest *old = e->request;
	e->request = &r;
	// A request id takes at most 33 bytes: an entry at the bound has no
	// room for one.
	if (oxbow__meta_entry__get_packed_size(e) > OX_CLUSTER_ENTRY_BYTES_MAX)
		rc = -OX_ECORRUPT;
	else
		rc = pack(e, out, out_len);
	e->request = old;
	oxbow__meta_entry__free_unpacked(e, &a);
	return rc;
}
