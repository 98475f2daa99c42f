#!/usr/bin/env python3
"""Seeded generator of the fraud assignment's data.

Graders keep this file: it holds the true data-generating process, which candidates must not see.
Standard library only, and only exactly reproducible arithmetic: every value comes from
`random.Random` uniforms through additions, multiplications, divisions and comparisons, which
IEEE 754 rounds the same way on every machine. The one transcendental function needed (exp, for
log-normal amounts and Poisson counts) is computed here from those operations, not taken from the
platform's libm, so the CSV files are byte-identical on every machine and Python 3 version.

    python3 graders/fraud/datagen.py                       # regenerate the files in the repository
    python3 graders/fraud/datagen.py --check               # exit 1 if any file differs
    python3 graders/fraud/datagen.py --seed 7 --out-dir /tmp/fraud   # everything in one directory

Outputs: train.csv, validation.csv (public, assignments/fraud/data/), holdout.csv, stream.csv and
reference_stats.json (hidden, graders/fraud/data/), and assignments/fraud/schema.json.
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

DEFAULT_SEED = 20250311
# "stream" is hidden in-distribution traffic for the drift phase: large enough that windows drawn
# from it are (nearly) independent samples, so false alarms are measured fairly.
ROWS = {"train": 20000, "validation": 5000, "holdout": 10000, "stream": 20000}
LABEL = "is_fraud"

CHANNELS = ["online", "pos", "atm"]
COUNTRIES = ["DE", "FR", "NL", "ES", "IT", "GB", "US", "RO"]
MERCHANTS = ["grocery", "restaurant", "fuel", "retail", "electronics", "travel",
             "digital_goods", "gambling", "cash"]

# The public schema. Hard bounds are wider than the data so that values past the training range
# (answered, and drift) can be told apart from values past the hard bounds (rejected).
FEATURES = [
    {"name": "amount", "type": "number", "nullable": False, "min": 0.0, "max": 50000.0,
     "description": "Transaction amount in EUR (two decimals)."},
    {"name": "hour_of_day", "type": "integer", "nullable": False, "min": 0, "max": 23,
     "description": "Hour of the transaction, local time of the cardholder's home country."},
    {"name": "account_age_days", "type": "integer", "nullable": False, "min": 0, "max": 20000,
     "description": "Days since the card account was opened."},
    {"name": "txn_count_24h", "type": "integer", "nullable": False, "min": 0, "max": 1000,
     "description": "Transactions on the same card in the 24 hours before this one."},
    {"name": "distance_from_home_km", "type": "number", "nullable": True, "min": 0.0,
     "max": 20040.0,
     "description": "Distance between the transaction's location (terminal, or the buyer's IP "
                    "address online) and the cardholder's home address, in km (one decimal); "
                    "null when the location could not be determined."},
    {"name": "device_score", "type": "number", "nullable": True, "min": 0.0, "max": 1.0,
     "description": "Risk score of the buyer's device from the device-fingerprinting service, "
                    "0 (trusted) to 1 (three decimals); null when no device was fingerprinted: "
                    "always for card-present channels, and online when fingerprinting failed."},
    {"name": "merchant_category", "type": "categorical", "nullable": True, "values": MERCHANTS,
     "description": "Merchant category (`cash` for ATM withdrawals); null when the acquirer did "
                    "not report it."},
    {"name": "channel", "type": "categorical", "nullable": False, "values": CHANNELS,
     "description": "`online` (card not present, e-commerce), `pos` (in-store terminal) or `atm` "
                    "(cash withdrawal)."},
    {"name": "card_present", "type": "boolean", "nullable": False,
     "description": "Whether the physical card was read (chip, stripe or contactless); false for "
                    "online purchases and for card numbers keyed in by hand at a terminal."},
    {"name": "is_foreign", "type": "boolean", "nullable": False,
     "description": "Whether the transaction took place outside the cardholder's home country."},
    {"name": "country", "type": "categorical", "nullable": False, "values": COUNTRIES,
     "description": "ISO 3166-1 alpha-2 code of the country of the merchant or ATM."},
]
CATEGORICAL_MAX_LENGTH = 64
COLUMNS = [f["name"] for f in FEATURES] + [LABEL]


# --- exactly reproducible draws -------------------------------------------------------------

LN2 = 0.6931471805599453


def exp(x):
    """e**x from + - * / and ldexp only (same bits everywhere), relative error below 1e-15."""
    k = math.floor(x / LN2 + 0.5)
    r = x - k * LN2
    term = total = 1.0
    for i in range(1, 18):
        term = term * r / i
        total += term
    return math.ldexp(total, k)


def normal(rng, mean, sd):
    """Approximately normal: Irwin-Hall sum of 12 uniforms (bounded to mean +- 6 sd)."""
    return mean + sd * (sum(rng.random() for _ in range(12)) - 6.0)


def lognormal(rng, median, sigma):
    return median * exp(normal(rng, 0.0, sigma))


def exponential(rng, mean):
    """Exponential draw without logarithms: geometric halvings plus a uniform remainder.

    P(X > k * m * ln 2) = 2^-k is exact at the halving points; between them it is linear, which
    is close enough for synthetic data.
    """
    step = mean * LN2
    k = 0
    while rng.random() < 0.5 and k < 60:
        k += 1
    return step * (k + rng.random())


def poisson(rng, lam):
    """Poisson by counting uniform products above exp(-lam)."""
    limit = exp(-lam)
    k, prod = 0, rng.random()
    while prod > limit:
        k += 1
        prod *= rng.random()
    return k


def choice(rng, weighted):
    """One value of [(value, weight), ...]; the weights need not sum to 1."""
    total = 0.0
    for _, w in weighted:
        total += w
    u = rng.random() * total
    acc = 0.0
    for value, weight in weighted:
        acc += weight
        if u < acc:
            return value
    return weighted[-1][0]


def clip(x, lo, hi):
    return lo if x < lo else hi if x > hi else x


# --- the data-generating process ------------------------------------------------------------
#
# Class first: the channel, then whether the transaction is fraud (a rate per channel), then the
# features from distributions that depend on both. DISGUISED of the frauds are drawn like
# legitimate transactions (`looks` is 0 for them): no model can find those, which keeps ranking
# quality realistic (ROC AUC about 0.93 at best). The fraud patterns differ by channel:
# - online: new accounts, risky devices (and devices that dodge fingerprinting: a missing
#   device_score is itself a signal), electronics / digital goods / gambling, large amounts, and
#   card testing (bursts of tiny amounts);
# - pos: hand-keyed card numbers (card_present false), electronics / retail, larger amounts;
# - atm (skimmed cards cashed out): night hours (a non-monotone effect of hour_of_day), abroad,
#   several withdrawals in a day, larger withdrawals; the account is as old as anyone's and the
#   merchant is always `cash`, so the online signals say nothing here. This is the declared
#   segment: a model fitted to the dominant online pattern ranks it worse.

CHANNEL_SHARE = [("online", 0.55), ("pos", 0.30), ("atm", 0.15)]
DISGUISED = 0.08
FRAUD_RATE = {"online": 0.009, "pos": 0.006, "atm": 0.022}
HOME = [("DE", 0.45), ("FR", 0.20), ("NL", 0.15), ("ES", 0.10), ("IT", 0.10)]
DOMESTIC = {("online", 0): 0.82, ("pos", 0): 0.93, ("atm", 0): 0.94,
            ("online", 1): 0.66, ("pos", 1): 0.75, ("atm", 1): 0.45}
ABROAD = {0: {"DE": 0.20, "FR": 0.20, "NL": 0.10, "ES": 0.20, "IT": 0.15, "GB": 0.10,
              "US": 0.04, "RO": 0.01},
          1: {"DE": 0.08, "FR": 0.08, "NL": 0.06, "ES": 0.10, "IT": 0.08, "GB": 0.15,
              "US": 0.20, "RO": 0.25}}
# Typical distance (km, mean and sd) from a home in continental western Europe.
FAR = {"GB": (900.0, 300.0), "US": (7000.0, 1200.0), "RO": (1600.0, 350.0)}

# Relative frequency of each hour.
HOURS_DAY = [0.6, 0.4, 0.3, 0.25, 0.25, 0.4, 1.0, 2.0, 3.5, 4.5, 5.0, 5.5,
             6.0, 5.8, 5.5, 5.4, 5.6, 6.0, 6.2, 5.8, 5.0, 4.0, 2.8, 1.6]
HOURS_ONLINE_FRAUD = [3.0, 3.2, 3.4, 3.4, 3.0, 2.4, 2.0, 2.2, 2.6, 3.0, 3.2, 3.4,
                      3.6, 3.6, 3.4, 3.4, 3.4, 3.6, 3.8, 3.8, 3.8, 3.8, 3.6, 3.2]
HOURS_ATM_FRAUD = [6.0, 8.0, 8.0, 7.0, 5.0, 2.5, 1.5, 1.2, 1.5, 2.0, 2.0, 2.0,
                   2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.2, 2.5, 3.0, 4.0, 5.0]

MERCHANT_MIX = {
    ("online", 0): [("grocery", 0.15), ("restaurant", 0.10), ("retail", 0.30),
                    ("electronics", 0.10), ("travel", 0.08), ("digital_goods", 0.24),
                    ("gambling", 0.03)],
    ("online", 1): [("grocery", 0.03), ("restaurant", 0.02), ("retail", 0.17),
                    ("electronics", 0.28), ("travel", 0.12), ("digital_goods", 0.28),
                    ("gambling", 0.10)],
    ("pos", 0): [("grocery", 0.30), ("restaurant", 0.20), ("fuel", 0.15), ("retail", 0.25),
                 ("electronics", 0.05), ("travel", 0.03), ("gambling", 0.02)],
    ("pos", 1): [("grocery", 0.10), ("restaurant", 0.05), ("fuel", 0.15), ("retail", 0.27),
                 ("electronics", 0.28), ("travel", 0.10), ("gambling", 0.05)],
}
# Median amount (EUR) by merchant category.
MEDIAN_AMOUNT = {"grocery": 38.0, "restaurant": 28.0, "fuel": 55.0, "retail": 45.0,
                 "electronics": 160.0, "travel": 220.0, "digital_goods": 12.0, "gambling": 40.0}
ATM_AMOUNTS = {0: [(20, 0.08), (50, 0.25), (100, 0.30), (150, 0.08), (200, 0.17), (300, 0.06),
                   (400, 0.03), (500, 0.03)],
               1: [(20, 0.03), (50, 0.12), (100, 0.20), (150, 0.05), (200, 0.20), (300, 0.12),
                   (400, 0.08), (500, 0.20)]}


def home_distance(rng, channel, fraud):
    """Distance of a domestic transaction."""
    if channel == "online":
        return exponential(rng, 120.0 if fraud else 30.0)
    d = exponential(rng, 6.0)
    if rng.random() < 0.10:          # a trip inside the country
        d += exponential(rng, 150.0)
    return d


def make_row(rng):
    channel = choice(rng, CHANNEL_SHARE)
    fraud = 1 if rng.random() < FRAUD_RATE[channel] else 0
    # Most fraud shows its channel's pattern (looks = 1); the rest looks legitimate.
    looks = 1 if fraud and rng.random() >= DISGUISED else 0
    home = choice(rng, HOME)

    if rng.random() < DOMESTIC[(channel, looks)]:
        country = home
        distance = home_distance(rng, channel, looks)
    else:
        country = choice(rng, [(c, w) for c, w in ABROAD[looks].items() if c != home])
        mean, sd = FAR.get(country, (850.0, 350.0))
        distance = normal(rng, mean, sd)
    distance = round(clip(distance, 0.0, 12000.0), 1)
    is_foreign = country != home

    # Online fraud: new-account fraud (a fresh account) or account takeover (an old one), and a
    # share of it card testing.
    new_account = channel == "online" and looks and rng.random() < 0.40
    card_testing = channel == "online" and looks and rng.random() < 0.22

    if new_account:
        age = exponential(rng, 15.0)
    elif rng.random() < 0.06:
        age = rng.random() * 90.0
    else:
        age = 90.0 + exponential(rng, 1400.0)
    account_age = int(clip(age, 0, 9000))

    if channel == "atm":
        hours = HOURS_ATM_FRAUD if looks else HOURS_DAY
    else:
        hours = HOURS_ONLINE_FRAUD if looks and channel == "online" else HOURS_DAY
    hour = choice(rng, list(enumerate(hours)))

    if channel == "atm":
        merchant = "cash"
        amount = float(choice(rng, ATM_AMOUNTS[looks]))
        count = poisson(rng, 3.0 if looks else 1.2)
    else:
        merchant = choice(rng, MERCHANT_MIX[(channel, looks)])
        if card_testing:
            amount = 0.5 + 4.5 * rng.random()
            count = 6 + poisson(rng, 10.0)
        else:
            amount = lognormal(rng, MEDIAN_AMOUNT[merchant] * (2.2 if looks else 1.0),
                               0.85 if channel == "pos" else 1.0)
            count = poisson(rng, (3.5 if looks else 2.0) if channel == "online"
                            else (3.0 if looks else 1.8))
    amount = round(clip(amount, 0.5, 20000.0), 2)
    count = min(count, 60)

    if channel == "online":
        card_present = False
        if rng.random() < (0.35 if looks else 0.06):
            device = None
        else:
            device = round(clip(normal(rng, 0.48, 0.20) if looks else normal(rng, 0.20, 0.13),
                                0.0, 1.0), 3)
    else:
        card_present = True if channel == "atm" else rng.random() < (0.50 if looks else 0.96)
        device = None

    if rng.random() < 0.04:
        distance = None
    if rng.random() < 0.03:
        merchant = None

    return {
        "amount": amount, "hour_of_day": hour, "account_age_days": account_age,
        "txn_count_24h": count, "distance_from_home_km": distance, "device_score": device,
        "merchant_category": merchant, "channel": channel, "card_present": card_present,
        "is_foreign": is_foreign, "country": country, LABEL: fraud,
    }


def check_bounds(row):
    for f in FEATURES:
        v = row[f["name"]]
        if v is None:
            assert f["nullable"], f["name"]
        elif f["type"] in ("integer", "number"):
            assert not isinstance(v, bool) and f["min"] <= v <= f["max"], (f["name"], v)
            if f["type"] == "integer":
                assert isinstance(v, int), (f["name"], v)
        elif f["type"] == "categorical":
            assert v in f["values"], (f["name"], v)
        else:
            assert isinstance(v, bool), (f["name"], v)


DECIMALS = {"amount": 2, "distance_from_home_km": 1, "device_score": 3}


def cell(name, value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.{DECIMALS[name]}f}"
    return str(value)


def generate(seed, split, n):
    # A string seed goes through SHA-512 in random.seed: stable across runs and machines, and
    # each split gets its own stream.
    rng = random.Random(f"fraud:{seed}:{split}")
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
        w.writerow([cell(c, row[c]) for c in COLUMNS])
    return buf.getvalue().encode("utf-8")


def schema_json():
    schema = {
        "name": "fraud",
        "label": {"name": LABEL, "type": "integer", "values": [0, 1],
                  "description": "1 if the transaction was confirmed fraudulent (chargeback or "
                                 "cardholder dispute upheld)."},
        "categorical_max_length": CATEGORICAL_MAX_LENGTH,
        "features": FEATURES,
    }
    return (json.dumps(schema, indent=2) + "\n").encode("utf-8")


def summarize(rows):
    """Per-feature statistics of one split (graders' reference for drift scenarios)."""
    out = {"rows": len(rows), "fraud_rate": round(sum(r[LABEL] for r in rows) / len(rows), 4),
           "fraud_rate_by_channel": {}, "features": {}}
    for ch in CHANNELS:
        sub = [r for r in rows if r["channel"] == ch]
        out["fraud_rate_by_channel"][ch] = {
            "rows": len(sub), "frauds": sum(r[LABEL] for r in sub),
            "rate": round(sum(r[LABEL] for r in sub) / max(len(sub), 1), 4)}
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
        "generator": "graders/fraud/datagen.py",
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
    ap.add_argument("--public-dir", default=os.path.join(repo, "assignments", "fraud", "data"))
    ap.add_argument("--hidden-dir", default=os.path.join(repo, "graders", "fraud", "data"))
    ap.add_argument("--schema-dir", default=os.path.join(repo, "assignments", "fraud"))
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
