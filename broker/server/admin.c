// SPDX-License-Identifier: Apache-2.0
//
// Admin and discovery requests: API_VERSIONS, METADATA, CREATE_TOPICS,
// DELETE_TOPICS, DESCRIBE_CONFIGS, ALTER_CONFIGS. On a node alone each
// answers at once; the topic metadata file is rewritten synchronously
// (S5), which blocks the loop for an fsync: admin changes are rare and
// must be durable before they are announced. In a cluster, changes of
// cluster topics are checked here and built into metadata entries, one
// per topic, which meta.c sends to the metadata leader and answers once
// this node applied them.
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "broker/cluster/cluster.h"
#include "broker/server/server_int.h"
#include "broker/slog/slog.h"
#include "proto/assert.h"
#include "proto/error.h"
#include "proto/wire.h"

#define SERVER_VERSION "oxbowd 0.1.0"
#define WHY_MAX 512

static const Oxbow__ApiKey served[] = {
	OXBOW__API_KEY__API_VERSIONS,   OXBOW__API_KEY__METADATA,
	OXBOW__API_KEY__PRODUCE,        OXBOW__API_KEY__FETCH,
	OXBOW__API_KEY__LIST_OFFSETS,   OXBOW__API_KEY__CREATE_TOPICS,
	OXBOW__API_KEY__DELETE_TOPICS,  OXBOW__API_KEY__DESCRIBE_CONFIGS,
	OXBOW__API_KEY__ALTER_CONFIGS,  OXBOW__API_KEY__OFFSET_COMMIT,
	OXBOW__API_KEY__OFFSET_FETCH,   OXBOW__API_KEY__LIST_GROUPS,
	OXBOW__API_KEY__CLUSTER_STATUS, OXBOW__API_KEY__INIT_PRODUCER_ID,
	OXBOW__API_KEY__FIND_COORDINATOR, OXBOW__API_KEY__REASSIGN_PARTITION,
};
#define NSERVED (sizeof(served) / sizeof(served[0]))

static Oxbow__ErrorCode wire(int err)
{
	return (Oxbow__ErrorCode)ox_error_to_wire(err);
}

void ox_srv_api_versions(struct ox_server *srv, struct ox_net_req *req)
{
	Oxbow__ApiVersionsResponse resp = OXBOW__API_VERSIONS_RESPONSE__INIT;
	Oxbow__ApiVersionRange ranges[NSERVED], *ptrs[NSERVED];
	const struct ox_net_req_info *in = ox_net_req_info(req);

	for (size_t i = 0; i < NSERVED; i++) {
		Oxbow__ApiVersionRange r = OXBOW__API_VERSION_RANGE__INIT;
		r.api_key = served[i];
		r.min_version = 1;
		r.max_version = 1;
		ranges[i] = r;
		ptrs[i] = &ranges[i];
	}
	resp.n_apis = NSERVED;
	resp.apis = ptrs;
	resp.node_id = srv->cfg.node_id;
	resp.server_version = (char *)SERVER_VERSION;
	// Any version of API_VERSIONS gets the list, so a newer client can
	// learn what this broker speaks; an unknown one is flagged.
	if (in->api_version != 1) {
		uint8_t buf[1024];
		size_t len = oxbow__api_versions_response__pack(&resp, buf);
		struct ox_net_response r = {
			.error = -OX_EUNSUPPORTED,
			.error_message = "API_VERSIONS is served at version 1",
			.body = buf,
			.body_len = len,
		};
		ox_net_respond(req, &r);
		return;
	}
	ox_srv_respond_msg(req, &resp.base);
}

// ---- METADATA ----

struct md_build {
	Oxbow__TopicMetadata *topics;
	Oxbow__TopicMetadata **tptrs;
	int32_t **ids; // per topic: replica ids of a cluster topic, or NULL
	size_t n;
	int32_t node;
};

// A partition of a cluster topic: its replicas from the assignment; its
// leader as its Raft group here says, or (no replica here) the preferred
// leader, which a client that finds otherwise learns from NOT_LEADER.
static void md_clustered(const struct ox_topic *t, uint32_t i, int32_t *ids,
			 Oxbow__PartitionMetadata *p)
{
	uint32_t rf = t->meta.replicas;

	for (uint32_t k = 0; k < rf; k++)
		ids[k] = (int32_t)t->assignment[(size_t)i * rf + k];
	p->n_replicas = rf;
	p->replicas = ids;
	p->n_in_sync = rf;
	p->in_sync = ids;
	p->leader = ids[0];
	if (t->parts[i] != NULL) {
		uint64_t l = ox_raft_leader(ox_replica_raft(t->parts[i]->rep));

		p->leader = l ? (int32_t)l : -1;
	}
}

