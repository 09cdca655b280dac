// SPDX-License-Identifier: Apache-2.0
//
// The synchronous request layer under the admin handle, the consumer and
// the producer's metadata lookups: one connection to a bootstrap broker
// (each tried in turn until one answers), one connection per node learned
// from metadata (for requests that must reach a partition's leader), and
// the broker's error message of the last failed call. It does no retries
// of its own beyond walking the bootstrap list, except for the requests
// of a consumer group: those go to the group's coordinator
// (FIND_COORDINATOR), found again and retried within request.timeout.ms
// when it moves (ox_client_call_group).
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client/client_int.h"
#include "proto/assert.h"
#include "proto/wire.h"

static void sleep_ms(int64_t ms);

int ox_client_init(struct ox_client *cl, const struct ox_conf *conf)
{
	memset(cl, 0, sizeof(*cl));
	cl->conf = *conf;
	OX_ASSERT(cl->conf.boot_n > 0);
	ox_conn_init(&cl->boot, &cl->conf.boot[0], cl->conf.client_id);
	return 0;
}

void ox_client_deinit(struct ox_client *cl)
{
	ox_conn_deinit(&cl->boot);
	if (cl->coord.conn_init)
		ox_conn_deinit(&cl->coord.conn);
	cl->coord.conn_init = false;
	cl->coord.known = false;
	for (size_t i = 0; i < cl->nodes_n; i++)
		ox_conn_deinit(&cl->nodes[i].conn);
	free(cl->nodes);
	cl->nodes = NULL;
	cl->nodes_n = 0;
}

void ox_client_set_error(struct ox_client *cl, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cl->last_error, sizeof(cl->last_error), fmt, ap);
	va_end(ap);
}

// Turns a response into its unpacked body, keeping the broker's message.
static int finish(struct ox_client *cl, struct ox_resp *r,
		  const ProtobufCMessageDescriptor *desc,
		  ProtobufCMessage **msg)
{
	int rc = r->err;

	if (rc < 0) {
		ox_client_set_error(cl, "%s", r->errmsg[0] != '\0' ?
						      r->errmsg :
						      ox_strerror(rc));
		ox_resp_free(r);
		return rc;
	}
	*msg = protobuf_c_message_unpack(desc, NULL, r->body_len, r->body);
	ox_resp_free(r);
	if (*msg == NULL) {
		ox_client_set_error(cl, "the broker sent a response body that "
					"does not parse");
		return -OX_ECORRUPT;
	}
	return 0;
}

int ox_client_call_any(struct ox_client *cl, uint32_t api_key,
		       const ProtobufCMessage *body,
		       const ProtobufCMessageDescriptor *desc,
		       ProtobufCMessage **msg)
{
	struct ox_resp r;
	int rc = -OX_EUNREACHABLE;

	cl->last_error[0] = '\0';
	for (size_t tries = 0; tries < cl->conf.boot_n; tries++) {
		rc = ox_conn_call(&cl->boot, cl->conf.connect_timeout_ms,
				  api_key, body, cl->conf.request_timeout_ms,
				  &r);
		if (rc == 0)
			return finish(cl, &r, desc, msg);
		ox_client_set_error(cl, "%s:%u: %s", cl->boot.addr.host,
				    (unsigned)cl->boot.addr.port,
				    ox_strerror(rc));
		// Next bootstrap broker; the connection is closed already.
		cl->boot_idx = (cl->boot_idx + 1) % cl->conf.boot_n;
		ox_conn_deinit(&cl->boot);
		ox_conn_init(&cl->boot, &cl->conf.boot[cl->boot_idx],
			     cl->conf.client_id);
	}
	// last_error names the broker and the reason (refused, timed out).
	return -OX_EUNREACHABLE;
}

static struct ox_node *node_find(const struct ox_client *cl, int32_t id)
{
	for (size_t i = 0; i < cl->nodes_n; i++)
		if (cl->nodes[i].id == id)
			return &cl->nodes[i];
	return NULL;
}

const struct ox_hostport *ox_client_node_addr(const struct ox_client *cl,
					      int32_t node)
{
	const struct ox_node *n = node_find(cl, node);

	return n != NULL ? &n->conn.addr : NULL;
}

int ox_client_call_node(struct ox_client *cl, int32_t node,
			uint32_t api_key, const ProtobufCMessage *body,
			const ProtobufCMessageDescriptor *desc,
			ProtobufCMessage **msg)
{
	struct ox_node *n = node_find(cl, node);
	struct ox_resp r;
	int rc;

	cl->last_error[0] = '\0';
	if (n == NULL) {
		ox_client_set_error(cl, "node %d is not in the metadata",
				    (int)node);
		return -OX_ENOTLEADER;
	}
	rc = ox_conn_call(&n->conn, cl->conf.connect_timeout_ms, api_key,
			  body, cl->conf.request_timeout_ms, &r);
	if (rc < 0) {
		ox_client_set_error(cl, "node %d (%s:%u): %s", (int)node,
				    n->conn.addr.host,
				    (unsigned)n->conn.addr.port,
				    ox_strerror(rc));
		return rc;
	}
	return finish(cl, &r, desc, msg);
}

