"""The JSON card beside each ONNX artifact: what it is, how it was made, what it scored.

Serving checks the card at start-up: files present, sha256 values matching, labels
equal to the contract's. Any mismatch is one readable sentence in ``ModelError``.
Each file is read once into memory, hashed, and used from those bytes (``load_verified``),
so a file swapped after the check is never the one loaded; the card's file names must
stay inside the artifact folder.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from models.contract import INPUT_NAMES, SENTIMENT_LABELS, SENTIMENT_OUTPUT, TOPIC_LABELS, TOPIC_OUTPUT

CARD_NAME = "card.json"
SHIPPED_MODEL_DIR = Path(__file__).parent / "artifacts" / "finsent-v3"


class ModelError(RuntimeError):
    """The model artifact cannot be used; the message says why and what to do."""


def sha256_of_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class ModelCard:
    """The card's fields; ``extra`` keeps whatever else the file holds."""

    version: str
    model_file: str
    precision: str
    max_length: int
    base_model: str = ""
    tokenizer_file: str = "tokenizer.json"
    inputs: list[str] = field(default_factory=lambda: list(INPUT_NAMES))
    outputs: dict[str, str] = field(default_factory=lambda: {"sentiment": SENTIMENT_OUTPUT, "topic": TOPIC_OUTPUT})
    sentiment_labels: list[str] = field(default_factory=lambda: list(SENTIMENT_LABELS))
    topic_labels: list[str] = field(default_factory=lambda: list(TOPIC_LABELS))
    # True when the sentiment head was also trained on "target [SEP] text" pairs: it can then say
    # what a message means for one company it names (per-ticker sentiment); else serving uses the
    # message's label for every ticker.
    targets: bool = False
    files: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    export: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(self.__dict__, indent=2, ensure_ascii=False) + "\n"


def card_path(model: str | Path) -> Path:
    """A model directory means its card.json; a .json path is the card itself."""
    path = Path(model)
    return path if path.suffix == ".json" else path / CARD_NAME


def read_card(model: str | Path) -> ModelCard:
    """Parse a card, or raise ``ModelError`` naming what is wrong."""
    path = card_path(model)
    if not path.is_file():
        raise ModelError(f"no model card at {path}: point --model at a directory made by 'finsent export'")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        known = {k: raw[k] for k in ModelCard.__dataclass_fields__ if k in raw}
        return ModelCard(**known)
    except (ValueError, TypeError) as exc:
        raise ModelError(f"model card {path} is not a valid card ({exc})") from exc


@dataclass(frozen=True)
class VerifiedArtifact:
    """A card and the bytes of every file it lists, each checked against its sha256."""

    card: ModelCard
    folder: Path
    files: dict[str, bytes]


def member_path(folder: Path, name: str, card: Path) -> Path:
    """``folder / name`` for a plain relative name; an absolute name or one with ``..`` is refused."""
    posix, windows = PurePosixPath(name), PureWindowsPath(name)
    if (
        not name
        or posix.is_absolute()
        or windows.is_absolute()
        or windows.drive
        or ".." in posix.parts
        or ".." in windows.parts
    ):
        raise ModelError(
            f"model card {card} names the file {name!r}, which is outside its folder: "
            "a card may only name files beside it (re-export the model)"
        )
    return folder / name


def load_verified(model: str | Path) -> VerifiedArtifact:
    """Read the card, then each file it lists once, checking names, checksums and labels."""
    card = check_labels(read_card(model), model)
    path = card_path(model)
    folder = path.parent
    for name in (card.model_file, card.tokenizer_file):
        if name not in card.files:
            raise ModelError(f"model card {path} records no sha256 for {name}")
    blobs: dict[str, bytes] = {}
    for name, expected in card.files.items():
        member = member_path(folder, name, path)
        try:
            data = member.read_bytes()
        except FileNotFoundError:
            raise ModelError(f"model file {member} is missing") from None
        except OSError as exc:
            raise ModelError(f"model file {member} cannot be read ({exc.strerror or exc})") from exc
        actual = sha256_of_bytes(data)
        if actual != expected:
            raise ModelError(
                f"model file {member} does not match its card (sha256 {actual[:12]}…, "
                f"card says {expected[:12]}…): re-export or restore the file"
            )
        blobs[name] = data
    return VerifiedArtifact(card, folder, blobs)


def verify_card(model: str | Path) -> ModelCard:
    """Read the card and check files, checksums and labels against the contract."""
    return load_verified(model).card


def check_labels(card: ModelCard, model: str | Path) -> ModelCard:
    """The card's labels must be this version's contract."""
    folder = card_path(model).parent
    if card.sentiment_labels != list(SENTIMENT_LABELS):
        raise ModelError(
            f"model {folder} has sentiment labels {card.sentiment_labels}, "
            f"but this version of finsent expects {list(SENTIMENT_LABELS)}"
        )
    if card.topic_labels != list(TOPIC_LABELS):
        raise ModelError(f"model {folder} has topic labels that differ from this version's contract")
    return card


def write_card(folder: Path, card: ModelCard, name: str = CARD_NAME) -> Path:
    """Record checksums of the card's files and write it beside them."""
    card.files = {f: sha256_of(folder / f) for f in (card.model_file, card.tokenizer_file)}
    path = folder / name
    path.write_text(card.to_json(), encoding="utf-8")
    return path
