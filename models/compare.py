"""The trade-off table: several artifacts measured side by side in one run.

``python -m models.compare ARTIFACT... --threads 2 [--record-in ARTIFACT]`` evaluates every
artifact on both official test sets (raw and de-duplicated), counts the sentiment test texts
whose label changes with the batch (``models.benchmark.batch_dependence``), and measures
model-alone texts/s with the models taking turns on the same texts (tokenise + pad + forward,
length-sorted batches of 32). Prints a Markdown table; ``--record-in`` also writes the rows into
that artifact's card (``metrics.tradeoffs``), where MODEL_CARD.md picks them up.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from models.benchmark import batch_dependence, describe_cpu, throughput
from models.card import card_path, read_card
from models.data import load_test_sets
from models.evaluate import DOMAIN_SETS, evaluate_domains, evaluate_model
from models.inference import OnnxModel

THROUGHPUT_TEXTS = 2000  # per test set, as in the toolchain notes


def describe_artifact(model: OnnxModel) -> dict[str, Any]:
    """Layers and quantisation scheme, read from the card."""
    card = model.card
    config = card.training.get("config", {})
    layers = config.get("layers") or card.training.get("encoder_layers") or 6  # v1/v2: the 6-layer MiniLM
    if card.precision != "int8":
        scheme = card.precision
    elif "int8_activation_scales" in card.export:
        scheme = "int8, static activation scales"
    else:
        scheme = "int8, dynamic activation scales"
    per_channel = card.export.get("int8_per_channel")
    if card.precision == "int8" and per_channel is not None:
        scheme += ", per-channel weights" if per_channel else ", per-tensor weights"
    return {"version": card.version, "layers": layers, "quantisation": scheme}


def compare(
    artifacts: Sequence[str | Path], data_dir: str | None, threads: int = 2, repeats: int = 5
) -> dict[str, Any]:
    splits = load_test_sets(data_dir)
    models = {str(a): OnnxModel(a, threads=threads) for a in artifacts}
    texts = [r.text for task in ("sentiment", "topic") for r in splits.test[task][:THROUGHPUT_TEXTS]]
    speed = throughput(models, texts, repeats=repeats)
    rows = []
    for name, model in models.items():
        results = evaluate_model(model, splits)
        row = describe_artifact(model)
        for task in ("sentiment", "topic"):
            for variant in ("test", "test_dedup"):
                r = results[task][variant]
                row[f"{task}_{variant}"] = {"accuracy": r["accuracy"], "macro_f1": r["macro_f1"], "n": r["n"]}
        row["domains"] = {
            name: {k: r[k] for k in ("n", "sentiment_accuracy", "sentiment_macro_f1")}
            for name, r in evaluate_domains(model, data_dir).items()
        }
        row["batch_dependence"] = batch_dependence(model, [r.text for r in splits.test["sentiment"]]).as_dict()
        row["model_alone_texts_per_s"] = speed[name]
        rows.append(row)
    baseline = rows[0]["model_alone_texts_per_s"]
    for row in rows:
        row["speed_vs_first"] = round(row["model_alone_texts_per_s"] / baseline, 2)
    return {
        "cpu": describe_cpu(),
        "threads": threads,
        "how": (
            f"python -m models.compare {' '.join(str(a) for a in artifacts)} --threads {threads}: model-alone = "
            f"tokenise + pad + forward of {len(texts)} test texts in length-sorted batches of 32, median of "
            f"{repeats} turns taken in one run; batch dependence = sentiment test texts whose sentiment or topic "
            "label differs between scoring alone, in sorted batches of 64 and in shuffled odd-sized batches"
        ),
        "rows": rows,
    }


DOMAIN_COLUMNS = {
    "sentfin": "headlines",
    "finentity": "paragraphs",
    "stockemotions": "forum pos/neg",
    "targets": "per company",
    "targets_mixed": "per company, mixed",
    "joined": "per company, joined",
}


def markdown_table(table: dict[str, Any]) -> str:
    """One row per model: tweets (acc / macro-F1), each other kind of text (accuracy), speed, batching."""
    domains = [d for d in DOMAIN_SETS if any(d in row.get("domains", {}) for row in table["rows"])]
    lines = [
        "| model | layers | quantisation | TFNS acc / macro-F1 | TFNS dedup | TFNT acc / macro-F1 | TFNT dedup | "
        + "".join(f"{DOMAIN_COLUMNS[d]} | " for d in domains)
        + "model-alone texts/s | end-to-end texts/s | labels changed by batching |",
        "| --- | ---: | --- | --- | --- | --- | --- | " + "---: | " * len(domains) + "---: | ---: | ---: |",
    ]
    for row in table["rows"]:

        def pair(key: str, row: dict[str, Any] = row) -> str:
            return f"{row[key]['accuracy']:.4f} / {row[key]['macro_f1']:.4f}" if key in row else "—"

        def domain(name: str, row: dict[str, Any] = row) -> str:
            found = row.get("domains", {}).get(name)
            return f"{found['sentiment_accuracy']:.4f}" if found else "—"

        dependence = row.get("batch_dependence")
        changed = f"{dependence['changed_labels']} of {dependence['texts']}" if dependence else "—"
        end_to_end = row.get("end_to_end_texts_per_s")
        speed = row.get("model_alone_texts_per_s")
        lines.append(
            f"| {row['version']} | {row['layers']} | {row['quantisation']} | {pair('sentiment_test')} "
            f"| {pair('sentiment_test_dedup')} | {pair('topic_test')} | {pair('topic_test_dedup')} | "
            + "".join(f"{domain(d)} | " for d in domains)
            + (f"{speed:.0f} ({row['speed_vs_first']:.2f}×) " if speed else "— ")
            + f"| {f'{end_to_end:.0f}' if end_to_end else 'not measured'} "
            f"| {changed} |"
        )
    return "\n".join(lines)


def teacher_row(folder: str | Path) -> dict[str, Any]:
    """A row for a teacher checkpoint (PyTorch, not an artifact): its test figures from ``teacher.json``."""
    meta = json.loads((Path(folder) / "teacher.json").read_text())
    test = meta["test"]

    def task(name: str, head: str) -> dict[str, Any]:
        r = test[name]
        return {"accuracy": r[f"{head}_accuracy"], "macro_f1": r[f"{head}_macro_f1"], "n": r["n"]}

    return {
        "version": f"teacher: {Path(meta['base_model']).name}, top {12 - meta['cache_layers']} layers tuned",
        "layers": 12,
        "quantisation": "fp32 weights, bf16 compute (PyTorch)",
        "sentiment_test": task("tfns", "sentiment"),
        "sentiment_test_dedup": task("tfns_dedup", "sentiment"),
        "topic_test": task("tfnt", "topic"),
        "topic_test_dedup": task("tfnt_dedup", "topic"),
        "domains": {n: test[n] for n in DOMAIN_SETS if n in test},
    }


def attach_end_to_end(table: dict[str, Any], reports: Sequence[str]) -> None:
    """``VERSION=BENCH_JSON`` pairs: end-to-end texts/s from ``finsent bench -o`` reports, onto matching rows."""
    for pair in reports:
        version, _, path = pair.partition("=")
        report = json.loads(Path(path).read_text())
        for row in table["rows"]:
            if row["version"] == version:
                row["end_to_end_texts_per_s"] = report["end_to_end_texts_per_s"]


def record(artifact: str | Path, table: dict[str, Any]) -> None:
    """Write the table into the artifact's card (metrics.tradeoffs); checksums are unaffected."""
    path = card_path(artifact)
    raw = json.loads(path.read_text())
    raw.setdefault("metrics", {})["tradeoffs"] = table
    path.write_text(json.dumps(raw, indent=2, ensure_ascii=False) + "\n")
    read_card(artifact)  # still parses
    from models.model_card import write_model_card

    write_model_card(path.parent)