// Replaces the node table with the brokers of a metadata response, keeping
// connections to nodes whose address did not change.
static int nodes_update(struct ox_client *cl, const Oxbow__MetadataResponse *md)
{
	struct ox_node *nodes;
	size_t n = 0;

	nodes = calloc(md->n_brokers + 1, sizeof(*nodes));
	if (nodes == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < md->n_brokers; i++) {
		const Oxbow__BrokerInfo *b = md->brokers[i];
		struct ox_hostport hp;
		struct ox_node *old;

		if (b->host == NULL || strlen(b->host) >= OX_HOST_MAX ||
		    b->port == 0 || b->port > 65535)
			continue;
		bool dup = false;
		for (size_t j = 0; j < n; j++)
			dup = dup || nodes[j].id == b->node_id;
		if (dup)
			continue;
		snprintf(hp.host, sizeof(hp.host), "%s", b->host);
		hp.port = (uint16_t)b->port;
		old = node_find(cl, b->node_id);
		nodes[n].id = b->node_id;
		if (old != NULL && old->conn.fd != -2 &&
		    strcmp(old->conn.addr.host, hp.host) == 0 &&
		    old->conn.addr.port == hp.port) {
			nodes[n].conn = old->conn;
			// Moved: the old slot must not free its buffers.
			old->conn.fd = -2;
		} else {
			ox_conn_init(&nodes[n].conn, &hp, cl->conf.client_id);
		}
		n++;
	}
	for (size_t i = 0; i < cl->nodes_n; i++)
		if (cl->nodes[i].conn.fd != -2)
			ox_conn_deinit(&cl->nodes[i].conn);
	free(cl->nodes);
	cl->nodes = nodes;
	cl->nodes_n = n;
	return 0;
}

int ox_client_metadata(struct ox_client *cl, const char *const *topics,
		       size_t n, bool include_internal,
		       Oxbow__MetadataResponse **out)
{
	Oxbow__MetadataRequest req = OXBOW__METADATA_REQUEST__INIT;
	ProtobufCMessage *msg = NULL;
	int rc;

	req.n_topics = n;
	req.topics = (char **)topics;
	req.include_internal = include_internal;
	rc = ox_client_call_any(cl, OXBOW__API_KEY__METADATA, &req.base,
				&oxbow__metadata_response__descriptor, &msg);
	if (rc < 0)
		return rc;
	*out = (Oxbow__MetadataResponse *)msg;
	rc = nodes_update(cl, *out);
	if (rc < 0) {
		protobuf_c_message_free_unpacked(msg, NULL);
		*out = NULL;
	}
	return rc;
}

void *ox_client_handle_create(size_t size, const void *out,
			      const struct ox_conf *conf, char *errstr,
			      size_t errstr_size, int *rc)
{
	struct ox_client *cl;

	OX_ASSERT(size >= sizeof(*cl));
	if (out == NULL || conf == NULL) {
		ox_errstr_set(errstr, errstr_size, "out and conf are required");
		*rc = -EINVAL;
		return NULL;
	}
	cl = calloc(1, size);
	if (cl == NULL) {
		ox_errstr_set(errstr, errstr_size, "out of memory");
		*rc = -ENOMEM;
		return NULL;
	}
	ox_client_init(cl, conf);
	*rc = 0;
	return cl;
}

