"""The model's contract: labels, tensor names, limits and text normalisation.

Imported by training, export, evaluation and the serving daemon alike, so it must
stay free of torch and transformers.
"""

from __future__ import annotations

import re

SENTIMENT_LABELS: tuple[str, ...] = ("negative", "neutral", "positive")
NEUTRAL_INDEX = SENTIMENT_LABELS.index("neutral")

TOPIC_LABELS: tuple[str, ...] = (
    "Analyst Update",
    "Fed | Central Banks",
    "Company | Product News",
    "Treasuries | Corporate Debt",
    "Dividend",
    "Earnings",
    "Energy | Oil",
    "Financials",
    "Currencies",
    "General News | Opinion",
    "Gold | Metals | Materials",
    "IPO",
    "Legal | Regulation",
    "M&A | Investments",
    "Macro",
    "Markets",
    "Politics",
    "Personnel Change",
    "Stock Commentary",
    "Stock Movement",
)

# The sentiment data set's ids: 0 = Bearish, 1 = Bullish, 2 = Neutral.
SENTIMENT_DATASET_ID_TO_LABEL: dict[int, str] = {0: "negative", 1: "positive", 2: "neutral"}

INPUT_NAMES: tuple[str, ...] = ("input_ids", "attention_mask")
SENTIMENT_OUTPUT = "sentiment_probs"
TOPIC_OUTPUT = "topic_probs"
OUTPUT_NAMES: tuple[str, ...] = (SENTIMENT_OUTPUT, TOPIC_OUTPUT)
DYNAMIC_AXES: dict[str, dict[int, str]] = {
    "input_ids": {0: "batch", 1: "sequence"},
    "attention_mask": {0: "batch", 1: "sequence"},
    SENTIMENT_OUTPUT: {0: "batch"},
    TOPIC_OUTPUT: {0: "batch"},
}

DEFAULT_MAX_LENGTH = 64
ONNX_OPSET = 17

_URL_RE = re.compile(r"https?://\S+", re.IGNORECASE)
_SPACE_RE = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    """The text the model sees: links removed (they carry no signal), whitespace collapsed."""
    return _SPACE_RE.sub(" ", _URL_RE.sub(" ", text)).strip()


def dedup_key(text: str) -> str:
    """Key under which two texts count as the same story (case-, link- and space-insensitive)."""
    return normalize_text(text).lower()
