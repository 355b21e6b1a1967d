"""Widgets whose state lives in the URL, so a view can be shared and survives refreshes; safe labels.

Message text, keys, sources and tickers come from whoever wrote to Kafka: they are shown with
``st.text`` or in data frames, never as Markdown. Where Streamlit only takes Markdown (expander
titles, metric values, status boxes), ``md_text`` escapes them so links, images, HTML, LaTeX and
Streamlit's ``:color[...]`` directives show as the characters they are.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import streamlit as st


@dataclass(frozen=True)
class View:
    """What every page gets: the store, the chosen time range and the filter options."""

    url: str
    range_name: str
    options: dict[str, list[str]]


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


def pct(x: float) -> str:
    return f"{x:.0%}"