int ox_client_list_offset(struct ox_client *cl, int32_t node,
			  const char *topic, int32_t partition, int64_t spec,
			  const char *what, int64_t *offset_out)
{
	Oxbow__ListOffsetsRequest req = OXBOW__LIST_OFFSETS_REQUEST__INIT;
	Oxbow__ListOffsetsTarget t = OXBOW__LIST_OFFSETS_TARGET__INIT;
	Oxbow__ListOffsetsTarget *tp = &t;
	ProtobufCMessage *msg = NULL;
	int rc;

	OX_ASSERT(spec >= 0 || spec == OX_OFFSET_BEGINNING ||
		  spec == OX_OFFSET_END);
	t.topic = (char *)topic;
	t.partition = (uint32_t)partition;
	if (spec == OX_OFFSET_BEGINNING) {
		t.spec = OXBOW__OFFSET_SPEC__OFFSET_SPEC_EARLIEST;
	} else if (spec == OX_OFFSET_END) {
		t.spec = OXBOW__OFFSET_SPEC__OFFSET_SPEC_LATEST;
	} else {
		t.spec = OXBOW__OFFSET_SPEC__OFFSET_SPEC_TIMESTAMP;
		t.timestamp = spec;
	}
	req.n_targets = 1;
	req.targets = &tp;
	rc = ox_client_call_node(cl, node, OXBOW__API_KEY__LIST_OFFSETS,
				 &req.base,
				 &oxbow__list_offsets_response__descriptor,
				 &msg);
	if (rc < 0)
		return rc;
	Oxbow__ListOffsetsResponse *r = (Oxbow__ListOffsetsResponse *)msg;
	if (r->n_results < 1) {
		rc = -OX_ESERVER;
	} else {
		rc = ox_error_from_wire((int)r->results[0]->error_code);
		*offset_out = r->results[0]->offset;
	}
	protobuf_c_message_free_unpacked(msg, NULL);
	if (rc < 0)
		ox_client_set_error(cl, "%s[%d]: %s%s", topic, (int)partition,
				    what, ox_strerror(rc));
	return rc;
}

int ox_req_offsets_alloc(struct ox_req_offsets *r, size_t n)
{
	memset(r, 0, sizeof(*r));
	// One spare slot: calloc(0) may return NULL.
	r->v = calloc(n + 1, sizeof(*r->v));
	r->p = calloc(n + 1, sizeof(*r->p));
	if (r->v == NULL || r->p == NULL) {
		ox_req_offsets_free(r);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		Oxbow__GroupOffset init = OXBOW__GROUP_OFFSET__INIT;
		r->v[i] = init;
		r->p[i] = &r->v[i];
	}
	r->n = n;
	return 0;
}

void ox_req_offsets_free(struct ox_req_offsets *r)
{
	free(r->v);
	free(r->p);
	r->v = NULL;
	r->p = NULL;
	r->n = 0;
}

int ox_commit_response_result(const Oxbow__OffsetCommitResponse *r)
{
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < r->n_offsets; i++)
		rc = ox_error_from_wire((int)r->offsets[i]->error_code);
	return rc;
}

int ox_client_commit(struct ox_client *cl, const char *group,
		     const struct ox_req_offsets *r)
{
	Oxbow__OffsetCommitRequest req = OXBOW__OFFSET_COMMIT_REQUEST__INIT;
	int64_t deadline = ox_now_ms() + cl->conf.request_timeout_ms;
	ProtobufCMessage *msg = NULL;
	int rc;

	req.group = (char *)group;
	req.n_offsets = r->n;
	req.offsets = r->p;
	for (;;) {
		rc = ox_client_call_group(cl, group,
					  OXBOW__API_KEY__OFFSET_COMMIT,
					  &req.base,
					  &oxbow__offset_commit_response__descriptor,
					  &msg);
		if (rc < 0)
			return rc;
		rc = ox_commit_response_result(
			(Oxbow__OffsetCommitResponse *)msg);
		protobuf_c_message_free_unpacked(msg, NULL);
		// The coordinator lost its leadership while the commit was
		// on its way: the new one takes the same commit again.
		if (rc != -OX_ENOTLEADER ||
		    ox_now_ms() + cl->conf.retry_backoff_ms >= deadline)
			break;
		ox_client_coordinator_forget(cl);
		sleep_ms(cl->conf.retry_backoff_ms);
	}
	if (rc < 0)
		ox_client_set_error(cl, "commit: %s", ox_strerror(rc));
	return rc;
}

// ---- group coordinators ----

bool ox_client_coord_retriable(int err)
{
	return err == -OX_ENOTLEADER || err == -OX_ESHUTDOWN ||
	       err == -ETIMEDOUT || err == -OX_EUNREACHABLE ||
	       err == -ECONNREFUSED || err == -ECONNRESET || err == -EPIPE ||
	       err == -ENOTCONN || err == -EHOSTUNREACH;
}

void ox_client_coordinator_forget(struct ox_client *cl)
{
	cl->coord.known = false;
	if (cl->coord.conn_init)
		ox_conn_close(&cl->coord.conn);
	if (cl->conf.boot_n > 1) {
		cl->boot_idx = (cl->boot_idx + 1) % cl->conf.boot_n;
		ox_conn_deinit(&cl->boot);
		ox_conn_init(&cl->boot, &cl->conf.boot[cl->boot_idx],
			     cl->conf.client_id);
	}
}

