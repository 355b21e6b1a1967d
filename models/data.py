"""Loading the Twitter Financial News sentiment and topic data sets.

The directory is laid out as the data sets ship::

    DATA_DIR/twitter-financial-news-sentiment/sent_train.csv, sent_valid.csv
    DATA_DIR/twitter-financial-news-topic/topic_train.csv, topic_valid.csv

The official ``valid`` files are the test sets; the dev set for early stopping is a
stratified, seeded slice of ``train``.
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from models.contract import SENTIMENT_DATASET_ID_TO_LABEL, SENTIMENT_LABELS, TOPIC_LABELS, dedup_key

Task = Literal["sentiment", "topic"]
TASKS: tuple[Task, ...] = ("sentiment", "topic")
IGNORE = -100  # label id for "this row has no label for that head"

DATA_DIR_ENV = "FINSENT_DATA_DIR"
_FILES: dict[Task, tuple[str, str, str]] = {
    "sentiment": ("twitter-financial-news-sentiment", "sent_train.csv", "sent_valid.csv"),
    "topic": ("twitter-financial-news-topic", "topic_train.csv", "topic_valid.csv"),
}


class DataError(ValueError):
    """The data directory or an extra-data file is not usable."""


@dataclass(frozen=True)
class Example:
    """One labelled text; a label of ``IGNORE`` means the row carries no label for that head.

    ``target``: the row is about one company named in the text (read as the pair "target [SEP] text"),
    and ``sentiment`` is that company's label. ``binary``: the sentiment label is positive or negative
    only, from a set with no neutral class (the neutral logit is masked for it). ``domain`` names the
    set the row came from, for per-set reporting.
    """

    text: str
    sentiment: int = IGNORE
    topic: int = IGNORE
    target: str | None = None
    binary: bool = False
    domain: str = ""


@dataclass
class Splits:
    """train / dev / test examples per task, plus the test rows also seen in train."""

    train: dict[Task, list[Example]] = field(default_factory=dict)
    dev: dict[Task, list[Example]] = field(default_factory=dict)
    test: dict[Task, list[Example]] = field(default_factory=dict)
    test_dedup: dict[Task, list[Example]] = field(default_factory=dict)
    overlap: dict[Task, int] = field(default_factory=dict)  # test rows whose text occurs in train
    overlap_distinct: dict[Task, int] = field(default_factory=dict)  # distinct such texts
    extra: list[Example] = field(default_factory=list)
    # extra rows read, kept, and dropped because their text is in a test set (``drop_test_texts``)
    extra_counts: dict[str, int] = field(default_factory=dict)

    def training_rows(self) -> list[Example]:
        """Both tasks' train rows and any extra rows, in one list (the heads mask what is missing)."""
        return [*self.train["sentiment"], *self.train["topic"], *self.extra]

    def sizes(self) -> dict[str, dict[str, int]]:
        return {
            part: {task: len(rows) for task, rows in getattr(self, part).items()}
            for part in ("train", "dev", "test", "test_dedup")
        }


def resolve_data_dir(data_dir: str | os.PathLike[str] | None) -> Path:
    """The data directory from the argument or ``FINSENT_DATA_DIR``; a clear error otherwise."""
    raw = data_dir if data_dir is not None else os.environ.get(DATA_DIR_ENV)
    if not raw:
        raise DataError(f"no data directory given: pass --data-dir or set {DATA_DIR_ENV}")
    path = Path(raw).expanduser()
    for task in TASKS:
        sub, train, valid = _FILES[task]
        for name in (train, valid):
            if not (path / sub / name).is_file():
                raise DataError(f"data directory {path} lacks {sub}/{name}")
    return path


def map_label(task: Task, raw: str) -> int:
    """Dataset label id (as written in the CSV) -> index into the contract's label list."""
    try:
        value = int(raw)
    except ValueError as exc:
        raise DataError(f"{task} label {raw!r} is not an integer") from exc
    if task == "sentiment":
        if value not in SENTIMENT_DATASET_ID_TO_LABEL:
            raise DataError(f"sentiment label {value} is not one of 0, 1, 2")
        return SENTIMENT_LABELS.index(SENTIMENT_DATASET_ID_TO_LABEL[value])
    if not 0 <= value < len(TOPIC_LABELS):
        raise DataError(f"topic label {value} is outside 0..{len(TOPIC_LABELS) - 1}")
    return value


def read_csv(path: Path, task: Task) -> list[Example]:
    """Read a ``text,label`` CSV of one task."""
    rows: list[Example] = []
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            label = map_label(task, row["label"])
            text = row["text"]
            rows.append(Example(text, sentiment=label) if task == "sentiment" else Example(text, topic=label))
    return rows


def stratified_split(
    rows: Sequence[Example], task: Task, dev_fraction: float, seed: int
) -> tuple[list[Example], list[Example]]:
    """Split rows into (train, dev) keeping each label's share; deterministic for a seed."""
    if not 0 < dev_fraction < 1:
        raise ValueError(f"dev_fraction must be in (0, 1) (got: {dev_fraction})")
    by_label: dict[int, list[Example]] = defaultdict(list)
    for row in rows:
        by_label[getattr(row, task)].append(row)
    rng = random.Random(seed)
    train: list[Example] = []
    dev: list[Example] = []
    for label in sorted(by_label):
        group = list(by_label[label])
        rng.shuffle(group)
        n_dev = round(len(group) * dev_fraction)
        if len(group) > 1:
            n_dev = max(1, n_dev)
        dev.extend(group[:n_dev])
        train.extend(group[n_dev:])
    rng.shuffle(train)
    rng.shuffle(dev)
    return train, dev


