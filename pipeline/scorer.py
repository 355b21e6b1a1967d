"""Scoring events with the ONNX model, and swapping in a new model while running."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from models.card import ModelCard, ModelError, card_path, read_card
from models.contract import SENTIMENT_LABELS, TOPIC_LABELS
from models.inference import OnnxModel
from pipeline.gate import SMOKE_TEXTS, check_probabilities, judge_candidate
from pipeline.targets import DEFAULT_MAX_TARGETS, plan_targets

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TargetScore:
    """What a message means for one company it names (its own pass, "target [SEP] text")."""

    sentiment: str
    p_negative: float
    p_neutral: float
    p_positive: float


@dataclass
class Score:
    """The model's verdict on one text; ``targets`` holds the per-company verdicts of a multi-company text."""

    sentiment: str
    p_negative: float
    p_neutral: float
    p_positive: float
    topic: str
    p_topic: float
    targets: dict[str, TargetScore] = field(default_factory=dict)
    targets_capped: bool = False  # more companies than passes allowed: the rest keep the message's label


class Scorer(Protocol):
    """What the daemon needs from a model; tests may pass their own."""

    version: str
    precision: str
    provider: str

    def score(self, texts: Sequence[str]) -> list[Score]: ...


def score_with_targets(scorer: Scorer, texts: Sequence[str], targets: Sequence[Mapping[str, str]]) -> list[Score]:
    """``scorer.score``, plus the per-company passes where the scorer reads targets and a text names several."""
    if any(len(t) >= 2 for t in targets) and getattr(scorer, "reads_targets", False):
        return scorer.score_targets(texts, targets)  # type: ignore[attr-defined,no-any-return]
    return scorer.score(texts)


class OnnxScorer:
    """An ``OnnxModel`` behind the ``Scorer`` protocol."""

    def __init__(
        self,
        model_dir: str | Path,
        *,
        threads: int = 0,
        provider: str = "auto",
        batch_size: int = 32,
        max_targets: int = DEFAULT_MAX_TARGETS,
    ) -> None:
        self.model = OnnxModel(model_dir, threads=threads, provider=provider)
        self.version = self.model.version
        self.precision = self.model.card.precision
        self.provider = self.model.provider
        self.batch_size = batch_size
        self.reads_targets = self.model.card.targets
        self.max_targets = max_targets

    def score(self, texts: Sequence[str]) -> list[Score]:
        preds = self.model.predict(texts, batch_size=self.batch_size)
        return scores_from(preds.sentiment, preds.topic)

    def score_targets(self, texts: Sequence[str], targets: Sequence[Mapping[str, str]]) -> list[Score]:
        """Scores, and for each text naming two or more companies one pass per company (at most
        ``max_targets``); the texts and their pairs in one length-sorted run, where a pair (the company, then
        the text) lands beside texts of its length instead of in a model call of its own; ``targets`` maps
        ticker → how the text names it."""
        pair_texts: list[str] = []
        pair_targets: list[str | None] = []
        owners: list[tuple[int, str]] = []
        capped_at: list[bool] = []
        for i, mentions in enumerate(targets):
            chosen, capped = plan_targets(list(mentions), self.max_targets)
            capped_at.append(capped)
            for ticker in chosen:
                pair_texts.append(texts[i])
                pair_targets.append(mentions[ticker])
                owners.append((i, ticker))
        n = len(texts)
        preds = self.model.predict(
            [*texts, *pair_texts], batch_size=self.batch_size, targets=[*([None] * n), *pair_targets]
        )
        scores = scores_from(preds.sentiment[:n], preds.topic[:n])
        for score, capped in zip(scores, capped_at, strict=True):
            score.targets_capped = capped
        for (i, ticker), row in zip(owners, preds.sentiment[n:], strict=True):
            label = SENTIMENT_LABELS[int(row.argmax())]
            scores[i].targets[ticker] = TargetScore(label, float(row[0]), float(row[1]), float(row[2]))
        return scores


def scores_from(sentiment: np.ndarray, topic: np.ndarray) -> list[Score]:
    """Probability rows -> ``Score`` objects (labels from the contract)."""
    s_idx = sentiment.argmax(axis=1)
    t_idx = topic.argmax(axis=1)
    return [
        Score(SENTIMENT_LABELS[s], float(row[0]), float(row[1]), float(row[2]), TOPIC_LABELS[ti], float(trow[ti]))
        for s, ti, row, trow in zip(s_idx, t_idx, sentiment, topic, strict=True)
    ]


class ModelRefused(ModelError):
    """A new model loaded fine but may not replace the serving one (quality gate, smoke check)."""


def smoke_check(scorer: OnnxScorer) -> str | None:
    """Score a few fixed texts: ``None`` when both heads give finite probabilities summing to 1, else what is wrong."""
    try:
        preds = scorer.model.predict(list(SMOKE_TEXTS), batch_size=len(SMOKE_TEXTS))
    except Exception as exc:  # any failure of the runtime is the answer
        return f"scoring the smoke-test texts failed ({type(exc).__name__}: {exc})"
    return check_probabilities(preds.sentiment, preds.topic, len(SMOKE_TEXTS))


class ModelWatcher:
    """Notices a new card version in the model directory and loads it, keeping the old on failure.

    A new version is served only when its files match the card's checksums, its labels are the
    contract's, it passes the quality gate against the serving card (``pipeline.gate``) and it
    answers the smoke check; otherwise ``poll`` raises and the card is not tried again until it changes.
    """

    def __init__(
        self,
        model_dir: str | Path,
        current_version: str,
        check_every_s: float,
        *,
        serving_card: ModelCard | None = None,
        max_drop: float = 0.01,
        **scorer_options: object,
    ) -> None:
        self.card = card_path(model_dir)
        self.model_dir = model_dir
        self.check_every_s = check_every_s
        self.options = scorer_options
        self.version = current_version
        self.serving_card = serving_card
        self.max_drop = max_drop
        self.candidate: ModelCard | None = None  # the card of the last version tried
        self.verdict = ""  # the gate's sentence on the last version served
        self.refused: tuple[float, int] | None = None
        self.next_check = time.monotonic() + check_every_s

    def _stamp(self) -> tuple[float, int] | None:
        try:
            st = self.card.stat()
        except OSError:
            return None
        return st.st_mtime, st.st_size

    def poll(self) -> OnnxScorer | None:
        """A freshly loaded scorer when the card's version changed and passed every check, else ``None``.

        Raises ``ModelError`` once per bad card (the same file is not tried again until it changes).
        """
        if self.check_every_s <= 0 or time.monotonic() < self.next_check:
            return None
        self.next_check = time.monotonic() + self.check_every_s
        stamp = self._stamp()
        if stamp is None or stamp == self.refused:
            return None
        self.candidate = None
        try:
            card = read_card(self.model_dir)
            if card.version == self.version:
                return None
            self.candidate = card
            scorer = OnnxScorer(self.model_dir, **self.options)  # type: ignore[arg-type]
            self.candidate = served = scorer.model.card  # the card whose files were verified and loaded
            verdict = judge_candidate(
                served.version,
                served.metrics,
                self.version,
                self.serving_card.metrics if self.serving_card else {},
                self.max_drop,
            )
            if not verdict.accepted:
                raise ModelRefused(verdict.reason)
            problem = smoke_check(scorer)
            if problem:
                raise ModelRefused(f"model {served.version} fails the smoke check: {problem}")
        except ModelError:
            self.refused = stamp
            raise
        self.version, self.serving_card, self.verdict = scorer.version, served, verdict.reason
        return scorer
