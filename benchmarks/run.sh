#!/usr/bin/env bash
# Benchmark the daemon against the Hugging Face pipeline baseline and keep the report.
# Usage: benchmarks/run.sh [extra finsent bench flags]. Results: benchmarks/results/<date>.json
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p benchmarks/results
.venv/bin/finsent bench --output "benchmarks/results/$(date -u +%Y%m%dT%H%M%SZ).json" "$@"
