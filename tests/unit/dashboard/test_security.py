"""Untrusted text stays text, analysts are who they signed in as, the CSV export runs no formula."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, insert, update
from streamlit.testing.v1 import AppTest

from dashboard import data
from dashboard.identity import Identity, identify
from dashboard.ui import md_text
from models.data import neutralise_formula, read_extra, restore_formula
from pipeline import tables as t
from tests.unit.dashboard.test_app import app, store_url  # noqa: F401 - the fixture

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

HOSTILE = "![x](https://evil.example/p.png) [win](https://evil.example) <img src=x onerror=alert(1)> :red[hi] $x$"


# ---- identity ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "user", "expected"),
    [
        ({}, {}, Identity(None, "typed")),
        ({"X-Forwarded-User": "dana"}, {}, Identity("dana", "proxy", "X-Forwarded-User")),
        ({"X-Forwarded-Email": "dana@example.com"}, {}, Identity("dana@example.com", "proxy", "X-Forwarded-Email")),
        ({"X-Forwarded-User": " ", "X-Forwarded-Email": "e@x"}, {}, Identity("e@x", "proxy", "X-Forwarded-Email")),
        ({"X-Forwarded-User": "da\nna"}, {}, Identity("da na", "proxy", "X-Forwarded-User")),
        # Streamlit's own login is configured: it alone counts, a forwarded header is the client's own
        (
            {"X-Forwarded-User": "mallory"},
            {"is_logged_in": True, "email": "dana@example.com", "name": "Dana"},
            Identity("dana@example.com", "login"),
        ),
        ({"X-Forwarded-User": "mallory"}, {"is_logged_in": False}, Identity(None, "login")),
        ({}, {"is_logged_in": True, "sub": "1234"}, Identity("1234", "login")),
    ],
)
def test_identity_comes_from_login_then_proxy_then_typing(
    headers: dict[str, str], user: dict[str, object], expected: Identity
) -> None:
    assert identify(headers, user) == expected


def test_names_are_bounded() -> None:
    assert identify({"X-Forwarded-User": "x" * 500}, {}).name == "x" * 128


def test_signed_in_analyst_is_recorded_without_typing(store_url: str) -> None:  # noqa: F811
    at = AppTest.from_file(str(Path(data.__file__).parent / "app.py"), default_timeout=30)
    at.query_params["view"] = "Feedback"
    at.query_params["range"] = "all"
    at.user = {"is_logged_in": True, "email": "dana@example.com", "name": "Dana"}
    at.run()
    assert not at.exception, at.exception
    assert not [w for w in at.text_input if w.key == "fb_analyst"], "no free-text name when signed in"
    assert any("Signed in as dana@example\\.com" in c.value for c in at.caption)
    at.selectbox(key="fb_message").set_value("msg-8-0")
    at.selectbox(key="fb_sentiment").set_value("neutral")
    next(b for b in at.button if b.label == "Save correction").click().run()
    assert not at.exception
    assert data.feedback(store_url)["analyst"].tolist() == ["dana@example.com"]


def test_login_is_asked_for_when_configured(store_url: str) -> None:  # noqa: F811
    at = AppTest.from_file(str(Path(data.__file__).parent / "app.py"), default_timeout=30)
    at.user = {"is_logged_in": False}
    at.run()
    assert not at.exception
    assert [b.label for b in at.button] == ["Log in"] and "Sign in" in at.info[0].value
    assert not at.dataframe, "nothing of the store is shown before signing in"


def test_local_demo_says_names_are_typed(store_url: str) -> None:  # noqa: F811
    at = app("Feedback")
    assert any("local demo" in c.value for c in at.caption)
    assert at.text_input(key="fb_analyst").label == "Your name"


# ---- untrusted text -------------------------------------------------------------------------------


def test_message_text_is_never_markdown(store_url: str) -> None:  # noqa: F811
    engine = create_engine(store_url)
    with engine.begin() as conn:
        conn.execute(update(t.messages).where(t.messages.c.id == "msg-8-0").values(text=HOSTILE, p_negative=0.999))
    engine.dispose()
    at = app("Alerts")
    assert not at.exception
    assert any(HOSTILE in e.value for e in at.expander[0].text), "shown as plain text"
    markdown = [m.value for m in at.markdown] + [c.value for c in at.caption] + [e.label for e in at.expander]
    assert not [m for m in markdown if "evil" in m], markdown


def test_alert_keys_are_escaped_in_titles(store_url: str) -> None:  # noqa: F811
    engine = create_engine(store_url)
    with engine.begin() as conn:
        conn.execute(update(t.alerts).where(t.alerts.c.key == "ACME").values(key="[x](https://evil.example)"))
    engine.dispose()
    at = app("Alerts")
    assert not at.exception
    labels = [e.label for e in at.expander]
    assert any("**\\[x\\]\\(https\\://evil\\.example\\)**" in label for label in labels), labels
    assert not [label for label in labels if "](https" in label]


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("ACME", "ACME"),
        ("seed-v1", "seed-v1"),
        ("![i](http://e/x.png)", "\\!\\[i\\]\\(http\\://e/x\\.png\\)"),
        ("<b>x</b> & y", "\\<b\\>x\\</b\\> \\& y"),
        ("- not a list\nline two", "\\- not a list line two"),
        ("www.evil.com", "www\\.evil\\.com"),
        ("a\\b", "a\\\\b"),
    ],
)
def test_md_text_escapes_markdown(raw: str, escaped: str) -> None:
    assert md_text(raw) == escaped


# ---- CSV export -----------------------------------------------------------------------------------

FORMULAS = [
    '=HYPERLINK("https://evil.example","click")',
    "+1+1",
    "-2+3 shares slump",
    "@SUM(A1:A2)",
    "\t=1+1",
    "\r=1+1",
    "'=already quoted",
    "''@twice",
    "'Tis a plain apostrophe",
    "Shares plunge after the profit warning",
]


def test_csv_export_neutralises_formulas_and_reads_back(store_url: str, tmp_path: Path) -> None:  # noqa: F811
    engine = create_engine(store_url)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        for i, text in enumerate(FORMULAS):
            conn.execute(
                insert(t.feedback).values(
                    message_id=f"m{i}", text=text, sentiment="negative", topic=None, analyst="dana", created_at=now
                )
            )
    engine.dispose()
    exported = data.feedback_training_csv(store_url)
    cells = {row["text"] for row in csv.DictReader(io.StringIO(exported, newline=""))}
    for cell in cells:
        assert cell[:1] not in ("=", "+", "-", "@", "\t", "\r"), cell
    assert '\'=HYPERLINK("https://evil.example","click")' in cells and "''=already quoted" in cells
    assert "'Tis a plain apostrophe" in cells, "only formula-like cells change"
    path = tmp_path / "finsent-feedback.csv"
    path.write_text(exported, encoding="utf-8")
    texts = sorted(row.text for row in read_extra(path))
    assert texts == sorted(text.strip() for text in FORMULAS)  # read_extra trims whitespace, as before


@pytest.mark.parametrize("text", [*FORMULAS, "", "'", "''", "=", "-"])
def test_neutralise_and_restore_are_inverse(text: str) -> None:
    assert restore_formula(neutralise_formula(text)) == text
