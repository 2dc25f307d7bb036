#!/usr/bin/env python3
"""Scoring benchmark: pairs/s of `seal score` against three transformers baselines, on the same
model, the same real hh-rlhf pairs and the same machine, in one run.

(a) the paper's loop as released: one text at a time, fp32, autograd left on (only .detach()),
    gc.collect() after every pair (SEAL's released `context.py`, `infer_with_reward_model`);
(b) RewardBench-style batching: pad to the longest in the batch, batch 8, arrival order,
    under torch.no_grad();
(c) the strongest simple baseline: one text at a time under torch.no_grad().

The model is a random-init DebertaV2ForSequenceClassification with deberta-v3-base's shape
(12 layers, hidden 768, 12 heads, FFN 3072, vocab 128,100, relative attention with 256
buckets), exported the same way as any RM (python/seal_export.py); its tokenizer is a
Unigram/Metaspace one trained on the pairs (vocab 8,000), as the hub is not reachable.
The model is generated into a cache folder and never committed.

A further leg scores with the int8 graph `seal models export --quantize int8` writes (MatMul
weights int8 per channel, activations quantized at run time). It is not SEAL's fp32 arithmetic,
so its ratios are reported apart, with its drift from (c)'s fp32 scores on the same pairs
(largest difference, Spearman correlation, chosen-vs-rejected decisions that flip).

Usage: bench_score.py --seal PATH [--pairs 500] [--out results.json] [--torch-device cuda] [--skip-seal]
                      [--skip-int8] [--skip-batched]

--torch-device runs the transformers baselines on another torch device (e.g. `cuda`); with
--skip-seal only the baselines run (seal's own legs are measured in a CPU run).
"""
import argparse
import gc
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import DebertaV2Config, DebertaV2ForSequenceClassification, PreTrainedTokenizerFast

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def split(text):
    pivot = text.rfind("Assistant:")
    return text[:pivot], text[pivot:]


def find_hh():
    if os.environ.get("SEAL_HH_TEST"):
        return os.environ["SEAL_HH_TEST"]
    for base in (os.path.join(ROOT, ".."), os.getcwd()):
        p = os.path.join(base, "shared", "data", "hh-rlhf", "harmless-base", "test.jsonl.gz")
        if os.path.isfile(p):
            return p
    sys.exit("hh-rlhf harmless-base test.jsonl.gz not found in ../shared/data")


def build_model(folder, texts, export=True, shape="base", head_std=None):
    hf = os.path.join(folder, "hf")
    seal = os.path.join(folder, "seal")
    if not os.path.isfile(os.path.join(hf, "config.json")):
        make_hf_model(hf, texts, shape, head_std)
    if export and not os.path.isfile(os.path.join(seal, "seal-export.json")):
        subprocess.run([sys.executable, os.path.join(ROOT, "python", "seal_export.py"), hf, "--out", seal],
                       check=True)
    return hf, seal


def build_int8(folder, hf, sample_pairs):
    """The int8 export of the same model; its report's check runs on `sample_pairs`."""
    out = os.path.join(folder, "seal-int8")
    report = os.path.join(out, "seal-export.json")
    if not os.path.isfile(report):
        samples = os.path.join(folder, "int8-samples.jsonl")
        with open(samples, "w") as f:
            for p in sample_pairs:
                f.write(json.dumps({"chosen": p["chosen"], "rejected": p["rejected"]}) + "\n")
        subprocess.run([sys.executable, os.path.join(ROOT, "python", "seal_export.py"), hf, "--out", out,
                        "--samples", samples, "--quantize", "int8"], check=True)
    return out


def drift(scores, reference):
    """int8 scores against fp32 ones, pair by pair: largest difference, Spearman, decision flips."""
    import numpy as np
    a = np.array([s for pair in reference for s in pair])
    b = np.array([s for pair in scores for s in pair])
    ranks = lambda x: np.argsort(np.argsort(x, kind="stable"), kind="stable").astype(float)
    flips = sum((r[0] > r[1]) != (s[0] > s[1]) for r, s in zip(reference, scores))
    return {"max_abs_diff": float(np.abs(a - b).max()), "mean_abs_diff": float(np.abs(a - b).mean()),
            "spearman": float(np.corrcoef(ranks(a), ranks(b))[0, 1]), "fp32_score_std": float(a.std()),
            "decision_flips": int(flips), "pairs": len(reference)}


