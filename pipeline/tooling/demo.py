"""``finsent demo``: broker, daemon, synthetic stream with a spike, and dashboard, started and stopped together."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from pipeline import tables
from pipeline.tooling.broker import BrokerError, EmbeddedBroker, free_port, wait_for_port
from pipeline.tooling.dashboard_server import streamlit_command

# Short windows so a newcomer sees windows close and a spike flagged within two minutes.
DEMO_SETTINGS = {
    "FINSENT_WINDOW_SIZE_S": "20",
    "FINSENT_GRACE_S": "3",
    "FINSENT_SPIKE_MIN_COUNT": "20",
    "FINSENT_SPIKE_COLD_START_RATIO": "0.75",
    "FINSENT_SPIKE_MIN_HISTORY": "3",
    "FINSENT_SPIKE_FLOOR": "0.5",
    "FINSENT_SPIKE_COOLDOWN_S": "120",
    "FINSENT_WATCHLIST": "NVDA,AAPL,TSLA,MSFT,XOM,JPM",
    "FINSENT_COMMIT_INTERVAL_MS": "500",
    "FINSENT_SESSION_TIMEOUT_MS": "6000",
    "FINSENT_HEARTBEAT_INTERVAL_MS": "1000",
}
TOPIC = "finsent.news"


class DemoError(RuntimeError):
    """The demo could not start one of its parts."""


@dataclass
class Summary:
    seconds: float
    sent: int = 0
    consumed: int = 0
    scored: int = 0
    rejected: int = 0
    windows_closed: int = 0
    alerts: list[str] = field(default_factory=list)
    daemon_exit: int | None = None

    @property
    def ok(self) -> bool:
        return self.daemon_exit == 0 and self.scored > 0

    def render(self) -> str:
        lines = [
            f"demo ran {self.seconds:.0f}s: sent {self.sent}, scored {self.scored}, "
            f"rejected to the DLQ {self.rejected}, windows closed {self.windows_closed}, alerts {len(self.alerts)}",
        ]
        lines += [f"  alert: {a}" for a in self.alerts]
        lines.append(f"daemon exit code {self.daemon_exit}")
        return "\n".join(lines)


def metric_totals(url: str) -> dict[str, float]:
    """Sum of each metric family's ``_total`` samples on a /metrics page."""
    try:
        with urllib.request.urlopen(url, timeout=3) as resp:
            text = resp.read().decode()
    except OSError:
        return {}
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.endswith("_total"):
                totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
    return totals


def ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def _port(preferred: int) -> int:
    if preferred and not wait_for_port("127.0.0.1", preferred, 0.05):
        return preferred
    return free_port()


@contextlib.contextmanager
def _process(cmd: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)


