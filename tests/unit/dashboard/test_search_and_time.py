"""Pure pieces of the desk: what a search becomes for each database, marked text, column widths and time labels,
signed numbers, and the order of heatmap rows."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from dashboard import grid, search, timefmt
from dashboard.search import Query, SearchError, Term


@pytest.mark.parametrize(
    ("raw", "terms"),
    [
        ("fraud", [Term(("fraud",))]),
        ("Fraud PROBE", [Term(("fraud",)), Term(("probe",))]),
        ('"fraud probe" nvidia', [Term(("fraud", "probe")), Term(("nvidia",))]),
        ("shar*", [Term(("shar",), prefix=True)]),
        ('"fraud prob*"', [Term(("fraud", "prob"), prefix=True)]),
        ('"fraud prob"*', [Term(("fraud", "prob"), prefix=True)]),
        ("cut -shortcut", [Term(("cut",)), Term(("shortcut",), exclude=True)]),
        ("AT&T e-mail", [Term(("at", "t")), Term(("e", "mail"))]),
        ("'; DROP TABLE messages; --", [Term(("drop",)), Term(("table",)), Term(("messages",))]),
        ('"unclosed phrase', [Term(("unclosed", "phrase"))]),
        ("100% _under_score", [Term(("100",)), Term(("under", "score"))]),
        ("Ümlaut café", [Term(("ümlaut",)), Term(("café",))]),
    ],
)
def test_parse_keeps_words_phrases_prefixes_and_exclusions(raw: str, terms: list[Term]) -> None:
    assert list(search.parse(raw).terms) == terms


@pytest.mark.parametrize("raw", ["", "   ", "%", "_%_", '"', '""', "*", "-", "--", "&&|!", "<->", "\\"])
def test_nothing_to_search_is_a_sentence(raw: str) -> None:
    with pytest.raises(SearchError, match="nothing to search for"):
        search.parse(raw)


def test_only_exclusions_is_a_sentence() -> None:
    with pytest.raises(SearchError, match="at least one word to find"):
        search.parse("-fraud -probe")


def test_long_and_many_term_searches_are_cut_and_say_so() -> None:
    long = search.parse("x" * 10_000)
    assert long.terms == (Term(("x" * search.MAX_WORD_CHARS,)),) and "first 500 characters" in long.notes[0]
    many = search.parse(" ".join(f"w{i}" for i in range(40)))
    assert len(many.terms) == search.MAX_TERMS and any("first 12 words" in n for n in many.notes)


def test_fts5_expression_quotes_every_term() -> None:
    query = search.parse('"fraud probe" shar* nvidia -rumour')
    assert search.fts5_expression(query) == '("fraud probe" AND "shar" * AND "nvidia") NOT "rumour"'
    hostile = search.parse('NEAR(a b) OR "x" AND NOT y')
    assert search.fts5_expression(hostile) == '("near a" AND "b" AND "or" AND "x" AND "and" AND "not" AND "y")'


def test_postgresql_query_binds_values_and_never_splices_them() -> None:
    from sqlalchemy.dialects import postgresql

    query = search.pg_tsquery(search.parse('\'; DROP TABLE x; -- shar* -"rumour mill"'))
    sql = str(query.compile(dialect=postgresql.dialect()))
    assert "DROP" not in sql and "shar" not in sql, "user text only as bound parameters"
    assert sql.count("%(") == 5 and "tsquery_not(phraseto_tsquery" in sql and "to_tsquery" in sql
    bound = query.compile(dialect=postgresql.dialect()).params
    assert "shar:*" in bound.values() and "rumour mill" in bound.values()


@pytest.mark.parametrize(
    ("marked", "pieces"),
    [
        ("plain", [("plain", False)]),
        ("a \x02b\x03 c", [("a ", False), ("b", True), (" c", False)]),
        ("\x02a\x03\x02b\x03", [("a", True), ("b", True)]),
        ("x \x02open", [("x ", False), ("open", True)]),
        ("stray \x03 end", [("stray  end", False)]),
        (None, []),
    ],
)
def test_segments_split_marked_text(marked: str | None, pieces: list[tuple[str, bool]]) -> None:
    assert search.segments(marked) == pieces


def test_query_sides() -> None:
    query = Query((Term(("a",)), Term(("b",), exclude=True)))
    assert query.include == (Term(("a",)),) and query.exclude == (Term(("b",), exclude=True),)


# ---- time ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("span_s", "window_s", "bucket"),
    [
        (900, 60, 60),  # 15 minutes: one window per column
        (3600, 60, 60),
        (6 * 3600, 60, 300),
        (86400, 60, 900),
        (7 * 86400, 60, 2 * 3600),
        (365 * 86400, 60, 4 * 86400),
        (3 * 365 * 86400, 60, 14 * 86400),
        (300, 20, 20),  # the demo's 20 s windows
        (1800, 20, 20),
        (3600, 20, 60),
        (3600, 45, 45),
        (7200, 45, 90),
        (10 * 365 * 86400, 60, 40 * 86400),
    ],
)
def test_bucket_is_a_whole_number_of_windows_and_at_most_96_columns(span_s: int, window_s: int, bucket: int) -> None:
    got = timefmt.bucket_seconds(span_s, window_s)
    assert got % window_s == 0 and span_s / got <= timefmt.MAX_COLUMNS
    if bucket in (*timefmt.STEPS_S, window_s):
        assert got == bucket


def test_axis_formats_never_print_bare_minutes() -> None:
    assert timefmt.axis_format(60, 3600) == "%H:%M"
    assert timefmt.axis_format(20, 300) == "%H:%M:%S"
    assert timefmt.axis_format(3600, 7 * 86400) == "%b %-d %H:%M"
    assert timefmt.axis_format(86400, 365 * 86400) == "%b %-d"


def test_times_read_in_the_viewers_zone() -> None:
    moment = datetime(2026, 1, 5, 14, 3, 9, tzinfo=UTC)
    assert timefmt.human(moment, timefmt.zone("UTC")) == "Jan 5, 14:03"
    assert timefmt.human(moment, timefmt.zone("America/New_York"), seconds=True) == "Jan 5, 09:03:09"
    assert timefmt.zone_label(timefmt.zone("Europe/Paris"), moment) == "CET"
    assert timefmt.zone("Not/AZone") is UTC and timefmt.zone(None) is UTC


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (-0.0001, "0.00"),
        (-0.004, "0.00"),
        (0.0, "0.00"),
        (0.004, "0.00"),
        (-0.3, "−0.30"),
        (0.12, "+0.12"),
        (None, "—"),
    ],
)
def test_signed_never_prints_minus_zero(value: float | None, text: str) -> None:
    assert timefmt.signed(value) == text


@pytest.mark.parametrize(("value", "text"), [(0.004, "0 pp"), (-0.004, "0 pp"), (0.12, "+12 pp"), (-0.031, "−3 pp")])
def test_points(value: float, text: str) -> None:
    assert timefmt.points(value) == text


# ---- heatmap rows -------------------------------------------------------------------------------------------


def test_rows_go_by_how_far_the_latest_window_is_above_its_baseline() -> None:
    frame = pd.DataFrame({"key": ["A", "B", "C", "D", "E"], "n": [10, 50, 30, 5, 99]})
    latest = pd.DataFrame({"key": ["A", "B", "C", "D"], "above": [0.05, -0.10, 0.30, 0.05]})
    assert grid.order_rows(frame, latest) == ["C", "A", "D", "B", "E"], "ties by volume; no closed window last"
    assert grid.order_rows(frame, latest, ["E", "ZZZ"]) == ["E", "C", "A", "D", "B"], "the watchlist first"