// Asks any broker which node coordinates group and keeps the answer.
static int coord_find(struct ox_client *cl, const char *group)
{
	Oxbow__FindCoordinatorRequest req =
		OXBOW__FIND_COORDINATOR_REQUEST__INIT;
	Oxbow__FindCoordinatorResponse *r;
	ProtobufCMessage *msg = NULL;
	struct ox_hostport hp;
	int rc;

	req.group = (char *)group;
	rc = ox_client_call_any(cl, OXBOW__API_KEY__FIND_COORDINATOR,
				&req.base,
				&oxbow__find_coordinator_response__descriptor,
				&msg);
	if (rc < 0)
		return rc;
	r = (Oxbow__FindCoordinatorResponse *)msg;
	if (r->host == NULL || r->host[0] == '\0' ||
	    strlen(r->host) >= sizeof(hp.host) || r->port == 0 ||
	    r->port > 65535) {
		protobuf_c_message_free_unpacked(msg, NULL);
		ox_client_set_error(cl, "FIND_COORDINATOR answered an address "
					"that is not HOST:PORT");
		return -OX_ECORRUPT;
	}
	snprintf(hp.host, sizeof(hp.host), "%s", r->host);
	hp.port = (uint16_t)r->port;
	cl->coord.node = r->node_id;
	protobuf_c_message_free_unpacked(msg, NULL);
	if (cl->coord.conn_init &&
	    (strcmp(cl->coord.conn.addr.host, hp.host) != 0 ||
	     cl->coord.conn.addr.port != hp.port)) {
		ox_conn_deinit(&cl->coord.conn);
		cl->coord.conn_init = false;
	}
	if (!cl->coord.conn_init) {
		ox_conn_init(&cl->coord.conn, &hp, cl->conf.client_id);
		cl->coord.conn_init = true;
	}
	snprintf(cl->coord.group, sizeof(cl->coord.group), "%s", group);
	cl->coord.known = true;
	return 0;
}

int ox_client_coordinator(struct ox_client *cl, const char *group,
			  const struct ox_hostport **addr)
{
	int rc = 0;

	if (group == NULL || group[0] == '\0' ||
	    strlen(group) >= sizeof(cl->coord.group))
		return -EINVAL;
	if (!cl->coord.known || strcmp(cl->coord.group, group) != 0)
		rc = coord_find(cl, group);
	if (rc == 0)
		*addr = &cl->coord.conn.addr;
	return rc;
}

static void sleep_ms(int64_t ms)
{
	struct timespec ts = { .tv_sec = ms / 1000,
			       .tv_nsec = (ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

// One call to the coordinator: 0, a broker's error, or a transport one.
static int coord_call_once(struct ox_client *cl, const char *group,
			   uint32_t api_key, const ProtobufCMessage *body,
			   int64_t timeout_ms,
			   const ProtobufCMessageDescriptor *desc,
			   ProtobufCMessage **msg)
{
	const struct ox_hostport *hp;
	struct ox_resp r;
	int rc = ox_client_coordinator(cl, group, &hp);

	if (rc < 0)
		return rc;
	rc = ox_conn_call(&cl->coord.conn, cl->conf.connect_timeout_ms,
			  api_key, body, timeout_ms, &r);
	if (rc < 0) {
		ox_client_set_error(cl, "coordinator node %d (%s:%u): %s",
				    (int)cl->coord.node, hp->host,
				    (unsigned)hp->port, ox_strerror(rc));
		return rc;
	}
	return finish(cl, &r, desc, msg);
}

int ox_client_call_group(struct ox_client *cl, const char *group,
			 uint32_t api_key, const ProtobufCMessage *body,
			 const ProtobufCMessageDescriptor *desc,
			 ProtobufCMessage **msg)
{
	int64_t deadline = ox_now_ms() + cl->conf.request_timeout_ms;
	int64_t backoff = cl->conf.retry_backoff_ms;
	int rc;

	if (group == NULL || group[0] == '\0' ||
	    strlen(group) >= sizeof(cl->coord.group)) // the broker judges
		return ox_client_call_any(cl, api_key, body, desc, msg);
	for (;;) {
		int64_t left = deadline - ox_now_ms();
		rc = coord_call_once(cl, group, api_key, body,
				     left > 0 ? left : 1, desc, msg);
		if (rc == -OX_EUNSUPPORTED && !cl->coord.known)
			return ox_client_call_any(cl, api_key, body, desc,
						  msg);
		if (rc == 0 || !ox_client_coord_retriable(rc))
			return rc;
		ox_client_coordinator_forget(cl);
		if (ox_now_ms() + backoff >= deadline)
			return rc; // last_error says why
		sleep_ms(backoff);
		backoff *= 2;
		if (backoff > cl->conf.retry_backoff_max_ms)
			backoff = cl->conf.retry_backoff_max_ms;
		if (backoff < 1)
			backoff = 1;
	}
}
