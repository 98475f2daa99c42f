#!/usr/bin/env python3
"""Seeded generator of the churn assignment's data.

Graders keep this file: it holds the true data-generating function, which candidates must not see.
Standard library only, and only exactly reproducible arithmetic for feature values (normals are
Irwin-Hall sums of uniforms, exponentials come from repeated halving), so the CSV files are
byte-identical on every machine and Python 3 version. The label uses math.exp once per row; a
one-ulp difference there could flip a label only if a uniform draw fell within 1e-16 of it.

    python3 graders/churn/datagen.py                       # regenerate the files in the repository
    python3 graders/churn/datagen.py --check               # exit 1 if any file differs
    python3 graders/churn/datagen.py --seed 7 --out-dir /tmp/churn   # everything in one directory

Outputs: train.csv, validation.csv (public, assignments/churn/data/), holdout.csv and
reference_stats.json (hidden, graders/churn/data/), and assignments/churn/schema.json.
"""

import argparse
import csv
import hashlib
import io
import json
import math
import os
import random
import sys

DEFAULT_SEED = 20240917
# "stream" is hidden in-distribution traffic for the drift phase: large enough that windows drawn
# from it are (nearly) independent samples, so false alarms are measured fairly.
ROWS = {"train": 8000, "validation": 2000, "holdout": 2000, "stream": 20000}
LABEL = "churned"

# The public schema. Hard bounds are wider than the data so that values past the training range
# (answered, and drift) can be told apart from values past the hard bounds (rejected).
FEATURES = [
    {"name": "tenure_months", "type": "integer", "nullable": False, "min": 0, "max": 120,
     "description": "Whole months the customer has been subscribed."},
    {"name": "monthly_charges", "type": "number", "nullable": False, "min": 0.0, "max": 500.0,
     "description": "Current monthly bill, in currency units (two decimals)."},
    {"name": "total_charges", "type": "number", "nullable": True, "min": 0.0, "max": 50000.0,
     "description": "Amount billed over the whole tenure; null when billing has not reported it."},
    {"name": "contract", "type": "categorical", "nullable": False,
     "values": ["month-to-month", "one-year", "two-year"],
     "description": "Contract term."},
    {"name": "payment_method", "type": "categorical", "nullable": False,
     "values": ["electronic-check", "mailed-check", "bank-transfer", "credit-card"],
     "description": "How the customer pays."},
    {"name": "internet_service", "type": "categorical", "nullable": False,
     "values": ["dsl", "fiber-optic", "none"],
     "description": "Internet product subscribed to, if any."},
    {"name": "support_calls", "type": "integer", "nullable": False, "min": 0, "max": 50,
     "description": "Calls to customer support in the last 90 days."},
    {"name": "has_partner", "type": "boolean", "nullable": False,
     "description": "Whether the customer has a partner on file."},
    {"name": "age", "type": "integer", "nullable": True, "min": 18, "max": 120,
     "description": "Customer age in years; null when unknown."},
    {"name": "days_since_last_login", "type": "integer", "nullable": True, "min": 0, "max": 3650,
     "description": "Days since the last login to the customer portal; null if never logged in."},
]
CATEGORICAL_MAX_LENGTH = 64
COLUMNS = [f["name"] for f in FEATURES] + [LABEL]


# --- exactly reproducible draws -------------------------------------------------------------

def normal(rng, mean, sd):
    """Approximately normal: Irwin-Hall sum of 12 uniforms (bounded to mean +- 6 sd)."""
    return mean + sd * (sum(rng.random() for _ in range(12)) - 6.0)


def exponential(rng, mean):
    """Exponential draw without logarithms: geometric halvings plus a uniform remainder.

    P(X > k * m * ln 2) = 2^-k is exact at the halving points; between them it is linear, which
    is close enough for synthetic data and needs no transcendental function.
    """
    step = mean * 0.6931471805599453
    k = 0
    while rng.random() < 0.5 and k < 60:
        k += 1
    return step * (k + rng.random())


