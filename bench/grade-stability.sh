#!/usr/bin/env bash
# Grades the reference submission N times (default 5) and reports how much the latency
# category's points and percentiles move between runs. The acceptance bound: the latency points
# of all runs within 2% of the category's maximum.
#
#   bash bench/grade-stability.sh                                   # public grader, 5 runs
#   RUNS=5 UNPINNED=1 bash bench/grade-stability.sh                 # service under a CPU quota, unpinned
#   GRADER=graders/churn/public.toml SUBMISSION=tests/fixtures/submissions/reference bash bench/grade-stability.sh
#
# The bundled graders pin the service and the load generator to disjoint cores
# (`[sandbox] cpuset = "auto"`). UNPINNED=1 grades with a copy of the grader (in a temporary
# folder, with its data) without that line: the service runs under a CPU quota and shares the
# cores with the generator. Needs the Docker engine and the base image (the first
# `proctor demo` builds it). A full grade of the public grader takes ~65 s.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-5}
GRADER=${GRADER:-graders/churn/public.toml}
SUBMISSION=${SUBMISSION:-tests/fixtures/submissions/reference}
OUT=${OUT:-/tmp/proctor-grade-stability}
mkdir -p "$OUT"

if [[ "${UNPINNED:-0}" == 1 ]]; then
  dir=$(mktemp -d)
  trap 'rm -rf "$dir"' EXIT
  src=$(dirname "$GRADER")
  cp -r "$src"/. "$dir"/
  python3 - "$GRADER" "$dir/$(basename "$GRADER")" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
text = re.sub(r'^cpuset = "auto"\n', "", text, count=1, flags=re.M)
open(sys.argv[2], "w").write(text)
PY
  GRADER="$dir/$(basename "$GRADER")"
fi

cargo build --release --quiet
for i in $(seq 1 "$RUNS"); do
  printf '%s run %d/%d\n' "$(date -u +%H:%M:%S)" "$i" "$RUNS" >&2
  ./target/release/proctor grade "$SUBMISSION" --grader "$GRADER" --seed "$i" --quiet \
    --out "$OUT/report-$i.json" >/dev/null || true
done

python3 - "$OUT" "$RUNS" <<'PY'
import json, sys
out, runs = sys.argv[1], int(sys.argv[2])
rows = []
for i in range(1, runs + 1):
    r = json.load(open(f"{out}/report-{i}.json"))
    cat = next((c for c in r.get("categories", []) if c["name"] == "latency"), None)
    lat = next((g["latency"] for g in r.get("graders", []) if g.get("latency")), None) or {}
    rows.append((i, r["status"], cat, lat))
print("| run | status | latency points | p50 ms | p99 ms | max ms | achieved req/s | lateness p99 ms | capacity req/s |")
print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for i, status, cat, lat in rows:
    c = lat.get("corrected", {})
    print(f"| {i} | {status} | {cat['points'] if cat else '-'} / {cat['max_points'] if cat else '-'} "
          f"| {c.get('p50_ms', '-')} | {c.get('p99_ms', '-')} | {c.get('max_ms', '-')} "
          f"| {lat.get('achieved_rate', '-')} | {lat.get('send_lateness', {}).get('p99_ms', '-')} "
          f"| {(lat.get('search') or {}).get('capacity_rate', '-')} |")
points = [c["points"] for _, _, c, _ in rows if c]
if len(points) == runs:
    top = rows[0][2]["max_points"]
    spread = max(points) - min(points)
    ok = spread <= 0.02 * top
    print(f"\nlatency points spread {spread:.2f} of {top} ({spread / top * 100:.1f}%): "
          f"{'within' if ok else 'OVER'} the 2% bound")
    sys.exit(0 if ok else 1)
print("\nnot every run was graded")
sys.exit(1)
PY
