"""Checkpoint contention on PostgreSQL: the daemon's real commit (``Store.commit_checkpoint``) with synthetic
deltas, from 1 to 32 concurrent writers of one consumer group.

Usage: .venv/bin/python benchmarks/checkpoint_contention.py [--pg-url URL] [--writers 1,2,4,8,16,32]
       [--seconds 10] [--events 50] [--partitions-per-writer 2]

Each writer is a process standing in for one daemon: it owns ``--partitions-per-writer`` input partitions
(taken over through the store, so its commits are fenced like a daemon's; the group's topic has
writers × that many, so every level does the same work per commit), and commits as
fast as it can, each checkpoint carrying ``--events`` scored messages spread over its partitions: window
deltas for ``all``, 20 topics, 50 tickers and 3 sources in the current minute, the drill-down rows,
story hashes, offsets and progress of every owned partition, the watermark and window closing — exactly
what a daemon's checkpoint writes. Each level gets a fresh database (one group per store).

Per level: checkpoints/s, events/s, p50/p99 checkpoint time, the time each commit waited for the
group's ``progress`` row (timed around the store's own lock statement), and samples of
``pg_stat_activity`` every 20 ms: how many writers were waiting on a lock, and on which statement
(the ``progress`` row, the ``windows`` upsert of hot ``all``/topic rows, anything else).
Prints the load average before and after each level: figures taken on a busy machine are inflated.
Writes ``benchmarks/results/checkpoint-contention-<date>.json``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import statistics
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent)]

from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import Connection  # noqa: E402

from models.contract import TOPIC_LABELS  # noqa: E402
from pipeline.pending import Accounted, Pending  # noqa: E402
from pipeline.progress import PartitionProgress  # noqa: E402
from pipeline.schema import Event, Origin  # noqa: E402
from pipeline.scored import ScoredMessage  # noqa: E402
from pipeline.scorer import Score  # noqa: E402
from pipeline.store import Checkpoint, Store  # noqa: E402
from pipeline.tooling.bench import cpu_model  # noqa: E402
from pipeline.windows import dimension_keys, window_start  # noqa: E402

GROUP = "contention"
TOPIC = "bench.news"
TICKERS = [f"T{i:02d}" for i in range(50)]
SOURCES = ["wire", "forum", "blog"]
SENTIMENTS = ["negative", "neutral", "positive"]
WINDOW_MS = 60_000


PHASES = ("progress lock", "stories", "window deltas", "messages", "watermark and closing")


class TimedStore(Store):
    """The real store, with the phases of its commit timed: the wait for the group's ``progress`` row, the
    story claims, the window upserts, the drill-down rows, the watermark and closing (the rest of a commit —
    epochs, fenced offsets, the commit itself — is the difference to its total)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.phases = dict.fromkeys(PHASES, 0.0)

    def _timed(self, phase: str, fn: Any, *args: Any) -> Any:
        started = time.perf_counter()
        try:
            return fn(*args)
        finally:
            self.phases[phase] += time.perf_counter() - started

    def _lock_progress(self, conn: Connection, group_id: str, now: datetime) -> int | None:
        return self._timed("progress lock", super()._lock_progress, conn, group_id, now)  # type: ignore[no-any-return]

    def _claim_stories(self, conn: Connection, cp: Checkpoint) -> Any:
        return self._timed("stories", super()._claim_stories, conn, cp)

    def _add_deltas(self, conn: Connection, deltas: Any, mark: int | None) -> None:
        self._timed("window deltas", super()._add_deltas, conn, deltas, mark)

    def _insert_messages(self, conn: Connection, rows: Any) -> None:
        self._timed("messages", super()._insert_messages, conn, rows)

    def _close(self, conn: Connection, cp: Checkpoint, mark: int | None, now: datetime) -> Any:
        return self._timed("watermark and closing", super()._close, conn, cp, mark, now)


