"""Scoring events with the ONNX model, and swapping in a new model while running."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from models.card import ModelError, card_path, read_card
from models.contract import SENTIMENT_LABELS, TOPIC_LABELS
from models.inference import OnnxModel

log = logging.getLogger(__name__)


@dataclass
class Score:
    """The model's verdict on one text."""

    sentiment: str
    p_negative: float
    p_neutral: float
    p_positive: float
    topic: str
    p_topic: float


class Scorer(Protocol):
    """What the daemon needs from a model; tests may pass their own."""

    version: str
    precision: str
    provider: str

    def score(self, texts: Sequence[str]) -> list[Score]: ...


class OnnxScorer:
    """An ``OnnxModel`` behind the ``Scorer`` protocol."""

    def __init__(
        self, model_dir: str | Path, *, threads: int = 0, provider: str = "auto", batch_size: int = 32
    ) -> None:
        self.model = OnnxModel(model_dir, threads=threads, provider=provider)
        self.version = self.model.version
        self.precision = self.model.card.precision
        self.provider = self.model.provider
        self.batch_size = batch_size

    def score(self, texts: Sequence[str]) -> list[Score]:
        preds = self.model.predict(texts, batch_size=self.batch_size)
        return scores_from(preds.sentiment, preds.topic)


def scores_from(sentiment: np.ndarray, topic: np.ndarray) -> list[Score]:
    """Probability rows -> ``Score`` objects (labels from the contract)."""
    s_idx = sentiment.argmax(axis=1)
    t_idx = topic.argmax(axis=1)
    return [
        Score(SENTIMENT_LABELS[s], float(row[0]), float(row[1]), float(row[2]), TOPIC_LABELS[ti], float(trow[ti]))
        for s, ti, row, trow in zip(s_idx, t_idx, sentiment, topic, strict=True)
    ]


class ModelWatcher:
    """Notices a new card version in the model directory and loads it, keeping the old on failure."""

    def __init__(
        self, model_dir: str | Path, current_version: str, check_every_s: float, **scorer_options: object
    ) -> None:
        self.card = card_path(model_dir)
        self.model_dir = model_dir
        self.check_every_s = check_every_s
        self.options = scorer_options
        self.version = current_version
        self.refused: tuple[float, int] | None = None
        self.next_check = time.monotonic() + check_every_s

    def _stamp(self) -> tuple[float, int] | None:
        try:
            st = self.card.stat()
        except OSError:
            return None
        return st.st_mtime, st.st_size

    def poll(self) -> OnnxScorer | None:
        """A freshly loaded scorer when the card's version changed, else ``None``.

        Raises ``ModelError`` once per bad card (the same file is not tried again until it changes).
        """
        if self.check_every_s <= 0 or time.monotonic() < self.next_check:
            return None
        self.next_check = time.monotonic() + self.check_every_s
        stamp = self._stamp()
        if stamp is None or stamp == self.refused:
            return None
        try:
            version = read_card(self.model_dir).version
        except ModelError:
            self.refused = stamp
            raise
        if version == self.version:
            return None
        try:
            scorer = OnnxScorer(self.model_dir, **self.options)  # type: ignore[arg-type]
        except ModelError:
            self.refused = stamp
            raise
        self.version = scorer.version
        return scorer
