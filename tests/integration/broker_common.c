// SPDX-License-Identifier: Apache-2.0
//
// The helpers the broker integration programs share (broker_common.h):
// checks, the seed, the watchdog and cleanup, oxbowd processes, raw frames
// and liboxbow conveniences. Each program links its own copy, so the state
// here (failure count, PRNG, the registry of brokers) is per program.
#include "tests/integration/broker_common.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include "proto/assert.h"
#include "proto/batch.h"
#include "proto/frame.h"
#include "proto/varint.h"
#include "proto/wire.h"

int bc_failures;

static const char *prog = "broker test";
static const char *oxbowd_path;
static uint64_t seed;
static uint64_t rng_state;
static struct bc_broker *brokers[BC_BROKERS_MAX];
static int nbrokers;
static volatile sig_atomic_t finishing;

// Kills every registered broker. Only kill() and plain loads: it runs from
// signal handlers too.
static void kill_all(void)
{
	for (int i = 0; i < nbrokers; i++)
		if (brokers[i] && brokers[i]->pid > 0)
			kill(brokers[i]->pid, SIGKILL);
}

static void on_exit_cleanup(void)
{
	kill_all();
}

static void on_fatal_signal(int sig)
{
	static const char msg[] = "broker test: fatal signal or watchdog; "
				  "killing brokers\n";
	kill_all();
	if (write(2, msg, sizeof(msg) - 1) < 0) {
		// Nothing more to do from a signal handler.
	}
	signal(sig, SIG_DFL);
	if (sig == SIGALRM)
		_exit(1);
	raise(sig);
}

void bc_start(const char *name, int argc, char **argv, unsigned watchdog_s)
{
	struct stat st;

	prog = name;
	oxbowd_path = argc > 1 ? argv[1] : getenv("OX_OXBOWD");
	if (!oxbowd_path || stat(oxbowd_path, &st) != 0 ||
	    access(oxbowd_path, X_OK) != 0)
		bc_skip("no oxbowd binary (pass its path as argv[1] or "
			"OX_OXBOWD)");
	seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	if (getenv("OX_TEST_SEED"))
		seed = strtoull(getenv("OX_TEST_SEED"), NULL, 10);
	printf("%s: seed %" PRIu64 " (OX_TEST_SEED=%" PRIu64 " replays it)\n",
	       prog, seed, seed);
	fflush(stdout);
	rng_state = seed;
	atexit(on_exit_cleanup);
	signal(SIGPIPE, SIG_IGN);
	int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGALRM, SIGSEGV, SIGABRT,
		       SIGBUS, SIGFPE };
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		signal(sigs[i], on_fatal_signal);
	alarm(watchdog_s);
}

const char *bc_oxbowd_path(void)
{
	return oxbowd_path;
}