static int md_topic(struct md_build *b, struct ox_topic *t, const char *name)
{
	Oxbow__TopicMetadata *tm = &b->topics[b->n];
	Oxbow__TopicMetadata init = OXBOW__TOPIC_METADATA__INIT;

	*tm = init;
	b->tptrs[b->n++] = tm;
	tm->name = (char *)name;
	if (!t) {
		tm->error_code = OXBOW__ERROR_CODE__UNKNOWN_TOPIC;
		return 0;
	}
	tm->internal = t->internal;
	uint32_t n = t->meta.partitions;
	Oxbow__PartitionMetadata *pm = calloc(n, sizeof(*pm));
	Oxbow__PartitionMetadata **pp = calloc(n, sizeof(*pp));
	if (!pm || !pp) {
		free(pm);
		free(pp);
		return -ENOMEM;
	}
	if (t->assignment != NULL) {
		b->ids[b->n - 1] = calloc((size_t)n * t->meta.replicas + 1,
					  sizeof(int32_t));
		if (b->ids[b->n - 1] == NULL) {
			free(pm);
			free(pp);
			return -ENOMEM;
		}
	}
	for (uint32_t i = 0; i < n; i++) {
		Oxbow__PartitionMetadata p = OXBOW__PARTITION_METADATA__INIT;
		p.partition = i;
		p.leader = b->node;
		p.n_replicas = 1;
		p.replicas = &b->node;
		p.n_in_sync = 1;
		p.in_sync = &b->node;
		if (t->assignment != NULL)
			md_clustered(t, i, b->ids[b->n - 1] +
					   (size_t)i * t->meta.replicas, &p);
		pm[i] = p;
		pp[i] = &pm[i];
	}
	tm->n_partitions = n;
	tm->partitions = pp;
	return 0;
}

static void md_free(struct md_build *b)
{
	for (size_t i = 0; i < b->n; i++) {
		if (b->topics[i].n_partitions)
			free(b->topics[i].partitions[0]);
		free(b->topics[i].partitions);
		if (b->ids)
			free(b->ids[i]);
	}
	free(b->topics);
	free(b->tptrs);
	free(b->ids);
}

// The brokers of a cluster: its node table (hosts split from the client
// addresses nodes announced), and the metadata leader as controller.
static int md_brokers(struct ox_server *srv, Oxbow__MetadataResponse *resp,
		      Oxbow__BrokerInfo **brokers, Oxbow__BrokerInfo ***bptrs,
		      char (**hosts)[OX_CONFIG_ADDR_MAX])
{
	uint32_t n = ox_meta_nodes_n(srv);
	uint64_t term;
	int64_t leader = ox_meta_leader(srv, &term);
	size_t k = 0;

	resp->controller_id = (int32_t)leader;
	if (n == 0)
		return 0; // this node alone until the leader registered it
	*brokers = calloc(n, sizeof(**brokers));
	*bptrs = calloc(n, sizeof(**bptrs));
	*hosts = calloc(n, sizeof(**hosts));
	if (!*brokers || !*bptrs || !*hosts)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		Oxbow__BrokerInfo init = OXBOW__BROKER_INFO__INIT;
		const char *client, *peer;
		uint64_t id;
		uint16_t port;
		bool reachable;

		if (ox_meta_node_at(srv, i, &id, &client, &peer, &reachable) <
			    0 ||
		    ox_config_addr_parse(client, (*hosts)[k],
					 sizeof((*hosts)[k]), &port) < 0)
			continue;
		(*brokers)[k] = init;
		(*brokers)[k].node_id = (int32_t)id;
		(*brokers)[k].host = (*hosts)[k];
		(*brokers)[k].port = port;
		(*bptrs)[k] = &(*brokers)[k];
		k++;
	}
	resp->n_brokers = k;
	resp->brokers = *bptrs;
	return 0;
}

