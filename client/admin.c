// SPDX-License-Identifier: Apache-2.0
//
// The admin handle: topics (create, delete, list, describe), topic
// configs, partition reassignment, offsets by spec or time, consumer
// groups (list, describe with lag, commit) and the cluster's status,
// each one synchronous request or a few over the request layer of
// client.c. Cluster-wide requests go to any broker (a node forwards
// admin changes to the metadata leader); LIST_OFFSETS goes to each
// partition's leader; a group's offsets go to its coordinator, and
// LIST_GROUPS to every node (each lists the groups it coordinates) with
// the answers merged. The broker's error_message of a failed call is
// kept for ox_admin_last_error. Not thread-safe: one thread at a time
// per handle.
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client/client_int.h"
#include "proto/assert.h"
#include "proto/wire.h"

struct ox_admin {
	struct ox_client cl;
};

int ox_admin_create(struct ox_admin **out, const struct ox_conf *conf,
		    char *errstr, size_t errstr_size)
{
	int rc;
	struct ox_admin *a = ox_client_handle_create(sizeof(*a), out, conf,
						     errstr, errstr_size, &rc);

	if (a != NULL)
		*out = a;
	return rc;
}

void ox_admin_destroy(struct ox_admin *a)
{
	if (a == NULL)
		return;
	ox_client_deinit(&a->cl);
	free(a);
}

const char *ox_admin_last_error(const struct ox_admin *a)
{
	return a != NULL ? a->cl.last_error : "";
}

// The result of a one-topic request: its code and message.
static int topic_result(struct ox_admin *a, const Oxbow__TopicResult *r)
{
	int rc;

	if (r == NULL) {
		ox_client_set_error(&a->cl, "the broker sent no result");
		return -OX_ESERVER;
	}
	rc = ox_error_from_wire((int)r->error_code);
	if (rc < 0)
		ox_client_set_error(&a->cl, "%s: %s", r->name,
				    r->error_message != NULL &&
						    r->error_message[0] != '\0' ?
					    r->error_message :
					    ox_strerror(rc));
	return rc;
}

static bool name_ok(const char *name)
{
	return name != NULL && name[0] != '\0';
}

// The repeated ConfigEntry field of a request, borrowing configs' strings.
// Returns 0, -EINVAL (a NULL key or value) or -ENOMEM; the caller frees
// *ce and *cep either way.
static int config_entries(const struct ox_config_entry *configs, size_t n,
			  Oxbow__ConfigEntry **ce, Oxbow__ConfigEntry ***cep)
{
	*ce = NULL;
	*cep = NULL;
	if (configs == NULL && n > 0)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (configs[i].key == NULL || configs[i].value == NULL)
			return -EINVAL;
	*ce = calloc(n + 1, sizeof(**ce));
	*cep = calloc(n + 1, sizeof(**cep));
	if (*ce == NULL || *cep == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		Oxbow__ConfigEntry init = OXBOW__CONFIG_ENTRY__INIT;
		(*ce)[i] = init;
		(*ce)[i].key = (char *)configs[i].key;
		(*ce)[i].value = (char *)configs[i].value;
		(*cep)[i] = &(*ce)[i];
	}
	return 0;
}

int ox_admin_topic_create(struct ox_admin *a, const char *name,
			  int32_t partitions, int32_t replicas,
			  const struct ox_config_entry *configs, size_t n)
{
	Oxbow__CreateTopicsRequest req = OXBOW__CREATE_TOPICS_REQUEST__INIT;
	Oxbow__TopicSpec spec = OXBOW__TOPIC_SPEC__INIT, *specp = &spec;
	Oxbow__ConfigEntry *ce = NULL, **cep = NULL;
	ProtobufCMessage *msg = NULL;
	int rc;

	if (a == NULL || !name_ok(name) || partitions <= 0 || replicas < 0)
		return -EINVAL;
	rc = config_entries(configs, n, &ce, &cep);
	if (rc < 0)
		goto out;
	spec.name = (char *)name;
	spec.partitions = (uint32_t)partitions;
	spec.replicas = (uint32_t)replicas;
	spec.n_configs = n;
	spec.configs = cep;
	req.n_topics = 1;
	req.topics = &specp;
	rc = ox_client_call_any(&a->cl, OXBOW__API_KEY__CREATE_TOPICS, &req.base,
				&oxbow__create_topics_response__descriptor,
				&msg);
	if (rc == 0) {
		Oxbow__CreateTopicsResponse *r =
			(Oxbow__CreateTopicsResponse *)msg;
		rc = topic_result(a, r->n_topics > 0 ? r->topics[0] : NULL);
		protobuf_c_message_free_unpacked(msg, NULL);
	}
out:
	free(ce);
	free(cep);
	return rc;
}

