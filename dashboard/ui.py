"""Widgets whose state lives in the URL, so a view can be shared and survives refreshes; safe labels.

Message text, keys, sources and tickers come from whoever wrote to Kafka: they are shown with
``st.text`` or in data frames, never as Markdown. Where Streamlit only takes Markdown (expander
titles, metric values, status boxes), ``md_text`` escapes them so links, images, HTML, LaTeX and
Streamlit's ``:color[...]`` directives show as the characters they are.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import tzinfo
from urllib.parse import urlencode

import streamlit as st

from dashboard import timefmt
from dashboard.identity import MAX_NAME_CHARS, Identity
from dashboard.watchlist import clean_ticker


@dataclass(frozen=True)
class View:
    """What every page gets: the store, the chosen time range, the filter options, who is looking (``None``
    until a name is known) and the tickers on their watchlist."""

    url: str
    range_name: str
    options: dict[str, list[str]]
    analyst: str | None = None
    watched: tuple[str, ...] = ()


def param(name: str, default: str | None = None) -> str | None:
    value = st.query_params.get(name)
    return value if value else default


def set_param(name: str, value: str | None) -> None:
    if value:
        st.query_params[name] = value
    elif name in st.query_params:
        del st.query_params[name]


def choose(label: str, options: list[str], key: str, default: str | None = None, allow_none: bool = True) -> str | None:
    """A select box whose value is kept in the URL under ``key``."""
    choices = (["(all)"] if allow_none else []) + options
    current = param(key, default)
    index = choices.index(current) if current in choices else 0
    value = st.sidebar.selectbox(label, choices, index=index, key=f"w_{key}")
    chosen = None if value == "(all)" else value
    set_param(key, chosen)
    return chosen


# CommonMark lets any ASCII punctuation be escaped with a backslash; these are the ones that start
# inline syntax (emphasis, code, links, images, HTML, entities, strikethrough, math, directives,
# tables) or, via ".", ":" and "@"-domains, GitHub's bare-URL autolinks
_MARKDOWN_ACTIVE = re.compile(r"([\\`*_\[\]()!<>&~$:|{}.#])")


def md_text(value: object) -> str:
    """``value`` as one line of literal text inside Markdown (whitespace collapsed, syntax escaped)."""
    text = _MARKDOWN_ACTIVE.sub(r"\\\1", " ".join(str(value).split()))
    return "\\" + text if text[:1] in ("-", "+", "=") else text  # no list item or heading underline


def md_inline(value: object) -> str:
    """Like ``md_text`` for a piece inside a line: whitespace collapsed but kept at its ends, syntax escaped."""
    return _MARKDOWN_ACTIVE.sub(r"\\\1", re.sub(r"\s+", " ", str(value)))


def pct(x: float) -> str:
    return f"{x:.0%}"


# ---- time, links, names, pages -------------------------------------------------------------------------
def viewer_zone() -> tzinfo:
    """The viewer's timezone, as the browser reports it to Streamlit; UTC when it does not."""
    return timefmt.zone(st.context.timezone)


def zone_name() -> str:
    """The viewer's IANA timezone name (for table columns), ``UTC`` when unknown."""
    zone = viewer_zone()
    return getattr(zone, "key", None) or "UTC"


def ticker_url(ticker: str, range_name: str | None = None) -> str:
    """The ticker page's URL (relative to the dashboard), keeping the time range."""
    query = {"view": "Ticker", "ticker": ticker, **({"range": range_name} if range_name else {})}
    return "./?" + urlencode(query)


def ticker_link(ticker: str, range_name: str | None = None) -> str:
    """A Markdown link to the ticker's page; a value that cannot be a ticker stays escaped text."""
    clean = clean_ticker(ticker)
    return f"[{md_text(clean)}]({ticker_url(clean, range_name)})" if clean else md_text(ticker)


def ticker_links(tickers: list[str], range_name: str | None = None) -> str:
    return " · ".join(ticker_link(k, range_name) for k in dict.fromkeys(tickers))


def ticker_column(label: str = "ticker page", width: int | None = None) -> object:
    """A table column of ``ticker_url`` links, each showing the ticker its URL names."""
    return st.column_config.LinkColumn(label, display_text=r"ticker=([^&]+)", width=width)


def analyst_name(who: Identity) -> str | None:
    """Who is looking: the signed-in name, else (local demo) the name typed in the sidebar, kept in the URL."""
    if who.name:
        return who.name
    typed = st.sidebar.text_input(
        "Your name (local demo)", value=param("who", "") or "", key="w_who", max_chars=MAX_NAME_CHARS
    )
    name = " ".join(typed.split())[:MAX_NAME_CHARS] or None
    set_param("who", name)
    return name


def current_page(key: str = "page") -> int:
    """The page number (from 1) kept in the URL under ``key``."""
    try:
        return max(1, int(param(key, "1") or "1"))
    except ValueError:
        return 1


def pager(page: int, has_more: bool, pages: int | None = None, key: str = "page") -> None:
    """Previous / Next under a list; a click moves the page in the URL and reruns."""
    if page <= 1 and not has_more:
        return
    left, middle, right = st.columns([1, 2, 1])
    middle.caption(f"Page {page}" + (f" of {pages}" if pages else ""))
    move = -1 if left.button("‹ Previous", key=f"{key}_prev", disabled=page <= 1) else 0
    move += 1 if right.button("Next ›", key=f"{key}_next", disabled=not has_more) else 0
    if move:
        set_param(key, str(page + move) if page + move > 1 else None)
        st.rerun()
