// SPDX-License-Identifier: Apache-2.0
//
// The producer's I/O thread: one poll() loop that closes batches when
// linger.ms passes (or a flush asks), groups ready batches into produce
// requests per partition leader (up to max.request.size each and
// max.in.flight per connection), reads responses, retries retriable
// failures with doubling backoff inside delivery.timeout.ms, refreshes
// metadata when a leader moves or a connection drops, and runs delivery
// callbacks without holding the producer's mutex. An idempotent producer
// first asks a broker for its id, numbers each batch when it first sends
// it (per partition, one batch per partition per request, so a partition's
// batches reach its leader in order) and keeps the numbers across
// retries, so a leader stores a retried batch once. The application side is
// producer.c; invariants are listed in producer_int.h.
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/producer_int.h"
#include "proto/assert.h"
#include "proto/wire.h"

// The loop wakes at least this often to check deadlines even when no
// timer is due: a safety net, not a correctness requirement.
#define IO_TICK_MS 100
// Metadata refreshes are at least this far apart when retry.backoff.ms
// is 0, so a storm of NOT_LEADER answers cannot spin the loop.
#define META_MIN_INTERVAL_MS 10
// Sequence numbers wrap within [0, SEQ_SPAN) (the batch format's i32).
#define SEQ_SPAN (INT64_C(1) << 31)

// A singly linked list of batches, kept in order.
struct blist {
	struct pbatch *head, *tail;
};

// Appends b to the list from *head to *tail.
static void batch_append(struct pbatch **head, struct pbatch **tail,
			 struct pbatch *b)
{
	b->next = NULL;
	if (*tail != NULL)
		(*tail)->next = b;
	else
		*head = b;
	*tail = b;
}

static void blist_push(struct blist *l, struct pbatch *b)
{
	batch_append(&l->head, &l->tail, b);
}

void ox_producer_wake(struct ox_producer *p)
{
	uint64_t one = 1;

	if (p->wake_pending)
		return;
	p->wake_pending = true;
	if (write(p->wake_fd, &one, sizeof(one)) < 0) {
		// EAGAIN: the counter is saturated, so a wake-up is pending.
	}
}

void ox_producer_close_batch(struct ox_producer *p, struct pbatch *b)
{
	struct ppart *pp = &b->topic->parts[b->partition];
	size_t len;

	OX_ASSERT(pp->open == b);
	pp->open = NULL;
	if (ox_batch_builder_count(&b->b) == 0) {
		// Opened for a record that then failed: nothing to send.
		ox_producer_batch_release(p, b);
		pthread_cond_broadcast(&p->cv_done);
		pthread_cond_broadcast(&p->cv_space);
		return;
	}
	int rc = ox_batch_builder_finish(&b->b, &len);
	OX_ASSERT(rc == 0);
	OX_ASSERT(b->cbs_n == ox_batch_builder_count(&b->b)); // invariant 4
	b->len = len;
	batch_append(&p->ready_head, &p->ready_tail, b);
	ox_producer_wake(p);
}

// Runs the callbacks of finished batches, then frees them.
static void complete(struct ox_producer *p, struct blist *done)
{
	struct pbatch *b, *next;
	bool none = p->conf->acks == OX_ACKS_NONE;

	for (b = done->head; b != NULL; b = b->next) {
		for (size_t i = 0; i < b->cbs_n; i++) {
			const struct rec_cb *c = &b->cbs[i];
			int64_t off = b->err != 0 || none ||
						      b->base_offset < 0 ?
					      -1 :
					      b->base_offset + (int64_t)i;
			if (c->cb != NULL)
				c->cb(c->opaque, b->err, b->topic->name,
				      (int32_t)b->partition, off);
		}
	}
	if (done->head == NULL)
		return;
	pthread_mutex_lock(&p->mu);
	for (b = done->head; b != NULL; b = next) {
		next = b->next;
		atomic_fetch_sub_explicit(&p->pending, b->cbs_n,
					  memory_order_relaxed);
		ox_producer_batch_release(p, b);
	}
	pthread_cond_broadcast(&p->cv_space);
	pthread_cond_broadcast(&p->cv_done);
	pthread_mutex_unlock(&p->mu);
	done->head = done->tail = NULL;
}

