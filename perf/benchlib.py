# SPDX-License-Identifier: Apache-2.0
#
# What perf/broker-bench and perf/cluster-bench share: building Oxbow,
# picking free ports, running one oxbow-bench mode and taking its JSON
# line, and the per-mode median lines. Nothing here starts a broker.
import json
import os
import random
import socket
import statistics
import subprocess
import sys

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def fail(prog, msg):
    sys.exit(f'{prog}: {msg}')


def build(prog, build_dir):
    """Sets up and compiles build_dir; returns the paths of the binaries."""
    if not os.path.isdir(os.path.join(build_dir, 'meson-private')):
        subprocess.run(['meson', 'setup', build_dir, TOP], check=True,
                       stdout=sys.stderr)
    subprocess.run(['meson', 'compile', '-C', build_dir], check=True,
                   stdout=sys.stderr)
    paths = {
        'oxbowd': os.path.join(build_dir, 'broker', 'oxbowd'),
        'oxbowctl': os.path.join(build_dir, 'client', 'oxbowctl'),
        'bench': os.path.join(build_dir, 'perf', 'oxbow-bench'),
    }
    for path in paths.values():
        if not os.access(path, os.X_OK):
            fail(prog, f'{path} was not built')
    return paths


def free_port():
    # The kernel picks a free port; the broker binds it right after. Another
    # process could take it in between, which the start-up check reports.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def port_free(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(('127.0.0.1', port))
        except OSError:
            return False
        return True


def free_port_block(ports, attempts=50):
    """A base port B with B .. B+ports-1 all free now (the same race as
    free_port), or None."""
    for _ in range(attempts):
        base = random.randrange(20000, 60000 - ports)
        if all(port_free(base + i) for i in range(ports)):
            return base
    return None


def last_json(cmd):
    """Runs cmd and returns its last stdout line that is a JSON object;
    RuntimeError with its output when it fails or prints none."""
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f'{" ".join(cmd)} failed ({p.returncode}):\n'
                           f'{p.stderr}{p.stdout}')
    for line in reversed(p.stdout.strip().splitlines()):
        if line.startswith('{'):
            return json.loads(line)
    raise RuntimeError(f'{" ".join(cmd)} printed no JSON line')


def print_run(result, run):
    result['run'] = run
    print(json.dumps(result, separators=(',', ':')), flush=True)


def print_medians(results, skip=()):
    """One line per mode: the median of every numeric figure of its runs
    but those named in skip (ids, whose median means nothing)."""
    for mode, runs in results.items():
        if not runs:
            continue
        med = {'mode': mode, 'stat': 'median', 'runs': len(runs)}
        for key, value in runs[0].items():
            if key == 'run' or key in skip or isinstance(value, bool) or \
                    not isinstance(value, (int, float)):
                continue
            m = statistics.median(r[key] for r in runs)
            med[key] = int(m) if float(m).is_integer() else round(m, 3)
        print(json.dumps(med, separators=(',', ':')), flush=True)
