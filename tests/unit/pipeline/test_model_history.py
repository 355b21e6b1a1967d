"""The served-model history: rows per daemon, version and outcome; retries rewrite, outages wait."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import inspect, select, text

from models.card import SHIPPED_MODEL_DIR, read_card
from pipeline import tables as t
from pipeline.engine import create_store_engine
from pipeline.model_history import ModelEvent, ModelHistory, event_for
from pipeline.store import Store

T0 = datetime(2026, 1, 1, 10, tzinfo=UTC)


def _rows(url: str) -> list[tuple[str, str, str | None]]:
    engine = create_store_engine(url)
    with engine.connect() as conn:
        m = t.model_versions.c
        rows = conn.execute(select(m.version, m.outcome, m.reason).order_by(m.loaded_at)).all()
    engine.dispose()
    return [tuple(r) for r in rows]


def test_events_are_written_once_per_daemon_version_and_outcome(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    store = Store(url)
    store.create_schema()
    history = ModelHistory(store.engine, daemon="host:1")
    card = read_card(SHIPPED_MODEL_DIR)
    history.add(event_for(card, card.version, "loaded", "start-up", T0))
    history.add(ModelEvent("v3", "refused", T0 + timedelta(minutes=1), "fails the gate"))
    assert history.flush() and not history.pending
    history.add(ModelEvent("v3", "refused", T0 + timedelta(minutes=2), "fails the gate again"))  # the same event
    assert history.flush()
    assert _rows(url) == [(card.version, "loaded", "start-up"), ("v3", "refused", "fails the gate again")]
    with store.engine.connect() as conn:
        metrics = conn.execute(
            select(t.model_versions.c.metrics).where(t.model_versions.c.outcome == "loaded")
        ).scalar()
    assert metrics["sentiment"]["test"]["n"] == 2388 and "tradeoffs" not in metrics, "test-set figures only"
    store.close()


def test_a_store_outage_keeps_the_events_for_later(tmp_path: Path) -> None:
    now = [0.0]
    broken = create_store_engine(f"sqlite:///{tmp_path / 'missing-dir' / 's.db'}")  # cannot be opened
    history = ModelHistory(broken, daemon="host:1", clock=lambda: now[0])
    history.add(ModelEvent("v2", "loaded", T0))
    assert history.flush() is False and len(history.pending) == 1
    (tmp_path / "missing-dir").mkdir()
    assert history.flush() is False, "not retried before RETRY_S"
    Store(f"sqlite:///{tmp_path / 'missing-dir' / 's.db'}").create_schema()
    now[0] = 10.0
    assert history.flush() is True and not history.pending
    assert _rows(f"sqlite:///{tmp_path / 'missing-dir' / 's.db'}") == [("v2", "loaded", None)]


def test_an_existing_store_gets_the_table(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    store.create_schema()
    with store.engine.begin() as conn:
        conn.execute(text("DROP TABLE model_versions"))  # a store made before the table existed
    store.create_schema()
    assert "model_versions" in inspect(store.engine).get_table_names()
    store.close()
