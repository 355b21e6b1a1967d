"""Ticker extraction: given tickers, cashtags ($AAPL) and watchlist names in the text."""

from __future__ import annotations

import re
from collections.abc import Iterable

CASHTAG_RE = re.compile(r"(?<![\w$])\$([A-Za-z]{1,6}(?:\.[A-Za-z]{1,2})?)(?![\w])")
_WORD_RE = re.compile(r"\b[A-Z][A-Z.]{0,6}\b")
MAX_TICKERS = 16


def normalize_ticker(raw: str) -> str | None:
    """``$aapl`` -> ``AAPL``; ``None`` for something that is not a ticker."""
    ticker = raw.strip().lstrip("$").upper()
    if not ticker or len(ticker) > 10 or not re.fullmatch(r"[A-Z][A-Z0-9.\-]*", ticker):
        return None
    return ticker


def extract_tickers(text: str, given: Iterable[str] = (), watchlist: frozenset[str] = frozenset()) -> list[str]:
    """Tickers of a message, sorted and unique, at most ``MAX_TICKERS``.

    The message's own ``tickers`` field, every cashtag, and every watchlist ticker that
    appears in the text as an upper-case word (so ``AAPL rallies`` counts for a watchlist
    holding AAPL, but ``a`` never counts for ``A``).
    """
    found = {t for t in (normalize_ticker(g) for g in given) if t}
    found.update(m.upper() for m in CASHTAG_RE.findall(text))
    if watchlist:
        found.update(w for w in _WORD_RE.findall(text) if w in watchlist)
    return sorted(found)[:MAX_TICKERS]
