"""How a message names each of its companies, and how many per-company passes it may cost."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pytest

from pipeline.linker import default_linker
from pipeline.schema import Event, Origin
from pipeline.scorer import Score, score_with_targets
from pipeline.targets import first_batch, mentions, passes, plan_targets


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


def _event(tickers: list[str]) -> Event:
    return Event("m", "text", 0, None, "news", tickers, Origin("t", 0, 0, 0, None))


def test_a_text_costs_a_pass_per_company_only_where_the_model_reads_companies() -> None:
    reads = Reads()
    assert passes(_event([]), reads) == 1
    assert passes(_event(["AAPL"]), reads) == 1, "one company: the message's own pass"
    assert passes(_event(["AAPL", "MSFT"]), reads) == 3
    assert passes(_event([f"T{i}" for i in range(20)]), reads) == 9, "at most max_targets more"
    reads.max_targets = 0  # type: ignore[attr-defined]
    assert passes(_event(["AAPL", "MSFT"]), reads) == 1
    assert passes(_event(["AAPL", "MSFT"]), Plain()) == 1


@pytest.mark.parametrize(
    ("costs", "workers", "max_texts", "size"),
    [
        ([], 2, 256, 0),
        ([1] * 10, 2, 256, 5),  # plain texts: halves, as before
        ([1] * 9, 2, 256, 5),
        ([1] * 300, 1, 256, 256),  # one worker: a full batch at most
        ([9, 9, 1, 1, 1, 1, 1, 1, 1, 1], 2, 256, 1),  # 26 passes: 9 against 17 is nearer even than 18 against 8
        ([1, 9], 2, 256, 1),  # the heavy text last: the other free worker gets it, not nothing
        ([1, 1, 1, 9], 2, 256, 3),
        ([1] * 7, 3, 256, 2),  # three workers: 2 + 3 + 2
        ([1, 1, 1, 1, 1, 1, 1, 1, 9, 9], 2, 256, 9),  # the other way round: eight plain and one heavy
        ([9], 2, 256, 1),  # never nothing
        ([9] * 10, 2, 3, 3),  # at most max_texts texts
    ],
)
def test_free_workers_share_the_queue_by_passes(costs: list[int], workers: int, max_texts: int, size: int) -> None:
    assert first_batch(costs, workers, max_texts) == size
