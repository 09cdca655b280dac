#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Builds one libFuzzer harness and runs it for a fixed time. Generic: every
# harness under tests/fuzz/ goes through it (meson registers each one in
# tests/fuzz/meson.build).
#
#   run-fuzz.sh NAME SECONDS HARNESS.c [MORE.c ...] [-- EXTRA CLANG FLAGS...]
#
# The sources are compiled with clang -fsanitize=fuzzer,address,undefined
# (-D_GNU_SOURCE -std=c11 -O1 -g, undefined behaviour fatal) into a
# temporary directory and linked with the extra flags (-I dirs, -D, -l
# libraries, ...) and -lxxhash.
#
# Seeds: tests/fuzz/corpus/NAME/ next to this script if it exists, and
# $OX_FUZZ_CORPUS if set. Seed directories are only read; new inputs go to
# a temporary corpus. Findings (and the fuzzer binary, to replay them) are
# saved in $OX_FUZZ_ARTIFACTS, by default ./fuzz-artifacts/NAME/ under the
# current directory (the build directory under meson test).
#
# Environment: OX_FUZZ_CC (compiler; default the first clang on PATH),
# OX_FUZZ_ARGS (more libFuzzer flags), OX_FUZZ_KEEP=1 (keep the temporary
# directory).
#
# Exit: 0 when the run ends without a finding; 1 on a crash, sanitizer
# report, leak, timeout or out-of-memory, or when the harness fails to
# build; 77 (meson's "skipped") when no clang with a working libFuzzer
# runtime is here; 2 on misuse.
set -euo pipefail

usage() {
	echo "usage: $0 NAME SECONDS HARNESS.c [MORE.c ...] [-- CLANG FLAGS...]" >&2
	exit 2
}

(($# >= 3)) || usage
name=$1
seconds=$2
shift 2
[[ $name =~ ^[A-Za-z0-9_.-]+$ ]] || { echo "run-fuzz: bad NAME '$name'" >&2; usage; }
[[ $seconds =~ ^[0-9]+$ ]] || { echo "run-fuzz: SECONDS must be a number" >&2; usage; }

sources=()
while (($# > 0)) && [[ $1 != -- ]]; do
	[[ -f $1 ]] || { echo "run-fuzz: no such source: $1" >&2; exit 2; }
	sources+=("$1")
	shift
done
((${#sources[@]} > 0)) || usage
(($# > 0)) && shift # the "--"
flags=("$@")

find_clang() {
	if [[ -n ${OX_FUZZ_CC:-} ]]; then
		echo "$OX_FUZZ_CC"
		return
	fi
	local cc
	for cc in clang clang-19 clang-18 clang-17 clang-16 clang-15 clang-14; do
		if command -v "$cc" >/dev/null 2>&1; then
			echo "$cc"
			return
		fi
	done
}

cc=$(find_clang)
if [[ -z $cc ]]; then
	echo "run-fuzz: SKIP: no clang on PATH (apt-get install clang)" >&2
	exit 77
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/oxfuzz-$name.XXXXXX")
cleanup() {
	if [[ ${OX_FUZZ_KEEP:-0} == 1 ]]; then
		echo "run-fuzz: kept $tmp" >&2
	else
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

sanitize=(-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined)

# A trivial harness tells a missing libFuzzer runtime (libclang-rt-N-dev)
# or an environment where it cannot run apart from a broken harness.
cat >"$tmp/probe.c" <<'EOF'
#include <stddef.h>
#include <stdint.h>
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	(void)data;
	(void)size;
	return 0;
}
EOF
if ! "$cc" "${sanitize[@]}" -o "$tmp/probe" "$tmp/probe.c" >"$tmp/probe.log" 2>&1; then
	echo "run-fuzz: SKIP: $cc cannot link a libFuzzer binary" \
		"(install the libclang-rt-dev package of this clang):" >&2
	sed 's/^/  /' "$tmp/probe.log" >&2
	exit 77
fi
if ! "$tmp/probe" -runs=10 >"$tmp/probe.log" 2>&1; then
	echo "run-fuzz: SKIP: a trivial libFuzzer binary fails to run here:" >&2
	sed 's/^/  /' "$tmp/probe.log" >&2
	exit 77
fi

bin="$tmp/fuzz-$name"
echo "run-fuzz: building $name with $cc" >&2
if ! "$cc" "${sanitize[@]}" -D_GNU_SOURCE -std=c11 -O1 -g -o "$bin" \
	"${sources[@]}" "${flags[@]}" -lxxhash; then
	echo "run-fuzz: FAIL: the harness does not build" >&2
	exit 1
fi

corpus="$tmp/corpus"
mkdir -p "$corpus"
dirs=("$corpus")
here=$(cd "$(dirname "$0")" && pwd)
[[ -d $here/corpus/$name ]] && dirs+=("$here/corpus/$name")
[[ -n ${OX_FUZZ_CORPUS:-} ]] && dirs+=("$OX_FUZZ_CORPUS")
artifacts=${OX_FUZZ_ARTIFACTS:-$PWD/fuzz-artifacts/$name}
mkdir -p "$artifacts"
read -r -a extra <<<"${OX_FUZZ_ARGS:-}"

echo "run-fuzz: fuzzing $name for ${seconds}s; corpus: ${dirs[*]}" >&2
# libFuzzer's own exit code for a finding is 77, which meson would read as
# "skipped": every kind of finding exits 1 instead.
rc=0
"$bin" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=30 \
	-error_exitcode=1 -timeout_exitcode=1 -print_final_stats=1 \
	-artifact_prefix="$artifacts/" "${extra[@]}" "${dirs[@]}" || rc=$?
if ((rc != 0)); then
	cp "$bin" "$artifacts/"
	echo "run-fuzz: FAIL: $name found a problem (exit $rc). In $artifacts:" >&2
	ls -l "$artifacts" >&2
	echo "run-fuzz: replay with: $artifacts/fuzz-$name <reproducer>" >&2
	exit 1
fi
echo "run-fuzz: $name: no finding in ${seconds}s" >&2
exit 0
