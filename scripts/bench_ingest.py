#!/usr/bin/env python3
"""Ingest benchmark: a synthetic hh-rlhf file the size of hh-rlhf train (160,800 pairs), made
by cycling the real harmless-base test pairs with a marker per line so no two lines are equal,
then timed through `seal ingest` (hyperfine-style: best and median of N runs, each into a fresh
data dir). Usage: bench_ingest.py SEAL_BINARY HH_TEST_FILE [--runs N]
"""
import argparse
import gzip
import json
import os
import statistics
import subprocess
import tempfile
import time

ap = argparse.ArgumentParser()
ap.add_argument("seal")
ap.add_argument("hh_test")
ap.add_argument("--runs", type=int, default=3)
ap.add_argument("--pairs", type=int, default=160_800)
args = ap.parse_args()

with gzip.open(args.hh_test, "rt", encoding="utf-8") as f:
    base = [json.loads(line) for line in f]
work = tempfile.mkdtemp(prefix="seal-bench-ingest-")
path = os.path.join(work, "harmless-base", "train.jsonl.gz")
os.makedirs(os.path.dirname(path))
with gzip.open(path, "wt", encoding="utf-8", compresslevel=6) as f:
    for i in range(args.pairs):
        p = base[i % len(base)]
        tag = f" [{i}]"
        f.write(json.dumps({"chosen": p["chosen"] + tag, "rejected": p["rejected"] + tag}) + "\n")
size = os.path.getsize(path)
times = []
for r in range(args.runs):
    data = tempfile.mkdtemp(prefix="seal-bench-data-")
    t0 = time.perf_counter()
    out = subprocess.run([args.seal, "--data-dir", data, "--json", "ingest", "--dataset", "train", path],
                         check=True, capture_output=True, text=True)
    times.append(time.perf_counter() - t0)
    n = json.loads(out.stdout)["sources"][0]["n_pairs"]
    assert n == args.pairs, n
    db = os.path.getsize(os.path.join(data, "seal.duckdb"))
print(json.dumps({"pairs": args.pairs, "gz_bytes": size, "runs": [round(t, 3) for t in times],
                  "best_s": round(min(times), 3), "median_s": round(statistics.median(times), 3),
                  "pairs_per_s": round(args.pairs / min(times)), "store_bytes": db}, indent=2))
