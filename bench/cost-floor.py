#!/usr/bin/env python3
"""How far apart two processes of the same service are in CPU per request, side by side.

The cost phase compares the candidate's CPU per request with a service beside it (the reference,
or proctor's yardstick), both loaded request by request on the same cores. What such a ratio
cannot lose however long it is measured is the difference between the two processes
themselves. This measures that floor with the churn reference's image, outside proctor:

  fresh   one long-lived container A; N fresh containers B, one after the other, each loaded
          beside A (WARM s uncounted, then two halves of SECS/2 s). The spread of B/A over the
          starts is what one fresh process adds to a ratio. --no-aslr runs both with address
          space randomisation off (setarch -R; needs seccomp=unconfined), to see whether the
          virtual memory layout is what differs.
  copies  GRADES simulated grades, each the mean over PAIRS pairs of fresh containers (both
          sides started afresh for every pair, WARM s uncounted, SECS s counted): whether
          averaging over processes narrows the spread of a grade's ratio.

  python3 bench/cost-floor.py fresh --starts 10
  python3 bench/cost-floor.py fresh --starts 10 --no-aslr
  python3 bench/cost-floor.py copies --grades 8 --pairs 6

Needs the Docker engine, the base image (docker/base/build.sh) and an otherwise idle machine;
run it as root on the engine's machine (it reads the containers' cgroups). Its containers carry
the label io.proctor.bench=cost-floor and are removed at the end, also on Ctrl-C; the image
(proctor-bench/churn-reference) stays for the next run: `docker rmi` it when done.
"""

import argparse
import csv
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REFERENCE = os.path.join(HERE, "..", "tests", "fixtures", "submissions", "reference")
IMAGE = "proctor-bench/churn-reference"
LABEL = "io.proctor.bench=cost-floor"
READY = "/v1/models/churn"
PREDICT = "/v1/models/churn:predict"
COMMAND = ["python3", "-m", "uvicorn", "app:app", "--host", "0.0.0.0", "--port", "8080",
           "--workers", "1", "--no-access-log"]


def bodies():
    """One single-instance request per validation row, typed as the schema says."""
    with open(os.path.join(REFERENCE, "schema.json"), encoding="utf-8") as fh:
        types = {f["name"]: f["type"] for f in json.load(fh)["features"]}
    convert = {"integer": int, "number": float, "boolean": lambda v: v == "true"}
    out = []
    with open(os.path.join(REFERENCE, "data", "validation.csv"), encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            inst = {k: (None if v == "" else convert.get(types[k], str)(v))
                    for k, v in row.items() if k in types}
            out.append(json.dumps({"instances": [inst]}).encode())
    return out


BODIES = bodies()


def docker(*args):
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout


def cpu_file(cid):
    """The container's cgroup CPU counter: (path, nanoseconds per unit)."""
    pid = docker("inspect", "-f", "{{.State.Pid}}", cid).strip()
    with open(f"/proc/{pid}/cgroup", encoding="utf-8") as fh:
        lines = [line.rstrip("\n").split(":", 2) for line in fh]
    for _, controllers, path in lines:
        if "cpuacct" in controllers.split(","):
            for mount in ("cpuacct", "cpu,cpuacct"):
                f = f"/sys/fs/cgroup/{mount}{path}/cpuacct.usage"
                if os.path.exists(f):
                    return f, 1
    for hierarchy, _, path in lines:
        if hierarchy == "0":
            return f"/sys/fs/cgroup{path}/cpu.stat", 1000
    sys.exit(f"no CPU counter found for container {cid}")


def cpu_ns(counter):
    path, scale = counter
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    if scale == 1:
        return int(text)
    usec = next(int(v) for k, v in (line.split() for line in text.splitlines())
                if k == "usage_usec")
    return usec * scale


class Service:
    """A container of the reference's image on core 1, published on a loopback port."""

    def __init__(self, name, port, no_aslr):
        self.name, self.port = name, port
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
        args = ["run", "-d", "--name", name, "--label", LABEL, "--cpuset-cpus", "1", "--cpus", "1",
                "-m", "512m", "-p", f"127.0.0.1:{port}:8080"]
        cmd = []
        if no_aslr:
            args += ["--security-opt", "seccomp=unconfined"]
            cmd = ["setarch", "x86_64", "-R", *COMMAND]
        self.cid = docker(*args, IMAGE, *cmd).strip()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", READY)
                answer = conn.getresponse()
                answer.read()
                if answer.status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.2)
        else:
            sys.exit(f"{name} did not answer ready within 60 s")
        self.counter = cpu_file(self.cid)
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    def predict(self, i):
        self.conn.request("POST", PREDICT, body=BODIES[i % len(BODIES)],
                          headers={"content-type": "application/json"})
        answer = self.conn.getresponse()
        answer.read()
        if answer.status != 200:
            sys.exit(f"{self.name} answered {answer.status}")

    def remove(self):
        subprocess.run(["docker", "rm", "-f", self.name], capture_output=True)


