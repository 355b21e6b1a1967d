"""Ticker extraction: given tickers, cashtags ($AAPL), watchlist symbols and company names in the text.

Each ticker of a message keeps where it came from, in this order of precedence: ``given`` (the
message's own ``tickers`` field), ``cashtag``, ``watchlist`` (an upper-case word of the
configured watchlist), ``name`` (a company named in plain text, found by ``pipeline.linker``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal, Protocol

CASHTAG_RE = re.compile(r"(?<![\w$])\$([A-Za-z]{1,6}(?:\.[A-Za-z]{1,2})?)(?![\w])")
_WORD_RE = re.compile(r"\b[A-Z][A-Z.]{0,6}\b")
MAX_TICKERS = 16

TickerSource = Literal["given", "cashtag", "watchlist", "name"]


class NameLinker(Protocol):
    def tickers_in(self, text: str) -> list[str]: ...


def normalize_ticker(raw: str) -> str | None:
    """``$aapl`` -> ``AAPL``; ``None`` for something that is not a ticker."""
    ticker = raw.strip().lstrip("$").upper()
    if not ticker or len(ticker) > 10 or not re.fullmatch(r"[A-Z][A-Z0-9.\-]*", ticker):
        return None
    return ticker


def ticker_sources(
    text: str,
    given: Iterable[str] = (),
    watchlist: frozenset[str] = frozenset(),
    linker: NameLinker | None = None,
) -> dict[str, TickerSource]:
    """Ticker -> where it came from, sorted by ticker, at most ``MAX_TICKERS``.

    A watchlist ticker counts when it appears as an upper-case word (``AAPL rallies`` for a
    watchlist holding AAPL, but ``a`` never counts for ``A``).
    """
    found: dict[str, TickerSource] = {}
    for ticker in (normalize_ticker(g) for g in given):
        if ticker:
            found.setdefault(ticker, "given")
    for tag in CASHTAG_RE.findall(text):
        found.setdefault(tag.upper(), "cashtag")
    if watchlist:
        for word in _WORD_RE.findall(text):
            if word in watchlist:
                found.setdefault(word, "watchlist")
    if linker is not None:
        for ticker in linker.tickers_in(text):
            found.setdefault(ticker, "name")
    return dict(sorted(found.items())[:MAX_TICKERS])


def extract_tickers(text: str, given: Iterable[str] = (), watchlist: frozenset[str] = frozenset()) -> list[str]:
    """Tickers of a message, sorted and unique, at most ``MAX_TICKERS`` (no company-name linking)."""
    return list(ticker_sources(text, given, watchlist))
