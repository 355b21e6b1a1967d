from __future__ import annotations

import json

from pipeline.linker import default_linker
from pipeline.schema import Event, Origin, parse_record
from pipeline.tooling.synthetic import TEMPLATES, SpikeScript, SyntheticConfig, SyntheticStream

NOW = 1_767_261_600_000


def test_templates_cover_every_topic_and_sentiment() -> None:
    from models.contract import TOPIC_LABELS

    assert set(TEMPLATES) == set(TOPIC_LABELS)
    assert all(len(t) == 3 and all(t) for t in TEMPLATES.values())


def test_stream_is_valid_mostly_and_deterministic() -> None:
    a = list(SyntheticStream(SyntheticConfig(seed=3)).take(2000, NOW, 50))
    b = list(SyntheticStream(SyntheticConfig(seed=3)).take(2000, NOW, 50))
    assert a == b
    parsed = [parse_record(v, Origin("t", 0, i), now_ms=NOW + 10**6) for i, v in enumerate(a)]
    events = [p for p in parsed if isinstance(p, Event)]
    assert 0.97 * len(a) < len(events) < len(a), "about 1% malformed"
    texts = [e.text for e in events]
    assert sum(t.startswith("RT ") for t in texts) > 50, "some stories are repeated"
    assert {e.kind for e in events} == {"news", "comment"}


def test_spike_window_is_dominated_by_its_ticker_found_by_name() -> None:
    stream = SyntheticStream(SyntheticConfig(seed=1, spike=SpikeScript("NVDA", start_s=10, duration_s=10, share=0.5)))
    values = [v for v in stream.take(600, NOW, 50) if v.startswith(b'{"id"')]
    linker = default_linker()
    events = [parse_record(v, Origin("t", 0, i), now_ms=NOW + 10**6, linker=linker) for i, v in enumerate(values)]
    before = [e for e in events if isinstance(e, Event) and e.event_time_ms - NOW < 10_000]
    during = [e for e in events if isinstance(e, Event) and 10_000 <= e.event_time_ms - NOW < 20_000]
    assert sum("NVDA" in e.tickers for e in before) < 0.15 * len(before)
    assert sum("NVDA" in e.tickers for e in during) > 0.4 * len(during)
    sent = [json.loads(v) for v in values]
    assert sum(bool(m["tickers"]) for m in sent) < 0.3 * len(sent), "most messages name companies in plain text"
    by_name = [e for e in events if isinstance(e, Event) and "name" in e.ticker_sources.values()]
    assert len(by_name) > 0.3 * len(events), "the linker finds the companies the text names"
