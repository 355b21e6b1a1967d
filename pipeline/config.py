"""Daemon settings: ``FINSENT_*`` environment variables, an optional TOML file, CLI flags on top.

Every value is validated when the settings are built, with the bad value in the
message; secrets are ``SecretStr`` and print masked, and no message, log line or
traceback quotes a secret setting or the password of a URL (``redact``).
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from models.card import SHIPPED_MODEL_DIR
from pipeline.engine import mask_url

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
Provider = Literal["auto", "cpu", "cuda"]
MASK = "**********"
# scheme://user:PASSWORD@ — greedy up to the last "@" of the token, so a raw "@" in a password is hidden too
_URL_PASSWORD = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@'\"]*:)[^\s'\"]*@")


def redact(text: str) -> str:
    """``text`` with the password of every URL in it masked (``postgresql://u:***@host``)."""
    return _URL_PASSWORD.sub(r"\g<head>***@", text)


DAY_S = 24 * 3600
WEEK_S = 7 * DAY_S
TEN_YEARS_S = 3650 * DAY_S


class ConfigError(ValueError):
    """The configuration cannot be used; the message names the setting and the value."""


def _split_csv(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """Everything ``finsent run`` needs. Field names map to ``FINSENT_<NAME>`` variables."""

    # hide_input_in_errors: a ValidationError's own text (a traceback, a chained cause) quotes no value
    model_config = SettingsConfigDict(
        env_prefix="FINSENT_", extra="forbid", validate_default=True, hide_input_in_errors=True
    )

    # Kafka
    kafka_bootstrap: str = Field("localhost:9092", description="Kafka bootstrap servers, comma-separated")
    input_topics: Annotated[list[str], NoDecode] = Field(
        ["finsent.news"], description="Input topic, repeatable; the variable takes a comma-separated list"
    )
    group_id: str = Field("finsent-scorer", description="Consumer group; a store serves one")
    scored_topic: str = "finsent.scored"
    alerts_topic: str = "finsent.alerts"
    dlq_topic: str = "finsent.dlq"
    client_id: str = "finsent"
    security_protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    session_timeout_ms: int = Field(6000, ge=1000, le=1_800_000)
    heartbeat_interval_ms: int = Field(1000, ge=100)
    max_poll_interval_ms: int = Field(30000, ge=1000, le=3_600_000)
    # longest a fetch waits at the broker for data: Apache Kafka answers as soon as a record arrives, but
    # some Kafka-protocol brokers (Tansu) hold every fetch this long, which then adds to each event's latency
    fetch_max_wait_ms: int = Field(50, ge=0, le=500)
    max_message_bytes: int = Field(1 << 20, ge=1024)
    # the largest record the output topics take (the brokers' or topics' max.message.bytes, headers included):
    # outputs are sized against it, and a dead letter that would not fit is sent truncated (pipeline.sinks)
    broker_max_message_bytes: int = Field(1_048_588, ge=4096, le=2**31 - 1)

    # store
    store_url: SecretStr = Field(
        SecretStr("sqlite:///finsent.db"), description="Store: sqlite:///PATH or postgresql://USER@HOST/DB"
    )
    messages_retention_s: int = Field(7 * 24 * 3600, ge=60, le=TEN_YEARS_S)
    windows_retention_s: int = Field(90 * 24 * 3600, ge=3600, le=TEN_YEARS_S)
    max_stored_text_chars: int = Field(4000, ge=64)

    # model and scoring
    model_dir: Path = Field(SHIPPED_MODEL_DIR, description="Model artifact folder")
    provider: Provider = "auto"
    # scoring workers (each runs one batch at a time) and ONNX Runtime threads per worker; 0 = from the CPUs
    # (scoring_layout)
    scoring_workers: int = Field(0, ge=0, le=16)
    threads: int = Field(0, ge=0, le=256)
    batch_size: int = Field(256, ge=1, le=4096, description="Texts per scoring batch at most")
    max_targets: int = Field(
        8,
        ge=0,
        le=32,
        description="Per-company passes per message naming several companies (a model trained on company targets); "
        "companies beyond it keep the message's label and the event says ticker_sentiment_capped; 0 = none",
    )
    commit_interval_ms: int = Field(1000, ge=10, le=60_000)
    reload_check_s: float = Field(5.0, ge=0)
    # quality gate of a hot swap: refuse a model whose test macro-F1 of either task is more than this below
    # the serving model's (pipeline.gate); a model chosen at start-up (--model) is not gated
    model_gate_max_drop: float = Field(
        0.01,
        ge=0,
        le=1,
        description="A hot swap is refused when the new model's test macro-F1 of either task is more than this "
        "below the serving model's; the model chosen at start is not gated",
    )

    # windows, tickers, novelty
    window_size_s: int = Field(60, gt=0, le=WEEK_S, description="Tumbling window length")
    grace_s: int = Field(30, ge=0, le=WEEK_S, description="How late an event may be and still count")
    idle_partition_s: int = Field(10, ge=1, le=DAY_S)
    progress_interval_ms: int = Field(1000, ge=100, le=60_000)
    watchlist: Annotated[list[str], NoDecode] = Field([], description="Tickers to watch, comma-separated")
    link_company_names: bool = True
    novelty_horizon_s: int = Field(6 * 3600, ge=0, le=365 * DAY_S)
    novelty_max_stories: int = Field(200_000, ge=1000, le=10_000_000)
    max_future_s: int = Field(300, ge=0, le=7 * 24 * 3600)

    # spikes
    spike_min_count: int = Field(20, ge=1)
    spike_z: float = Field(3.0, ge=0, le=20)
    spike_floor: float = Field(0.35, ge=0, lt=1)  # 1 would never alert: no ratio exceeds it
    spike_cold_start_ratio: float = Field(0.6, ge=0, le=1)
    spike_history_windows: int = Field(60, ge=1, le=10_000)
    spike_min_history: int = Field(5, ge=0)
    spike_min_std: float = Field(0.05, gt=0, le=1)  # the spike score divides by it
    spike_cooldown_s: int = Field(600, ge=0, le=30 * DAY_S)
    incident_span_windows: int = Field(2, ge=0, le=60)  # later windows whose alerts may join an incident

    # HTTP
    metrics_host: str = Field("0.0.0.0", description="Bind address of /metrics, /healthz and /readyz")
    metrics_port: int = Field(
        9108, ge=0, le=65535, description="Port of /metrics, /healthz and /readyz; 0 = any free port"
    )
    liveness_timeout_s: float = Field(60.0, ge=1, le=3600)

    data_dir: Path | None = None

    @field_validator("store_url")
    @classmethod
    def _store_scheme(cls, value: SecretStr) -> SecretStr:
        scheme = value.get_secret_value().split(":", 1)[0].split("+", 1)[0]
        if scheme not in ("sqlite", "postgresql", "postgres"):
            raise ValueError(f"store must be SQLite or PostgreSQL (sqlite:///PATH or postgresql://…), not {scheme!r}")
        try:
            make_url(value.get_secret_value())
        except (ArgumentError, ValueError):
            # the parser's own message quotes the URL's parts: say what a good one looks like instead
            raise ValueError(
                "store URL cannot be parsed: write sqlite:///PATH or postgresql://USER@HOST:PORT/DB, "
                "the password after USER and a colon, percent-encoded"
            ) from None
        return value

    @field_validator("input_topics", "watchlist", mode="before")
    @classmethod
    def _csv(cls, value: Any) -> Any:
        return _split_csv(value)

    @field_validator("watchlist")
    @classmethod
    def _upper(cls, value: list[str]) -> list[str]:
        return sorted({v.lstrip("$").upper() for v in value})

    @field_validator("input_topics")
    @classmethod
    def _topics(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one input topic is needed")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.heartbeat_interval_ms * 3 > self.session_timeout_ms:
            raise ValueError(
                f"heartbeat_interval_ms ({self.heartbeat_interval_ms}) must be at most a third of "
                f"session_timeout_ms ({self.session_timeout_ms})"
            )
        outputs = {self.scored_topic, self.alerts_topic, self.dlq_topic}
        if outputs & set(self.input_topics):
            raise ValueError(f"input topics {self.input_topics} must differ from the output topics {sorted(outputs)}")
        if self.spike_min_history > self.spike_history_windows:
            raise ValueError(
                f"spike_min_history ({self.spike_min_history}) must be at most spike_history_windows "
                f"({self.spike_history_windows}): no key would ever leave its cold start"
            )
        if self.security_protocol.startswith("SASL") and not (self.sasl_mechanism and self.sasl_username):
            raise ValueError("SASL needs sasl_mechanism and sasl_username (and usually sasl_password)")
        return self

    @property
    def window_size_ms(self) -> int:
        return self.window_size_s * 1000

    @property
    def grace_ms(self) -> int:
        return self.grace_s * 1000

    @property
    def resolved_scoring_workers(self) -> int:
        return scoring_layout(self.scoring_workers, self.threads)[0]

    @property
    def resolved_threads(self) -> int:
        return scoring_layout(self.scoring_workers, self.threads)[1]

    @property
    def idle_claim_ttl_ms(self) -> int:
        """How long another daemon trusts an idle claim that its owner stopped renewing."""
        return max(3000, 5 * self.progress_interval_ms)

    def kafka_security(self) -> dict[str, Any]:
        """kafka-python keyword arguments for TLS / SASL."""
        options: dict[str, Any] = {"security_protocol": self.security_protocol}
        if self.sasl_mechanism:
            options["sasl_mechanism"] = self.sasl_mechanism
            options["sasl_plain_username"] = self.sasl_username
            options["sasl_plain_password"] = self.sasl_password.get_secret_value() if self.sasl_password else None
        for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            if getattr(self, name):
                options[name] = str(getattr(self, name))
        return options

    def describe(self) -> dict[str, Any]:
        """The settings as logged at start-up: secrets masked, store URL password hidden."""
        shown = {k: redact(v) if isinstance(v, str) else v for k, v in self.model_dump(mode="json").items()}
        for name in SECRET_FIELDS:
            if getattr(self, name) is not None:
                shown[name] = MASK
        shown["store_url"] = mask_url(self.store_url.get_secret_value())
        return shown


# every SecretStr setting: its value is never quoted (store_url, sasl_password, and any added later)
SECRET_FIELDS = frozenset(name for name, f in Settings.model_fields.items() if "SecretStr" in str(f.annotation))


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask, which containers and taskset narrow)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def scoring_layout(workers: int = 0, threads: int = 0) -> tuple[int, int]:
    """(scoring workers, ONNX Runtime threads each); 0 derives a value from the usable CPUs.

    Two workers (one on a single CPU), each with a thread per CPU (at most 8): a lone batch uses
    every core, and a second batch need not wait for the first. Measured on 2 cores with the load
    generator beside the daemon (event→scored at 240 texts/s): 2×2 p99 152 ms, 1×2 201 ms, and 2×1
    1.9 s — one-thread workers halve the speed of a large batch, so a backlog never drains.
    """
    cpus = usable_cpus()
    workers = workers or min(2, cpus)
    return workers, threads or min(8, cpus)


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build settings from env, the TOML file and overrides (flags); ``None`` overrides are ignored."""
    values: dict[str, Any] = {}
    if config_file is not None:
        try:
            values.update(tomllib.loads(config_file.read_text()))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"config file {config_file} cannot be read: {exc}") from exc
    values.update({k: v for k, v in overrides.items() if v is not None and v != []})
    if isinstance(values.get("store_url"), str):
        values["store_url"] = SecretStr(values["store_url"])
    try:
        return Settings(**values)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc)) from exc  # the cause hides inputs (model_config)


def format_validation_error(exc: ValidationError) -> str:
    """One sentence per problem: which setting, what was wrong, what value was given (never a secret)."""
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "settings"
        given = err.get("input")
        if isinstance(given, dict):
            shown = ""
        elif (err["loc"] and err["loc"][0] in SECRET_FIELDS) or isinstance(given, SecretStr):
            shown = f" (got: {MASK})"
        elif err["type"] == "extra_forbidden":
            shown = ""  # an unknown (perhaps misspelt secret) setting: its name is enough
        else:
            shown = f" (got: {given!r})"
        parts.append(f"{where}: {err['msg']}{shown}")
    return redact("; ".join(parts))


def setting_help(name: str) -> str:
    """The help of the flag for setting ``name``, from the settings model itself: what it is, its ``FINSENT_*``
    variable, its default and its allowed range (so the help cannot drift from what is enforced)."""
    field = Settings.model_fields[name]
    notes = [f"env FINSENT_{name.upper()}", f"default {show_default(field.default)}"]
    allowed = allowed_range(name)
    if allowed:
        notes.append(allowed)
    return f"{field.description} ({'; '.join(notes)})."


def show_default(value: Any) -> str:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if isinstance(value, Path) and value.is_absolute():
        try:
            return str(value.relative_to(Path(__file__).resolve().parents[1]))  # the shipped model, as in the repo
        except ValueError:
            return str(value)
    if isinstance(value, list):
        return ",".join(value) or "none"
    return str(value)


def allowed_range(name: str) -> str:
    """``"0 to 65535"``, ``"more than 0, at most 604800"``, ``"at least 1"``; empty for a setting without bounds."""
    bounds: dict[str, Any] = {}
    for rule in Settings.model_fields[name].metadata:
        for kind in ("ge", "gt", "le", "lt"):
            if getattr(rule, kind, None) is not None:
                bounds[kind] = getattr(rule, kind)
    if "ge" in bounds and "le" in bounds:
        return f"{bounds['ge']} to {bounds['le']}"
    low = f"at least {bounds['ge']}" if "ge" in bounds else f"more than {bounds['gt']}" if "gt" in bounds else ""
    high = f"at most {bounds['le']}" if "le" in bounds else f"less than {bounds['lt']}" if "lt" in bounds else ""
    return ", ".join(part for part in (low, high) if part)