int ox_admin_topic_delete(struct ox_admin *a, const char *name)
{
	Oxbow__DeleteTopicsRequest req = OXBOW__DELETE_TOPICS_REQUEST__INIT;
	char *names[1] = { (char *)name };
	ProtobufCMessage *msg = NULL;
	int rc;

	if (a == NULL || !name_ok(name))
		return -EINVAL;
	req.n_names = 1;
	req.names = names;
	rc = ox_client_call_any(&a->cl, OXBOW__API_KEY__DELETE_TOPICS, &req.base,
				&oxbow__delete_topics_response__descriptor,
				&msg);
	if (rc == 0) {
		Oxbow__DeleteTopicsResponse *r =
			(Oxbow__DeleteTopicsResponse *)msg;
		rc = topic_result(a, r->n_topics > 0 ? r->topics[0] : NULL);
		protobuf_c_message_free_unpacked(msg, NULL);
	}
	return rc;
}

void ox_topic_infos_free(struct ox_topic_info *infos, size_t n)
{
	if (infos == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		struct ox_topic_info *t = &infos[i];
		for (size_t j = 0; j < t->partition_count; j++) {
			free(t->partitions[j].replicas);
			free(t->partitions[j].in_sync);
		}
		free(t->partitions);
		for (size_t j = 0; j < t->config_count; j++) {
			free((char *)t->configs[j].key);
			free((char *)t->configs[j].value);
		}
		free(t->configs);
		free(t->name);
	}
	free(infos);
}

static int32_t *ints_dup(const int32_t *v, size_t n)
{
	int32_t *d = calloc(n + 1, sizeof(*d));

	if (d != NULL && n > 0)
		memcpy(d, v, n * sizeof(*d));
	return d;
}

static int cmp_partition(const void *x, const void *y)
{
	const struct ox_partition_info *a = x, *b = y;

	return (a->partition > b->partition) - (a->partition < b->partition);
}

static int topic_info_fill(struct ox_topic_info *t,
			   const Oxbow__TopicMetadata *tm)
{
	t->name = strdup(tm->name);
	t->internal = tm->internal;
	t->partitions = calloc(tm->n_partitions + 1, sizeof(*t->partitions));
	if (t->name == NULL || t->partitions == NULL)
		return -ENOMEM;
	for (size_t j = 0; j < tm->n_partitions; j++) {
		const Oxbow__PartitionMetadata *pm = tm->partitions[j];
		struct ox_partition_info *p = &t->partitions[j];
		p->partition = (int32_t)pm->partition;
		p->leader = pm->leader;
		p->replicas = ints_dup(pm->replicas, pm->n_replicas);
		p->replica_count = pm->n_replicas;
		p->in_sync = ints_dup(pm->in_sync, pm->n_in_sync);
		p->in_sync_count = pm->n_in_sync;
		p->start_offset = -1;
		p->end_offset = -1;
		t->partition_count++;
		if (p->replicas == NULL || p->in_sync == NULL)
			return -ENOMEM;
	}
	qsort(t->partitions, t->partition_count, sizeof(*t->partitions),
	      cmp_partition);
	return 0;
}

static int cmp_topic(const void *x, const void *y)
{
	const struct ox_topic_info *a = x, *b = y;

	return strcmp(a->name, b->name);
}

int ox_admin_topic_list(struct ox_admin *a, int include_internal,
			struct ox_topic_info **out, size_t *n_out)
{
	Oxbow__MetadataResponse *md = NULL;
	struct ox_topic_info *infos;
	size_t n = 0;
	int rc;