// A numbered batch failed for good: the sequence has a gap its leader
// would refuse for ever, so the partition's batches move to a new epoch
// and number from 0 again (a batch numbered before is numbered again when
// it is sent next). At the last epoch, a new producer id does the same
// for every partition.
static void failed_for_good(struct ox_producer *p, struct pbatch *b)
{
	struct ppart *pp = &b->topic->parts[b->partition];

	if (!b->seq_set || b->pid != p->pid || b->epoch != pp->epoch)
		return; // not numbered, or numbered before the last restart
	if (pp->epoch == INT16_MAX) {
		p->pid = OX_PRODUCER_NONE;
		p->pid_next_ms = 0;
		return;
	}
	pp->epoch++;
	pp->next_seq = 0;
}

// Decides what happens to a batch whose attempt failed with err.
static void retry_or_fail(struct ox_producer *p, struct pbatch *b, int err,
			  int64_t now, struct blist *done, struct blist *retry)
{
	// An idempotent batch refused for a gap waits for the batches
	// before it, which are being retried too.
	bool retriable = ox_error_retriable(err) ||
			 err == -OX_EUNKNOWN_TOPIC ||
			 (p->idempotent && err == -OX_ESEQUENCE);

	// A moved leader, a topic the broker does not know yet, or a lost
	// connection: the metadata may be stale.
	if (retriable)
		p->meta_wanted = true;
	// The partition waits for fresh metadata before it is sent again,
	// so the retry goes to the new leader. Leaders are the I/O
	// thread's alone (senders never read them), so no lock is needed.
	if (err == -OX_ENOTLEADER || err == -OX_EUNKNOWN_TOPIC)
		b->topic->parts[b->partition].leader = -1;
	if (retriable && b->attempts <= p->conf->retries &&
	    now + b->backoff_ms < b->deadline_ms) {
		b->retry_at_ms = now + b->backoff_ms;
		b->backoff_ms *= 2;
		if (b->backoff_ms > p->conf->retry_backoff_max_ms)
			b->backoff_ms = p->conf->retry_backoff_max_ms;
		blist_push(retry, b);
		return;
	}
	b->err = err;
	failed_for_good(p, b);
	blist_push(done, b);
}

// Puts one batch to retry back in the ready list where its partition's
// order (batch ids, which are its sequence order) wants it: before the
// first newer batch of its partition, else after the last older one, else
// at the front (mu held). Responses and failed connections hand batches
// back in any order; a partition's batches must reach its leader in
// order, or an idempotent leader refuses the gap.
static void requeue_one(struct ox_producer *p, struct pbatch *b)
{
	struct pbatch *prev = NULL, *after = NULL;

	for (struct pbatch *x = p->ready_head; x != NULL;
	     prev = x, x = x->next) {
		if (x->topic != b->topic || x->partition != b->partition)
			continue;
		if (x->id > b->id) {
			after = prev;
			break;
		}
		after = x;
	}
	// After `after`; NULL: at the front.
	if (after == NULL) {
		b->next = p->ready_head;
		p->ready_head = b;
	} else {
		b->next = after->next;
		after->next = b;
	}
	if (b->next == NULL)
		p->ready_tail = b;
}

// Puts batches to retry back in the ready list, each before the newer
// batches of its partition (mu held).
static void requeue(struct ox_producer *p, struct blist *retry)
{
	struct pbatch *b = retry->head, *next;

	for (; b != NULL; b = next) {
		next = b->next;
		requeue_one(p, b);
	}
	retry->head = retry->tail = NULL;
}

static struct pnode *node_get(struct ox_producer *p, int32_t id)
{
	const struct ox_hostport *addr;
	struct pnode *nodes, *n;

