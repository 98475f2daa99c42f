#!/usr/bin/env bash
# Grades a small hiring round with `proctor batch` and both churn graders, once with --jobs 1
# and once with --jobs 2, and reports submissions per hour and how long the stages waited for
# the machine-wide latency lock. The round: the reference, happy-path, constant, one
# one-defect variant (no-drift), a build that fails and a submission refused for its base image
# (the never-ready fixture, which is built on the test image).
# It also checks the summary's order: reference, no-drift, happy-path, constant ranked; the
# two broken ones listed with their verdicts.
#
#   bash bench/batch-round.sh                 # both job counts
#   JOBS="2" bash bench/batch-round.sh        # one of them
#
# Needs the Docker engine and the base image (docker/base/build.sh). Everything goes to $OUT
# (default /tmp/proctor-batch-round). A pass takes about five minutes with --jobs 1.
set -euo pipefail
cd "$(dirname "$0")/.."

JOBS=${JOBS:-1 2}
OUT=${OUT:-/tmp/proctor-batch-round}
rm -rf "$OUT"
mkdir -p "$OUT/round"

cargo build --release --quiet
cp -r tests/fixtures/submissions/reference "$OUT/round/reference"
cp -r tests/fixtures/submissions/happy-path "$OUT/round/happy-path"
cp -r tests/fixtures/submissions/constant "$OUT/round/constant"
cp -r tests/fixtures/submissions/broken-build "$OUT/round/broken-build"
cp -r tests/fixtures/submissions/never-ready "$OUT/round/never-ready"
bash tests/fixtures/make-variant.sh no-drift "$OUT/round/no-drift" >/dev/null

for jobs in $JOBS; do
  printf '%s --jobs %s\n' "$(date -u +%H:%M:%S)" "$jobs" >&2
  t0=$(date +%s%N)
  ./target/release/proctor batch "$OUT/round" --grader graders/churn/public.toml \
    --grader graders/churn/hidden.toml --seed 7 --jobs "$jobs" --regrade \
    --out-dir "$OUT/jobs-$jobs" 2>"$OUT/jobs-$jobs.log" >/dev/null || true
  t1=$(date +%s%N)
  python3 - "$OUT/jobs-$jobs" "$jobs" "$t0" "$t1" <<'EOF'
import csv, glob, json, sys
out, jobs, t0, t1 = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
secs = (t1 - t0) / 1e9
rows = list(csv.DictReader(open(f"{out}/summary.csv")))
print(f"--jobs {jobs}: {len(rows)} submissions in {secs:.0f} s: "
      f"{len(rows) * 3600 / secs:.0f} submissions per hour")
order = [r["id"] for r in rows]
for r in rows:
    print(f"  {r['rank'] or '-':>2} {r['id']:<13} {r['status']:<17} {r['verdict']:<12} "
          f"{r['percent'] or '-':>6}")
waits = {}
for f in glob.glob(f"{out}/reports/*.json"):
    for t in json.load(open(f))["timings"]:
        w = t.get("lock_wait_seconds")
        if w:
            waits.setdefault(t["stage"], []).append(w)
for stage, w in sorted(waits.items()):
    print(f"  waited for the latency lock: {stage}: {len(w)} times, {sum(w):.1f} s in all, "
          f"longest {max(w):.1f} s")
want = ["reference", "no-drift", "happy-path", "constant"]
ranked = [r["id"] for r in rows if r["rank"]]
print("  order as expected" if ranked == want else f"  ORDER NOT AS EXPECTED: {ranked}")
EOF
done