def synthetic_checkpoint(
    rng: random.Random, writer: int, seq: int, owned: list[int], offsets: dict[tuple[str, int], int], n: int
) -> tuple[dict[Any, Any], Pending, int]:
    """``n`` scored messages at the wall clock's time, spread over ``owned`` partitions; the new offsets."""
    now_ms = int(time.time() * 1000)
    accounted = []
    new = dict(offsets)
    for i in range(n):
        p = owned[i % len(owned)]
        tp = (TOPIC, p)
        offset = new.get(tp, 0)
        new[tp] = offset + 1
        tickers = rng.sample(TICKERS, rng.choice((0, 1, 1, 2)))
        topic, source = rng.choice(TOPIC_LABELS), rng.choice(SOURCES)
        sentiment = rng.choice(SENTIMENTS)
        event = Event(
            f"w{writer}-{seq}-{i}",
            f"synthetic headline {writer} {seq} {i} about {' '.join(tickers) or 'markets'}",
            now_ms,
            source,
            "news",
            tickers,
            Origin(TOPIC, p, offset, now_ms),
        )
        probs = [0.1, 0.1, 0.1]
        probs[SENTIMENTS.index(sentiment)] = 0.8
        score = Score(sentiment, probs[0], probs[1], probs[2], topic, 0.9)
        message = ScoredMessage(event, score, "synthetic", now_ms, False, False)
        accounted.append(
            Accounted(
                event=event,
                value=None,
                start=window_start(now_ms, WINDOW_MS),
                keys=list(dimension_keys(topic, tickers, source)),
                sentiment=sentiment,
                p_negative=probs[0],
                p_positive=probs[2],
                unique=True,
                late=False,
                story=f"{writer}-{seq}-{i}",
                message=message.row(2000),
            )
        )
    return new, Pending(accounted=accounted), now_ms


def writer_main(
    url: str, writer: int, writers: int, partitions: int, events: int, seconds: float, ready: Any, start: Any, out: Any
) -> None:
    """One daemon's checkpoints, back to back, for ``seconds`` after ``start`` is set."""
    rng = random.Random(writer)  # noqa: S311 - synthetic data, not secrets
    store = TimedStore(url, window_size_ms=WINDOW_MS, grace_ms=5_000)
    owned = [p for p in range(partitions) if p % writers == writer]
    tps = [(TOPIC, p) for p in owned]
    stored = store.assign_partitions(GROUP, tps)
    epochs = {tp: s.epoch for tp, s in stored.items() if s.epoch is not None}
    expected: dict[tuple[str, int], int | None] = {tp: s.next_offset for tp, s in stored.items()}
    offsets = {tp: s.next_offset or 0 for tp, s in stored.items()}
    every = frozenset((TOPIC, p) for p in range(partitions))
    ready.put(writer)
    start.wait()
    deadline = time.monotonic() + seconds
    samples: list[tuple[float, float, dict[str, float]]] = []  # (monotonic end, seconds, seconds per phase)
    failures = 0
    seq = 0
    while time.monotonic() < deadline:
        offsets, pending, now_ms = synthetic_checkpoint(rng, writer, seq, owned, offsets, events)
        deltas, story_windows, messages = pending.totals()
        cp = Checkpoint(
            group_id=GROUP,
            offsets=offsets,
            expected=expected,
            deltas=deltas,
            messages=messages,
            stories={a.story: now_ms for a in pending.accounted if a.story},
            story_windows=story_windows,
            progress={tp: PartitionProgress(now_ms) for tp in tps},
            partitions=every,
            epochs=epochs,
        )
        store.phases = dict.fromkeys(PHASES, 0.0)
        started = time.perf_counter()
        try:
            store.commit_checkpoint(cp)
        except Exception as exc:  # counted and reported: the figures are about contention, not errors
            failures += 1
            print(f"writer {writer}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}", file=sys.stderr)
            break
        samples.append((time.monotonic(), time.perf_counter() - started, store.phases))
        expected = dict(offsets)
        seq += 1
    store.close()
    out.put((writer, samples, failures))


def classify(wait_type: str | None, query: str) -> str:
    if wait_type != "Lock":
        return "running" if wait_type is None else f"other wait ({wait_type})"
    q = query.lstrip().upper()
    if q.startswith("UPDATE PROGRESS"):
        return "lock: progress row"
    if q.startswith("INSERT INTO WINDOWS") or q.startswith("UPDATE WINDOWS"):
        return "lock: windows rows"
    return "lock: other"


def sample_activity(admin_url: str, database: str, stop: threading.Event, out: list[dict[str, int]]) -> None:
    """Every 20 ms: the active client backends of ``database``, by what they wait on."""
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    query = text(
        "SELECT wait_event_type, coalesce(query, '') FROM pg_stat_activity "
        "WHERE datname = :db AND state = 'active' AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
    )
    with engine.connect() as conn:
        while not stop.is_set():
            counts: dict[str, int] = {}
            for wait_type, q in conn.execute(query, {"db": database}):
                kind = classify(wait_type, q)
                counts[kind] = counts.get(kind, 0) + 1
            out.append(counts)
            stop.wait(0.02)
    engine.dispose()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else float("nan")


