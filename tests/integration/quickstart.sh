#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# deploy/quickstart end to end on binaries already built and a base port
# this test picks: given OXBOWD and OXBOWCTL it installs and builds
# nothing; it starts three nodes that all run and see each other, creates
# demo with 3 partitions of 3 replicas, and the commands it prints (the
# OXBOW_BOOTSTRAP export and the consume line, run as printed) read the 5
# records it produced. A second run stops the cluster and starts it again
# on the same data: new processes, demo kept with its records. The
# printed stop command stops every node; misuse exits 2. Usage:
#   quickstart.sh QUICKSTART OXBOWD OXBOWCTL
# Exit 0 when every check held, 1 otherwise, 77 when a program is
# missing. Whatever it started is stopped on any exit.
set -u

QS=${1:-}
export OXBOWD=${2:-}
export OXBOWCTL=${3:-}
CMD_TIMEOUT=120

if [[ ! -x $QS || ! -x $OXBOWD || ! -x $OXBOWCTL ]]; then
	echo "quickstart: SKIP: a program is missing ($QS, $OXBOWD, $OXBOWCTL)"
	exit 77
fi
if ! command -v python3 >/dev/null || ! command -v setsid >/dev/null; then
	echo "quickstart: SKIP: python3 or setsid is missing"
	exit 77
fi
LC=$(dirname "$QS")/local-cluster

root=$(mktemp -d /tmp/ox-qs-XXXXXX)
dir=$root/qs
# quickstart must not build: this directory must never appear.
export BUILD_DIR=$root/build
unset OXBOW_BOOTSTRAP
failures=0

