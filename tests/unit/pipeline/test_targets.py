"""How a message names each of its companies, and how many per-company passes it may cost."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pytest

from pipeline.linker import default_linker
from pipeline.scorer import Score, score_with_targets
from pipeline.targets import mentions, plan_targets


@pytest.mark.parametrize(
    ("text", "tickers", "expected"),
    [
        ("$AAPL beats, $msft misses", ["AAPL", "MSFT"], {"AAPL": "$AAPL", "MSFT": "$msft"}),
        ("AAPL up, MSFT down", ["AAPL", "MSFT"], {"AAPL": "AAPL", "MSFT": "MSFT"}),
        ("Apple shares beat while Nvidia slides", ["AAPL", "NVDA"], {"AAPL": "Apple", "NVDA": "Nvidia"}),
        ("Markets rally", ["AAPL", "TSLA"], {"AAPL": "AAPL", "TSLA": "TSLA"}),  # given only in the field
        ("XAAPL and $AAPLX", ["AAPL", "MSFT"], {"AAPL": "AAPL", "MSFT": "MSFT"}),  # no partial words
    ],
)
def test_each_ticker_is_read_as_the_text_writes_it(text: str, tickers: list[str], expected: dict[str, str]) -> None:
    assert mentions(text, tickers, default_linker()) == expected


@pytest.mark.parametrize(
    ("n", "cap", "passes", "capped"),
    [(0, 8, 0, False), (1, 8, 0, False), (2, 8, 2, False), (8, 8, 8, False), (32, 8, 8, True), (3, 0, 0, True)],
)
def test_passes_are_bounded(n: int, cap: int, passes: int, capped: bool) -> None:
    chosen, was_capped = plan_targets([f"T{i}" for i in range(n)], cap)
    assert len(chosen) == passes and was_capped is capped


@dataclass
class Plain:
    """A scorer without per-company passes (an older model, or a test double)."""

    version: str = "plain"
    precision: str = "fp32"
    provider: str = "cpu"

    def score(self, texts: Sequence[str]) -> list[Score]:
        return [Score("neutral", 0.1, 0.8, 0.1, "Markets", 0.9) for _ in texts]


class Reads(Plain):
    reads_targets = True

    def score_targets(self, texts: Sequence[str], targets: Sequence[Mapping[str, str]]) -> list[Score]:
        scores = self.score(texts)
        for s in scores:
            s.sentiment = "targets"
        return scores


def test_targets_are_only_asked_of_a_model_that_reads_them() -> None:
    two = [{"AAPL": "$AAPL", "MSFT": "$MSFT"}]
    assert score_with_targets(Plain(), ["x"], two)[0].targets == {}
    assert score_with_targets(Reads(), ["x"], two)[0].sentiment == "targets"
    assert score_with_targets(Reads(), ["x"], [{"AAPL": "$AAPL"}])[0].sentiment == "neutral", "one company: one pass"