def run_demo(
    *,
    duration_s: float | None,
    with_dashboard: bool,
    store_url: str,
    rate: float,
    spike_at_s: float,
    dashboard_port: int,
    metrics_port: int,
    echo: Callable[[str], None] = print,
) -> Summary:
    from kafka import KafkaProducer

    from pipeline.store import Store
    from pipeline.tooling.replay import replay, synthetic_records
    from pipeline.tooling.synthetic import SpikeScript, SyntheticConfig, SyntheticStream

    started = time.monotonic()
    logs = Path(os.environ.get("FINSENT_DEMO_LOG_DIR", ".")) / "finsent-demo-logs"
    logs.mkdir(parents=True, exist_ok=True)
    metrics_port = _port(metrics_port)
    metrics_url = f"http://127.0.0.1:{metrics_port}"
    summary = Summary(seconds=0)
    stop = threading.Event()
    try:
        broker = EmbeddedBroker(log_file=logs / "broker.log").start()
    except BrokerError as exc:
        raise DemoError(str(exc)) from exc
    with contextlib.ExitStack() as stack:
        stack.callback(broker.stop)
        env = {k: v for k, v in os.environ.items() if not k.startswith("FINSENT_")}
        env.update(DEMO_SETTINGS)
        env.update(
            {
                "FINSENT_KAFKA_BOOTSTRAP": broker.bootstrap,
                "FINSENT_STORE_URL": store_url,
                "FINSENT_METRICS_PORT": str(metrics_port),
                "FINSENT_METRICS_HOST": "127.0.0.1",
                "FINSENT_INPUT_TOPICS": TOPIC,
                "PYTHONUNBUFFERED": "1",
            }
        )
        for name in ("FINSENT_MODEL_DIR", "FINSENT_THREADS"):
            if name in os.environ:
                env[name] = os.environ[name]
        daemon = stack.enter_context(_process([sys.executable, "-m", "pipeline", "run"], env, logs / "daemon.log"))
        echo(f"broker      {broker.bootstrap} (embedded, memory-only)")
        echo(f"daemon      metrics {metrics_url}/metrics · health {metrics_url}/readyz · log {logs / 'daemon.log'}")
        if with_dashboard:
            dash_port = _port(dashboard_port)
            stack.enter_context(_process(streamlit_command("127.0.0.1", dash_port), env, logs / "dashboard.log"))
            echo(f"dashboard   http://127.0.0.1:{dash_port}")
        deadline = time.monotonic() + 90
        while not ready(f"{metrics_url}/readyz"):
            if daemon.poll() is not None:
                raise DemoError(f"the daemon exited with code {daemon.returncode}; see {logs / 'daemon.log'}")
            if time.monotonic() > deadline:
                raise DemoError(f"the daemon was not ready within 90s; see {logs / 'daemon.log'}")
            time.sleep(0.3)
        echo(f"stream      {rate:.0f} msg/s of synthetic news; a negative burst on NVDA starts in {spike_at_s:.0f}s")
        echo("Ctrl-C stops everything" + (f"; stopping by itself after {duration_s:.0f}s" if duration_s else ""))
        stream = SyntheticStream(SyntheticConfig(spike=SpikeScript("NVDA", spike_at_s, 40.0)))
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=20, acks="all")
        stack.callback(producer.close, 5)
        sent_box: list[int] = []
        feeder = threading.Thread(
            target=lambda: sent_box.append(
                replay(synthetic_records(stream), producer, TOPIC, rate=rate, stop=stop, progress=False)
            ),
            daemon=True,
        )
        feeder.start()
        try:
            end = time.monotonic() + duration_s if duration_s else None
            while end is None or time.monotonic() < end:
                if daemon.poll() is not None:
                    raise DemoError(f"the daemon stopped (exit {daemon.returncode}); see {logs / 'daemon.log'}")
                time.sleep(0.5)
        except KeyboardInterrupt:
            echo("stopping…")
        stop.set()
        feeder.join(30)
        summary.sent = sent_box[0] if sent_box else 0
        drain = time.monotonic() + 20  # let the daemon read what was sent before it stops
        while time.monotonic() < drain:
            totals = metric_totals(f"{metrics_url}/metrics")
            if totals.get("finsent_messages_consumed_total", 0) >= summary.sent:
                break
            time.sleep(0.3)
        totals = metric_totals(f"{metrics_url}/metrics")
        summary.consumed = int(totals.get("finsent_messages_consumed_total", 0))
        summary.scored = int(totals.get("finsent_messages_scored_total", 0))
        summary.rejected = int(totals.get("finsent_messages_invalid_total", 0))
        daemon.send_signal(signal.SIGTERM)
        try:
            summary.daemon_exit = daemon.wait(timeout=20)
        except subprocess.TimeoutExpired:
            summary.daemon_exit = None
    store = Store(store_url)
    try:
        w = tables.windows.c
        with store.engine.connect() as conn:
            closed = select(func.count()).where(w.dimension == "all", w.closed.is_(True))
            summary.windows_closed = int(conn.execute(closed).scalar_one())
        summary.alerts = [
            f"{a.severity} {a.dimension}={a.key} at {a.window_start:%H:%M:%S} "
            f"({a.negative_ratio:.0%} negative, threshold {a.threshold:.0%}, n={a.n})"
            for a in store.all_alerts()
        ]
    finally:
        store.close()
    summary.seconds = time.monotonic() - started
    return summary
