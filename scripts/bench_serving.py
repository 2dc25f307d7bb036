"""Benchmark: scoring through local inference servers (Open Inference Protocol) against scoring
in-process, on one machine, in one run.

Legs, all with the same batches (--max-batch, --batch-tokens) over the same real hh-rlhf pairs:
  in-process          seal score with ONNX Runtime in the seal process (--threads = cores)
  rest-1x{cores}t     one KServe server with as many ORT threads as cores, over REST
  grpc-1x{cores}t     the same server over gRPC
  rest-{k}x1t         k = 1, 2, 3 KServe servers with one ORT thread each, over REST
                      (the scaling of the work over endpoints)

Throughput excludes loading (the ORT session, or connecting to the endpoints): pairs scored
divided by (seconds - load_seconds) of `seal score --json`. The served legs use a folder with
the tokenizer only and servers that declare their metadata, so no canary batch runs; every
leg's scores are compared with the in-process ones.

  python3 scripts/bench_serving.py --seal target/release/seal --model FOLDER \
      --kserve-python ~/.cache/seal/kserve-venv/bin/python [--pairs N]
"""

import argparse
import gzip
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def find_hh():
    here = os.path.join(ROOT, "..", "shared", "data", "hh-rlhf", "harmless-base", "test.jsonl.gz")
    return os.environ.get("SEAL_HH_TEST", here)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, python, folder, threads, log_dir):
        self.http, self.grpc = free_port(), free_port()
        self.log = open(os.path.join(log_dir, f"kserve-{self.http}.log"), "w")
        self.proc = subprocess.Popen(
            [python, os.path.join(ROOT, "tests", "servers", "kserve_onnx.py"), "--model-dir", os.path.abspath(folder),
             "--name", "rm", "--http-port", str(self.http), "--grpc-port", str(self.grpc),
             "--declare-metadata", "--threads", str(threads)],
            stdout=self.log, stderr=subprocess.STDOUT, cwd=log_dir)
        deadline = time.time() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.http}/v2/health/ready", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if self.proc.poll() is not None or time.time() > deadline:
                raise SystemExit(f"KServe server did not start; see {self.log.name}")
            time.sleep(0.2)

    def rest(self):
        return f"http://127.0.0.1:{self.http}/v2/models/rm"

    def grpc_url(self):
        return f"grpc://127.0.0.1:{self.grpc}/rm"

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        self.log.close()


def seal(args, data, *rest):
    res = subprocess.run([args.seal, "--data-dir", data, "--json", *rest], check=True, capture_output=True,
                         text=True)
    return json.loads(res.stdout) if res.stdout.strip() else None


def scores(args, data, work, name):
    out = os.path.join(work, f"{name}.jsonl")
    seal(args, data, "export", "scores", "--dataset", "bench", "--model", name, "--out", out)
    with open(out) as f:
        return {r["pair_id"]: (r["chosen_score"], r["rejected_score"]) for r in map(json.loads, f)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seal", required=True)
    ap.add_argument("--model", required=True, help="an exported model folder (model.onnx + tokenizer)")
    ap.add_argument("--kserve-python", required=True)
    ap.add_argument("--pairs", type=int, default=2312)
    ap.add_argument("--max-batch", default="8")
    ap.add_argument("--batch-tokens", default="4096")
    ap.add_argument("--in-flight", default="4")
    ap.add_argument("--out")
    args = ap.parse_args()
    cores = os.cpu_count()

    work = tempfile.mkdtemp(prefix="seal-bench-serving-")
    with gzip.open(find_hh(), "rt", encoding="utf-8") as f:
        lines = [line for line in f][: args.pairs]
    subset = os.path.join(work, "harmless-base", "test.jsonl")
    os.makedirs(os.path.dirname(subset))
    with open(subset, "w") as f:
        f.writelines(lines)
    tokenizer_only = os.path.join(work, "tokenizer-only")
    os.makedirs(tokenizer_only)
    for name in ("tokenizer.json", "tokenizer_config.json", "config.json", "special_tokens_map.json"):
        if os.path.exists(os.path.join(args.model, name)):
            shutil.copy(os.path.join(args.model, name), tokenizer_only)
    data = os.path.join(work, "data")
    seal(args, data, "ingest", "--dataset", "bench", subset)
    batches = ["--max-batch", args.max_batch, "--batch-tokens", args.batch_tokens]

    results = {"pairs": len(lines), "cores": cores, "model": os.path.abspath(args.model), "batches": batches,
               "in_flight_per_endpoint": int(args.in_flight), "legs": {}}

    def leg(name, folder, endpoints, extra):
        add = ["models", "add", "--name", name]
        for e in endpoints:
            add += ["--endpoint", e]
        seal(args, data, *add, folder)
        s = seal(args, data, "score", "--dataset", "bench", "--model", name, *batches, *extra)[0]
        busy = s["seconds"] - s["load_seconds"]
        results["legs"][name] = {"endpoints": len(endpoints), "load_seconds": round(s["load_seconds"], 3),
                                 "seconds": round(busy, 3), "pairs_per_s": round(s["scored_now"] / busy, 2)}
        print(f"{name}: {s['scored_now'] / busy:.2f} pairs/s", file=sys.stderr, flush=True)

    leg("in-process", args.model, [], ["--threads", str(cores)])
    reference = scores(args, data, work, "in-process")

    server = Server(args.kserve_python, args.model, cores, work)
    try:
        leg(f"rest-1x{cores}t", tokenizer_only, [server.rest()], ["--in-flight", args.in_flight])
        leg(f"grpc-1x{cores}t", tokenizer_only, [server.grpc_url()], ["--in-flight", args.in_flight])
    finally:
        server.stop()
    servers = [Server(args.kserve_python, args.model, 1, work) for _ in range(3)]
    try:
        for k in (1, 2, 3):
            leg(f"rest-{k}x1t", tokenizer_only, [s.rest() for s in servers[:k]], ["--in-flight", args.in_flight])
    finally:
        for s in servers:
            s.stop()

    worst = 0.0
    for name in results["legs"]:
        if name == "in-process":
            continue
        got = scores(args, data, work, name)
        assert got.keys() == reference.keys(), name
        worst = max(worst, max(abs(a - b) for k in reference for a, b in zip(got[k], reference[k])))
    results["max_abs_diff_served_vs_in_process"] = worst
    base = results["legs"]["in-process"]["pairs_per_s"]
    results["vs_in_process"] = {n: round(l["pairs_per_s"] / base, 3) for n, l in results["legs"].items()}
    one = results["legs"]["rest-1x1t"]["pairs_per_s"]
    results["scaling_vs_one_endpoint"] = {f"{k}": round(results["legs"][f"rest-{k}x1t"]["pairs_per_s"] / one, 3)
                                          for k in (1, 2, 3)}
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
