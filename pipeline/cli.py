"""The ``finsent`` command line: the daemon's ``run`` here, the other jobs mounted on demand.

Two CLIs, one command: the ML engineer's commands live in ``models/cli.py`` (training
reaches torch), local tooling in ``pipeline/tooling/cli.py``. The root imports a side
only when one of its commands is asked for, so ``finsent run`` never imports torch,
transformers or the dashboard.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from typer.core import TyperGroup

from models.console import fail
from pipeline.logs import configure_logging

# subcommand -> module whose Typer ``app`` defines it (imported on first use)
MOUNTED: dict[str, str] = {
    "train": "models.cli",
    "teacher": "models.cli",
    "export": "models.cli",
    "evaluate": "models.cli",
    "broker": "pipeline.tooling.cli",
    "dashboard": "pipeline.tooling.cli",
    "replay": "pipeline.tooling.cli",
    "demo": "pipeline.tooling.cli",
    "bench": "pipeline.tooling.cli",
    "feedback-export": "pipeline.tooling.cli",
}


class MountedGroup(TyperGroup):
    """A command group whose other subcommands are loaded from their own side when asked for."""

    def list_commands(self, ctx: Any) -> list[str]:
        return sorted({*super().list_commands(ctx), *MOUNTED})

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name in MOUNTED:
            side = typer.main.get_command(importlib.import_module(MOUNTED[cmd_name]).app)
            return side.get_command(ctx, cmd_name) if isinstance(side, TyperGroup) else side
        return super().get_command(ctx, cmd_name)


app = typer.Typer(
    cls=MountedGroup,
    help="FinSent Monitor: financial news sentiment, scored from Kafka, windowed, alerted on.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def main(
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING or ERROR.", envvar="FINSENT_LOG_LEVEL")] = "INFO",
    log_json: Annotated[bool, typer.Option("--log-json", help="Log as JSON lines.", envvar="FINSENT_LOG_JSON")] = False,
) -> None:
    configure_logging(log_level, json_lines=log_json)


@app.command()
def run(
    bootstrap: Annotated[
        Optional[str],
        typer.Option(
            "--bootstrap", help="Kafka bootstrap servers (env FINSENT_KAFKA_BOOTSTRAP; default localhost:9092)."
        ),
    ] = None,
    input_topic: Annotated[
        Optional[list[str]],
        typer.Option("--input-topic", help="Input topic, repeatable (env FINSENT_INPUT_TOPICS; default finsent.news)."),
    ] = None,
    group_id: Annotated[
        Optional[str], typer.Option("--group-id", help="Consumer group (env FINSENT_GROUP_ID; default finsent-scorer).")
    ] = None,
    store: Annotated[
        Optional[str],
        typer.Option(
            "--store", help="sqlite:///PATH or postgresql://… (env FINSENT_STORE_URL; default sqlite:///finsent.db)."
        ),
    ] = None,
    model: Annotated[
        Optional[Path],
        typer.Option("--model", help="Model artifact folder (env FINSENT_MODEL_DIR; default the shipped model)."),
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
        Optional[str], typer.Option("--watchlist", help="Comma-separated tickers to watch (env FINSENT_WATCHLIST).")
    ] = None,
    batch_size: Annotated[
        Optional[int], typer.Option("--batch-size", help="Texts per scoring batch [default 64].")
    ] = None,
    model_gate_max_drop: Annotated[
        Optional[float],
        typer.Option(
            "--model-gate-max-drop",
            help="A hot swap is refused when the new model's test macro-F1 of either task is more than this below the "
            "serving model's (env FINSENT_MODEL_GATE_MAX_DROP, default 0.01); the model chosen at start is not gated.",
        ),
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
    from pipeline.config import ConfigError, load_settings, redact
    from pipeline.engine import StoreError

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
            model_gate_max_drop=model_gate_max_drop,
        )
        run_daemon(settings)
    except (ConfigError, ModelError, StoreError) as exc:  # messages may quote a URL: its password is masked
        raise fail(redact(str(exc))) from exc
    except OSError as exc:
        raise fail(redact(f"cannot start: {exc}")) from exc


def _main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
