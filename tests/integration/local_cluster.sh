#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# deploy/local-cluster end to end with a one-node cluster on ports this
# test picks: start prints the bootstrap list last and the node answers
# `cluster status` as metadata leader; a second start is refused; status
# shows the node; kill --signal STOP pauses it and CONT resumes it; kill
# (SIGKILL) and start-node bring it back on its data with every
# acknowledged record; stop ends it; misuse exits 2. Then three nodes:
# start waits for a metadata leader, killing it brings another, and the
# killed node comes back with start-node and finds the leader. Usage:
#   local_cluster.sh LOCAL_CLUSTER OXBOWD OXBOWCTL
# (BUILD_DIR may name the build directory; the script is given the
# binaries, so nothing is built.) Exit 0 when every check held, 1
# otherwise, 77 when a program is missing. Whatever it started is stopped
# on any exit.
set -u

LC=${1:-}
export OXBOWD=${2:-}
export OXBOWCTL=${3:-}
CMD_TIMEOUT=120

if [[ ! -x $LC || ! -x $OXBOWD || ! -x $OXBOWCTL ]]; then
	echo "local-cluster: SKIP: a program is missing ($LC, $OXBOWD, $OXBOWCTL)"
	exit 77
fi
if ! command -v python3 >/dev/null || ! command -v setsid >/dev/null; then
	echo "local-cluster: SKIP: python3 or setsid is missing"
	exit 77
fi

root=$(mktemp -d /tmp/ox-lc-XXXXXX)
dirs=()
failures=0

