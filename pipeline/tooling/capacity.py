"""Live capacity: the latency curve of a daemon under paced traffic, and the highest rate it holds.

One daemon per build serves every paced step on its own topic (no restart between steps: a live
daemon is a warm one). A step produces ``rate × seconds`` texts, paced by the wall clock (text i
leaves at ``start + i / rate``, each stamped with the time it is sent), waits until every one is
scored, and reads event → scored latency from the scored topic. Around each step the daemon's own
metrics are scraped, so the step's batch sizes and the loop's time per stage (``finsent_stage_seconds``:
fetch, parse, produce, checkpoint) and the workers' model time are the step's alone.

The ladder: fixed shares of the backlog throughput, then a bisection between the highest share
whose p99 held the target and the lowest that did not. Live capacity is the highest share that held.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from kafka import KafkaConsumer, KafkaProducer

DEFAULT_SHARES = (0.25, 0.5, 0.7, 0.85)
DEFAULT_TARGET_P99_MS = 250.0
LOOP_STAGES = ("fetch", "parse", "produce", "checkpoint")


def iso_ms(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else float("nan")


def parse_samples(text: str) -> dict[str, float]:
    """Prometheus text format → ``{'name{labels}': value}`` (comments skipped)."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            try:
                out[name] = float(value)
            except ValueError:
                continue
    return out


def summed(samples: dict[str, float], prefix: str) -> float:
    return sum(v for k, v in samples.items() if k.startswith(prefix))


def stage_profile(before: dict[str, float], after: dict[str, float], wall_s: float, texts: int) -> dict[str, Any]:
    """Where the step's time went, from two scrapes of the daemon's metrics.

    The loop thread: seconds per stage (``None`` for a build without stage timers), and the rest of
    its wall time ("loop, other": accounting, windows, batching, idle). The scoring workers: seconds in
    the model (tokenising included). Per-text figures divide by the texts the step scored.
    """

    def delta(key: str) -> float:
        return after.get(key, 0.0) - before.get(key, 0.0)

    has_stages = any(k.startswith("finsent_stage_seconds_total{") for k in after)
    loop: dict[str, float | None] = {}
    for stage in LOOP_STAGES:
        loop[stage] = delta(f'finsent_stage_seconds_total{{stage="{stage}"}}') if has_stages else None
    timed = sum(v for v in loop.values() if v is not None)
    loop["other"] = max(0.0, wall_s - timed) if has_stages else None
    model_s = delta("finsent_scoring_duration_seconds_sum")
    batches = delta("finsent_scoring_duration_seconds_count")
    per_text = {k: (v / texts * 1000 if v is not None and texts else None) for k, v in loop.items()}
    return {
        "latency_ms": latency_breakdown(delta, model_s, batches),
        "wall_s": wall_s,
        "loop_seconds": loop,
        "loop_share": {k: (v / wall_s if v is not None and wall_s else None) for k, v in loop.items()},
        "loop_ms_per_text": per_text,
        "company_passes_per_text": (  # None: a build without the counter, not "no passes"
            delta("finsent_company_passes_total") / texts if texts and "finsent_company_passes_total" in after else None
        ),
        "model_seconds": model_s,
        "model_ms_per_text": model_s / texts * 1000 if texts else None,
        "batches": batches,
        "mean_batch_size": texts / batches if batches else None,
    }


def latency_breakdown(delta: Callable[[str], float], model_s: float, batches: float) -> dict[str, float | None]:
    """Mean milliseconds of a text's event → scored time by where it went: ``read`` (send time to the loop
    reading it: producer, broker — which holds each fetch up to fetch_max_wait_ms — and the poll), ``model``
    (the batch it rode in, from hand-over to scores), ``waiting`` (the rest: queued for a free worker,
    collected, accounted). ``None`` where this build has no such metric."""
    scored = delta("finsent_event_latency_seconds_count")
    total = delta("finsent_event_latency_seconds_sum") / scored * 1000 if scored else None
    reads = delta("finsent_read_delay_seconds_count")
    read = delta("finsent_read_delay_seconds_sum") / reads * 1000 if reads else None
    model = model_s / batches * 1000 if batches else None
    rest = None
    if total is not None and read is not None and model is not None:
        rest = max(0.0, total - read - model)
    return {"event_to_scored": total, "read": read, "model": model, "waiting": rest}


