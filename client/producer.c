// SPDX-License-Identifier: Apache-2.0
//
// The producer's application side: create, send, flush, pending, destroy.
// send() encodes each record straight into its partition's open batch
// under one mutex acquisition, with no allocation and no system call per
// record; batches are pooled and callbacks stored in per-batch arrays.
// Everything that touches sockets is the I/O thread's (producer_io.c).
// Design notes and invariants: producer_int.h.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "client/producer_int.h"
#include "proto/assert.h"
#include "proto/wire.h"

// Standard-size batches kept for reuse: enough to cover the batches
// closed between two I/O thread passes without returning memory to malloc.
#define FREE_BATCHES_MAX 16
// Bytes kept in a request for its header and body around the batches.
#define REQ_OVERHEAD_BASE 512

void ox_deadline_ts(struct timespec *ts, int64_t ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

static int cond_init(pthread_cond_t *cv)
{
	pthread_condattr_t a;
	int rc;

	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	rc = pthread_cond_init(cv, &a);
	pthread_condattr_destroy(&a);
	return -rc;
}

int ox_producer_create(struct ox_producer **out, const struct ox_conf *conf,
		       char *errstr, size_t errstr_size)
{
	struct ox_producer *p;
	int rc = -ENOMEM;

	if (out == NULL || conf == NULL) {
		ox_errstr_set(errstr, errstr_size, "out and conf are required");
		return -EINVAL;
	}
	if (conf->buffer_memory < conf->batch_size) {
		ox_errstr_set(errstr, errstr_size,
			      "buffer.memory (%lld) must be at least "
			      "batch.size (%lld)",
			      (long long)conf->buffer_memory,
			      (long long)conf->batch_size);
		return -OX_EINVALID_CONFIG;
	}
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		goto fail;
	ox_client_init(&p->cl, conf);
	p->conf = &p->cl.conf;
	p->req_overhead = REQ_OVERHEAD_BASE;
	p->batch_cap = (size_t)conf->batch_size;
	if (p->batch_cap > (size_t)conf->max_request_size - p->req_overhead)
		p->batch_cap = (size_t)conf->max_request_size - p->req_overhead;
	p->next_batch_id = 1;
	p->idempotent = conf->idempotence && conf->acks != OX_ACKS_NONE;
	p->pid = OX_PRODUCER_NONE;
	p->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (p->wake_fd < 0) {
		rc = -errno;
		goto fail_client;
	}
	pthread_mutex_init(&p->mu, NULL);
	if (cond_init(&p->cv_space) < 0 || cond_init(&p->cv_done) < 0 ||
	    cond_init(&p->cv_meta) < 0)
		goto fail_fd;
	rc = -pthread_create(&p->thread, NULL, ox_producer_io_main, p);
	if (rc < 0)
		goto fail_fd;
	*out = p;
	return 0;
fail_fd:
	close(p->wake_fd);
fail_client:
	ox_client_deinit(&p->cl);
	free(p);
fail:
	ox_errstr_set(errstr, errstr_size, "cannot create the producer: %s",
		      ox_strerror(rc));
	return rc;
}

static struct ptopic *topic_find(struct ox_producer *p, const char *name)
{
	struct ptopic *t = p->last_topic;

	if (t != NULL && strcmp(t->name, name) == 0)
		return t;
	for (t = p->topics; t != NULL; t = t->next)
		if (strcmp(t->name, name) == 0) {
			p->last_topic = t;
			return t;
		}
	return NULL;
}

// Waits (mu held) until the topic's metadata is known. Returns the
// topic, or NULL with *err set.
static struct ptopic *topic_get(struct ox_producer *p, const char *name,
				const struct timespec *until, int *err)
{
	struct ptopic *t = topic_find(p, name);

	if (t == NULL) {
		t = calloc(1, sizeof(*t));
		if (t == NULL || (t->name = strdup(name)) == NULL) {
			free(t);
			*err = -ENOMEM;
			return NULL;
		}
		t->state = T_NEW;
		t->next = p->topics;
		p->topics = t;
	}
	if (t->state == T_KNOWN)
		return t;
	// Unknown before: ask again, the topic may have been created since.
	if (t->state == T_ERROR)
		t->state = T_NEW;
	p->meta_wanted = true;
	p->meta_next_ms = 0;
	ox_producer_wake(p);
	while (t->state == T_NEW || t->state == T_FETCHING) {
		if (p->closing) {
			*err = -OX_ECLOSED;
			return NULL;
		}
		if (pthread_cond_timedwait(&p->cv_meta, &p->mu, until) ==
			    ETIMEDOUT &&
		    (t->state == T_NEW || t->state == T_FETCHING)) {
			*err = -ETIMEDOUT;
			return NULL;
		}
	}
	if (t->state == T_ERROR) {
		*err = t->err;
		return NULL;
	}
	return t;
}

static int cbs_reserve(struct pbatch *b)
{
	if (b->cbs_n < b->cbs_cap)
		return 0;
	size_t n = b->cbs_cap != 0 ? b->cbs_cap * 2 : 256;
	struct rec_cb *c = realloc(b->cbs, n * sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	b->cbs = c;
	b->cbs_cap = n;
	return 0;
}

// Opens a batch of `cap` bytes for a partition (mu held), waiting for
// memory until `until`. Returns 0 or -ENOBUFS / -OX_ECLOSED / -ENOMEM.
static int batch_open(struct ox_producer *p, struct ptopic *t, uint32_t part,
		      size_t cap, const struct timespec *until,
		      struct pbatch **out)
{
	struct ox_batch_params params = {
		.producer_id = OX_PRODUCER_NONE,
		.producer_epoch = -1,
		.base_sequence = OX_SEQUENCE_NONE,
	};
	struct pbatch *b;

	while (p->mem_used + cap > (size_t)p->conf->buffer_memory) {
		if (p->closing)
			return -OX_ECLOSED;
		if (p->conf->max_block_ms == 0)
			return -ENOBUFS;
		if (pthread_cond_timedwait(&p->cv_space, &p->mu, until) ==
			    ETIMEDOUT &&
		    p->mem_used + cap > (size_t)p->conf->buffer_memory)
			return -ENOBUFS;
	}
	// Waiting released mu: another sender may have opened one.
	if (t->parts[part].open != NULL) {
		*out = t->parts[part].open;
		return 1;
	}
	if (cap == p->batch_cap && p->free_list != NULL) {
		b = p->free_list;
		p->free_list = b->next;
		p->free_n--;
	} else {
		b = calloc(1, sizeof(*b));
		if (b == NULL)
			return -ENOMEM;
		b->buf = malloc(cap);
		if (b->buf == NULL) {
			free(b);
			return -ENOMEM;
		}
		b->cap = cap;
	}
	int rc = ox_batch_builder_init(&b->b, b->buf, b->cap, &params);
	OX_ASSERT(rc == 0);
	b->next = NULL;
	b->id = p->next_batch_id++;
	b->topic = t;
	b->partition = part;
	b->len = 0;
	b->cbs_n = 0;
	b->created_ms = ox_now_ms();
	b->deadline_ms = b->created_ms + p->conf->delivery_timeout_ms;
	b->retry_at_ms = 0;
	b->backoff_ms = p->conf->retry_backoff_ms;
	b->attempts = 0;
	b->err = 0;
	b->base_offset = -1;
	b->seq_set = false;
	b->all_next = NULL;
	b->all_prev = p->all_tail;
	if (p->all_tail != NULL)
		p->all_tail->all_next = b;
	else
		p->all_head = b;
	p->all_tail = b;
	p->mem_used += b->cap;
	t->parts[part].open = b;
	// The I/O thread arms the linger timer of the new batch.
	ox_producer_wake(p);
	*out = b;
	return 0;
}

void ox_producer_batch_release(struct ox_producer *p, struct pbatch *b)
{
	OX_ASSERT(p->mem_used >= b->cap);
	p->mem_used -= b->cap;
	if (b->all_prev != NULL)
		b->all_prev->all_next = b->all_next;
	else
		p->all_head = b->all_next;
	if (b->all_next != NULL)
		b->all_next->all_prev = b->all_prev;
	else
		p->all_tail = b->all_prev;
	if (b->cap == p->batch_cap && p->free_n < FREE_BATCHES_MAX) {
		b->next = p->free_list;
		p->free_list = b;
		p->free_n++;
		return;
	}
	free(b->buf);
	free(b->cbs);
	free(b);
}

static uint32_t pick_partition(struct ptopic *t, const struct ox_message *m)
{
	if (m->partition != OX_PARTITION_ANY)
		return (uint32_t)m->partition;
	if (m->key != NULL)
		return ox_partition_for_key(m->key, m->key_len, t->n);
	// Keyless: stay on one partition for the life of its batch, then
	// move on, so batches fill up instead of spreading thin.
	if (t->sticky >= t->n)
		t->sticky = 0;
	struct pbatch *open = t->parts[t->sticky].open;
	if (t->sticky_id != 0 && (open == NULL || open->id != t->sticky_id)) {
		t->sticky = (t->sticky + 1) % t->n;
		t->sticky_id = 0;
	}
	return t->sticky;
}

static int message_check(const struct ox_message *m)
{
	if (m == NULL || m->topic == NULL || m->topic[0] == '\0' ||
	    (m->key == NULL && m->key_len > 0) ||
	    (m->value == NULL && m->value_len > 0) ||
	    m->key_len > INT32_MAX || m->value_len > INT32_MAX ||
	    (m->headers == NULL && m->header_count > 0) ||
	    m->header_count > OX_RECORD_HEADERS_MAX || m->partition < -1 ||
	    m->timestamp_ms < 0)
		return -EINVAL;
	for (size_t i = 0; i < m->header_count; i++) {
		const struct ox_header *h = &m->headers[i];
		if (h->key == NULL || (h->value == NULL && h->value_len > 0) ||
		    h->value_len > INT32_MAX || strlen(h->key) > INT32_MAX)
			return -EINVAL;
	}
	return 0;
}

// Adds the record to its partition's batch (mu held).
static int enqueue(struct ox_producer *p, struct ptopic *t,
		   const struct ox_message *m, const struct ox_record *r,
		   const struct timespec *until)
{
	size_t need = ox_record_bytes_max(r);
	size_t cap;
	uint32_t part;
	int rc;

	if (need == SIZE_MAX)
		return -EINVAL;
	if (need > (size_t)p->conf->max_request_size - p->req_overhead -
			   OX_BATCH_HEADER_BYTES - strlen(t->name))
		return -OX_ETOOBIG;
	cap = need + OX_BATCH_HEADER_BYTES > p->batch_cap ?
		      need + OX_BATCH_HEADER_BYTES :
		      p->batch_cap;
	if (cap > (size_t)p->conf->buffer_memory)
		return -OX_ETOOBIG;
	if (m->partition != OX_PARTITION_ANY && (uint32_t)m->partition >= t->n)
		return -OX_EUNKNOWN_TOPIC;
	for (;;) {
		struct pbatch *b;

		part = pick_partition(t, m);
		b = t->parts[part].open;
		if (b == NULL) {
			rc = batch_open(p, t, part, cap, until, &b);
			if (rc < 0)
				return rc;
			// mu was released while waiting: pick again.
			if (rc == 1)
				continue;
		}
		rc = cbs_reserve(b);
		if (rc < 0)
			return rc;
		rc = ox_batch_builder_add(&b->b, r);
		if (rc == -ENOSPC) {
			ox_producer_close_batch(p, b);
			continue;
		}
		if (rc < 0)
			return rc;
		b->cbs[b->cbs_n].cb = m->cb;
		b->cbs[b->cbs_n].opaque = m->opaque;
		b->cbs_n++;
		if (m->partition == OX_PARTITION_ANY && m->key == NULL)
			t->sticky_id = b->id;
		atomic_fetch_add_explicit(&p->pending, 1,
					  memory_order_relaxed);
		return 0;
	}
}

int ox_producer_send(struct ox_producer *p, const struct ox_message *m)
{
	struct ox_record_header hdrs[OX_RECORD_HEADERS_MAX];
	struct ox_record r;
	struct timespec until;
	struct ptopic *t;
	int rc;

	if (p == NULL || message_check(m) < 0)
		return -EINVAL;
	r.key = m->key;
	r.key_len = m->key != NULL ? (int32_t)m->key_len : -1;
	r.value = m->value;
	r.value_len = m->value != NULL ? (int32_t)m->value_len : -1;
	r.timestamp = m->timestamp_ms != 0 ? m->timestamp_ms : ox_wall_ms();
	r.offset = 0;
	r.header_count = (uint32_t)m->header_count;
	r.headers = m->header_count > 0 ? hdrs : NULL;
	r.headers_raw = NULL;
	r.headers_raw_len = 0;
	for (size_t i = 0; i < m->header_count; i++) {
		hdrs[i].key = (const uint8_t *)m->headers[i].key;
		hdrs[i].key_len = (uint32_t)strlen(m->headers[i].key);
		hdrs[i].value = m->headers[i].value;
		hdrs[i].value_len = m->headers[i].value != NULL ?
					    (int32_t)m->headers[i].value_len :
					    -1;
	}
	ox_deadline_ts(&until, p->conf->max_block_ms);
	pthread_mutex_lock(&p->mu);
	if (p->closing) {
		rc = -OX_ECLOSED;
		goto out;
	}
	t = topic_find(p, m->topic);
	if (t == NULL || t->state != T_KNOWN) {
		t = topic_get(p, m->topic, &until, &rc);
		if (t == NULL)
			goto out;
	}
	rc = enqueue(p, t, m, &r, &until);
out:
	pthread_mutex_unlock(&p->mu);
	return rc;
}

static int wait_flushed(struct ox_producer *p, uint64_t upto, int timeout_ms)
{
	struct timespec until;

	if (timeout_ms >= 0)
		ox_deadline_ts(&until, timeout_ms);
	while (p->all_head != NULL && p->all_head->id < upto) {
		if (timeout_ms < 0) {
			pthread_cond_wait(&p->cv_done, &p->mu);
		} else if (pthread_cond_timedwait(&p->cv_done, &p->mu,
						  &until) == ETIMEDOUT) {
			if (p->all_head != NULL && p->all_head->id < upto)
				return -ETIMEDOUT;
		}
	}
	return 0;
}

int ox_producer_flush(struct ox_producer *p, int timeout_ms)
{
	int rc;

	if (p == NULL)
		return -EINVAL;
	pthread_mutex_lock(&p->mu);
	uint64_t upto = p->next_batch_id;
	if (p->flush_upto < upto)
		p->flush_upto = upto;
	ox_producer_wake(p);
	rc = wait_flushed(p, upto, timeout_ms);
	pthread_mutex_unlock(&p->mu);
	return rc;
}

size_t ox_producer_pending(const struct ox_producer *p)
{
	if (p == NULL)
		return 0;
	return atomic_load_explicit(&p->pending, memory_order_relaxed);
}

void ox_producer_destroy(struct ox_producer *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->mu);
	p->closing = true;
	p->flush_upto = p->next_batch_id;
	ox_producer_wake(p);
	// Wake senders blocked on memory or metadata: they fail with
	// -OX_ECLOSED.
	pthread_cond_broadcast(&p->cv_space);
	pthread_cond_broadcast(&p->cv_meta);
	wait_flushed(p, p->next_batch_id,
		     (int)(p->conf->delivery_timeout_ms > INT32_MAX ?
				   INT32_MAX :
				   p->conf->delivery_timeout_ms));
	p->stop = true;
	ox_producer_wake(p);
	pthread_mutex_unlock(&p->mu);
	pthread_join(p->thread, NULL);
	OX_ASSERT(p->all_head == NULL);
	while (p->free_list != NULL) {
		struct pbatch *b = p->free_list;
		p->free_list = b->next;
		free(b->buf);
		free(b->cbs);
		free(b);
	}
	while (p->topics != NULL) {
		struct ptopic *t = p->topics;
		p->topics = t->next;
		free(t->parts);
		free(t->name);
		free(t);
	}
	for (size_t i = 0; i < p->nodes_n; i++) {
		ox_conn_deinit(&p->nodes[i].conn);
		free(p->nodes[i].reqs);
	}
	free(p->nodes);
	ox_client_deinit(&p->cl);
	close(p->wake_fd);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv_space);
	pthread_cond_destroy(&p->cv_done);
	pthread_cond_destroy(&p->cv_meta);
	free(p);
}