	for (size_t i = 0; i < p->nodes_n; i++)
		if (p->nodes[i].id == id)
			return &p->nodes[i];
	addr = ox_client_node_addr(&p->cl, id);
	if (addr == NULL)
		return NULL;
	nodes = realloc(p->nodes, (p->nodes_n + 1) * sizeof(*nodes));
	if (nodes == NULL)
		return NULL;
	p->nodes = nodes;
	n = &nodes[p->nodes_n];
	memset(n, 0, sizeof(*n));
	n->reqs = calloc((size_t)p->conf->max_in_flight, sizeof(*n->reqs));
	if (n->reqs == NULL)
		return NULL;
	n->id = id;
	ox_conn_init(&n->conn, addr, p->cl.conf.client_id);
	p->nodes_n++;
	return n;
}

// Fails every request in flight on a node (its connection is gone).
static void node_fail(struct ox_producer *p, struct pnode *n, int err,
		      int64_t now, struct blist *done, struct blist *retry)
{
	ox_conn_close(&n->conn);
	for (size_t s = 0; s < (size_t)p->conf->max_in_flight; s++) {
		struct preq *r = &n->reqs[s];
		if (!r->used)
			continue;
		for (size_t i = 0; i < r->n; i++)
			retry_or_fail(p, r->batches[i], err, now, done, retry);
		r->used = false;
		r->n = 0;
	}
	n->inflight = 0;
	n->connect_after_ms = now + p->conf->retry_backoff_ms;
	p->meta_wanted = true;
}

// Closes batches whose linger time passed or that a flush covers (mu
// held); lowers *next to the next linger deadline.
// Whether the partition's leader has no request slot free: its batch
// then stays open and keeps filling (as Kafka's producer does) instead of
// queueing as many one-record batches as records arrive; a response
// frees a slot and the next pass closes it.
static bool leader_busy(const struct ox_producer *p, const struct ppart *pp)
{
	for (size_t i = 0; i < p->nodes_n; i++)
		if (p->nodes[i].id == pp->leader)
			return p->nodes[i].inflight >=
			       (size_t)p->conf->max_in_flight;
	return false;
}

static void linger_pass(struct ox_producer *p, int64_t now, int64_t *next)
{
	for (struct ptopic *t = p->topics; t != NULL; t = t->next) {
		for (uint32_t i = 0; i < t->n; i++) {
			struct pbatch *b = t->parts[i].open;
			int64_t due;
			if (b == NULL)
				continue;
			due = b->created_ms + p->conf->linger_ms;
			if (p->closing || b->id < p->flush_upto)
				ox_producer_close_batch(p, b);
			else if (now >= due && !leader_busy(p, &t->parts[i]))
				ox_producer_close_batch(p, b);
			else if (due > now && due < *next)
				*next = due;
		}
	}
}

static void metadata_apply(struct ox_producer *p,
			   const Oxbow__MetadataResponse *md)
{
	for (size_t i = 0; i < md->n_topics; i++) {
		const Oxbow__TopicMetadata *tm = md->topics[i];
		struct ptopic *t;
		for (t = p->topics; t != NULL; t = t->next)
			if (strcmp(t->name, tm->name) == 0)
				break;
		if (t == NULL)
			continue;
		if (tm->error_code != OXBOW__ERROR_CODE__NONE ||
		    tm->n_partitions == 0) {
			if (t->state != T_KNOWN) {
				t->state = T_ERROR;
				t->err = tm->error_code != 0 ?
						 ox_error_from_wire(
							 (int)tm->error_code) :
						 -OX_EUNKNOWN_TOPIC;
			}
			continue;
		}
		// A partition count only grows; a response listing fewer
		// partitions than we know is stale.
		uint32_t n = (uint32_t)tm->n_partitions;
		if (n > t->n) {
			struct ppart *parts = realloc(t->parts,
						      n * sizeof(*parts));
			if (parts == NULL)
				continue;
			memset(parts + t->n, 0, (n - t->n) * sizeof(*parts));
			for (uint32_t j = t->n; j < n; j++) {
				parts[j].leader = -1;
				parts[j].epoch = p->pid_epoch;
			}
			t->parts = parts;
			t->n = n;
		}
		for (size_t j = 0; j < tm->n_partitions; j++) {
			const Oxbow__PartitionMetadata *pm = tm->partitions[j];
			if (pm->partition < t->n)
				t->parts[pm->partition].leader =
					pm->error_code == 0 ? pm->leader : -1;
		}
		t->state = T_KNOWN;
	}
}

