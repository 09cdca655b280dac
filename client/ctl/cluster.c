// SPDX-License-Identifier: Apache-2.0
//
// `oxbowctl cluster status`: the cluster as one broker sees it, through
// liboxbow's ox_admin_cluster_status: who leads the metadata (and in which
// term), every node with its client and peer addresses and whether the
// answering node reaches it, and every partition with its leader,
// replicas, in-sync replicas and high watermark (marked `moving` while a
// reassignment moves it), led by a count of the partitions that are
// under-replicated or have no leader. As a table for people (the
// default) or as one JSON object for scripts. It changes nothing in the
// cluster.
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client/ctl/ctl.h"
#include "client/ctl/json.h"

static const char cluster_help[] =
	"usage: oxbowctl cluster SUBCOMMAND ...\n"
	"  status [--format text|json]   metadata leader, nodes, partitions\n"
	"Run `oxbowctl cluster SUBCOMMAND --help` for details.\n";

static const char status_help[] =
	"usage: oxbowctl cluster status [--format text|json]\n"
	"Prints the cluster as the first broker that answers sees it: the\n"
	"metadata leader and its term, every node (id, client address, peer\n"
	"address, whether the answering node reaches it), and every partition\n"
	"(leader, replicas, in-sync replicas, high watermark) after a count of\n"
	"those that are under-replicated (fewer in-sync replicas than replicas)\n"
	"or have no leader. A leader of -1 or `-` means none is known. A\n"
	"partition being moved to other nodes (`oxbowctl topic reassign`) ends\n"
	"in `moving`, its replicas then being where it goes.\n"
	"  --format text   tables for people (the default)\n"
	"  --format json   one JSON object on one line: answering_node,\n"
	"                  meta_leader, meta_term, rejoining, nodes [{id, address,\n"
	"                  peer_address, reachable}], partitions [{topic,\n"
	"                  partition, leader, replicas, in_sync, high_watermark,\n"
	"                  moving}],\n"
	"                  under_replicated, without_leader\n";

enum { OPT_FORMAT = OX_CTL_OPT_FIRST_LOCAL };

struct status_opts {
	int json; // 0: text
};

static int status_flag(struct ox_ctl *ctl, int opt, char *arg, void *opts)
{
	struct status_opts *o = opts;

	(void)opt; // --format is the only option of its own
	if (strcmp(arg, "text") == 0)
		o->json = 0;
	else if (strcmp(arg, "json") == 0)
		o->json = 1;
	else
		return ox_ctl_misuse(ctl, "--format wants text or json, not '%s'",
				     arg);
	return -1;
}

static const struct option status_options[] = {
	OX_CTL_GLOBAL_OPTIONS,
	{ "format", required_argument, NULL, OPT_FORMAT },
	{ NULL, 0, NULL, 0 },
};

static const struct ox_ctl_cmdline status_cmdline = {
	status_options, status_help, status_flag, 0, 0, "argument"
};

// Partitions with fewer in-sync replicas than replicas, and without leader.
static void status_counts(const struct ox_cluster_status *s,
			  size_t *under_replicated, size_t *leaderless)
{
	*under_replicated = 0;
	*leaderless = 0;
	for (size_t i = 0; i < s->partition_count; i++) {
		const struct ox_partition_status *p = &s->partitions[i];
		if (p->in_sync_count < p->replica_count)
			(*under_replicated)++;
		if (p->leader < 0)
			(*leaderless)++;
	}
}

// Node ids as "1,2,3" ("-" for none) into buf, always NUL-terminated; a
// list too long for buf ends in "...".
static const char *ids_text(char *buf, size_t size, const int32_t *ids,
			    size_t n)
{
	size_t used = 0;

	if (n == 0)
		return "-";
	buf[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		int w = snprintf(buf + used, size - used, "%s%d", i ? "," : "",
				 (int)ids[i]);
		if (w < 0 || (size_t)w >= size - used) {
			snprintf(buf + (size > 4 ? size - 4 : 0),
				 size > 4 ? 4 : size, "...");
			break;
		}
		used += (size_t)w;
	}
	return buf;
}

static const char *or_dash(const char *s)
{
	return s != NULL && s[0] != '\0' ? s : "-";
}

// The width of a column: its heading or its widest value.
static int width_max(int w, const char *s)
{
	size_t n = strlen(s);

	return n > (size_t)w ? (n > 200 ? 200 : (int)n) : w;
}

static void print_nodes(const struct ox_cluster_status *s)
{
	int wa = (int)strlen("address"), wp = (int)strlen("peer");

	for (size_t i = 0; i < s->node_count; i++) {
		wa = width_max(wa, or_dash(s->nodes[i].address));
		wp = width_max(wp, or_dash(s->nodes[i].peer_address));
	}
	printf("nodes:\n  %-4s  %-*s  %-*s  %s\n", "id", wa, "address", wp,
	       "peer", "reachable");
	for (size_t i = 0; i < s->node_count; i++) {
		const struct ox_node_status *n = &s->nodes[i];
		printf("  %-4d  %-*s  %-*s  %s\n", (int)n->node_id, wa,
		       or_dash(n->address), wp, or_dash(n->peer_address),
		       n->reachable ? "yes" : "no");
	}
}

