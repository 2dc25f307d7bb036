#!/usr/bin/env python3
"""Generate the test fixtures under tests/fixtures/ (run from the repository root).

- a small Unigram/Metaspace tokenizer trained on hh-rlhf harmless-base test text,
  with the DeBERTa pair template [CLS] A [SEP] B [SEP] and segment ids;
- two tiny DebertaV2ForSequenceClassification reward models (num_labels=1), random
  init with different seeds ("pre" and "post"), init scaled so scores really vary;
  each saved as a Hugging Face folder (hf/) and exported with seal_export.py (seal/);
- reference scores computed by transformers exactly as SEAL calls an RM, on real
  hh-rlhf pairs (long and multi-turn ones included), with the token ids.

Usage: python python/make_fixtures.py [--data PATH/test.jsonl.gz]
"""

import argparse
import gzip
import json
import os
import subprocess
import sys

import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, decoders, trainers
from transformers import DebertaV2Config, DebertaV2ForSequenceClassification, PreTrainedTokenizerFast

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.path.join(ROOT, "tests", "fixtures")
SPECIALS = ["[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]"]


def split(text):
    pivot = text.rfind("Assistant:")
    return text[:pivot], text[pivot:]


def load_pairs(path):
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def build_tokenizer(texts):
    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
    trainer = trainers.UnigramTrainer(vocab_size=1000, special_tokens=SPECIALS, unk_token="[UNK]")
    tok.train_from_iterator(texts, trainer=trainer)
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS]:0 $A:0 [SEP]:0",
        pair="[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
        sep_token="[SEP]", mask_token="[MASK]", model_max_length=512,
        model_input_names=["input_ids", "token_type_ids", "attention_mask"],
    )


def build_model(vocab_size, seed, pad_id):
    torch.manual_seed(seed)
    cfg = DebertaV2Config(
        vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=512, type_vocab_size=2,
        relative_attention=True, position_buckets=64, max_relative_positions=-1,
        pos_att_type=["p2c", "c2p"], position_biased_input=False, norm_rel_ebd="layer_norm",
        share_att_key=True, hidden_act="gelu", pooler_hidden_size=32, pooler_hidden_act="gelu",
        initializer_range=0.3, num_labels=1, pad_token_id=pad_id,
    )
    model = DebertaV2ForSequenceClassification(cfg)
    model.eval()
    return model


def score(model, tokenizer, context, response):
    enc = tokenizer(context, response, return_tensors="pt")
    with torch.no_grad():
        out = float(model(**enc).logits[0][0])
    return out, enc["input_ids"][0].tolist(), enc["token_type_ids"][0].tolist()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data", "hh-rlhf", "harmless-base",
                                                   "test.jsonl.gz"))
    args = ap.parse_args()
    pairs = load_pairs(args.data)
    texts = [p[k] for p in pairs for k in ("chosen", "rejected")]
    tokenizer = build_tokenizer(texts)

    # Reference set: the 12 longest pairs, the 12 with the most turns, 40 spread over the file.
    n = len(pairs)
    by_len = sorted(range(n), key=lambda i: -max(len(pairs[i]["chosen"]), len(pairs[i]["rejected"])))
    by_turns = sorted(range(n), key=lambda i: -pairs[i]["chosen"].count("\n\nHuman:"))
    chosen_ids = []
    for i in by_len[:12] + by_turns[:12] + list(range(0, n, n // 40))[:40]:
        if i not in chosen_ids:
            chosen_ids.append(i)
    chosen_ids.sort()

    reference = {"dataset": "hh-rlhf harmless-base test", "source_file": "harmless-base/test.jsonl.gz",
                 "torch": torch.__version__, "models": {}, "pairs": []}
    for i in chosen_ids:
        c_ctx, c_resp = split(pairs[i]["chosen"])
        r_ctx, r_resp = split(pairs[i]["rejected"])
        reference["pairs"].append({"pair_id": f"harmless-base/test/{i}", "line": i,
                                   "chosen": [c_ctx, c_resp], "rejected": [r_ctx, r_resp]})

    for name, seed in (("pre", 1), ("post", 2)):
        model = build_model(len(tokenizer), seed, tokenizer.pad_token_id)
        hf_dir = os.path.join(FIX, "models", name, "hf")
        os.makedirs(hf_dir, exist_ok=True)
        model.save_pretrained(hf_dir)
        tokenizer.save_pretrained(hf_dir)
        # The default init gives near-constant scores; rescale the head so scores have std 1.
        with torch.no_grad():
            probe = torch.tensor([score(model, tokenizer, *p["chosen"])[0] for p in reference["pairs"]])
            model.classifier.weight.mul_(1.0 / float(probe.std()))
            model.classifier.bias.zero_()
        model.save_pretrained(hf_dir)
        scores = []
        for p in reference["pairs"]:
            cs, c_ids, c_tt = score(model, tokenizer, *p["chosen"])
            rs, r_ids, r_tt = score(model, tokenizer, *p["rejected"])
            p.setdefault("scores", {})[name] = [cs, rs]
            p["chosen_input_ids"], p["chosen_token_type_ids"] = c_ids, c_tt
            p["rejected_input_ids"], p["rejected_token_type_ids"] = r_ids, r_tt
            scores += [cs, rs]
        std = float(torch.tensor(scores).std())
        reference["models"][name] = {"seed": seed, "score_std": std}
        print(f"{name}: score std {std:.3f} over {len(scores)} texts", file=sys.stderr)
        if std < 0.25:
            sys.exit(f"{name}: scores barely vary (std {std:.3f}); raise initializer_range")
        samples = os.path.join(FIX, "models", name, "parity-samples.jsonl")
        with open(samples, "w") as f:
            for p in reference["pairs"][:8]:
                f.write(json.dumps({"context": p["chosen"][0], "response": p["chosen"][1]}) + "\n")
        subprocess.run([sys.executable, os.path.join(ROOT, "python", "seal_export.py"), hf_dir,
                        "--out", os.path.join(FIX, "models", name, "seal"), "--samples", samples,
                        "--max-abs-diff", "1e-4"], check=True)
        os.remove(samples)

    lens = [len(p["chosen_input_ids"]) for p in reference["pairs"]] + \
           [len(p["rejected_input_ids"]) for p in reference["pairs"]]
    reference["n_tokens"] = {"min": min(lens), "max": max(lens), "over_512": sum(l > 512 for l in lens)}
    with open(os.path.join(FIX, "reference_scores.json"), "w") as f:
        json.dump(reference, f, separators=(",", ":"))
    print(f"{len(reference['pairs'])} reference pairs; tokens {reference['n_tokens']}", file=sys.stderr)


if __name__ == "__main__":
    main()
