#!/bin/bash
# Scores one dataset with one reward model as a Slurm job array: task I of N scores shard I/N
# on its own GPU, in a data dir of its own, and writes its scores with their provenance to
# $OUT_DIR/scores-I.parquet. A killed or preempted task that Slurm requeues resumes where it
# stopped if it finds its data dir again: on the same node, or anywhere when DATA_ROOT is a
# shared folder (many clusters delete a job's node-local $TMPDIR when it ends).
#
#   mkdir -p logs && sbatch --array=0-7 deploy/slurm/score-array.sh
#   # rerun one task that failed (SHARDS fixes N; the array index is then the shard's):
#   SHARDS=8 sbatch --array=3 deploy/slurm/score-array.sh
#   # then, on the machine that holds the lab's store (the same model registered there):
#   seal scores import --dataset hh --model oa-v2 shards/scores-*.parquet
#
# Each node needs the dataset with the same pair ids as the lab's store, either
#   SOURCES: the same source files `seal ingest` read there (pair ids come from a file's subset,
#            split and line, so the same files give the same ids), with any INGEST_ARGS; or
#   BACKUP:  a `seal backup` of the lab's store, restored into the task's data dir.
# and the model folder with the same files, registered with the same settings as in the lab's
# store (MODEL_ARGS): import checks the graph's sha256, the tokenizer, the input format, the
# truncation and the max length, and refuses a shard that differs. (Registering it otherwise
# over a backup's model that holds scores is refused at once, for the same reason.)
#
#SBATCH --job-name=seal-score
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=8
#SBATCH --mem=32G
#SBATCH --time=04:00:00
#SBATCH --output=logs/seal-score-%A_%a.out
#SBATCH --requeue
set -euo pipefail
# sbatch passes the submitting shell's environment on: a SEAL_SERVER there would send each
# task's commands to the lab's server instead of the task's own data dir.
unset SEAL_SERVER SEAL_TOKEN

SEAL="${SEAL:-seal}"                           # the seal binary on the nodes
DATASET="${DATASET:-hh}"
SOURCES="${SOURCES:-}"                         # e.g. "data/hh-rlhf/harmless-base/test.jsonl.gz"
INGEST_ARGS="${INGEST_ARGS:-}"                 # e.g. "--format pairs --id-column id"
BACKUP="${BACKUP:-}"                           # e.g. backups/seal-2026-11-30.zip
MODEL_NAME="${MODEL_NAME:?set MODEL_NAME, the model's name in the lab's store}"
MODEL_DIR="${MODEL_DIR:?set MODEL_DIR, the exported model folder}"
OUT_DIR="${OUT_DIR:-shards}"
MODEL_ARGS="${MODEL_ARGS:-}"                   # as registered in the lab, e.g. "--truncation context-left --max-length 512"
SCORE_ARGS="${SCORE_ARGS:-}"                   # e.g. "--tf32" or "--batch-tokens 16384"
DEVICE="${DEVICE:-cuda}"                       # the task's GPU (Slurm sets CUDA_VISIBLE_DEVICES)
# Node-local by default; a shared folder keeps a requeued task's progress if it lands elsewhere.
DATA="${DATA_ROOT:-${TMPDIR:-/tmp}}/seal-${SLURM_ARRAY_JOB_ID:-0}-${SLURM_ARRAY_TASK_ID:-0}"

# Shard I of N, whatever the array's first index (--array=1-8 works as 0-7 does); every task
# must be in it, so a step (--array=0-14:2) is refused. With SHARDS=N, the array index is the
# shard index (after SHARD_BASE, 0 by default), whatever else the array holds.
task="${SLURM_ARRAY_TASK_ID:?run as a job array: sbatch --array=0-N-1 $0}"
if [ -n "${SHARDS:-}" ]; then
  case "$SHARDS${SHARD_BASE:-0}" in
    *[!0-9]*) echo "SHARDS and SHARD_BASE are whole numbers (SHARDS=$SHARDS, SHARD_BASE=${SHARD_BASE:-})" >&2; exit 2 ;;
  esac
  count="$SHARDS"
  index="$((task - ${SHARD_BASE:-0}))"
  if [ "$count" -lt 1 ] || [ "$index" -lt 0 ] || [ "$index" -ge "$count" ]; then
    echo "array index $task is not a shard of SHARDS=$count (SHARD_BASE=${SHARD_BASE:-0})" >&2
    exit 2
  fi
else
  count="${SLURM_ARRAY_TASK_COUNT:?run as a job array: sbatch --array=0-N-1 $0}"
  first="${SLURM_ARRAY_TASK_MIN:-0}"
  last="${SLURM_ARRAY_TASK_MAX:-$((first + count - 1))}"
  if [ "$((last - first + 1))" -ne "$count" ]; then
    echo "the array must be one range without a step (--array=0-$((count - 1))), so that each task scores one shard; to rerun some tasks, give SHARDS=N" >&2
    exit 2
  fi
  index="$((task - first))"
fi
mkdir -p "$OUT_DIR"

# The data dir is ready once its dataset is wholly in: a task stopped while ingesting several
# sources, or restoring, starts that over instead of scoring part of the dataset.
if [ ! -f "$DATA/.seal-score-ready" ]; then
  rm -rf "$DATA"
  if [ -n "$BACKUP" ]; then
    "$SEAL" restore "$BACKUP" --data-dir "$DATA"
  elif [ -n "$SOURCES" ]; then
    # shellcheck disable=SC2086 # INGEST_ARGS and SOURCES are word lists
    "$SEAL" --data-dir "$DATA" ingest --dataset "$DATASET" $INGEST_ARGS $SOURCES
  else
    echo "set SOURCES (the files the lab's store ingested) or BACKUP (a seal backup)" >&2
    exit 2
  fi
  touch "$DATA/.seal-score-ready"
fi
# Registered here from this node's copy of the folder; import checks it is the same graph and
# the same input pipeline.
# shellcheck disable=SC2086 # MODEL_ARGS is a word list
"$SEAL" --data-dir "$DATA" models add --name "$MODEL_NAME" --replace $MODEL_ARGS "$MODEL_DIR"

# shellcheck disable=SC2086
"$SEAL" --data-dir "$DATA" score --dataset "$DATASET" --model "$MODEL_NAME" --device "$DEVICE" \
  --shard "$index/$count" --out "$OUT_DIR/scores-$index.parquet" $SCORE_ARGS
