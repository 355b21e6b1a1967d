"""``finsent bench``: end-to-end throughput, the latency curve and live capacity of the daemon, peak memory,
and the plain Hugging Face ``pipeline`` on the same texts as the baseline, in the same run.

1. produce N real texts to an embedded broker, start the daemon (a subprocess), time until all are
   scored: the backlog throughput (texts/s end to end), the daemon's peak RSS (VmHWM) and its batch
   sizes; then the model alone on the same texts, in the daemon's batches, and the tokeniser alone;
2. the latency curve (``pipeline.tooling.capacity``): paced steps at shares of that throughput,
   p50/p95/p99 of scored_at − event time, and the live capacity — the highest rate whose p99 stays
   within the target — with the loop's time per stage at that rate from the daemon's own timers;
3. time ``transformers.pipeline("text-classification")`` on the same texts (batch size 1 and 32).

With ``compare`` (a git ref), steps 1–2 also run on that earlier build, checked out beside this one
(``pipeline.tooling.builds``), alternating step by step. The report names the CPU, its core count and
the load average: figures compare only within one run on one machine.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from kafka import KafkaProducer

from pipeline.config import scoring_layout
from pipeline.targets import DEFAULT_MAX_TARGETS
from pipeline.tooling.broker import EmbeddedBroker, free_port
from pipeline.tooling.builds import Build, default_layout, previous_build, shown, this_build
from pipeline.tooling.capacity import DEFAULT_SHARES, DEFAULT_TARGET_P99_MS, Ladder

TEXT_ORDER_SEED = 20261206


def load_texts(n: int, data_dir: str | None) -> tuple[list[str], str]:
    """Real texts from the test sets when the data is at hand, else synthetic headlines."""
    if data_dir or os.environ.get("FINSENT_DATA_DIR"):
        from models.data import load_test_sets

        tests = load_test_sets(data_dir).test
        texts = [r.text for task in ("sentiment", "topic") for r in tests[task]]
        # one fixed order for every build and run, mixed as a live stream is: in file order the topic set comes
        # grouped by topic, and one group's run of market wraps naming many companies (one extra model pass per
        # company) fell in the same second of every paced step, deciding its p99
        random.Random(TEXT_ORDER_SEED).shuffle(texts)
        source = f"official test sets, shuffled (seed {TEXT_ORDER_SEED})"
    else:
        from pipeline.tooling.synthetic import SyntheticConfig, SyntheticStream

        stream = SyntheticStream(SyntheticConfig(malformed_share=0, repeat_share=0, spike=None))
        texts = [json.loads(v)["text"] for v in stream.take(n, 0, 1)]
        source = "synthetic generator"
    while len(texts) < n:
        texts += texts
    return texts[:n], source


def _peak_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


class DaemonRun:
    """A ``finsent run`` subprocess on a fresh store and group, with helpers to watch it."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        workdir: Path,
        model: str | None,
        layout: tuple[int, int],
        build_root: Path | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.metrics_port = free_port()
        self.store = f"sqlite:///{workdir / f'{topic}.db'}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("FINSENT_")}
        env.update(
            {
                "FINSENT_KAFKA_BOOTSTRAP": bootstrap,
                "FINSENT_INPUT_TOPICS": topic,
                "FINSENT_GROUP_ID": f"bench-{topic}",
                "FINSENT_STORE_URL": self.store,
                "FINSENT_SCORED_TOPIC": f"{topic}.scored",
                "FINSENT_METRICS_PORT": str(self.metrics_port),
                "FINSENT_METRICS_HOST": "127.0.0.1",
                "FINSENT_GRACE_S": "3600",
                "FINSENT_SCORING_WORKERS": str(layout[0]),
                "FINSENT_THREADS": str(layout[1]),
                "FINSENT_SESSION_TIMEOUT_MS": "3000",
                "FINSENT_HEARTBEAT_INTERVAL_MS": "500",
                "FINSENT_RELOAD_CHECK_S": "0",
                "FINSENT_LOG_LEVEL": "WARNING",
            }
        )
        if model:
            env["FINSENT_MODEL_DIR"] = model
        env.update(extra_env or {})
        self.log = (workdir / f"{topic}.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline", "run"],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=build_root,
        )

    def scrape(self) -> str:
        import urllib.request

        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=2) as resp:
                return str(resp.read().decode())
        except OSError:
            return ""

    def consumed(self) -> float:
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in self.scrape().splitlines()
            if line.startswith("finsent_messages_scored_total{")
        )

    def batch_sizes(self) -> dict[str, int]:
        """Scoring batches per size bucket (``le``), from the daemon's histogram."""
        counts: dict[str, int] = {}
        previous = 0
        for line in self.scrape().splitlines():
            if line.startswith("finsent_scoring_batch_size_bucket{"):
                bound = line.split('le="', 1)[1].split('"', 1)[0]
                total = int(float(line.rsplit(" ", 1)[1]))
                counts[f"<={bound}"] = total - previous
                previous = total
        return counts

    def wait_for(self, n: int, timeout_s: float) -> float | None:
        """Seconds from the first scored message until ``n`` are scored; ``None`` on timeout."""
        deadline = time.monotonic() + timeout_s
        first: float | None = None
        while time.monotonic() < deadline:
            done = self.consumed()
            if done > 0 and first is None:
                first = time.monotonic()
            if done >= n and first is not None:
                return time.monotonic() - first
            if self.proc.poll() is not None:
                raise RuntimeError(f"the daemon exited with code {self.proc.returncode}")
            time.sleep(0.05)
        return None

    def stop(self) -> float:
        rss = _peak_rss_mb(self.proc.pid)
        self.proc.terminate()
        self.proc.wait(timeout=20)
        self.log.close()
        return rss


