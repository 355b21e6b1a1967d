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
from pipeline.config import setting_help
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


# ``finsent run`` flags and the settings they set; each flag's help comes from the settings model
RUN_FLAGS: dict[str, str] = {
    "bootstrap": "kafka_bootstrap",
    "input_topic": "input_topics",
    "group_id": "group_id",
    "store": "store_url",
    "model": "model_dir",
    "metrics_host": "metrics_host",
    "metrics_port": "metrics_port",
    "window_size_s": "window_size_s",
    "grace_s": "grace_s",
    "watchlist": "watchlist",
    "batch_size": "batch_size",
    "model_gate_max_drop": "model_gate_max_drop",
}


def _flag(name: str) -> Any:
    return typer.Option(f"--{name.replace('_', '-')}", help=setting_help(RUN_FLAGS[name]))


@app.command()
def run(
    bootstrap: Annotated[Optional[str], _flag("bootstrap")] = None,
    input_topic: Annotated[Optional[list[str]], _flag("input_topic")] = None,
    group_id: Annotated[Optional[str], _flag("group_id")] = None,
    store: Annotated[Optional[str], _flag("store")] = None,
    model: Annotated[Optional[Path], _flag("model")] = None,
    metrics_host: Annotated[Optional[str], _flag("metrics_host")] = None,
    metrics_port: Annotated[Optional[int], _flag("metrics_port")] = None,
    window_size_s: Annotated[Optional[int], _flag("window_size_s")] = None,
    grace_s: Annotated[Optional[int], _flag("grace_s")] = None,
    watchlist: Annotated[Optional[str], _flag("watchlist")] = None,
    batch_size: Annotated[Optional[int], _flag("batch_size")] = None,
    model_gate_max_drop: Annotated[Optional[float], _flag("model_gate_max_drop")] = None,
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
    from pipeline.checkpointing import CheckpointError
    from pipeline.config import ConfigError, load_settings, redact
    from pipeline.engine import StoreError

    try:
        flags = {
            "bootstrap": bootstrap,
            "input_topic": input_topic,
            "group_id": group_id,
            "store": store,
            "model": model,
            "metrics_host": metrics_host,
            "metrics_port": metrics_port,
            "window_size_s": window_size_s,
            "grace_s": grace_s,
            "watchlist": watchlist,
            "batch_size": batch_size,
            "model_gate_max_drop": model_gate_max_drop,
        }
        settings = load_settings(config, **{RUN_FLAGS[flag]: value for flag, value in flags.items()})
        run_daemon(settings)
    except (ConfigError, ModelError, StoreError, CheckpointError) as exc:  # a URL's password is masked
        raise fail(redact(str(exc))) from exc
    except OSError as exc:
        raise fail(redact(f"cannot start: {exc}")) from exc


@app.command("retire-topic")
def retire_topic(
    topic: Annotated[str, typer.Argument(help="The input topic no daemon of the group reads any more.")],
    group_id: Annotated[Optional[str], _flag("group_id")] = None,
    store: Annotated[Optional[str], _flag("store")] = None,
) -> None:
    """Stop windows waiting for an input topic taken out of every daemon's FINSENT_INPUT_TOPICS.

    Windows wait for every partition any daemon of the group has read or seen, so a topic removed
    from the configuration holds them open until it is retired here. Run it once the last daemon
    reading the topic has stopped: it is refused while an offset of the topic was committed within
    the last minute, and a daemon that still reads it registers it again.
    """
    from sqlalchemy.exc import SQLAlchemyError

    from pipeline.config import ConfigError, load_settings, redact
    from pipeline.engine import StoreError
    from pipeline.store import Store

    try:
        settings = load_settings(group_id=group_id, store_url=store)
        target = Store(settings.store_url.get_secret_value())
        try:
            target.create_schema()
            forgotten = target.retire_topic(settings.group_id, topic)
        finally:
            target.close()
    except (ConfigError, StoreError) as exc:
        raise fail(redact(str(exc))) from exc
    except SQLAlchemyError as exc:
        raise fail(redact(f"the store cannot be reached: {str(exc).splitlines()[0]}")) from exc
    typer.echo(f"{topic} retired for group {settings.group_id}: {forgotten} partition offsets forgotten")


def _main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
