"""Company-name linker on the training texts: recall on hidden cashtags, precision on a reviewed sample.

Its speed is a benchmark figure (benchmarks/linker_speed.py), not a test.

Recall: a text with a cashtag of a gazetteer company that also writes one of that company's forms
(any case) is a positive; the cashtags are removed and the linker must find the ticker from the name
alone. Precision: texts without a cashtag, one in ten by hash; every (text, ticker) the linker gives
there is judged by hand in ``tests/fixtures/linker_reviewed.csv`` (an unreviewed link counts as wrong).
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
from collections import defaultdict
from pathlib import Path

import pytest

from pipeline.linker import default_linker, load_entries
from pipeline.tickers import CASHTAG_RE
from tests.conftest import missing

pytestmark = [pytest.mark.integration, pytest.mark.quality]

FILES = (
    "twitter-financial-news-sentiment/sent_train.csv",
    "twitter-financial-news-sentiment/sent_valid.csv",
    "twitter-financial-news-topic/topic_train.csv",
    "twitter-financial-news-topic/topic_valid.csv",
)
REVIEWED = Path(__file__).parents[1] / "fixtures" / "linker_reviewed.csv"
RECALL_FLOOR = 0.93  # measured 0.937 (1,510 of 1,611)
PRECISION_FLOOR = 0.98  # measured 0.991 (324 of 327)
_HIDE_RE = re.compile(r"(?<![\w$])\$[A-Za-z]{1,6}(?:\.[A-Za-z]{1,2})?(?![\w])")


def _data_dir() -> Path:
    root = os.environ.get("FINSENT_DATA_DIR")
    if not root or not all((Path(root) / name).is_file() for name in FILES):
        missing("the training data", "set FINSENT_DATA_DIR to the folder that holds the two data sets")
    return Path(str(root))


def _read_texts(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8") as fh:
        return [row["text"] for row in csv.DictReader(fh)]


@pytest.fixture(scope="module")
def texts() -> list[str]:
    root = _data_dir()
    return list(dict.fromkeys(t for name in FILES for t in _read_texts(root / name)))


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _form_patterns() -> dict[str, re.Pattern[str]]:
    forms: dict[str, set[str]] = defaultdict(set)
    for entry in load_entries():
        if entry.ticker:
            forms[entry.ticker].add(entry.form)
    return {
        ticker: re.compile(
            r"(?<!\w)(?:" + "|".join(re.escape(f) for f in sorted(fs, key=len, reverse=True)) + r")(?!\w)", re.I
        )
        for ticker, fs in forms.items()
    }


def test_recall_on_hidden_cashtags(texts: list[str]) -> None:
    linker = default_linker()
    patterns = _form_patterns()
    positives = []
    for text in texts:
        tagged = {t.upper() for t in CASHTAG_RE.findall(text)} & linker.tickers
        hidden = _HIDE_RE.sub(" ", text)
        positives += [(hidden, t) for t in tagged if patterns[t].search(hidden)]
    found = sum(ticker in linker.tickers_in(hidden) for hidden, ticker in positives)
    recall = found / len(positives)
    print(f"\nlinker recall: {found}/{len(positives)} = {recall:.3f}")
    assert len(positives) > 1500
    assert recall >= RECALL_FLOOR


def test_precision_on_the_reviewed_sample(texts: list[str]) -> None:
    linker = default_linker()
    with REVIEWED.open(newline="", encoding="utf-8") as fh:
        reviewed = {
            (r["text_key"], r["ticker"]): r["correct"] == "1"
            for r in csv.DictReader(line for line in fh if not line.startswith("#"))
        }
    sample = [t for t in texts if not CASHTAG_RE.search(t) and int(text_key(t), 16) % 10 == 0]
    links = {(text_key(t), ticker) for t in sample for ticker in linker.tickers_in(t)}
    correct = sum(reviewed.get(link, False) for link in links)
    unreviewed = sorted(link for link in links if link not in reviewed)
    precision = correct / len(links)
    print(f"\nlinker precision: {correct}/{len(links)} = {precision:.3f} ({len(unreviewed)} unreviewed count as wrong)")
    assert len(sample) > 2000
    assert precision >= PRECISION_FLOOR, f"unreviewed links: {unreviewed[:10]}"
