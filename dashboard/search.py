"""Full-text search over message text with the database's own machinery, for the Explore page.

What an analyst types is parsed here, never handed to the database as query syntax: words (all required),
``"phrases in quotes"``, ``prefix*`` and ``-word`` (leave out). Only letters and digits of each word reach
the database, as bound values. PostgreSQL answers from the GIN index on ``to_tsvector('english', text)``
(``plainto_tsquery`` / ``phraseto_tsquery`` per word or phrase, ``to_tsquery('word:*')`` for a prefix, joined
with ``tsquery_and``); SQLite from its FTS5 table (each word or phrase a quoted string). Both stem English
words ("cuts" finds "cut", "cutting"), and neither finds "cut" inside "shortcut". Matches come back marked
(``ts_headline`` / ``highlight``) between ``MARK_START`` and ``MARK_END``; ``segments`` splits them for display.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import reduce
from typing import Any

import pandas as pd
from sqlalchemy import and_, column, func, literal, literal_column, select, table, text
from sqlalchemy.exc import DBAPIError, OperationalError

from dashboard.data import MESSAGE_COLUMNS, Filters, cached, engine_for, message_conditions, messages_frame
from pipeline import tables as t

MAX_QUERY_CHARS = 500
MAX_TERMS = 12
MAX_WORD_CHARS = 64
COUNT_CAP = 10_000  # counting every match of a common word over a year is not worth a slow page
SHOWN_CHARS = 1000  # of a long text, the first this many characters are marked and shown
MARK_START, MARK_END = "\x02", "\x03"
HOW = 'Type words (all must appear), "a phrase" in quotes, a prefix followed by * (shar*), or -word to leave one out.'

_TOKEN = re.compile(r'(-?)"([^"]*)"?(\*?)|(-?)([^\s"]+)')
_WORD = re.compile(r"[^\W_]+")  # letters and digits only: no operator, quote, % or _ reaches the database


@dataclass(frozen=True)
class Term:
    words: tuple[str, ...]  # one word, or a phrase
    prefix: bool = False  # the last word is a prefix
    exclude: bool = False


@dataclass(frozen=True)
class Query:
    terms: tuple[Term, ...]
    notes: tuple[str, ...] = ()  # what was shortened or left out, in a sentence each

    @property
    def include(self) -> tuple[Term, ...]:
        return tuple(term for term in self.terms if not term.exclude)

    @property
    def exclude(self) -> tuple[Term, ...]:
        return tuple(term for term in self.terms if term.exclude)


class SearchError(ValueError):
    """The text cannot be searched; the message says why and what to type instead."""


def parse(raw: str) -> Query:
    """Words, phrases, prefixes and exclusions of what was typed; ``SearchError`` when nothing can be searched."""
    notes: list[str] = []
    if len(raw) > MAX_QUERY_CHARS:
        raw = raw[:MAX_QUERY_CHARS]
        notes.append(f"Only the first {MAX_QUERY_CHARS} characters of the search are used.")
    terms: list[Term] = []
    for match in _TOKEN.finditer(raw):
        quoted = match.group(2) is not None
        minus, body = (match.group(1), match.group(2)) if quoted else (match.group(4), match.group(5))
        star = (match.group(3) or "") if quoted else ""
        star = star or ("*" if body.rstrip().endswith("*") else "")
        words = tuple(w.lower()[:MAX_WORD_CHARS] for w in _WORD.findall(body))
        if words:
            terms.append(Term(words, prefix=bool(star), exclude=minus == "-"))
    if len(terms) > MAX_TERMS:
        terms = terms[:MAX_TERMS]
        notes.append(f"Only the first {MAX_TERMS} words or phrases are used.")
    if not terms:
        raise SearchError(f"There is nothing to search for in that text (no letters or digits). {HOW}")
    if all(term.exclude for term in terms):
        raise SearchError(f"A search needs at least one word to find, not only words to leave out. {HOW}")
    return Query(tuple(terms), tuple(notes))


# ---- PostgreSQL: tsquery built from bound values ----------------------------------------------------------
CONFIG: Any = literal_column(f"'{t.SEARCH_CONFIG}'::regconfig")


def _pg_term(term: Term) -> Any:
    if not term.prefix:
        return (func.phraseto_tsquery if len(term.words) > 1 else func.plainto_tsquery)(CONFIG, " ".join(term.words))
    last = func.to_tsquery(CONFIG, literal(term.words[-1] + ":*"))  # letters and digits, then the prefix mark
    if len(term.words) == 1:
        return last
    return func.tsquery_phrase(func.phraseto_tsquery(CONFIG, " ".join(term.words[:-1])), last)


def pg_tsquery(query: Query) -> Any:
    found = reduce(func.tsquery_and, [_pg_term(term) for term in query.include])
    for term in query.exclude:
        found = func.tsquery_and(found, func.tsquery_not(_pg_term(term)))
    return found


# ---- SQLite: an FTS5 expression of quoted strings -----------------------------------------------------------
def _fts_term(term: Term) -> str:
    return '"' + " ".join(term.words) + '"' + (" *" if term.prefix else "")


def fts5_expression(query: Query) -> str:
    found = " AND ".join(_fts_term(term) for term in query.include)
    return "(" + found + ")" + "".join(" NOT " + _fts_term(term) for term in query.exclude)


FTS = table(t.MESSAGES_FTS, column("rowid"))


def _matching(url: str, query: Query, filters: Filters) -> tuple[Any, Any, list[Any]]:
    """FROM clause, marked text and WHERE clauses of the matches in this store's dialect."""
    m, conds = t.messages.c, message_conditions(url, filters)
    shown = func.substr(m.text, 1, SHOWN_CHARS)
    if engine_for(url).dialect.name == "postgresql":
        tsquery = pg_tsquery(query)
        marked = func.ts_headline(
            CONFIG, shown, tsquery, literal(f"StartSel={MARK_START}, StopSel={MARK_END}, HighlightAll=true")
        )
        return t.messages, marked, [t.text_search_vector().bool_op("@@")(tsquery), *conds]
    match = text(f"{t.MESSAGES_FTS} MATCH :fts_query").bindparams(fts_query=fts5_expression(query))
    joined = t.messages.join(FTS, FTS.c.rowid == literal_column("messages.rowid"))
    marked = func.highlight(literal_column(t.MESSAGES_FTS), 0, MARK_START, MARK_END)
    return joined, marked, [match, *conds]


