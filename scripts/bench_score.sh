#!/usr/bin/env bash
# Runs scripts/bench_score.py in the export environment (prepared on first use).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
seal="${CARGO_TARGET_DIR:-$root/target}/release/seal"
py="$("$seal" models python)"
exec "$py" "$root/scripts/bench_score.py" --seal "$seal" "$@"