# deberta-v3-base and -large (the paper's RMs), and a tiny one for checking scripts.
SHAPES = {
    "base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
    "large": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096),
    "tiny": dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128),
}


def make_hf_model(hf, texts, shape="base", head_std=None):
    """A random-init model; `head_std` re-draws the score head's weights with that standard
    deviation (the default init's 0.02 gives scores with a spread of a few hundredths)."""
    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
    specials = ["[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]"]
    tok.train_from_iterator(texts, trainer=trainers.UnigramTrainer(vocab_size=8000, special_tokens=specials,
                                                                     unk_token="[UNK]"))
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS]:0 $A:0 [SEP]:0", pair="[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]", model_max_length=512,
                                   model_input_names=["input_ids", "token_type_ids", "attention_mask"])
    torch.manual_seed(0)
    cfg = DebertaV2Config(vocab_size=128100, **SHAPES[shape], max_position_embeddings=512, type_vocab_size=0,
                          relative_attention=True, position_buckets=256, max_relative_positions=-1,
                          pos_att_type=["p2c", "c2p"], position_biased_input=False, norm_rel_ebd="layer_norm",
                          share_att_key=True, hidden_act="gelu", num_labels=1, pad_token_id=0)
    model = DebertaV2ForSequenceClassification(cfg)
    if head_std:
        torch.nn.init.normal_(model.classifier.weight, std=head_std)
    model.save_pretrained(hf)
    fast.save_pretrained(hf)


DEVICE = "cpu"


def baseline_a(model, tok, pairs):
    out = []
    for c, r in pairs:
        pair = []
        for ctx, resp in (c, r):
            inputs = tok(ctx, resp, return_tensors="pt").to(DEVICE)
            pair.append(float(model(**inputs).logits[0][0].detach()))
        out.append(pair)
        gc.collect()
    return out


def baseline_b(model, tok, pairs, batch=8):
    texts = [t for c, r in pairs for t in (c, r)]
    scores = []
    with torch.no_grad():
        for i in range(0, len(texts), batch):
            chunk = texts[i:i + batch]
            enc = tok([t[0] for t in chunk], [t[1] for t in chunk], padding="longest", return_tensors="pt").to(DEVICE)
            scores += model(**enc).logits[:, 0].tolist()
    return [scores[i:i + 2] for i in range(0, len(scores), 2)]


def baseline_c(model, tok, pairs):
    out = []
    with torch.no_grad():
        for c, r in pairs:
            out.append([float(model(**tok(ctx, resp, return_tensors="pt").to(DEVICE)).logits[0][0]) for ctx, resp in (c, r)])
    return out