void ox_srv_metadata(struct ox_server *srv, struct ox_net_req *req)
{
	Oxbow__MetadataRequest *m = ox_srv_body_unpack(
		req, &oxbow__metadata_request__descriptor, "METADATA");
	Oxbow__MetadataResponse resp = OXBOW__METADATA_RESPONSE__INIT;
	Oxbow__BrokerInfo broker = OXBOW__BROKER_INFO__INIT, *bp = &broker;
	Oxbow__BrokerInfo *brokers = NULL, **bptrs = NULL;
	char (*hosts)[OX_CONFIG_ADDR_MAX] = NULL;
	struct md_build b = {.node = srv->cfg.node_id};
	int rc = 0;

	if (!m)
		return; // rejected
	size_t cap = m->n_topics ? m->n_topics : srv->ntopics;
	b.topics = calloc(cap + 1, sizeof(*b.topics));
	b.tptrs = calloc(cap + 1, sizeof(*b.tptrs));
	b.ids = calloc(cap + 1, sizeof(*b.ids));
	if (!b.topics || !b.tptrs || !b.ids) {
		rc = -ENOMEM;
		goto out;
	}
	if (m->n_topics) {
		for (size_t i = 0; i < m->n_topics && rc == 0; i++)
			rc = md_topic(&b, ox_srv_topic_find(srv, m->topics[i]),
				      m->topics[i]);
	} else {
		for (size_t s = 0; s < OX_TOPIC_SLOTS && rc == 0; s++)
			for (struct ox_topic *t = srv->topics[s]; t && rc == 0;
			     t = t->next)
				if (!t->internal || m->include_internal)
					rc = md_topic(&b, t, t->meta.name);
	}
	if (rc < 0)
		goto out;
	broker.node_id = srv->cfg.node_id;
	broker.host = srv->adv_host;
	broker.port = srv->adv_port;
	resp.n_brokers = 1;
	resp.brokers = &bp;
	resp.controller_id = srv->cfg.node_id;
	if (srv->meta) {
		rc = md_brokers(srv, &resp, &brokers, &bptrs, &hosts);
		if (rc < 0)
			goto out;
	}
	resp.n_topics = b.n;
	resp.topics = b.tptrs;
	ox_srv_respond_msg(req, &resp.base);
out:
	if (rc < 0)
		ox_srv_respond_error(req, rc, "out of memory");
	md_free(&b);
	free(brokers);
	free(bptrs);
	free(hosts);
	oxbow__metadata_request__free_unpacked(m, NULL);
}

// ---- CREATE_TOPICS ----

static int create_check(struct ox_server *srv, const Oxbow__TopicSpec *spec,
			struct ox_topic_meta *m, char *why, size_t why_len)
{
	size_t len = strlen(spec->name);

	memset(m, 0, sizeof(*m));
	if (ox_topic_name_check(spec->name, len) < 0) {
		snprintf(why, why_len, "a topic name is 1 to %u characters of "
			 "A-Z a-z 0-9 . _ -, and not . or ..", OX_TOPIC_NAME_MAX);
		return -OX_EINVALID_REQUEST;
	}
	if (ox_topic_name_reserved(spec->name)) {
		snprintf(why, why_len, "names starting with __ are reserved "
			 "for internal topics");
		return -OX_EINVALID_REQUEST;
	}
	if (ox_srv_topic_find(srv, spec->name)) {
		snprintf(why, why_len, "topic %s already exists", spec->name);
		return -OX_ETOPIC_EXISTS;
	}
	strcpy(m->name, spec->name);
	m->partitions = spec->partitions ? spec->partitions
					 : srv->cfg.num_partitions;
	m->replicas = spec->replicas ? spec->replicas
				     : srv->cfg.default_replication_factor;
	for (size_t i = 0; i < spec->n_configs; i++) {
		const Oxbow__ConfigEntry *e = spec->configs[i];
		if (strcmp(e->key, "partitions") == 0) {
			char *end;
			unsigned long v = strtoul(e->value, &end, 10);
			if (*e->value == '\0' || *end || e->value[0] == '-' ||
			    (spec->partitions && v != spec->partitions)) {
				snprintf(why, why_len, "config partitions '%s' "
					 "is not a count agreeing with the "
					 "topic's", e->value);
				return -OX_EINVALID_CONFIG;
			}
			m->partitions = v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
			continue;
		}
		int rc = ox_topic_config_set(&m->cfg, e->key, e->value, why,
					     why_len);
		if (rc < 0)
			return rc;
	}
	if (m->partitions < 1 || m->partitions > OX_TOPIC_PARTITIONS_MAX) {
		snprintf(why, why_len, "partitions must be 1 to %u, not %u",
			 OX_TOPIC_PARTITIONS_MAX, m->partitions);
		return -OX_EINVALID_REQUEST;
	}
	// A cluster of several nodes places replicas among its nodes (its
	// metadata group refuses what does not fit).
	if (m->replicas > 1 && !srv->meta) {
		snprintf(why, why_len, "replication factor %u needs %u nodes "
			 "and this cluster has 1", m->replicas, m->replicas);
		return -OX_EREPLICAS;
	}
	if (srv->npartitions + m->partitions > OX_NODE_PARTITIONS_MAX) {
		snprintf(why, why_len, "this node holds at most %u partitions "
			 "and has %u", OX_NODE_PARTITIONS_MAX, srv->npartitions);
		return -OX_EINVALID_REQUEST;
	}
	return 0;
}

