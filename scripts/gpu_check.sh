#!/usr/bin/env bash
# The GPU check of `seal score --device cuda`, in two halves.
#
#   scripts/gpu_check.sh prepare    on a CPU machine with the release build: installs ONNX
#                                   Runtime's CUDA build with `seal runtime install --gpu`, trims
#                                   its CUDA provider to Hopper (sm_90) code with
#                                   scripts/fatbin_prune.py, and packs what the GPU machine needs
#                                   into .gpu/ (ignored by git):
#                                     .gpu/a  seal, libonnxruntime, the provider without the kernel
#                                             families SEAL never launches (flash attention,
#                                             CUTLASS, MoE…), the hh-rlhf test pairs   ≈ 45 MiB
#                                     .gpu/b  the provider with every sm_90 kernel: a fallback
#                                             bundle for when the trimmed one lacks a kernel
#   scripts/gpu_check.sh run [ARGS] on the GPU machine (its python3 has torch, transformers and
#                                   the CUDA 13 libraries): unpacks .gpu/* into /tmp/seal-gpu and
#                                   runs scripts/bench_gpu.py ARGS, writing $OUT/gpu.json.
#
# Copy the working tree with .gpu/a to the GPU machine and run there (the results and the
# whole log go to $OUT: gpu.json, gpu.log). If a kernel fails to launch because the trimmed
# provider lacks it, run again with .gpu/b carried instead of .gpu/a's provider: `run` unpacks
# .gpu/b after .gpu/a, so its provider replaces the trimmed one (.gpu/a and .gpu/b together
# exceed a 64 MiB carry; the machine keeps .gpu/a's unpacked files while it stays warm).
#
# Environment:
#   SEAL_GPU_DIR  run: where .gpu/* is unpacked (default /tmp/seal-gpu)
#   SEAL_BIN      prepare: the seal binary to pack (default $CARGO_TARGET_DIR/release/seal,
#                 or target/release/seal)
#   PYTHON        run: the Python that runs scripts/bench_gpu.py (default python3)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bundle="$root/.gpu"
dest="${SEAL_GPU_DIR:-/tmp/seal-gpu}"
drop='flash|cutlass|moe|fpA_intB|qordered'

pack() { xz -9 -T0 -c "$1" >"$2"; }
unpack() { python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$1" "$2"; }

case "${1:-}" in
prepare)
  seal="${SEAL_BIN:-${CARGO_TARGET_DIR:-$root/target}/release/seal}"
  hh="$root/../shared/data/hh-rlhf/harmless-base/test.jsonl.gz"
  [ -x "$seal" ] || { echo "no release build at $seal (cargo build --release -p seal-backend)" >&2; exit 1; }
  [ -f "$hh" ] || { echo "missing $hh" >&2; exit 1; }
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  "$seal" runtime install --gpu --dir "$tmp/ort" --no-embedder
  ort="$tmp/ort/gpu"
  rm -rf "$bundle"
  mkdir -p "$bundle/a" "$bundle/b"
  strip -o "$tmp/seal" "$seal"
  pack "$tmp/seal" "$bundle/a/seal.xz"
  pack "$ort/libonnxruntime.so" "$bundle/a/libonnxruntime.so.xz"
  cp "$ort/libonnxruntime_providers_shared.so" "$ort/VERSION" "$bundle/a/"
  python3 "$root/scripts/fatbin_prune.py" "$ort/libonnxruntime_providers_cuda.so" "$tmp/trimmed.so" --arch 90 --drop "$drop"
  pack "$tmp/trimmed.so" "$bundle/a/libonnxruntime_providers_cuda.so.xz"
  python3 "$root/scripts/fatbin_prune.py" "$ort/libonnxruntime_providers_cuda.so" "$tmp/sm90.so" --arch 90
  pack "$tmp/sm90.so" "$bundle/b/libonnxruntime_providers_cuda.so.xz"
  cp "$hh" "$bundle/a/hh-test.jsonl.gz"
  du -sh "$bundle"/a "$bundle"/b
  ;;
run)
  shift
  if [ ! -f "$bundle/a/seal.xz" ] && [ ! -x "$dest/seal" ]; then
    echo "no $bundle/a/seal.xz: run \`$0 prepare\` on a CPU machine, and carry .gpu/a to this one" >&2
    exit 2
  fi
  mkdir -p "$dest/ort"
  for part in a b; do
    [ -d "$bundle/$part" ] || continue
    for f in "$bundle/$part"/*; do
      case "$f" in
      */seal.xz) unpack "$f" "$dest/seal" && chmod +x "$dest/seal" ;;
      *.xz) unpack "$f" "$dest/ort/$(basename "${f%.xz}")" ;;
      *hh-test.jsonl.gz) cp "$f" "$dest/" ;;
      *) cp "$f" "$dest/ort/" ;;
      esac
    done
  done
  export SEAL_ORT_DYLIB="$dest/ort/libonnxruntime.so" SEAL_HH_TEST="$dest/hh-test.jsonl.gz" CUDA_MODULE_LOADING=LAZY
  export PYTHONUNBUFFERED=1
  results="${OUT:-$dest}"
  mkdir -p "$results"
  # The whole log next to the results: a tool that keeps only the output's tail loses the
  # first stages' messages.
  {
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv || true
    "${PYTHON:-python3}" "$root/scripts/bench_gpu.py" --seal "$dest/seal" --work "$dest/work" \
      --out "$results/gpu.json" "$@"
  } 2>&1 | tee "$results/gpu.log"
  ;;
*)
  # The header above, up to its first line that is not a comment.
  awk 'NR > 1 && !/^#/ { exit } NR > 1 { print }' "$0" >&2
  exit 2
  ;;
esac
