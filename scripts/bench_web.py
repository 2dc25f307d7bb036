#!/usr/bin/env python3
"""Web benchmark on a study the size of hh-rlhf train (160,800 pairs; build it with
`scripts/bench_analysis.py … --keep DIR`): pairs-list API latency under concurrent load (ApacheBench,
Debian's apache2-utils), the overview's first render in headless Chromium (chromedriver), and the
gzipped size of the web bundle.

Latency: `ab -n N -c C` on pairs-list URLs of the study (a plain page, a report slice sorted by
margin, a full-text search, a deep page), after one warm-up request that loads the study into
the server's cache; p50/p95/p99 as ab reports them. ab repeats one URL, so after its first request
the server answers from its cache of recent views (what paging through one view costs). The
"new view every request" rows use a different URL per request (a random margin range sorted by
margin; two random words searched with OR, below a random margin), N requests from C threads, so every request filters and sorts
afresh. The cold first request (study load from DuckDB) and the first search (which builds the
dataset's search index, or opens it from disk) are reported beside them.

First render: a fresh Chromium session opens the overview URL; the app marks
`performance.mark("seal-report-rendered")` once the report's figures are in the page; the mark's
time since navigation start is the first render. Best and median of --runs sessions (the server's
report cache is warm after the first).

Usage: bench_web.py SEAL_BINARY DATA_DIR [--requests 2000] [--concurrency 8] [--runs 5]
"""
import argparse
import concurrent.futures
import gzip
import json
import os
import random
import re
import socket
import statistics
import subprocess
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STUDY = "dataset=train&pre=pre&post=post&labels=synthetic"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, timeout=60):
    t0 = time.time()
    while time.time() - t0 < timeout:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listens on {port}")


def get(url):
    t0 = time.perf_counter()
    with urllib.request.urlopen(url, timeout=600) as r:
        body = r.read()
    return time.perf_counter() - t0, body


def ab(url, n, c):
    out = subprocess.run(["ab", "-q", "-n", str(n), "-c", str(c), url], check=True, capture_output=True, text=True).stdout
    pct = {int(m.group(1)): int(m.group(2)) for m in re.finditer(r"^\s+(\d+)%\s+(\d+)", out, re.M)}
    failed = int(re.search(r"Failed requests:\s+(\d+)", out).group(1))
    rps = float(re.search(r"Requests per second:\s+([\d.]+)", out).group(1))
    return {"p50_ms": pct[50], "p95_ms": pct[95], "p99_ms": pct[99], "max_ms": pct[100], "failed": failed,
            "requests_per_s": rps}


def varied(urls, c):
    """Latency percentiles of GETs of `urls`, `c` at a time."""
    def one(u):
        t, _ = get(u)
        return t * 1000.0
    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(c) as pool:
        ms = sorted(pool.map(one, urls))
    wall = time.perf_counter() - t0
    pick = lambda q: round(ms[min(len(ms) - 1, int(q * len(ms)))])
    return {"p50_ms": pick(0.50), "p95_ms": pick(0.95), "p99_ms": pick(0.99), "max_ms": round(ms[-1]), "failed": 0,
            "requests_per_s": round(len(ms) / wall, 1)}


WORDS = ["bomb", "gun", "steal", "kill", "drugs", "money", "police", "car", "school", "friend", "dog", "food",
         "weapon", "hack", "poison", "lie", "fight", "fire", "house", "job", "racist", "joke", "insult", "cheat",
         "alcohol", "prison", "knife", "neighbor", "password", "bank"]


def webdriver(driver, method, path, body=None):
    req = urllib.request.Request(driver + path, method=method, data=json.dumps(body or {}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.loads(r.read())["value"]


def first_render(driver, url):
    caps = {"capabilities": {"alwaysMatch": {"goog:chromeOptions": {"args": [
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1000"]}}}}
    sid = webdriver(driver, "POST", "/session", caps)["sessionId"]
    try:
        webdriver(driver, "POST", f"/session/{sid}/url", {"url": url})
        t0 = time.time()
        while time.time() - t0 < 120:
            ms = webdriver(driver, "POST", f"/session/{sid}/execute/sync", {"script": (
                "const m = performance.getEntriesByName('seal-report-rendered');"
                "return m.length ? m[0].startTime : null;"), "args": []})
            if ms is not None:
                return ms / 1000.0
            time.sleep(0.05)
        raise SystemExit("the overview never rendered its report")
    finally:
        webdriver(driver, "DELETE", f"/session/{sid}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("seal")
    ap.add_argument("data")
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    port = free_port()
    server = subprocess.Popen([args.seal, "--data-dir", args.data, "serve", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out = {"cpus": os.cpu_count()}
    try:
        wait_port(port)
        base = f"http://127.0.0.1:{port}"
        cold, body = get(f"{base}/api/pairs?{STUDY}&limit=50")
        out["pairs_total"] = json.loads(body)["total"]
        out["cold_first_request_s"] = round(cold, 3)
        report_s, _ = get(f"{base}/api/report?{STUDY}")
        out["report_first_request_s"] = round(report_s, 3)
        search_s, _ = get(f"{base}/api/pairs?{STUDY}&q=bomb&limit=50")
        out["search_first_request_s"] = round(search_s, 3)
        urls = {
            "page_1": f"{base}/api/pairs?{STUDY}&limit=50",
            "slice_sorted": f"{base}/api/pairs?{STUDY}&regime=resisted&gamma=r&sort=post_margin&dir=desc&limit=50",
            "deep_page": f"{base}/api/pairs?{STUDY}&sort=shift&offset=150000&limit=50",
            "text_search": f"{base}/api/pairs?{STUDY}&q=bomb&limit=50",
        }
        out["latency"] = {name: ab(u, args.requests, args.concurrency) for name, u in urls.items()}
        rng = random.Random(7)
        ranges = [sorted((rng.uniform(-4, 4), rng.uniform(-4, 4))) for _ in range(args.requests)]
        out["latency"]["new_view_margin_range"] = varied(
            [f"{base}/api/pairs?{STUDY}&margin_min={a:.4f}&margin_max={b:.4f}&sort=post_margin&limit=50"
             for a, b in ranges], args.concurrency)
        out["latency"]["new_view_search"] = varied(
            [f"{base}/api/pairs?{STUDY}&q={rng.choice(WORDS)}%20OR%20{rng.choice(WORDS)}"
             f"&margin_min={rng.uniform(-6, 0):.4f}&sort=pre_margin&limit=50" for _ in range(args.requests)],
            args.concurrency)
        out["load"] = {"requests": args.requests, "concurrency": args.concurrency}

        dport = free_port()
        driver = subprocess.Popen(["chromedriver", f"--port={dport}"], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        try:
            wait_port(dport)
            times = [first_render(f"http://127.0.0.1:{dport}", f"{base}/?{STUDY}") for _ in range(args.runs)]
        finally:
            driver.kill()
        out["first_render_s"] = {"runs": [round(t, 3) for t in times], "best": round(min(times), 3),
                                 "median": round(statistics.median(times), 3)}
    finally:
        server.kill()
    wasm = os.path.join(ROOT, "dist", "seal_frontend_bg.wasm")
    with open(wasm, "rb") as f:
        raw = f.read()
    js = os.path.join(ROOT, "dist", "seal_frontend.js")
    with open(js, "rb") as f:
        js_raw = f.read()
    out["bundle"] = {"wasm_bytes": len(raw), "wasm_gzip_bytes": len(gzip.compress(raw, 9)),
                     "js_gzip_bytes": len(gzip.compress(js_raw, 9))}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
