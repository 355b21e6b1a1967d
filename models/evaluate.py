"""Evaluate an exported artifact on both official test sets, raw and de-duplicated.

Needs only onnxruntime and tokenizers: what the daemon runs is what is measured.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from models.benchmark import describe_cpu
from models.card import card_path, read_card
from models.contract import SENTIMENT_LABELS, TOPIC_LABELS
from models.data import TASKS, Splits, load_test_sets
from models.inference import OnnxModel
from models.metrics import classification_report

LABELS = {"sentiment": SENTIMENT_LABELS, "topic": TOPIC_LABELS}


def evaluate_model(model: OnnxModel, splits: Splits) -> dict[str, Any]:
    """Reports per task and per test variant (``test``, ``test_dedup``)."""
    results: dict[str, Any] = {"model_version": model.version, "precision": model.card.precision}
    for task in TASKS:
        rows = splits.test[task]
        preds = model.predict([r.text for r in rows])
        probs = preds.sentiment if task == "sentiment" else preds.topic
        y = np.array([getattr(r, task) for r in rows])
        keep_keys = {id(r) for r in splits.test_dedup[task]}
        keep = np.array([id(r) in keep_keys for r in rows])
        results[task] = {
            "test": classification_report(y, probs, LABELS[task]),
            "test_dedup": classification_report(y[keep], probs[keep], LABELS[task]),
            "overlap_with_train": splits.overlap[task],
            "overlap_distinct_texts": splits.overlap_distinct[task],
        }
    return results


DOMAIN_SETS = ("sentfin", "finentity", "stockemotions", "targets", "targets_mixed", "joined")


def evaluate_domains(model: OnnxModel, data_dir: str | Path | None) -> dict[str, Any]:
    """The out-of-domain test sets and the per-company sets, where the data directory holds them.

    A model trained on company targets (card ``targets``) reads each target row as the pair
    "target [SEP] text"; any other model is scored as the daemon would use it, by giving every
    company the message's own label.
    """
    from models.corpus import build_corpus, score_set
    from models.data import resolve_data_dir
    from models.domains import available

    if not available(resolve_data_dir(data_dir)):
        return {}
    test = build_corpus(data_dir).test
    out: dict[str, Any] = {}
    for name in DOMAIN_SETS:
        rows = test.get(name)
        if not rows:
            continue
        targets = [r.target for r in rows] if model.card.targets else None
        preds = model.predict([r.text for r in rows], targets=targets)
        out[name] = score_set(rows, preds.sentiment, preds.topic)
        out[name]["read_as"] = "target pair" if targets and name.startswith(("targets", "joined")) else "message"
    return out


def format_domains(domains: dict[str, Any]) -> str:
    from models.corpus import SET_TITLES

    lines = [f"{'set':<15} {'what':<50} {'n':>5} {'accuracy':>9} {'macro-F1':>9}"]
    for name, r in domains.items():
        lines.append(
            f"{name:<15} {SET_TITLES.get(name, ''):<50} {r['n']:>5} "
            f"{r.get('sentiment_accuracy', float('nan')):>9.4f} {r.get('sentiment_macro_f1', float('nan')):>9.4f}"
        )
    return "\n".join(lines)


def summary_rows(results: dict[str, Any]) -> list[tuple[str, str, int, float, float, float]]:
    """(task, variant, n, accuracy, macro-F1, ECE) rows for the printed table."""
    rows: list[tuple[str, str, int, float, float, float]] = []
    for task in TASKS:
        for variant in ("test", "test_dedup"):
            r = results[task][variant]
            rows.append((task, variant, r["n"], r["accuracy"], r["macro_f1"], r["ece"]))
    return rows


def format_table(results: dict[str, Any]) -> str:
    lines = [f"{'task':<10} {'test set':<11} {'n':>5} {'accuracy':>9} {'macro-F1':>9} {'ECE':>6}"]
    for task, variant, n, acc, f1, ece in summary_rows(results):
        lines.append(f"{task:<10} {variant:<11} {n:>5} {acc:>9.4f} {f1:>9.4f} {ece:>6.3f}")
    return "\n".join(lines)


def format_report(results: dict[str, Any], task: str) -> str:
    """Per-class precision / recall / F1 on the raw test set."""
    per_class = results[task]["test"]["per_class"]
    width = max(len(k) for k in per_class)
    lines = [f"{task}: {'label':<{width}} {'prec':>6} {'recall':>6} {'f1':>6} {'n':>5}"]
    for label, r in per_class.items():
        lines.append(
            f"{' ' * len(task)}  {label:<{width}} {r['precision']:>6.3f} {r['recall']:>6.3f} "
            f"{r['f1']:>6.3f} {r['support']:>5}"
        )
    return "\n".join(lines)


def plot_confusion(matrix: list[list[int]], labels: tuple[str, ...], title: str, path: Path) -> None:
    """Row-normalised confusion matrix as a PNG, counts written in the cells."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    import matplotlib.pyplot as plt

    counts = np.asarray(matrix)
    norm = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = 3.2 + 0.42 * len(labels)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    image = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    for i in range(len(labels)):
        for j in range(len(labels)):
            if counts[i, j]:
                ax.text(
                    j,
                    i,
                    str(counts[i, j]),
                    ha="center",
                    va="center",
                    fontsize=6 if len(labels) > 5 else 9,
                    color="white" if norm[i, j] > 0.5 else "black",
                )
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of true class")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_evaluation(
    model_dir: str | Path,
    data_dir: str | Path | None,
    *,
    output: str | Path | None = None,
    plots_dir: str | Path | None = None,
    update_card: bool = False,
) -> dict[str, Any]:
    """Evaluate, write JSON (and PNGs), optionally record the metrics in the card."""
    model = OnnxModel(model_dir)
    splits = load_test_sets(data_dir)
    results = evaluate_model(model, splits)
    results["domains"] = evaluate_domains(model, data_dir)
    if plots_dir is not None:
        folder = Path(plots_dir)
        folder.mkdir(parents=True, exist_ok=True)
        for task in TASKS:
            plot_confusion(
                results[task]["test"]["confusion"],
                LABELS[task],
                f"{model.version} ({model.card.precision}) — {task}, official test set",
                folder / f"confusion_{task}.png",
            )
    if output is not None:
        Path(output).write_text(json.dumps(results, indent=2))
    if update_card:
        path = card_path(model_dir)
        raw = json.loads(path.read_text())
        raw["metrics"] = raw.get("metrics", {}) | {
            task: {
                variant: {k: results[task][variant][k] for k in ("n", "accuracy", "macro_f1", "ece")}
                for variant in ("test", "test_dedup")
            }
            | {k: results[task][k] for k in ("overlap_with_train", "overlap_distinct_texts")}
            for task in TASKS
        }
        if results["domains"]:
            raw["metrics"]["domains"] = {
                name: {k: v for k, v in r.items() if k != "read_as"} | {"read_as": r["read_as"]}
                for name, r in results["domains"].items()
            }
        # int8 kernels differ between instruction sets: the figures above belong to this CPU
        raw["metrics"]["evaluated_on"] = describe_cpu()
        path.write_text(json.dumps(raw, indent=2, ensure_ascii=False) + "\n")
        read_card(model_dir)  # still parses
    return results
