"""The out-of-domain data sets: news headlines (SEntFiN), news paragraphs (FinEntity), forum posts (StockEmotions).

Each is read from the data directory as it ships (see the README beside each set) and split
by text with a fixed hash, so a text lands in the same part on every machine and in every run,
whatever order the file is in and whatever else is read:

    DATA_DIR/sentfin-v1.1/sentfin.csv          headlines, a label per named entity
    DATA_DIR/finentity/FinEntity.json          paragraphs, labelled entity spans
    DATA_DIR/stockemotions/{train,val,test}_stockemo.csv   posts, bullish / bearish (no neutral)

Two kinds of rows come out of them:

* **message rows** (``Example`` with a sentiment label): a headline or paragraph whose entities all
  agree, and every StockTwits post (``binary``: the neutral logit is masked in training and ignored
  in evaluation, as the set has no neutral class);
* **target rows** (``Example`` with ``target`` set): one entity of a text and that entity's own label,
  read by the model as the pair "target [SEP] text" (issue: per-company sentiment).

Nothing here is tuned on: the ``test`` part of each set is for reporting only.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from models.contract import SENTIMENT_LABELS, dedup_key
from models.data import IGNORE, DataError, Example

Part = Literal["train", "dev", "test"]
PARTS: tuple[Part, ...] = ("train", "dev", "test")
DOMAINS: tuple[str, ...] = ("sentfin", "finentity", "stockemotions")

SENTFIN = ("sentfin-v1.1", "sentfin.csv")
FINENTITY = ("finentity", "FinEntity.json")
STOCKEMOTIONS = "stockemotions"
# Share of each hash-split set in dev and test (the rest trains).
DEV_SHARE, TEST_SHARE = 10, 20
# A paragraph is cut to this many characters around the entity for a target row: the model's token
# limit would otherwise cut mentions late in a long paragraph.
TARGET_CONTEXT_CHARS = 360

NEG, NEU, POS = (SENTIMENT_LABELS.index(x) for x in ("negative", "neutral", "positive"))


def split_of(text: str, salt: str) -> Part:
    """The part a text belongs to: a fixed hash of its normalised form, so duplicates never straddle parts."""
    bucket = int(hashlib.sha256(f"{salt}:{dedup_key(text)}".encode()).hexdigest()[:8], 16) % 100
    if bucket < TEST_SHARE:
        return "test"
    if bucket < TEST_SHARE + DEV_SHARE:
        return "dev"
    return "train"


def label_id(raw: str) -> int:
    value = raw.strip().lower()
    if value not in SENTIMENT_LABELS:
        raise DataError(f"sentiment label {raw!r} is not one of {SENTIMENT_LABELS}")
    return SENTIMENT_LABELS.index(value)


@dataclass
class Annotated:
    """One text with its entities' labels (surface form as written, label id)."""

    text: str
    entities: list[tuple[str, int]]
    domain: str

    def message_label(self) -> int:
        """The text's label where every entity agrees, else ``IGNORE``."""
        labels = {label for _, label in self.entities}
        return labels.pop() if len(labels) == 1 else IGNORE

    def mixed(self) -> bool:
        return len({label for _, label in self.entities}) > 1


