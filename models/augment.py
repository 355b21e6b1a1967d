"""Training-time augmentation: entity swap, and texts about two companies made from texts about one.

**Entity swap.** Company names and tickers in a training text are replaced by others from the
gazetteer (the S&P 500 / Nasdaq-100 list the daemon links names with), keeping the label: the model
must judge what is said, and cannot learn that a name or a ticker means up.

**Joined pairs.** Two single-company texts, each with its own label, joined with a connector
("A; B", "A, while B", "A as B", "A, but B"), give two target rows: the same joined text read for
company A carries A's label, read for company B carries B's. Most pairs join opposite labels (the case
a message-level label gets wrong); the rest join equal ones, so the model does not learn that two
companies always move apart.
"""

from __future__ import annotations

import csv
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from models.contract import SENTIMENT_LABELS, normalize_text
from models.data import Example

# The gazetteer ships with the daemon's ticker linker; training only reads the file.
GAZETTEER_CSV = Path(__file__).resolve().parents[1] / "pipeline" / "data" / "companies.csv"
CASHTAG = re.compile(r"(?<![\w$])\$([A-Za-z]{1,5})(?![\w])")
CONNECTORS: tuple[str, ...] = ("; ", ", while ", " as ", ", but ", " - ", ". Meanwhile, ", ", whereas ")
NEUTRAL = SENTIMENT_LABELS.index("neutral")


@dataclass(frozen=True)
class Company:
    ticker: str
    name: str  # the form headlines write ("Apple", "JPMorgan Chase")


def load_gazetteer(path: Path = GAZETTEER_CSV) -> list[Company]:
    """Companies with a plain short name (the first short form, else the name without legal suffixes)."""
    companies: list[Company] = []
    with path.open(encoding="utf-8") as fh:
        lines = [line for line in fh if not line.startswith("#")]
    for row in csv.DictReader(lines):
        short = (row.get("short_forms") or "").split("|")[0].strip() or row["name"].strip()
        short = re.sub(r",?\s+(Inc\.?|Corporation|Corp\.?|plc|Ltd\.?|Co\.?|Company)$", "", short)
        if short and row["ticker"].isalpha():
            companies.append(Company(row["ticker"].upper(), short))
    return companies


class EntitySwapper:
    """Replaces the companies a text names (cashtags, gazetteer names, a row's target) with random others."""

    def __init__(self, companies: Sequence[Company], seed: int = 0) -> None:
        if not companies:
            raise ValueError("entity swap needs a non-empty gazetteer")
        self.companies = list(companies)
        self.rng = random.Random(seed)
        self._ticker_of = {c.name: c.ticker for c in companies}
        names = sorted({c.name for c in companies if len(c.name) >= 4}, key=len, reverse=True)
        self._names = re.compile(r"\b(" + "|".join(re.escape(n) for n in names) + r")\b")

    def pick(self, avoid: str = "") -> Company:
        """A random company other than ``avoid`` (a ticker or a name)."""
        while True:
            company = self.rng.choice(self.companies)
            if avoid.upper() not in (company.ticker, company.name.upper()) or len(self.companies) == 1:
                return company

    def swap(self, row: Example) -> Example | None:
        """The row with its companies replaced, or None when it names none."""
        text = row.text
        target = row.target
        replacement = None
        if target and _swappable(target):
            new = self.pick(avoid=target.lstrip("$"))
            if target.startswith("$"):
                replacement = f"${new.ticker}"
            else:
                replacement = new.ticker if _looks_like_ticker(target) else new.name
            text, hits = re.compile(re.escape(target), re.IGNORECASE).subn(_HOLD, text)
            if not hits:
                replacement = None
        mapping: dict[str, Company] = {}

        def other(key: str) -> Company:
            if key not in mapping:
                mapping[key] = self.pick(avoid=key)
            return mapping[key]

        text, n_tags = CASHTAG.subn(lambda m: "$" + other(m.group(1).upper()).ticker, text)
        text, n_names = self._names.subn(lambda m: other(self._ticker_of[m.group(1)]).name, text)
        if replacement is not None:
            text, target = text.replace(_HOLD, replacement), replacement
        if replacement is None and not (n_tags or n_names):
            return None
        return replace(row, text=text, target=target, domain=row.domain + "+swap")


# Entities of the headline sets that are markets, not companies: a swap would make nonsense of them.
_NOT_COMPANIES = frozenset(
    {
        *("sensex", "nifty", "rupee", "dollar", "euro", "yen", "yuan", "pound", "gold", "silver", "crude", "oil"),
        *("brent", "copper", "market", "markets", "stocks", "shares", "bonds", "equities", "rbi", "fed", "sebi"),
        *("government", "india", "china", "us"),
    }
)
_HOLD = "\x00target\x00"


def _swappable(target: str) -> bool:
    word = target.strip().lstrip("$")
    return bool(word) and word[0].isupper() and word.lower() not in _NOT_COMPANIES


def _looks_like_ticker(s: str) -> bool:
    return s.isupper() and s.isalpha() and 1 <= len(s) <= 5


def single_company_rows(rows: Sequence[Example]) -> list[Example]:
    """Target rows made from message rows that name exactly one company by cashtag (the tag is the target)."""
    out: list[Example] = []
    for row in rows:
        if row.target is not None or row.sentiment < 0 or row.binary:
            continue
        tags = {m.group(0).upper() for m in CASHTAG.finditer(row.text)}
        if len(tags) == 1:
            first = next(CASHTAG.finditer(row.text))
            out.append(replace(row, target=first.group(0), domain=row.domain + "_single"))
    return out


def _clause(text: str, first: bool) -> str:
    text = normalize_text(text).rstrip(" .;:-")
    if not first and text[:1].isupper() and not text[:2].isupper():
        text = text[0].lower() + text[1:]
    return text


def joined_pairs(singles: Sequence[Example], n: int, seed: int = 0, opposite_share: float = 0.75) -> list[Example]:
    """``n`` joined texts from single-company target rows, two target rows each (see the module text)."""
    rng = random.Random(seed)
    by_label: dict[int, list[Example]] = {}
    for row in singles:
        if row.target and row.sentiment >= 0:
            by_label.setdefault(row.sentiment, []).append(row)
    polar = [label for label in by_label if label != NEUTRAL]
    if len(polar) < 2:
        return []
    out: list[Example] = []
    for _ in range(n):
        if rng.random() < opposite_share:
            la, lb = rng.sample(polar, 2)
            if rng.random() < 0.25 and NEUTRAL in by_label:  # one side neutral: still two different labels
                la = NEUTRAL if rng.random() < 0.5 else la
        else:
            la = lb = rng.choice(sorted(by_label))
        a, b = rng.choice(by_label[la]), rng.choice(by_label[lb])
        if a.target is None or b.target is None or a.target.lower() == b.target.lower():
            continue
        if a.target.lower() in b.text.lower() or b.target.lower() in a.text.lower():
            continue
        text = _clause(a.text, True) + rng.choice(CONNECTORS) + _clause(b.text, False)
        out.append(Example(text, sentiment=a.sentiment, target=a.target, domain="joined_target"))
        out.append(Example(text, sentiment=b.sentiment, target=b.target, domain="joined_target"))
    return out
