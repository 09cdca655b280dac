// SPDX-License-Identifier: Apache-2.0
//
// oxbowd: one Oxbow broker node. Parses the configuration (exit 2 on a
// bad one), creates the io loop (io_uring, or the sync backend where
// io_uring is unavailable) and the server (exit 1 if it cannot start, a
// locked data.dir among the reasons), then runs the loop until SIGTERM or
// SIGINT, which arrive through a signalfd polled by the loop. On a signal
// it stops the server in order (see server.h) and exits 0.
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "broker/io/io.h"
#include "broker/server/config.h"
#include "broker/server/server.h"
#include "broker/slog/slog.h"
#include "proto/error.h"

struct sigwatch {
	struct ox_io *io;
	int fd;
	int signo;  // the first stop signal seen, 0 before
	bool armed;
};

static void sig_arm(struct sigwatch *w);

static void sig_ready(void *arg, int res)
{
	struct sigwatch *w = arg;
	struct signalfd_siginfo si;

	w->armed = false;
	if (res < 0)
		return; // the loop is going away
	while (read(w->fd, &si, sizeof(si)) == (ssize_t)sizeof(si))
		if (w->signo == 0)
			w->signo = (int)si.ssi_signo;
	if (w->signo == 0)
		sig_arm(w);
}

static void sig_arm(struct sigwatch *w)
{
	int rc = ox_io_poll(w->io, w->fd, POLLIN, sig_ready, w);
	if (rc == 0)
		w->armed = true;
	else
		ox_slog(OX_SLOG_ERROR, "cannot watch for signals error=\"%s\"",
			ox_strerror(rc));
}

static int sig_open(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	// Blocked, so they queue on the signalfd instead of killing us.
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -errno;
	int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

static int io_open(const struct ox_config *cfg, struct ox_io **io)
{
	// Room for the appends of many partitions, their peers' traffic and
	// the clients' sockets at once: a full pool makes submissions wait.
	struct ox_io_opts opts = {.backend = cfg->io_backend,
				  .entries = 1024, .ops_max = 16384};
	int rc = ox_io_create(io, &opts);
	if (rc < 0 && cfg->io_backend == OX_IO_BACKEND_URING) {
		ox_slog(OX_SLOG_WARN, "io_uring is unavailable, using the sync "
			"backend error=\"%s\"", ox_strerror(rc));
		opts.backend = OX_IO_BACKEND_SYNC;
		rc = ox_io_create(io, &opts);
	}
	return rc;
}

int main(int argc, char **argv)
{
	static struct ox_config cfg; // large: keep it off the stack
	char err[OX_CONFIG_ERR_MAX] = "";
	struct ox_server *srv = NULL;
	struct ox_io *io = NULL;
	bool help;

	ox_config_default(&cfg);
	if (ox_config_parse_args(&cfg, argc, argv, &help, err, sizeof(err)) < 0 ||
	    (!help && ox_config_check(&cfg, err, sizeof(err)) < 0)) {
		fprintf(stderr, "oxbowd: %s\n", err);
		return 2;
	}
	if (help) {
		ox_config_help(stdout);
		return 0;
	}
	struct sigwatch w = {.fd = sig_open()};
	if (w.fd < 0) {
		fprintf(stderr, "oxbowd: cannot set up signal handling: %s\n",
			ox_strerror(w.fd));
		return 1;
	}
	int rc = io_open(&cfg, &io);
	if (rc < 0) {
		fprintf(stderr, "oxbowd: cannot create the io loop: %s\n",
			ox_strerror(rc));
		return 1;
	}
	w.io = io;
	rc = ox_server_create(&srv, io, &cfg, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "oxbowd: %s\n", err);
		ox_io_destroy(io);
		return 1;
	}
	sig_arm(&w);
	while (!(srv && w.signo != 0 && ox_server_stopped(srv))) {
		rc = ox_io_run(io, 1);
		if (rc < 0) {
			ox_slog(OX_SLOG_ERROR, "the io loop failed error=\"%s\"",
				ox_strerror(rc));
			break;
		}
		ox_server_poll(srv);
		if (w.signo != 0)
			ox_server_shutdown(srv);
	}
	ox_slog(OX_SLOG_INFO, "stopping signal=%s",
		w.signo ? strsignal(w.signo) : "none");
	rc = ox_server_destroy(srv);
	ox_io_destroy(io); // runs the signal watch's callback, if armed
	close(w.fd);
	if (rc < 0) {
		ox_slog(OX_SLOG_ERROR, "closing a log failed error=\"%s\"",
			ox_strerror(rc));
		return 1;
	}
	ox_slog(OX_SLOG_INFO, "oxbowd: node %d stopped", cfg.node_id);
	return 0;
}
