"""deploy/postgres/roles.sql on a real PostgreSQL: the dashboard's role reads everything and writes only feedback,
watchlists and an incident's acknowledgement."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine, MetaData, Table, create_engine, insert, make_url, select, text
from sqlalchemy.exc import DBAPIError

from pipeline.store import Store
from tests.conftest import missing
from tests.helpers import ROOT

pytestmark = pytest.mark.integration
SQL = ROOT / "deploy" / "postgres"
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@dataclass
class Roles:
    admin_url: str
    writer: str
    reader: str
    writer_url: str
    reader_url: str


def apply_roles_sql(admin_url: str, writer: str, reader: str) -> list[str]:
    """Run roles.sql as the administrator, as psql would (one script, several statements); returns its notices."""
    notices: list[str] = []
    conninfo = make_url(admin_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.add_notice_handler(lambda d: notices.append(d.message_primary or ""))
        conn.execute(
            "SELECT set_config('finsent.writer_role', %s, false), set_config('finsent.reader_role', %s, false)",
            (writer, reader),
        )
        conn.execute((SQL / "roles.sql").read_text())  # no parameters: sent as one simple query, like psql -f
    return notices


@pytest.fixture
def roles(pg_url: str) -> Iterator[Roles]:
    """Two roles of this test's own (roles are cluster-wide), with passwords; dropped afterwards."""
    tag = uuid.uuid4().hex[:10]
    writer, reader = f"finsent_w_{tag}", f"finsent_r_{tag}"
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    urls = {}
    try:
        apply_roles_sql(pg_url, writer, reader)
        with admin.connect() as conn:
            for role in (writer, reader):
                password = secrets.token_hex(16)
                conn.execute(text(f"ALTER ROLE \"{role}\" PASSWORD '{password}'"))  # hex: nothing to quote
                urls[role] = (
                    make_url(pg_url).set(username=role, password=password).render_as_string(hide_password=False)
                )
        yield Roles(pg_url, writer, reader, urls[writer], urls[reader])
    finally:
        with admin.connect() as conn:
            for role in (reader, writer):  # one at a time: DROP OWNED BY both at once trips over shared default ACLs
                if conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).first():
                    conn.execute(
                        text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = :r"), {"r": role}
                    )
                    conn.execute(text(f'DROP OWNED BY "{role}"'))
                    conn.execute(text(f'DROP ROLE "{role}"'))
        admin.dispose()


@pytest.fixture
def deployed(roles: Roles) -> Iterator[Roles]:
    """The production order: roles first, the daemon (as the writer) creates the schema, roles.sql again."""
    store = Store(roles.writer_url)
    store.create_schema()
    store.engine.dispose()
    writer = create_engine(roles.writer_url)
    with writer.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO windows (dimension, key, window_start, window_end, n, n_unique, n_negative, n_neutral,"
                " n_positive, sum_p_negative, n_late, n_late_negative, closed)"
                " VALUES ('all', 'all', :s, :s, 3, 3, 2, 1, 0, 1.7, 0, 0, true)"
            ),
            {"s": NOW},
        )
        conn.execute(  # the window's hourly rollup, as the daemon writes it when the window closes
            text(
                "INSERT INTO window_rollups (grain_s, dimension, key, bucket_s, n, n_unique, n_negative, n_neutral,"
                " n_positive, sum_p_negative, sum_confidence, sum_index, n_late, n_late_negative, base_n, base_sum,"
                " thr_sum) VALUES (3600, 'all', 'all', :b, 3, 3, 2, 1, 0, 1.7, 0, 0, 0, 0, 0, 0, 0)"
            ),
            {"b": int(NOW.timestamp()) // 3600 * 3600},
        )
        conn.execute(
            text(
                "INSERT INTO messages (id, event_time, scored_at, text, kind, tickers, topic_label, p_topic,"
                " sentiment, p_negative, p_neutral, p_positive, is_repeat, model_version, input_topic,"
                " input_partition, input_offset)"
                " VALUES ('m1', :s, :s, 'AAPL falls', 'news', ',AAPL,', 'Stock Movement', 0.9, 'negative',"
                " 0.8, 0.1, 0.1, false, 'v2', 'finsent.news', 0, 0)"
            ),
            {"s": NOW},
        )
    writer.dispose()
    apply_roles_sql(roles.admin_url, roles.writer, roles.reader)
    yield roles


@pytest.fixture
def reader(deployed: Roles) -> Iterator[Engine]:
    engine = create_engine(deployed.reader_url)
    yield engine
    engine.dispose()


def sqlstate(exc: DBAPIError) -> str | None:
    return getattr(exc.orig, "sqlstate", None)


def assert_denied(engine: Engine, statement: str) -> None:
    with pytest.raises(DBAPIError) as info, engine.begin() as conn:
        conn.execute(text(statement))
    assert sqlstate(info.value) == "42501", f"{statement!r} failed otherwise: {info.value}"  # insufficient_privilege


def test_the_writer_owns_the_tables_the_daemon_creates(deployed: Roles) -> None:
    engine = create_engine(deployed.admin_url)
    with engine.connect() as conn:
        owners = dict(
            conn.execute(text("SELECT tablename, tableowner FROM pg_tables WHERE schemaname = 'public'")).all()
        )
    engine.dispose()
    assert {"windows", "alerts", "offsets", "messages", "feedback"} <= set(owners)
    assert set(owners.values()) == {deployed.writer}


def test_dashboard_role_reads_every_table(reader: Engine, deployed: Roles) -> None:
    with reader.connect() as conn:
        assert conn.execute(text("SELECT n, n_negative FROM windows")).one() == (3, 2)
        assert conn.execute(text("SELECT text FROM messages WHERE id = 'm1'")).scalar_one() == "AAPL falls"
        assert conn.execute(text("SELECT count(*) FROM alerts")).scalar_one() == 0
        assert conn.execute(text("SELECT n FROM window_rollups WHERE grain_s = 3600")).scalar_one() == 3
        tables = conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).scalars().all()
        assert {"window_rollups", "ticker_days"} <= set(tables)
        for table in tables:
            conn.execute(text(f'SELECT * FROM "{table}" LIMIT 1')).all()
        assert conn.execute(text("SHOW statement_timeout")).scalar_one() == "30s"


