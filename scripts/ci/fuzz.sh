#!/usr/bin/env bash
# fuzz.sh PKG TARGET FUZZTIME — run one fuzz target for a bounded time.
#
# A crasher fails the run: Go writes it under PKG/testdata/fuzz/TARGET/, and
# once committed `go test` replays it as a regression case.
#
# Go 1.26's fuzz coordinator can also fail a target with a bare "context
# deadline exceeded" at the -fuzztime boundary, having found nothing
# (golang/go#75804, fixed in Go 1.27). That one outcome — that exact message,
# and no new file in the corpus directory — is reported as what it is and
# not counted as a failure. Anything else fails.
set -uo pipefail
pkg=$1 target=$2 fuzztime=$3
corpus="$pkg/testdata/fuzz/$target"
before=$(ls "$corpus" 2>/dev/null | sort)
out=$(mktemp)
trap 'rm -f "$out"' EXIT
# Minimizing each new interesting input may take up to 60 s by default, and
# the YAML decoders find one every few seconds: the 20 s budget went on
# minimizing (config: 38 k execs, then 0/s). 1 s keeps them fuzzing
# (263 k execs in 15 s); a crasher is still written, less minimized.
# -vet=off: make test has run every go vet analyzer on these packages.
go test -vet=off -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" -fuzzminimizetime "${APIMDEV_FUZZ_MINIMIZE:-1s}" "./$pkg/" 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
[ "$rc" -eq 0 ] && exit 0
after=$(ls "$corpus" 2>/dev/null | sort)
new=$(comm -13 <(printf '%s\n' "$before") <(printf '%s\n' "$after") | grep -v '^$' || true)
if [ -n "$new" ]; then
  echo "fuzz: $target found a failing input, written to $corpus/$new: fix the code and commit it" >&2
  exit 1
fi
# The failure block is "--- FAIL: Target (Ns)" then its indented message lines.
msg=$(awk '/^--- FAIL: /{f=1; next} f && /^    /{print; next} f{exit}' "$out" | sed 's/^ *//')
if [ "$msg" = "context deadline exceeded" ] && ! grep -q 'panic\|Failing input' "$out"; then
  last=$(grep -o 'execs: [0-9]*' "$out" | tail -n 1)
  echo "fuzz: $target stopped with Go's fuzztime deadline race (golang/go#75804, fixed in Go 1.27) after $fuzztime, ${last:-no execs reported}; no failing input was written: not a failure" >&2
  exit 0
fi
echo "fuzz: $target failed (exit $rc)" >&2
exit 1
