"""Feed a topic from JSONL/CSV files or the synthetic generator, at a chosen rate."""

from __future__ import annotations

import csv
import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from kafka import KafkaProducer
from tqdm.auto import tqdm

from pipeline.tooling.synthetic import SyntheticStream


class ReplayError(ValueError):
    """An input file cannot be replayed."""


def _csv_record(row: dict[str, str]) -> bytes:
    if "text" not in row:
        raise ReplayError("CSV files need a 'text' column")
    out: dict[str, object] = {"text": row["text"]}
    for name in ("id", "source", "kind"):
        if row.get(name):
            out[name] = row[name]
    if row.get("published_at"):
        value = row["published_at"]
        out["published_at"] = int(value) if value.isdigit() else value
    if row.get("tickers"):
        out["tickers"] = [t for t in row["tickers"].replace(",", " ").split() if t]
    return json.dumps(out, ensure_ascii=False).encode("utf-8")


def read_files(paths: Iterable[Path], retime: bool = False) -> Iterator[bytes]:
    """Record values from JSONL (one JSON object a line; other lines are sent as they are) and CSV files.

    With ``retime`` the event time of every JSON record becomes the moment it is sent.
    """
    for path in paths:
        if not path.is_file():
            raise ReplayError(f"{path} does not exist")
        if path.suffix.lower() == ".csv":
            with path.open(newline="", encoding="utf-8") as fh:
                for row in csv.DictReader(fh):
                    yield _retimed(_csv_record(row)) if retime else _csv_record(row)
        else:
            with path.open("rb") as fh:
                for line in fh:
                    line = line.rstrip(b"\r\n")
                    if line:
                        yield _retimed(line) if retime else line


def _retimed(value: bytes) -> bytes:
    try:
        obj = json.loads(value)
    except ValueError:
        return value
    if isinstance(obj, dict):
        obj["published_at"] = int(time.time() * 1000)
        return json.dumps(obj, ensure_ascii=False).encode("utf-8")
    return value


def synthetic_records(stream: SyntheticStream, clock: Callable[[], float] = time.time) -> Iterator[bytes]:
    """Endless synthetic records stamped with the time they are made."""
    started = clock()
    while True:
        now = clock()
        yield stream.record(now - started, int(now * 1000))


def replay(
    records: Iterable[bytes],
    producer: KafkaProducer,
    topic: str,
    *,
    rate: float,
    limit: int | None = None,
    duration_s: float | None = None,
    stop: threading.Event | None = None,
    progress: bool = True,
) -> int:
    """Send records at ``rate`` per second (0 = as fast as possible); returns how many were sent."""
    stop = stop or threading.Event()
    started = time.monotonic()
    sent = 0
    bar = tqdm(total=limit, desc=f"replay → {topic}", unit="msg", disable=not progress, dynamic_ncols=True)
    try:
        for value in records:
            if stop.is_set() or (limit is not None and sent >= limit):
                break
            if duration_s is not None and time.monotonic() - started >= duration_s:
                break
            if rate > 0:
                delay = started + sent / rate - time.monotonic()
                if delay > 0 and stop.wait(delay):
                    break
            producer.send(topic, value=value)
            sent += 1
            bar.update(1)
    finally:
        producer.flush(timeout=30)
        bar.close()
    return sent