uint64_t bc_rng(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

uint64_t bc_rng_below(uint64_t n)
{
	return n ? bc_rng() % n : 0;
}

uint64_t bc_hash(uint64_t a, uint64_t b)
{
	uint64_t z = seed ^ (a * 0x9e3779b97f4a7c15ull) ^
		     (b * 0xc2b2ae3d27d4eb4full);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

// On a fatal error: what each broker said last, and where its files are
// kept for a look (the exit handler kills the processes).
static void dump_and_keep(void)
{
	for (int i = 0; i < nbrokers; i++) {
		if (!brokers[i])
			continue;
		bc_broker_dump_log(brokers[i]);
		fprintf(stderr, "%s: kept %s\n", prog, brokers[i]->root);
	}
}

_Noreturn void bc_die(const char *what, int rc)
{
	fprintf(stderr, "%s: %s: %s (%d)\n", prog, what, ox_strerror(rc), rc);
	dump_and_keep();
	exit(1);
}

_Noreturn void bc_dief(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	dump_and_keep();
	exit(1);
}

_Noreturn void bc_skip(const char *why)
{
	printf("%s: SKIP: %s\n", prog, why);
	exit(77);
}

static int rm_entry(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	if (remove(path) != 0)
		fprintf(stderr, "%s: cannot remove %s: %s\n", prog, path,
			strerror(errno));
	return 0;
}

_Noreturn void bc_finish(void)
{
	finishing = 1;
	for (int i = 0; i < nbrokers; i++) {
		struct bc_broker *b = brokers[i];
		if (!b)
			continue;
		if (b->pid > 0) {
			int st = bc_broker_stop(b);
			CHECK(st == 0, "oxbowd (%s) exited with status %d on "
				       "SIGTERM, not 0", b->root, st);
		}
		if (bc_failures)
			bc_broker_dump_log(b);
		if (bc_failures || getenv("OX_TEST_KEEP"))
			printf("%s: kept %s\n", prog, b->root);
		else
			nftw(b->root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	}
	if (bc_failures) {
		printf("%s: %d check(s) FAILED (seed %" PRIu64 ")\n", prog,
		       bc_failures, seed);
		exit(1);
	}
	printf("%s: ok\n", prog);
	exit(0);
}

int64_t bc_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t bc_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void bc_sleep_ms(int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000,
			       .tv_nsec = (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
	}
}

// ---------------------------------------------------------------------
// Brokers

void bc_broker_init(struct bc_broker *b, const char *tag,
		    const char *const *args)
{
	memset(b, 0, sizeof(*b));
	if (nbrokers == BC_BROKERS_MAX)
		bc_dief("more than %d brokers", BC_BROKERS_MAX);
	if (snprintf(b->root, sizeof(b->root), "/tmp/ox-%s-XXXXXX", tag) >=
	    (int)sizeof(b->root))
		bc_dief("tag %s too long", tag);
	if (!mkdtemp(b->root))
		bc_die("mkdtemp", -errno);
	snprintf(b->data_dir, sizeof(b->data_dir), "%s/data", b->root);
	snprintf(b->log_path, sizeof(b->log_path), "%s/oxbowd.log", b->root);
	if (mkdir(b->data_dir, 0700) != 0)
		bc_die("mkdir data", -errno);
	for (; args && args[0] && args[1]; args += 2) {
		if (b->nargs + 2 > BC_ARGS_MAX)
			bc_dief("too many broker arguments");
		b->args[b->nargs++] = strdup(args[0]);
		b->args[b->nargs++] = strdup(args[1]);
	}
	brokers[nbrokers++] = b;
}

// The child's half of a start: output to the log file, die with the test,
// exec oxbowd. Only async-signal-safe calls and exec after the fork.
static _Noreturn void exec_broker(const struct bc_broker *b, pid_t parent,
				  char **argv)
{
	int fd = open(b->log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);

	if (fd >= 0) {
		dup2(fd, 1);
		dup2(fd, 2);
		close(fd);
	}
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(127);
	execv(oxbowd_path, argv);
	_exit(127);
}

// Reads "client=HOST:PORT" from the ready file: the port, 0 while the
// file is absent or incomplete.
static int ready_port(const struct bc_broker *b)
{
	char path[BC_PATH_MAX + 16], buf[512];
	int port = 0;

	snprintf(path, sizeof(path), "%s/ready", b->data_dir);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	while (fgets(buf, sizeof(buf), f)) {
		if (strncmp(buf, "client=", 7) != 0)
			continue;
		char *colon = strrchr(buf, ':');
		if (colon)
			port = atoi(colon + 1);
	}
	fclose(f);
	return port > 0 && port < 65536 ? port : 0;
}

// The first port of the kernel's ephemeral range (outgoing connections
// take their local ports from it).
static int ephemeral_low(void)
{
	FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
	int low = 32768, high;

	if (f != NULL) {
		if (fscanf(f, "%d %d", &low, &high) != 2)
			low = 32768;
		fclose(f);
	}
	return low;
}

// Whether port can be bound on 127.0.0.1 now; with port 0, the kernel's
// choice goes into *port.
static bool port_free(int *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons((uint16_t)*port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	bool ok;

	if (fd < 0)
		bc_die("socket", -errno);
	ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	     getsockname(fd, (struct sockaddr *)&a, &len) == 0;
	if (ok)
		*port = ntohs(a.sin_port);
	close(fd);
	return ok;
}

// A port for a node to listen on for its whole life, below the ephemeral
// range: a port of that range, free while its node is down, may be taken
// by any outgoing connection (a client's, a peer's reconnect), and the
// node could not start again on it. Falls back to the kernel's choice.
static int pick_port(void)
{
	// Not the run's PRNG: replaying a seed must not depend on which
	// ports happened to be taken.
	static uint64_t x;
	int low = ephemeral_low(), port;

	if (x == 0)
		x = ((uint64_t)getpid() * 0x9e3779b97f4a7c15ull ^
		     (uint64_t)bc_wall_ms()) | 1;
	for (int k = 0; k < 1000 && low > 10000; k++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		port = 10000 + (int)(x % (uint64_t)(low - 10000));
		if (port_free(&port))
			return port;
	}
	port = 0;
	if (!port_free(&port))
		bc_die("reserving a port", -errno);
	return port;
}

void bc_broker_spawn(struct bc_broker *b)
{
	char listen[64], ready[BC_PATH_MAX + 16];
	char *argv[BC_ARGS_MAX + 8];
	int argc = 0;

	if (b->pid > 0)
		bc_dief("broker %s already running", b->root);
	if (b->port == 0)
		b->port = pick_port();
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", b->port);
	argv[argc++] = (char *)oxbowd_path;
	argv[argc++] = "--data.dir";
	argv[argc++] = b->data_dir;
	argv[argc++] = "--listen";
	argv[argc++] = listen;
	for (int i = 0; i < b->nargs; i++)
		argv[argc++] = b->args[i];
	argv[argc] = NULL;

	// A previous run's ready file names a port that may be stale; the
	// process that wrote it is dead by now.
	snprintf(ready, sizeof(ready), "%s/ready", b->data_dir);
	unlink(ready);
	fflush(NULL);
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0)
		bc_die("fork", -errno);
	if (pid == 0)
		exec_broker(b, parent, argv);
	b->pid = pid;
	b->starts++;
	b->spawned_ms = bc_now_ms();
}

void bc_broker_wait_ready(struct bc_broker *b)
{
	int64_t deadline = b->spawned_ms + BC_READY_TIMEOUT_MS;
	int port = 0;

	while (!(port = ready_port(b))) {
		int st;
		if (waitpid(b->pid, &st, WNOHANG) == b->pid) {
			b->pid = 0;
			bc_dief("oxbowd (%s) exited with status %d before "
				"it was ready", b->root,
				WIFEXITED(st) ? WEXITSTATUS(st)
					      : 128 + WTERMSIG(st));
		}
		if (bc_now_ms() > deadline)
			bc_dief("oxbowd (%s) not ready after %d ms", b->root,
				BC_READY_TIMEOUT_MS);
		bc_sleep_ms(10);
	}
	if (b->port && port != b->port)
		bc_dief("oxbowd restarted on port %d, asked for %d", port,
			b->port);
	b->port = port;
	snprintf(b->bootstrap, sizeof(b->bootstrap), "127.0.0.1:%d", port);
	printf("%s: oxbowd pid %d ready on %s (start %d)\n", prog, (int)b->pid,
	       b->bootstrap, b->starts);
	fflush(stdout);
}

void bc_broker_start(struct bc_broker *b)
{
	bc_broker_spawn(b);
	bc_broker_wait_ready(b);
}

static int status_code(int st)
{
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int bc_broker_stop(struct bc_broker *b)
{
	int st = 0;

	if (b->pid <= 0)
		return -1;
	kill(b->pid, SIGTERM);
	int64_t deadline = bc_now_ms() + BC_STOP_TIMEOUT_MS;
	for (;;) {
		pid_t r = waitpid(b->pid, &st, WNOHANG);
		if (r == b->pid)
			break;
		if (r < 0) {
			st = 255 << 8;
			break;
		}
		if (bc_now_ms() > deadline) {
			fprintf(stderr, "%s: oxbowd %d ignored SIGTERM for "
					"%d ms; SIGKILL\n",
				prog, (int)b->pid, BC_STOP_TIMEOUT_MS);
			kill(b->pid, SIGKILL);
			waitpid(b->pid, &st, 0);
			break;
		}
		bc_sleep_ms(10);
	}
	b->pid = 0;
	return status_code(st);
}

void bc_broker_kill(struct bc_broker *b)
{
	int st;

	if (b->pid <= 0)
		return;
	kill(b->pid, SIGKILL);
	waitpid(b->pid, &st, 0);
	b->pid = 0;
}

bool bc_broker_alive(struct bc_broker *b)
{
	int st;

	if (b->pid <= 0)
		return false;
	if (waitpid(b->pid, &st, WNOHANG) == b->pid) {
		fprintf(stderr, "%s: oxbowd %d ended with status %d\n", prog,
			(int)b->pid, status_code(st));
		b->pid = 0;
		return false;
	}
	return true;
}

void bc_broker_wipe(struct bc_broker *b)
{
	struct stat st;

	if (b->pid > 0)
		bc_dief("wiping %s while oxbowd %d runs on it", b->data_dir,
			(int)b->pid);
	if (nftw(b->data_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
		bc_die("removing the data directory", -errno);
	if (stat(b->data_dir, &st) == 0)
		bc_dief("%s still exists after removing it", b->data_dir);
	if (mkdir(b->data_dir, 0700) != 0)
		bc_die("mkdir data", -errno);
}

long bc_broker_status_kib(const struct bc_broker *b, const char *field)
{
	char path[64], line[256];
	size_t flen = strlen(field);
	long kib = -1;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)b->pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, field, flen) && line[flen] == ':') {
			kib = strtol(line + flen + 1, NULL, 10);
			break;
		}
	fclose(f);
	return kib;
}

long bc_broker_rss_kib(const struct bc_broker *b)
{
	return bc_broker_status_kib(b, "VmRSS");
}

void bc_broker_dump_log(const struct bc_broker *b)
{
	// The tail is enough to see why it failed; whole logs can be large.
	enum { TAIL_BYTES = 4096 };
	char buf[TAIL_BYTES + 1];
	int fd = open(b->log_path, O_RDONLY);

	if (fd < 0)
		return;
	off_t end = lseek(fd, 0, SEEK_END);
	off_t from = end > TAIL_BYTES ? end - TAIL_BYTES : 0;
	ssize_t n = pread(fd, buf, TAIL_BYTES, from);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = 0;
	fprintf(stderr, "---- tail of %s ----\n%s\n---- end ----\n",
		b->log_path, buf);
}

// ---------------------------------------------------------------------
// liboxbow

struct ox_conf *bc_conf(const struct bc_broker *b, const char *const *kv)
{
	char err[256];
	struct ox_conf *c = ox_conf_create();

	if (!c)
		bc_die("ox_conf_create", -ENOMEM);
	if (ox_conf_set(c, "bootstrap.servers", b->bootstrap, err,
			sizeof(err)) < 0)
		bc_dief("bootstrap.servers: %s", err);
	for (; kv && kv[0] && kv[1]; kv += 2)
		if (ox_conf_set(c, kv[0], kv[1], err, sizeof(err)) < 0)
			bc_dief("conf %s=%s: %s", kv[0], kv[1], err);
	return c;
}

struct ox_producer *bc_producer(const struct bc_broker *b,
				const char *bootstrap, const char *const *kv)
{
	struct ox_conf *c = bc_conf(b, kv);
	struct ox_producer *p = NULL;
	char err[256];

	if (bootstrap != NULL &&
	    ox_conf_set(c, "bootstrap.servers", bootstrap, err,
			sizeof(err)) < 0)
		bc_dief("bootstrap.servers: %s", err);
	if (ox_producer_create(&p, c, err, sizeof(err)) < 0)
		bc_dief("ox_producer_create: %s", err);
	ox_conf_destroy(c);
	return p;
}

struct ox_admin *bc_admin(const struct bc_broker *b)
{
	char err[256];
	struct ox_admin *a = NULL;
	struct ox_conf *c = bc_conf(b, NULL);
	int rc = ox_admin_create(&a, c, err, sizeof(err));

	ox_conf_destroy(c);
	if (rc < 0)
		bc_dief("ox_admin_create: %s", err);
	return a;
}

void bc_topic_create(struct ox_admin *a, const char *name, int partitions,
		     const char *const *configs)
{
	struct ox_config_entry e[16];
	size_t n = 0;

	for (; configs && configs[0] && configs[1] && n < 16; configs += 2)
		e[n++] = (struct ox_config_entry){ configs[0], configs[1] };
	int rc = ox_admin_topic_create(a, name, partitions, 0, n ? e : NULL,
				       n);
	if (rc < 0)
		bc_dief("create topic %s: %s (%s)", name, ox_strerror(rc),
			ox_admin_last_error(a));
}

// ---------------------------------------------------------------------
// Raw protocol

int bc_connect(int port, int io_timeout_ms)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons((uint16_t)port) };
	struct timeval tv = { .tv_sec = io_timeout_ms / 1000,
			      .tv_usec = (io_timeout_ms % 1000) * 1000 };
	int one = 1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		int err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

int bc_send_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

uint8_t *bc_frame_build(uint32_t api_key, uint32_t api_version,
			uint64_t correlation_id,
			const ProtobufCMessage *body, const void *raw,
			size_t raw_len, size_t *len_out)
{
	Oxbow__RequestHeader h = OXBOW__REQUEST_HEADER__INIT;

	h.api_key = (Oxbow__ApiKey)api_key;
	h.api_version = api_version;
	h.correlation_id = correlation_id;
	h.client_id = "oxbow-itest";
	size_t hlen = oxbow__request_header__get_packed_size(&h);
	size_t blen = body ? protobuf_c_message_get_packed_size(body) : 0;
	size_t payload = OX_PAYLOAD_PREFIX_BYTES + blen + raw_len;
	size_t total = OX_FRAME_PREFIX_BYTES + hlen + payload;
	uint8_t *f = malloc(total);

	if (!f)
		bc_die("malloc frame", -ENOMEM);
	int rc = ox_frame_prefix_encode(f, hlen, payload);
	if (rc < 0)
		bc_die("ox_frame_prefix_encode", rc);
	uint8_t *p = f + OX_FRAME_PREFIX_BYTES;
	p += oxbow__request_header__pack(&h, p);
	ox_payload_prefix_encode(p, (uint32_t)blen);
	p += OX_PAYLOAD_PREFIX_BYTES;
	if (body)
		p += protobuf_c_message_pack(body, p);
	if (raw_len)
		memcpy(p, raw, raw_len);
	*len_out = total;
	return f;
}

// Reads exactly len bytes before the deadline. Returns 1, 0 on EOF or a
// reset, -ETIMEDOUT.
static int read_full(int fd, uint8_t *buf, size_t len, int64_t deadline)
{
	size_t got = 0;

	while (got < len) {
		int64_t left = deadline - bc_now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int pr = poll(&pfd, 1, (int)(left > 1000 ? 1000 : left));
		if (pr < 0 && errno != EINTR)
			return 0;
		if (pr <= 0)
			continue;
		ssize_t n = recv(fd, buf + got, len - got, 0);
		if (n == 0)
			return 0;
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN ||
			    errno == EWOULDBLOCK)
				continue;
			return 0; // ECONNRESET and friends: closed
		}
		got += (size_t)n;
	}
	return 1;
}

