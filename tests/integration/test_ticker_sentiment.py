"""A message naming two companies counts each under its own label, through the real broker and store.

The scorer here reads company targets the way a target-trained model does, by rule (the clause
that names the company decides), so the test checks the wiring exactly: the per-company passes, the
ticker windows, the topic and ``all`` windows, ``finsent.scored``, ``message_tickers`` and the
evidence an alert under a ticker is made of. The shipped model's own per-company accuracy is
measured by ``finsent evaluate`` and the quality tests.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from pipeline import tables as t
from pipeline.closing import evidence
from pipeline.scorer import Score, TargetScore
from pipeline.tooling.broker import EmbeddedBroker
from tests.helpers import as_json, count, produce, read_topic, wait_until, window_totals
from tests.integration.daemon_harness import daemon_settings, running_daemon

pytestmark = pytest.mark.integration

BASE_MS = 1_767_261_600_000  # 2026-01-01T10:00:00Z
WORDS = {"beats": "positive", "soars": "positive", "misses": "negative", "slumps": "negative"}


def _label(clause: str) -> str:
    return next((label for word, label in WORDS.items() if word in clause), "neutral")


class ClauseScorer:
    """Message label: neutral; a company's label: the first sentiment word of the clause naming it."""

    version = "clause-rules"
    precision = "fp32"
    provider = "cpu"
    reads_targets = True
    max_targets = 8

    def __init__(self) -> None:
        self.passes = 0

    def score(self, texts: Sequence[str]) -> list[Score]:
        return [Score("neutral", 0.1, 0.8, 0.1, "Stock Movement", 0.9) for _ in texts]

    def score_targets(self, texts: Sequence[str], targets: Sequence[Mapping[str, str]]) -> list[Score]:
        scores = self.score(texts)
        for text, mentions, score in zip(texts, targets, scores, strict=True):
            chosen = list(mentions)[: self.max_targets] if len(mentions) >= 2 else []
            score.targets_capped = len(mentions) > self.max_targets
            for ticker in chosen:
                self.passes += 1
                clause = next(c for c in re.split(r"[,;]| while ", text) if mentions[ticker] in c)
                label = _label(clause)
                p = {"negative": (0.8, 0.1, 0.1), "neutral": (0.1, 0.8, 0.1), "positive": (0.1, 0.1, 0.8)}[label]
                score.targets[ticker] = TargetScore(label, *p)
        return scores


def test_each_company_counts_its_own_label(
    broker: EmbeddedBroker, unique: str, tmp_path: Path, model_dir: Path
) -> None:
    settings = daemon_settings(broker.bootstrap, unique, tmp_path, model_dir)
    pairs = [("$AAPL beats estimates, $MSFT misses on cloud", {"AAPL": "positive", "MSFT": "negative"}),
             ("$MSFT soars while $AAPL slumps", {"AAPL": "negative", "MSFT": "positive"}),
             ("$NVDA beats; $AMD beats", {"NVDA": "positive", "AMD": "positive"})]  # fmt: skip
    single = "$TSLA misses delivery estimates"  # one company: one pass, the message's label
    many = " ".join(f"${chr(65 + i)}{chr(65 + i)}X beats" for i in range(12))  # 12 companies: capped
    messages = [
        {"id": f"m{i}", "text": text, "published_at": BASE_MS + i * 1000}
        for i, text in enumerate([p[0] for p in pairs] * 4 + [single, many])
    ]
    produce(broker.bootstrap, settings.input_topics[0], as_json(messages))
    scorer = ClauseScorer()
    with running_daemon(settings, scorer=scorer) as daemon:
        wait_until(lambda: count(daemon.store, "messages") == len(messages) and daemon.pending.records == 0, 60,
                   "every message committed")  # fmt: skip
        tickers = window_totals(daemon.store, "ticker")
        topics = window_totals(daemon.store, "topic")
        with daemon.store.engine.connect() as conn:
            rows = {(r.message_id, r.ticker): (r.sentiment, r.method) for r in conn.execute(select(t.message_tickers))}
            start, end = datetime.fromtimestamp(BASE_MS / 1000, UTC), datetime.fromtimestamp(BASE_MS / 1000 + 60, UTC)
            msft_evidence = evidence(conn, "ticker", "MSFT", start, end)
            aapl_evidence = evidence(conn, "ticker", "AAPL", start, end)
        company_passes = daemon.metrics.company_passes._value.get()
        scored = {
            r.key.decode(): json.loads(r.value)
            for r in read_topic(broker.bootstrap, settings.scored_topic, len(messages))
        }

    def totals(ticker: str) -> dict[str, float]:
        return next(v for (key, _), v in tickers.items() if key == ticker)

    assert totals("AAPL")["n_positive"] == 4 and totals("AAPL")["n_negative"] == 4
    assert totals("MSFT")["n_positive"] == 4 and totals("MSFT")["n_negative"] == 4
    assert totals("NVDA")["n_positive"] == 4 and totals("AMD")["n_positive"] == 4
    assert totals("TSLA")["n_neutral"] == 1, "a single company keeps the message's label"
    assert sum(v["n_neutral"] for v in topics.values()) == len(messages), "topic windows count the message label"

    assert scored["m0"]["ticker_sentiment"] == {"AAPL": "positive", "MSFT": "negative"}
    assert scored["m1"]["ticker_sentiment"] == {"AAPL": "negative", "MSFT": "positive"}
    assert set(scored["m0"]["ticker_sentiment_p"]) == {"AAPL", "MSFT"}
    assert scored["m12"]["ticker_sentiment"] == {"TSLA": "neutral"} and scored["m12"]["ticker_sentiment_p"] == {}
    assert scored["m13"]["ticker_sentiment_capped"] is True and len(scored["m13"]["ticker_sentiment_p"]) == 8
    assert "ticker_sentiment_capped" not in scored["m0"]
    assert scorer.passes == 4 * 6 + 8, "two passes per two-company message, none for one company, 8 at most"
    assert company_passes == scorer.passes, "finsent_company_passes_total counts the model's extra work"

    assert rows[("m0", "AAPL")] == ("positive", "target") and rows[("m0", "MSFT")] == ("negative", "target")
    assert rows[("m12", "TSLA")] == ("neutral", "message")
    assert msft_evidence == {"m0", "m3", "m6", "m9"}, "an alert on MSFT is made of messages bad for MSFT"
    assert aapl_evidence == {"m1", "m4", "m7", "m10"}
