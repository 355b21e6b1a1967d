"""Which words of a message name each of its tickers: what the model reads as the target of a per-company pass.

A message naming several companies ("$AAPL beats, $MSFT misses") is scored once more per company,
as the pair "target [SEP] text", where the target is the company as the text writes it — the
cashtag, the bare ticker, or the linked name ("Apple") — because that is what the model was trained
to look for. A ticker the text does not write (given only in the message's ``tickers`` field) is
read as the ticker itself. Pure: no model, no Kafka.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from pipeline.schema import Event
from pipeline.tickers import CASHTAG_RE

DEFAULT_MAX_TARGETS = 8  # per-company passes per message; more tickers than this keep the message's label


def mentions(text: str, tickers: Sequence[str], linker: object | None = None) -> dict[str, str]:
    """Ticker → how the text names it (first mention), for every ticker of the message."""
    found: dict[str, str] = {}
    wanted = set(tickers)
    for m in CASHTAG_RE.finditer(text):
        ticker = m.group(1).upper()
        if ticker in wanted:
            found.setdefault(ticker, m.group(0))
    for ticker in wanted - found.keys():
        bare = re.search(rf"(?<![\w$]){re.escape(ticker)}(?!\w)", text)
        if bare:
            found[ticker] = bare.group(0)
    if linker is not None and wanted - found.keys():
        for match in linker.link(text):  # type: ignore[attr-defined]  # the daemon's CompanyLinker
            ticker, span = getattr(match, "ticker", None), getattr(match, "span", None)
            if ticker in wanted and span:
                found.setdefault(ticker, span)
    return {ticker: found.get(ticker, ticker) for ticker in tickers}


def batch_targets(scorer: object, events: Sequence[Event], linker: object | None) -> list[dict[str, str]] | None:
    """How each multi-company text of a batch names its companies, when the scorer scores companies one
    by one; ``None`` when no text needs it (the usual case: one pass per text)."""
    if not getattr(scorer, "reads_targets", False) or all(len(e.tickers) < 2 for e in events):
        return None
    return [mentions(e.text, e.tickers, linker) if len(e.tickers) >= 2 else {} for e in events]


def plan_targets(tickers: Sequence[str], max_targets: int = DEFAULT_MAX_TARGETS) -> tuple[list[str], bool]:
    """The tickers that get their own pass, and whether some were left at the message's label.

    One ticker: none (the message's label is that company's label). Two or more: each, up to
    ``max_targets`` in the message's order; a hostile message with dozens of tickers costs at most
    ``max_targets`` extra passes.
    """
    if len(tickers) < 2 or max_targets <= 0:
        return [], len(tickers) >= 2
    return list(tickers[:max_targets]), len(tickers) > max_targets


def passes(event: Event, scorer: object) -> int:
    """Model passes ``event`` costs: one, plus one per company it names where ``scorer`` reads company
    targets (at most its ``max_targets``)."""
    if not getattr(scorer, "reads_targets", False):
        return 1
    return 1 + len(plan_targets(event.tickers, getattr(scorer, "max_targets", DEFAULT_MAX_TARGETS))[0])


def first_batch(costs: Sequence[int], workers: int, max_texts: int) -> int:
    """How many texts from the front of a queue go to the next of ``workers`` free workers: the run whose passes
    (``costs``: passes per text) come closest to an even share of the queue's, at most ``max_texts`` texts, at
    least one, and leaving at least one text for each other free worker while there are enough. Shared by
    passes, not by texts, so that a worker handed the multi-company texts of a burst does not score long after
    the other (results are taken in order: the other's would wait for it)."""
    if not costs:
        return 0
    workers = max(1, workers)
    share = sum(costs) / workers
    limit = max(1, min(max_texts, len(costs) - (workers - 1)))
    taken = total = 0
    for cost in costs[:limit]:
        if taken and abs(total + cost - share) > abs(total - share):
            break  # this text would overshoot the share by more than stopping short of it
        taken += 1
        total += cost
        if total >= share:
            break
    return taken