int bc_response_read(int fd, int timeout_ms, struct bc_response *r)
{
	int64_t deadline = bc_now_ms() + timeout_ms;
	uint8_t prefix[OX_FRAME_PREFIX_BYTES];
	uint32_t flen, hlen;

	memset(r, 0, sizeof(*r));
	int rc = read_full(fd, prefix, sizeof(prefix), deadline);
	if (rc <= 0)
		return rc;
	if (ox_frame_prefix_decode(prefix, sizeof(prefix), &flen, &hlen) < 0)
		return -OX_ECORRUPT;
	r->frame_len = flen - 4;
	r->frame = malloc(r->frame_len ? r->frame_len : 1);
	if (!r->frame)
		bc_die("malloc response", -ENOMEM);
	rc = read_full(fd, r->frame, r->frame_len, deadline);
	if (rc <= 0) {
		bc_response_free(r);
		// A frame cut short by a close is a malformed response.
		return rc == 0 ? -OX_ECORRUPT : rc;
	}
	r->header = oxbow__response_header__unpack(NULL, hlen, r->frame);
	if (!r->header ||
	    ox_payload_split(r->frame + hlen, r->frame_len - hlen, &r->body,
			     &r->body_len, &r->raw, &r->raw_len) < 0) {
		bc_response_free(r);
		return -OX_ECORRUPT;
	}
	return 1;
}