def test_dashboard_role_records_and_corrects_feedback(reader: Engine) -> None:
    feedback = Table("feedback", MetaData(), autoload_with=reader)
    with reader.begin() as conn:  # the dashboard's insert: Core, RETURNING the serial id
        new_id = conn.execute(
            insert(feedback).values(
                message_id="m1",
                text="AAPL falls",
                model_sentiment="negative",
                model_topic="Stock Movement",
                sentiment="neutral",
                topic=None,
                analyst="ana@example.com",
                created_at=NOW,
            )
        ).inserted_primary_key[0]
        conn.execute(feedback.update().where(feedback.c.id == new_id).values(sentiment="positive"))
    with reader.connect() as conn:
        assert conn.execute(select(feedback.c.sentiment, feedback.c.analyst)).one() == ("positive", "ana@example.com")
    assert_denied(reader, "DELETE FROM feedback")


def test_dashboard_role_keeps_watchlists_and_nothing_more_of_them(reader: Engine) -> None:
    watchlists = Table("watchlists", MetaData(), autoload_with=reader)
    with reader.begin() as conn:  # the dashboard's writes: add tickers, remove one
        conn.execute(
            insert(watchlists),
            [{"analyst": "ana@example.com", "ticker": k, "added_at": NOW} for k in ("AAPL", "NVDA")],
        )
        conn.execute(watchlists.delete().where(watchlists.c.ticker == "AAPL"))
    with reader.connect() as conn:
        assert conn.execute(select(watchlists.c.analyst, watchlists.c.ticker)).all() == [("ana@example.com", "NVDA")]
    assert_denied(reader, "UPDATE watchlists SET analyst = 'mallory'")
    assert_denied(reader, "TRUNCATE watchlists")
    assert_denied(reader, "ALTER TABLE watchlists ADD COLUMN note text")


def test_the_dashboards_own_code_keeps_a_watchlist_as_its_role(deployed: Roles) -> None:
    from dashboard import data, watchlist

    try:
        saved = watchlist.save(deployed.reader_url, "ana@example.com", ["nvda", "AAPL", "not a ticker", "$TSLA"])
        assert saved == ["NVDA", "AAPL", "TSLA"]
        assert watchlist.remove(deployed.reader_url, "ana@example.com", "NVDA") == ["AAPL", "TSLA"]
        assert watchlist.tickers(deployed.reader_url, "ana@example.com") == ["AAPL", "TSLA"]
    finally:
        data.engine_for(deployed.reader_url).dispose()