static void metadata_refresh(struct ox_producer *p)
{
	const char **names = NULL;
	Oxbow__MetadataResponse *md = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;

	pthread_mutex_lock(&p->mu);
	p->meta_wanted = false;
	for (struct ptopic *t = p->topics; t != NULL; t = t->next) {
		if (n == cap) {
			cap = cap != 0 ? cap * 2 : 16;
			const char **nn = realloc(names, cap * sizeof(*nn));
			if (nn == NULL) {
				rc = -ENOMEM;
				break;
			}
			names = nn;
		}
		// Names stay valid: topics are freed only at destroy.
		names[n++] = t->name;
		if (t->state == T_NEW)
			t->state = T_FETCHING;
	}
	pthread_mutex_unlock(&p->mu);
	if (rc == 0 && n > 0)
		rc = ox_client_metadata(&p->cl, names, n, false, &md);
	pthread_mutex_lock(&p->mu);
	int64_t wait = p->conf->retry_backoff_ms > META_MIN_INTERVAL_MS ?
			       p->conf->retry_backoff_ms :
			       META_MIN_INTERVAL_MS;
	p->meta_next_ms = ox_now_ms() + wait;
	if (rc < 0) {
		p->meta_wanted = true;
	} else if (md != NULL) {
		metadata_apply(p, md);
		// A topic the broker did not mention does not exist.
		for (struct ptopic *t = p->topics; t != NULL; t = t->next)
			if (t->state == T_FETCHING) {
				t->state = T_ERROR;
				t->err = -OX_EUNKNOWN_TOPIC;
			}
	}
	pthread_cond_broadcast(&p->cv_meta);
	pthread_mutex_unlock(&p->mu);
	if (md != NULL)
		protobuf_c_message_free_unpacked(&md->base, NULL);
	free(names);
}

// Asks a broker for the producer's id (blocking, like a metadata
// refresh, on the I/O thread). A broker that does not serve it leaves the
// producer without idempotence (plain retries); other failures ask again
// after a backoff while the batches wait.
static void pid_init(struct ox_producer *p)
{
	Oxbow__InitProducerIdRequest req = OXBOW__INIT_PRODUCER_ID_REQUEST__INIT;
	Oxbow__InitProducerIdResponse *resp = NULL;
	int rc = ox_client_call_any(
		&p->cl, OXBOW__API_KEY__INIT_PRODUCER_ID, &req.base,
		&oxbow__init_producer_id_response__descriptor,
		(ProtobufCMessage **)&resp);

	pthread_mutex_lock(&p->mu);
	if (rc == 0 && resp->producer_id > 0 && resp->producer_epoch >= 0 &&
	    resp->producer_epoch <= INT16_MAX) {
		p->pid = resp->producer_id;
		p->pid_epoch = (int16_t)resp->producer_epoch;
		for (struct ptopic *t = p->topics; t != NULL; t = t->next)
			for (uint32_t i = 0; i < t->n; i++) {
				t->parts[i].next_seq = 0;
				t->parts[i].epoch = p->pid_epoch;
			}
	} else if (rc == -OX_EUNSUPPORTED) {
		p->idempotent = false;
	} else {
		int64_t wait = p->conf->retry_backoff_ms > META_MIN_INTERVAL_MS ?
				       p->conf->retry_backoff_ms :
				       META_MIN_INTERVAL_MS;
		p->pid_next_ms = ox_now_ms() + wait;
	}
	pthread_mutex_unlock(&p->mu);
	if (resp != NULL)
		protobuf_c_message_free_unpacked(&resp->base, NULL);
}