def cpu_seconds(pid: int | None) -> float | None:
    """CPU time (user + system, every thread) a process has used so far; ``None`` where /proc cannot tell."""
    if pid is None:
        return None
    if pid == os.getpid():
        t = os.times()
        return t.user + t.system
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def cpu_used(pids: dict[str, int | None], before: dict[str, float | None], wall_s: float) -> dict[str, float | None]:
    """Cores each process kept busy since ``before`` (CPU seconds per wall second): 1.0 is one core."""
    out: dict[str, float | None] = {}
    for name, pid in pids.items():
        now, then = cpu_seconds(pid), before.get(name)
        out[name] = (now - then) / wall_s if now is not None and then is not None and wall_s > 0 else None
    return out


def cpu_ceiling(cores: dict[str, float | None], rate: float, backlog: float, cpus: int) -> dict[str, Any] | None:
    """What a text cost in CPU at a paced ``rate`` (from the cores each process kept busy), and the rate at
    which the machine's ``cpus`` would all be busy: with the test broker and the load generator beside the
    daemon (this rig) and without them (a daemon with the machine to itself), also as shares of ``backlog``."""
    daemon = cores.get("daemon")
    if daemon is None or rate <= 0 or backlog <= 0 or cpus <= 0:
        return None
    rig = sum(v for k, v in cores.items() if k != "daemon" and v is not None)
    daemon_s, rig_s = daemon / rate, rig / rate  # CPU seconds a text
    with_rig = cpus / (daemon_s + rig_s) if daemon_s + rig_s > 0 else float("inf")
    alone = cpus / daemon_s if daemon_s > 0 else float("inf")
    return {
        "cpus": cpus,
        "daemon_cpu_ms_per_text": daemon_s * 1000,
        "rig_cpu_ms_per_text": rig_s * 1000,
        "ceiling_texts_per_s": with_rig,
        "ceiling_share": with_rig / backlog,
        "ceiling_without_rig_texts_per_s": alone,
        "ceiling_without_rig_share": alone / backlog,
    }


def timeline(latencies_ms: list[float], rate: float, bucket_s: float = 0.5) -> dict[str, Any]:
    """Mean and worst event → scored latency per ``bucket_s`` of sending (latencies in send order): a stall
    shows as a run of buckets far above the rest, a rate beyond capacity as a climb that does not come down."""
    per = max(1, round(rate * bucket_s))
    chunks = [latencies_ms[i : i + per] for i in range(0, len(latencies_ms), per)]
    return {
        "bucket_s": bucket_s,
        "mean_ms": [round(sum(c) / len(c), 1) for c in chunks],
        "max_ms": [round(max(c), 1) for c in chunks],
    }


class ScoredReader:
    """One consumer on a scored topic for the whole ladder; latencies collected by id."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.latencies_ms: dict[str, float] = {}
        self.consumer = KafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id=f"bench-read-{time.time_ns()}",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            session_timeout_ms=3000,
            heartbeat_interval_ms=500,
        )

    def read_until(self, ids: list[str], timeout_s: float) -> list[float]:
        """Latencies (ms) of ``ids`` in the order given; waits until all are read or the deadline passes."""
        wanted = set(ids)
        deadline = time.monotonic() + timeout_s
        while not wanted.issubset(self.latencies_ms) and time.monotonic() < deadline:
            for records in self.consumer.poll(timeout_ms=300).values():
                for r in records:
                    event = json.loads(r.value)
                    self.latencies_ms[event["id"]] = iso_ms(event["scored_at"]) - iso_ms(event["event_time"])
        return [self.latencies_ms[i] for i in ids if i in self.latencies_ms]

    def close(self) -> None:
        self.consumer.close(autocommit=False)


def produce_paced(bootstrap: str, topic: str, texts: list[str], rate: float, prefix: str) -> tuple[list[str], float]:
    """Send ``texts`` at ``rate``/s by the wall clock, each stamped with its send time; returns the ids and the
    rate actually achieved (a loaded machine can hold the producer back)."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=0, acks=1)
    ids = [f"{prefix}-{i}" for i in range(len(texts))]
    started = time.monotonic()
    for i, text in enumerate(texts):
        delay = started + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        value = {"id": ids[i], "text": text, "published_at": int(time.time() * 1000)}
        producer.send(topic, json.dumps(value).encode())
    sent_s = time.monotonic() - started
    producer.flush(timeout=60)
    producer.close(timeout=5)
    achieved = (len(texts) - 1) / sent_s if sent_s > 0 and len(texts) > 1 else rate
    return ids, achieved


