// SPDX-License-Identifier: Apache-2.0
//
// What the broker integration programs (broker_*.c) share: the CHECK macro
// and its failure count, the run's seed (OX_TEST_SEED replays it) and its
// PRNG, a watchdog, real oxbowd processes (start on a free 127.0.0.1
// port below the kernel's ephemeral range in a fresh temporary directory,
// wait for the ready file, stop, kill -9, restart on the same directory
// and port, resident memory), raw protocol
// connections (frames built with proto/frame.h and the generated protobuf
// code) and small liboxbow conveniences. Every oxbowd a program starts is
// killed when the program exits, however it exits (atexit, fatal signals,
// the watchdog, and PR_SET_PDEATHSIG in the child when the test itself is
// SIGKILLed). Not a library: each program compiles this file in.
#ifndef OX_TESTS_INTEGRATION_BROKER_COMMON_H
#define OX_TESTS_INTEGRATION_BROKER_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "proto/error.h"
#include "proto/envelope.pb-c.h"
#include "proto/api.pb-c.h"
#include "client/include/oxbow/oxbow.h"

// Room for a temporary directory and the files below it.
#define BC_PATH_MAX 256
// The temporary root is short (/tmp/ox-<tag>-XXXXXX), paths below it fit.
#define BC_ROOT_MAX 128
// Extra --key value arguments a broker can be started with.
#define BC_ARGS_MAX 32
// How long oxbowd may take to write its ready file; start-up replays the
// logs, which on a loaded 2-core machine can take a while.
#define BC_READY_TIMEOUT_MS 60000
// How long a SIGTERM'd oxbowd may take to exit before it is SIGKILLed.
#define BC_STOP_TIMEOUT_MS 30000
// Brokers one program can run (the cleanup registry).
#define BC_BROKERS_MAX 4

// Checks that failed; bc_finish exits 1 when any did.
extern int bc_failures;

// A failed check is counted and reported and the run goes on, so that one
// run shows every failing check and not only the first.
#define CHECK(cond, ...)                                                     \
	do {                                                                 \
		if (!(cond)) {                                               \
			fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
			fprintf(stderr, __VA_ARGS__);                        \
			fprintf(stderr, "\n");                               \
			bc_failures++;                                       \
		}                                                            \
	} while (0)

// Starts a run: name (a string literal) prefixes messages. Takes the oxbowd
// path from argv[1] or $OX_OXBOWD (skips with 77 when neither names an
// executable), prints the seed (OX_TEST_SEED replays it), installs the
// cleanup handlers and a watchdog that fails the run after
// watchdog_s seconds, so that no test can hang.
void bc_start(const char *name, int argc, char **argv, unsigned watchdog_s);

// The oxbowd binary the run uses.
const char *bc_oxbowd_path(void);

// splitmix64 over the run's seed; bc_rng_below(n) is uniform in [0, n).
uint64_t bc_rng(void);
uint64_t bc_rng_below(uint64_t n);
// A stateless hash of (seed, a, b): content that can be recomputed later
// (record keys and values) without storing it.
uint64_t bc_hash(uint64_t a, uint64_t b);

