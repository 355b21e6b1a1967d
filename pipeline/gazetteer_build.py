"""Regenerate ``pipeline/data/companies.csv`` from the PyPI package ``pytickersymbols`` (offline).

Serving never imports this module: it reads the committed CSV through ``pipeline.linker``. To
regenerate after a ``pytickersymbols`` release (constituents change a few times a year)::

    .venv/bin/pip install pytickersymbols
    .venv/bin/python -m pipeline.gazetteer_build            # rewrites pipeline/data/companies.csv
    git diff pipeline/data/companies.csv                    # review what moved

The source's names are Wikipedia's, with a few errors fixed below (``NAME_FIXES``). Short forms
drop legal and generic suffixes (``Apple Inc.`` -> ``Apple``); forms that are everyday words are
listed as ambiguous (``AMBIGUOUS``), so the linker needs a financial context before it links them;
forms that name something else far more often than the company are never generated (``NEVER``).
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from importlib import metadata
from pathlib import Path

INDICES = ("S&P 500", "NASDAQ 100")
OUT = Path(__file__).parent / "data" / "companies.csv"

# Wrong or awkward names in pytickersymbols 1.17.10 (checked by hand against the issuers' names).
NAME_FIXES = {
    "AIZ": "Assurant, Inc.",  # the source repeats Arthur J. Gallagher's name
    "APO": "Apollo Global Management",  # the source names a different Apollo REIT
    "PTC": "PTC Inc.",
    "EBAY": "eBay Inc.",
    "BF.B": "Brown-Forman",
    "NSC": "Norfolk Southern",
    "BEN": "Franklin Templeton",
    "BDX": "Becton Dickinson",
    "SLB": "SLB (Schlumberger)",
    "NDAQ": "Nasdaq, Inc.",
}
# One ticker per company when the source lists share classes separately.
SHARE_CLASS_DUPLICATES = {"GOOG": "GOOGL", "FOX": "FOXA", "NWS": "NWSA"}
EXTRA_FORMS = {"SLB": ["SLB", "Schlumberger"], "BF.B": ["Brown–Forman"], "BDX": ["BD"], "EL": ["Estee Lauder"]}

_LEGAL = r"(?:Inc\.?|Incorporated|Corporation|Corp\.?|Company|Companies|plc|Limited|Ltd\.?|& plc|N\.V\.|S\.A\.)"
_GENERIC = (
    r"(?:Holdings?|Group|International|Worldwide|Technologies|Technology|Pharmaceuticals|Laboratories|"
    r"Sciences|Solutions|Systems|Networks|Semiconductors|Platforms|Enterprise|Global)"
)
_SUFFIX_RE = re.compile(rf"(?:,?\s+(?:(?:and|&)\s+)?(?:{_LEGAL}|{_GENERIC}))+$")
_PAREN_RE = re.compile(r"\s*\(.*\)$")

# Forms that are everyday words, places or common names: linked only with a financial context.
AMBIGUOUS = frozenset(
    [
        "Apple",
        "Amazon",
        "Target",
        "Visa",
        "Oracle",
        "Ford",
        "Ball",
        "Pool",
        "Progressive",
        "Dover",
        "Block",
        "Booking",
        "Carnival",
        "Cooper",
        "Everest",
        "Edison",
        "Fox",
        "Hartford",
        "Match",
        "Mosaic",
        "Waters",
        "Williams",
        "Arm",
        "Caterpillar",
        "Tapestry",
        "Corning",
        "Vertex",
        "Zebra",
        "Jacobs",
        "Apollo",
        "Otis",
        "Monster",
        "Delta",
        "Southwest",
        "Meta",
        "Coke",
        "Lilly",
        "Square",
        "Regions",
        "Align",
        "Cadence",
        "Paramount",
        "Carrier",
    ]
)
AMBIGUOUS_PHRASES = frozenset({"Global Payments", "Palo Alto", "Charles River", "Public Storage", "Dollar Tree"})
# Short forms never generated: an index, an exchange or a generic word far more often than the company.
NEVER = frozenset({"American", "News", "Southern", "Nasdaq", "Dow", "S&P", "Public Service", "Hewlett Packard"})


def short_forms(name: str) -> list[str]:
    """``Apple Inc.`` -> ``["Apple"]``; ``The Walt Disney Company`` -> ``["Walt Disney"]``."""
    forms = []
    base = _PAREN_RE.sub("", re.sub(r"^The\s+", "", name)).strip()
    for candidate in (base, _SUFFIX_RE.sub("", base).strip(" ,")):
        if candidate and candidate != name and candidate not in NEVER and candidate not in forms:
            forms.append(candidate)
    return forms


def is_ambiguous(form: str) -> bool:
    """A single everyday word (``Apple``) or a listed everyday phrase (``Palo Alto``)."""
    return form in AMBIGUOUS_PHRASES or (" " not in form and form in AMBIGUOUS)


def build_rows() -> list[dict[str, str]]:
    """Constituents of ``INDICES`` -> rows of ``companies.csv`` (sorted by ticker)."""
    from pytickersymbols.indices_data import INDICES as SOURCE  # build-time only

    names: dict[str, str] = {}
    for index in INDICES:
        for company in SOURCE[index]["companies"]:
            ticker = SHARE_CLASS_DUPLICATES.get(company["symbol"], company["symbol"])
            names.setdefault(ticker, NAME_FIXES.get(ticker, company["name"]))
    rows = []
    for ticker, name in sorted(names.items()):
        forms = short_forms(name) + [f for f in EXTRA_FORMS.get(ticker, []) if f != name]
        forms = list(dict.fromkeys(forms))
        ambiguous = [f for f in [name, *forms] if is_ambiguous(f)]
        rows.append(
            {"ticker": ticker, "name": name, "short_forms": "|".join(forms), "ambiguous_forms": "|".join(ambiguous)}
        )
    return rows


def write_csv(rows: list[dict[str, str]], path: Path = OUT) -> None:
    """The CSV with a ``#`` header that records source, licence, version and date."""
    version = metadata.version("pytickersymbols")
    header = [
        f"# S&P 500 and Nasdaq-100 constituents: {len(rows)} companies (one ticker per company).",
        f"# Source: PyPI package pytickersymbols {version} (https://github.com/portfolioplus/pytickersymbols),",
        "#   MIT licence, Copyright (c) 2023 portfolio+; its names come from Wikipedia's constituent tables.",
        f"# Generated {dt.date.today().isoformat()} by `python -m pipeline.gazetteer_build` (fixes and",
        "#   ambiguity lists are in that module). short_forms and ambiguous_forms are '|'-separated.",
    ]
    with path.open("w", newline="", encoding="utf-8") as fh:
        fh.write("\n".join(header) + "\n")
        writer = csv.DictWriter(
            fh, fieldnames=["ticker", "name", "short_forms", "ambiguous_forms"], lineterminator="\n"
        )
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    write_csv(build_rows())
    print(f"wrote {OUT}")
