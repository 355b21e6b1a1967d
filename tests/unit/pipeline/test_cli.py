"""Start-up failures are one readable sentence and a non-zero exit, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT


def finsent(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("FINSENT_")}
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**base, **(env or {})},
    )


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["run", "--window-size-s", "-5"], {}, "window_size_s: Input should be greater than 0 (got: -5)"),
        (["run"], {"FINSENT_SPIKE_Z": "lots"}, "spike_z: Input should be a valid number"),
        (["run", "--store", "mysql://db/x"], {}, "store must be SQLite or PostgreSQL"),
        (["run"], {"FINSENT_SPIKE_MIN_STD": "0"}, "spike_min_std: Input should be greater than 0 (got: '0')"),
    ],
)
def test_bad_settings_stop_at_start_up(args: list[str], env: dict[str, str], message: str) -> None:
    result = finsent(*args, env=env)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_broken_model_stops_at_start_up(tmp_path: Path) -> None:
    (tmp_path / "card.json").write_text('{"version": "x"')
    result = finsent("run", "--model", str(tmp_path))
    assert result.returncode == 2 and "is not a valid card" in result.stderr and "Traceback" not in result.stderr
    result = finsent("run", "--model", str(tmp_path / "nowhere"))
    assert result.returncode == 2 and "no model card at" in result.stderr


@pytest.mark.parametrize(
    "command", ["run", "replay", "train", "export", "evaluate", "dashboard", "demo", "broker", "bench"]
)
def test_every_subcommand_explains_itself(command: str) -> None:
    result = finsent(command, "--help")
    assert result.returncode == 0 and "Usage:" in result.stdout and len(result.stdout) > 300


def test_run_help_names_the_environment_variable_of_each_flag() -> None:
    result = finsent("run", "--help", env={"COLUMNS": "200"})
    for variable in ("FINSENT_KAFKA_BOOTSTRAP", "FINSENT_STORE_URL", "FINSENT_MODEL_DIR", "FINSENT_WATCHLIST"):
        assert variable in result.stdout, f"{variable} missing from 'finsent run --help'"
