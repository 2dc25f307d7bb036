#!/usr/bin/env python3
"""`seal score --device cuda` measured on one GPU, in one run: parity, batching, throughput.

1. Parity (deberta-v3-base shape, random init, exported with python/seal_export.py): the same
   real hh-rlhf pairs scored by `seal score` on the CPU (fp32) and on the GPU (fp32, TF32 off),
   and on the GPU one text at a time against its default length-sorted batches. Reported: the
   largest |difference|, and the pairs whose chosen-vs-rejected decision differs where the CPU
   margin exceeds 1e-3; the model's score standard deviation (a near-constant model would make
   parity trivial).
2. Throughput (deberta-v3-large shape, the paper's RMs): `seal score --device cuda` in fp32
   with TF32 off (the paper's arithmetic) in several legs (--legs: I/O binding off, more
   sessions per GPU, other token budgets), each compared with the default leg's scores; then
   with `--tf32` and on an fp16 export (with the fastest leg's arguments), against
   transformers on the same GPU and pairs: RewardBench-style padded batches of 8 under
   no_grad, one text at a time under no_grad, and the paper's own loop (one text at a time,
   autograd on, gc.collect() after every pair). seal's pairs/s exclude loading the model
   (reported apart as load seconds), as the baselines' do. TF32 and fp16 are reported with
   their drift from seal's fp32 scores, like the int8 export's.
3. Windowed attention (`seal models export --attention windowed`): the same model exported with
   the windowed disentangled attention, scored in fp32 with the fastest leg's arguments and in
   fp16, each with its difference from the standard graph's scores, and in the further legs of
   --export-legs (other batch sizes for those graphs).

The models are generated and exported on the machine that runs this (the large one is 1.7 GB
as ONNX); the tokenizer is trained on the pairs (the hub is not reachable). Each stage appends
its results to --out as it finishes, so a run cut short still reports what it measured.

Usage: bench_gpu.py --seal PATH --work DIR --out results.json [--parity-pairs 200] [--pairs 500]
                    [--loop-pairs 100] [--shape large] [--device cuda] [--torch-device cuda]
                    [--legs 'default:;i2:--instances 2'] [--export-legs 'fp16-windowed/bt16384:--batch-tokens 16384']
                    [--skip parity,tf32,windowed,fp16,fp16-windowed,baselines]
"""
import argparse
import collections
import gzip
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_score as bs  # noqa: E402

import torch  # noqa: E402
from transformers import DebertaV2ForSequenceClassification, PreTrainedTokenizerFast  # noqa: E402

# Forward FLOPs per token of deberta-v3-large on hh-rlhf-length texts (2 x non-embedding
# weights plus attention), and the dense fp32 peak of an H100/H200 SXM.
LARGE_GFLOP_PER_TOKEN = 0.67
FP32_PEAK_TFLOPS = 67.0


class Seal:
    def __init__(self, binary, data):
        self.binary, self.data = binary, data

    def __call__(self, *args, check=True):
        cmd = [self.binary, "--data-dir", self.data, "--json", *args]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if check and res.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({res.returncode}):\n{res.stderr[-4000:]}")
        return res

    def score(self, dataset, model, *extra):
        out = json.loads(self("score", "--dataset", dataset, "--model", model, *extra).stdout)[0]
        compute = out["seconds"] - out.get("load_seconds", 0.0)
        out["compute_seconds"] = compute
        out["pairs_per_s_compute"] = out["scored_now"] / compute if compute > 0 else None
        return out

    def scores(self, dataset, model, work):
        path = os.path.join(work, f"{dataset}-{model}.jsonl")
        self("export", "scores", "--dataset", dataset, "--model", model, "--out", path)
        rows = {}
        tokens = 0
        with open(path) as f:
            for line in f:
                r = json.loads(line)
                rows[int(r["pair_id"].rsplit("/", 1)[1])] = (r["chosen_score"], r["rejected_score"])
                tokens += r["chosen_tokens"] + r["rejected_tokens"]
        return rows, tokens