// Numbers a batch on its first send (or its first under a new id or
// epoch); a retry keeps its numbers, so the leader knows it (mu held).
static void number(struct ox_producer *p, struct ppart *pp, struct pbatch *b)
{
	if (b->seq_set && b->pid == p->pid && b->epoch == pp->epoch)
		return;
	OX_ASSERT(b->cbs_n > 0 && p->pid > 0);
	b->seq_set = true;
	b->pid = p->pid;
	b->epoch = pp->epoch;
	b->base_seq = pp->next_seq;
	pp->next_seq = (int32_t)(((int64_t)pp->next_seq + (int64_t)b->cbs_n) %
				 SEQ_SPAN);
	ox_batch_stamp_producer(b->buf, b->pid, b->epoch, b->base_seq);
}

static struct preq *free_slot(struct ox_producer *p, struct pnode *n)
{
	for (size_t s = 0; s < (size_t)p->conf->max_in_flight; s++)
		if (!n->reqs[s].used)
			return &n->reqs[s];
	return NULL;
}

static int slot_add(struct preq *r, struct pbatch *b, size_t *cap)
{
	if (r->n == *cap) {
		size_t c = *cap != 0 ? *cap * 2 : 16;
		struct pbatch **bb = realloc(r->batches, c * sizeof(*bb));
		if (bb == NULL)
			return -ENOMEM;
		r->batches = bb;
		*cap = c;
	}
	r->batches[r->n++] = b;
	return 0;
}

// Per node, the request being assembled in this pass.
struct building {
	struct preq *req;
	size_t cap;   // of req->batches (kept across uses in the slot)
	size_t bytes;
};

// Whether a ready batch can go out now to a connected leader; lowers
// *next for batches waiting on a backoff.
static struct pnode *batch_route(struct ox_producer *p, struct pbatch *b,
				 int64_t now, int64_t *next)
{
	struct ppart *pp = &b->topic->parts[b->partition];
	struct pnode *n;

	if (b->retry_at_ms > now) {
		if (b->retry_at_ms < *next)
			*next = b->retry_at_ms;
		return NULL;
	}
	if (pp->leader < 0 || (n = node_get(p, pp->leader)) == NULL) {
		p->meta_wanted = true;
		return NULL;
	}
	if (n->conn.fd < 0) {
		if (now < n->connect_after_ms) {
			if (n->connect_after_ms < *next)
				*next = n->connect_after_ms;
			return NULL;
		}
		n->connect_started_ms = now;
		if (ox_conn_connect_start(&n->conn) < 0) {
			n->connect_after_ms = now + p->conf->retry_backoff_ms;
			p->meta_wanted = true;
		}
		return NULL;
	}
	if (n->conn.connecting || n->inflight >= (size_t)p->conf->max_in_flight)
		return NULL;
	return n;
}

// Takes b, which follows prev (NULL: b is the head), off the ready list.
static void ready_unlink(struct ox_producer *p, struct pbatch *prev,
			 struct pbatch *b)
{
	if (prev != NULL)
		prev->next = b->next;
	else
		p->ready_head = b->next;
	if (p->ready_tail == b)
		p->ready_tail = prev;
}