static void print_partitions(const struct ox_cluster_status *s)
{
	// A replica list of up to 16 ids of 11 characters and commas.
	char replicas[192], in_sync[192];
	int wt = (int)strlen("topic");

	for (size_t i = 0; i < s->partition_count; i++)
		wt = width_max(wt, s->partitions[i].topic);
	printf("%-*s  %-9s  %-6s  %-10s  %-10s  %s\n", wt, "topic",
	       "partition", "leader", "replicas", "in-sync", "high-watermark");
	for (size_t i = 0; i < s->partition_count; i++) {
		const struct ox_partition_status *p = &s->partitions[i];
		char leader[16];
		snprintf(leader, sizeof(leader), "%d", (int)p->leader);
		// The table's columns stay as they were; a move only adds
		// a word at the end, so scripts reading columns go on working.
		printf("%-*s  %-9d  %-6s  %-10s  %-10s  %lld%s\n", wt, p->topic,
		       (int)p->partition, p->leader < 0 ? "-" : leader,
		       ids_text(replicas, sizeof(replicas), p->replicas,
				p->replica_count),
		       ids_text(in_sync, sizeof(in_sync), p->in_sync,
				p->in_sync_count),
		       (long long)p->high_watermark,
		       p->moving ? "  moving" : "");
	}
}

static void print_text(const struct ox_cluster_status *s)
{
	size_t under, leaderless;

	status_counts(s, &under, &leaderless);
	if (s->meta_leader >= 0)
		printf("metadata leader: node %d (term %llu)\n",
		       (int)s->meta_leader, (unsigned long long)s->meta_term);
	else
		printf("metadata leader: none (term %llu)\n",
		       (unsigned long long)s->meta_term);
	printf("answering node: %d%s\n", (int)s->answering_node,
	       s->rejoining ? " (rejoining: catching up before it votes)" : "");
	print_nodes(s);
	printf("partitions: %zu (%zu under-replicated, %zu without leader)\n",
	       s->partition_count, under, leaderless);
	print_partitions(s);
}

static void json_ids(const int32_t *ids, size_t n)
{
	putchar('[');
	for (size_t i = 0; i < n; i++)
		printf("%s%d", i ? "," : "", (int)ids[i]);
	putchar(']');
}

static void print_json(const struct ox_cluster_status *s)
{
	size_t under, leaderless;

	status_counts(s, &under, &leaderless);
	printf("{\"answering_node\":%d,\"meta_leader\":%d,\"meta_term\":%llu,"
	       "\"rejoining\":%s,\"nodes\":[",
	       (int)s->answering_node, (int)s->meta_leader,
	       (unsigned long long)s->meta_term,
	       s->rejoining ? "true" : "false");
	for (size_t i = 0; i < s->node_count; i++) {
		const struct ox_node_status *n = &s->nodes[i];
		printf("%s{\"id\":%d,\"address\":", i ? "," : "",
		       (int)n->node_id);
		ox_ctl_json_write_string(stdout, n->address, strlen(n->address));
		fputs(",\"peer_address\":", stdout);
		ox_ctl_json_write_string(stdout, n->peer_address,
					 strlen(n->peer_address));
		printf(",\"reachable\":%s}", n->reachable ? "true" : "false");
	}
	fputs("],\"partitions\":[", stdout);
	for (size_t i = 0; i < s->partition_count; i++) {
		const struct ox_partition_status *p = &s->partitions[i];
		printf("%s{\"topic\":", i ? "," : "");
		ox_ctl_json_write_string(stdout, p->topic, strlen(p->topic));
		printf(",\"partition\":%d,\"leader\":%d,\"replicas\":",
		       (int)p->partition, (int)p->leader);
		json_ids(p->replicas, p->replica_count);
		fputs(",\"in_sync\":", stdout);
		json_ids(p->in_sync, p->in_sync_count);
		printf(",\"high_watermark\":%lld,\"moving\":%s}",
		       (long long)p->high_watermark,
		       p->moving ? "true" : "false");
	}
	printf("],\"under_replicated\":%zu,\"without_leader\":%zu}\n", under,
	       leaderless);
}

static int cluster_status(struct ox_ctl *ctl, int argc, char **argv)
{
	struct status_opts o = { .json = 0 };
	struct ox_cluster_status *s = NULL;
	int pos, exit_code;
	int rc = ox_ctl_parse(ctl, argc, argv, &status_cmdline, &o, &pos);
	if (rc >= 0)
		return rc;
	struct ox_admin *admin = ox_ctl_admin(ctl, &exit_code);
	if (admin == NULL)
		return exit_code;
	rc = ox_admin_cluster_status(admin, &s);
	if (rc != 0) {
		exit_code = ox_ctl_report(ctl, rc, NULL, NULL,
					  ox_admin_last_error(admin),
					  "asking for the cluster status");
		ox_admin_destroy(admin);
		return exit_code;
	}
	if (o.json)
		print_json(s);
	else
		print_text(s);
	ox_cluster_status_free(s);
	ox_admin_destroy(admin);
	if (fflush(stdout) != 0 || ferror(stdout))
		return ox_ctl_fail("writing to stdout: %s", strerror(errno));
	return OX_CTL_EXIT_OK;
}

int ox_ctl_cluster(struct ox_ctl *ctl, int argc, char **argv)
{
	static const struct ox_ctl_subcommand subs[] = {
		{ "status", "cluster status", cluster_status },
	};
	return ox_ctl_dispatch(ctl, argc, argv, "cluster", cluster_help, subs,
			       sizeof(subs) / sizeof(subs[0]));
}
