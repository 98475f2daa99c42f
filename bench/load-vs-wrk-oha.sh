#!/usr/bin/env bash
# Side-by-side benchmark of proctor's load generator against wrk and oha, in one run, on this
# machine, against the same trivial server (nginx, one worker, fixed 2-byte answer).
#
#   bash bench/load-vs-wrk-oha.sh            # 3 rounds of 10 s per tool and mode
#   ROUNDS=5 SECS=20 bash bench/load-vs-wrk-oha.sh
#
# The server is pinned to SERVER_CPU (default 1) and every client to CLIENT_CPU (default 0), so
# client and server never share a core. Each client's CPU time is its whole process's
# (user + system, from getrusage of the child), divided by the requests it completed.
#   closed loop: wrk -t1 -c64, oha -c64, proctor load --closed -c64: throughput and CPU/request
#   open loop:   proctor load at 1k and 5k req/s: send lateness (p50/p99/p99.9/max), validity,
#                CPU/request; oha -q at the same rates for its CPU/request
# Medians over the rounds go to stdout as a Markdown table (for docs/load.md); raw results go
# to $OUT (default /tmp/proctor-load-bench).
#
# Installs what is missing: wrk and nginx from Debian (apt-get; needs root), oha from crates.io
# (cargo install, ~8 minutes the first time). Only ever sends to 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
SECS=${SECS:-10}
CONNS=${CONNS:-64}
CLIENT_CPU=${CLIENT_CPU:-0}
SERVER_CPU=${SERVER_CPU:-1}
PORT=18080
URL="http://127.0.0.1:${PORT}/"
OUT=${OUT:-/tmp/proctor-load-bench}
mkdir -p "$OUT"

log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