// Takes ready batches off the list into one request per node (mu held).
// bld has room for bld_n nodes: a batch routed to a node that routing
// just added waits for the next pass.
static void gather(struct ox_producer *p, struct building *bld, size_t bld_n,
		   int64_t now, int64_t *next, struct blist *done)
{
	struct pbatch *prev = NULL, *b = p->ready_head, *nx;
	size_t limit = (size_t)p->conf->max_request_size - p->req_overhead;

	p->scan++;
	for (; b != NULL; b = nx) {
		struct ppart *pp = &b->topic->parts[b->partition];
		struct pnode *n;
		nx = b->next;
		if (pp->blocked_scan == p->scan)
			goto skip;
		if (now >= b->deadline_ms) {
			b->err = b->err != 0 ? b->err : -ETIMEDOUT;
			failed_for_good(p, b);
			goto take;
		}
		if (p->idempotent && p->pid <= 0) {
			if (p->pid_next_ms < *next)
				*next = p->pid_next_ms;
			goto block; // numbered once the id is known
		}
		n = batch_route(p, b, now, next);
		if (n == NULL || (size_t)(n - p->nodes) >= bld_n)
			goto block;
		struct building *g = &bld[n - p->nodes];
		if (g->req == NULL) {
			g->req = free_slot(p, n);
			OX_ASSERT(g->req != NULL);
			g->req->n = 0;
			g->bytes = 0;
		}
		if (g->req->n > 0 && g->bytes + b->len > limit)
			goto block;
		if (slot_add(g->req, b, &g->cap) < 0)
			goto block;
		g->bytes += b->len;
		if (p->idempotent) {
			number(p, pp, b);
			// One batch per partition per request: its next
			// batch goes in a later request, behind this one.
			pp->blocked_scan = p->scan;
		}
		// Unlink; the batch now belongs to the request.
		ready_unlink(p, prev, b);
		continue;
take:
		ready_unlink(p, prev, b);
		blist_push(done, b);
		continue;
block:
		// Later batches of this partition must not overtake it.
		pp->blocked_scan = p->scan;
skip:
		prev = b;
	}
}

static int send_request(struct ox_producer *p, struct pnode *n,
			struct preq *r, int64_t now)
{
	Oxbow__ProduceRequest req = OXBOW__PRODUCE_REQUEST__INIT;
	Oxbow__ProduceBatch *pb = calloc(r->n, sizeof(*pb));
	Oxbow__ProduceBatch **pbp = calloc(r->n, sizeof(*pbp));
	struct iovec *iov = calloc(r->n, sizeof(*iov));
	int rc = -ENOMEM;

	if (pb == NULL || pbp == NULL || iov == NULL)
		goto out;
	for (size_t i = 0; i < r->n; i++) {
		struct pbatch *b = r->batches[i];
		Oxbow__ProduceBatch init = OXBOW__PRODUCE_BATCH__INIT;
		pb[i] = init;
		pb[i].topic = b->topic->name;
		pb[i].partition = b->partition;
		pb[i].bytes = (uint32_t)b->len;
		pbp[i] = &pb[i];
		iov[i].iov_base = b->buf;
		iov[i].iov_len = b->len;
		b->attempts++;
	}
	req.acks = (Oxbow__Acks)p->conf->acks;
	req.timeout_ms = (uint32_t)p->conf->request_timeout_ms;
	req.n_batches = r->n;
	req.batches = pbp;
	rc = ox_conn_queue(&n->conn, OXBOW__API_KEY__PRODUCE, &req.base, iov,
			   r->n, &r->corr);
	if (rc == 0) {
		r->used = true;
		r->deadline_ms = now + p->conf->request_timeout_ms;
		r->end_pos = n->conn.qtotal;
		n->inflight++;
	}
out:
	free(pb);
	free(pbp);
	free(iov);
	return rc;
}

static void build_and_send(struct ox_producer *p, int64_t now, int64_t *next,
			   struct blist *done, struct blist *retry)
{
	struct building *bld;

	pthread_mutex_lock(&p->mu);
	// gather may add nodes: only the first nn have a slot here, and a
	// batch for a node added meanwhile waits for the next pass.
	size_t nn = p->nodes_n;
	bld = calloc(nn + 1, sizeof(*bld));
	if (bld != NULL)
		gather(p, bld, nn, now, next, done);
	pthread_mutex_unlock(&p->mu);
	if (bld == NULL)
		return;
	for (size_t i = 0; i < nn; i++) {
		struct building *g = &bld[i];
		if (g->req == NULL)
			continue;
		if (send_request(p, &p->nodes[i], g->req, now) < 0) {
			for (size_t j = 0; j < g->req->n; j++) {
				g->req->batches[j]->err = -ENOMEM;
				failed_for_good(p, g->req->batches[j]);
				blist_push(done, g->req->batches[j]);
			}
			g->req->n = 0;
		}
	}
	free(bld);
	(void)retry;
}