cleanup() {
	local d f
	for d in "${dirs[@]}"; do
		timeout 60 "$LC" stop "$d" >/dev/null 2>&1
		# Should stop have failed, no node may outlive the test.
		for f in "$d"/n*/oxbowd.pid; do
			[[ -f $f ]] && kill -KILL "$(<"$f")" 2>/dev/null
		done
	done
	if ((failures)) || [[ -n ${OX_TEST_KEEP:-} ]]; then
		echo "local-cluster: kept $root"
		for f in "$root"/*/n*/oxbowd.log; do
			[[ -f $f ]] || continue
			echo "--- $f" >&2
			tail -c 2048 "$f" >&2
		done
	else
		rm -rf "$root"
	fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# fail, run, expect, free_base
source "$(dirname "${BASH_SOURCE[0]}")/script_lib.sh"

pid_of() {
	cat "$1/n$2/oxbowd.pid" 2>/dev/null
}

alive() {
	[[ -n $1 ]] && [[ -n $(tr -d '\0' 2>/dev/null <"/proc/$1/cmdline") ]]
}

# --- one node
dir=$root/one
dirs+=("$dir")
base=$(free_base 1) || {
	fail "no free port range"
	exit 1
}
run "$LC" start "$dir" --nodes 1 --base-port "$base"
expect 0 "start --nodes 1"
boot=$(tail -n 1 <<<"$out")
[[ $boot == "127.0.0.1:$base" ]] ||
	fail "start's last line is '$boot', not 127.0.0.1:$base"
if ! grep -qx "node.id = 1" "$dir/n1/oxbowd.conf" ||
	! grep -qx "listen = 127.0.0.1:$base" "$dir/n1/oxbowd.conf" ||
	! grep -qx "peer.listen = 127.0.0.1:$((base + 1))" "$dir/n1/oxbowd.conf" ||
	! grep -qx "data.dir = $dir/n1/data" "$dir/n1/oxbowd.conf"; then
	fail "n1/oxbowd.conf: $(cat "$dir/n1/oxbowd.conf")"
fi
[[ -f $dir/n1/data/ready && -s $dir/n1/oxbowd.log ]] ||
	fail "no ready file or log under $dir/n1"
pid=$(pid_of "$dir" 1)
alive "$pid" || fail "node 1 (pid '$pid') does not run after start"

run "$OXBOWCTL" --bootstrap "$boot" cluster status --format json
expect 0 "cluster status of the started node"
python3 -c '
import json, sys
s = json.load(sys.stdin)
assert s["meta_leader"] == 1, s
assert [n["id"] for n in s["nodes"]] == [1], s
' <<<"$out" || fail "cluster status json: $out"

run "$LC" start "$dir" --nodes 1 --base-port "$base"
expect 1 "a second start of a running cluster"
if [[ $(pid_of "$dir" 1) != "$pid" ]] || ! alive "$pid"; then
	fail "the refused start touched node 1"
fi

run "$LC" status "$dir"
expect 0 "status"
grep -q "^node 1: pid $pid, running, ready yes, client 127.0.0.1:$base$" <<<"$out" ||
	fail "status lacks node 1 running and ready: $out"
grep -q "^metadata leader: node 1 " <<<"$out" ||
	fail "status lacks the cluster status: $out"

# Records acknowledged before a SIGKILL are there after start-node.
run "$OXBOWCTL" --bootstrap "$boot" topic create lc --partitions 2
expect 0 "topic create"
out=$(printf 'a\nb\nc\n' | timeout "$CMD_TIMEOUT" "$OXBOWCTL" \
	--bootstrap "$boot" produce lc --acks all 2>"$root/stderr")
rc=$?
err=$(cat "$root/stderr")
expect 0 "produce"

run "$LC" kill "$dir" 1 --signal STOP
expect 0 "kill --signal STOP"
run "$LC" status "$dir"
grep -q "^node 1: pid $pid, paused" <<<"$out" ||
	fail "status of a paused node: $out"
run "$LC" kill "$dir" 1 --signal CONT
expect 0 "kill --signal CONT"

run "$LC" kill "$dir" 1
expect 0 "kill (SIGKILL)"
alive "$pid" && fail "node 1 (pid $pid) runs after kill"
run "$LC" status "$dir"
expect 1 "status with no node running"
grep -q "^node 1: pid -, not running, ready no" <<<"$out" ||
	fail "status of a killed node: $out"
run "$OXBOWCTL" --bootstrap "$boot" cluster status
expect 1 "cluster status of a killed node"
run "$LC" kill "$dir" 1
expect 1 "kill of a node that does not run"

run "$LC" start-node "$dir" 1
expect 0 "start-node"
pid2=$(pid_of "$dir" 1)
if ! alive "$pid2" || [[ $pid2 == "$pid" ]]; then
	fail "start-node: pid '$pid2' (was $pid)"
fi
run "$LC" start-node "$dir" 1
expect 1 "start-node of a running node"
run "$OXBOWCTL" --bootstrap "$boot" consume lc --from-beginning --count 3 \
	--timeout-ms 20000
expect 0 "consume after start-node"
[[ $(sort <<<"$out" | tr '\n' ' ') == "a b c " ]] ||
	fail "after SIGKILL and start-node, consume printed: $out"

# --- misuse
run "$LC" start "$root/x" --nodes zero
expect 2 "start --nodes zero"
[[ $err == *usage:* ]] || fail "misuse prints no usage: $err"
run "$LC" start "$root/x" --base-port 65530
expect 2 "a base port without room"
run "$LC" start "$root/x" --bogus
expect 2 "start with an unknown flag"
run "$LC" kill "$dir"
expect 2 "kill without a node"
run "$LC" kill "$dir" 1 --signal HUP
expect 2 "kill --signal HUP"
run "$LC" start-node "$dir"
expect 2 "start-node without a node"
run "$LC" frob "$dir"
expect 2 "an unknown command"
run "$LC"
expect 2 "no command"
[[ ! -e $root/x ]] || fail "misuse created $root/x"

run "$LC" stop "$dir"
expect 0 "stop"
alive "$pid2" && fail "node 1 (pid $pid2) runs after stop"
[[ -f $dir/n1/oxbowd.pid ]] && fail "stop left the pid file"

# --- three nodes: a leader, losing it, another one, the old one back

# leader_seen_by N OLD: waits up to 30 s until node N reports a metadata
# leader other than OLD (OLD may be ""); sets $new to it or to "".
leader_seen_by() {
	local port=$((base + 10 * ($1 - 1)))
	for ((i = 0; i < 300; i++)); do
		new=$(timeout 10 "$OXBOWCTL" --bootstrap "127.0.0.1:$port" \
			cluster status 2>/dev/null |
			sed -n 's/^metadata leader: node \([0-9]*\) .*/\1/p')
		[[ -n $new && $new != "$2" ]] && return 0
		sleep 0.1
	done
	new=
	return 1
}

dir=$root/three
dirs+=("$dir")
base=$(free_base 3) || {
	fail "no free port range for three nodes"
	exit 1
}
run "$LC" start "$dir" --nodes 3 --base-port "$base"
expect 0 "start --nodes 3"
want="127.0.0.1:$base,127.0.0.1:$((base + 10)),127.0.0.1:$((base + 20))"
[[ $(tail -n 1 <<<"$out") == "$want" ]] ||
	fail "start --nodes 3 printed last: $(tail -n 1 <<<"$out")"
grep -qx "peers = 1@127.0.0.1:$((base + 1)),2@127.0.0.1:$((base + 11)),3@127.0.0.1:$((base + 21))" \
	"$dir/n2/oxbowd.conf" || fail "n2 peers: $(cat "$dir/n2/oxbowd.conf")"
grep -qx "listen = 127.0.0.1:$((base + 20))" "$dir/n3/oxbowd.conf" ||
	fail "n3 listen: $(cat "$dir/n3/oxbowd.conf")"
run "$LC" status "$dir"
expect 0 "status of three nodes"
[[ $(grep -c "^node [123]: pid [0-9]*, running, ready yes" <<<"$out") == 3 ]] ||
	fail "status of three nodes: $out"
run "$OXBOWCTL" --bootstrap "$want" cluster status --format json
expect 0 "cluster status of three nodes"
leader=$(python3 -c '
import json, sys
s = json.load(sys.stdin)
assert sorted(n["id"] for n in s["nodes"]) == [1, 2, 3], s
assert all(n["reachable"] for n in s["nodes"]), s
print(s["meta_leader"])' <<<"$out") || fail "three-node cluster status: $out"
if [[ $leader =~ ^[123]$ ]]; then
	run "$LC" kill "$dir" "$leader"
	expect 0 "kill the metadata leader"
	other=$((leader % 3 + 1))
	leader_seen_by "$other" "$leader" ||
		fail "node $other sees no new metadata leader after node $leader was killed"
	run "$LC" start-node "$dir" "$leader"
	expect 0 "start-node of the old metadata leader"
	leader_seen_by "$leader" "" ||
		fail "node $leader, started again, sees no metadata leader"
else
	fail "three nodes report metadata leader '$leader'"
fi
run "$LC" stop "$dir"
expect 0 "stop three nodes"
for n in 1 2 3; do
	[[ -f $dir/n$n/oxbowd.pid ]] && fail "stop left node $n's pid file"
done

if ((failures)); then
	echo "local-cluster: $failures check(s) FAILED"
	exit 1
fi
echo "local-cluster: ok"