	if (a == NULL || out == NULL || n_out == NULL)
		return -EINVAL;
	rc = ox_client_metadata(&a->cl, NULL, 0, include_internal != 0, &md);
	if (rc < 0)
		return rc;
	infos = calloc(md->n_topics + 1, sizeof(*infos));
	if (infos == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < md->n_topics; i++) {
		const Oxbow__TopicMetadata *tm = md->topics[i];
		if (tm->error_code != 0 || (tm->internal && !include_internal))
			continue;
		rc = topic_info_fill(&infos[n++], tm);
		if (rc < 0) {
			ox_topic_infos_free(infos, n);
			goto out;
		}
	}
	qsort(infos, n, sizeof(*infos), cmp_topic);
	*out = infos;
	*n_out = n;
out:
	protobuf_c_message_free_unpacked(&md->base, NULL);
	return rc;
}

// One LIST_OFFSETS target to a node; the result in *offset_out.
static int list_offset_node(struct ox_admin *a, int32_t leader,
			    const char *topic, int32_t partition, int64_t spec,
			    int64_t *offset_out)
{
	return ox_client_list_offset(&a->cl, leader, topic, partition, spec,
				     "", offset_out);
}

// The leader of a partition, from fresh metadata.
static int leader_of(struct ox_admin *a, const char *topic, int32_t partition,
		     int32_t *leader)
{
	Oxbow__MetadataResponse *md = NULL;
	const char *names[1] = { topic };
	int rc = ox_client_metadata(&a->cl, names, 1, true, &md);

	if (rc < 0)
		return rc;
	rc = -OX_EUNKNOWN_TOPIC;
	for (size_t i = 0; i < md->n_topics; i++) {
		const Oxbow__TopicMetadata *tm = md->topics[i];
		if (strcmp(tm->name, topic) != 0 || tm->error_code != 0)
			continue;
		for (size_t j = 0; j < tm->n_partitions; j++)
			if ((int32_t)tm->partitions[j]->partition == partition) {
				*leader = tm->partitions[j]->leader;
				rc = 0;
			}
	}
	protobuf_c_message_free_unpacked(&md->base, NULL);
	if (rc < 0)
		ox_client_set_error(&a->cl, "%s[%d]: no such topic or partition",
				    topic, (int)partition);
	return rc;
}

int ox_admin_list_offsets(struct ox_admin *a, const char *topic,
			  int32_t partition, int64_t spec,
			  int64_t *offset_out)
{
	int32_t leader;
	int rc;

	if (a == NULL || !name_ok(topic) || partition < 0 ||
	    offset_out == NULL ||
	    (spec < 0 && spec != OX_OFFSET_BEGINNING && spec != OX_OFFSET_END))
		return -EINVAL;
	rc = leader_of(a, topic, partition, &leader);
	if (rc < 0)
		return rc;
	return list_offset_node(a, leader, topic, partition, spec, offset_out);
}

static int configs_fill(struct ox_admin *a, struct ox_topic_info *t)
{
	Oxbow__DescribeConfigsRequest req = OXBOW__DESCRIBE_CONFIGS_REQUEST__INIT;
	char *names[1] = { t->name };
	ProtobufCMessage *msg = NULL;
	int rc;

	req.n_topics = 1;
	req.topics = names;
	rc = ox_client_call_any(&a->cl, OXBOW__API_KEY__DESCRIBE_CONFIGS,
				&req.base,
				&oxbow__describe_configs_response__descriptor,
				&msg);
	if (rc < 0)
		return rc;
	Oxbow__DescribeConfigsResponse *r = (Oxbow__DescribeConfigsResponse *)msg;
	if (r->n_topics < 1) {
		rc = -OX_ESERVER;
		goto out;
	}
	const Oxbow__TopicConfigs *tc = r->topics[0];
	rc = ox_error_from_wire((int)tc->error_code);
	if (rc < 0) {
		ox_client_set_error(&a->cl, "%s: %s", t->name,
				    tc->error_message[0] != '\0' ?
					    tc->error_message :
					    ox_strerror(rc));
		goto out;
	}
	t->configs = calloc(tc->n_configs + 1, sizeof(*t->configs));
	if (t->configs == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < tc->n_configs; i++) {
		t->configs[i].key = strdup(tc->configs[i]->key);
		t->configs[i].value = strdup(tc->configs[i]->value);
		t->config_count++;
		if (t->configs[i].key == NULL || t->configs[i].value == NULL) {
			rc = -ENOMEM;
			goto out;
		}
	}
out:
	protobuf_c_message_free_unpacked(msg, NULL);
	return rc;
}

