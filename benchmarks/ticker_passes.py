"""What per-company sentiment costs: the share of a stream that takes extra passes, and the model's texts/s
with and without them, side by side in one process.

Usage: .venv/bin/python benchmarks/ticker_passes.py --data-dir DATA_DIR [--model DIR] [--threads 2]

The stream is both tweet test sets (news-wire and analyst tweets, as a desk receives them) with tickers
found the way the daemon finds them (cashtags and company names); a message naming two or more
companies gets one extra pass per company (at most ``--max-targets``). Each variant scores the same
texts in length-sorted batches of 64, taking turns, best of ``--repeats``; figures compare only within
one run on one machine, and the CPU is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import Counter
from collections.abc import Callable

from models.card import SHIPPED_MODEL_DIR
from models.data import load_test_sets
from pipeline.linker import default_linker
from pipeline.scorer import OnnxScorer
from pipeline.targets import mentions, plan_targets
from pipeline.tickers import ticker_sources
from pipeline.tooling.bench import cpu_model


def best_rate(fn: Callable[[], object], n: int, repeats: int) -> float:
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = max(best, n / (time.perf_counter() - start))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("FINSENT_DATA_DIR"))
    parser.add_argument("--model", default=str(SHIPPED_MODEL_DIR))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-targets", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("-o", "--output", help="write the figures as JSON here")
    args = parser.parse_args()

    tests = load_test_sets(args.data_dir).test
    texts = [r.text for task in ("sentiment", "topic") for r in tests[task]]
    linker = default_linker()
    tickers = [list(ticker_sources(t, linker=linker)) for t in texts]
    targets = [mentions(t, tk, linker) if len(tk) >= 2 else {} for t, tk in zip(texts, tickers, strict=True)]
    passes = [len(plan_targets(list(m), args.max_targets)[0]) for m in targets]
    scorer = OnnxScorer(args.model, threads=args.threads, batch_size=64, max_targets=args.max_targets)
    if not scorer.reads_targets:
        raise SystemExit(f"{args.model} was not trained on company targets: nothing to measure")

    def plain() -> object:
        return scorer.score(texts)

    def per_company() -> object:
        return scorer.score_targets(texts, targets)

    plain()  # warm-up
    rates: dict[str, list[float]] = {"message only": [], "with per-company passes": []}
    for _ in range(args.repeats):  # turns, so a noisy neighbour hurts both alike
        rates["message only"].append(best_rate(plain, len(texts), 1))
        rates["with per-company passes"].append(best_rate(per_company, len(texts), 1))
    best = {k: max(v) for k, v in rates.items()}
    counts = Counter(min(len(t), 4) for t in tickers)
    report = {
        "cpu": cpu_model(),
        "threads": args.threads,
        "model": scorer.version,
        "texts": len(texts),
        "share_by_tickers": {("4+" if k == 4 else str(k)): round(v / len(texts), 4) for k, v in sorted(counts.items())},
        "share_with_extra_passes": round(sum(p > 0 for p in passes) / len(texts), 4),
        "extra_passes_per_text": round(sum(passes) / len(texts), 4),
        "texts_per_s": {k: round(v, 1) for k, v in best.items()},
        "cost": round(best["message only"] / best["with per-company passes"], 3),
    }
    print(json.dumps(report, indent=2))
    if args.output:
        with open(args.output, "w") as fh:
            json.dump(report, fh, indent=2)


if __name__ == "__main__":
    main()
