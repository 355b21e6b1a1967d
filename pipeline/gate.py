"""The quality gate a new model passes before the daemon swaps it in, and the smoke check after loading.

Pure functions: the candidate's card is compared with the serving model's card, task by task, on the
test-set figures ``finsent evaluate --update-card`` records. Refusals are one readable sentence.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

TASKS = ("sentiment", "topic")
SMOKE_TEXTS = (
    "Shares plunge after the company misses quarterly revenue estimates",
    "Fed holds interest rates steady",
    "$AAPL",
    "Nvidia beats expectations and raises its full-year guidance " * 12,  # longer than the token limit
)


@dataclass(frozen=True)
class Verdict:
    """Whether the candidate may be served, and one sentence saying why (or why not)."""

    accepted: bool
    reason: str


def figures(metrics: Mapping[str, Any], task: str, variant: str) -> Mapping[str, Any] | None:
    """The card's ``metrics[task][variant]`` when it holds a macro-F1 and a size, else ``None``."""
    found = metrics.get(task, {}).get(variant) if isinstance(metrics.get(task), Mapping) else None
    if isinstance(found, Mapping) and isinstance(found.get("macro_f1"), int | float) and found.get("n"):
        return found
    return None


def judge_candidate(
    candidate: str,
    candidate_metrics: Mapping[str, Any],
    serving: str,
    serving_metrics: Mapping[str, Any],
    max_drop: float,
) -> Verdict:
    """May ``candidate`` replace ``serving``? Compares each task's test macro-F1 (``test_dedup`` when both have it).

    Refused: no test-set figures on the candidate's card; figures from test sets of another size
    (not comparable); a macro-F1 more than ``max_drop`` below the serving model's.
    """
    missing = [task for task in TASKS if figures(candidate_metrics, task, "test") is None]
    if missing:
        return Verdict(
            False,
            f"model {candidate} has no test-set figures for {' and '.join(missing)} on its card: "
            f"run 'finsent evaluate --model DIR --update-card' before publishing it",
        )
    if any(figures(serving_metrics, task, "test") is None for task in TASKS):
        return Verdict(True, f"accepted: the serving model {serving} has no test-set figures to compare with")
    problems: list[str] = []
    changes: list[str] = []
    for task in TASKS:
        sizes = {
            variant: (int(new["n"]), int(old["n"]))
            for variant in ("test", "test_dedup")
            if (new := figures(candidate_metrics, task, variant)) and (old := figures(serving_metrics, task, variant))
        }
        unequal = [f"{a} {task} {variant} texts against {b}" for variant, (a, b) in sizes.items() if a != b]
        if unequal:
            problems.append(
                f"it was evaluated on {', '.join(unequal)} for {serving}, so their figures are not comparable "
                "(evaluate both on the same test sets)"
            )
            continue
        variant = "test_dedup" if "test_dedup" in sizes else "test"
        new_f1 = float(figures(candidate_metrics, task, variant)["macro_f1"])  # type: ignore[index]
        old_f1 = float(figures(serving_metrics, task, variant)["macro_f1"])  # type: ignore[index]
        drop = old_f1 - new_f1
        if drop > max_drop:
            problems.append(
                f"its {task} {variant} macro-F1 {new_f1:.4f} is {drop:.4f} below {serving}'s {old_f1:.4f} "
                f"(allowed drop {max_drop:g})"
            )
        changes.append(f"{task} {variant} macro-F1 {new_f1:.4f} ({-drop:+.4f})")
    problems += domain_drops(candidate_metrics, serving, serving_metrics, max_drop, changes)
    if problems:
        return Verdict(False, f"model {candidate} fails the quality gate: " + "; ".join(problems))
    return Verdict(True, f"accepted against {serving}: " + ", ".join(changes))


def domain_drops(
    candidate_metrics: Mapping[str, Any],
    serving: str,
    serving_metrics: Mapping[str, Any],
    max_drop: float,
    changes: list[str],
) -> list[str]:
    """The other kinds of text (``metrics["domains"]``: headlines, paragraphs, forum posts, per-company sets)
    that both cards measured on the same number of texts: a macro-F1 more than ``max_drop`` lower refuses."""
    new_sets, old_sets = candidate_metrics.get("domains"), serving_metrics.get("domains")
    if not isinstance(new_sets, Mapping) or not isinstance(old_sets, Mapping):
        return []
    problems = []
    for name in sorted(set(new_sets) & set(old_sets)):
        new, old = new_sets[name], old_sets[name]
        if not (isinstance(new, Mapping) and isinstance(old, Mapping)) or new.get("n") != old.get("n"):
            continue
        if not isinstance(new.get("sentiment_macro_f1"), int | float) or not isinstance(
            old.get("sentiment_macro_f1"), int | float
        ):
            continue
        drop = float(old["sentiment_macro_f1"]) - float(new["sentiment_macro_f1"])
        if drop > max_drop:
            problems.append(
                f"its {name} macro-F1 {new['sentiment_macro_f1']:.4f} is {drop:.4f} below {serving}'s "
                f"{old['sentiment_macro_f1']:.4f} (allowed drop {max_drop:g})"
            )
        changes.append(f"{name} {-drop:+.4f}")
    return problems


def check_probabilities(sentiment: np.ndarray, topic: np.ndarray, n_texts: int) -> str | None:
    """``None`` when both heads gave one finite probability row per text, each summing to 1; else what is wrong."""
    for head, probs, width in (("sentiment", sentiment, 3), ("topic", topic, 20)):
        if probs.shape != (n_texts, width):
            return f"the {head} head answered with shape {probs.shape}, not ({n_texts}, {width})"
        if not np.isfinite(probs).all():
            return f"the {head} head gave non-finite probabilities"
        worst = float(np.abs(probs.sum(axis=1) - 1.0).max())
        if worst > 1e-3 or float(probs.min()) < 0.0:
            return f"the {head} head's probabilities do not sum to 1 (off by {worst:.2e}) or are negative"
    return None