void bc_response_free(struct bc_response *r)
{
	if (r->header)
		oxbow__response_header__free_unpacked(r->header, NULL);
	free(r->frame);
	memset(r, 0, sizeof(*r));
}

size_t bc_batch_build(uint8_t *buf, size_t cap, uint64_t first_index,
		      uint32_t count, size_t value_len)
{
	struct ox_batch_params params = { .producer_id = OX_PRODUCER_NONE,
					   .producer_epoch = -1,
					   .base_sequence = OX_SEQUENCE_NONE };
	struct ox_batch_builder bb;
	uint8_t *value = malloc(value_len);
	size_t len = 0;

	if (!value)
		bc_die("malloc value", -ENOMEM);
	int rc = ox_batch_builder_init(&bb, buf, cap, &params);
	if (rc < 0)
		bc_die("ox_batch_builder_init", rc);
	for (uint32_t k = 0; k < count; k++) {
		bc_value_fill(value, first_index + k, value_len);
		struct ox_record r = { .key_len = -1,
				       .value = value,
				       .value_len = (int32_t)value_len,
				       .timestamp = bc_wall_ms() };
		rc = ox_batch_builder_add(&bb, &r);
		if (rc < 0)
			bc_die("ox_batch_builder_add", rc);
	}
	rc = ox_batch_builder_finish(&bb, &len);
	if (rc < 0)
		bc_die("ox_batch_builder_finish", rc);
	free(value);
	return len;
}

