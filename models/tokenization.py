"""Tokenisation shared by training and serving: the Rust tokenizer, padded per batch."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from models.contract import normalize_text


def load_tokenizer(path: str | Path, max_length: int) -> Tokenizer:
    """A tokenizer.json with its fixed padding turned off and truncation at ``max_length``."""
    return configure(Tokenizer.from_file(str(path)), max_length)


def tokenizer_from_json(text: str, max_length: int) -> Tokenizer:
    """The same from the text of a tokenizer.json already read (and verified) by the caller."""
    return configure(Tokenizer.from_str(text), max_length)


def configure(tokenizer: Tokenizer, max_length: int) -> Tokenizer:
    """Padding per batch (``pad_batch``), not the file's fixed padding; truncation at ``max_length``."""
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=max_length)
    return tokenizer


def encode(tokenizer: Tokenizer, texts: Sequence[str], targets: Sequence[str | None] | None = None) -> list[list[int]]:
    """Token ids of each normalised text (unpadded).

    With ``targets``, a text whose target is set is encoded as the pair "target [SEP] text": the
    model then reads it as "the sentiment of this text for that company". Truncation cuts the
    text, never the (short) target.
    """
    if targets is None or not any(targets):
        return [enc.ids for enc in tokenizer.encode_batch([normalize_text(t) for t in texts])]
    inputs: list[str | tuple[str, str]] = [
        (normalize_text(target), normalize_text(text)) if target else normalize_text(text)
        for text, target in zip(texts, targets, strict=True)
    ]
    return [enc.ids for enc in tokenizer.encode_batch(inputs)]


def pad_batch(ids: Sequence[Sequence[int]], pad_id: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Pad to the longest sequence in the batch: (input_ids, attention_mask) as int64."""
    width = max((len(row) for row in ids), default=1)
    input_ids = np.full((len(ids), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(ids), width), dtype=np.int64)
    for i, row in enumerate(ids):
        input_ids[i, : len(row)] = row
        mask[i, : len(row)] = 1
    return input_ids, mask


def pad_id_of(tokenizer: Tokenizer) -> int:
    """The id of the padding token ([PAD] for BERT-style vocabularies), 0 if unknown."""
    for token in ("[PAD]", "<pad>"):
        token_id = tokenizer.token_to_id(token)
        if token_id is not None:
            return token_id
    return 0


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length, so padding wastes little work."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
