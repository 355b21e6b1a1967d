"""The shipped model's own per-company judgement, through the real broker, daemon and store.

``test_ticker_sentiment`` checks the wiring with a rule-based scorer; this one lets the default
artifact decide. Six two-company headlines, each with one company moving up and the other down,
written for this test (not drawn from any training or test set): each company's window must count
the company's own direction. One (headline, company) pair of the twelve may be missed — the model
is a classifier, not a rule — but a model that hands every company the message's label gets at
most half of them right.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.card import read_card
from pipeline.tooling.broker import EmbeddedBroker
from tests.helpers import as_json, count, produce, read_topic, wait_until, window_totals
from tests.integration.daemon_harness import daemon_settings, running_daemon

pytestmark = pytest.mark.integration

BASE_MS = 1_767_265_200_000  # 2026-01-01T11:00:00Z
HEADLINES = [
    ("$AAPL beats revenue estimates while $MSFT misses on cloud growth", {"AAPL": "positive", "MSFT": "negative"}),
    ("$XOM shares slump after output cut; $CVX rallies on record profit", {"XOM": "negative", "CVX": "positive"}),
    ("$NFLX soars on subscriber surge as $DIS tumbles on weak parks outlook",
     {"NFLX": "positive", "DIS": "negative"}),
    ("$JPM raises dividend, but $WFC faces new fine over fake accounts", {"JPM": "positive", "WFC": "negative"}),
    ("$INTC plunges on guidance cut while $AMD jumps on data-center demand", {"INTC": "negative", "AMD": "positive"}),
    ("$GM recalls 500,000 trucks; $F gains after upbeat sales report", {"GM": "negative", "F": "positive"}),
]  # fmt: skip


def test_each_company_gets_its_own_direction_from_the_shipped_model(
    broker: EmbeddedBroker, unique: str, tmp_path: Path, model_dir: Path
) -> None:
    assert read_card(model_dir).targets, f"the model at {model_dir} was not trained on company targets"
    settings = daemon_settings(broker.bootstrap, unique, tmp_path, model_dir)
    messages = [
        {"id": f"h{i}", "text": text, "published_at": BASE_MS + i * 1000} for i, (text, _) in enumerate(HEADLINES)
    ]
    produce(broker.bootstrap, settings.input_topics[0], as_json(messages))
    with running_daemon(settings) as daemon:
        wait_until(lambda: count(daemon.store, "messages") == len(messages) and daemon.pending.records == 0, 120,
                   "every headline committed")  # fmt: skip
        tickers = window_totals(daemon.store, "ticker")
        scored = {
            r.key.decode(): json.loads(r.value)
            for r in read_topic(broker.bootstrap, settings.scored_topic, len(messages))
        }

    misses = []
    for i, (text, expected) in enumerate(HEADLINES):
        got = scored[f"h{i}"]["ticker_sentiment"]
        assert set(got) == set(expected), f"{text!r}: tickers {sorted(got)}"
        misses += [f"{text!r}: {t} is {got[t]}, expected {label}" for t, label in expected.items() if got[t] != label]
    assert len(misses) <= 1, "per-company labels missed:\n" + "\n".join(misses)

    for i, (_, expected) in enumerate(HEADLINES):
        for ticker, label in expected.items():
            if scored[f"h{i}"]["ticker_sentiment"][ticker] != label:
                continue
            counted = next(v for (key, _), v in tickers.items() if key == ticker)
            assert counted[f"n_{label}"] == 1, f"{ticker}'s window counts its own label, not the message's"
