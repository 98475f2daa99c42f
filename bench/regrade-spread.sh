#!/usr/bin/env bash
# Regrades one submission with both churn graders (public + hidden) under seeds 1..RUNS and
# reports how much the combined grade moves, and how many grades ended as an infrastructure
# error. The acceptance bounds: a total spread of at most 1 point per 100, and at most 1
# infrastructure error in 20 grades (RUNS=10 gives 20 grades), on an otherwise idle machine.
#
#   bash bench/regrade-spread.sh                                         # happy-path, 5 seeds
#   RUNS=10 bash bench/regrade-spread.sh                                 # 20 grades
#   SUBMISSION=tests/fixtures/submissions/reference bash bench/regrade-spread.sh
#   tests/fixtures/make-variant.sh slow-model /tmp/slow-model        # a service near the
#   SUBMISSION=/tmp/slow-model GRADERS=public bash bench/regrade-spread.sh  # throughput curve's slope
#
# Needs the Docker engine and the base image (docker/base/build.sh). Reports and a table go to
# $OUT (default /tmp/proctor-regrade-spread). A grade of both graders takes about two minutes.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-5}
GRADERS=${GRADERS:-public hidden}
SUBMISSION=${SUBMISSION:-tests/fixtures/submissions/happy-path}
OUT=${OUT:-/tmp/proctor-regrade-spread}
mkdir -p "$OUT"

cargo build --release --quiet
for i in $(seq 1 "$RUNS"); do
  for g in $GRADERS; do
    printf '%s seed %d/%d, %s grader\n' "$(date -u +%H:%M:%S)" "$i" "$RUNS" "$g" >&2
    t0=$(date +%s%N)
    ./target/release/proctor grade "$SUBMISSION" --grader "graders/churn/$g.toml" --seed "$i" \
      --quiet --out "$OUT/$g-$i.json" >/dev/null || true
    echo "$(( ($(date +%s%N) - t0) / 1000000 ))" > "$OUT/$g-$i.ms"
  done
done

python3 - "$OUT" "$RUNS" "$GRADERS" <<'PY'
import json, os, sys
out, runs, graders = sys.argv[1], int(sys.argv[2]), sys.argv[3].split()
totals, infra, rows = [], 0, []
for i in range(1, runs + 1):
    earned = total = 0.0
    seconds = 0.0
    statuses = []
    complete = True
    for g in graders:
        path = f"{out}/{g}-{i}.json"
        if not os.path.exists(path):
            statuses.append(f"{g}: no report"); complete = False; continue
        r = json.load(open(path))
        seconds += float(open(f"{out}/{g}-{i}.ms").read()) / 1000
        if r["status"] == "infrastructure_error":
            infra += 1; complete = False
        elif r["status"] != "graded":
            complete = False
        statuses.append(f"{g}: {r['status']}" + (f" ({r['verdict']})" if r.get("verdict") else ""))
        earned += r["score"]["points"]; total += r["score"]["max_points"]
    pct = 100 * earned / total if total else 0.0
    if complete:
        totals.append(pct)
    rows.append((i, pct, seconds, "; ".join(statuses)))
print(f"| seed | combined % | seconds ({' + '.join(graders)}, builds included) | runs |")
print("| ---: | ---: | ---: | --- |")
for i, pct, sec, st in rows:
    print(f"| {i} | {pct:.2f} | {sec:.0f} | {st} |")
spread = max(totals) - min(totals) if totals else float("nan")
print(f"\n{len(totals)} complete regrades; spread {spread:.2f} points per 100; "
      f"{infra} infrastructure error(s) in {len(graders) * runs} grades")
ok = totals and spread <= 1.0 and infra <= max(1, (len(graders) * runs) // 20)
sys.exit(0 if ok else 1)
PY
