"""The quality gate of a hot swap, by a table of cases, and the smoke check's arithmetic."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from pipeline.gate import check_probabilities, judge_candidate


def card_metrics(
    s_f1: float = 0.84, t_f1: float = 0.88, *, dedup: tuple[float, float] | None = None, n: int = 100, n_dedup: int = 90
) -> dict[str, Any]:
    """Card metrics as ``finsent evaluate --update-card`` writes them."""
    metrics: dict[str, Any] = {}
    for i, (task, f1) in enumerate((("sentiment", s_f1), ("topic", t_f1))):
        metrics[task] = {"test": {"n": n, "accuracy": 0.9, "macro_f1": f1, "ece": 0.03}}
        if dedup is not None:
            metrics[task]["test_dedup"] = {"n": n_dedup, "accuracy": 0.9, "macro_f1": dedup[i], "ece": 0.03}
    return metrics


SERVING = card_metrics(dedup=(0.83, 0.87))


def with_domains(metrics: dict[str, Any], **f1: float | tuple[float, int]) -> dict[str, Any]:
    """Add other kinds of text (``name=macro_f1`` or ``name=(macro_f1, n)``) as ``finsent evaluate`` records them."""
    domains = {}
    for name, value in f1.items():
        score, n = value if isinstance(value, tuple) else (value, 500)
        domains[name] = {"n": n, "sentiment_accuracy": score, "sentiment_macro_f1": score, "read_as": "message"}
    return {**metrics, "domains": domains}


SERVING_DOMAINS = with_domains(SERVING, sentfin=0.75, stockemotions=0.52)

CASES = [
    # (what, candidate metrics, serving metrics, max drop, accepted, words the sentence must hold)
    ("equal figures", card_metrics(dedup=(0.83, 0.87)), SERVING, 0.01, True, ["accepted against v1"]),
    ("better", card_metrics(0.9, 0.9, dedup=(0.9, 0.9)), SERVING, 0.01, True, ["(+0.0700)"]),
    ("a drop within the tolerance", card_metrics(dedup=(0.825, 0.87)), SERVING, 0.01, True, ["(-0.0050)"]),
    ("no figures at all", {}, SERVING, 0.01, False, ["no test-set figures for sentiment and topic", "--update-card"]),
    ("one task's figures missing", {"sentiment": SERVING["sentiment"]}, SERVING, 0.01, False, ["figures for topic"]),
    ("sentiment drops", card_metrics(dedup=(0.80, 0.87)), SERVING, 0.01, False, ["sentiment test_dedup macro-F1"]),
    ("topic drops", card_metrics(dedup=(0.83, 0.5)), SERVING, 0.01, False, ["topic test_dedup macro-F1 0.5000"]),
    ("a drop a wide tolerance allows", card_metrics(dedup=(0.80, 0.5)), SERVING, 0.5, True, ["(-0.3700)"]),
    # test_dedup is compared when both cards have it: a raw-test drop alone does not refuse
    ("raw test drops, dedup holds", card_metrics(0.5, 0.5, dedup=(0.83, 0.87)), SERVING, 0.01, True, []),
    # without test_dedup on one side, the raw test figures are compared
    ("raw test compared", card_metrics(0.5, 0.88), SERVING, 0.01, False, ["sentiment test macro-F1 0.5000"]),
    ("other test set", card_metrics(dedup=(0.83, 0.87), n=120), SERVING, 0.01, False, ["not comparable", "120"]),
    ("other dedup set", card_metrics(dedup=(0.83, 0.87), n_dedup=80), SERVING, 0.01, False, ["not comparable"]),
    ("serving has no figures", card_metrics(), {}, 0.01, True, ["no test-set figures to compare"]),
    ("figures without sizes", {"sentiment": {"test": {"macro_f1": 0.9}}, "topic": {}}, SERVING, 0.01, False, []),
    # other kinds of text both cards measured on the same texts: a drop on any refuses
    ("headlines improve", with_domains(SERVING, sentfin=0.85, stockemotions=0.7), SERVING_DOMAINS, 0.01, True,
     ["sentfin +0.1000", "stockemotions +0.1800"]),
    ("forum posts drop", with_domains(SERVING, sentfin=0.85, stockemotions=0.4), SERVING_DOMAINS, 0.01, False,
     ["its stockemotions macro-F1 0.4000 is 0.1200 below v1's 0.5200"]),
    ("another headline split", with_domains(SERVING, sentfin=(0.5, 400)), SERVING_DOMAINS, 0.01, True, []),
    ("serving never measured them", with_domains(SERVING, sentfin=0.1), SERVING, 0.01, True, []),
]  # fmt: skip


@pytest.mark.parametrize(
    ("candidate", "serving", "max_drop", "accepted", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_judge_candidate(
    candidate: dict[str, Any], serving: dict[str, Any], max_drop: float, accepted: bool, words: list[str]
) -> None:
    verdict = judge_candidate("v2", candidate, "v1", serving, max_drop)
    assert verdict.accepted is accepted, verdict.reason
    assert verdict.reason.startswith("accepted" if accepted else "model v2 ")
    for word in words:
        assert word in verdict.reason
    assert "\n" not in verdict.reason, "one sentence for the log"


def test_every_problem_is_named_in_one_sentence() -> None:
    verdict = judge_candidate("v2", card_metrics(dedup=(0.7, 0.7)), "v1", SERVING, 0.01)
    assert not verdict.accepted
    assert "sentiment test_dedup macro-F1 0.7000 is 0.1300 below v1's 0.8300" in verdict.reason
    assert "topic test_dedup macro-F1 0.7000 is 0.1700 below v1's 0.8700 (allowed drop 0.01)" in verdict.reason


def _probs(rows: list[list[float]]) -> np.ndarray:
    return np.array(rows, dtype=np.float32)


GOOD_S = _probs([[0.2, 0.3, 0.5]] * 2)
GOOD_T = np.full((2, 20), 0.05, dtype=np.float32)


@pytest.mark.parametrize(
    ("sentiment", "topic", "problem"),
    [
        (GOOD_S, GOOD_T, None),
        (_probs([[0.2, 0.3, np.nan]] * 2), GOOD_T, "non-finite"),
        (_probs([[0.2, 0.3, 0.6]] * 2), GOOD_T, "do not sum to 1"),
        (_probs([[1.2, -0.2, 0.0]] * 2), GOOD_T, "negative"),
        (GOOD_S, np.full((2, 20), np.inf, dtype=np.float32), "topic head gave non-finite"),
        (GOOD_S[:1], GOOD_T, "shape (1, 3), not (2, 3)"),
        (GOOD_S, np.full((2, 19), 1 / 19, dtype=np.float32), "shape (2, 19)"),
    ],
)
def test_check_probabilities(sentiment: np.ndarray, topic: np.ndarray, problem: str | None) -> None:
    found = check_probabilities(sentiment, topic, 2)
    assert (found is None) if problem is None else (found is not None and problem in found), found


def _shipped_cards() -> tuple[Any, Any]:
    from models.card import SHIPPED_MODEL_DIR, read_card

    return read_card(SHIPPED_MODEL_DIR), read_card(SHIPPED_MODEL_DIR.parent / "finsent-v2")


def test_the_shipped_model_passes_the_gate_against_v2() -> None:
    """A daemon serving v2 hot-swaps to the shipped model at the default allowed drop."""
    shipped, v2 = _shipped_cards()
    verdict = judge_candidate(shipped.version, shipped.metrics, v2.version, v2.metrics, max_drop=0.01)
    assert verdict.accepted, verdict.reason


@pytest.mark.parametrize(
    ("task", "variant"), [("sentiment", "test_dedup"), ("topic", "test_dedup"), ("sentiment", "test")]
)
def test_the_shipped_model_would_be_refused_if_one_task_regressed(task: str, variant: str) -> None:
    shipped, v2 = _shipped_cards()
    worse = {k: dict(v) if isinstance(v, dict) else v for k, v in shipped.metrics.items()}
    worse[task] = {k: dict(v) if isinstance(v, dict) else v for k, v in shipped.metrics[task].items()}
    if variant == "test":  # no dedup figures: the gate falls back on the full test set
        worse[task].pop("test_dedup")
    worse[task][variant]["macro_f1"] = v2.metrics[task][variant]["macro_f1"] - 0.02
    verdict = judge_candidate(shipped.version, worse, v2.version, v2.metrics, max_drop=0.01)
    assert not verdict.accepted and f"{task} {variant} macro-F1" in verdict.reason


def test_a_domain_regression_refuses_against_a_card_that_measured_it() -> None:
    shipped, _ = _shipped_cards()
    worse = dict(shipped.metrics)
    worse["domains"] = {name: dict(r) for name, r in shipped.metrics["domains"].items()}
    worse["domains"]["sentfin"]["sentiment_macro_f1"] -= 0.05
    verdict = judge_candidate("v3-worse", worse, shipped.version, shipped.metrics, max_drop=0.01)
    assert not verdict.accepted and "sentfin macro-F1" in verdict.reason