@dataclass(frozen=True)
class Found:
    """One page of matches, newest first, with ``marked`` text; ``total`` counted up to ``COUNT_CAP`` (+1)."""

    frame: pd.DataFrame
    total: int

    @property
    def more_than_cap(self) -> bool:
        return self.total > COUNT_CAP


@cached
def find(url: str, raw: str, filters: Filters, page: int = 1, page_size: int = 50) -> Found:
    """The messages matching ``raw`` within ``filters``, page ``page`` (from 1). Raises ``SearchError`` with a
    sentence for the analyst when the text cannot be searched or the database refuses it."""
    query = parse(raw)
    source, marked, where = _matching(url, query, filters)
    m = t.messages.c
    rows_query = (
        select(*[m[c] for c in MESSAGE_COLUMNS], marked.label("marked"))
        .select_from(source)
        .where(and_(True, *where))
        .order_by(m.event_time.desc())
        .limit(page_size)
        .offset(max(0, page - 1) * page_size)
    )
    capped = select(literal(1).label("hit")).select_from(source).where(and_(True, *where)).limit(COUNT_CAP + 1)
    try:
        with engine_for(url).connect() as conn:
            rows = conn.execute(rows_query).all()
            total = conn.execute(select(func.count()).select_from(capped.subquery())).scalar_one()
    except (OperationalError, DBAPIError) as exc:  # never an error page: say what happened
        reason = str(getattr(exc, "orig", exc)).splitlines()[0][:200]
        raise SearchError(f"The store could not run this search ({reason}). {HOW}") from exc
    frame = messages_frame([row[: len(MESSAGE_COLUMNS)] for row in rows])
    frame["marked"] = [row.marked for row in rows]
    return Found(frame, int(total))


def segments(marked: str | None) -> list[tuple[str, bool]]:
    """``marked`` text as (piece, is a match) pairs, in order; marks that do not pair up count as text."""
    pieces: list[tuple[str, bool]] = []
    for i, chunk in enumerate((marked or "").split(MARK_START)):
        if i == 0:
            pieces.append((chunk.replace(MARK_END, ""), False))
            continue
        hit, _, rest = chunk.partition(MARK_END)
        pieces += [(hit, True), (rest.replace(MARK_END, ""), False)]
    return [(piece, hit) for piece, hit in pieces if piece]