def _produce(bootstrap: str, topic: str, texts: list[str], rate: float | None = None) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all")
    started = time.monotonic()
    for i, text in enumerate(texts):
        if rate:
            delay = started + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        producer.send(
            topic, json.dumps({"id": f"b{i}", "text": text, "published_at": int(time.time() * 1000)}).encode()
        )
    producer.flush(timeout=60)
    producer.close(timeout=5)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def model_alone(texts: list[str], model: str | None, layout: tuple[int, int], batch_size: int = 256) -> float:
    """texts/s of the scorer by itself on ``texts``: the daemon's batch size, workers and threads."""
    import threading

    from models.card import SHIPPED_MODEL_DIR
    from pipeline.scorer import OnnxScorer

    workers, threads = layout
    scorer = OnnxScorer(model or SHIPPED_MODEL_DIR, threads=threads)
    scorer.score(texts[:32])  # warm-up
    batches = [texts[i : i + batch_size] for i in range(0, len(texts), batch_size)]

    def work(share: list[list[str]]) -> None:
        for batch in share:
            scorer.score(batch)

    pool = [threading.Thread(target=work, args=(batches[k::workers],)) for k in range(workers)]
    started = time.perf_counter()
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return len(texts) / (time.perf_counter() - started)


def hf_pipeline_baseline(texts: list[str], time_budget_s: float = 30.0) -> dict[str, Any]:
    """texts/s of transformers' text-classification pipeline on the default backbone, bs 1 and 32."""
    try:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

        from models.network import default_base_model
    except ImportError as exc:
        return {"skipped": f"needs the training extras ({exc})"}
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    base = default_base_model()
    model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=3)
    tok = AutoTokenizer.from_pretrained(base)
    clf = pipeline("text-classification", model=model, tokenizer=tok, device=-1, truncation=True, max_length=64)
    result: dict[str, Any] = {}
    for batch_size in (1, 32):
        started = time.perf_counter()
        done = 0
        while done < len(texts) and time.perf_counter() - started < time_budget_s:
            chunk = texts[done : done + 64]
            clf(chunk, batch_size=batch_size)
            done += len(chunk)
        result[f"bs{batch_size}_texts_per_s"] = done / (time.perf_counter() - started)
    return result


def tokeniser_alone(texts: list[str], model: str | None) -> float:
    """Milliseconds per text of the tokeniser by itself (one thread): the tokenising part of the model's time."""
    from models.card import SHIPPED_MODEL_DIR
    from pipeline.scorer import OnnxScorer

    scorer = OnnxScorer(model or SHIPPED_MODEL_DIR, threads=1)
    scorer.model.encode(texts[:32])
    started = time.perf_counter()
    scorer.model.encode(texts)
    return (time.perf_counter() - started) / len(texts) * 1000