uint8_t *bc_produce_frame(uint64_t correlation_id, int acks,
			  const char *topic, uint32_t partition,
			  const void *batch, size_t len,
			  uint32_t declared_bytes, size_t *len_out)
{
	Oxbow__ProduceRequest req = OXBOW__PRODUCE_REQUEST__INIT;
	Oxbow__ProduceBatch pb = OXBOW__PRODUCE_BATCH__INIT;
	Oxbow__ProduceBatch *pbs[1] = { &pb };

	pb.topic = (char *)topic;
	pb.partition = partition;
	pb.bytes = declared_bytes;
	req.acks = (Oxbow__Acks)acks;
	req.timeout_ms = 10000;
	req.n_batches = 1;
	req.batches = pbs;
	return bc_frame_build(OXBOW__API_KEY__PRODUCE, 1, correlation_id,
			      &req.base, batch, len, len_out);
}

uint8_t *bc_fetch_frame(uint64_t correlation_id, const char *topic,
			uint32_t partition, int64_t offset, uint32_t max_bytes,
			uint32_t max_wait_ms, size_t *len_out)
{
	Oxbow__FetchRequest req = OXBOW__FETCH_REQUEST__INIT;
	Oxbow__FetchTarget t = OXBOW__FETCH_TARGET__INIT;
	Oxbow__FetchTarget *ts[1] = { &t };

	t.topic = (char *)topic;
	t.partition = partition;
	t.offset = offset;
	req.max_wait_ms = max_wait_ms;
	req.min_bytes = 1;
	req.max_bytes = max_bytes;
	req.n_targets = 1;
	req.targets = ts;
	return bc_frame_build(OXBOW__API_KEY__FETCH, 1, correlation_id,
			      &req.base, NULL, 0, len_out);
}