def run_level(admin_url: str, writers: int, args: argparse.Namespace) -> dict[str, Any]:
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    database = f"finsent_contention_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{database}"'))
    admin.dispose()
    url = admin_url.rsplit("/", 1)[0] + f"/{database}"
    try:
        Store(url).create_schema()
        ctx = mp.get_context("fork")
        ready, start, out = ctx.Queue(), ctx.Event(), ctx.Queue()
        procs = [
            ctx.Process(
                target=writer_main,
                args=(
                    url,
                    w,
                    writers,
                    writers * args.partitions_per_writer,
                    args.events,
                    args.seconds,
                    ready,
                    start,
                    out,
                ),
            )
            for w in range(writers)
        ]
        for proc in procs:
            proc.start()
        for _ in procs:  # every writer has taken its partitions over
            ready.get(timeout=300)
        load_before = [round(x, 2) for x in os.getloadavg()]
        activity: list[dict[str, int]] = []
        stop = threading.Event()
        sampler = threading.Thread(target=sample_activity, args=(admin_url, database, stop, activity))
        sampler.start()
        start.set()
        results = [out.get(timeout=args.seconds + 120) for _ in procs]
        stop.set()
        sampler.join(10)
        for proc in procs:
            proc.join(10)
        load_after = [round(x, 2) for x in os.getloadavg()]
    finally:
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        admin.dispose()
    # leave out each writer's first second: connections and caches warm up
    first = min(s[0][0] for _, s, _ in results if s)
    warm = [(t, d, ph) for _, s, _ in results for t, d, ph in s if t - first >= 1.0]
    span = max(t for t, _, _ in warm) - (first + 1.0) if warm else float("nan")
    durations = [d for _, d, _ in warm]
    waits = [ph["progress lock"] for _, _, ph in warm]
    phase_ms = {k: statistics.fmean(ph[k] for _, _, ph in warm) * 1000 if warm else float("nan") for k in PHASES}
    phase_ms["epochs, offsets, commit"] = (
        (statistics.fmean(durations) * 1000 - sum(phase_ms.values())) if warm else float("nan")
    )
    kinds = sorted({k for c in activity for k in c})
    return {
        "writers": writers,
        "checkpoints": len(warm),
        "checkpoints_per_s": len(warm) / span if span else float("nan"),
        "events_per_s": len(warm) * args.events / span if span else float("nan"),
        "p50_checkpoint_ms": percentile(durations, 0.5) * 1000,
        "p99_checkpoint_ms": percentile(durations, 0.99) * 1000,
        "mean_checkpoint_ms": statistics.fmean(durations) * 1000 if durations else float("nan"),
        "p50_progress_lock_wait_ms": percentile(waits, 0.5) * 1000,
        "p99_progress_lock_wait_ms": percentile(waits, 0.99) * 1000,
        "progress_lock_wait_share": sum(waits) / sum(durations) if durations else float("nan"),
        "mean_ms_per_phase": phase_ms,
        "activity_samples": len(activity),
        "mean_backends_by_state": {k: sum(c.get(k, 0) for c in activity) / max(1, len(activity)) for k in kinds},
        "failures": sum(f for _, _, f in results),
        "load_average_before": load_before,
        "load_average_after": load_after,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--writers", default="1,2,4,8,16,32")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--events", type=int, default=50, help="scored messages per checkpoint")
    parser.add_argument("--partitions-per-writer", type=int, default=2)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    report: dict[str, Any] = {
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "events_per_checkpoint": args.events,
        "partitions_per_writer": args.partitions_per_writer,
        "seconds_per_level": args.seconds,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "levels": [],
    }
    with create_engine(args.pg_url).connect() as conn:
        report["postgresql"] = conn.execute(text("SHOW server_version")).scalar()
    for writers in (int(w) for w in args.writers.split(",")):
        level = run_level(args.pg_url, writers, args)
        report["levels"].append(level)
        print(
            f"{writers:3d} writers: {level['checkpoints_per_s']:7.1f} checkpoints/s ({level['events_per_s']:7.0f} "
            f"events/s), p50 {level['p50_checkpoint_ms']:6.1f} ms, p99 {level['p99_checkpoint_ms']:6.1f} ms, "
            f"waiting for the progress row {level['progress_lock_wait_share']:.0%} of commit time; "
            f"backends {json.dumps({k: round(v, 2) for k, v in level['mean_backends_by_state'].items()})}; "
            f"load {level['load_average_before']} -> {level['load_average_after']}",
            flush=True,
        )
        print("      mean ms per phase: " + ", ".join(f"{k} {v:.1f}" for k, v in level["mean_ms_per_phase"].items()))
    report["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    output = args.output or HERE / "results" / f"checkpoint-contention-{datetime.now(UTC):%Y-%m-%d}.json"
    output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"machine: {report['cpu']}, {report['cpus']} cores; PostgreSQL {report['postgresql']}; wrote {output}")


if __name__ == "__main__":
    main()
