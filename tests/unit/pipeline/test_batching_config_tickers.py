from __future__ import annotations

from pathlib import Path

import pytest

from pipeline import config
from pipeline.batching import checkpoint_due
from pipeline.config import ConfigError, load_settings, scoring_layout
from pipeline.tickers import extract_tickers


@pytest.mark.parametrize(
    ("pending", "last", "now", "windows_due", "due"),
    [
        (0, 0, 5000, False, False),
        (5, 0, 999, False, False),
        (5, 0, 1000, True, True),
        (5, 0, 1000, False, True),
        (0, 0, 10, True, True),
    ],
)
def test_checkpoint_due(pending: int, last: int, now: int, windows_due: bool, due: bool) -> None:
    assert checkpoint_due(pending, last, now, interval_ms=1000, windows_due=windows_due) is due


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"window_size_s": -5}, "window_size_s: Input should be greater than 0 (got: -5)"),
        ({"metrics_port": 70000}, "metrics_port"),
        ({"input_topics": ["finsent.scored"]}, "must differ from the output topics"),
        ({"heartbeat_interval_ms": 5000}, "at most a third of session_timeout_ms"),
        ({"security_protocol": "SASL_SSL"}, "SASL needs sasl_mechanism"),
        ({"provider": "tpu"}, "provider"),
    ],
)
def test_bad_settings_name_the_value(overrides: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ConfigError) as info:
        load_settings(**overrides)
    assert message in str(info.value)


def test_env_flags_and_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "finsent.toml"
    config.write_text('group_id = "from-file"\nwindow_size_s = 120\nspike_z = 2.5\n')
    monkeypatch.setenv("FINSENT_INPUT_TOPICS", "a, b")
    monkeypatch.setenv("FINSENT_WATCHLIST", "aapl,$tsla")
    monkeypatch.setenv("FINSENT_WINDOW_SIZE_S", "30")
    s = load_settings(config, group_id="from-flag")
    assert s.input_topics == ["a", "b"] and s.watchlist == ["AAPL", "TSLA"]
    assert s.group_id == "from-flag" and s.spike_z == 2.5
    assert s.window_size_s == 120  # the file is explicit input, like a flag


def test_secrets_are_masked() -> None:
    s = load_settings(
        store_url="postgresql://finsent:hunter2@db/finsent",
        security_protocol="SASL_SSL",
        sasl_mechanism="PLAIN",
        sasl_username="u",
        sasl_password="p4ss",
    )
    shown = str(s.describe())
    assert "hunter2" not in shown and "p4ss" not in shown and "finsent:***@db" in shown
    assert s.kafka_security()["sasl_plain_password"] == "p4ss"


@pytest.mark.parametrize(
    ("text", "given", "watch", "expected"),
    [
        ("$AAPL falls", [], set(), ["AAPL"]),
        ("$aapl and $BRK.B", [], set(), ["AAPL", "BRK.B"]),
        ("price $100 and $5.50", [], set(), []),
        ("AAPL rallies, a good day", [], {"AAPL", "A"}, ["AAPL"]),
        ("nothing here", ["msft", "$nvda", "bad ticker"], set(), ["MSFT", "NVDA"]),
        ("US$AAPL", [], set(), []),
    ],
)
def test_extract_tickers(text: str, given: list[str], watch: set[str], expected: list[str]) -> None:
    assert extract_tickers(text, given, frozenset(watch)) == expected


def test_each_ticker_keeps_where_it_came_from_in_order_of_precedence() -> None:
    from pipeline.linker import default_linker
    from pipeline.tickers import ticker_sources

    text = "Nvidia and $AMD rally; MSFT flat as Apple shares slip"
    sources = ticker_sources(text, ["amd", "INTC"], frozenset({"MSFT"}), default_linker())
    assert sources == {"AAPL": "name", "AMD": "given", "INTC": "given", "MSFT": "watchlist", "NVDA": "name"}
    assert ticker_sources("Nvidia slides after guidance cut", linker=default_linker()) == {"NVDA": "name"}
    assert ticker_sources("Nvidia slides after guidance cut") == {}, "no linker: names are not linked"


@pytest.mark.parametrize(
    ("cpus", "asked", "layout"),
    [
        (1, (0, 0), (1, 1)),
        (2, (0, 0), (2, 2)),  # two workers, each with a thread per CPU
        (8, (0, 0), (2, 8)),
        (64, (0, 0), (2, 8)),  # at most 8 threads a worker
        (2, (1, 0), (1, 2)),
        (2, (0, 1), (2, 1)),  # threads asked for are kept
    ],
)
def test_the_scoring_layout_derives_from_the_cpus(
    monkeypatch: pytest.MonkeyPatch, cpus: int, asked: tuple[int, int], layout: tuple[int, int]
) -> None:
    monkeypatch.setattr(config, "usable_cpus", lambda: cpus)
    assert scoring_layout(*asked) == layout
