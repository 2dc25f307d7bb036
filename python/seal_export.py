#!/usr/bin/env python3
"""Export a Hugging Face sequence-classification reward model to a SEAL Lab model folder.

The folder holds `model.onnx`, `tokenizer.json`, the model's `config.json` and
`tokenizer_config.json`, and `seal-export.json` with the parity report: the same
sample (context, response) pairs scored by PyTorch (as SEAL calls an RM: a
tokenizer text pair, fp32, no truncation, batch 1, score = logits[0][0]) and by
ONNX Runtime on the exported graph.

With `--quantize int8` the folder's `model.onnx` is the graph with its MatMul weights
quantized to int8 per output channel and activations quantized on the fly (ONNX Runtime's
dynamic quantization; 2-3x fewer operations on CPUs with VNNI). Its scores are no longer the
fp32 scores SEAL computes, so the report adds a `quantized` section: the int8 graph against
PyTorch fp32 on the same samples (largest and mean absolute difference, Pearson and Spearman
correlation, and for sample pairs how many chosen-vs-rejected decisions flip).

Usage: seal_export.py SOURCE --out FOLDER [--samples FILE.jsonl] [--opset N] [--quantize int8]
SOURCE is a Hugging Face model id or a local folder. FILE.jsonl has lines
{"context": ..., "response": ...} (one text) or {"chosen": ..., "rejected": ...} (an hh-rlhf
pair of transcripts, split at the last "Assistant:" as SEAL does); without it a small built-in
set is used.
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
    ap.add_argument("--quantize", choices=["int8"],
                    help="write an int8 dynamically quantized graph (its drift from fp32 is reported)")
    args = ap.parse_args()

    import numpy as np
    import onnxruntime as ort
    import torch
    import transformers
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    texts, pairs = load_samples(args.samples)
    log(f"loading {args.source}")
    tokenizer = AutoTokenizer.from_pretrained(args.source)
    if not getattr(tokenizer, "is_fast", False):
        sys.exit(f"{args.source}: no fast tokenizer available; SEAL Lab needs tokenizer.json")
    model = AutoModelForSequenceClassification.from_pretrained(args.source, torch_dtype=torch.float32)
    model.eval()
    if model.config.num_labels < 1:
        sys.exit(f"{args.source}: model has no classification head")

    os.makedirs(args.out, exist_ok=True)
    # A report left by an earlier export would describe the wrong graph if this one fails.
    if os.path.exists(os.path.join(args.out, "seal-export.json")):
        os.remove(os.path.join(args.out, "seal-export.json"))
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

    log(f"parity check on {len(texts)} samples")
    model_path = os.path.join(args.out, "model.onnx")
    sess = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    # The exporter drops inputs the graph never reads (token_type_ids when type_vocab_size is 0,
    # as in deberta-v3): feed what the graph declares.
    graph_inputs = [i.name for i in sess.get_inputs()]
    encodings = [tokenizer(c, r, return_tensors="pt") for c, r in texts]
    rows = []
    for enc in encodings:
        with torch.no_grad():
            torch_score = float(model(**enc).logits[0][0])
        onnx_score = run_onnx(sess, graph_inputs, enc)
        rows.append({"n_tokens": int(enc["input_ids"].shape[1]), "torch": torch_score, "onnx": onnx_score,
                     "abs_diff": abs(torch_score - onnx_score)})
    max_diff = max(r["abs_diff"] for r in rows)
    log(f"parity: max |onnx - torch| = {max_diff:.3g} over {len(rows)} samples")
    if max_diff > args.max_abs_diff:
        os.remove(model_path)
        sys.exit(f"parity check failed: max abs diff {max_diff} > {args.max_abs_diff}")
    report = {
        "source": args.source,
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "inputs": graph_inputs,
        "opset": args.opset,
        "precision": "fp32",
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "onnxruntime": ort.__version__},
        "parity": {"samples": len(rows), "max_abs_diff": max_diff, "rows": rows},
    }
    summary = {"out": args.out, "precision": "fp32", "max_abs_diff": max_diff, "samples": len(rows)}
    if args.quantize == "int8":
        report["precision"] = summary["precision"] = "int8"
        report["quantized"] = quantize_int8(model_path, graph_inputs, encodings, rows, pairs)
        q = report["quantized"]
        summary["quantized"] = {k: q[k] for k in ("max_abs_diff", "spearman", "pairs", "decision_flips")}
        log(f"int8: max |int8 - torch fp32| = {q['max_abs_diff']:.3g}, Spearman {q['spearman']:.4f}, "
            f"{q['decision_flips']} of {q['pairs']} sample pairs flip")
    # The report names the graph it describes, so `seal models add` can tell a stale one.
    report["model_sha256"] = sha256_file(model_path)
    with open(os.path.join(args.out, "seal-export.json"), "w") as f:
        json.dump(report, f, indent=2)
    print(json.dumps(summary))


def sha256_file(path):
    import hashlib
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def split_transcript(text):
    """SEAL's split (spec A.2): the context is everything before the last "Assistant:"."""
    pivot = text.rfind("Assistant:")
    if pivot < 0:
        raise ValueError("no \"Assistant:\" in the transcript")
    return text[:pivot], text[pivot:]