def training_runs(named_dirs: Sequence[str]) -> list[dict[str, Any]]:
    """``NAME=RUN_DIR`` pairs -> command, wall time and best dev score from each run's summary.json."""
    runs = []
    for pair in named_dirs:
        name, _, folder = pair.partition("=")
        path = Path(folder) / "summary.json"
        summary = json.loads((path if path.is_file() else Path(folder) / "teacher.json").read_text())
        runs.append(
            {
                "name": name,
                "command": summary["command"],
                "wall_time_s": summary["wall_time_s"],
                "epochs_run": summary.get("epochs_run", summary.get("steps")),
                "best_dev_score": summary["best"]["score"],
                "best_step": summary["best"]["step"],
                "trainable_parameters": summary.get("trainable_parameters"),
                "epoch_seconds": summary.get("epoch_seconds"),
            }
        )
    return runs


def record_runs(artifact: str | Path, runs: list[dict[str, Any]]) -> None:
    """Write the training runs behind the artifact into its card (training.runs)."""
    path = card_path(artifact)
    raw = json.loads(path.read_text())
    raw.setdefault("training", {})["runs"] = runs
    path.write_text(json.dumps(raw, indent=2, ensure_ascii=False) + "\n")
    read_card(artifact)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m models.compare", description=__doc__)
    parser.add_argument("artifacts", nargs="+", help="artifact folders; the first is the speed baseline")
    parser.add_argument("--data-dir", default=os.environ.get("FINSENT_DATA_DIR"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--record-in", help="artifact whose card.json gets the table")
    parser.add_argument("--output", help="also write the table as JSON here")
    parser.add_argument(
        "--bench", action="append", default=[], help="VERSION=JSON of a 'finsent bench -o' report (repeatable)"
    )
    parser.add_argument(
        "--teacher",
        action="append",
        default=[],
        help="a teacher's best/ folder with test figures (a row without speed)",
    )
    parser.add_argument(
        "--run", action="append", default=[], help="NAME=RUN_DIR of a training run behind --record-in (repeatable)"
    )
    args = parser.parse_args(argv)
    table = compare(args.artifacts, args.data_dir, args.threads, args.repeats)
    table["rows"] += [teacher_row(folder) for folder in args.teacher]
    attach_end_to_end(table, args.bench)
    if args.output:
        Path(args.output).write_text(json.dumps(table, indent=2))
    if args.record_in:
        record(args.record_in, table)
        if args.run:
            record_runs(args.record_in, training_runs(args.run))
    print(f"CPU: {table['cpu']}, {table['threads']} threads")
    print(markdown_table(table))


if __name__ == "__main__":
    main()
