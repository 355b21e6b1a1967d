"""Local tooling commands: ``finsent broker``, ``dashboard``, ``replay``, ``demo``, ``bench``, ``feedback-export``.

Mounted by the root ``finsent`` command (pipeline/cli.py) on demand.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from models.console import DataDir, fail

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command()
def broker(
    port: Annotated[int, typer.Option(help="Loopback port to listen on.")] = 9092,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
) -> None:
    """Run the embedded Kafka-protocol broker (Tansu, memory-only) until Ctrl-C."""
    import time

    from pipeline.tooling.broker import BrokerError, EmbeddedBroker

    try:
        with EmbeddedBroker(port, host) as b:
            typer.echo(f"broker listening on {b.bootstrap} (memory-only: data is lost when it stops); Ctrl-C stops it")
            while b.process is not None and b.process.poll() is None:
                time.sleep(0.5)
            raise fail(f"the broker exited with code {b.process.returncode if b.process else '?'}")
    except BrokerError as exc:
        raise fail(str(exc)) from exc
    except KeyboardInterrupt:
        typer.echo("broker stopped")


@app.command()
def dashboard(
    store: Annotated[
        str,
        typer.Option("--store", envvar="FINSENT_STORE_URL", help="Store to read (SQLite path URL or PostgreSQL URL)."),
    ] = "sqlite:///finsent.db",
    host: Annotated[str, typer.Option(help="Address to serve on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to serve on.")] = 8501,
    model: Annotated[
        Optional[Path],
        typer.Option("--model", envvar="FINSENT_MODEL_DIR", help="Model folder shown on the Model page."),
    ] = None,
) -> None:
    """Serve the analyst dashboard (Streamlit) on the given store."""
    import importlib.util
    import os
    import sys

    from pipeline.tooling.dashboard_server import streamlit_command

    if importlib.util.find_spec("streamlit") is None or importlib.util.find_spec("altair") is None:
        raise fail("the dashboard needs its extra: pip install 'finsent-monitor[dashboard]'")

    env = {**os.environ, "FINSENT_STORE_URL": store}
    if model is not None:
        env["FINSENT_MODEL_DIR"] = str(model)
    typer.echo(f"dashboard on http://{host}:{port} (store {store.split('@')[-1]}); Ctrl-C stops it")
    command = streamlit_command(host, port)
    sys.stdout.flush()
    # this process becomes Streamlit: a stop signal (systemd, docker stop, a test's terminate) reaches the server
    # itself instead of leaving it running behind a parent that exited
    os.execve(command[0], command, env)  # noqa: S606 - a fixed argv: this Python, -m streamlit, our app


@app.command()
def replay(
    files: Annotated[
        Optional[list[Path]],
        typer.Argument(
            help="JSONL or CSV files (text, optional published_at, source, tickers). None: the synthetic stream."
        ),
    ] = None,
    topic: Annotated[str, typer.Option(help="Topic to write to.")] = "finsent.news",
    bootstrap: Annotated[
        str, typer.Option(envvar="FINSENT_KAFKA_BOOTSTRAP", help="Kafka bootstrap servers.")
    ] = "localhost:9092",
    rate: Annotated[float, typer.Option(help="Messages per second (0 = as fast as possible).")] = 20.0,
    count: Annotated[Optional[int], typer.Option(help="Stop after N messages.")] = None,
    duration: Annotated[Optional[float], typer.Option(help="Stop after S seconds.")] = None,
    retime: Annotated[bool, typer.Option(help="Stamp file records with the time they are sent.")] = False,
    spike_ticker: Annotated[str, typer.Option(help="Synthetic: company hit by a negative burst.")] = "NVDA",
    spike_at: Annotated[float, typer.Option(help="Synthetic: seconds until the burst (negative = no burst).")] = 60.0,
    spike_duration: Annotated[float, typer.Option(help="Synthetic: length of the burst in seconds.")] = 40.0,
    malformed_share: Annotated[float, typer.Option(help="Synthetic: share of deliberately malformed records.")] = 0.01,
    seed: Annotated[int, typer.Option(help="Synthetic: random seed.")] = 7,
) -> None:
    """Feed a topic from files or from the synthetic generator (with a scripted negative spike), with a progress bar."""
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    from pipeline.tooling.replay import ReplayError, read_files, synthetic_records
    from pipeline.tooling.replay import replay as run_replay
    from pipeline.tooling.synthetic import SpikeScript, SyntheticConfig, SyntheticStream

    if files:
        records = read_files(files, retime=retime)
    else:
        spike = SpikeScript(spike_ticker.upper(), spike_at, spike_duration) if spike_at >= 0 else None
        records = synthetic_records(
            SyntheticStream(SyntheticConfig(seed=seed, malformed_share=malformed_share, spike=spike))
        )
        if count is None and duration is None:
            typer.echo("synthetic stream: runs until Ctrl-C (use --count or --duration to stop by itself)")
    try:
        producer = KafkaProducer(bootstrap_servers=bootstrap.split(","), linger_ms=20, acks="all")
    except KafkaError as exc:
        raise fail(f"cannot reach Kafka at {bootstrap}: {exc}") from exc
    try:
        sent = run_replay(records, producer, topic, rate=rate, limit=count, duration_s=duration)
    except ReplayError as exc:
        raise fail(str(exc)) from exc
    except KeyboardInterrupt:
        sent = -1
    finally:
        producer.close(timeout=10)
    if sent >= 0:
        typer.echo(f"sent {sent} messages to {topic}")


@app.command()
def demo(
    duration: Annotated[
        Optional[float], typer.Option(help="Stop by itself after S seconds and print a summary.")
    ] = None,
    dashboard: Annotated[bool, typer.Option("--dashboard/--no-dashboard", help="Also serve the dashboard.")] = True,
    store: Annotated[
        str, typer.Option("--store", help="Store the demo writes (kept afterwards for `finsent dashboard`).")
    ] = "sqlite:///finsent-demo.db",
    rate: Annotated[float, typer.Option(help="Synthetic messages per second.")] = 25.0,
    spike_at: Annotated[float, typer.Option(help="Seconds until the scripted negative burst.")] = 60.0,
    dashboard_port: Annotated[int, typer.Option(help="Dashboard port.")] = 8501,
    metrics_port: Annotated[int, typer.Option(help="Daemon metrics port (0 = any free port).")] = 9108,
) -> None:
    """Everything on one machine, no set-up: embedded broker, daemon, synthetic stream with a spike, dashboard."""
    from pipeline.tooling.demo import DemoError, run_demo

    try:
        summary = run_demo(
            duration_s=duration,
            with_dashboard=dashboard,
            store_url=store,
            rate=rate,
            spike_at_s=spike_at,
            dashboard_port=dashboard_port,
            metrics_port=metrics_port,
            echo=typer.echo,
        )
    except DemoError as exc:
        raise fail(str(exc)) from exc
    typer.echo(summary.render())
    if not summary.ok:
        raise typer.Exit(1)


@app.command()
def bench(
    texts: Annotated[int, typer.Option(help="Texts for the throughput run.")] = 4000,
    data_dir: DataDir = None,
    model: Annotated[
        Optional[Path],
        typer.Option("--model", envvar="FINSENT_MODEL_DIR", help="Model folder (default: the shipped model)."),
    ] = None,
    workers: Annotated[
        int, typer.Option(help="Scoring workers of the daemon (0: the daemon's default, one per CPU).")
    ] = 0,
    threads: Annotated[
        int, typer.Option(help="ONNX Runtime threads per scoring worker (0: the daemon's default).")
    ] = 0,
    latency_s: Annotated[float, typer.Option(help="Length of each paced step of the latency curve.")] = 10.0,
    shares: Annotated[
        str, typer.Option(help="Paced rates of the latency curve, as shares of the backlog throughput.")
    ] = "0.25,0.5,0.7,0.85",
    bisect_steps: Annotated[
        int, typer.Option(help="Extra steps halving the gap between the last rate that held and the first not.")
    ] = 2,
    target_p99_ms: Annotated[float, typer.Option(help="p99 event-to-scored latency a rate must hold.")] = 250.0,
    compare: Annotated[
        Optional[str],
        typer.Option(help="Also measure the build at this git ref (checked out beside this one), step by step."),
    ] = None,
    fetch_max_wait_ms: Annotated[
        Optional[int], typer.Option(help="The daemons' fetch_max_wait_ms (default: theirs).")
    ] = None,
    max_targets: Annotated[
        Optional[int],
        typer.Option(
            min=0,
            help="The daemons' FINSENT_MAX_TARGETS: extra passes a multi-company text may take (0: none; "
            "default: theirs).",
        ),
    ] = None,
    baseline: Annotated[
        bool, typer.Option("--baseline/--no-baseline", help="Also time the Hugging Face pipeline.")
    ] = True,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write the report as JSON here.")] = None,
) -> None:
    """Throughput, the latency curve and live capacity (p99 within a target), peak RSS; against an earlier
    build (--compare REF) and the HF pipeline baseline."""
    import signal

    from pipeline.tooling.bench import run_benchmark
    from pipeline.tooling.builds import BuildError

    def interrupted(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt  # unwinds: the daemons, the broker and the earlier build's worktree go away

    signal.signal(signal.SIGTERM, interrupted)

    try:
        share_list = tuple(float(x) for x in shares.split(",") if x.strip())
    except ValueError as exc:
        raise fail(f"--shares takes numbers separated by commas (got: {shares!r})") from exc
    if not share_list or any(not 0 < x <= 2 for x in share_list):
        raise fail(f"--shares must be between 0 and 2 (got: {shares!r})")
    try:
        report = run_benchmark(
            texts,
            data_dir=str(data_dir) if data_dir else None,
            model=str(model) if model else None,
            workers=workers,
            threads=threads,
            latency_s=latency_s,
            shares=share_list,
            max_targets=max_targets,
            bisect_steps=bisect_steps,
            target_p99_ms=target_p99_ms,
            compare=compare,
            fetch_max_wait_ms=fetch_max_wait_ms,
            baseline=baseline,
            echo=typer.echo,
        )
    except (RuntimeError, BuildError) as exc:
        raise fail(str(exc)) from exc
    if output:
        output.write_text(json.dumps(report, indent=2))
    from pipeline.tooling.bench_report import render

    typer.echo(render(report))


@app.command("feedback-export")
def feedback_export(
    store: Annotated[
        str,
        typer.Option("--store", envvar="FINSENT_STORE_URL", help="Store holding the analysts' corrections."),
    ] = "sqlite:///finsent.db",
    output: Annotated[Path, typer.Option("--output", "-o", help="CSV file to write.")] = Path("feedback.csv"),
) -> None:
    """Write the analysts' corrections as training rows for 'finsent train --extra-data' (last word per message)."""
    from sqlalchemy.exc import SQLAlchemyError

    from pipeline.config import redact
    from pipeline.corrections import training_csv
    from pipeline.engine import StoreError, create_store_engine, mask_url

    try:
        engine = create_store_engine(store)
        try:
            text, n = training_csv(engine)
        finally:
            engine.dispose()
    except StoreError as exc:
        raise fail(redact(str(exc))) from exc
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise fail(redact(f"cannot read the feedback table of {mask_url(store)}: {reason}")) from exc
    output.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {n} correction(s) to {output}; train on them with: finsent train --extra-data {output}")