class Ladder:
    """Paced steps against one running daemon (``daemon``: a ``DaemonRun``) on its input ``topic``."""

    def __init__(
        self,
        daemon: Any,
        bootstrap: str,
        topic: str,
        texts: list[str],
        backlog_texts_per_s: float,
        seconds: float,
        target_p99_ms: float = DEFAULT_TARGET_P99_MS,
        echo: Callable[[str], None] = print,
        broker_pid: int | None = None,
    ) -> None:
        self.daemon = daemon
        # who shares the machine's cores during a step: the daemon, the test broker, and this process
        # (the paced producer, then the reader of the scored topic)
        self.pids: dict[str, int | None] = {
            "daemon": getattr(getattr(daemon, "proc", None), "pid", None),
            "broker": broker_pid,
            "load_generator": os.getpid(),
        }
        self.bootstrap = bootstrap
        self.topic = topic
        self.texts = texts
        self.backlog = backlog_texts_per_s
        self.seconds = seconds
        self.target = target_p99_ms
        self.echo = echo
        self.reader = ScoredReader(bootstrap, f"{topic}.scored")
        self.steps: list[dict[str, Any]] = []
        self.sent = 1  # the warm-up text

    def step(self, share: float) -> dict[str, Any]:
        rate = self.backlog * share
        n = max(20, int(rate * self.seconds))
        texts = (self.texts * (n // len(self.texts) + 1))[:n]
        before = parse_samples(self.daemon.scrape())
        cpu_before = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        started = time.monotonic()
        ids, achieved = produce_paced(self.bootstrap, self.topic, texts, rate, f"s{len(self.steps)}")
        paced_s = time.monotonic() - started
        cores = cpu_used(self.pids, cpu_before, paced_s)  # while the texts arrive: the load a live daemon sees
        lat = self.reader.read_until(ids, 120 + self.seconds * 4)
        wall = time.monotonic() - started
        after = parse_samples(self.daemon.scrape())
        self.sent += n
        self.daemon.wait_for(self.sent, 120)  # a step that fell behind leaves no backlog to the next
        steady = lat[len(lat) // 10 :] or lat  # the first 10% sent warm the step up
        p99 = percentile(steady, 0.99)
        result: dict[str, Any] = {
            "share": round(share, 4),
            "rate_per_s": rate,
            "achieved_rate_per_s": achieved,
            "texts": n,
            "scored": len(lat),
            "p50_ms": percentile(steady, 0.5),
            "p95_ms": percentile(steady, 0.95),
            "p99_ms": p99,
            "max_ms": max(steady) if steady else float("nan"),
            "timeline": timeline(lat, achieved) if len(lat) == n else None,  # buckets of the rate really sent
            "profile": stage_profile(before, after, wall, len(lat)) | {"cores_busy": cores},
        }
        result["holds"] = len(lat) == n and p99 <= self.target
        self.steps.append(result)
        self.echo(
            f"    {share:5.0%} = {rate:6.0f}/s (sent at {achieved:.0f}/s): p50 {result['p50_ms']:.0f} ms, "
            f"p95 {result['p95_ms']:.0f} ms, p99 {result['p99_ms']:.0f} ms{'' if result['holds'] else '  (over)'}"
        )
        return result

    def run(self, shares: tuple[float, ...], bisect_steps: int) -> dict[str, Any]:
        """The fixed shares, then ``bisect_steps`` halvings between the last share that held and the first that
        did not; live capacity = the highest share that held (0 when none did)."""
        for share in shares:
            self.step(share)
        for _ in range(bisect_steps):
            held = [s["share"] for s in self.steps if s["holds"]]
            over = [s["share"] for s in self.steps if not s["holds"]]
            low = max(held, default=0.0)
            high = min((s for s in over if s > low), default=None)
            if high is None or high - low < 0.02:
                break
            self.step((low + high) / 2)
        self.reader.close()
        held_steps = [s for s in self.steps if s["holds"]]
        best = max(held_steps, key=lambda s: s["share"], default=None)
        at = best or min(self.steps, key=lambda s: s["share"])
        cores, rate = at["profile"].get("cores_busy") or {}, at.get("achieved_rate_per_s", at["rate_per_s"])
        ceiling = cpu_ceiling(cores, rate, self.backlog, os.cpu_count() or 1)
        return {
            "target_p99_ms": self.target,
            "curve": sorted(self.steps, key=lambda s: s["share"]),
            "live_capacity_share": best["share"] if best else 0.0,
            # every rate tried held: the capacity is at least this, the ladder did not find its end
            "live_capacity_is_lower_bound": bool(best) and all(s["holds"] for s in self.steps),
            "live_capacity_texts_per_s": best["rate_per_s"] if best else 0.0,
            "profile_at_capacity": at["profile"],
            # the CPU a text cost at that rate, and where the machine's cores run out (a bound no queue beats)
            "cpu_ceiling": ceiling,
        }