static int create_one(struct ox_server *srv, const Oxbow__TopicSpec *spec,
		      char *why, size_t why_len)
{
	struct ox_topic_meta m;
	struct ox_topic *t;

	int rc = create_check(srv, spec, &m, why, why_len);
	if (rc < 0)
		return rc;
	m.id = srv->next_topic_id++;
	rc = ox_srv_topic_open(srv, &m, &t);
	if (rc < 0) {
		snprintf(why, why_len, "cannot create the partition logs: %s",
			 ox_strerror(rc));
		return rc == -ENOSPC || rc == -EIO ? rc : -OX_ESTORAGE;
	}
	ox_srv_topic_insert(srv, t);
	rc = ox_srv_meta_save(srv);
	if (rc < 0) {
		ox_srv_topic_unlink(srv, t);
		ox_srv_topic_close(t, true, srv->cfg.data_dir);
		snprintf(why, why_len, "cannot write the topic metadata: %s",
			 ox_strerror(rc));
		return -OX_ESTORAGE;
	}
	ox_slog(OX_SLOG_INFO, "topic created name=%s partitions=%u id=%" PRIu64,
		m.name, m.partitions, m.id);
	return 0;
}

static void respond_results(struct ox_net_req *req, Oxbow__TopicResult *res,
			    size_t n, bool create)
{
	Oxbow__TopicResult **ptrs = calloc(n + 1, sizeof(*ptrs));
	if (!ptrs) {
		ox_srv_respond_error(req, -ENOMEM, "out of memory");
		return;
	}
	for (size_t i = 0; i < n; i++)
		ptrs[i] = &res[i];
	if (create) {
		Oxbow__CreateTopicsResponse r = OXBOW__CREATE_TOPICS_RESPONSE__INIT;
		r.n_topics = n;
		r.topics = ptrs;
		ox_srv_respond_msg(req, &r.base);
	} else {
		Oxbow__DeleteTopicsResponse r = OXBOW__DELETE_TOPICS_RESPONSE__INIT;
		r.n_topics = n;
		r.topics = ptrs;
		ox_srv_respond_msg(req, &r.base);
	}
	free(ptrs);
}

// Results with their messages, freed together.
struct results {
	Oxbow__TopicResult *r;
	char (*why)[WHY_MAX];
};

static int results_alloc(struct results *rs, size_t n)
{
	rs->r = calloc(n + 1, sizeof(*rs->r));
	rs->why = calloc(n + 1, sizeof(*rs->why));
	return rs->r && rs->why ? 0 : -ENOMEM;
}

static void results_set(struct results *rs, size_t i, const char *name,
			int rc)
{
	Oxbow__TopicResult init = OXBOW__TOPIC_RESULT__INIT;
	rs->r[i] = init;
	rs->r[i].name = (char *)name;
	rs->r[i].error_code = wire(rc);
	rs->r[i].error_message = rc < 0 ? rs->why[i] : (char *)"";
}

static void results_free(struct results *rs)
{
	free(rs->r);
	free(rs->why);
}

// The CreateTopic entry of a topic that passed create_check: its
// replicas placed among the registered nodes. 0, or the answer with why.
static int create_entry(struct ox_server *srv, const struct ox_topic_meta *tm,
			const Oxbow__TopicSpec *spec,
			struct ox_meta_change *c)
{
	struct ox_cluster_kv kv[OX_CLUSTER_CONFIGS_MAX];
	struct ox_cluster_topic_spec cs = {
		.name = tm->name,
		.partitions = tm->partitions,
		.replication_factor = tm->replicas ? tm->replicas : 1,
		.configs = kv,
	};
	uint64_t *assignment;
	int rc;

	for (size_t i = 0; i < spec->n_configs; i++) {
		if (strcmp(spec->configs[i]->key, "partitions") == 0)
			continue;
		if (cs.configs_n == OX_CLUSTER_CONFIGS_MAX) {
			snprintf(c->why, sizeof(c->why), "at most %u config "
				 "overrides", OX_CLUSTER_CONFIGS_MAX);
			return -OX_EINVALID_CONFIG;
		}
		kv[cs.configs_n++] = (struct ox_cluster_kv){
			spec->configs[i]->key, spec->configs[i]->value };
	}
	assignment = calloc((size_t)cs.partitions * cs.replication_factor,
			    sizeof(*assignment));
	if (assignment == NULL)
		return -ENOMEM;
	cs.assignment = assignment;
	rc = ox_cluster_place(ox_meta_state(srv), NULL, 0, cs.partitions,
			      cs.replication_factor, assignment);
	if (rc < 0) {
		snprintf(c->why, sizeof(c->why), "%u replicas per partition do "
			 "not fit the cluster's %u registered nodes (1, 3 or 5, "
			 "at most one per node)", cs.replication_factor,
			 ox_cluster_nodes_n(ox_meta_state(srv)));
		rc = rc == -OX_ETOOBIG ? rc : -OX_EREPLICAS;
	}
	if (rc == 0) {
		rc = ox_cluster_entry_create_topic(&cs, &c->entry, &c->len);
		if (rc < 0)
			snprintf(c->why, sizeof(c->why), "the topic does not "
				 "fit a metadata entry");
	}
	free(assignment);
	return rc == -EINVAL ? -OX_EINVALID_REQUEST : rc;
}