cleanup() {
	local f
	timeout 60 "$LC" stop "$dir" >/dev/null 2>&1
	# Should stop have failed, no node may outlive the test.
	for f in "$dir"/n*/oxbowd.pid; do
		[[ -f $f ]] && kill -KILL "$(<"$f")" 2>/dev/null
	done
	if ((failures)) || [[ -n ${OX_TEST_KEEP:-} ]]; then
		echo "quickstart: kept $root"
		for f in "$dir"/n*/oxbowd.log; do
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

alive() {
	[[ -n $1 ]] && [[ -n $(tr -d '\0' 2>/dev/null <"/proc/$1/cmdline") ]]
}

pids() {
	local n
	for n in 1 2 3; do
		cat "$dir/n$n/oxbowd.pid" 2>/dev/null || echo -
	done | tr '\n' ' '
}

# The line of the quickstart's output $qs_out that starts (after its
# indentation) with $1.
printed() {
	sed -n "s/^  \\($1.*\\)/\\1/p" <<<"$qs_out" | head -n 1
}

# Runs the printed export and consume lines; checks the 5 records.
consume_printed() {
	local exp cons got
	exp=$(printed "export OXBOW_BOOTSTRAP=")
	cons=$(grep -m 1 "^  .* consume demo --from-beginning --format json$" <<<"$qs_out" | sed 's/^  //')
	if [[ -z $exp || -z $cons ]]; then
		fail "$1: no export or consume command printed: $qs_out"
		return
	fi
	got=$(timeout "$CMD_TIMEOUT" bash -c "$exp; $cons" 2>"$root/stderr")
	python3 -c '
import json, sys
want = sorted([
    ("ada", {"user": "ada", "action": "login"}),
    ("grace", {"user": "grace", "action": "login"}),
    ("ada", {"user": "ada", "action": "view", "page": "/docs"}),
    ("linus", {"user": "linus", "action": "login"}),
    ("grace", {"user": "grace", "action": "logout"}),
], key=repr)
got = sorted([(r["key"], json.loads(r["value"]))
              for r in map(json.loads, sys.stdin.read().splitlines())],
             key=repr)
assert got == want, got
' <<<"$got" || fail "$1: the printed consume read: $got (stderr: $(cat "$root/stderr"))"
}

# Checks the cluster status: three reachable nodes, demo with 3
# partitions of 3 replicas each, every one with a leader.
check_cluster() {
	local boot=127.0.0.1:$base,127.0.0.1:$((base + 10)),127.0.0.1:$((base + 20))
	run "$OXBOWCTL" --bootstrap "$boot" cluster status --format json
	expect 0 "$1: cluster status"
	python3 -c '
import json, sys
s = json.load(sys.stdin)
assert sorted(n["id"] for n in s["nodes"]) == [1, 2, 3], s
assert all(n["reachable"] for n in s["nodes"]), s
assert s["meta_leader"] in (1, 2, 3), s
demo = [p for p in s["partitions"] if p["topic"] == "demo"]
assert sorted(p["partition"] for p in demo) == [0, 1, 2], s
assert all(sorted(p["replicas"]) == [1, 2, 3] for p in demo), s
assert all(p["leader"] in (1, 2, 3) for p in demo), s
' <<<"$out" || fail "$1: cluster status json: $out"
}

base=$(free_base 3) || {
	fail "no free port range for three nodes"
	exit 1
}

# --- first run: a new cluster and the demo topic
OXBOW_PORT=$base run "$QS" "$dir"
expect 0 "quickstart"
qs_out=$out
[[ -e $BUILD_DIR ]] && fail "quickstart built into $BUILD_DIR though OXBOWD and OXBOWCTL were given"
grep -q "^quickstart: produced 5 records to demo" <<<"$out" ||
	fail "quickstart did not produce the demo records: $out"
first=$(pids)
for n in 1 2 3; do
	pid=$(cat "$dir/n$n/oxbowd.pid" 2>/dev/null)
	alive "$pid" || fail "node $n (pid '$pid') does not run after quickstart"
	grep -qx "listen = 127.0.0.1:$((base + 10 * (n - 1)))" "$dir/n$n/oxbowd.conf" ||
		fail "node $n's config: $(cat "$dir/n$n/oxbowd.conf" 2>&1)"
done
check_cluster "first run"
consume_printed "first run"
for want in "topic describe demo" "cluster status" "local-cluster kill $dir 2" \
	"local-cluster start-node $dir 2" "local-cluster stop $dir"; do
	grep -qF -- "$want" <<<"$qs_out" || fail "quickstart does not print '$want': $qs_out"
done

# --- second run: the same cluster again, on its data
OXBOW_PORT=$base run "$QS" "$dir"
expect 0 "quickstart run again"
qs_out=$out
grep -q "^quickstart: topic demo kept from the last run" <<<"$out" ||
	fail "the second run did not keep demo: $out"
second=$(pids)
for n in 1 2 3; do
	pid=$(cat "$dir/n$n/oxbowd.pid" 2>/dev/null)
	alive "$pid" || fail "node $n (pid '$pid') does not run after the second run"
done
for p in $first; do
	alive "$p" && fail "pid $p of the first run still runs (pids now: $second)"
done
check_cluster "second run"
consume_printed "second run"

# --- misuse, while the cluster runs
OXBOW_PORT=nope run "$QS" "$root/x"
expect 2 "OXBOW_PORT=nope"
OXBOW_PORT=$base run "$QS" "$root/x" "$root/y"
expect 2 "two directories"
[[ ! -e $root/x ]] || fail "misuse created $root/x"
# The base port is taken by the running cluster.
OXBOW_PORT=$base run "$QS" "$root/z"
expect 1 "a base port in use"
[[ $err == *"already listens"* ]] || fail "a base port in use: $err"

# --- the printed stop command
stop=$(printed "[^ ]*local-cluster stop ")
if [[ -n $stop ]]; then
	run bash -c "$stop"
	expect 0 "the printed stop command"
	for p in $second; do
		alive "$p" && fail "pid $p runs after the printed stop command"
	done
else
	fail "no stop command printed: $qs_out"
fi

if ((failures)); then
	echo "quickstart: $failures check(s) FAILED"
	exit 1
fi
echo "quickstart: ok"
