"""Widgets whose state lives in the URL, so a view can be shared and survives refreshes."""

from __future__ import annotations

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


def pct(x: float) -> str:
    return f"{x:.0%}"
