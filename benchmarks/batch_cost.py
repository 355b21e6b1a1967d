"""What a text costs the model by batch size and scoring layout: wall time and CPU time per text.

Usage: .venv/bin/python benchmarks/batch_cost.py [--data-dir DIR] [--model DIR] [--batches 1,2,4,8,32,256]

Scores the tweets of the sentiment validation set (``FINSENT_DATA_DIR``) in batches of each size with four
layouts, one after the other in one process: one worker on a session of one ONNX Runtime thread, one worker on
a session with a thread per CPU, and two workers side by side on one shared session of each kind (the daemon's
two layouts on two cores: 2 x 1 and 2 x 2). Wall ms/text is throughput (two workers: the pair's); CPU ms/text is
what the process burnt for it, which is what a daemon sharing its cores with its own loop, the broker and the
producers runs out of. Prints the CPU model and writes ``benchmarks/results/batch-cost-<date>.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent)]

from models.card import SHIPPED_MODEL_DIR  # noqa: E402
from models.inference import OnnxModel  # noqa: E402
from pipeline.tooling.bench import cpu_model  # noqa: E402
from pipeline.tooling.builds import shown  # noqa: E402


def load_tweets(data_dir: Path) -> list[str]:
    path = data_dir / "twitter-financial-news-sentiment" / "sent_valid.csv"
    if not path.is_file():
        sys.exit(f"no tweets at {path}: pass --data-dir or set FINSENT_DATA_DIR")
    with path.open(newline="") as f:
        return [row["text"] for row in csv.DictReader(f)]


def timed(models: list[OnnxModel], texts: list[str], batch: int, per_worker: int) -> tuple[float, float]:
    """(wall ms/text, CPU ms/text) with one thread per model scoring ``per_worker`` texts in ``batch``-sized calls,
    each from its own part of ``texts``."""

    def work(model: OnnxModel, offset: int) -> None:
        done, i = 0, offset
        while done < per_worker:
            chunk = texts[i : i + batch]
            model.predict(chunk, batch_size=batch)
            done += len(chunk)
            i = (i + batch) % (len(texts) - batch)

    threads = [threading.Thread(target=work, args=(m, k * len(texts) // len(models))) for k, m in enumerate(models)]
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    n = per_worker * len(models)
    return wall / n * 1000, cpu / n * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=os.environ.get("FINSENT_DATA_DIR"))
    parser.add_argument("--model", type=Path, default=SHIPPED_MODEL_DIR)
    parser.add_argument("--batches", default="1,2,4,8,16,32,64,256")
    args = parser.parse_args()
    if args.data_dir is None:
        sys.exit("pass --data-dir or set FINSENT_DATA_DIR")
    texts = load_tweets(args.data_dir)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    one = OnnxModel(args.model, threads=1)
    many = OnnxModel(args.model, threads=cpus)
    layouts = {
        "1 x 1": [one],
        f"1 x {cpus}": [many],
        "2 x 1 (one session)": [one, one],
        f"2 x {cpus} (one session)": [many, many],
    }
    for model in (one, many):
        model.predict(texts[:64], batch_size=8)  # warm-up
    print(f"machine: {cpu_model()}, {cpus} CPUs; model {shown(args.model)}")
    print(f"{'batch':>5}  " + "  ".join(f"{name:>24}" for name in layouts))
    print(f"{'':>5}  " + "  ".join(f"{'wall / CPU ms a text':>24}" for _ in layouts))
    rows: list[dict[str, Any]] = []
    for batch in (int(b) for b in args.batches.split(",")):
        per_worker = max(256, batch * 4)
        row: dict[str, Any] = {"batch": batch}
        for name, models in layouts.items():
            wall, cpu = timed(models, texts, batch, per_worker)
            row[name] = {"wall_ms_per_text": wall, "cpu_ms_per_text": cpu}
        rows.append(row)
        print(
            f"{batch:>5}  "
            + "  ".join(f"{row[n]['wall_ms_per_text']:>13.2f} / {row[n]['cpu_ms_per_text']:>6.2f}" for n in layouts),
            flush=True,
        )
    out = HERE / "results" / f"batch-cost-{datetime.now(UTC):%Y-%m-%d}.json"
    out.write_text(
        json.dumps(
            {"machine": {"cpu": cpu_model(), "cpus": cpus}, "model": shown(args.model), "results": rows}, indent=2
        )
    )
    print(f"wrote {out.relative_to(HERE.parent)}")


if __name__ == "__main__":
    main()