// Setup that fails means nothing can be checked: print, clean up, exit 1.
_Noreturn void bc_die(const char *what, int rc);
_Noreturn void bc_dief(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
// Prints why the test cannot run here and exits 77.
_Noreturn void bc_skip(const char *why);
// Stops every broker still running, removes the temporary directories
// (kept when OX_TEST_KEEP is set or a check failed), prints the verdict and
// exits 0 or 1.
_Noreturn void bc_finish(void);

// Milliseconds on the monotonic clock, and the wall clock.
int64_t bc_now_ms(void);
int64_t bc_wall_ms(void);
void bc_sleep_ms(int ms);

// One oxbowd: its temporary root (the data directory is root/data, its
// output goes to root/oxbowd.log), pid and the port it listens on.
struct bc_broker {
	char root[BC_ROOT_MAX];
	char data_dir[BC_PATH_MAX];
	char log_path[BC_PATH_MAX];
	pid_t pid;          // 0 when not running
	int port;           // 0 before the first start
	char bootstrap[64]; // "127.0.0.1:<port>"
	char *args[BC_ARGS_MAX];
	int nargs;
	int starts;
	int64_t spawned_ms; // when the last start forked (monotonic)
};

// Creates the temporary root and registers b for cleanup. args: extra
// "--key", "value" pairs (copied), NULL-terminated; NULL for none.
void bc_broker_init(struct bc_broker *b, const char *tag,
		    const char *const *args);
// Starts oxbowd on the data directory, on a free port below the kernel's
// ephemeral range the first time (no outgoing connection can take it
// while the node is down) and on the same port afterwards (clients keep
// their bootstrap list), and waits for
// its ready file. Dies (printing the broker's log) when it does not come
// up within BC_READY_TIMEOUT_MS.
void bc_broker_start(struct bc_broker *b);
// The two halves of bc_broker_start, so that several brokers can start at
// once (a whole cluster restarting, whose nodes wait for each other):
// spawn forks and execs without waiting; wait_ready waits (up to
// BC_READY_TIMEOUT_MS from the spawn) for the ready file and dies as
// bc_broker_start does.
void bc_broker_spawn(struct bc_broker *b);
void bc_broker_wait_ready(struct bc_broker *b);
// SIGTERM, wait up to BC_STOP_TIMEOUT_MS, then SIGKILL. Returns the exit
// status as a shell would show it (128 + signal when killed).
int bc_broker_stop(struct bc_broker *b);
// SIGKILL and reap.
void bc_broker_kill(struct bc_broker *b);
// Whether the process is still running (reaps it when it is not, printing
// how it ended).
bool bc_broker_alive(struct bc_broker *b);
// Empties b's data directory as a wiped or replaced disk would leave it
// (everything under it removed, the directory itself left empty); its
// port, arguments and output file stay, so it starts again as the same
// node with no state. b must not be running; dies when something stays.
void bc_broker_wipe(struct bc_broker *b);
// VmRSS of the broker in KiB, or -1 when it cannot be read.
long bc_broker_rss_kib(const struct bc_broker *b);
// Any "Field: N kB" line of /proc/PID/status (RssAnon, RssFile, ...), or -1.
long bc_broker_status_kib(const struct bc_broker *b, const char *field);
// Prints the last lines of the broker's output to stderr.
void bc_broker_dump_log(const struct bc_broker *b);

// ---------------------------------------------------------------------
// liboxbow conveniences; each dies on a setup error.

// A configuration with bootstrap.servers set to b's address and then the
// NULL-terminated key, value pairs of kv (may be NULL).
struct ox_conf *bc_conf(const struct bc_broker *b, const char *const *kv);
struct ox_admin *bc_admin(const struct bc_broker *b);
// A producer of bc_conf(b, kv), bootstrapping from the nodes in bootstrap
// ("host:port,..."; NULL: b alone).
struct ox_producer *bc_producer(const struct bc_broker *b,
				const char *bootstrap, const char *const *kv);
// Creates a topic; configs: NULL-terminated key, value pairs.
void bc_topic_create(struct ox_admin *a, const char *name, int partitions,
		     const char *const *configs);

// ---------------------------------------------------------------------
// Raw protocol connections.

// Connects to 127.0.0.1:port (blocking, with send and receive timeouts of
// io_timeout_ms). Returns the socket or -errno.
int bc_connect(int port, int io_timeout_ms);
// Writes all of buf; returns 0 or -errno (a closed peer gives -EPIPE).
int bc_send_all(int fd, const void *buf, size_t len);

// Builds a request frame: prefix, header (api_key, version, correlation id),
// u32 body length, the packed body (NULL: empty), then raw bytes. Returns a
// malloc'd frame (caller frees) and its length through *len_out.
uint8_t *bc_frame_build(uint32_t api_key, uint32_t api_version,
			uint64_t correlation_id,
			const ProtobufCMessage *body, const void *raw,
			size_t raw_len, size_t *len_out);

// A response read off a raw connection.
struct bc_response {
	uint8_t *frame;       // the whole frame after its length field
	size_t frame_len;
	Oxbow__ResponseHeader *header;
	const uint8_t *body;  // the API body (protobuf), after its prefix
	size_t body_len;
	const uint8_t *raw;   // raw part after the body
	size_t raw_len;
};

// Reads one frame, waiting up to timeout_ms. Returns 1 with *r filled (free
// with bc_response_free), 0 when the peer closed the connection (EOF or a
// reset), -ETIMEDOUT, or -OX_ECORRUPT when what came is not a well-formed
// response frame (a test failure in itself).
int bc_response_read(int fd, int timeout_ms, struct bc_response *r);
void bc_response_free(struct bc_response *r);

// ---------------------------------------------------------------------
// A client batch (base offset 0, no producer id) of `count` records whose
// values are bc_value_fill(first_index + k, value_len) (value_len >= 8),
// null keys, timestamps `now`. Returns its length; dies when cap is short.
size_t bc_batch_build(uint8_t *buf, size_t cap, uint64_t first_index,
		      uint32_t count, size_t value_len);
// A PRODUCE frame carrying one batch for topic/partition; declared_bytes
// is what ProduceBatch.bytes says (pass len for an honest one). acks is an
// Oxbow__Acks value. Caller frees.
uint8_t *bc_produce_frame(uint64_t correlation_id, int acks,
			  const char *topic, uint32_t partition,
			  const void *batch, size_t len,
			  uint32_t declared_bytes, size_t *len_out);
// A FETCH frame for one partition. Caller frees.
uint8_t *bc_fetch_frame(uint64_t correlation_id, const char *topic,
			uint32_t partition, int64_t offset, uint32_t max_bytes,
			uint32_t max_wait_ms, size_t *len_out);

// Record content that is a function of (seed, index), so that a test can
// check what it reads without keeping what it wrote. bc_fill writes len
// such bytes and bc_fill_check compares them. bc_value_fill writes a value
// that names its own index: 8 bytes LE of index, then bc_fill bytes (len
// must be >= 8); bc_value_check returns the index of an intact such value,
// or -1.
void bc_fill(uint8_t *buf, uint64_t index, size_t len);
bool bc_fill_check(const void *buf, uint64_t index, size_t len);
void bc_value_fill(uint8_t *buf, uint64_t index, size_t len);
int64_t bc_value_check(const void *value, size_t len);

// ---------------------------------------------------------------------
// Clusters

// Nodes in one test cluster, at most.
#define BC_CLUSTER_MAX 5

// Inits nodes[0, n) (node ids 1..n, peer ports reserved here, `peers`
// naming all of them, then the NULL-terminated extra args) and starts
// them; each becomes ready on its own (the metadata leader comes later).
void bc_cluster_start(struct bc_broker *nodes, int n, const char *tag,
		      const char *const *args);
// Starts every node (all stopped) at once on its data directory and port,
// then waits until each is ready: a whole cluster coming back.
void bc_cluster_restart(struct bc_broker *nodes, int n);
// Waits (bounded) until every node names a metadata leader and its
// metadata replica is done rejoining (a node that started on an empty
// data directory holds its votes back until it has caught up: raft.h R9),
// so the cluster survives losing any one node. bc_cluster_start calls it.
void bc_cluster_settle(const struct bc_broker *nodes, int n);
// "host:port,..." of every node's client listener.
void bc_cluster_bootstrap(const struct bc_broker *nodes, int n, char *out,
			  size_t cap);
// CLUSTER_STATUS of one node (free with
// oxbow__cluster_status_response__free_unpacked), or NULL when it does
// not answer.
Oxbow__ClusterStatusResponse *bc_cluster_status(const struct bc_broker *b);
// FIND_COORDINATOR of `group` asked of one node: the coordinator's node
// id, or -1 when the node does not answer or names none now.
int bc_find_coordinator(const struct bc_broker *b, const char *group);

// Reaps b if it has exited, without waiting: returns its exit status as
// bc_broker_stop does (pid then 0), or -1 while it still runs.
int bc_broker_reap(struct bc_broker *b);

// What node b says of partition p of topic (CLUSTER_STATUS): its leader
// (-1: none known), high watermark, and the replicas it counts in sync
// (up to in_sync_max ids into in_sync, the count into *n_in_sync). False
// when b does not answer or holds no replica of p.
bool bc_partition_status(const struct bc_broker *b, const char *topic,
			 int p, int *leader, int64_t *hw, int *in_sync,
			 int in_sync_max, int *n_in_sync);
// The metadata leader node b names (-1: none known, or b does not answer).
int bc_meta_leader(const struct bc_broker *b);

// Waits up to timeout_ms until every one of the n nodes names one
// metadata leader and holds all n in its node table (registered: topics
// can be placed); returns that leader, or ends the test.
int bc_meta_agreed(const struct bc_broker *nodes, int n, int64_t timeout_ms);

// Nodes a test cluster has at most (status answers are read into arrays
// of this size).
#define BC_NODES_MAX 8
// Whether node `leader` (an id, nodes[leader - 1]), leading partition q
// of topic, counts node `id` among the replicas in sync: 1 yes, 0 no, -1
// no answer (or it does not lead q).
int bc_counts_in_sync(const struct bc_broker *nodes, int leader,
		      const char *topic, int q, int id);
// Waits up to timeout_ms until, for every partition q of topic, its
// leader counts all n nodes in sync, every node names that leader and
// high watermark, and that high watermark is at least at_least[q] (when
// at_least is not NULL: a new leader learns its high watermark once its
// first entry commits); each partition's high watermark goes into end
// (may be NULL). Prints how long it took; returns whether it happened.
bool bc_partitions_in_sync(const struct bc_broker *nodes, int n,
			   const char *topic, int partitions,
			   int64_t timeout_ms, const int64_t *at_least,
			   int64_t *end);

// Partitions a cluster creates for its group offsets (__offsets): a topic
// directory with this many partitions is that topic's in the tests,
// whose own topics have fewer.
#define BC_OFFSETS_PARTITIONS 16
// The partition directories (0, 1, ...) under a topic directory.
int bc_dir_partitions(const char *topic_dir);

#endif
