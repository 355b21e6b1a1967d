"""Company-name linker speed beside the cashtag extractor, on the training texts, one thread.

Usage: .venv/bin/python benchmarks/linker_speed.py --data-dir DATA_DIR
Prints texts/s of each (best of three passes), their ratio and the CPU: figures compare only
within one run on one machine.
"""

from __future__ import annotations

import argparse
import csv
import os
import time
from collections.abc import Callable
from pathlib import Path

from pipeline.linker import default_linker
from pipeline.tickers import extract_tickers
from pipeline.tooling.bench import cpu_model

FILES = (
    "twitter-financial-news-sentiment/sent_train.csv",
    "twitter-financial-news-topic/topic_train.csv",
)


def texts_per_second(fn: Callable[[str], object], items: list[str], passes: int = 3) -> float:
    best = 0.0
    for _ in range(passes):
        start = time.perf_counter()
        for item in items:
            fn(item)
        best = max(best, len(items) / (time.perf_counter() - start))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("FINSENT_DATA_DIR"), required=False)
    args = parser.parse_args()
    if not args.data_dir:
        parser.error("give --data-dir or set FINSENT_DATA_DIR")
    texts: list[str] = []
    for name in FILES:
        with (Path(args.data_dir) / name).open(newline="", encoding="utf-8") as fh:
            texts.extend(row["text"] for row in csv.DictReader(fh))
    linker = default_linker()
    watchlist = frozenset({"AAPL", "NVDA", "TSLA", "MSFT", "AMZN"})
    link = texts_per_second(linker.link, texts)
    extract = texts_per_second(lambda t: extract_tickers(t, (), watchlist), texts)
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores; {len(texts)} texts, one thread")
    print(f"linker {link:,.0f} texts/s ({1e6 / link:.1f} µs a text), extract_tickers {extract:,.0f} texts/s")
    print(f"linker / extract_tickers speed: {link / extract:.2f}")


if __name__ == "__main__":
    main()
