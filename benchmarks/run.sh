#!/usr/bin/env bash
# Benchmark the daemon against the Hugging Face pipeline baseline and keep the report.
# Usage: benchmarks/run.sh [extra finsent bench flags]. Results: benchmarks/results/<date>.json
# Side by side with an earlier build (checked out as a git worktree, the two measured step by step):
#   benchmarks/run.sh --compare main --data-dir ../shared/data
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p benchmarks/results
.venv/bin/finsent bench --output "benchmarks/results/$(date -u +%Y%m%dT%H%M%SZ).json" "$@"
