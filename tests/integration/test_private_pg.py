"""A test's own PostgreSQL server survives a stop and a start with its data, and refuses connections while down."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from tests.fixtures.private_pg import PrivatePostgres
from tests.helpers import wait_until

pytestmark = pytest.mark.integration


def _refuses_connections(url: str) -> bool:
    engine = create_engine(url, poolclass=NullPool, connect_args={"connect_timeout": 2})
    try:
        with engine.connect():
            return False
    except OperationalError:
        return True
    finally:
        engine.dispose()


def test_data_survives_stop_and_start(private_pg: PrivatePostgres) -> None:
    assert private_pg.port != 5432
    assert private_pg.url == f"postgresql+psycopg://postgres@127.0.0.1:{private_pg.port}/postgres"
    engine = create_engine(private_pg.url, poolclass=NullPool, connect_args={"connect_timeout": 2})
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE outage (id int PRIMARY KEY, note text)"))
        conn.execute(text("INSERT INTO outage VALUES (1, 'before the outage')"))

    private_pg.stop()
    assert not private_pg.is_running()
    private_pg.stop()  # idempotent
    wait_until(lambda: _refuses_connections(private_pg.url), timeout_s=10, what="the stopped server to refuse")

    private_pg.start()
    assert private_pg.is_running()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT note FROM outage WHERE id = 1")).scalar_one() == "before the outage"
    engine.dispose()


def test_immediate_stop_is_a_crash_that_recovers(private_pg: PrivatePostgres) -> None:
    engine = create_engine(private_pg.url, poolclass=NullPool, connect_args={"connect_timeout": 2})
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE crash (id int)"))
        conn.execute(text("INSERT INTO crash VALUES (7)"))

    private_pg.stop("immediate")
    assert _refuses_connections(private_pg.url)

    private_pg.start()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT id FROM crash")).scalar_one() == 7
    engine.dispose()
    assert "database system was interrupted" in private_pg.log_path.read_text()
