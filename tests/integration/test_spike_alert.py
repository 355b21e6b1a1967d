"""A negative burst on one ticker, scripted into the stream, raises exactly one alert."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.spikes import alert_id
from pipeline.tooling.broker import EmbeddedBroker
from tests.helpers import as_json, closed_window_starts, count, produce, read_topic, wait_until
from tests.integration.daemon_harness import daemon_settings, running_daemon

pytestmark = pytest.mark.integration

BASE_MS = 1_767_261_600_000
MIN = 60_000
CALM = [
    "ACME to present at the Barclays industrial conference on {d}",
    "ACME declares regular quarterly dividend of $0.{d}",
    "ACME schedules third-quarter earnings call for October {d}",
    "ACME names new head of investor relations, effective {d} March",
]
BAD = [
    "ACME shares plunge {d}% after fraud charges against top executives",
    "ACME slashes guidance, stock tumbles {d}% to a record low",
    "ACME downgraded to sell at Morgan Stanley, price target cut {d}%",
    "ACME misses earnings badly and warns of {d} job cuts as demand collapses",
]
OTHERS = [
    "Globex announces date of annual shareholder meeting, {d} May",
    "Initech to hold investor day on {d} June",
]


def stream() -> list[dict]:  # type: ignore[type-arg]
    out = []
    for w in range(12):
        texts = [CALM[i % 4].format(d=10 + w * 20 + i) for i in range(16)]
        if w == 9:  # the burst
            texts = [BAD[i % 4].format(d=10 + i) for i in range(24)]
        texts += [OTHERS[i % 2].format(d=w * 40 + i) for i in range(32)]
        for i, text in enumerate(texts):
            out.append(
                {
                    "id": f"w{w}-{i}",
                    "text": text,
                    "published_at": BASE_MS + w * MIN + i * 1000,
                    "tickers": ["ACME"] if text.startswith("ACME") else [],
                }
            )
    return out


def test_scripted_spike_raises_exactly_one_alert(
    broker: EmbeddedBroker, unique: str, tmp_path: Path, model_dir: Path
) -> None:
    settings = daemon_settings(
        broker.bootstrap,
        unique,
        tmp_path,
        model_dir,
        grace_s=5,
        spike_min_count=10,
        spike_min_history=3,
        spike_floor=0.5,
        watchlist=["ACME"],
    )
    messages = stream()
    produce(broker.bootstrap, settings.input_topics[0], as_json(messages))
    with running_daemon(settings) as daemon:
        wait_until(lambda: len(closed_window_starts(daemon.store)) >= 10, 90, "ten windows to close", 0.2)
        registry = daemon.metrics.registry
        wait_until(
            lambda: read_topic(broker.bootstrap, settings.alerts_topic, 1, timeout_s=5),
            30,
            "the alert on the alerts topic",
        )
        from_store = count(daemon.store, "alerts")
        ratio = registry.get_sample_value("finsent_window_negative_ratio", {"dimension": "ticker", "key": "ACME"})
    spike_id = alert_id("ticker", "ACME", BASE_MS + 9 * MIN)
    on_topic = [json.loads(r.value) for r in read_topic(broker.bootstrap, settings.alerts_topic, 1)]
    acme = [a for a in on_topic if a["dimension"] == "ticker" and a["key"] == "ACME"]
    assert [a["id"] for a in acme] == [spike_id], on_topic
    assert acme[0]["negative_ratio"] > 0.5 and acme[0]["n"] == 24
    assert acme[0]["example_ids"] and all(i.startswith("w9-") for i in acme[0]["example_ids"])
    assert not [a for a in on_topic if a["key"] in ("all",) or a["dimension"] == "source"], on_topic
    assert from_store == len(on_topic)
    assert ratio is not None and ratio < 0.5, "the gauge shows the last closed window, after the burst"