# ---- tools ------------------------------------------------------------------------------------
need_apt=()
command -v wrk >/dev/null || need_apt+=(wrk)
command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || need_apt+=(nginx-light)
if ((${#need_apt[@]})); then
  log "installing ${need_apt[*]} from Debian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
if ! command -v oha >/dev/null; then
  log "installing oha from crates.io (takes minutes)"
  cargo install oha --locked --quiet
fi
export PATH="$HOME/.cargo/bin:$PATH"
log "building proctor (release)"
cargo build --release --quiet
PROCTOR=$PWD/target/release/proctor

# ---- server -----------------------------------------------------------------------------------
taskset -c "$SERVER_CPU" "$NGINX" -c "$PWD/bench/nginx-trivial.conf" &
NGINX_PID=$!
trap 'kill "$NGINX_PID" 2>/dev/null || true; wait "$NGINX_PID" 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do
  curl -sf "$URL" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -sf "$URL" >/dev/null || { echo "nginx did not start; see /tmp/proctor-bench-nginx.err" >&2; exit 1; }

# Runs a client pinned to CLIENT_CPU; prints "<cpu seconds> <wall seconds>" on fd 3 and the
# client's stdout to the file given first.
measure() {
  local out=$1; shift
  python3 - "$out" "$@" <<'PY'
import resource, subprocess, sys, time
out = sys.argv[1]
t = time.monotonic()
with open(out, "wb") as f:
    rc = subprocess.run(sys.argv[2:], stdout=f, stderr=subprocess.DEVNULL).returncode
wall = time.monotonic() - t
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print(f"{r.ru_utime + r.ru_stime:.4f} {wall:.3f} {rc}")
PY
}

pin=(taskset -c "$CLIENT_CPU")
results="$OUT/results.tsv"
: >"$results"

run_wrk() {
  read -r cpu wall _ < <(measure "$OUT/wrk.txt" "${pin[@]}" wrk -t1 -c"$CONNS" -d"${SECS}s" "$URL")
  n=$(awk '/requests in/ {print $1}' "$OUT/wrk.txt")
  printf 'closed\twrk\t%s\t%s\t%s\n' "$n" "$cpu" "$wall" >>"$results"
}
run_oha() {
  read -r cpu wall _ < <(measure "$OUT/oha.json" "${pin[@]}" oha -z "${SECS}s" -c "$CONNS" --no-tui --output-format json "$URL")
  n=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(sum(d["statusCodeDistribution"].values()))' "$OUT/oha.json")
  printf 'closed\toha\t%s\t%s\t%s\n' "$n" "$cpu" "$wall" >>"$results"
}
run_proctor() {
  read -r cpu wall _ < <(measure "$OUT/proctor-closed.json" "${pin[@]}" "$PROCTOR" load "$URL" --closed -c "$CONNS" --duration "$SECS" --warmup 0 --cpus "$CLIENT_CPU")
  n=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["requests"])' "$OUT/proctor-closed.json")
  printf 'closed\tproctor\t%s\t%s\t%s\n' "$n" "$cpu" "$wall" >>"$results"
}
run_open() {
  local rate=$1
  read -r cpu wall _ < <(measure "$OUT/proctor-$rate.json" "${pin[@]}" "$PROCTOR" load "$URL" --rate "$rate" -c "$CONNS" --duration "$SECS" --warmup 0 --cpus "$CLIENT_CPU")
  python3 - "$OUT/proctor-$rate.json" "$rate" "$cpu" "$wall" >>"$results" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
l = d["dispatch_lateness"]
s = d["send_lateness"]
print("\t".join(str(x) for x in [
    "open", f"proctor@{sys.argv[2]}", d["requests"], sys.argv[3], sys.argv[4],
    l["p50_ms"], l["p99_ms"], l["p999_ms"], l["max_ms"], s["p99_ms"], int(d["valid"]),
    d["corrected"]["p50_ms"], d["corrected"]["p99_ms"], d["achieved_rate"]]))
PY
  read -r cpu wall _ < <(measure "$OUT/oha-$rate.json" "${pin[@]}" oha -z "${SECS}s" -c "$CONNS" -q "$rate" --latency-correction --no-tui --output-format json "$URL")
  n=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(sum(d["statusCodeDistribution"].values()))' "$OUT/oha-$rate.json")
  printf 'open\toha@%s\t%s\t%s\t%s\n' "$rate" "$n" "$cpu" "$wall" >>"$results"
}

# The order of the clients rotates every round, so that a noisy neighbour's burst does not
# always land on the same one.
closed=(run_wrk run_oha run_proctor)
for round in $(seq 1 "$ROUNDS"); do
  log "round $round/$ROUNDS: closed loop, $CONNS connections, ${SECS}s each"
  for i in 0 1 2; do
    "${closed[$(( (i + round) % 3 ))]}"
  done
  for rate in 1000 5000; do
    log "round $round/$ROUNDS: open loop at $rate req/s"
    run_open "$rate"
  done
done

# ---- table ------------------------------------------------------------------------------------
python3 - "$results" "$ROUNDS" "$SECS" "$CONNS" <<'PY'
import collections, platform, statistics, subprocess, sys, datetime
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
rounds, secs, conns = sys.argv[2], sys.argv[3], sys.argv[4]
by = collections.defaultdict(list)
for r in rows:
    by[(r[0], r[1])].append(r)
med = statistics.median
def model():
    for l in open("/proc/cpuinfo"):
        if l.startswith("model name"):
            return l.split(":", 1)[1].strip()
    return platform.processor()
def version(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True).stdout.strip().splitlines()[0]
    except Exception:
        return "?"
print(f"Measured {datetime.date.today().isoformat()} on {model()}, "
      f"{subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} vCPUs, "
      f"Linux {platform.release()}; server nginx (1 worker) on its own core, every client pinned "
      f"to the other; median of {rounds} rounds of {secs} s; "
      f"{version(['wrk', '-v']) or 'wrk'}, {version(['oha', '--version'])}.")
print()
print(f"Closed loop, {conns} connections:")
print()
print("| client | req/s | client CPU per request |")
print("| --- | ---: | ---: |")
for tool in ["wrk", "oha", "proctor"]:
    rs = by[("closed", tool)]
    rate = med(int(r[2]) / float(secs) for r in rs)
    cpu = med(float(r[3]) * 1e6 / int(r[2]) for r in rs)
    print(f"| {tool} | {rate:,.0f} | {cpu:.1f} µs |")
print()
print("Open loop (proctor: send lateness is when a send went out against its intended time):")
print()
print("| client @ rate | achieved req/s | lateness p50 / p99 / p99.9 / max | valid runs | client CPU per request | CPU share of a core |")
print("| --- | ---: | --- | ---: | ---: | ---: |")
for rate in ["1000", "5000"]:
    rs = by[("open", f"proctor@{rate}")]
    f = lambda i: med(float(r[i]) for r in rs)
    cpu = med(float(r[3]) * 1e6 / int(r[2]) for r in rs)
    share = med(float(r[3]) / float(secs) for r in rs)
    print(f"| proctor @ {rate} | {f(13):,.0f} | {f(5)*1000:.0f} / {f(6)*1000:.0f} / {f(7)*1000:.0f} / {f(8)*1000:.0f} µs "
          f"| {sum(int(r[10]) for r in rs)} of {len(rs)} | {cpu:.1f} µs | {share*100:.0f}% |")
    rs = by[("open", f"oha@{rate}")]
    cpu = med(float(r[3]) * 1e6 / int(r[2]) for r in rs)
    share = med(float(r[3]) / float(secs) for r in rs)
    rate_o = med(int(r[2]) / float(secs) for r in rs)
    print(f"| oha -q {rate} | {rate_o:,.0f} | (not reported) | | {cpu:.1f} µs | {share*100:.0f}% |")
PY