// ---------------------------------------------------------------------
// Recomputable record content

void bc_fill(uint8_t *buf, uint64_t index, size_t len)
{
	for (size_t i = 0; i < len; i += 8) {
		uint64_t h = bc_hash(index, i / 8);
		size_t n = len - i < 8 ? len - i : 8;
		for (size_t j = 0; j < n; j++)
			buf[i + j] = (uint8_t)(h >> (8 * j));
	}
}

bool bc_fill_check(const void *buf, uint64_t index, size_t len)
{
	const uint8_t *v = buf;

	if (len && !v)
		return false;
	for (size_t i = 0; i < len; i += 8) {
		uint64_t h = bc_hash(index, i / 8);
		size_t n = len - i < 8 ? len - i : 8;
		for (size_t j = 0; j < n; j++)
			if (v[i + j] != (uint8_t)(h >> (8 * j)))
				return false;
	}
	return true;
}

void bc_value_fill(uint8_t *buf, uint64_t index, size_t len)
{
	OX_ASSERT(len >= 8);
	ox_store_le64(buf, index);
	bc_fill(buf + 8, index, len - 8);
}

int64_t bc_value_check(const void *value, size_t len)
{
	if (!value || len < 8)
		return -1;
	uint64_t index = ox_load_le64(value);
	if (index > INT64_MAX ||
	    !bc_fill_check((const uint8_t *)value + 8, index, len - 8))
		return -1;
	return (int64_t)index;
}

// ---------------------------------------------------------------------
// Clusters

// A port the kernel just handed out; the node binds it right after (a
// small race with other processes, reported as a start-up failure).

