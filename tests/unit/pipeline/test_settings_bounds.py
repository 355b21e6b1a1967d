"""Settings that cannot work are refused when the settings are built, and ``finsent run --help`` says what works.

A value that divides by zero, never closes a window, never flushes, never alerts or overflows a date is
refused with one sentence naming the setting and the value; every flag of ``finsent run`` names its
``FINSENT_*`` variable, its default and its allowed range as the settings model has them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.config import ConfigError, Settings, load_settings


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("spike_min_std", "0", "spike_min_std: Input should be greater than 0"),  # the spike score divides by it
        ("commit_interval_ms", "100000000", "commit_interval_ms: Input should be less than or equal to 60000"),
        ("progress_interval_ms", "100000000", "progress_interval_ms: Input should be less than or equal to 60000"),
        ("window_size_s", "100000000000", "window_size_s: Input should be less than or equal to 604800"),
        ("grace_s", "100000000000", "grace_s: Input should be less than or equal to 604800"),
        ("idle_partition_s", "100000000", "idle_partition_s: Input should be less than or equal to 86400"),
        ("spike_floor", "1", "spike_floor: Input should be less than 1"),
        ("spike_history_windows", "100000000", "spike_history_windows: Input should be less than or equal to 10000"),
        ("spike_cooldown_s", "100000000000", "spike_cooldown_s: Input should be less than or equal to 2592000"),
        ("windows_retention_s", "100000000000", "windows_retention_s: Input should be less than or equal to"),
        ("novelty_horizon_s", "100000000000", "novelty_horizon_s: Input should be less than or equal to"),
        ("liveness_timeout_s", "0.001", "liveness_timeout_s: Input should be greater than or equal to 1"),
        ("broker_max_message_bytes", "100", "broker_max_message_bytes: Input should be greater than or equal to 4096"),
    ],
)
def test_a_setting_that_cannot_work_is_refused_in_one_sentence(
    setting: str, value: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(f"FINSENT_{setting.upper()}", value)
    with pytest.raises(ConfigError) as refused:
        load_settings()
    assert message in str(refused.value) and f"(got: '{value}')" in str(refused.value)
    assert "\n" not in str(refused.value)


def test_a_history_too_short_to_ever_leave_the_cold_start_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"spike_min_history \(61\) must be at most spike_history_windows \(60\)"):
        load_settings(spike_min_history=61)


def test_the_defaults_work() -> None:
    assert load_settings().spike_min_std > 0


FLAGGED = [
    "kafka_bootstrap",
    "input_topics",
    "group_id",
    "store_url",
    "model_dir",
    "metrics_host",
    "metrics_port",
    "window_size_s",
    "grace_s",
    "watchlist",
    "batch_size",
    "model_gate_max_drop",
]


def rendered_default(value: Any) -> str:
    value = getattr(value, "get_secret_value", lambda: value)()
    if isinstance(value, Path):
        return "/".join(value.parts[-3:])  # models/artifacts/finsent-vN
    if isinstance(value, list):
        return ",".join(value) or "none"
    return str(value)


def rendered_range(setting: str) -> str:
    """``0 to 65535``, ``more than 0, at most 604800``, ``at least 1``: the bounds the model enforces."""
    b = {
        k: getattr(m, k)
        for m in Settings.model_fields[setting].metadata
        for k in ("ge", "gt", "le", "lt")
        if getattr(m, k, None) is not None
    }
    if "ge" in b and "le" in b:
        return f"{b['ge']} to {b['le']}"
    words = {"ge": "at least", "gt": "more than", "le": "at most", "lt": "less than"}
    return ", ".join(f"{words[k]} {b[k]}" for k in ("ge", "gt", "le", "lt") if k in b)


def test_run_help_names_each_flags_variable_default_and_range_from_the_settings_model() -> None:
    result = CliRunner().invoke(app, ["run", "--help"], env={"COLUMNS": "600", "TERM": "dumb"})
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.lstrip("│ ").startswith("--")]
    assert len(lines) == len(FLAGGED) + 2, "every flag but --config and --help sets one setting"
    for setting in FLAGGED:
        line = next((ln for ln in lines if f"FINSENT_{setting.upper()};" in ln), None)
        assert line is not None, f"no flag names FINSENT_{setting.upper()}"
        assert f"default {rendered_default(Settings.model_fields[setting].default)}" in line, line
        assert rendered_range(setting) in line, line
        assert " ." not in line and "[default" not in line, f"a note was lost to markup: {line}"
