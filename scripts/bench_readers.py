#!/usr/bin/env python3
"""Readers while a job writes: 20 clients read the example browser of a study the size of
hh-rlhf train (build it with `scripts/bench_analysis.py … --keep DIR`) for a fixed time, first
with the server idle, then while a scoring job scores the same dataset with another model.
Reported per phase: requests, failures, p50/p95/p99 of the pairs list, and how far the job got.

Each reader loops over its own sequence of pairs-list URLs: the first page of the study, a report
slice sorted by margin, and a new view each time (a random margin range sorted by margin), so
both cached views and fresh filtering and sorting are measured. The scoring job writes a chunk
of scores every 64 pairs; it must not empty the readers' caches (the study read does not include
the model being scored) nor take every core.

With --label, a third phase runs while the scoring job and a labelling job write at once: the
labelling job asks a local OpenAI-compatible server this script starts (it answers every key
asked with `false`, at once), so the store takes the answer cache's and the label set's writes
as fast as the server's `[llm] concurrency` lets it.

Usage: bench_readers.py SEAL_BINARY DATA_DIR MODEL_FOLDER [--clients 20] [--seconds 60] [--label]
"""
import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_web import STUDY, free_port, wait_port  # noqa: E402

MODEL = "bench-readers-rm"


def request(method, url, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return r.status, r.read()


def fake_lm():
    """A local OpenAI-compatible chat server answering every key a labelling prompt asks with
    `false`; returns (server, base URL up to /v1, counter of requests answered)."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    answered = [0]
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            prompt = body["messages"][0]["content"]
            keys = [line[2:].split(": ", 1)[0] for line in prompt.splitlines()
                    if line.startswith("- ") and ": " in line and " " not in line[2:].split(": ", 1)[0]]
            content = json.dumps({k: False for k in keys})
            answer = json.dumps({
                "id": "bench", "object": "chat.completion", "model": body.get("model", "m"),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)
            with lock:
                answered[0] += 1

    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{port}/v1", answered


def wait_running(base, job_id):
    t0 = time.time()
    while json.loads(request("GET", f"{base}/api/jobs/{job_id}")[1])["state"] != "running":
        if time.time() - t0 > 120:
            raise SystemExit(f"job {job_id} never started")
        time.sleep(0.2)


def phase(base, clients, seconds, seed):
    """Runs `clients` readers for `seconds`; returns latencies (s) and failures."""
    stop = time.time() + seconds
    latencies, failures = [], []
    lock = threading.Lock()

    def reader(k):
        rng = random.Random(seed * 1000 + k)
        n = 0
        while time.time() < stop:
            kind = n % 3
            if kind == 0:
                url = f"{base}/api/pairs?{STUDY}&limit=50"
            elif kind == 1:
                url = f"{base}/api/pairs?{STUDY}&regime=resisted&gamma=r&sort=post_margin&dir=desc&limit=50"
            else:
                a, b = sorted((rng.uniform(-4, 4), rng.uniform(-4, 4)))
                url = f"{base}/api/pairs?{STUDY}&margin_min={a:.4f}&margin_max={b:.4f}&sort=post_margin&limit=50"
            n += 1
            t0 = time.perf_counter()
            try:
                status, _ = request("GET", url)
                ok = status == 200
            except (urllib.error.URLError, OSError) as e:
                ok, status = False, str(e)
            dt = time.perf_counter() - t0
            with lock:
                (latencies if ok else failures).append(dt if ok else status)

    threads = [threading.Thread(target=reader, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [float("nan")] * 99
    return {"requests": len(latencies) + len(failures), "failures": len(failures),
            "failure_examples": [str(f) for f in failures[:3]],
            "p50_ms": round(q[49] * 1e3, 1), "p95_ms": round(q[94] * 1e3, 1), "p99_ms": round(q[98] * 1e3, 1)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("seal")
    ap.add_argument("data")
    ap.add_argument("model_folder")
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--label", action="store_true", help="a third phase with a labelling job writing too")
    args = ap.parse_args()
    env = dict(os.environ, SEAL_DATA_DIR=args.data)
    lm = None
    if args.label:
        lm, lm_url, answered = fake_lm()
        env.update(SEAL_LLM_BASE_URL=lm_url, SEAL_LLM_MODELS="bench-lm", SEAL_LLM_CONCURRENCY="4")
    subprocess.run([args.seal, "models", "add", "--name", MODEL, "--replace", args.model_folder], env=env,
                   check=True, capture_output=True)
    port = free_port()
    server = subprocess.Popen([args.seal, "serve", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out = {"cpus": os.cpu_count(), "clients": args.clients, "seconds_per_phase": args.seconds}
    try:
        wait_port(port)
        base = f"http://127.0.0.1:{port}"
        request("GET", f"{base}/api/pairs?{STUDY}&limit=50")  # load the study once
        out["idle"] = phase(base, args.clients, args.seconds, 1)
        status, body = request("POST", f"{base}/api/jobs", {"kind": "score", "dataset": "train", "model": MODEL})
        job = json.loads(body)
        wait_running(base, job["id"])
        before = json.loads(request("GET", f"{base}/api/jobs/{job['id']}")[1])["done"]
        out["during_scoring"] = phase(base, args.clients, args.seconds, 2)
        state = json.loads(request("GET", f"{base}/api/jobs/{job['id']}")[1])
        out["job"] = {"state": state["state"], "pairs_done_in_phase": state["done"] - before, "total": state["total"]}
        out["p95_ratio"] = round(out["during_scoring"]["p95_ms"] / out["idle"]["p95_ms"], 2)
        if args.label:
            name = f"bench-readers-{int(time.time())}"
            status, body = request("POST", f"{base}/api/jobs", {"kind": "label", "dataset": "train", "labels": name,
                                                                "model": "bench-lm", "keys": "is_helpful,is_harmless"})
            label_job = json.loads(body)
            wait_running(base, label_job["id"])
            scored = json.loads(request("GET", f"{base}/api/jobs/{job['id']}")[1])["done"]
            asked = answered[0]
            out["during_scoring_and_labelling"] = phase(base, args.clients, args.seconds, 3)
            labelled = json.loads(request("GET", f"{base}/api/jobs/{label_job['id']}")[1])
            scoring = json.loads(request("GET", f"{base}/api/jobs/{job['id']}")[1])
            out["label_job"] = {"state": labelled["state"], "texts_done_in_phase": labelled["done"],
                                "total": labelled["total"], "lm_answers_in_phase": answered[0] - asked}
            out["score_job_in_label_phase"] = {"state": scoring["state"], "pairs_done": scoring["done"] - scored}
            out["p95_ratio_with_labelling"] = round(
                out["during_scoring_and_labelling"]["p95_ms"] / out["idle"]["p95_ms"], 2)
            request("DELETE", f"{base}/api/jobs/{label_job['id']}")
        request("DELETE", f"{base}/api/jobs/{job['id']}")
    finally:
        server.terminate()
        server.wait(timeout=60)
        if lm is not None:
            lm.shutdown()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