def poisson(rng, lam):
    """Poisson by counting uniform products below exp(-lam) (lam is a constant)."""
    limit = math.exp(-lam)
    k, prod = 0, rng.random()
    while prod > limit:
        k += 1
        prod *= rng.random()
    return k


def choice(rng, weighted):
    u = rng.random()
    acc = 0.0
    for value, weight in weighted:
        acc += weight
        if u < acc:
            return value
    return weighted[-1][0]


def clip(x, lo, hi):
    return lo if x < lo else hi if x > hi else x


# --- the data-generating function -----------------------------------------------------------

def make_row(rng):
    contract = choice(rng, [("month-to-month", 0.55), ("one-year", 0.25), ("two-year", 0.20)])
    if contract == "month-to-month":
        tenure = exponential(rng, 13.0)
    elif contract == "one-year":
        tenure = normal(rng, 32.0, 15.0)
    else:
        tenure = normal(rng, 50.0, 14.0)
    tenure = int(clip(round(tenure), 0, 72))

    internet = choice(rng, [("dsl", 0.35), ("fiber-optic", 0.45), ("none", 0.20)])
    if internet == "none":
        monthly = normal(rng, 22.0, 3.0)
    elif internet == "dsl":
        monthly = normal(rng, 56.0, 11.0)
    else:
        monthly = normal(rng, 88.0, 12.0)
    monthly = round(clip(monthly, 18.0, 130.0), 2)

    total = tenure * monthly * normal(rng, 1.0, 0.04) + (rng.random() * monthly if tenure else 0.0)
    total = round(clip(total, 0.0, 12000.0), 2)
    if rng.random() < 0.07:
        total = None

    payment = choice(rng, [("electronic-check", 0.33), ("mailed-check", 0.22),
                           ("bank-transfer", 0.22), ("credit-card", 0.23)])
    support = min(poisson(rng, 2.1 if internet == "fiber-optic" else 1.3), 20)
    partner = rng.random() < 0.48

    age = int(clip(round(normal(rng, 45.0, 15.0)), 18, 90))
    if rng.random() < 0.08:
        age = None

    login = int(clip(round(exponential(rng, 16.0 if contract == "month-to-month" else 10.0)), 0, 365))
    if rng.random() < 0.06:
        login = None

    z = -2.3
    z += {"month-to-month": 1.1, "one-year": -0.2, "two-year": -1.1}[contract]
    z += -0.04 * tenure
    z += 0.018 * (monthly - 65.0)
    z += {"dsl": 0.0, "fiber-optic": 0.5, "none": -0.6}[internet]
    z += 0.55 if payment == "electronic-check" else 0.0
    z += 0.34 * support
    z += -0.35 if partner else 0.0
    z += -0.012 * (age - 45) if age is not None else 0.25
    z += 0.035 * min(login, 90) if login is not None else 0.9
    z += normal(rng, 0.0, 0.35)
    p = 1.0 / (1.0 + math.exp(-z))
    churned = 1 if rng.random() < p else 0

    return {
        "tenure_months": tenure, "monthly_charges": monthly, "total_charges": total,
        "contract": contract, "payment_method": payment, "internet_service": internet,
        "support_calls": support, "has_partner": partner, "age": age,
        "days_since_last_login": login, LABEL: churned,
    }


def check_bounds(row):
    for f in FEATURES:
        v = row[f["name"]]
        if v is None:
            assert f["nullable"], f["name"]
        elif f["type"] in ("integer", "number"):
            assert f["min"] <= v <= f["max"], (f["name"], v)
        elif f["type"] == "categorical":
            assert v in f["values"], (f["name"], v)
        else:
            assert isinstance(v, bool), (f["name"], v)