void bc_cluster_start(struct bc_broker *nodes, int n, const char *tag,
		      const char *const *args)
{
	char peers[BC_CLUSTER_MAX * 32] = "";
	char listen[BC_CLUSTER_MAX][32], id[BC_CLUSTER_MAX][8];

	if (n < 1 || n > BC_CLUSTER_MAX)
		bc_dief("a cluster of %d nodes", n);
	for (int i = 0; i < n; i++) {
		size_t len = strlen(peers);

		snprintf(listen[i], sizeof(listen[i]), "127.0.0.1:%d",
			 pick_port());
		snprintf(peers + len, sizeof(peers) - len, "%s%d@%s",
			 i ? "," : "", i + 1, listen[i]);
		snprintf(id[i], sizeof(id[i]), "%d", i + 1);
	}
	for (int i = 0; i < n; i++) {
		const char *a[BC_ARGS_MAX + 8];
		int k = 0;

		a[k++] = "--node.id";
		a[k++] = id[i];
		a[k++] = "--peer.listen";
		a[k++] = listen[i];
		a[k++] = "--peers";
		a[k++] = peers;
		// Every node gets every extra pair.
		for (const char *const *x = args;
		     x && x[0] && x[1] && k < BC_ARGS_MAX; x += 2) {
			a[k++] = x[0];
			a[k++] = x[1];
		}
		a[k] = NULL;
		bc_broker_init(&nodes[i], tag, a);
	}
	for (int i = 0; i < n; i++)
		bc_broker_start(&nodes[i]);
	bc_cluster_settle(nodes, n);
}

void bc_cluster_settle(const struct bc_broker *nodes, int n)
{
	int64_t until = bc_now_ms() + 30000;

	for (int i = 0; i < n && n > 1; i++) {
		for (;;) {
			Oxbow__ClusterStatusResponse *r =
				bc_cluster_status(&nodes[i]);
			bool done = r != NULL && !r->rejoining &&
				    r->meta_leader > 0;

			if (r != NULL)
				oxbow__cluster_status_response__free_unpacked(
					r, NULL);
			if (done)
				break;
			if (bc_now_ms() > until)
				bc_dief("node %d still rejoining the cluster "
					"after 30 s", i + 1);
			bc_sleep_ms(20);
		}
	}
}

void bc_cluster_bootstrap(const struct bc_broker *nodes, int n, char *out,
			  size_t cap)
{
	size_t len = 0;

	out[0] = '\0';
	for (int i = 0; i < n && len < cap; i++)
		len += (size_t)snprintf(out + len, cap - len, "%s%s",
					i ? "," : "", nodes[i].bootstrap);
}

Oxbow__ClusterStatusResponse *bc_cluster_status(const struct bc_broker *b)
{
	Oxbow__ClusterStatusRequest req = OXBOW__CLUSTER_STATUS_REQUEST__INIT;
	Oxbow__ClusterStatusResponse *m = NULL;
	struct bc_response r;
	size_t len;
	int fd;

	if (b->pid <= 0 || (fd = bc_connect(b->port, 2000)) < 0)
		return NULL;
	uint8_t *frame = bc_frame_build(OXBOW__API_KEY__CLUSTER_STATUS, 1, 1,
					&req.base, NULL, 0, &len);
	if (bc_send_all(fd, frame, len) == 0 &&
	    bc_response_read(fd, 2000, &r) == 1) {
		if (r.header->error_code == 0)
			m = oxbow__cluster_status_response__unpack(
				NULL, r.body_len, r.body);
		bc_response_free(&r);
	}
	free(frame);
	close(fd);
	return m;
}

void bc_cluster_restart(struct bc_broker *nodes, int n)
{
	for (int i = 0; i < n; i++)
		bc_broker_spawn(&nodes[i]);
	for (int i = 0; i < n; i++)
		bc_broker_wait_ready(&nodes[i]);
}

int bc_broker_reap(struct bc_broker *b)
{
	int st;

	if (b->pid <= 0)
		return -1;
	if (waitpid(b->pid, &st, WNOHANG) != b->pid)
		return -1;
	b->pid = 0;
	return status_code(st);
}

bool bc_partition_status(const struct bc_broker *b, const char *topic,
			 int p, int *leader, int64_t *hw, int *in_sync,
			 int in_sync_max, int *n_in_sync)
{
	Oxbow__ClusterStatusResponse *m = bc_cluster_status(b);
	bool found = false;

	if (m == NULL)
		return false;
	for (size_t k = 0; k < m->n_partitions && !found; k++) {
		const Oxbow__PartitionStatus *ps = m->partitions[k];

		if (strcmp(ps->topic, topic) != 0 || ps->partition != p)
			continue;
		*leader = ps->leader;
		*hw = ps->high_watermark;
		*n_in_sync = (int)ps->n_in_sync;
		for (size_t i = 0; i < ps->n_in_sync && (int)i < in_sync_max;
		     i++)
			in_sync[i] = ps->in_sync[i];
		found = true;
	}
	oxbow__cluster_status_response__free_unpacked(m, NULL);
	return found;
}

