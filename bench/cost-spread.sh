#!/usr/bin/env bash
# How repeatable the cost of a prediction is: grades the reference RUNS times with the hidden
# churn grader (seeds 1..RUNS) and reports the spread of its CPU milliseconds per 1000
# predictions at the standard speed (the grader calibrates: proctor's yardstick runs beside the
# service and both take turns, request by request) and, as information, as measured during the
# latency load; then RUNS times more with --latency-reference (the reference runs beside the
# service instead) and reports the spread of the ratio to it. Side by side, the machine's speed
# cancels out. The acceptance bounds: a spread (max - min, over the mean) of at most 5% absolute
# and 3% relative, on an otherwise idle machine.
#
#   bash bench/cost-spread.sh
#   RUNS=10 SUBMISSION=/tmp/leaks-memory bash bench/cost-spread.sh
#   ONLY=relative bash bench/cost-spread.sh      # or ONLY=absolute
#
# Needs the Docker engine, the base, review and yardstick images (docker/base/build.sh,
# docker/review/build.sh, docker/yardstick/build.sh). Reports go to $OUT (default
# /tmp/proctor-cost-spread). A grade takes about two and a half minutes, one with the reference
# about the same (the reference is graded first, then built beside the submission).
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-5}
SUBMISSION=${SUBMISSION:-tests/fixtures/submissions/reference}
REFERENCE=${REFERENCE:-tests/fixtures/submissions/reference}
GRADER=${GRADER:-graders/churn/hidden.toml}
OUT=${OUT:-/tmp/proctor-cost-spread}
mkdir -p "$OUT"

cargo build --release --quiet
ONLY=${ONLY:-both}
[[ $ONLY == relative ]] || for i in $(seq 1 "$RUNS"); do
  printf '%s seed %d/%d\n' "$(date -u +%H:%M:%S)" "$i" "$RUNS" >&2
  ./target/release/proctor grade "$SUBMISSION" --grader "$GRADER" --seed "$i" --quiet \
    --out "$OUT/absolute-$i.json" >/dev/null || true
done
[[ $ONLY == absolute ]] || for i in $(seq 1 "$RUNS"); do
  printf '%s seed %d/%d, with the reference\n' "$(date -u +%H:%M:%S)" "$i" "$RUNS" >&2
  ./target/release/proctor grade "$SUBMISSION" --grader "$GRADER" --seed "$i" --quiet \
    --latency-reference "$REFERENCE" --out "$OUT/relative-$i.json" >/dev/null || true
done

python3 - "$OUT" "$RUNS" <<'PY'
import json, sys
out, runs = sys.argv[1], int(sys.argv[2])
def cost(kind, i):
    try:
        r = json.load(open(f"{out}/{kind}-{i}.json"))
    except OSError:
        return None, None
    return r["status"], next((g.get("cost") for g in r["graders"] if g.get("cost")), None)
def spread(xs):
    m = sum(xs) / len(xs)
    return (max(xs) - min(xs)) / m * 100 if m else float("nan")
absolute, calibrated, relative = [], [], []
print("| seed | CPU ms / 1000 (load) | at the standard speed | yardstick ms / request | with the reference: CPU ms / 1000 (load) | in the paired windows | reference's | ratio | kept windows' ratios |")
print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for i in range(1, runs + 1):
    s1, a = cost("absolute", i)
    s2, b = cost("relative", i)
    av = a and a.get("cpu_ms_per_1000")
    if av: absolute.append(av)
    cv = a and a.get("calibrated_cpu_ms_per_1000")
    if cv: calibrated.append(cv)
    ratio = b and b.get("cpu_vs_reference")
    if ratio: relative.append(ratio)
    p = (b or {}).get("paired") or {}
    print(f"| {i} | {av} | {cv} | {a and a.get('yardstick_ms_per_request')} | {b and b.get('cpu_ms_per_1000')} | {p.get('cpu_ms_per_1000')} | {b and b.get('reference_cpu_ms_per_1000')} | {ratio} | {p.get('lowest_ratio')}–{p.get('highest_ratio')} |")
if absolute:
    print(f"\nabsolute, as measured during the load: {len(absolute)} grades, spread {spread(absolute):.1f}% (information: the machine's speed moves it)")
if calibrated:
    print(f"absolute at the standard speed (what the check grades): {len(calibrated)} grades, spread {spread(calibrated):.1f}% (bound 5%)")
if relative:
    print(f"relative to the reference: {len(relative)} grades, spread {spread(relative):.1f}% (bound 3%)")
PY