static void handle_response(struct ox_producer *p, struct pnode *n,
			    struct ox_resp *resp, int64_t now,
			    struct blist *done, struct blist *retry)
{
	Oxbow__ProduceResponse *pr = NULL;
	struct preq *r = NULL;

	for (size_t s = 0; s < (size_t)p->conf->max_in_flight; s++)
		if (n->reqs[s].used && n->reqs[s].corr == resp->corr)
			r = &n->reqs[s];
	if (r == NULL)
		return;
	if (resp->err == 0)
		pr = oxbow__produce_response__unpack(NULL, resp->body_len,
						     resp->body);
	for (size_t i = 0; i < r->n; i++) {
		struct pbatch *b = r->batches[i];
		int err = resp->err;
		if (err == 0) {
			const Oxbow__ProduceResult *res =
				pr != NULL && i < pr->n_results ?
					pr->results[i] :
					NULL;
			err = res == NULL ?
				      -OX_ESERVER :
				      ox_error_from_wire((int)res->error_code);
			if (err == 0) {
				b->base_offset = res->base_offset;
				b->err = 0;
				blist_push(done, b);
				continue;
			}
			if (err == -OX_EDUPLICATE && b->seq_set) {
				// Stored before; the leader no longer
				// knows where.
				b->base_offset = -1;
				b->err = 0;
				blist_push(done, b);
				continue;
			}
		}
		retry_or_fail(p, b, err, now, done, retry);
	}
	if (pr != NULL)
		oxbow__produce_response__free_unpacked(pr, NULL);
	r->used = false;
	r->n = 0;
	n->inflight--;
}

// With acks=none a request is complete once its bytes left.
static void written_pass(struct ox_producer *p, struct pnode *n,
			 struct blist *done)
{
	if (p->conf->acks != OX_ACKS_NONE)
		return;
	for (size_t s = 0; s < (size_t)p->conf->max_in_flight; s++) {
		struct preq *r = &n->reqs[s];
		if (!r->used || r->end_pos > n->conn.wtotal)
			continue;
		for (size_t i = 0; i < r->n; i++) {
			r->batches[i]->err = 0;
			blist_push(done, r->batches[i]);
		}
		r->used = false;
		r->n = 0;
		n->inflight--;
	}
}

static void node_events(struct ox_producer *p, struct pnode *n, short rev,
			int64_t now, struct blist *done, struct blist *retry)
{
	struct ox_resp resp;
	int rc = 0;

	if (n->conn.connecting) {
		if (rev == 0) {
			if (now - n->connect_started_ms >=
			    p->conf->connect_timeout_ms)
				node_fail(p, n, -ETIMEDOUT, now, done, retry);
			return;
		}
		rc = ox_conn_connect_finish(&n->conn);
	}
	if (rc == 0 && (rev & (POLLIN | POLLHUP | POLLERR)))
		rc = ox_conn_read(&n->conn);
	while (rc == 0 && (rc = ox_conn_next(&n->conn, &resp)) == 1) {
		handle_response(p, n, &resp, now, done, retry);
		ox_resp_free(&resp);
		rc = 0;
	}
	if (rc == 0 && ox_conn_want_write(&n->conn))
		rc = ox_conn_write(&n->conn);
	if (rc == 0)
		written_pass(p, n, done);
	for (size_t s = 0; rc == 0 && s < (size_t)p->conf->max_in_flight; s++)
		if (n->reqs[s].used && now >= n->reqs[s].deadline_ms)
			rc = -ETIMEDOUT;
	if (rc < 0)
		node_fail(p, n, rc, now, done, retry);
}

static void poll_pass(struct ox_producer *p, int64_t next, struct blist *done,
		      struct blist *retry)
{
	struct pollfd *pfd = calloc(p->nodes_n + 1, sizeof(*pfd));
	int64_t now = ox_now_ms();
	int timeout = next > now ? (int)(next - now) : 0;
	size_t nfd = 1;

