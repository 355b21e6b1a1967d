"""No configuration error, start-up log line or CLI message ever prints a password."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from pipeline.config import ConfigError, Settings, load_settings, redact
from tests.unit.pipeline.test_cli import finsent

PASSWORD = "hunter2-s3cret"
GOOD_URL = f"postgresql://finsent:{PASSWORD}@db.internal:5432/finsent"

# (settings as field -> value, what the message must still say)
CASES: dict[str, tuple[dict[str, Any], str]] = {
    "bad setting beside a password": (
        {"store_url": GOOD_URL, "sasl_password": PASSWORD, "window_size_s": -5},
        "window_size_s: Input should be greater than 0",
    ),
    "wrong scheme, password in the URL": (
        {"store_url": f"mysql://finsent:{PASSWORD}@db/finsent"},
        "store must be SQLite or PostgreSQL",
    ),
    "unparseable URL with a password": (
        {"store_url": f"postgresql://finsent:{PASSWORD}@db:port/finsent", "grace_s": -1},
        "store URL cannot be parsed",
    ),
    "SASL without a mechanism": (
        {"security_protocol": "SASL_SSL", "sasl_username": "svc", "sasl_password": PASSWORD},
        "SASL needs sasl_mechanism",
    ),
}


def assert_hidden(exc: ConfigError, expected: str) -> None:
    shown = f"{exc} {exc!r} {exc.__cause__} {exc.__cause__!r}"
    assert expected in str(exc)
    assert PASSWORD not in shown


@pytest.mark.parametrize("case", list(CASES))
def test_flags_never_print_a_password(case: str) -> None:
    values, expected = CASES[case]
    with pytest.raises(ConfigError) as caught:
        load_settings(**values)
    assert_hidden(caught.value, expected)


@pytest.mark.parametrize("case", list(CASES))
def test_environment_never_prints_a_password(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    values, expected = CASES[case]
    for name, value in values.items():
        monkeypatch.setenv(f"FINSENT_{name.upper()}", str(value))
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert_hidden(caught.value, expected)


def toml_value(value: Any) -> str:
    return json.dumps(value)  # a JSON string or integer is also a TOML one


@pytest.mark.parametrize("case", list(CASES))
def test_toml_file_never_prints_a_password(case: str, tmp_path: Path) -> None:
    values, expected = CASES[case]
    config = tmp_path / "finsent.toml"
    config.write_text("".join(f"{name} = {toml_value(value)}\n" for name, value in values.items()))
    with pytest.raises(ConfigError) as caught:
        load_settings(config_file=config)
    assert_hidden(caught.value, expected)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"sasl_password": 1234567, "grace_s": -1}, "sasl_password: Input should be a valid string"),
        ({"sasl_pasword": PASSWORD}, "sasl_pasword: Extra inputs are not permitted"),  # a misspelt secret
        ({"kafka_bootstrap": f"https://svc:{PASSWORD}@broker:9092", "grace_s": -1}, "grace_s"),
    ],
)
def test_secrets_of_the_wrong_type_or_name_are_not_quoted(values: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(**values)
    assert_hidden(caught.value, expected)
    assert "1234567" not in str(caught.value)


def test_start_up_log_line_masks_every_secret() -> None:
    settings = Settings(store_url=SecretStr(GOOD_URL), sasl_password=SecretStr(PASSWORD))
    shown = json.dumps(settings.describe())
    assert PASSWORD not in shown
    assert "postgresql://finsent:***@db.internal:5432/finsent" in shown and '"sasl_password": "**********"' in shown


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("postgresql://u:pw@h/db", "postgresql://u:***@h/db"),
        ("at 'postgresql+psycopg://u:p@ss@h:5432/db' now", "at 'postgresql+psycopg://u:***@h:5432/db' now"),
        ("redis://:pw@h", "redis://:***@h"),
        ("sqlite:///finsent.db and http://h:9108/metrics", "sqlite:///finsent.db and http://h:9108/metrics"),
    ],
)
def test_redact_masks_url_passwords(text: str, masked: str) -> None:
    assert redact(text) == masked


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["run", "--store", f"mysql://finsent:{PASSWORD}@db/finsent"], {}),
        (["run", "--window-size-s", "-5"], {"FINSENT_STORE_URL": f"postgresql://u:{PASSWORD}@db:port/x"}),
    ],
)
def test_cli_never_prints_a_password(args: list[str], env: dict[str, str]) -> None:
    result = finsent(*args, env=env)
    assert result.returncode == 2 and "error:" in result.stderr
    assert PASSWORD not in result.stderr + result.stdout