def seal_run(seal_bin, data_dir, name, extra):
    res = subprocess.run([seal_bin, "--data-dir", data_dir, "--json", "score", "--dataset", "bench",
                          "--model", name] + extra, check=True, capture_output=True, text=True)
    return json.loads(res.stdout)[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seal", required=True)
    ap.add_argument("--pairs", type=int, default=500)
    ap.add_argument("--out")
    ap.add_argument("--cache", default=os.path.join(os.path.expanduser("~"), ".cache", "seal-lab", "bench",
                                                   "deberta-v3-base-random"))
    ap.add_argument("--skip-a", action="store_true", help="skip the slowest baseline")
    ap.add_argument("--torch-device", default="cpu", help="torch device of the baselines (cpu, cuda)")
    ap.add_argument("--skip-seal", action="store_true", help="run only the transformers baselines")
    ap.add_argument("--skip-int8", action="store_true", help="skip seal's int8 leg")
    ap.add_argument("--skip-batched", action="store_true", help="skip seal's length-sorted batches leg")
    args = ap.parse_args()
    global DEVICE
    DEVICE = args.torch_device

    with gzip.open(find_hh(), "rt", encoding="utf-8") as f:
        raw = [json.loads(line) for line in f]
    hf, seal_folder = build_model(args.cache, [p[k] for p in raw for k in ("chosen", "rejected")],
                                  export=not args.skip_seal)
    sel = raw[: args.pairs]
    pairs = [(split(p["chosen"]), split(p["rejected"])) for p in sel]
    tok = PreTrainedTokenizerFast.from_pretrained(hf)
    model = DebertaV2ForSequenceClassification.from_pretrained(hf).to(DEVICE)
    model.eval()
    n_tokens = [len(tok(c, r)["input_ids"]) for pr in pairs for c, r in pr]
    results = {"pairs": len(pairs), "texts": 2 * len(pairs), "mean_tokens": sum(n_tokens) / len(n_tokens),
               "max_tokens": max(n_tokens), "torch_threads": torch.get_num_threads(), "cpus": os.cpu_count(),
               "torch_device": DEVICE + (f" ({torch.cuda.get_device_name()})" if DEVICE.startswith("cuda") else "")}

    runs = {}
    seal_scores = {}
    if not args.skip_seal:
        work = tempfile.mkdtemp(prefix="seal-bench-score-")
        subset = os.path.join(work, "harmless-base", "test.jsonl")
        os.makedirs(os.path.dirname(subset))
        with open(subset, "w") as f:
            for p in sel:
                f.write(json.dumps(p) + "\n")
        data = os.path.join(work, "data")
        subprocess.run([args.seal, "--data-dir", data, "ingest", "--dataset", "bench", subset], check=True,
                       capture_output=True)
        legs = [("seal-batch1", seal_folder, ["--max-batch", "1"])]
        if not args.skip_batched:
            legs.append(("seal-sorted-batches", seal_folder, ["--max-batch", "16", "--batch-tokens", "4096"]))
        if not args.skip_int8:
            legs.append(("seal-int8-batch1", build_int8(args.cache, hf, raw[-40:]), ["--max-batch", "1"]))
        for name, folder, extra in legs:
            subprocess.run([args.seal, "--data-dir", data, "models", "add", "--name", name, folder], check=True,
                           capture_output=True)
            s = seal_run(args.seal, data, name, extra)
            runs[name] = {"seconds": s["seconds"], "pairs_per_s": s["pairs_per_second"]}
            print(f"{name}: {s['pairs_per_second']:.2f} pairs/s", file=sys.stderr)
            exported = os.path.join(work, f"{name}.jsonl")
            subprocess.run([args.seal, "--data-dir", data, "export", "scores", "--dataset", "bench", "--model",
                            name, "--out", exported], check=True, capture_output=True)
            with open(exported) as f:
                for line in f:
                    r = json.loads(line)
                    seal_scores.setdefault(name, {})[int(r["pair_id"].rsplit("/", 1)[1])] = (
                        r["chosen_score"], r["rejected_score"])

    baselines = [("c_no_grad_batch1", baseline_c), ("b_rewardbench_batch8", baseline_b)]
    if not args.skip_a:
        baselines.append(("a_paper_loop", baseline_a))
    reference = None
    for name, fn in baselines:
        t0 = time.perf_counter()
        scores = fn(model, tok, pairs)
        dt = time.perf_counter() - t0
        runs[name] = {"seconds": dt, "pairs_per_s": len(pairs) / dt}
        print(f"{name}: {len(pairs) / dt:.2f} pairs/s", file=sys.stderr)
        if name == "c_no_grad_batch1":
            reference = scores
        print(json.dumps({"partial": runs}), file=sys.stderr, flush=True)
    results["runs"] = runs
    if not args.skip_seal:
        fp32_legs = [n for n in ("seal-batch1", "seal-sorted-batches") if n in runs]
        results["max_abs_diff_seal_vs_transformers"] = max(
            abs(seal_scores[n][i][k] - reference[i][k]) for n in fp32_legs for i in range(len(pairs)) for k in (0, 1))
        best_seal = max(runs[n]["pairs_per_s"] for n in fp32_legs)
        baselines_run = {name: r for name, r in runs.items() if not name.startswith("seal")}
        results["ratios"] = {name: best_seal / r["pairs_per_s"] for name, r in baselines_run.items()}
        if "seal-int8-batch1" in runs:
            int8 = seal_scores["seal-int8-batch1"]
            results["int8_vs_fp32_transformers"] = drift([int8[i] for i in range(len(pairs))], reference)
            results["ratios_int8"] = {name: runs["seal-int8-batch1"]["pairs_per_s"] / r["pairs_per_s"]
                                      for name, r in baselines_run.items()}
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
