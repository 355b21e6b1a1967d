"""``finsent bench``: end-to-end throughput, event-to-scored latency and peak memory of the daemon,
with the plain Hugging Face ``pipeline`` on the same texts as the baseline, in the same run.

1. produce N real texts to an embedded broker, start the daemon (a subprocess), time until all are
   scored: texts/s end to end, the daemon's peak RSS (VmHWM) and its batch-size distribution;
   then the model alone on the same texts, in the daemon's batches (tokenise + run, nothing else):
   end to end ÷ model alone says how much the pipeline around the model costs;
2. produce at 50% and at 80% of that rate for a while: p50/p95/p99 of scored_at − event time;
3. time ``transformers.pipeline("text-classification")`` on the same texts (batch size 1 and 32).

The report names the CPU and its core count: figures compare only within one run on one machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, KafkaProducer

from pipeline.config import scoring_layout
from pipeline.tooling.broker import EmbeddedBroker, free_port


def load_texts(n: int, data_dir: str | None) -> tuple[list[str], str]:
    """Real texts from the test sets when the data is at hand, else synthetic headlines."""
    if data_dir or os.environ.get("FINSENT_DATA_DIR"):
        from models.data import load_test_sets

        tests = load_test_sets(data_dir).test
        texts = [r.text for task in ("sentiment", "topic") for r in tests[task]]
        source = "official test sets"
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


def _iso_ms(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000


class DaemonRun:
    """A ``finsent run`` subprocess on a fresh store and group, with helpers to watch it."""

    def __init__(self, bootstrap: str, topic: str, workdir: Path, model: str | None, layout: tuple[int, int]) -> None:
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
        self.log = (workdir / f"{topic}.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline", "run"], env=env, stdout=self.log, stderr=subprocess.STDOUT
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


def _latencies(bootstrap: str, topic: str, n: int, timeout_s: float) -> list[float]:
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"bench-read-{time.time_ns()}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=3000,
        heartbeat_interval_ms=500,
    )
    out: list[float] = []
    seen: set[bytes] = set()
    deadline = time.monotonic() + timeout_s
    while len(seen) < n and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=500).values():
            for r in records:
                if r.key not in seen:
                    seen.add(r.key)
                    event = json.loads(r.value)
                    out.append(_iso_ms(event["scored_at"]) - _iso_ms(event["event_time"]))
    consumer.close(autocommit=False)
    return out


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else float("nan")


def latency_run(
    bootstrap: str,
    work: Path,
    texts: list[str],
    rate: float,
    seconds: float,
    model: str | None,
    layout: tuple[int, int],
) -> dict[str, Any]:
    """Produce at ``rate`` with ``published_at`` = send time; scored_at − event time of each text."""
    topic = f"bench-lat-{int(rate)}"
    run = DaemonRun(bootstrap, topic, work, model, layout)
    m = int(rate * seconds)
    try:
        _produce(bootstrap, topic, texts[:1])  # warm-up: the group joins, the model loads
        if run.wait_for(1, 120) is None:
            raise RuntimeError("the latency daemon did not start within 2 minutes")
        _produce(bootstrap, topic, (texts * (m // len(texts) + 1))[:m], rate)
        lat = _latencies(bootstrap, f"{topic}.scored", m + 1, 120)[1:]
        batches = run.batch_sizes()
    finally:
        rss = run.stop()
    steady = lat[len(lat) // 10 :] or lat  # leave out the first 10% sent: warm-up
    return {
        "rate_per_s": rate,
        "texts": m,
        "p50_ms": percentile(steady, 0.5),
        "p95_ms": percentile(steady, 0.95),
        "p99_ms": percentile(steady, 0.99),
        "batch_sizes": batches,
        "peak_rss_mb": rss,
    }


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


def run_benchmark(
    n: int = 4000,
    *,
    data_dir: str | None = None,
    model: str | None = None,
    workers: int = 0,
    threads: int = 0,
    latency_s: float = 20.0,
    baseline: bool = True,
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    texts, source = load_texts(n, data_dir)
    layout = scoring_layout(workers, threads)
    report: dict[str, Any] = {
        "texts": n,
        "text_source": source,
        "scoring_workers": layout[0],
        "threads": layout[1],
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "date": datetime.now().astimezone().isoformat(timespec="seconds"),
    }
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker() as broker:
        work = Path(tmp)
        echo(f"1/3 throughput: {n} texts from the {source}, pre-produced")
        _produce(broker.bootstrap, "bench-tput", texts)
        run = DaemonRun(broker.bootstrap, "bench-tput", work, model, layout)
        try:
            elapsed = run.wait_for(n, 600)
            report["batch_sizes"] = run.batch_sizes()
        finally:
            rss = run.stop()
        if elapsed is None:
            raise RuntimeError("the daemon did not score every text within 10 minutes")
        report["end_to_end_texts_per_s"] = n / elapsed
        report["peak_rss_mb"] = rss
        report["model_alone_texts_per_s"] = alone = model_alone(texts, model, layout)
        report["end_to_end_vs_model_alone"] = report["end_to_end_texts_per_s"] / alone
        report["latency"] = {}
        for share in (0.5, 0.8):
            rate = report["end_to_end_texts_per_s"] * share
            echo(f"2/3 latency: {int(rate * latency_s)} texts at {rate:.0f}/s ({share:.0%} of the measured throughput)")
            report["latency"][f"{share:.0%}"] = latency_run(
                broker.bootstrap, work, texts, rate, latency_s, model, layout
            )
    if baseline:
        echo("3/3 baseline: transformers pipeline on the same texts")
        report["hf_pipeline"] = baseline_report = hf_pipeline_baseline(texts)
        for bs, name in ((1, "default"), (32, "bs32")):
            hf = baseline_report.get(f"bs{bs}_texts_per_s")
            if hf:
                report[f"speedup_vs_hf_pipeline_{name}"] = report["end_to_end_texts_per_s"] / hf
    return report