	if (pfd == NULL) {
		usleep(1000);
		return;
	}
	pfd[0].fd = p->wake_fd;
	pfd[0].events = POLLIN;
	for (size_t i = 0; i < p->nodes_n; i++) {
		struct ox_conn *c = &p->nodes[i].conn;
		pfd[nfd].fd = c->fd;
		pfd[nfd].events = (short)(POLLIN |
					  (ox_conn_want_write(c) ? POLLOUT : 0));
		nfd++;
	}
	if (poll(pfd, nfd, timeout) < 0)
		memset(pfd, 0, nfd * sizeof(*pfd));
	now = ox_now_ms();
	for (size_t i = 0; i < p->nodes_n; i++)
		if (p->nodes[i].conn.fd >= 0)
			node_events(p, &p->nodes[i], pfd[i + 1].revents, now,
				    done, retry);
	free(pfd);
}

static void shutdown_all(struct ox_producer *p)
{
	struct blist done = { 0 };

	pthread_mutex_lock(&p->mu);
	for (struct ptopic *t = p->topics; t != NULL; t = t->next)
		for (uint32_t i = 0; i < t->n; i++)
			if (t->parts[i].open != NULL)
				ox_producer_close_batch(p, t->parts[i].open);
	while (p->ready_head != NULL) {
		struct pbatch *b = p->ready_head;
		p->ready_head = b->next;
		b->err = -OX_ECLOSED;
		blist_push(&done, b);
	}
	p->ready_tail = NULL;
	pthread_mutex_unlock(&p->mu);
	for (size_t i = 0; i < p->nodes_n; i++) {
		struct pnode *n = &p->nodes[i];
		ox_conn_close(&n->conn);
		for (size_t s = 0; s < (size_t)p->conf->max_in_flight; s++) {
			struct preq *r = &n->reqs[s];
			for (size_t j = 0; r->used && j < r->n; j++) {
				r->batches[j]->err = -OX_ECLOSED;
				blist_push(&done, r->batches[j]);
			}
			r->used = false;
			free(r->batches);
			r->batches = NULL;
		}
	}
	complete(p, &done);
}

void *ox_producer_io_main(void *arg)
{
	struct ox_producer *p = arg;
	struct blist done = { 0 }, retry = { 0 };
	uint64_t drain;

	for (;;) {
		int64_t now = ox_now_ms();
		int64_t next = now + IO_TICK_MS;
		bool meta;

		pthread_mutex_lock(&p->mu);
		if (read(p->wake_fd, &drain, sizeof(drain)) < 0) {
			// EAGAIN: nothing to drain.
		}
		p->wake_pending = false;
		if (p->stop) {
			pthread_mutex_unlock(&p->mu);
			break;
		}
		linger_pass(p, now, &next);
		bool want_pid = p->idempotent && p->pid <= 0 &&
				now >= p->pid_next_ms && p->ready_head != NULL;
		meta = p->meta_wanted && now >= p->meta_next_ms;
		if (p->meta_wanted && !meta && p->meta_next_ms < next)
			next = p->meta_next_ms;
		pthread_mutex_unlock(&p->mu);
		if (meta)
			metadata_refresh(p);
		if (want_pid)
			pid_init(p);
		build_and_send(p, now, &next, &done, &retry);
		for (size_t i = 0; i < p->nodes_n; i++) {
			struct pnode *n = &p->nodes[i];
			if (n->conn.fd >= 0 && !n->conn.connecting &&
			    ox_conn_want_write(&n->conn)) {
				int rc = ox_conn_write(&n->conn);
				if (rc < 0)
					node_fail(p, n, rc, now, &done, &retry);
				else
					written_pass(p, n, &done);
			}
		}
		complete(p, &done);
		pthread_mutex_lock(&p->mu);
		requeue(p, &retry);
		bool again = p->wake_pending;
		pthread_mutex_unlock(&p->mu);
		if (!again)
			poll_pass(p, next, &done, &retry);
		complete(p, &done);
		pthread_mutex_lock(&p->mu);
		requeue(p, &retry);
		pthread_mutex_unlock(&p->mu);
	}
	shutdown_all(p);
	return NULL;
}
