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

With `--attention windowed` (DeBERTa-v2/v3 models only) the disentangled attention is traced
from a formulation that computes the same scores with less work: the queries and keys are
multiplied only with the relative positions a sequence of that length can reach (at most
2n - 1 of the 512 for n tokens), the projected positions are broadcast rather than copied per
batch row, the scaling is applied to them rather than to two n x n products, and the
content-to-position and position-to-content scores are picked with one flat index per
(query, key) cell instead of an index tensor expanded per batch row and head. The parity
check still compares the graph with the unmodified PyTorch model.

With `--dtype fp16` the folder's `model.onnx` is the model traced in half precision (weights and
arithmetic; its logits cast back to float32), for GPUs: several times faster there, and its
drift from fp32 is reported like the int8 graph's, in an `fp16` section.

Usage: seal_export.py SOURCE --out FOLDER [--samples FILE.jsonl] [--opset N] [--quantize int8]
                      [--attention standard|windowed] [--dtype fp32|fp16]
SOURCE is a Hugging Face model id or a local folder. FILE.jsonl has lines
{"context": ..., "response": ...} (one text) or {"chosen": ..., "rejected": ...} (an hh-rlhf
pair of transcripts, split at the last "Assistant:" as SEAL does); without it a small built-in
set is used.
"""

import argparse
import contextlib
import json
import os
import shutil
import sys
import time
import types

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
    ap.add_argument("--attention", choices=["standard", "windowed"], default="standard",
                    help="how DeBERTa's disentangled attention is traced (windowed: the same scores, less work)")
    ap.add_argument("--dtype", choices=["fp32", "fp16"], default="fp32",
                    help="fp16: half-precision weights and arithmetic for GPUs (its drift from fp32 is reported)")
    args = ap.parse_args()
    if args.dtype == "fp16" and args.quantize:
        sys.exit("--dtype fp16 and --quantize int8 each make their own graph from the fp32 one; choose one")

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
    log(f"exporting ONNX (opset {args.opset}, inputs {input_names}, {args.attention} attention)")

    def attention(m):
        return windowed_attention(m, args.source) if args.attention == "windowed" else contextlib.nullcontext(0)

    with torch.no_grad(), attention(model) as patched_layers:
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
        "attention": {"mode": args.attention, "layers": patched_layers},
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "onnxruntime": ort.__version__},
        "parity": {"samples": len(rows), "max_abs_diff": max_diff, "rows": rows},
    }
    summary = {"out": args.out, "precision": "fp32", "attention": args.attention, "max_abs_diff": max_diff,
               "samples": len(rows)}
    if args.quantize == "int8":
        report["precision"] = summary["precision"] = "int8"
        report["quantized"] = quantize_int8(model_path, encodings, rows, pairs)
        q = report["quantized"]
        summary["quantized"] = {k: q[k] for k in ("max_abs_diff", "spearman", "pairs", "decision_flips")}
        log(f"int8: max |int8 - torch fp32| = {q['max_abs_diff']:.3g}, Spearman {q['spearman']:.4f}, "
            f"{q['decision_flips']} of {q['pairs']} sample pairs flip")
    if args.dtype == "fp16":
        report["precision"] = summary["precision"] = "fp16"
        h = report["fp16"] = export_fp16(model, dummy, input_names, dynamic, args.opset, attention, model_path,
                                         encodings, rows, pairs)
        summary["fp16"] = {k: h[k] for k in ("max_abs_diff", "spearman", "pairs", "decision_flips")}
        log(f"fp16: max |fp16 - torch fp32| = {h['max_abs_diff']:.3g}, Spearman {h['spearman']:.4f}, "
            f"{h['decision_flips']} of {h['pairs']} sample pairs flip")
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


@contextlib.contextmanager
def windowed_attention(model, source):
    """Traces every DeBERTa-v2 attention layer of `model` through `windowed_bias` while the
    block runs; yields the number of layers it applies to."""
    try:
        from transformers.models.deberta_v2.modeling_deberta_v2 import DisentangledSelfAttention
    except ImportError:
        DisentangledSelfAttention = None
    layers = [m for m in model.modules() if DisentangledSelfAttention and isinstance(m, DisentangledSelfAttention)]
    layers = [m for m in layers if getattr(m, "relative_attention", False)]
    if not layers:
        sys.exit(f"{source}: --attention windowed applies to DeBERTa-v2/v3 models with relative attention; "
                 f"{type(model).__name__} has none")
    for m in layers:
        missing = [a for a in ("pos_ebd_size", "pos_att_type", "share_att_key", "num_attention_heads",
                               "attention_head_size", "transpose_for_scores") if not hasattr(m, a)]
        if missing:
            sys.exit(f"{source}: this transformers version's DeBERTa attention lacks {', '.join(missing)}; "
                     f"export with --attention standard")
        check_window(m, source)
        m.disentangled_attention_bias = types.MethodType(windowed_bias, m)
    try:
        yield len(layers)
    finally:
        for m in layers:
            del m.disentangled_attention_bias


def check_window(layer, source):
    """The window assumes that no relative distance lands in a bucket farther from 0 than the
    distance itself (true of DeBERTa's log buckets when the largest position is at least e
    times half the bucket count, as in every released DeBERTa-v2/v3 config); checked for every
    distance the window is used for (|d| < the table's half size)."""
    import torch
    from transformers.models.deberta_v2 import modeling_deberta_v2 as hf

    span = layer.pos_ebd_size
    d = torch.arange(-span + 1, span, dtype=torch.long)
    buckets, most = getattr(layer, "position_buckets", -1), getattr(layer, "max_relative_positions", -1)
    b = hf.make_log_bucket_position(d, buckets, most).long() if buckets > 0 and most > 0 else d
    bad = (b.abs() > d.abs()).nonzero()
    if len(bad):
        k = int(d[bad[0, 0]])
        sys.exit(f"{source}: relative distance {k} falls in bucket {int(b[bad[0, 0]])} (position_buckets "
                 f"{buckets}, max_relative_positions {most}), outside the window --attention windowed "
                 f"computes; export with --attention standard")


def windowed_bias(self, query_layer, key_layer, relative_pos, rel_embeddings, scale_factor):
    """DeBERTa's content-to-position and position-to-content scores, as transformers'
    `DisentangledSelfAttention.disentangled_attention_bias` defines them, computed on the
    window of relative-position buckets that a sequence of this length reaches.

    query_layer and key_layer are [batch x heads, n, head size]; relative_pos holds the bucket
    of (query - key) for every cell. Bucket b is row b + span of the relative-position table,
    so only rows lo..hi are ever read: those rows of the projected table are multiplied against
    every batch row by broadcasting (transformers copies the whole table once per batch row),
    and each score is read from the flattened product at (row x width + column), an index of
    n x n entries shared by all batch rows and heads (transformers expands one per row and
    head)."""
    import torch
    from transformers.models.deberta_v2 import modeling_deberta_v2 as hf

    n_q, n_k = query_layer.size(-2), key_layer.size(-2)
    if relative_pos is None:
        relative_pos = hf.build_relative_position(query_layer, key_layer, bucket_size=self.position_buckets,
                                                  max_position=self.max_relative_positions)
    if n_q != n_k or relative_pos.numel() != n_q * n_k:
        # Cross-attention or per-example positions: outside what the window is written for.
        return type(self).disentangled_attention_bias(self, query_layer, key_layer, relative_pos, rel_embeddings,
                                                      scale_factor)
    heads, span, dev = self.num_attention_heads, self.pos_ebd_size, query_layer.device
    # The positions, the window and the indices derive only from relative_pos and
    # rel_embeddings, which every layer shares, so ONNX Runtime computes them once per batch
    # (common subexpressions); the window's bounds are integer arithmetic on the length.
    n = torch._shape_as_tensor(relative_pos)[-1]
    rel = relative_pos.reshape(n, n).to(device=dev, dtype=torch.long)
    cells = torch.arange(n, device=dev)
    # A bucket is never farther from 0 than the distance it stands for (check_window), so rows
    # span - (n - 1) .. span + (n - 1) of the table, clamped to it, hold every bucket read.
    lo = (span + 1 - n).clamp(min=0)
    width = (span + n).clamp(max=span * 2) - lo
    rows = lo + torch.arange(width, device=dev)
    table = rel_embeddings[0:span * 2, :].unsqueeze(0)
    if self.share_att_key:
        key_proj, query_proj = self.key_proj, self.query_proj
    else:
        key_proj, query_proj = getattr(self, "pos_key_proj", None), getattr(self, "pos_query_proj", None)
    size = query_layer.size(-1)
    # transformers divides each product by sqrt(head size x scale_factor); here the projected
    # positions are divided instead (a [heads, 2 x span, size] tensor rather than two
    # [batch x heads, n, n] ones). The whole table is projected, as transformers does; in an
    # fp32 graph that is a constant ONNX Runtime folds when it loads the model (it has no CPU
    # kernel to fold fp16 products, so an fp16 graph projects it per run, as the standard one
    # does). The window is cut from the projected table.
    scale = float(self.attention_head_size * scale_factor) ** 0.5
    score = 0
    if "c2p" in self.pos_att_type:
        pos_key = (self.transpose_for_scores(key_proj(table), heads) / scale).index_select(1, rows)
        att = query_layer.view(-1, heads, n, size).matmul(pos_key.unsqueeze(0).transpose(-1, -2))
        # score[i, j] = att[i, c2p_pos[i, j] - lo]
        c2p_pos = (rel + span).clamp(0, span * 2 - 1)
        flat = (c2p_pos - lo) + cells.unsqueeze(1) * width
        score = att.reshape(-1, n * width).index_select(1, flat.reshape(-1)).view(-1, n_q, n_k)
    if "p2c" in self.pos_att_type:
        pos_query = (self.transpose_for_scores(query_proj(table), heads) / scale).index_select(1, rows)
        att = key_layer.view(-1, heads, n, size).matmul(pos_query.unsqueeze(0).transpose(-1, -2))
        # score[i, j] = att[j, p2c_pos[j, i] - lo]: transformers' transpose folded into the index
        p2c_pos = (span - rel).clamp(0, span * 2 - 1)
        flat = (p2c_pos - lo).transpose(0, 1) + cells.unsqueeze(0) * width
        score = score + att.reshape(-1, n * width).index_select(1, flat.reshape(-1)).view(-1, n_q, n_k)
    return score


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


def quantize_int8(model_path, encodings, rows, pairs):
    """Replaces model.onnx with its int8 dynamic quantization; compares it with PyTorch fp32."""
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    partial = model_path + ".int8.partial"
    log("quantizing MatMul weights to int8 (per channel, dynamic activations)")
    quantize_dynamic(model_path, partial, weight_type=QuantType.QInt8, per_channel=True,
                     op_types_to_quantize=["MatMul"])
    with removed_on_failure(partial):
        sess = ort.InferenceSession(partial, providers=["CPUExecutionProvider"])
        int8 = [run_onnx(sess, [i.name for i in sess.get_inputs()], enc) for enc in encodings]
    os.replace(partial, model_path)
    return drift("int8", "onnxruntime.quantization.quantize_dynamic: MatMul weights int8 per channel, activations "
                         "quantized at run time", rows, int8, pairs)


def export_fp16(model, dummy, input_names, dynamic, opset, attention, model_path, encodings, rows, pairs):
    """Replaces model.onnx with the model traced in half precision (weights and arithmetic; the
    logits cast back to float32, so the graph's output is what SEAL reads from any export);
    compares it, run by ONNX Runtime, with PyTorch fp32. Traced on a GPU when torch sees one."""
    import copy

    import onnxruntime as ort
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    half = copy.deepcopy(model).half().to(device).eval()

    class Fp32Logits(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, *inputs):
            return self.inner(**dict(zip(input_names, inputs))).logits.float()

    partial = model_path + ".fp16.partial"
    log(f"exporting the fp16 graph (traced on {device})")
    with removed_on_failure(partial):
        with torch.no_grad(), attention(half):
            torch.onnx.export(Fp32Logits(half), tuple(t.to(device) for t in dummy), partial,
                              input_names=input_names, output_names=["logits"], dynamic_axes=dynamic,
                              opset_version=opset, do_constant_folding=True, dynamo=False)
        del half
        sess = ort.InferenceSession(partial, providers=["CPUExecutionProvider"])
        fp16 = [run_onnx(sess, [i.name for i in sess.get_inputs()], enc) for enc in encodings]
    os.replace(partial, model_path)
    return drift("fp16", f"torch half-precision model traced on {device}, logits cast to float32; the scores "
                         "below are ONNX Runtime's on the CPU", rows, fp16, pairs)


@contextlib.contextmanager
def removed_on_failure(path):
    """A graph being written is removed when its step fails, so no partial file is left."""
    try:
        yield
    except BaseException:
        if os.path.exists(path):
            os.remove(path)
        raise


def drift(name, method, rows, scores, pairs):
    """A lower-precision graph's `scores` against PyTorch fp32 (`rows`) on the samples."""
    import numpy as np

    fp32 = np.array([r["torch"] for r in rows])
    low = np.array(scores)
    diff = np.abs(low - fp32)
    ranks = lambda a: np.argsort(np.argsort(a, kind="stable"), kind="stable")
    corr = lambda a, b: float(np.corrcoef(a, b)[0, 1]) if len(a) > 1 and a.std() > 0 and b.std() > 0 else None
    flips = [i for i, (c, r) in enumerate(pairs) if (fp32[c] > fp32[r]) != (low[c] > low[r])]
    return {
        "method": method,
        "samples": len(rows),
        "max_abs_diff": float(diff.max()),
        "mean_abs_diff": float(diff.mean()),
        "score_std_fp32": float(fp32.std()),
        "pearson": corr(fp32, low),
        "spearman": corr(ranks(fp32).astype(float), ranks(low).astype(float)),
        "pairs": len(pairs),
        "decision_flips": len(flips),
        "flipped_pairs": flips,
        name: [float(x) for x in low],
    }

if __name__ == "__main__":
    main()