int ox_admin_topic_describe(struct ox_admin *a, const char *name,
			    struct ox_topic_info **out)
{
	Oxbow__MetadataResponse *md = NULL;
	const char *names[1] = { name };
	struct ox_topic_info *t;
	int rc;

	if (a == NULL || !name_ok(name) || out == NULL)
		return -EINVAL;
	rc = ox_client_metadata(&a->cl, names, 1, true, &md);
	if (rc < 0)
		return rc;
	t = calloc(1, sizeof(*t));
	rc = t == NULL ? -ENOMEM : -OX_EUNKNOWN_TOPIC;
	for (size_t i = 0; t != NULL && i < md->n_topics; i++)
		if (strcmp(md->topics[i]->name, name) == 0 &&
		    md->topics[i]->error_code == 0)
			rc = topic_info_fill(t, md->topics[i]);
	protobuf_c_message_free_unpacked(&md->base, NULL);
	if (rc == -OX_EUNKNOWN_TOPIC)
		ox_client_set_error(&a->cl, "%s: no such topic", name);
	for (size_t j = 0; rc == 0 && j < t->partition_count; j++) {
		struct ox_partition_info *p = &t->partitions[j];
		if (p->leader < 0)
			continue;
		rc = list_offset_node(a, p->leader, name, p->partition,
				      OX_OFFSET_BEGINNING, &p->start_offset);
		if (rc == 0)
			rc = list_offset_node(a, p->leader, name, p->partition,
					      OX_OFFSET_END, &p->end_offset);
	}
	if (rc == 0)
		rc = configs_fill(a, t);
	if (rc < 0) {
		if (t != NULL)
			ox_topic_infos_free(t, 1);
		return rc;
	}
	*out = t;
	return 0;
}

int ox_admin_config_alter(struct ox_admin *a, const char *topic,
			  const struct ox_config_entry *set, size_t n)
{
	Oxbow__AlterConfigsRequest req = OXBOW__ALTER_CONFIGS_REQUEST__INIT;
	Oxbow__ConfigEntry *ce = NULL, **cep = NULL;
	ProtobufCMessage *msg = NULL;
	int rc;

	if (a == NULL || !name_ok(topic))
		return -EINVAL;
	rc = config_entries(set, n, &ce, &cep);
	if (rc < 0)
		goto out;
	req.topic = (char *)topic;
	req.n_set = n;
	req.set = cep;
	rc = ox_client_call_any(&a->cl, OXBOW__API_KEY__ALTER_CONFIGS, &req.base,
				&oxbow__alter_configs_response__descriptor,
				&msg);
	if (rc == 0) {
		Oxbow__AlterConfigsResponse *r =
			(Oxbow__AlterConfigsResponse *)msg;
		rc = topic_result(a, r->result);
		protobuf_c_message_free_unpacked(msg, NULL);
	}
out:
	free(ce);
	free(cep);
	return rc;
}

