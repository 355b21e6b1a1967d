"""What per-company sentiment costs: the share of a stream that takes extra passes, and the model's texts/s
with and without them, side by side in one process.

Usage: .venv/bin/python benchmarks/ticker_passes.py --data-dir DATA_DIR [--model DIR] [--threads 2] [--call 4]

The stream is both tweet test sets (news-wire and analyst tweets, as a desk receives them) with tickers
found the way the daemon finds them (cashtags and company names); a message naming two or more
companies gets one extra pass per company (at most ``--max-targets``). Each variant scores the same
texts, handed to the scorer ``--call`` at a time (the daemon's batches: 2-8 under live traffic, up to 256
on a backlog) and length-sorted in runs of 64 within a call, taking turns, best of ``--repeats``; the
per-company passes both as the scorer runs them (in the texts' own length-sorted runs) and in a model call
of their own after the texts' (as before 2026-12-06). Figures compare only within one run on one machine,
and the CPU is printed.
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
    parser.add_argument("--call", type=int, default=4096, help="texts handed to the scorer at a time")
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

    calls = [(texts[i : i + args.call], targets[i : i + args.call]) for i in range(0, len(texts), args.call)]

    def plain() -> object:
        return [scorer.score(t) for t, _ in calls]

    def per_company() -> object:
        return [scorer.score_targets(t, m) for t, m in calls]

    def separate_call() -> object:  # the pairs in a model call of their own, after the texts'
        for t, m in calls:
            scorer.score(t)
            pairs = [(text, m[i][k]) for i, text in enumerate(t) for k in plan_targets(list(m[i]), args.max_targets)[0]]
            if pairs:
                scorer.model.predict([p for p, _ in pairs], batch_size=64, targets=[k for _, k in pairs])
        return None

    plain()  # warm-up
    variants = {
        "message only": plain,
        "with per-company passes": per_company,
        "with per-company passes in a call of their own": separate_call,
    }
    rates: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(args.repeats):  # turns, so a noisy neighbour hurts all alike
        for name, fn in variants.items():
            rates[name].append(best_rate(fn, len(texts), 1))
    best = {k: max(v) for k, v in rates.items()}
    counts = Counter(min(len(t), 4) for t in tickers)
    report = {
        "cpu": cpu_model(),
        "threads": args.threads,
        "texts_per_call": min(args.call, len(texts)),
        "model": scorer.version,
        "texts": len(texts),
        "share_by_tickers": {("4+" if k == 4 else str(k)): round(v / len(texts), 4) for k, v in sorted(counts.items())},
        "share_with_extra_passes": round(sum(p > 0 for p in passes) / len(texts), 4),
        "extra_passes_per_text": round(sum(passes) / len(texts), 4),
        "texts_per_s": {k: round(v, 1) for k, v in best.items()},
        "cost": round(best["message only"] / best["with per-company passes"], 3),
        "cost_in_a_call_of_their_own": round(
            best["message only"] / best["with per-company passes in a call of their own"], 3
        ),
    }
    print(json.dumps(report, indent=2))
    if args.output:
        with open(args.output, "w") as fh:
            json.dump(report, fh, indent=2)


if __name__ == "__main__":
    main()
