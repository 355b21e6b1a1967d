"""Every training, dev and test row of the v3 recipe in one place, for the teacher and the student alike.

Training rows: both tweet sets, the out-of-domain message rows (headlines, paragraphs, forum posts),
the per-company target rows of the entity sets, and texts about two companies joined from texts
about one (``models.augment``). Dev and test rows are named sets (``tfns``, ``tfnt``, ``sentfin``,
``finentity``, ``stockemotions``, ``targets``, ``targets_mixed``, ``joined``) so every figure on the
card says what it was measured on. Texts of any test set never train.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from models.augment import joined_pairs, single_company_rows
from models.contract import SENTIMENT_LABELS, TOPIC_LABELS
from models.data import IGNORE, Example, Splits, load_splits, resolve_data_dir
from models.domains import DomainSets, load_domains, target_rows
from models.metrics import classification_report

NEG, POS = SENTIMENT_LABELS.index("negative"), SENTIMENT_LABELS.index("positive")

# What each named set measures, for tables and the card.
SET_TITLES: dict[str, str] = {
    "tfns": "tweets, sentiment",
    "tfns_dedup": "tweets, sentiment (test texts not in train)",
    "tfnt": "tweets, topic",
    "tfnt_dedup": "tweets, topic (test texts not in train)",
    "sentfin": "news headlines, sentiment (entities agree)",
    "finentity": "news paragraphs, sentiment (entities agree)",
    "stockemotions": "forum posts, positive vs negative",
    "targets": "per company: headline and paragraph entities",
    "targets_mixed": "per company: headlines whose entities disagree",
    "joined": "per company: two joined texts, opposite labels",
}


@dataclass
class Corpus:
    train: list[Example]
    dev: dict[str, list[Example]]
    test: dict[str, list[Example]]
    splits: Splits
    domains: DomainSets
    meta: dict[str, Any] = field(default_factory=dict)


def _tweet_sets(splits: Splits, part: str) -> dict[str, list[Example]]:
    rows = getattr(splits, part)
    return {
        "tfns": [Example(r.text, sentiment=r.sentiment, domain="tfns") for r in rows["sentiment"]],
        "tfnt": [Example(r.text, topic=r.topic, domain="tfnt") for r in rows["topic"]],
    }


def build_corpus(
    data_dir: str | os.PathLike[str] | None,
    *,
    seed: int = 13,
    dev_fraction: float = 0.1,
    joins: int = 4000,
    extra: tuple[Path, ...] = (),
    limit: int | None = None,
) -> Corpus:
    """The rows; ``limit`` keeps the first N rows of every part (smoke runs and tests)."""
    root = resolve_data_dir(data_dir)
    splits = load_splits(root, dev_fraction=dev_fraction, seed=seed, extra=list(extra), limit=limit)
    test_texts = [r.text for task in splits.test.values() for r in task]
    domains = load_domains(root, exclude_texts=test_texts)

    tweet_train = _tweet_sets(splits, "train")
    singles_train = single_company_rows(tweet_train["tfns"])
    singles_train += [
        r for a in domains.annotated.get("sentfin", {}).get("train", []) if len(a.entities) == 1 for r in target_rows(a)
    ]
    train = [
        *tweet_train["tfns"],
        *tweet_train["tfnt"],
        *splits.extra,
        *domains.message_rows("train"),
        *domains.target_rows("train"),
        *single_company_rows(tweet_train["tfns"]),
        *joined_pairs(singles_train, joins, seed=seed),
    ]
    train = [r for r in train if r.sentiment != IGNORE or r.topic != IGNORE]

    dev = _tweet_sets(splits, "dev")
    test = _tweet_sets(splits, "test")
    dedup = _tweet_sets(splits, "test_dedup")
    test["tfns_dedup"], test["tfnt_dedup"] = dedup["tfns"], dedup["tfnt"]
    for name, parts in domains.messages.items():
        dev[name] = [r for r in parts["dev"] if r.sentiment != IGNORE]
        test[name] = [r for r in parts["test"] if r.sentiment != IGNORE]
    dev["targets"] = domains.target_rows("dev")
    test["targets"] = domains.target_rows("test")
    test["targets_mixed"] = [
        r for aparts in domains.annotated.values() for a in aparts["test"] if a.mixed() for r in target_rows(a)
    ]
    singles_test = [
        r for a in domains.annotated.get("sentfin", {}).get("test", []) if len(a.entities) == 1 for r in target_rows(a)
    ]
    test["joined"] = [r for r in joined_pairs(singles_test, 600, seed=seed + 1, opposite_share=1.0)]
    if limit is not None:
        train = train[: limit * 4]
        dev = {k: v[:limit] for k, v in dev.items()}
        test = {k: v[:limit] for k, v in test.items()}
    dev = {k: v for k, v in dev.items() if v}
    test = {k: v for k, v in test.items() if v}
    meta = {
        "train_rows": len(train),
        "train_by_domain": _count(train),
        "dev_rows": {k: len(v) for k, v in dev.items()},
        "test_rows": {k: len(v) for k, v in test.items()},
        "finentity_spans_not_reanchored": domains.unanchored,
    }
    return Corpus(train, dev, test, splits, domains, meta)


def _count(rows: list[Example]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in rows:
        out[r.domain or "extra"] = out.get(r.domain or "extra", 0) + 1
    return dict(sorted(out.items()))


def score_set(rows: list[Example], sentiment: np.ndarray, topic: np.ndarray) -> dict[str, Any]:
    """Accuracy and macro-F1 of a named set from both heads' probabilities (or logits).

    Rows labelled positive-or-negative only (``binary``) are scored positive vs negative: the
    neutral output is ignored, as the set has no neutral class.
    """
    out: dict[str, Any] = {"n": len(rows)}
    ys = np.array([r.sentiment for r in rows])
    yt = np.array([r.topic for r in rows])
    binary = np.array([r.binary for r in rows], dtype=bool)
    has_s = ys != IGNORE
    if has_s.any():
        probs = np.asarray(sentiment, dtype=np.float64).copy()
        if binary.any():
            probs[binary, SENTIMENT_LABELS.index("neutral")] = -np.inf
        if binary[has_s].all():
            pred = np.where(probs[has_s, POS] > probs[has_s, NEG], POS, NEG)
            out["sentiment_accuracy"] = float((pred == ys[has_s]).mean())
            out["sentiment_macro_f1"] = _binary_macro_f1(ys[has_s], pred)
        else:
            report = classification_report(ys[has_s], _softmax(probs[has_s]), SENTIMENT_LABELS)
            out["sentiment_accuracy"] = report["accuracy"]
            out["sentiment_macro_f1"] = report["macro_f1"]
    has_t = yt != IGNORE
    if has_t.any():
        report = classification_report(yt[has_t], _softmax(np.asarray(topic)[has_t]), TOPIC_LABELS)
        out["topic_accuracy"] = report["accuracy"]
        out["topic_macro_f1"] = report["macro_f1"]
    return out


def _binary_macro_f1(y: np.ndarray, pred: np.ndarray) -> float:
    f1s = []
    for label in (NEG, POS):
        tp = float(((pred == label) & (y == label)).sum())
        denom = float((pred == label).sum() + (y == label).sum())
        f1s.append(2 * tp / denom if denom else 0.0)
    return sum(f1s) / 2


def _softmax(x: np.ndarray) -> np.ndarray:
    """Probabilities from logits; rows that already are probabilities come back unchanged in argmax."""
    x = np.asarray(x, dtype=np.float64)
    x = np.where(np.isfinite(x), x, -1e9)
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def dev_score(results: dict[str, dict[str, Any]]) -> float:
    """One number to pick a checkpoint by: the mean over the dev sets of each set's main figure."""
    figures = []
    for name, r in results.items():
        if name == "tfnt":
            figures.append(r["topic_macro_f1"])
        elif "sentiment_macro_f1" in r:
            figures.append(r["sentiment_macro_f1"] if name == "tfns" else r["sentiment_accuracy"])
    return float(np.mean(figures)) if figures else 0.0
