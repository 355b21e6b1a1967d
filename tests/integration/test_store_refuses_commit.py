"""A store that refuses every commit for a reason no record explains: the daemon pauses and retries, never exits."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from pipeline.store import Store
from pipeline.tooling.broker import EmbeddedBroker
from tests.helpers import as_json, count, news_stream, produce, wait_until, window_totals
from tests.integration.daemon_harness import daemon_settings, running_daemon

pytestmark = pytest.mark.integration

BASE_MS = 1_767_261_600_000


def test_a_refusal_no_record_explains_pauses_instead_of_crashing(
    broker: EmbeddedBroker, unique: str, tmp_path: Path, model_dir: Path
) -> None:
    settings = daemon_settings(broker.bootstrap, unique, tmp_path, model_dir)
    store_url = settings.store_url.get_secret_value()
    Store(store_url).create_schema()
    admin = Store(store_url)
    with admin.engine.begin() as conn:  # the offsets row, not any record's data, is refused
        conn.exec_driver_sql(
            "CREATE TRIGGER refuse_offsets BEFORE INSERT ON offsets BEGIN SELECT RAISE(ABORT, 'offsets frozen'); END"
        )
    messages = news_stream(40, BASE_MS, 1000, seed=41)
    produce(broker.bootstrap, settings.input_topics[0], as_json(messages))
    with running_daemon(settings) as daemon:
        wait_until(lambda: not daemon.store_ok, 60, "the daemon to pause on the refused commit", 0.2)
        assert count(daemon.store, "messages") == 0, "nothing half-written"
        with admin.engine.begin() as conn:
            conn.execute(text("DROP TRIGGER refuse_offsets"))
        wait_until(lambda: count(daemon.store, "messages") == len(messages), 60, "the commits to resume", 0.2)
        assert sum(v["n"] for v in window_totals(daemon.store, "all").values()) == len(messages)
    admin.close()
