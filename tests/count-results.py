#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
#
# Reads meson's testlog.json and prints `N passed, N failed[, N skipped]`.
# TAP tests (the Criterion executables) count each case; other tests count
# once. A TAP test that meson saw fail without a failing case (a crash, a
# timeout) counts one failure more, so a failure is never hidden.
import json
import re
import sys

TAP = re.compile(r'^(not ok|ok)\b(.*)$')

def tally(entry):
    passed = failed = skipped = 0
    result = entry.get('result', '')
    for line in (entry.get('stdout') or '').splitlines():
        m = TAP.match(line)
        if not m:
            continue
        directive = m.group(2).lower()
        if '# skip' in directive:
            skipped += 1
        elif m.group(1) == 'ok':
            passed += 1
        else:
            failed += 1
    cases = passed + failed + skipped
    if result in ('OK', 'EXPECTEDFAIL'):
        if cases == 0:
            passed += 1
    elif result == 'SKIP':
        if cases == 0:
            skipped += 1
    elif failed == 0:
        failed += 1
    return passed, failed, skipped

def main(path):
    totals = [0, 0, 0]
    with open(path, encoding='utf-8') as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            for i, n in enumerate(tally(json.loads(line))):
                totals[i] += n
    out = f'{totals[0]} passed, {totals[1]} failed'
    if totals[2]:
        out += f', {totals[2]} skipped'
    print(out)

if __name__ == '__main__':
    main(sys.argv[1])