def compare(a, b, margin_floor=1e-3):
    """Largest |a - b| over both scores of every pair, and decisions that differ where a's
    margin is larger than margin_floor."""
    keys = sorted(set(a) & set(b))
    diff = max(abs(a[k][j] - b[k][j]) for k in keys for j in (0, 1))
    flips = sum(1 for k in keys if abs(a[k][0] - a[k][1]) > margin_floor and (a[k][0] > a[k][1]) != (b[k][0] > b[k][1]))
    return {"pairs": len(keys), "max_abs_diff": diff, "decision_differs_where_margin_gt_1e-3": flips}


def ingest(seal, work, name, pairs):
    path = os.path.join(work, name, "harmless-base", "test.jsonl")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        for p in pairs:
            f.write(json.dumps(p) + "\n")
    seal("ingest", "--dataset", name, path)


def export(hf, out, *flags):
    """The model exported by `seal models export` (python/seal_export.py) with `flags`; an fp16
    export is traced on the GPU."""
    if not os.path.isfile(os.path.join(out, "seal-export.json")):
        cmd = [sys.executable, os.path.join(bs.ROOT, "python", "seal_export.py"), hf, "--out", out, *flags]
        # Its output goes to the log as it comes (all of it), and its last lines are kept for the
        # results file: the command and status alone say nothing of why an export failed.
        tail = collections.deque(maxlen=40)
        with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
            for line in proc.stdout:
                sys.stderr.write(line)
                tail.append(line)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{''.join(tail)[-3000:]}")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seal", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--parity-pairs", type=int, default=200)
    ap.add_argument("--pairs", type=int, default=500)
    ap.add_argument("--loop-pairs", type=int, default=100, help="pairs for the two one-text-at-a-time baselines")
    ap.add_argument("--parity-shape", default="base")
    ap.add_argument("--shape", default="large")
    ap.add_argument("--device", default="cuda", help="seal's GPU device(s)")
    ap.add_argument("--torch-device", default="cuda")
    ap.add_argument("--head-std", type=float, default=0.5,
                    help="std of the random score head (spreads the scores; see bench_score.make_hf_model)")
    ap.add_argument("--legs", default="default:;nobind:--io-binding off;i2:--instances 2;"
                                      "bt8192:--batch-tokens 8192;i2-bt8192:--instances 2 --batch-tokens 8192",
                    help="seal's fp32 legs, `name:extra args` separated by `;`; the first is the default "
                         "run the others are compared with; TF32 and fp16 run with the fastest leg's args")
    ap.add_argument("--export-legs", default="fp16-windowed/bt16384:--instances 2 --batch-tokens 16384;"
                                             "fp16-windowed/bt32768:--instances 2 --batch-tokens 32768 --max-batch 1024;"
                                             "windowed/bt8192:--instances 2 --batch-tokens 8192",
                    help="more legs on the other exports, `export/name:extra args` separated by `;`: an fp16 "
                         "graph does a quarter of fp32's work per kernel launch, so it may want larger batches")
    ap.add_argument("--skip", default="",
                    help="comma-separated stages to skip: parity,throughput,tf32,windowed,fp16,fp16-windowed,"
                         "baselines (each export apart: fp16 is the standard fp16 graph only)")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    export_legs = []  # (export, leg name, extra args), checked before anything runs
    for spec in filter(None, args.export_legs.split(";")):
        target, sep, rest = spec.partition("/")
        label, sep2, extra = rest.partition(":")
        if not (sep and sep2 and target and label):
            ap.error(f"--export-legs: {spec!r} is not `export/name:extra args`")
        export_legs.append((target, label, extra.split()))
    os.makedirs(args.work, exist_ok=True)
    results = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "device": args.device}

    def save(stage, value):
        results[stage] = value
        with open(args.out, "w") as f:
            json.dump(results, f, indent=2)
        print(f"== {stage}: {json.dumps(value)}", file=sys.stderr, flush=True)

    if torch.cuda.is_available():
        save("gpu", {"name": torch.cuda.get_device_name(), "torch": torch.__version__, "cuda": torch.version.cuda})
    with gzip.open(bs.find_hh(), "rt", encoding="utf-8") as f:
        raw = [json.loads(line) for line in f]
    texts = [p[k] for p in raw for k in ("chosen", "rejected")]
    # A store of its own for every invocation (the generated models are kept in --work), so
    # that a second run on the same machine can reuse the names of the legs.
    seal = Seal(args.seal, os.path.join(args.work, "data-" + time.strftime("%Y%m%dT%H%M%S")))
    info = seal("runtime", "info", "--gpu", check=False)
    save("runtime_info", {"rc": info.returncode, "report": info.stdout[-3000:] + info.stderr[-1000:]})

    if "parity" not in skip:
        try:
            t0 = time.perf_counter()
            _, folder = bs.build_model(os.path.join(args.work, args.parity_shape), texts, shape=args.parity_shape,
                                       head_std=args.head_std)
            ingest(seal, args.work, "parity", raw[:args.parity_pairs])
            for name in ("p-cpu", "p-gpu", "p-gpu-b1"):
                seal("models", "add", "--name", name, folder)
            legs = {"p-cpu": seal.score("parity", "p-cpu", "--device", "cpu"),
                    "p-gpu": seal.score("parity", "p-gpu", "--device", args.device),
                    "p-gpu-b1": seal.score("parity", "p-gpu-b1", "--device", args.device, "--max-batch", "1")}
            cpu, _ = seal.scores("parity", "p-cpu", args.work)
            gpu, _ = seal.scores("parity", "p-gpu", args.work)
            b1, _ = seal.scores("parity", "p-gpu-b1", args.work)
            flat = [s for pair in cpu.values() for s in pair]
            mean = sum(flat) / len(flat)
            save("parity", {
                "shape": args.parity_shape,
                "score_std": (sum((x - mean) ** 2 for x in flat) / len(flat)) ** 0.5,
                "gpu_vs_cpu": compare(cpu, gpu),
                "gpu_batched_vs_gpu_batch1": compare(b1, gpu),
                "runs": {k: {f: v[f] for f in ("device", "provider", "pairs_per_second", "load_seconds", "seconds")}
                         for k, v in legs.items()},
                "stage_seconds": time.perf_counter() - t0,
            })
        except Exception as e:  # noqa: BLE001 — record it and go on to the next stage
            save("parity_error", str(e)[-3000:])

    if "throughput" not in skip:
        t0 = time.perf_counter()
        sel = raw[:args.pairs]
        try:
            hf, folder = bs.build_model(os.path.join(args.work, args.shape), texts, shape=args.shape,
                                        head_std=args.head_std)
            ingest(seal, args.work, "bench", sel)
        except Exception as e:  # noqa: BLE001 — nothing to measure without the model; say why
            save("build_large_error", str(e)[-3000:])
            print(json.dumps(results, indent=2))
            return
        save("build_large", {"seconds": time.perf_counter() - t0})
        runs, drifts, baselines = {}, {}, {}
        ref = {}

        def leg(name, extra, model_folder=folder):
            """One `seal score` run over all the pairs, under its own model name; its scores
            are compared with the first leg's (the default fp32 run)."""
            try:
                seal("models", "add", "--name", name, model_folder)
                run = seal.score("bench", name, "--device", args.device, *extra)
                scores, tokens = seal.scores("bench", name, args.work)
                if not ref:
                    ref.update(scores=scores, tokens=tokens)
                else:
                    keys = range(len(sel))
                    run["vs_default"] = bs.drift([scores[i] for i in keys], [ref["scores"][i] for i in keys])
                runs[name] = run
                save(f"leg_{name}", run)
            except Exception as e:  # noqa: BLE001 — record it and go on to the next leg
                save(f"leg_{name}_error", str(e)[-3000:])

        def baseline(name, fn, subset):
            try:
                bs.DEVICE = args.torch_device
                torch.backends.cuda.matmul.allow_tf32 = False  # the paper's fp32, as seal's default
                torch.backends.cudnn.allow_tf32 = False
                if "model" not in baseline.__dict__:
                    baseline.tok = PreTrainedTokenizerFast.from_pretrained(hf)
                    baseline.model = DebertaV2ForSequenceClassification.from_pretrained(hf).to(
                        args.torch_device).eval()
                model, tok = baseline.model, baseline.tok
                sync = torch.cuda.synchronize if args.torch_device.startswith("cuda") else (lambda: None)
                bs.baseline_b(model, tok, subset[:16])  # warm-up: CUDA context, kernels, allocator
                sync()
                t = time.perf_counter()
                scores = fn(model, tok, subset)
                sync()
                dt = time.perf_counter() - t
                baselines[name] = {"pairs": len(subset), "seconds": dt, "pairs_per_s": len(subset) / dt}
                if ref:
                    baselines[name]["max_abs_diff_vs_seal_fp32"] = compare(
                        {i: tuple(x) for i, x in enumerate(scores)}, ref["scores"])["max_abs_diff"]
                save("baselines", baselines)
            except Exception as e:  # noqa: BLE001
                save(f"baseline_{name}_error", str(e)[-3000:])

        pairs = [(bs.split(p["chosen"]), bs.split(p["rejected"])) for p in sel]
        legs = [spec.split(":", 1) for spec in args.legs.split(";") if spec]
        # The default leg, then RewardBench-style batches in the same run (the headline ratio),
        # then the other fp32 legs.
        leg(legs[0][0], legs[0][1].split())
        if "baselines" not in skip:
            baseline("b_rewardbench_batch8", bs.baseline_b, pairs)
        for name, extra in legs[1:]:
            leg(name, extra.split())
        best = max(runs, key=lambda k: runs[k]["pairs_per_s_compute"]) if runs else None
        best_extra = dict(legs).get(best, "").split() if best else []
        if "tf32" not in skip and best:
            leg("tf32", ["--tf32", *best_extra])
        if "baselines" not in skip:
            baseline("c_no_grad_batch1", bs.baseline_c, pairs[:args.loop_pairs])
            baseline("a_paper_loop", bs.baseline_a, pairs[:args.loop_pairs])
        # The other exports of the same model, each scored with the fastest fp32 leg's arguments.
        exports = [("windowed", "windowed" not in skip, ["--attention", "windowed"]),
                   ("fp16", "fp16" not in skip, ["--dtype", "fp16"]),
                   ("fp16-windowed", "fp16-windowed" not in skip, ["--dtype", "fp16", "--attention", "windowed"])]
        for name, wanted, flags in exports:
            if not (wanted and best):
                continue
            try:
                t1 = time.perf_counter()
                exported = export(hf, os.path.join(args.work, args.shape, "seal-" + name), *flags)
                save(f"{name}_export", {"seconds": time.perf_counter() - t1})
                leg(name, best_extra, exported)
                for target, label, extra in export_legs:
                    if target == name:
                        leg(f"{name}-{label}", extra, exported)
            except Exception as e:  # noqa: BLE001
                save(f"{name}_error", str(e)[-3000:])
        fp32_legs = {k: v for k, v in runs.items() if k != "tf32" and not k.startswith("fp16")}
        if ref:
            mean_tokens = ref["tokens"] / (2 * len(sel))
            summary = {"pairs": len(sel), "mean_tokens_per_text": mean_tokens, "best_fp32_leg": best,
                       "seal_pairs_per_s": {k: v["pairs_per_s_compute"] for k, v in runs.items()},
                       "seal_load_seconds": {k: v["load_seconds"] for k, v in runs.items()}}
            if args.shape == "large":
                summary["fp32_fraction_of_peak"] = {
                    k: v["pairs_per_s_compute"] * 2 * mean_tokens * LARGE_GFLOP_PER_TOKEN / 1e3 / FP32_PEAK_TFLOPS
                    for k, v in fp32_legs.items()}
            summary["ratios"] = {leg_name: {b: r["pairs_per_s_compute"] / x["pairs_per_s"] for b, x in baselines.items()}
                                 for leg_name, r in runs.items()}
            summary["stage_seconds"] = time.perf_counter() - t0
            save("throughput", summary)

    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