# One row of each table the daemon owns, and one change to it: the dashboard's role may do neither.
DAEMON_TABLES = {
    "windows": (
        "INSERT INTO windows (dimension, key, window_start, window_end, n, n_unique, n_negative, n_neutral,"
        " n_positive, sum_p_negative, closed) VALUES ('all', 'x', now(), now(), 1, 1, 1, 0, 0, 1, true)",
        "n = 0",
    ),
    "alerts": (
        "INSERT INTO alerts (id, window_start, window_end, dimension, key, negative_ratio, baseline, threshold,"
        " score, n, n_negative, severity, example_ids, created_at, published)"
        " VALUES ('a', now(), now(), 'all', 'all', 1, 0, 0, 9, 1, 1, 'critical', '[]', now(), false)",
        "severity = 'info'",
    ),
    "offsets": (
        "INSERT INTO offsets (group_id, topic, partition, next_offset, updated_at) VALUES ('g', 't', 0, 9, now())",
        "next_offset = 0",
    ),
    "progress": (
        "INSERT INTO progress (group_id, watermark_ms, updated_at) VALUES ('g', 0, now())",
        "watermark_ms = 0",
    ),
    "messages": ("INSERT INTO messages SELECT * FROM messages", "text = ''"),
    "stories": ("INSERT INTO stories (story_hash, first_seen) VALUES ('h', now())", "first_seen = now()"),
    "message_tickers": (
        "INSERT INTO message_tickers (message_id, ticker, event_time, sentiment, method)"
        " VALUES ('m1', 'AAPL', now(), 'negative', 'message')",
        "sentiment = 'positive'",
    ),
    "window_rollups": (
        "INSERT INTO window_rollups (grain_s, dimension, key, bucket_s, n, n_unique, n_negative, n_neutral,"
        " n_positive, sum_p_negative, sum_confidence, sum_index, n_late, n_late_negative, base_n, base_sum, thr_sum)"
        " VALUES (3600, 'all', 'x', 0, 1, 1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0)",
        "n = n + 1",
    ),
    "ticker_days": (
        "INSERT INTO ticker_days (ticker, day_s, source, topic_label, messages, negative)"
        " VALUES ('AAPL', 0, 'wire', 'Earnings', 1, 1)",
        "negative = 0",
    ),
    "model_versions": (
        "INSERT INTO model_versions (daemon, version, outcome, loaded_at, metrics)"
        " VALUES ('host:1', 'v9', 'loaded', now(), '{}')",
        "reason = 'forged'",
    ),
}


@pytest.mark.parametrize("table", sorted(DAEMON_TABLES))
def test_dashboard_role_cannot_change_what_the_daemon_writes(reader: Engine, table: str) -> None:
    row, change = DAEMON_TABLES[table]
    assert_denied(reader, row)
    assert_denied(reader, f"UPDATE {table} SET {change}")
    assert_denied(reader, f"DELETE FROM {table}")
    assert_denied(reader, f"TRUNCATE {table}")


def test_dashboard_role_acknowledges_incidents_and_nothing_else_of_them(reader: Engine, deployed: Roles) -> None:
    writer = create_engine(deployed.writer_url)
    with writer.begin() as conn:  # the daemon opens an incident
        conn.execute(
            text(
                "INSERT INTO incidents (id, window_start, root_dimension, root_key, root_alert_id, n_alerts, status, "
                "created_at, updated_at) VALUES ('i1', now(), 'ticker', 'ACME', 'a1', 3, 'open', now(), now())"
            )
        )
    writer.dispose()
    with reader.begin() as conn:
        conn.execute(
            text(
                "UPDATE incidents SET status = 'acknowledged', acknowledged_by = 'dana', note = 'on it', "
                "updated_at = now()"
            )
        )
        assert conn.execute(text("SELECT status FROM incidents")).scalar_one() == "acknowledged"
    assert_denied(reader, "UPDATE incidents SET root_key = 'OTHER'")
    assert_denied(reader, "UPDATE incidents SET n_alerts = 0")
    assert_denied(reader, "DELETE FROM incidents")
    assert_denied(reader, "INSERT INTO incidents SELECT * FROM incidents")


@pytest.mark.parametrize(
    "ddl",
    [
        "CREATE TABLE public.sneaky (x int)",
        "CREATE TEMPORARY TABLE sneaky (x int)",
        "DROP TABLE windows",
        "ALTER TABLE alerts ADD COLUMN silenced boolean",
        "CREATE INDEX sneaky ON offsets (next_offset)",
        "COMMENT ON TABLE windows IS 'gone'",
        "CREATE FUNCTION public.sneaky() RETURNS int LANGUAGE sql AS 'SELECT 1'",
        "CREATE SCHEMA sneaky",
    ],
)
def test_dashboard_role_cannot_change_the_schema(reader: Engine, ddl: str) -> None:
    assert_denied(reader, ddl)