// A cluster creates topics through its metadata group: one entry each,
// answered when this node applied them all.
static void create_clustered(struct ox_server *srv, struct ox_net_req *req,
			     Oxbow__CreateTopicsRequest *m)
{
	struct ox_meta_change *ch;

	if (m->n_topics < 1 || m->n_topics > OX_META_ADMIN_ITEMS_MAX) {
		ox_srv_respond_error(req, -OX_EINVALID_REQUEST, "a cluster "
				     "creates 1 to 64 topics per request");
		oxbow__create_topics_request__free_unpacked(m, NULL);
		return;
	}
	ch = calloc(m->n_topics, sizeof(*ch));
	if (ch == NULL) {
		ox_srv_respond_error(req, -ENOMEM, "out of memory");
		oxbow__create_topics_request__free_unpacked(m, NULL);
		return;
	}
	for (size_t i = 0; i < m->n_topics; i++) {
		struct ox_topic_meta tm;

		ch[i].name = m->topics[i]->name;
		ch[i].err = create_check(srv, m->topics[i], &tm, ch[i].why,
					 sizeof(ch[i].why));
		if (ch[i].err == 0)
			ch[i].err = create_entry(srv, &tm, m->topics[i],
						 &ch[i]);
	}
	ox_meta_admin(srv, req, OX_META_CREATE, &m->base, ch,
		      (uint32_t)m->n_topics);
	free(ch);
}

void ox_srv_create_topics(struct ox_server *srv, struct ox_net_req *req)
{
	Oxbow__CreateTopicsRequest *m = ox_srv_body_unpack(
		req, &oxbow__create_topics_request__descriptor, "CREATE_TOPICS");
	struct results rs;

	if (!m)
		return; // rejected
	if (srv->meta) {
		create_clustered(srv, req, m);
		return;
	}
	if (results_alloc(&rs, m->n_topics) < 0) {
		ox_srv_respond_error(req, -ENOMEM, "out of memory");
	} else {
		for (size_t i = 0; i < m->n_topics; i++) {
			int rc = create_one(srv, m->topics[i], rs.why[i],
					    WHY_MAX);
			results_set(&rs, i, m->topics[i]->name, rc);
		}
		respond_results(req, rs.r, m->n_topics, true);
	}
	results_free(&rs);
	oxbow__create_topics_request__free_unpacked(m, NULL);
}

// ---- DELETE_TOPICS ----

static int delete_one(struct ox_server *srv, const char *name, char *why,
		      size_t why_len)
{
	struct ox_topic *t = ox_srv_topic_find(srv, name);

	if (!t) {
		snprintf(why, why_len, "no topic named %s", name);
		return -OX_EUNKNOWN_TOPIC;
	}
	if (t->internal) {
		snprintf(why, why_len, "internal topic %s cannot be deleted",
			 name);
		return -OX_EINVALID_REQUEST;
	}
	// A cluster topic is deleted by its metadata group, on every node.
	OX_ASSERT(t->assignment == NULL);
	ox_srv_topic_unlink(srv, t);
	int rc = ox_srv_meta_save(srv);
	if (rc < 0) {
		ox_srv_topic_insert(srv, t);
		snprintf(why, why_len, "cannot write the topic metadata: %s",
			 ox_strerror(rc));
		return -OX_ESTORAGE;
	}
	// S5: the file no longer names it; now take it out of service.
	ox_srv_offsets_drop_topic(srv, t->meta.name);
	ox_slog(OX_SLOG_INFO, "topic deleted name=%s id=%" PRIu64, name,
		t->meta.id);
	ox_srv_topic_doom(srv, t);
	return 0;
}

// In a cluster: a cluster topic is one DeleteTopic entry (naming its id,
// so a topic created again under the name is not the one deleted); a
// topic of this node alone goes as on a single node.
static void delete_clustered(struct ox_server *srv, struct ox_net_req *req,
			     Oxbow__DeleteTopicsRequest *m)
{
	struct ox_meta_change *ch;

	if (m->n_names < 1 || m->n_names > OX_META_ADMIN_ITEMS_MAX) {
		ox_srv_respond_error(req, -OX_EINVALID_REQUEST, "a cluster "
				     "deletes 1 to 64 topics per request");
		oxbow__delete_topics_request__free_unpacked(m, NULL);
		return;
	}
	ch = calloc(m->n_names, sizeof(*ch));
	if (ch == NULL) {
		ox_srv_respond_error(req, -ENOMEM, "out of memory");
		oxbow__delete_topics_request__free_unpacked(m, NULL);
		return;
	}
	for (size_t i = 0; i < m->n_names; i++) {
		struct ox_topic *t = ox_srv_topic_find(srv, m->names[i]);

		ch[i].name = m->names[i];
		if (t == NULL || t->internal || t->assignment == NULL) {
			ch[i].err = delete_one(srv, m->names[i], ch[i].why,
					       sizeof(ch[i].why));
			continue;
		}
		ch[i].err = ox_cluster_entry_delete_topic(
			m->names[i], t->meta.id - OX_CLUSTER_TOPIC_ID_BASE,
			&ch[i].entry, &ch[i].len);
		if (ch[i].err < 0)
			snprintf(ch[i].why, sizeof(ch[i].why), "cannot build "
				 "the metadata entry: %s",
				 ox_strerror(ch[i].err));
	}
	ox_meta_admin(srv, req, OX_META_DELETE, &m->base, ch,
		      (uint32_t)m->n_names);
	free(ch);
}