// Node ids are >= 0 (-1 stands for none in the protocol), and a list
// names at least one node.
static bool node_ids_ok(const int32_t *ids, size_t n)
{
	if (ids == NULL || n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (ids[i] < 0)
			return false;
	return true;
}

int ox_admin_partition_reassign(struct ox_admin *a, const char *topic,
				int32_t partition, const int32_t *replicas,
				size_t n)
{
	Oxbow__ReassignPartitionRequest req =
		OXBOW__REASSIGN_PARTITION_REQUEST__INIT;
	ProtobufCMessage *msg = NULL;
	int rc;

	if (a == NULL || !name_ok(topic) || partition < 0 ||
	    !node_ids_ok(replicas, n))
		return -EINVAL;
	// Whether the list is distinct, registered and as long as the
	// replication factor is the metadata leader's to judge: it answers
	// INVALID_REQUEST with a message naming what is wrong.
	req.topic = (char *)topic;
	req.partition = partition;
	req.n_replicas = n;
	req.replicas = (int32_t *)replicas;
	rc = ox_client_call_any(&a->cl, OXBOW__API_KEY__REASSIGN_PARTITION,
				&req.base,
				&oxbow__reassign_partition_response__descriptor,
				&msg);
	if (rc == 0) {
		Oxbow__ReassignPartitionResponse *r =
			(Oxbow__ReassignPartitionResponse *)msg;
		rc = topic_result(a, r->result);
		protobuf_c_message_free_unpacked(msg, NULL);
	}
	return rc;
}

void ox_strings_free(char **strings, size_t n)
{
	if (strings == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free(strings[i]);
	free(strings);
}

static int cmp_str(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

// Group names gathered from the nodes' LIST_GROUPS answers.
struct group_names {
	char **v;
	size_t n, cap;
};

static int names_add(struct group_names *g, const Oxbow__ListGroupsResponse *r)
{
	for (size_t i = 0; i < r->n_groups; i++) {
		if (g->n == g->cap) {
			size_t cap = g->cap ? g->cap * 2 : 64;
			char **v = realloc(g->v, (cap + 1) * sizeof(*v));
			if (v == NULL)
				return -ENOMEM;
			g->v = v;
			g->cap = cap;
		}
		g->v[g->n] = strdup(r->groups[i]);
		if (g->v[g->n] == NULL)
			return -ENOMEM;
		g->n++;
	}
	return 0;
}

// LIST_GROUPS of one node (any broker when node is -1) into g.
static int groups_of(struct ox_admin *a, int32_t node, struct group_names *g)
{
	Oxbow__ListGroupsRequest req = OXBOW__LIST_GROUPS_REQUEST__INIT;
	ProtobufCMessage *msg = NULL;
	int rc;

	if (node < 0)
		rc = ox_client_call_any(&a->cl, OXBOW__API_KEY__LIST_GROUPS,
					&req.base,
					&oxbow__list_groups_response__descriptor,
					&msg);
	else
		rc = ox_client_call_node(&a->cl, node,
					 OXBOW__API_KEY__LIST_GROUPS, &req.base,
					 &oxbow__list_groups_response__descriptor,
					 &msg);
	if (rc < 0)
		return rc;
	rc = names_add(g, (Oxbow__ListGroupsResponse *)msg);
	protobuf_c_message_free_unpacked(msg, NULL);
	return rc;
}

// In a cluster each node lists the groups it coordinates, so every node
// of the metadata is asked and the answers merged; a node that does not
// answer is skipped (its groups move to live nodes within an election),
// unless none answers.
static int groups_gather(struct ox_admin *a, struct group_names *g)
{
	const char *names[1] = { "__offsets" };
	Oxbow__MetadataResponse *md = NULL;
	int rc = ox_client_metadata(&a->cl, names, 1, true, &md);
	int answered = 0, last = 0;

	if (rc < 0)
		return rc;
	size_t nb = md->n_brokers;
	int32_t *ids = calloc(nb + 1, sizeof(*ids));
	for (size_t i = 0; ids != NULL && i < nb; i++)
		ids[i] = md->brokers[i]->node_id;
	protobuf_c_message_free_unpacked(&md->base, NULL);
	if (ids == NULL)
		return -ENOMEM;
	if (nb <= 1) { // a node alone serves every group
		free(ids);
		return groups_of(a, -1, g);
	}
	for (size_t i = 0; i < nb; i++) {
		rc = groups_of(a, ids[i], g);
		if (rc == -ENOMEM)
			break;
		if (rc == 0)
			answered++;
		else
			last = rc;
	}
	free(ids);
	if (rc == -ENOMEM)
		return rc;
	return answered > 0 ? 0 : last;
}

int ox_admin_group_list(struct ox_admin *a, char ***out, size_t *n_out)
{
	struct group_names g = {0};
	int rc;

	if (a == NULL || out == NULL || n_out == NULL)
		return -EINVAL;
	rc = groups_gather(a, &g);
	if (rc < 0) {
		ox_strings_free(g.v, g.n);
		return rc;
	}
	if (g.v == NULL && (g.v = calloc(1, sizeof(*g.v))) == NULL)
		return -ENOMEM;
	qsort(g.v, g.n, sizeof(*g.v), cmp_str);
	size_t u = 0;
	for (size_t i = 0; i < g.n; i++) {
		if (u > 0 && strcmp(g.v[u - 1], g.v[i]) == 0) {
			free(g.v[i]);
			continue;
		}
		g.v[u++] = g.v[i];
	}
	*out = g.v;
	*n_out = u;
	return 0;
}

void ox_group_offsets_free(struct ox_group_offset *offsets, size_t n)
{
	if (offsets == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		free(offsets[i].topic);
		free(offsets[i].metadata);
	}
	free(offsets);
}

static int cmp_group_offset(const void *x, const void *y)
{
	const struct ox_group_offset *a = x, *b = y;
	int c = strcmp(a->topic, b->topic);

	if (c != 0)
		return c;
	return (a->partition > b->partition) - (a->partition < b->partition);
}

int ox_admin_group_describe(struct ox_admin *a, const char *group,
			    struct ox_group_offset **out, size_t *n_out)
{
	Oxbow__OffsetFetchRequest req = OXBOW__OFFSET_FETCH_REQUEST__INIT;
	ProtobufCMessage *msg = NULL;
	struct ox_group_offset *v;
	size_t n = 0;
	int rc;

	if (a == NULL || !name_ok(group) || out == NULL || n_out == NULL)
		return -EINVAL;
	req.group = (char *)group;
	rc = ox_client_call_group(&a->cl, group, OXBOW__API_KEY__OFFSET_FETCH,
				  &req.base,
				  &oxbow__offset_fetch_response__descriptor,
				  &msg);
	if (rc < 0)
		return rc;
	Oxbow__OffsetFetchResponse *r = (Oxbow__OffsetFetchResponse *)msg;
	v = calloc(r->n_offsets + 1, sizeof(*v));
	for (size_t i = 0; v != NULL && i < r->n_offsets; i++) {
		const Oxbow__GroupOffset *o = r->offsets[i];
		if (o->error_code != 0 || o->offset < 0)
			continue;
		v[n].topic = strdup(o->topic);
		v[n].metadata = strdup(o->metadata != NULL ? o->metadata : "");
		v[n].partition = (int32_t)o->partition;
		v[n].offset = o->offset;
		n++;
		if (v[n - 1].topic == NULL || v[n - 1].metadata == NULL) {
			ox_group_offsets_free(v, n);
			v = NULL;
		}
	}
	protobuf_c_message_free_unpacked(msg, NULL);
	if (v == NULL)
		return -ENOMEM;
	if (n == 0) {
		free(v);
		ox_client_set_error(&a->cl, "group %s has no committed offsets",
				    group);
		return -OX_ENOTFOUND;
	}
	qsort(v, n, sizeof(*v), cmp_group_offset);
	for (size_t i = 0; i < n; i++) {
		int32_t leader;
		v[i].end_offset = -1;
		v[i].lag = 0;
		if (leader_of(a, v[i].topic, v[i].partition, &leader) < 0 ||
		    list_offset_node(a, leader, v[i].topic, v[i].partition,
				     OX_OFFSET_END, &v[i].end_offset) < 0)
			continue;
		v[i].lag = v[i].end_offset > v[i].offset ?
				   v[i].end_offset - v[i].offset :
				   0;
	}
	*out = v;
	*n_out = n;
	return 0;
}

int ox_admin_group_commit(struct ox_admin *a, const char *group,
			  const struct ox_topic_partition *tps, size_t n)
{
	struct ox_req_offsets r;
	int rc;

	if (a == NULL || !name_ok(group) || tps == NULL || n == 0)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!name_ok(tps[i].topic) || tps[i].partition < 0 ||
		    tps[i].offset < 0)
			return -EINVAL;
	rc = ox_req_offsets_alloc(&r, n);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < n; i++) {
		r.v[i].topic = (char *)tps[i].topic;
		r.v[i].partition = (uint32_t)tps[i].partition;
		r.v[i].offset = tps[i].offset;
	}
	rc = ox_client_commit(&a->cl, group, &r);
	ox_req_offsets_free(&r);
	return rc;
}

void ox_cluster_status_free(struct ox_cluster_status *status)
{
	if (status == NULL)
		return;
	for (size_t i = 0; i < status->node_count; i++) {
		free(status->nodes[i].address);
		free(status->nodes[i].peer_address);
	}
	for (size_t i = 0; i < status->partition_count; i++) {
		free(status->partitions[i].topic);
		free(status->partitions[i].replicas);
		free(status->partitions[i].in_sync);
	}
	free(status->nodes);
	free(status->partitions);
	free(status);
}

// A string field of a response: protobuf-c gives "" for an absent one,
// but a NULL must not reach strdup either way.
static char *str_dup(const char *s)
{
	return strdup(s != NULL ? s : "");
}

static int cmp_node_status(const void *x, const void *y)
{
	const struct ox_node_status *a = x, *b = y;

	return (a->node_id > b->node_id) - (a->node_id < b->node_id);
}

static int cmp_partition_status(const void *x, const void *y)
{
	const struct ox_partition_status *a = x, *b = y;
	int c = strcmp(a->topic, b->topic);

	if (c != 0)
		return c;
	return (a->partition > b->partition) - (a->partition < b->partition);
}

// Copies the nodes of a response into s (counted as they are filled, so
// ox_cluster_status_free frees a partial copy).
static int status_nodes_fill(struct ox_cluster_status *s,
			     const Oxbow__ClusterStatusResponse *r)
{
	s->nodes = calloc(r->n_nodes + 1, sizeof(*s->nodes));
	if (s->nodes == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < r->n_nodes; i++) {
		const Oxbow__NodeStatus *ns = r->nodes[i];
		struct ox_node_status *n = &s->nodes[i];
		n->node_id = ns->node_id;
		n->address = str_dup(ns->address);
		n->peer_address = str_dup(ns->peer_address);
		n->reachable = ns->reachable ? 1 : 0;
		s->node_count++;
		if (n->address == NULL || n->peer_address == NULL)
			return -ENOMEM;
	}
	qsort(s->nodes, s->node_count, sizeof(*s->nodes), cmp_node_status);
	return 0;
}

static int status_partitions_fill(struct ox_cluster_status *s,
				  const Oxbow__ClusterStatusResponse *r)
{
	s->partitions = calloc(r->n_partitions + 1, sizeof(*s->partitions));
	if (s->partitions == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < r->n_partitions; i++) {
		const Oxbow__PartitionStatus *ps = r->partitions[i];
		struct ox_partition_status *p = &s->partitions[i];
		p->topic = str_dup(ps->topic);
		p->partition = ps->partition;
		p->leader = ps->leader >= 0 ? ps->leader : -1;
		p->replicas = ints_dup(ps->replicas, ps->n_replicas);
		p->replica_count = ps->n_replicas;
		p->in_sync = ints_dup(ps->in_sync, ps->n_in_sync);
		p->in_sync_count = ps->n_in_sync;
		p->high_watermark = ps->high_watermark;
		p->moving = ps->moving ? 1 : 0;
		s->partition_count++;
		if (p->topic == NULL || p->replicas == NULL || p->in_sync == NULL)
			return -ENOMEM;
	}
	qsort(s->partitions, s->partition_count, sizeof(*s->partitions),
	      cmp_partition_status);
	return 0;
}

int ox_admin_cluster_status(struct ox_admin *a, struct ox_cluster_status **out)
{
	Oxbow__ClusterStatusRequest req = OXBOW__CLUSTER_STATUS_REQUEST__INIT;
	ProtobufCMessage *msg = NULL;
	struct ox_cluster_status *s;
	int rc;

	if (a == NULL || out == NULL)
		return -EINVAL;
	rc = ox_client_call_any(&a->cl, OXBOW__API_KEY__CLUSTER_STATUS,
				&req.base,
				&oxbow__cluster_status_response__descriptor,
				&msg);
	if (rc < 0)
		return rc;
	OX_ASSERT(msg != NULL);
	const Oxbow__ClusterStatusResponse *r =
		(const Oxbow__ClusterStatusResponse *)msg;
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	s->answering_node = r->answering_node;
	s->meta_leader = r->meta_leader >= 0 ? r->meta_leader : -1;
	s->meta_term = r->meta_term;
	s->rejoining = r->rejoining;
	rc = status_nodes_fill(s, r);
	if (rc == 0)
		rc = status_partitions_fill(s, r);
	if (rc < 0) {
		ox_cluster_status_free(s);
		goto out;
	}
	*out = s;
out:
	if (rc == -ENOMEM)
		ox_client_set_error(&a->cl, "out of memory");
	protobuf_c_message_free_unpacked(msg, NULL);
	return rc;
}