def split_overlap(train: Iterable[Example], test: Sequence[Example]) -> tuple[list[Example], int]:
    """Test rows whose normalised text is not in train, and how many were."""
    seen = {dedup_key(row.text) for row in train}
    kept = [row for row in test if dedup_key(row.text) not in seen]
    return kept, len(test) - len(kept)


# OWASP CSV injection: a cell a spreadsheet would run as a formula gets a leading "'". Cells that
# already start with quotes before such a character get one more, so reading strips exactly one
# quote from any cell matching _NEUTRALISED and every text comes back as it was written.
_FORMULA = re.compile(r"'*[=+\-@\t\r]")
_NEUTRALISED = re.compile(r"'+[=+\-@\t\r]")


def neutralise_formula(cell: str) -> str:
    """``cell`` as a CSV cell no spreadsheet runs as a formula (``=HYPERLINK(…)`` → ``'=HYPERLINK(…)``)."""
    return "'" + cell if _FORMULA.match(cell) else cell


def restore_formula(cell: str) -> str:
    """The inverse of ``neutralise_formula``."""
    return cell[1:] if _NEUTRALISED.match(cell) else cell


EXTRA_COLUMNS: tuple[str, ...] = ("text", "sentiment", "topic")


def write_extra_csv(rows: Iterable[tuple[str, str | None, str | None]]) -> str:
    """(text, sentiment, topic) rows as the CSV ``read_extra`` reads: every cell quoted and neutralised."""
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writerow(EXTRA_COLUMNS)
    for row in rows:
        writer.writerow([neutralise_formula(cell or "") for cell in row])
    return out.getvalue()


def drop_test_texts(extra: Sequence[Example], test_texts: Iterable[str]) -> tuple[list[Example], int]:
    """Extra rows whose normalised text is in no test set, and how many were dropped.

    A corrected message that is also a test text would be trained on and then scored on:
    the test figures would flatter the model, and the quality gate would compare nothing.
    """
    seen = {dedup_key(text) for text in test_texts}
    kept = [row for row in extra if dedup_key(row.text) not in seen]
    return kept, len(extra) - len(kept)


def read_extra(path: Path) -> list[Example]:
    """Extra labelled rows (CSV or JSONL) with ``text`` and ``sentiment`` and/or ``topic`` names.

    CSV cells neutralised against formula injection (the dashboard's export) are read back as written.
    """
    if not path.is_file():
        raise DataError(f"extra data file {path} does not exist")
    if path.suffix.lower() in (".jsonl", ".json"):
        with path.open(encoding="utf-8") as fh:
            records = [json.loads(line) for line in fh if line.strip()]
    else:
        with path.open(newline="", encoding="utf-8") as fh:
            records = [
                {k: restore_formula(v) if isinstance(v, str) else v for k, v in rec.items()}
                for rec in csv.DictReader(fh)
            ]
    rows = []
    for i, rec in enumerate(records, start=1):
        text = str(rec.get("text") or "").strip()
        sentiment = rec.get("sentiment") or None
        topic = rec.get("topic") or None
        if not text or (sentiment is None and topic is None):
            raise DataError(f"{path} row {i}: needs text and a sentiment or topic label")
        if sentiment is not None and sentiment not in SENTIMENT_LABELS:
            raise DataError(f"{path} row {i}: sentiment {sentiment!r} is not one of {SENTIMENT_LABELS}")
        if topic is not None and topic not in TOPIC_LABELS:
            raise DataError(f"{path} row {i}: topic {topic!r} is not a known topic label")
        rows.append(
            Example(
                text,
                sentiment=SENTIMENT_LABELS.index(sentiment) if sentiment else IGNORE,
                topic=TOPIC_LABELS.index(topic) if topic else IGNORE,
            )
        )
    return rows


def load_test_sets(data_dir: str | os.PathLike[str] | None) -> Splits:
    """Test sets (raw and de-duplicated against train) only: what evaluation needs."""
    return load_splits(data_dir, dev_fraction=0.1, seed=0)


def load_splits(
    data_dir: str | os.PathLike[str] | None,
    *,
    dev_fraction: float = 0.1,
    seed: int = 13,
    extra: Sequence[Path] = (),
    limit: int | None = None,
) -> Splits:
    """Everything training needs: train/dev per task, test sets raw and de-duplicated."""
    root = resolve_data_dir(data_dir)
    splits = Splits()
    test_texts: list[str] = []
    for task in TASKS:
        sub, train_name, valid_name = _FILES[task]
        full_train = read_csv(root / sub / train_name, task)
        test = read_csv(root / sub / valid_name, task)
        test_texts.extend(r.text for r in test)  # the whole test set, whatever ``limit`` keeps
        train, dev = stratified_split(full_train, task, dev_fraction, seed)
        if limit is not None:
            train, dev, test = train[:limit], dev[: max(1, limit // 4)], test[: max(1, limit // 4)]
        splits.train[task] = train
        splits.dev[task] = dev
        splits.test[task] = test
        splits.test_dedup[task], splits.overlap[task] = split_overlap(full_train, test)
        seen = {dedup_key(r.text) for r in full_train}
        splits.overlap_distinct[task] = len({k for k in (dedup_key(r.text) for r in test) if k in seen})
    rows = [row for path in extra for row in read_extra(Path(path))]
    splits.extra, dropped = drop_test_texts(rows, test_texts)
    if extra:
        splits.extra_counts = {"read": len(rows), "kept": len(splits.extra), "dropped_in_test_sets": dropped}
    return splits