void ox_srv_delete_topics(struct ox_server *srv, struct ox_net_req *req)
{
	Oxbow__DeleteTopicsRequest *m = ox_srv_body_unpack(
		req, &oxbow__delete_topics_request__descriptor, "DELETE_TOPICS");
	struct results rs;

	if (!m)
		return; // rejected
	if (srv->meta) {
		delete_clustered(srv, req, m);
		return;
	}
	if (results_alloc(&rs, m->n_names) < 0) {
		ox_srv_respond_error(req, -ENOMEM, "out of memory");
	} else {
		for (size_t i = 0; i < m->n_names; i++) {
			int rc = delete_one(srv, m->names[i], rs.why[i],
					    WHY_MAX);
			results_set(&rs, i, m->names[i], rc);
		}
		respond_results(req, rs.r, m->n_names, false);
	}
	results_free(&rs);
	oxbow__delete_topics_request__free_unpacked(m, NULL);
}

// ---- DESCRIBE_CONFIGS / ALTER_CONFIGS ----

// Every key, sorted: the topic keys with "partitions" in its place.
#define DESCRIBED (OX_TK_COUNT + 1)

struct described {
	Oxbow__ConfigEntry e[DESCRIBED];
	Oxbow__ConfigEntry *p[DESCRIBED];
	char v[DESCRIBED][OX_TOPIC_VALUE_MAX];
};

static void describe(struct ox_server *srv, const struct ox_topic *t,
		     struct described *d)
{
	size_t n = 0;

	for (unsigned i = 0; i < OX_TK_COUNT; i++) {
		const char *key = ox_topic_key_name(i);
		Oxbow__ConfigEntry init = OXBOW__CONFIG_ENTRY__INIT;
		if (n == (size_t)i && strcmp(key, "partitions") > 0) {
			d->e[n] = init;
			d->e[n].key = (char *)"partitions";
			snprintf(d->v[n], OX_TOPIC_VALUE_MAX, "%u",
				 t->meta.partitions);
			d->e[n].value = d->v[n];
			n++;
		}
		d->e[n] = init;
		d->e[n].key = (char *)key;
		ox_topic_config_value(&t->meta.cfg, &srv->cfg, i, d->v[n],
				      OX_TOPIC_VALUE_MAX);
		d->e[n].value = d->v[n];
		n++;
	}
	OX_ASSERT(n == DESCRIBED);
	for (size_t i = 0; i < DESCRIBED; i++)
		d->p[i] = &d->e[i];
}

