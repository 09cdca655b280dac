#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# oxbowctl end to end against one oxbowd: topic create, list, describe,
# config and delete; cluster status as text and JSON (the node leads its
# own metadata and every partition); produce from stdin and consume
# --from-beginning --count N --format json; group reset, describe, list
# and a consume that resumes from the reset; the exit codes of the
# contract (1 for an unknown topic and an unreachable broker, 2 for
# misuse). Usage:
#   broker_cli.sh OXBOWD OXBOWCTL
# Exit 0 when every check held, 1 otherwise, 77 when a binary is missing.
# Every command runs under `timeout`, and oxbowd is killed on any exit.
set -u

OXBOWD=${1:-}
OXBOWCTL=${2:-}
CMD_TIMEOUT=60
READY_TRIES=600 # 100 ms apart

if [[ ! -x $OXBOWD || ! -x $OXBOWCTL ]]; then
	echo "broker-cli: SKIP: oxbowd or oxbowctl missing ($OXBOWD, $OXBOWCTL)"
	exit 77
fi

root=$(mktemp -d /tmp/ox-cli-XXXXXX)
pid=
failures=0

cleanup() {
	if [[ -n $pid ]]; then
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	fi
	if ((failures)) || [[ -n ${OX_TEST_KEEP:-} ]]; then
		echo "broker-cli: kept $root"
		tail -c 4096 "$root/oxbowd.log" >&2 2>/dev/null
	else
		rm -rf "$root"
	fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# fail, run, expect
source "$(dirname "${BASH_SOURCE[0]}")/script_lib.sh"

mkdir "$root/data"
"$OXBOWD" --data.dir "$root/data" --listen 127.0.0.1:0 --node.id 1 \
	>"$root/oxbowd.log" 2>&1 &
pid=$!
port=
for ((i = 0; i < READY_TRIES; i++)); do
	if [[ -f $root/data/ready ]]; then
		port=$(sed -n 's/^client=.*:\([0-9][0-9]*\)$/\1/p' "$root/data/ready")
		[[ -n $port ]] && break
	fi
	if ! kill -0 "$pid" 2>/dev/null; then
		fail "oxbowd exited before it was ready"
		exit 1
	fi
	sleep 0.1
done
if [[ -z $port ]]; then
	fail "oxbowd not ready"
	exit 1
fi
echo "broker-cli: oxbowd pid $pid on 127.0.0.1:$port"
export OXBOW_BOOTSTRAP=127.0.0.1:$port

# ctl ARGS...: runs oxbowctl; output in $out, stderr in $err, status in $rc.
ctl() {
	run "$OXBOWCTL" "$@"
}

# --- topics
ctl topic create cli --partitions 1 --config retention.ms=3600000
expect 0 "topic create"
ctl topic create cli2 --partitions 3
expect 0 "topic create cli2"
ctl topic create cli --partitions 1
expect 1 "creating an existing topic"
[[ -n $err && $(wc -l <<<"$err") -eq 1 ]] ||
	fail "an error is one line on stderr, got: $err"

ctl topic list
expect 0 "topic list"
grep -qx cli <<<"$out" || fail "topic list lacks cli: $out"
grep -qx cli2 <<<"$out" || fail "topic list lacks cli2: $out"

ctl topic describe cli2
expect 0 "topic describe"
grep -q "partitions: 3" <<<"$out" || fail "describe cli2: $out"
ctl topic describe cli
grep -Eq "retention\.ms *= *3600000" <<<"$out" ||
	fail "describe cli lacks retention.ms = 3600000: $out"

ctl topic config cli retention.ms=7200000
expect 0 "topic config"
ctl topic describe cli
grep -Eq "retention\.ms *= *7200000" <<<"$out" ||
	fail "config change not visible in describe: $out"
ctl topic config cli no.such.key=1
expect 1 "an unknown config key"

# --- cluster status (a single node: its own metadata leader)
ctl cluster status
expect 0 "cluster status"
grep -q "^metadata leader: node 1 " <<<"$out" ||
	fail "cluster status does not name node 1 as metadata leader: $out"
grep -Eq "^ +1 +127\.0\.0\.1:$port +.* yes$" <<<"$out" ||
	fail "cluster status lacks node 1 on port $port, reachable: $out"
ctl cluster status --format json
expect 0 "cluster status --format json"
[[ $(wc -l <<<"$out") -eq 1 ]] || fail "cluster status json is not one line: $out"
if command -v python3 >/dev/null; then
	python3 -c 'import json,sys; json.load(sys.stdin)' <<<"$out" ||
		fail "cluster status json does not parse: $out"
	python3 -c '
import json, sys
s = json.load(sys.stdin)
assert s["meta_leader"] == 1 and s["answering_node"] == 1, s
assert [n["id"] for n in s["nodes"]] == [1], s["nodes"]
parts = sorted(p["partition"] for p in s["partitions"] if p["topic"] == "cli2")
assert parts == [0, 1, 2], parts
for p in s["partitions"]:
    assert p["leader"] == 1 and p["replicas"] == [1], p
    assert p["in_sync"] == [1] and p["high_watermark"] >= 0, p
assert s["under_replicated"] == 0 and s["without_leader"] == 0, s
' <<<"$out" || fail "cluster status json does not describe node 1 and cli2: $out"
fi
ctl cluster status --format yaml
expect 2 "cluster status --format yaml"
ctl cluster status --no-such-flag
expect 2 "cluster status with an unknown flag"
ctl cluster frob
expect 2 "an unknown cluster subcommand"
ctl --bootstrap 127.0.0.1:1 cluster status
expect 1 "cluster status of an unreachable broker"
[[ -n $err && $(wc -l <<<"$err") -eq 1 ]] ||
	fail "an unreachable broker is one line on stderr, got: $err"

# --- produce and consume
out=$(printf 'one\ntwo\nthree\n' |
	timeout "$CMD_TIMEOUT" "$OXBOWCTL" produce cli --key k 2>"$root/stderr")
rc=$?
err=$(cat "$root/stderr")
expect 0 "produce"
[[ $(tail -n 1 <<<"$out") == 3 ]] ||
	fail "produce should print 3 acknowledged last, printed: $out"

ctl consume cli --from-beginning --count 3 --format json --timeout-ms 20000
expect 0 "consume --format json"
[[ $(wc -l <<<"$out") -eq 3 ]] || fail "consume printed: $out"
n=0
for v in one two three; do
	line=$(sed -n "$((n + 1))p" <<<"$out")
	[[ $line == *'"value":"'$v'"'* && $line == *'"key":"k"'* &&
		$line == *'"partition":0'* && $line == *'"offset":'* &&
		$line == *'"timestamp":'* ]] ||
		fail "json record $n is not {..key k, value $v..}: $line"
	n=$((n + 1))
done
if command -v python3 >/dev/null; then
	python3 -c '
import json, sys
offs = [json.loads(l)["offset"] for l in sys.stdin]
assert offs == sorted(offs) and len(set(offs)) == 3, offs
' <<<"$out" || fail "json lines do not parse or offsets repeat: $out"
fi

ctl consume no-such-topic --from-beginning --count 1 --timeout-ms 2000
expect 1 "consume of an unknown topic"

# --- groups
ctl group reset g1 --topic cli --to-earliest
expect 0 "group reset --to-earliest"
ctl group reset g1 --topic cli --to-offset 1
expect 0 "group reset --to-offset"
ctl group describe g1
expect 0 "group describe"
awk '$1 == "cli" && $2 == 0 && $3 == 1 { ok = 1 } END { exit !ok }' \
	<<<"$out" || fail "group describe g1 does not show cli/0 at 1: $out"
ctl group list
expect 0 "group list"
grep -qx g1 <<<"$out" || fail "group list lacks g1: $out"
ctl consume cli --group g1 --count 2 --format value --timeout-ms 20000
expect 0 "consume --group"
[[ $out == $'two\nthree' ]] ||
	fail "consume from the group's offset 1 printed: $out"
ctl group describe no-such-group
expect 1 "describing a group with no offsets"

# --- exit codes
ctl topic describe no-such-topic
expect 1 "describe of an unknown topic"
ctl --bootstrap 127.0.0.1:1 topic list
expect 1 "an unreachable broker"
ctl topic list --no-such-flag
expect 2 "an unknown flag"
ctl topic create x --partitions
expect 2 "a flag without its value"
ctl no-such-command
expect 2 "an unknown command"
ctl processor list
expect 2 "processor (not built yet) is an unknown command"
ctl topic --help
expect 0 "topic --help"

# --- delete
ctl topic delete cli
expect 0 "topic delete"
ctl topic list
grep -qx cli <<<"$out" && fail "cli still listed after delete: $out"
ctl topic describe cli
expect 1 "describe of a deleted topic"

kill -0 "$pid" 2>/dev/null || fail "oxbowd died"
kill -TERM "$pid"
for ((i = 0; i < 300; i++)); do
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.1
done
kill -0 "$pid" 2>/dev/null && fail "oxbowd ignored SIGTERM for 30 s" &&
	kill -KILL "$pid"
wait "$pid"
st=$?
pid=
[[ $st == 0 ]] || fail "oxbowd exited $st on SIGTERM"

if ((failures)); then
	echo "broker-cli: $failures check(s) FAILED"
	exit 1
fi
echo "broker-cli: ok"