def cell(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def generate(seed, split, n):
    # A string seed goes through SHA-512 in random.seed: stable across runs and machines, and
    # each split gets its own stream.
    rng = random.Random(f"churn:{seed}:{split}")
    rows = []
    for _ in range(n):
        row = make_row(rng)
        check_bounds(row)
        rows.append(row)
    return rows


def to_csv(rows):
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    for row in rows:
        w.writerow([cell(row[c]) for c in COLUMNS])
    return buf.getvalue().encode("utf-8")


def schema_json():
    schema = {
        "name": "churn",
        "label": {"name": LABEL, "type": "integer", "values": [0, 1],
                  "description": "1 if the customer cancelled within the next 30 days."},
        "categorical_max_length": CATEGORICAL_MAX_LENGTH,
        "features": FEATURES,
    }
    return (json.dumps(schema, indent=2) + "\n").encode("utf-8")


def summarize(rows):
    """Per-feature statistics of one split (graders' reference for drift scenarios)."""
    out = {"rows": len(rows), "churn_rate": round(sum(r[LABEL] for r in rows) / len(rows), 4),
           "features": {}}
    for f in FEATURES:
        vals = [r[f["name"]] for r in rows]
        present = [v for v in vals if v is not None]
        s = {"type": f["type"], "missing_share": round(1 - len(present) / len(vals), 4)}
        if f["type"] in ("integer", "number"):
            mean = sum(present) / len(present)
            var = sum((v - mean) ** 2 for v in present) / (len(present) - 1)
            s.update(min=min(present), max=max(present), mean=round(mean, 4),
                     sd=round(math.sqrt(var), 4))
        else:
            keys = f.get("values", [True, False])
            s["shares"] = {str(k).lower() if isinstance(k, bool) else k:
                           round(sum(1 for v in present if v == k) / len(present), 4) for k in keys}
        out["features"][f["name"]] = s
    return out


def build(seed):
    """All output files as {(place, filename): bytes}; place is 'public', 'hidden' or 'schema'."""
    splits = {name: generate(seed, name, n) for name, n in ROWS.items()}
    files = {("public", "train.csv"): to_csv(splits["train"]),
             ("public", "validation.csv"): to_csv(splits["validation"]),
             ("hidden", "holdout.csv"): to_csv(splits["holdout"]),
             ("hidden", "stream.csv"): to_csv(splits["stream"]),
             ("schema", "schema.json"): schema_json()}
    stats = {
        "seed": seed,
        "generator": "graders/churn/datagen.py",
        "sha256": {name: hashlib.sha256(data).hexdigest() for (_, name), data in files.items()},
        "splits": {name: summarize(rows) for name, rows in splits.items()},
    }
    files[("hidden", "reference_stats.json")] = (json.dumps(stats, indent=2) + "\n").encode("utf-8")
    return files


def main(argv=None):
    repo = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--out-dir", help="write every file into this one directory")
    ap.add_argument("--public-dir", default=os.path.join(repo, "assignments", "churn", "data"))
    ap.add_argument("--hidden-dir", default=os.path.join(repo, "graders", "churn", "data"))
    ap.add_argument("--schema-dir", default=os.path.join(repo, "assignments", "churn"))
    ap.add_argument("--check", action="store_true",
                    help="compare with the files on disk instead of writing; exit 1 on a difference")
    args = ap.parse_args(argv)

    places = {"public": args.public_dir, "hidden": args.hidden_dir, "schema": args.schema_dir}
    if args.out_dir:
        places = {k: args.out_dir for k in places}

    differ = 0
    for (place, name), data in build(args.seed).items():
        path = os.path.join(places[place], name)
        if args.check:
            try:
                with open(path, "rb") as fh:
                    same = fh.read() == data
            except FileNotFoundError:
                same = False
            if not same:
                print(f"differs: {path}", file=sys.stderr)
                differ += 1
            continue
        os.makedirs(places[place], exist_ok=True)
        tmp = path + ".tmp"
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
        print(f"wrote {path} ({len(data)} bytes)")
    if args.check:
        print("all files match" if not differ else f"{differ} file(s) differ")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