def test_later_tables_of_the_writer_are_readable_without_rerunning(deployed: Roles, reader: Engine) -> None:
    writer = create_engine(deployed.writer_url)
    with writer.begin() as conn:  # a schema upgrade adds a table
        conn.execute(text("CREATE TABLE annotations (id text PRIMARY KEY, status text)"))
        conn.execute(text("INSERT INTO annotations VALUES ('a1', 'open')"))
    writer.dispose()
    with reader.connect() as conn:
        assert conn.execute(text("SELECT status FROM annotations")).scalar_one() == "open"
    assert_denied(reader, "UPDATE annotations SET status = 'resolved'")


def test_roles_sql_is_idempotent_and_refuses_one_role_for_both(deployed: Roles) -> None:
    assert apply_roles_sql(deployed.admin_url, deployed.writer, deployed.reader) == []  # feedback exists: no notice
    with pytest.raises(psycopg.errors.RaiseException, match="two different roles"):
        apply_roles_sql(deployed.admin_url, deployed.writer, deployed.writer)


def test_before_the_schema_exists_roles_sql_says_to_run_again(pg_url: str) -> None:
    tag = uuid.uuid4().hex[:10]
    writer, reader = f"finsent_w_{tag}", f"finsent_r_{tag}"
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    try:
        notices = apply_roles_sql(pg_url, writer, reader)
        assert any("run roles.sql again" in n for n in notices), notices
        with admin.connect() as conn:
            attrs = conn.execute(
                text("SELECT rolcanlogin, rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = :r"),
                {"r": reader},
            ).one()
        assert tuple(attrs) == (True, False, False, False)
    finally:
        with admin.connect() as conn:
            for role in (reader, writer):
                conn.execute(text(f'DROP OWNED BY "{role}"'))
                conn.execute(text(f'DROP ROLE "{role}"'))
        admin.dispose()


def scram_matches(verifier: str, password: str) -> bool:
    """Whether a PostgreSQL SCRAM-SHA-256 verifier was made from ``password`` (RFC 5802 StoredKey)."""
    method, rest = verifier.split("$", 1)
    iterations_salt, keys = rest.split("$", 1)
    iterations, salt = iterations_salt.split(":")
    stored_key = keys.split(":")[0]
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt), int(iterations))
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    return method == "SCRAM-SHA-256" and base64.b64encode(hashlib.sha256(client_key).digest()).decode() == stored_key


def test_set_passwords_sql_reads_the_secret_files(roles: Roles, tmp_path: Path) -> None:
    psql = shutil.which("psql")
    if psql is None:
        missing("psql", "apt-get install postgresql-client")
    assert psql is not None
    files = {}
    for role in (roles.writer, roles.reader):
        files[role] = tmp_path / role
        files[role].write_text(secrets.token_hex(20) + "\n")
    url = make_url(roles.admin_url)
    result = subprocess.run(
        [
            psql,
            "-X",
            "-v",
            "ON_ERROR_STOP=1",
            "-v",
            f"writer_role={roles.writer}",
            "-v",
            f"reader_role={roles.reader}",
            "-h",
            url.host or "127.0.0.1",
            "-p",
            str(url.port or 5432),
            "-U",
            url.username or "postgres",
            "-d",
            url.database or "postgres",
            "-f",
            str(SQL / "set-passwords.sql"),
        ],
        env={
            "PATH": "/usr/bin:/bin",
            "PGPASSWORD": url.password or "",
            "FINSENT_WRITER_PASSWORD_FILE": str(files[roles.writer]),
            "FINSENT_READER_PASSWORD_FILE": str(files[roles.reader]),
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for path in files.values():
        assert path.read_text().strip() not in result.stdout + result.stderr
    admin = create_engine(roles.admin_url)
    with admin.connect() as conn:
        verifiers = dict(
            conn.execute(
                text("SELECT rolname, rolpassword FROM pg_authid WHERE rolname IN (:w, :r)"),
                {"w": roles.writer, "r": roles.reader},
            ).all()
        )
    admin.dispose()
    for role, path in files.items():
        assert scram_matches(verifiers[role], path.read_text().strip()), role