void ox_srv_describe_configs(struct ox_server *srv, struct ox_net_req *req)
{
	Oxbow__DescribeConfigsRequest *m = ox_srv_body_unpack(
		req, &oxbow__describe_configs_request__descriptor, "DESCRIBE_CONFIGS");
	Oxbow__DescribeConfigsResponse resp = OXBOW__DESCRIBE_CONFIGS_RESPONSE__INIT;

	if (!m)
		return; // rejected
	size_t n = m->n_topics;
	Oxbow__TopicConfigs *tc = calloc(n + 1, sizeof(*tc));
	Oxbow__TopicConfigs **tp = calloc(n + 1, sizeof(*tp));
	struct described *d = calloc(n + 1, sizeof(*d));
	if (!tc || !tp || !d) {
		ox_srv_respond_error(req, -ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		Oxbow__TopicConfigs init = OXBOW__TOPIC_CONFIGS__INIT;
		struct ox_topic *t = ox_srv_topic_find(srv, m->topics[i]);
		tc[i] = init;
		tp[i] = &tc[i];
		tc[i].name = m->topics[i];
		if (!t) {
			tc[i].error_code = OXBOW__ERROR_CODE__UNKNOWN_TOPIC;
			tc[i].error_message = (char *)"no such topic";
			continue;
		}
		describe(srv, t, &d[i]);
		tc[i].n_configs = DESCRIBED;
		tc[i].configs = d[i].p;
	}
	resp.n_topics = n;
	resp.topics = tp;
	ox_srv_respond_msg(req, &resp.base);
out:
	free(tc);
	free(tp);
	free(d);
	oxbow__describe_configs_request__free_unpacked(m, NULL);
}

static int parse_partitions(const char *v, uint32_t cur, uint32_t *out,
			    char *why, size_t why_len)
{
	char *end;

	errno = 0;
	unsigned long x = strtoul(v, &end, 10);
	if (*v == '\0' || *v == '-' || *end || errno ||
	    x > OX_TOPIC_PARTITIONS_MAX || x < cur) {
		snprintf(why, why_len, "partitions '%s' must be a count from "
			 "%u (the current one: it can only grow) to %u", v, cur,
			 OX_TOPIC_PARTITIONS_MAX);
		return -OX_EINVALID_CONFIG;
	}
	*out = (uint32_t)x;
	return 0;
}

// Checks and applies the whole request to copies (all or nothing).
static int alter_check(struct ox_server *srv, const struct ox_topic *t,
		       const Oxbow__AlterConfigsRequest *m,
		       struct ox_topic_config *cfg, uint32_t *parts, char *why,
		       size_t why_len)
{
	*cfg = t->meta.cfg;
	*parts = t->meta.partitions;
	for (size_t i = 0; i < m->n_set; i++) {
		const Oxbow__ConfigEntry *e = m->set[i];
		int rc;
		if (strcmp(e->key, "partitions") == 0)
			rc = parse_partitions(e->value, t->meta.partitions,
					      parts, why, why_len);
		else if (strcmp(e->key, "replicas") == 0) {
			snprintf(why, why_len, "replicas cannot change here");
			rc = -OX_EINVALID_CONFIG;
		} else
			rc = ox_topic_config_set(cfg, e->key, e->value, why,
						 why_len);
		if (rc < 0)
			return rc;
	}
	for (size_t i = 0; i < m->n_reset; i++) {
		if (strcmp(m->reset[i], "partitions") == 0) {
			snprintf(why, why_len, "partitions has no default to "
				 "return to");
			return -OX_EINVALID_CONFIG;
		}
		int rc = ox_topic_config_reset(cfg, m->reset[i], why, why_len);
		if (rc < 0)
			return rc;
	}
	if (srv->npartitions + (*parts - t->meta.partitions) >
	    OX_NODE_PARTITIONS_MAX) {
		snprintf(why, why_len, "this node holds at most %u partitions",
			 OX_NODE_PARTITIONS_MAX);
		return -OX_EINVALID_CONFIG;
	}
	return 0;
}

static int alter_apply(struct ox_server *srv, struct ox_topic *t,
		       const struct ox_topic_config *cfg, uint32_t parts,
		       char *why, size_t why_len)
{
	struct ox_topic_config old_cfg = t->meta.cfg;
	uint32_t old = t->meta.partitions;
	struct ox_log_config lc;

	t->meta.cfg = *cfg;
	int rc = ox_srv_partitions_grow(srv, t, parts);
	if (rc == 0) {
		t->meta.partitions = parts;
		srv->npartitions += parts - old;
		rc = ox_srv_meta_save(srv);
		if (rc < 0) {
			// Roll back: the new logs are fresh, closing them
			// does not run the loop.
			ox_srv_partitions_drop_fresh(srv, t, old, parts);
			t->meta.partitions = old;
			srv->npartitions -= parts - old;
		}
	}
	if (rc < 0) {
		t->meta.cfg = old_cfg;
		snprintf(why, why_len, "cannot apply the change: %s",
			 ox_strerror(rc));
		return -OX_ESTORAGE;
	}
	ox_topic_log_config(cfg, &srv->cfg, &lc);
	for (uint32_t i = 0; i < t->meta.partitions; i++) {
		if (t->parts[i] == NULL)
			continue;
		rc = ox_log_set_config(t->parts[i]->log, &lc);
		OX_ASSERT(rc == 0); // the values were checked; policy is fixed
	}
	return 0;
}

// The entry of a checked ALTER_CONFIGS of a cluster topic: more
// partitions (alone: one entry must hold the whole change) or the set
// and reset keys as text. 0, or the answer with why.
static int alter_entry(struct ox_server *srv, const struct ox_topic *t,
		       const Oxbow__AlterConfigsRequest *m, uint32_t parts,
		       struct ox_meta_change *c)
{
	struct ox_cluster_kv kv[OX_CLUSTER_CONFIGS_MAX];
	const char *reset[OX_CLUSTER_CONFIGS_MAX];
	uint32_t set_n = 0, added = parts - t->meta.partitions;
	int rc;

	if (m->n_set > OX_CLUSTER_CONFIGS_MAX + 1 ||
	    m->n_reset > OX_CLUSTER_CONFIGS_MAX) {
		snprintf(c->why, sizeof(c->why), "at most %u keys at once",
			 OX_CLUSTER_CONFIGS_MAX);
		return -OX_EINVALID_CONFIG;
	}
	for (size_t i = 0; i < m->n_set; i++)
		if (strcmp(m->set[i]->key, "partitions") != 0)
			kv[set_n++] = (struct ox_cluster_kv){ m->set[i]->key,
							      m->set[i]->value };
	if (set_n > OX_CLUSTER_CONFIGS_MAX) {
		snprintf(c->why, sizeof(c->why), "at most %u keys at once",
			 OX_CLUSTER_CONFIGS_MAX);
		return -OX_EINVALID_CONFIG;
	}
	if (added > 0 && (set_n > 0 || m->n_reset > 0)) {
		snprintf(c->why, sizeof(c->why), "a cluster topic changes its "
			 "partitions alone: set partitions in a request of its "
			 "own");
		return -OX_EINVALID_REQUEST;
	}
	if (added == 0) {
		for (size_t i = 0; i < m->n_reset; i++)
			reset[i] = m->reset[i];
		rc = ox_cluster_entry_alter_configs(t->meta.name, kv, set_n,
						    reset, (uint32_t)m->n_reset,
						    &c->entry, &c->len);
	} else {
		uint64_t *as = calloc((size_t)added * t->meta.replicas,
				      sizeof(*as));

		if (as == NULL)
			return -ENOMEM;
		rc = ox_cluster_place(ox_meta_state(srv), NULL, 0, added,
				      t->meta.replicas, as);
		if (rc < 0) {
			snprintf(c->why, sizeof(c->why), "%u more partitions do "
				 "not fit the cluster's nodes", added);
			free(as);
			return rc == -OX_ETOOBIG ? rc : -OX_EREPLICAS;
		}
		rc = ox_cluster_entry_add_partitions(t->meta.name, added,
						     t->meta.replicas, as,
						     &c->entry, &c->len);
		free(as);
	}
	if (rc < 0)
		snprintf(c->why, sizeof(c->why), "the change does not fit a "
			 "metadata entry");
	return rc == -EINVAL ? -OX_EINVALID_CONFIG : rc;
}

// ALTER_CONFIGS of a cluster topic: checked with the single-node rules,
// then one entry through the metadata group.
static void alter_clustered(struct ox_server *srv, struct ox_net_req *req,
			    Oxbow__AlterConfigsRequest *m, struct ox_topic *t)
{
	struct ox_meta_change ch;
	struct ox_topic_config cfg;
	uint32_t parts;

	memset(&ch, 0, sizeof(ch));
	ch.name = m->topic;
	ch.err = alter_check(srv, t, m, &cfg, &parts, ch.why, sizeof(ch.why));
	if (ch.err == 0)
		ch.err = alter_entry(srv, t, m, parts, &ch);
	ox_meta_admin(srv, req, OX_META_ALTER, &m->base, &ch, 1);
}

void ox_srv_alter_configs(struct ox_server *srv, struct ox_net_req *req)
{
	Oxbow__AlterConfigsRequest *m = ox_srv_body_unpack(
		req, &oxbow__alter_configs_request__descriptor, "ALTER_CONFIGS");
	Oxbow__AlterConfigsResponse resp = OXBOW__ALTER_CONFIGS_RESPONSE__INIT;
	Oxbow__TopicResult result = OXBOW__TOPIC_RESULT__INIT;
	struct ox_topic_config cfg;
	char why[WHY_MAX] = "";
	uint32_t parts;
	int rc;

	if (!m)
		return; // rejected
	struct ox_topic *t = ox_srv_topic_find(srv, m->topic);
	if (t != NULL && t->assignment != NULL) {
		alter_clustered(srv, req, m, t);
		return;
	}
	if (!t) {
		snprintf(why, sizeof(why), "no topic named %s", m->topic);
		rc = -OX_EUNKNOWN_TOPIC;
	} else if (t->internal) {
		snprintf(why, sizeof(why), "internal topic %s cannot be altered",
			 m->topic);
		rc = -OX_EINVALID_REQUEST;
	} else {
		rc = alter_check(srv, t, m, &cfg, &parts, why, sizeof(why));
		if (rc == 0)
			rc = alter_apply(srv, t, &cfg, parts, why, sizeof(why));
		if (rc == 0)
			ox_slog(OX_SLOG_INFO, "topic altered name=%s "
				"partitions=%u", m->topic, parts);
	}
	result.name = m->topic;
	result.error_code = wire(rc);
	result.error_message = why;
	resp.result = &result;
	ox_srv_respond_msg(req, &resp.base);
	oxbow__alter_configs_request__free_unpacked(m, NULL);
}
