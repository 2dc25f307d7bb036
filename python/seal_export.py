#!/usr/bin/env python3
"""Export a Hugging Face sequence-classification reward model to a SEAL Lab model folder.

The folder holds `model.onnx`, `tokenizer.json`, the model's `config.json` and
`tokenizer_config.json`, and `seal-export.json` with the parity report: the same
sample (context, response) pairs scored by PyTorch (as SEAL calls an RM: a
tokenizer text pair, fp32, no truncation, batch 1, score = logits[0][0]) and by
ONNX Runtime on the exported graph.

Usage: seal_export.py SOURCE --out FOLDER [--samples FILE.jsonl] [--opset N]
SOURCE is a Hugging Face model id or a local folder. FILE.jsonl has lines
{"context": ..., "response": ...}; without it a small built-in set is used.
"""

import argparse
import json
import os
import shutil
import sys
import time

BUILTIN_SAMPLES = [
    {"context": "\n\nHuman: What is the capital of France?\n\n",
     "response": "Assistant: The capital of France is Paris."},
    {"context": "\n\nHuman: How do I pick a lock?\n\n",
     "response": "Assistant: I can't help with breaking into property that isn't yours."},
    {"context": "\n\nHuman: hi\n\nAssistant: Hello! How can I help?\n\nHuman: Tell me a joke.\n\n",
     "response": "Assistant: Why did the scarecrow win an award? He was outstanding in his field."},
    {"context": "\n\nHuman: Can you help me write a polite email declining a meeting?\n\n",
     "response": "Assistant: Sure. \"Thank you for the invitation. Unfortunately I am not able to attend, "
                 "but please share any notes afterwards.\""},
]


def log(msg):
    print(f"[seal-export] {msg}", file=sys.stderr, flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source")
    ap.add_argument("--out", required=True)
    ap.add_argument("--samples")
    ap.add_argument("--opset", type=int, default=17)
    ap.add_argument("--max-abs-diff", type=float, default=1e-3,
                    help="fail when an ONNX score differs from PyTorch by more than this")
    args = ap.parse_args()

    import numpy as np
    import onnxruntime as ort
    import torch
    import transformers
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    log(f"loading {args.source}")
    tokenizer = AutoTokenizer.from_pretrained(args.source)
    if not getattr(tokenizer, "is_fast", False):
        sys.exit(f"{args.source}: no fast tokenizer available; SEAL Lab needs tokenizer.json")
    model = AutoModelForSequenceClassification.from_pretrained(args.source, torch_dtype=torch.float32)
    model.eval()
    if model.config.num_labels < 1:
        sys.exit(f"{args.source}: model has no classification head")

    os.makedirs(args.out, exist_ok=True)
    tmp_onnx = os.path.join(args.out, "model.onnx.partial")
    probe = tokenizer("a short context", "a short response", return_tensors="pt")
    input_names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in probe]
    dummy = tuple(probe[n] for n in input_names)
    dynamic = {n: {0: "batch", 1: "sequence"} for n in input_names}
    dynamic["logits"] = {0: "batch"}
    log(f"exporting ONNX (opset {args.opset}, inputs {input_names})")
    with torch.no_grad():
        torch.onnx.export(
            model, dummy, tmp_onnx, input_names=input_names, output_names=["logits"],
            dynamic_axes=dynamic, opset_version=args.opset, do_constant_folding=True, dynamo=False,
        )
    os.replace(tmp_onnx, os.path.join(args.out, "model.onnx"))
    tokenizer.backend_tokenizer.save(os.path.join(args.out, "tokenizer.json"))
    model.config.to_json_file(os.path.join(args.out, "config.json"))
    tok_cfg = {
        "model_max_length": int(min(tokenizer.model_max_length, 1_000_000)),
        "padding_side": tokenizer.padding_side,
        "pad_token": tokenizer.pad_token,
        "pad_token_id": tokenizer.pad_token_id,
        "model_input_names": list(tokenizer.model_input_names),
    }
    with open(os.path.join(args.out, "tokenizer_config.json"), "w") as f:
        json.dump(tok_cfg, f, indent=2)

    samples = BUILTIN_SAMPLES
    if args.samples:
        with open(args.samples) as f:
            samples = [json.loads(line) for line in f if line.strip()]
    log(f"parity check on {len(samples)} samples")
    sess = ort.InferenceSession(os.path.join(args.out, "model.onnx"), providers=["CPUExecutionProvider"])
    # The exporter drops inputs the graph never reads (token_type_ids when type_vocab_size is 0,
    # as in deberta-v3): feed what the graph declares.
    graph_inputs = [i.name for i in sess.get_inputs()]
    rows = []
    for s in samples:
        enc = tokenizer(s["context"], s["response"], return_tensors="pt")
        with torch.no_grad():
            torch_score = float(model(**enc).logits[0][0])
        feeds = {n: enc[n].numpy().astype(np.int64) for n in graph_inputs}
        onnx_score = float(sess.run(["logits"], feeds)[0][0][0])
        rows.append({"n_tokens": int(enc["input_ids"].shape[1]), "torch": torch_score, "onnx": onnx_score,
                     "abs_diff": abs(torch_score - onnx_score)})
    max_diff = max(r["abs_diff"] for r in rows)
    report = {
        "source": args.source,
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "inputs": graph_inputs,
        "opset": args.opset,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "onnxruntime": ort.__version__},
        "parity": {"samples": len(rows), "max_abs_diff": max_diff, "rows": rows},
    }
    with open(os.path.join(args.out, "seal-export.json"), "w") as f:
        json.dump(report, f, indent=2)
    log(f"parity: max |onnx - torch| = {max_diff:.3g} over {len(rows)} samples")
    if max_diff > args.max_abs_diff:
        sys.exit(f"parity check failed: max abs diff {max_diff} > {args.max_abs_diff}")
    print(json.dumps({"out": args.out, "max_abs_diff": max_diff, "samples": len(rows)}))


if __name__ == "__main__":
    main()
