"""A synthetic news-and-comments stream with a scriptable negative spike.

Headlines are written from templates per topic and sentiment, with real-looking
companies, tickers and numbers; some stories are repeated (retweets), and a small
share of records is malformed so the dead-letter path is exercised too.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass

COMPANIES: tuple[tuple[str, str], ...] = (
    ("Apple", "AAPL"),
    ("Microsoft", "MSFT"),
    ("Nvidia", "NVDA"),
    ("Tesla", "TSLA"),
    ("Amazon", "AMZN"),
    ("Exxon Mobil", "XOM"),
    ("Chevron", "CVX"),
    ("JPMorgan", "JPM"),
    ("Goldman Sachs", "GS"),
    ("Pfizer", "PFE"),
    ("Boeing", "BA"),
    ("Netflix", "NFLX"),
    ("Intel", "INTC"),
    ("Walmart", "WMT"),
    ("Coca-Cola", "KO"),
    ("Meta Platforms", "META"),
    ("AMD", "AMD"),
    ("Ford", "F"),
    ("Disney", "DIS"),
    ("Newmont", "NEM"),
)
BANKS = ("Morgan Stanley", "Goldman Sachs", "JPMorgan", "Barclays", "UBS", "Jefferies", "Citi", "BofA")
SOURCES = ("reuters", "bloomberg", "twitter", "forum", "wire")

# Per topic: (negative, neutral, positive) templates. {c} company, {t} ticker, {n}/{m} numbers, {b} bank.
TEMPLATES: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "Analyst Update": (
        ("{b} downgrades {c} to underweight, cuts price target to ${n}",),
        ("{b} initiates coverage of {c} with equal-weight rating",),
        ("{b} upgrades {c} to buy, raises price target to ${n}",),
    ),
    "Fed | Central Banks": (
        ("Fed signals more rate hikes as inflation stays stubbornly high",),
        ("Fed minutes due on Wednesday; officials speak at {n} conferences this week",),
        ("Fed signals rate cuts ahead as inflation cools",),
    ),
    "Company | Product News": (
        ("{c} recalls {n},000 vehicles over safety defect",),
        ("{c} unveils new product lineup at annual event",),
        ("{c} wins ${n} million contract, expands partnership",),
    ),
    "Treasuries | Corporate Debt": (
        ("{c} bonds slump after credit rating cut to junk",),
        ("{c} prices ${n} million offering of senior notes due 20{m}",),
        ("Treasury yields ease as investors welcome strong auction",),
    ),
    "Dividend": (
        ("{c} suspends its dividend to preserve cash",),
        ("{c} declares quarterly dividend of $0.{m}",),
        ("{c} raises quarterly dividend by {m}%",),
    ),
    "Earnings": (
        ("{c} misses earnings estimates and cuts full-year outlook",),
        ("{c} to report third-quarter results on October {m}",),
        ("{c} beats earnings estimates, revenue up {m}%",),
    ),
    "Energy | Oil": (
        ("Oil prices plunge {m}% as demand fears mount",),
        ("OPEC+ to meet on {m} June to review output policy",),
        ("Oil rallies {m}% as inventories draw down sharply",),
    ),
    "Financials": (
        ("{c} Q3 GAAP EPS of -$0.{m} misses by $0.{n}",),
        ("{c} Q3 revenue of ${n}M in line with estimates",),
        ("{c} Q3 GAAP EPS of $1.{m} beats by $0.{n}",),
    ),
    "Currencies": (
        ("Dollar slumps to {m}-month low as traders flee",),
        ("Euro steady against the dollar ahead of ECB decision",),
        ("Yen rebounds strongly after intervention",),
    ),
    "General News | Opinion": (
        ("Why the selloff in {c} could get much worse",),
        ("What to watch in markets this week",),
        ("Why {c} could be the best stock to own this decade",),
    ),
    "Gold | Metals | Materials": (
        ("Gold slides {m}% as dollar strengthens",),
        ("Copper holds near ${n} a tonne ahead of China data",),
        ("Gold hits record high as investors seek safety",),
    ),
    "IPO": (
        ("{c} spin-off withdraws IPO amid market turmoil",),
        ("{c} spin-off files for IPO on the Nasdaq",),
        ("{c} spin-off IPO soars {m}% in market debut",),
    ),
    "Legal | Regulation": (
        ("{c} fined ${n} million by regulators over misconduct",),
        ("SEC publishes comment period on rule affecting {c}",),
        ("{c} shares jump after court rules in its favor",),
    ),
    "M&A | Investments": (
        ("{c} deal collapses after regulators block merger",),
        ("{c} in talks to acquire software maker for ${n} million",),
        ("{c} shares jump on ${n} billion takeover offer",),
    ),
    "Macro": (
        ("US economy shrinks {m}% as recession fears grow",),
        ("US retail sales report due Thursday; consensus {n} billion",),
        ("US economy adds {n},000 jobs, beating forecasts",),
    ),
    "Markets": (
        ("Stocks tumble as Dow sheds {n} points",),
        ("Stock futures flat ahead of inflation data",),
        ("S&P 500 closes at record high as tech rallies",),
    ),
    "Politics": (
        ("Government shutdown looms as budget talks collapse",),
        ("Senate to vote on spending bill next week",),
        ("Lawmakers reach bipartisan deal to avert shutdown",),
    ),
    "Personnel Change": (
        ("{c} CEO resigns abruptly amid accounting probe",),
        ("{c} appoints new chief financial officer",),
        ("{c} names celebrated turnaround expert as CEO",),
    ),
    "Stock Commentary": (
        ("{c} stock is overvalued and headed lower, says short seller",),
        ("Is {c} stock a buy right now?",),
        ("{c} stock has room to run, bulls say",),
    ),
    "Stock Movement": (
        ("{c} shares sink {m}% after weak guidance",),
        ("{c} shares little changed in early trading",),
        ("{c} shares surge {m}% to an all-time high",),
    ),
}
SPIKE_TEMPLATES = (
    "{c} shares plunge {m}% after fraud allegations against management",
    "{c} slashes guidance, stock tumbles {m}% to a multi-year low",
    "{b} downgrades {c} to sell, cuts price target {m}%",
    "{c} misses badly and warns of {n} layoffs as demand collapses",
    "Regulators open investigation into {c} accounting; shares crater",
    "${t} crashing hard, this is a disaster for {c} holders",
)
TICKERS_FIELD_SHARE = 0.2
CASHTAG_SHARE = 0.3
COMMENT_PREFIXES = ("", "", "Wow. ", "Ugh, ", "Called it: ", "Thoughts? ")
MALFORMED: tuple[bytes, ...] = (
    b"{not json",
    b"\xff\xfe\x00garbage",
    b'{"title": "no text field"}',
    b'{"text": ""}',
    b"[1, 2, 3]",
    b'{"text": 42}',
)


@dataclass(frozen=True)
class SpikeScript:
    """A burst of negative news on one company, starting ``start_s`` into the stream."""

    ticker: str = "NVDA"
    start_s: float = 60.0
    duration_s: float = 40.0
    share: float = 0.45  # of the messages during the burst


@dataclass(frozen=True)
class SyntheticConfig:
    seed: int = 7
    negative_share: float = 0.12
    positive_share: float = 0.22
    repeat_share: float = 0.08
    malformed_share: float = 0.01
    comment_share: float = 0.25
    spike: SpikeScript | None = SpikeScript()


class SyntheticStream:
    """``record(elapsed_s, now_ms)`` gives the next record's value (bytes), JSON or deliberately malformed."""

    def __init__(self, config: SyntheticConfig = SyntheticConfig()) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.recent: list[dict[str, object]] = []
        self.count = 0
        names = {t: c for c, t in COMPANIES}
        self.spike_company = names.get(config.spike.ticker, config.spike.ticker) if config.spike else ""

    def _fill(self, template: str, company: tuple[str, str]) -> str:
        r = self.rng
        return template.format(c=company[0], t=company[1], b=r.choice(BANKS), n=r.randint(2, 950), m=r.randint(2, 28))

    def _message(self, now_ms: int, in_spike: bool) -> dict[str, object]:
        r, cfg = self.rng, self.config
        if in_spike and cfg.spike and r.random() < cfg.spike.share:
            company = (self.spike_company, cfg.spike.ticker)
            text = self._fill(r.choice(SPIKE_TEMPLATES), company)
            kind = "comment" if text.startswith("$") else "news"
        else:
            company = r.choice(COMPANIES)
            topic = r.choice(tuple(TEMPLATES))
            roll = r.random()
            sentiment = 0 if roll < cfg.negative_share else 2 if roll < cfg.negative_share + cfg.positive_share else 1
            text = self._fill(r.choice(TEMPLATES[topic][sentiment]), company)
            kind = "comment" if r.random() < cfg.comment_share else "news"
            if kind == "comment":
                text = r.choice(COMMENT_PREFIXES) + text
        # as real feeds do: a few messages carry a tickers field, some a cashtag, most only name the company
        named = company[0] in text
        tickers = [company[1]] if named and r.random() < TICKERS_FIELD_SHARE else []
        if named and r.random() < CASHTAG_SHARE:
            text = f"{text} ${company[1]}"
        self.count += 1
        return {
            "id": f"syn-{cfg.seed}-{self.count}",
            "text": text,
            "published_at": now_ms,
            "source": "twitter" if kind == "comment" else r.choice(SOURCES),
            "kind": kind,
            "tickers": tickers,
        }

    def in_spike(self, elapsed_s: float) -> bool:
        s = self.config.spike
        return s is not None and s.start_s <= elapsed_s < s.start_s + s.duration_s

    def record(self, elapsed_s: float, now_ms: int) -> bytes:
        r, cfg = self.rng, self.config
        if r.random() < cfg.malformed_share:
            return r.choice(MALFORMED)
        if self.recent and r.random() < cfg.repeat_share:
            repeat = dict(r.choice(self.recent))
            self.count += 1
            repeat.update(id=f"syn-{cfg.seed}-{self.count}", published_at=now_ms, source="twitter", kind="comment")
            repeat["text"] = f"RT {repeat['text']}"
            return json.dumps(repeat).encode()
        message = self._message(now_ms, self.in_spike(elapsed_s))
        self.recent = ([*self.recent, message])[-200:]
        return json.dumps(message).encode()

    def take(self, n: int, start_ms: int, step_ms: int) -> Iterator[bytes]:
        """``n`` records with event times ``step_ms`` apart (for files and tests)."""
        for i in range(n):
            yield self.record(i * step_ms / 1000, start_ms + i * step_ms)
