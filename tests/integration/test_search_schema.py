"""The schema behind the dashboard's search and reads: SQLite's FTS5 table follows every write the daemon makes,
PostgreSQL serves text search from its GIN index, and a store made by an older release gets both on upgrade."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, insert, inspect, select, text, update
from sqlalchemy.dialects import postgresql

from pipeline import migrate
from pipeline import tables as t
from pipeline.engine import create_store_engine
from tests.fixtures.seed_store import seed

pytestmark = pytest.mark.integration
NOW = datetime(2026, 1, 1, 10, tzinfo=UTC)


def fts_ids(engine: Engine, query: str) -> set[str]:
    """Ids of the messages SQLite's FTS5 table finds for ``query`` (its own syntax)."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                f"SELECT m.id FROM {t.MESSAGES_FTS} f JOIN messages m ON m.rowid = f.rowid "
                f"WHERE {t.MESSAGES_FTS} MATCH :q"
            ),
            {"q": query},
        )
        return {r.id for r in rows}


def message(i: int, body: str, when: datetime = NOW) -> dict[str, object]:
    return {
        "id": f"old-{i}",
        "event_time": when,
        "scored_at": when,
        "text": body,
        "source": "wire",
        "kind": "news",
        "tickers": ",NVDA,",
        "topic_label": "Stock Movement",
        "p_topic": 0.9,
        "sentiment": "negative",
        "p_negative": 0.8,
        "p_neutral": 0.1,
        "p_positive": 0.1,
        "is_repeat": False,
        "model_version": "v1",
        "input_topic": "news",
        "input_partition": 0,
        "input_offset": i,
    }


def literal(query: object) -> str:
    return str(query.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))  # type: ignore[attr-defined]


def previous_release_store(engine: Engine) -> None:
    """Windows and messages as the release before full-text search made them: no FTS table, no new index."""
    t.metadata.create_all(engine, tables=[t.windows, t.messages])
    with engine.begin() as conn:
        for index in ("ix_windows_dim_start", "ix_messages_text_search"):
            conn.execute(text(f"DROP INDEX IF EXISTS {index}"))


def test_the_daemons_commits_and_pruning_keep_sqlite_search_in_step(tmp_path: Path) -> None:
    store = seed(f"sqlite:///{tmp_path / 'seeded.db'}")  # written through Store.commit_checkpoint
    try:
        assert len(fts_ids(store.engine, "fraud")) == 16, "every burst message is found by a word of it"
        assert len(fts_ids(store.engine, '"fraud probe"')) == 16
        assert fts_ids(store.engine, "announc*") and not fts_ids(store.engine, "nounce")
        with store.engine.begin() as conn:  # a correction of a message's text
            conn.execute(update(t.messages).where(t.messages.c.id == "msg-8-0").values(text="calm day"))
        assert "msg-8-0" not in fts_ids(store.engine, "fraud") and "msg-8-0" in fts_ids(store.engine, "calm")
        store.prune(datetime(2030, 1, 1, tzinfo=UTC), datetime(2030, 1, 1, tzinfo=UTC))  # retention: everything
        assert fts_ids(store.engine, "fraud OR announces OR calm") == set()
        with store.engine.begin() as conn:
            conn.execute(text(f"INSERT INTO {t.MESSAGES_FTS}({t.MESSAGES_FTS}, rank) VALUES ('integrity-check', 1)"))
    finally:
        store.close()


def test_an_older_sqlite_store_gets_search_indexes_and_watchlists(tmp_path: Path) -> None:
    engine = create_store_engine(f"sqlite:///{tmp_path / 'old.db'}")
    previous_release_store(engine)
    with engine.begin() as conn:
        conn.execute(insert(t.messages), [message(1, "Nvidia cuts guidance"), message(2, "A shortcut to profit")])
    added = migrate.upgrade(engine)
    assert {"ix_windows_dim_start", t.MESSAGES_FTS} <= set(added) and "ix_messages_text_search" not in added
    assert "watchlists" in inspect(engine).get_table_names(), "a new table comes with the upgrade"
    assert fts_ids(engine, "cut") == {"old-1"}, "messages stored before the upgrade are searchable; no substring hits"
    assert migrate.upgrade(engine) == [], "a second upgrade has nothing to add"
    engine.dispose()


def test_postgresql_search_uses_the_gin_index_and_an_old_store_gets_it(pg_url: str) -> None:
    engine = create_store_engine(pg_url)
    previous_release_store(engine)
    with engine.begin() as conn:
        conn.execute(
            insert(t.messages), [message(i, f"filler story {i}", NOW - timedelta(minutes=i)) for i in range(50)]
        )
        conn.execute(insert(t.messages), [message(99, "Nvidia cuts guidance")])
    added = migrate.upgrade(engine)
    assert {"ix_messages_text_search", "ix_windows_dim_start"} <= set(added)
    query = select(t.messages.c.id).where(
        t.text_search_vector().bool_op("@@")(func.plainto_tsquery(text("'english'::regconfig"), "cutting"))
    )
    with engine.connect() as conn:
        assert conn.execute(query).scalars().all() == ["old-99"], "stemmed: 'cutting' finds 'cuts'"
        conn.execute(text("SET enable_seqscan = off"))  # a 51-row table: make the planner show it can use the index
        plan = "\n".join(r[0] for r in conn.execute(text("EXPLAIN " + literal(query))).all())
    assert "ix_messages_text_search" in plan, plan
    engine.dispose()