int bc_meta_leader(const struct bc_broker *b)
{
	Oxbow__ClusterStatusResponse *m = bc_cluster_status(b);
	int leader;

	if (m == NULL)
		return -1;
	leader = m->meta_leader > 0 ? m->meta_leader : -1;
	oxbow__cluster_status_response__free_unpacked(m, NULL);
	return leader;
}

int bc_find_coordinator(const struct bc_broker *b, const char *group)
{
	Oxbow__FindCoordinatorRequest req =
		OXBOW__FIND_COORDINATOR_REQUEST__INIT;
	struct bc_response r;
	int node = -1;
	size_t len;
	int fd;

	if (b->pid <= 0 || (fd = bc_connect(b->port, 2000)) < 0)
		return -1;
	req.group = (char *)group;
	uint8_t *frame = bc_frame_build(OXBOW__API_KEY__FIND_COORDINATOR, 1, 1,
					&req.base, NULL, 0, &len);
	if (bc_send_all(fd, frame, len) == 0 &&
	    bc_response_read(fd, 2000, &r) == 1) {
		if (r.header->error_code == 0) {
			Oxbow__FindCoordinatorResponse *m =
				oxbow__find_coordinator_response__unpack(
					NULL, r.body_len, r.body);
			if (m != NULL) {
				node = m->node_id;
				oxbow__find_coordinator_response__free_unpacked(
					m, NULL);
			}
		}
		bc_response_free(&r);
	}
	free(frame);
	close(fd);
	return node;
}

int bc_dir_partitions(const char *topic_dir)
{
	struct dirent *de;
	int n = 0;
	DIR *d = opendir(topic_dir);

	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		char *end;

		errno = 0;
		(void)strtoull(de->d_name, &end, 10);
		n += de->d_name[0] >= '0' && de->d_name[0] <= '9' && !errno &&
		     !*end;
	}
	closedir(d);
	return n;
}

int bc_counts_in_sync(const struct bc_broker *nodes, int leader,
		      const char *topic, int q, int id)
{
	int l = -1, ids[BC_NODES_MAX], n = 0;
	int64_t hw;

	if (!bc_partition_status(&nodes[leader - 1], topic, q, &l, &hw, ids,
				 BC_NODES_MAX, &n) || l != leader)
		return -1;
	for (int k = 0; k < n && k < BC_NODES_MAX; k++)
		if (ids[k] == id)
			return 1;
	return 0;
}

bool bc_partitions_in_sync(const struct bc_broker *nodes, int n,
			   const char *topic, int partitions,
			   int64_t timeout_ms, const int64_t *at_least,
			   int64_t *end)
{
	int64_t start = bc_now_ms();

	while (bc_now_ms() - start < timeout_ms) {
		int settled = 0;

		for (int q = 0; q < partitions; q++) {
			int leader = -1, in_sync = 0, ok = 0;
			int64_t hw = -1;

			for (int i = 0; i < n; i++) {
				int l = -1, k = 0, ids[BC_NODES_MAX];
				int64_t h = -1;

				if (!bc_partition_status(&nodes[i], topic, q,
							 &l, &h, ids,
							 BC_NODES_MAX, &k) ||
				    l <= 0 || (i && (l != leader || h != hw)))
					break;
				leader = l;
				hw = h;
				ok++;
				if (l == i + 1)
					in_sync = k;
			}
			if (ok < n || in_sync != n ||
			    (at_least != NULL && hw < at_least[q]))
				break;
			if (end != NULL)
				end[q] = hw;
			settled++;
		}
		if (settled == partitions) {
			printf("every replica in sync after %" PRId64 " ms\n",
			       bc_now_ms() - start);
			return true;
		}
		bc_sleep_ms(50);
	}
	return false;
}

int bc_meta_agreed(const struct bc_broker *nodes, int n, int64_t timeout_ms)
{
	int64_t until = bc_now_ms() + timeout_ms;

	while (bc_now_ms() < until) {
		int leader = -1;
		bool same = true;

		for (int i = 0; i < n && same; i++) {
			Oxbow__ClusterStatusResponse *m =
				bc_cluster_status(&nodes[i]);
			int l = m != NULL ? m->meta_leader : -1;

			same = l > 0 && (leader < 0 || l == leader) &&
			       m->n_nodes == (size_t)n;
			leader = l;
			if (m != NULL)
				oxbow__cluster_status_response__free_unpacked(
					m, NULL);
		}
		if (same)
			return leader;
		bc_sleep_ms(20);
	}
	bc_dief("the nodes do not agree on a metadata leader");
}