def backlog_run(
    bootstrap: str, work: Path, texts: list[str], build: Build, model: str, layout: tuple[int, int], env: dict[str, str]
) -> dict[str, Any]:
    """Texts/s of one build on ``texts`` produced beforehand, its peak RSS and batch sizes."""
    topic = f"bench-tput-{build.name}"
    _produce(bootstrap, topic, texts)
    run = DaemonRun(bootstrap, topic, work, model, layout, build.root, env)
    try:
        elapsed = run.wait_for(len(texts), 600)
        batches = run.batch_sizes()
    finally:
        rss = run.stop()
    if elapsed is None:
        raise RuntimeError(f"the {build.name} build did not score every text within 10 minutes")
    return {"end_to_end_texts_per_s": len(texts) / elapsed, "peak_rss_mb": rss, "batch_sizes": batches}


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def run_benchmark(
    n: int = 4000,
    *,
    data_dir: str | None = None,
    model: str | None = None,
    workers: int = 0,
    threads: int = 0,
    latency_s: float = 10.0,
    shares: tuple[float, ...] = DEFAULT_SHARES,
    bisect_steps: int = 2,
    target_p99_ms: float = DEFAULT_TARGET_P99_MS,
    compare: str | None = None,
    fetch_max_wait_ms: int | None = None,
    max_targets: int | None = None,
    baseline: bool = True,
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    from models.card import SHIPPED_MODEL_DIR

    texts, source = load_texts(n, data_dir)
    layout = scoring_layout(workers, threads)
    told = bool(workers or threads)  # a layout asked for applies to every build; else each its own default
    model_dir = str(Path(model or SHIPPED_MODEL_DIR).resolve())  # one model for every build
    env = {} if fetch_max_wait_ms is None else {"FINSENT_FETCH_MAX_WAIT_MS": str(fetch_max_wait_ms)}
    if max_targets is not None:
        env["FINSENT_MAX_TARGETS"] = str(max_targets)
    report: dict[str, Any] = {
        "texts": n,
        "text_source": source,
        "model": shown(Path(model_dir)),
        "scoring_workers": layout[0],
        "threads": layout[1],
        "fetch_max_wait_ms": fetch_max_wait_ms if fetch_max_wait_ms is not None else "daemon default (50)",
        "max_targets": max_targets if max_targets is not None else f"daemon default ({DEFAULT_MAX_TARGETS})",
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "load_average_at_start": load_average(),
        "date": datetime.now().astimezone().isoformat(timespec="seconds"),
    }
    with contextlib.ExitStack() as stack:
        builds = [this_build()]
        if compare:
            builds.append(stack.enter_context(previous_build(compare)))
        work = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        broker = stack.enter_context(EmbeddedBroker())
        results: dict[str, dict[str, Any]] = {b.name: dict(b.describe()) for b in builds}
        report["builds"] = results
        layouts = {b.name: layout if told else default_layout(b.root) or layout for b in builds}
        for b in builds:
            results[b.name]["scoring_workers"], results[b.name]["threads"] = layouts[b.name]
            echo(f"1/3 backlog throughput of the {b.name} build ({b.commit}): {n} texts from the {source}")
            results[b.name].update(backlog_run(broker.bootstrap, work, texts, b, model_dir, layouts[b.name], env))
        report["model_alone_texts_per_s"] = alone = model_alone(texts, model_dir, layout)
        report["tokeniser_ms_per_text"] = tokeniser_alone(texts, model_dir)
        for b in builds:
            results[b.name]["end_to_end_vs_model_alone"] = results[b.name]["end_to_end_texts_per_s"] / alone
        ladders = {}
        for b in builds:
            topic = f"bench-live-{b.name}"
            daemon = DaemonRun(broker.bootstrap, topic, work, model_dir, layouts[b.name], b.root, env)
            stack.callback(daemon.stop)
            _produce(broker.bootstrap, topic, texts[:1])  # warm-up: the group joins, the model loads
            if daemon.wait_for(1, 120) is None:
                raise RuntimeError(f"the {b.name} build's daemon did not start within 2 minutes")
            backlog = results[b.name]["end_to_end_texts_per_s"]
            ladders[b.name] = Ladder(
                daemon, broker.bootstrap, topic, texts, backlog, latency_s, target_p99_ms, echo, broker.pid
            )
        for share in shares:  # the builds take turns at each share: load on the machine drifts
            for name, ladder in ladders.items():
                echo(f"2/3 latency, {name} build:")
                ladder.step(share)
        for name, ladder in ladders.items():
            echo(f"2/3 live capacity, {name} build (bisection):")
            results[name]["latency"] = ladder.run((), bisect_steps)
    report["load_average_at_end"] = load_average()
    new = results["new"]
    report.update({k: new[k] for k in ("end_to_end_texts_per_s", "peak_rss_mb", "batch_sizes", "latency")})
    report["end_to_end_vs_model_alone"] = new["end_to_end_vs_model_alone"]
    if baseline:
        echo("3/3 baseline: transformers pipeline on the same texts")
        report["hf_pipeline"] = baseline_report = hf_pipeline_baseline(texts)
        for bs, name in ((1, "default"), (32, "bs32")):
            hf = baseline_report.get(f"bs{bs}_texts_per_s")
            if hf:
                report[f"speedup_vs_hf_pipeline_{name}"] = report["end_to_end_texts_per_s"] / hf
    return report
