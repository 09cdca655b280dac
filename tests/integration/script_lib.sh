# SPDX-License-Identifier: Apache-2.0
#
# What the integration scripts share, sourced by each: failures counted
# into $failures, commands run under `timeout $CMD_TIMEOUT` with their
# output in $out, stderr in $err (through $root/stderr) and status in $rc,
# and a base port whose nodes' ports are free. The script sets failures,
# root and CMD_TIMEOUT before it calls these.

fail() {
	echo "FAIL: $*" >&2
	failures=$((failures + 1))
}

# run PROGRAM ARGS...: output in $out, stderr in $err, status in $rc.
run() {
	out=$(timeout "$CMD_TIMEOUT" "$@" 2>"$root/stderr")
	rc=$?
	err=$(cat "$root/stderr")
}

# expect RC DESCRIPTION: checks the last command's status.
expect() {
	if [[ $rc != "$1" ]]; then
		fail "$2: exit $rc, expected $1 (stdout: $out; stderr: $err)"
	fi
}

# free_base NODES: a base port whose nodes' ports (client, peer, metrics
# for each of NODES nodes, 10 apart) are all free, below the ephemeral
# range so that programs binding port 0 do not take them meanwhile.
free_base() {
	python3 - "$1" <<'PYEOF'
import random, socket, sys
nodes = int(sys.argv[1])
for _ in range(200):
    base = random.randrange(20000, 32000, 10)
    socks = []
    try:
        for n in range(nodes):
            for k in range(3):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", base + 10 * n + k))
        print(base)
        sys.exit(0)
    except OSError:
        pass
    finally:
        for s in socks:
            s.close()
sys.exit(1)
PYEOF
}