def load_samples(path):
    """Texts as (context, response), and the sample pairs as (chosen index, rejected index)."""
    if not path:
        return [(s["context"], s["response"]) for s in BUILTIN_SAMPLES], []
    texts, pairs = [], []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                if "chosen" in row or "rejected" in row:
                    pairs.append((len(texts), len(texts) + 1))
                    texts += [split_transcript(row["chosen"]), split_transcript(row["rejected"])]
                else:
                    texts.append((row["context"], row["response"]))
            except (ValueError, KeyError, TypeError) as e:
                sys.exit(f"{path}:{n}: not a sample ({{\"context\", \"response\"}} or "
                         f"{{\"chosen\", \"rejected\"}}): {e!r}")
    if not texts:
        sys.exit(f"{path}: no samples")
    return texts, pairs


def run_onnx(sess, graph_inputs, enc):
    import numpy as np
    feeds = {n: enc[n].numpy().astype(np.int64) for n in graph_inputs}
    return float(sess.run(["logits"], feeds)[0][0][0])


def quantize_int8(model_path, graph_inputs, encodings, rows, pairs):
    """Replaces model.onnx with its int8 dynamic quantization; compares it with PyTorch fp32."""
    import numpy as np
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    partial = model_path + ".int8.partial"
    log("quantizing MatMul weights to int8 (per channel, dynamic activations)")
    quantize_dynamic(model_path, partial, weight_type=QuantType.QInt8, per_channel=True,
                     op_types_to_quantize=["MatMul"])
    sess = ort.InferenceSession(partial, providers=["CPUExecutionProvider"])
    fp32 = np.array([r["torch"] for r in rows])
    int8 = np.array([run_onnx(sess, graph_inputs, enc) for enc in encodings])
    diff = np.abs(int8 - fp32)
    ranks = lambda a: np.argsort(np.argsort(a, kind="stable"), kind="stable")
    corr = lambda a, b: float(np.corrcoef(a, b)[0, 1]) if len(a) > 1 and a.std() > 0 and b.std() > 0 else None
    flips = [i for i, (c, r) in enumerate(pairs) if (fp32[c] > fp32[r]) != (int8[c] > int8[r])]
    os.replace(partial, model_path)
    return {
        "method": "onnxruntime.quantization.quantize_dynamic: MatMul weights int8 per channel, activations "
                  "quantized at run time",
        "samples": len(rows),
        "max_abs_diff": float(diff.max()),
        "mean_abs_diff": float(diff.mean()),
        "score_std_fp32": float(fp32.std()),
        "pearson": corr(fp32, int8),
        "spearman": corr(ranks(fp32).astype(float), ranks(int8).astype(float)),
        "pairs": len(pairs),
        "decision_flips": len(flips),
        "flipped_pairs": flips,
        "int8": [float(x) for x in int8],
    }


if __name__ == "__main__":
    main()