@dataclass
class DomainSets:
    """Each out-of-domain set's parts: annotated texts (entity sets) and message rows."""

    annotated: dict[str, dict[Part, list[Annotated]]] = field(default_factory=dict)
    messages: dict[str, dict[Part, list[Example]]] = field(default_factory=dict)
    unanchored: int = 0  # FinEntity spans whose name could not be found in their paragraph

    def message_rows(self, part: Part) -> list[Example]:
        return [row for parts in self.messages.values() for row in parts.get(part, [])]

    def target_rows(self, part: Part) -> list[Example]:
        return [row for parts in self.annotated.values() for a in parts.get(part, []) for row in target_rows(a)]

    def sizes(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for name, parts in self.messages.items():
            for part, rows in parts.items():
                out.setdefault(f"{name}_messages", {})[part] = len(rows)
        for name, aparts in self.annotated.items():
            for part, texts in aparts.items():
                out.setdefault(f"{name}_targets", {})[part] = sum(len(a.entities) for a in texts)
        return out


def target_rows(item: Annotated) -> list[Example]:
    """One target row per entity, the text cut around the entity's first mention."""
    return [
        Example(around(item.text, name), sentiment=label, target=name, domain=f"{item.domain}_target")
        for name, label in item.entities
    ]


def around(text: str, name: str, width: int = TARGET_CONTEXT_CHARS) -> str:
    """``text`` cut to about ``width`` characters around the first mention of ``name``, at word boundaries."""
    if len(text) <= width:
        return text
    at = text.lower().find(name.lower())
    if at < 0:
        return text[:width]
    start = max(0, min(at - width // 3, len(text) - width))
    end = start + width
    if start > 0:
        space = text.find(" ", start)
        start = space + 1 if 0 <= space < at else start
    if end < len(text):
        space = text.rfind(" ", at + len(name), end)
        end = space if space > 0 else end
    return text[start:end].strip()


def read_sentfin(root: Path) -> list[Annotated]:
    path = root / SENTFIN[0] / SENTFIN[1]
    items: list[Annotated] = []
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            decisions = json.loads(row["Decisions"])
            ents = [(name, label_id(label)) for name, label in decisions.items()]
            if ents:
                items.append(Annotated(row["Title"].strip(), ents, "sentfin"))
    return items


def reanchor(content: str, value: str, start: int) -> int:
    """Where ``value`` really starts: at ``start``, else nearest occurrence within 40 characters, else -1."""
    if content[start : start + len(value)] == value:
        return start
    lo = max(0, start - 40)
    near = content.find(value, lo, start + len(value) + 40)
    return near


def read_finentity(root: Path) -> tuple[list[Annotated], int]:
    """Paragraphs with their re-anchored entity spans (a name twice keeps its first label), and how many failed."""
    path = root / FINENTITY[0] / FINENTITY[1]
    items: list[Annotated] = []
    failed = 0
    for record in json.loads(path.read_text(encoding="utf-8")):
        content = record["content"]
        ents: list[tuple[str, int]] = []
        seen: set[str] = set()
        for ann in sorted(record["annotations"], key=lambda a: a["start"]):
            value = ann["value"].strip()
            if reanchor(content, value, ann["start"]) < 0:
                failed += 1
                continue
            if value.lower() not in seen:
                seen.add(value.lower())
                ents.append((value, label_id(ann["label"])))
        if ents:
            items.append(Annotated(content, ents, "finentity"))
    return items, failed


def read_stockemotions(root: Path) -> dict[Part, list[Example]]:
    """The posts as written (cashtags, emoji), bullish → positive, bearish → negative; the official splits."""
    files: dict[Part, str] = {"train": "train_stockemo.csv", "dev": "val_stockemo.csv", "test": "test_stockemo.csv"}
    out: dict[Part, list[Example]] = {}
    for part, name in files.items():
        rows: list[Example] = []
        with (root / STOCKEMOTIONS / name).open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                label = {"bullish": POS, "bearish": NEG}.get(row["senti_label"].strip().lower())
                if label is None:
                    raise DataError(f"{name}: senti_label {row['senti_label']!r} is not bullish or bearish")
                rows.append(Example(row["original"], sentiment=label, binary=True, domain="stockemotions"))
        out[part] = rows
    return out


def available(root: Path) -> list[str]:
    """Which out-of-domain sets the data directory holds."""
    have = []
    if (root / SENTFIN[0] / SENTFIN[1]).is_file():
        have.append("sentfin")
    if (root / FINENTITY[0] / FINENTITY[1]).is_file():
        have.append("finentity")
    if all((root / STOCKEMOTIONS / f"{p}_stockemo.csv").is_file() for p in ("train", "val", "test")):
        have.append("stockemotions")
    return have


def _by_part(items: Iterable[Annotated], salt: str) -> dict[Part, list[Annotated]]:
    out: dict[Part, list[Annotated]] = {p: [] for p in PARTS}
    for item in items:
        out[split_of(item.text, salt)].append(item)
    return out


def load_domains(root: Path, exclude_texts: Iterable[str] = ()) -> DomainSets:
    """Every out-of-domain set the directory holds, split; texts in ``exclude_texts`` (test sets) never train."""
    sets = DomainSets()
    blocked = {dedup_key(t) for t in exclude_texts}
    have = available(root)
    sources: list[tuple[str, list[Annotated]]] = []
    if "sentfin" in have:
        sources.append(("sentfin", read_sentfin(root)))
    if "finentity" in have:
        items, sets.unanchored = read_finentity(root)
        sources.append(("finentity", items))
    for name, items in sources:
        parts = _by_part(items, name)
        parts["train"] = [a for a in parts["train"] if dedup_key(a.text) not in blocked]
        sets.annotated[name] = parts
        sets.messages[name] = {
            part: [Example(a.text, sentiment=a.message_label(), domain=name) for a in texts if not a.mixed()]
            for part, texts in parts.items()
        }
    if "stockemotions" in have:
        posts = read_stockemotions(root)
        posts["train"] = [r for r in posts["train"] if dedup_key(r.text) not in blocked]
        sets.messages["stockemotions"] = posts
    return sets
