"""The Model page lists the versions the daemons served, side by side with their test figures, and the refused ones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from streamlit.testing.v1 import AppTest

from models.card import SHIPPED_MODEL_DIR, read_card
from pipeline.model_history import ModelEvent, ModelHistory, event_for
from pipeline.store import Store
from pipeline.tooling.dashboard_server import APP

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
T0 = datetime(2026, 1, 1, 10, tzinfo=UTC)


def figures(s_f1: float, t_f1: float) -> dict[str, dict[str, dict[str, float]]]:
    return {
        "sentiment": {"test": {"n": 40, "accuracy": s_f1 + 0.05, "macro_f1": s_f1}},
        "topic": {"test": {"n": 40, "accuracy": t_f1 + 0.05, "macro_f1": t_f1}},
    }


@pytest.fixture
def store_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    store = Store(url)
    store.create_schema()
    card = read_card(SHIPPED_MODEL_DIR)
    for daemon in ("host-a:1", "host-b:7"):  # two daemons started on the shipped model
        history = ModelHistory(store.engine, daemon=daemon)
        history.add(event_for(card, card.version, "loaded", "served from start-up", T0))
        history.flush()
    history.add(
        ModelEvent(
            "tiny-2",
            "loaded",
            T0 + timedelta(hours=1),
            "accepted against the shipped model",
            metrics=figures(0.83, 0.88),
        )
    )
    history.add(
        ModelEvent(
            "tiny-3",
            "refused",
            T0 + timedelta(hours=2),
            "model tiny-3 fails the quality gate",
            metrics=figures(0.2, 0.1),
        )
    )
    history.flush()
    store.close()
    monkeypatch.setenv("FINSENT_STORE_URL", url)
    monkeypatch.setenv("FINSENT_MODEL_DIR", str(SHIPPED_MODEL_DIR))
    return url


def model_page() -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=30)
    at.query_params["view"] = "Model"
    return at.run()


def test_served_versions_side_by_side_and_refused_with_reason(store_url: str) -> None:
    at = model_page()
    assert not at.exception, at.exception
    frames = [d.value for d in at.dataframe]
    served = next(f for f in frames if "daemons" in f.columns)
    shipped = read_card(SHIPPED_MODEL_DIR)
    assert served["version"].tolist() == ["tiny-2", shipped.version], "newest first"
    assert served["daemons"].tolist() == [1, 2]
    s_f1, t_acc = shipped.metrics["sentiment"]["test"]["macro_f1"], shipped.metrics["topic"]["test"]["accuracy"]
    assert served["sentiment macro-F1"].round(4).tolist() == [0.83, round(s_f1, 4)]
    assert served["topic accuracy"].round(4).tolist() == [0.93, round(t_acc, 4)]
    assert served["test n (sentiment / topic)"].tolist() == ["40 / 40", "2388 / 4117"]
    refused = next(f for f in frames if "reason" in f.columns and "daemons" not in f.columns)
    assert refused[["version", "reason"]].values.tolist() == [["tiny-3", "model tiny-3 fails the quality gate"]]
    assert refused["topic macro-F1"].tolist() == [0.1]
    assert "Refused candidates (1)" in [h.value for h in at.subheader]
    current = f"{read_card(SHIPPED_MODEL_DIR).version} · int8"
    assert at.subheader[0].value.startswith(current), "the current card is still shown"


def test_a_store_from_before_the_history_says_so(store_url: str) -> None:
    store = Store(store_url)
    with store.engine.begin() as conn:
        conn.execute(text("DROP TABLE model_versions"))
    store.close()
    at = model_page()
    assert not at.exception, at.exception
    assert any("No model load recorded yet" in i.value for i in at.info)
    assert "Refused candidates (0)" in [h.value for h in at.subheader]