def side_by_side(a, b, secs, rate):
    """Rounds of one request to each, the order flipped every round: b's CPU per request over
    a's (both get the same requests)."""
    a0, b0 = cpu_ns(a.counter), cpu_ns(b.counter)
    start, rounds = time.perf_counter(), 0
    while time.perf_counter() - start < secs:
        for s in ((a, b) if rounds % 2 == 0 else (b, a)):
            s.predict(rounds)
        rounds += 1
        pause = start + rounds / rate - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
    return (cpu_ns(b.counter) - b0) / (cpu_ns(a.counter) - a0)


def summary(name, xs):
    m = statistics.mean(xs)
    sd = statistics.stdev(xs) / m * 100
    print(f"{name}: n={len(xs)} mean {m:.4f}, standard deviation {sd:.2f}%, "
          f"range {(max(xs) - min(xs)) / m * 100:.2f}%")


def fresh(args):
    a = Service("cost-floor-a", 18181, args.no_aslr)
    ratios = []
    for i in range(args.starts):
        b = Service("cost-floor-b", 18182, args.no_aslr)
        side_by_side(a, b, args.warm, args.rate)
        halves = [side_by_side(a, b, args.secs / 2, args.rate) for _ in range(2)]
        ratios.append(statistics.mean(halves))
        print(f"start {i + 1}: B/A {ratios[-1]:.4f} (halves {halves[0]:.4f}, {halves[1]:.4f})",
              flush=True)
        b.remove()
    summary("B/A over fresh starts of B" + (" (ASLR off)" if args.no_aslr else ""), ratios)


def copies(args):
    grades, single = [], []
    for g in range(args.grades):
        ratios = []
        for _ in range(args.pairs):
            b = Service("cost-floor-b", 18182, False)
            a = Service("cost-floor-a", 18181, False)
            side_by_side(a, b, args.warm, args.rate)
            ratios.append(side_by_side(a, b, args.secs, args.rate))
            a.remove()
            b.remove()
        grades.append(statistics.mean(ratios))
        single += ratios
        print(f"grade {g + 1}: {grades[-1]:.4f} (pairs {', '.join(f'{r:.3f}' for r in ratios)})",
              flush=True)
    summary("one pair", single)
    summary(f"a grade (mean of {args.pairs} pairs)", grades)


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="mode", required=True)
    f = sub.add_parser("fresh", help="one long-lived process against fresh ones")
    f.add_argument("--starts", type=int, default=10)
    f.add_argument("--secs", type=float, default=20.0, help="counted seconds per start")
    f.add_argument("--no-aslr", action="store_true")
    c = sub.add_parser("copies", help="grades averaged over pairs of fresh processes")
    c.add_argument("--grades", type=int, default=8)
    c.add_argument("--pairs", type=int, default=6)
    c.add_argument("--secs", type=float, default=4.0, help="counted seconds per pair")
    for s in (f, c):
        s.add_argument("--warm", type=float, default=4.0 if s is f else 2.0,
                       help="uncounted seconds first")
        s.add_argument("--rate", type=float, default=50.0, help="rounds per second")
    args = p.parse_args()
    # Ctrl-C and a plain kill both end in the cleanup below (SIGINT even when started in the
    # background, where the shell ignores it).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    subprocess.run(["docker", "build", "-q", "-t", IMAGE, "--label", LABEL, REFERENCE],
                   check=True, stdout=subprocess.DEVNULL)
    try:
        (fresh if args.mode == "fresh" else copies)(args)
    finally:
        left = docker("ps", "-aq", "--filter", f"label={LABEL}").split()
        if left:
            subprocess.run(["docker", "rm", "-f", *left], capture_output=True)


if __name__ == "__main__":
    main()
