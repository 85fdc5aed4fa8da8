#!/usr/bin/env bash
# fuzz.sh PKG TARGET FUZZTIME — run one fuzz target for a bounded time.
#
# A crasher fails the run: Go writes it under PKG/testdata/fuzz/TARGET/, and
# once committed `go test` replays it as a regression case.
#
# Go 1.26's fuzz coordinator can also fail a target with a bare "context
# deadline exceeded" at the -fuzztime boundary, having found nothing
# (golang/go#75804, fixed in Go 1.27). That one outcome is reported as what
# it is and not counted as a failure; race_signature says exactly what it
# looks like. Anything else fails.
#
# fuzz.sh --classify PKG TARGET FUZZTIME OUTPUT prints "race" and exits 0
# when the saved go test OUTPUT of a failed run is that signature, else
# prints "failure" and exits 1 (scripts/fuzz_test.go runs it on recorded
# outputs).
set -uo pipefail

# race_signature OUTPUT PKG TARGET FUZZTIME: the output of a failed run is
# Go's deadline race and nothing else:
#   - FUZZTIME is a duration (Ns or Nm): a count (Nx) has no deadline to race;
#   - every line before the failure is the coordinator's "fuzz: elapsed: "
#     progress (no panic, no "Failing input written", no other test's line);
#   - then exactly, and nothing after:
#       --- FAIL: TARGET (S.SSs)       with FUZZTIME <= S < FUZZTIME+10
#           context deadline exceeded
#       FAIL
#       exit status 1
#       FAIL	<module>/PKG	T.TTTs
race_signature() {
  local file=$1 pkg=$2 target=$3 fuzztime=$4 budget
  case $fuzztime in
    *[!0-9]*s | s | *[!0-9]*m | m) return 1 ;;
    *s) budget=${fuzztime%s} ;;
    *m) budget=$(( ${fuzztime%m} * 60 )) ;;
    *) return 1 ;;
  esac
  local -a lines
  mapfile -t lines <"$file"
  local n=${#lines[@]} i
  (( n >= 6 )) || return 1
  for (( i = 0; i < n - 5; i++ )); do
    [[ ${lines[i]} == "fuzz: elapsed: "* ]] || return 1
  done
  local tab=$'\t' re_fail secs
  re_fail="^--- FAIL: ${target} \(([0-9]+)\.[0-9]+s\)$"
  [[ ${lines[n-5]} =~ $re_fail ]] || return 1
  secs=${BASH_REMATCH[1]}
  (( secs >= budget && secs < budget + 10 )) || return 1
  [[ ${lines[n-4]} == "    context deadline exceeded" ]] || return 1
  [[ ${lines[n-3]} == "FAIL" ]] || return 1
  [[ ${lines[n-2]} == "exit status 1" ]] || return 1
  [[ ${lines[n-1]} =~ ^FAIL${tab}[^[:space:]]*/${pkg}${tab}[0-9]+\.[0-9]+s$ ]] || return 1
}

if [ "${1:-}" = "--classify" ]; then
  [ $# -eq 5 ] || { echo "usage: fuzz.sh --classify PKG TARGET FUZZTIME OUTPUT" >&2; exit 2; }
  if race_signature "$5" "$2" "$3" "$4"; then echo race; exit 0; fi
  echo failure
  exit 1
fi

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
if race_signature "$out" "$pkg" "$target" "$fuzztime"; then
  last=$(grep -o 'execs: [0-9]*' "$out" | tail -n 1)
  echo "fuzz: $target stopped with Go's fuzztime deadline race (golang/go#75804, fixed in Go 1.27) after $fuzztime, ${last:-no execs reported}; no failing input was written: not a failure" >&2
  exit 0
fi
echo "fuzz: $target failed (exit $rc)" >&2
exit 1
