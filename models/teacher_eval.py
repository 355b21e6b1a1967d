"""The whole teacher at inference: every layer, both heads, any rows; its figures on every test set.

python -m models.teacher evaluate runs/teacher/best --data-dir DATA   # writes teacher.json["test"]
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from models.contract import SENTIMENT_LABELS, TOPIC_LABELS
from models.corpus import build_corpus, score_set
from models.data import Example
from models.hardware import bf16_pays
from models.teacher import TopStack, load_encoder
from models.tokenization import encode, load_tokenizer, pad_batch, pad_id_of


def load_teacher(folder: str | Path, device: str = "cpu") -> tuple[Any, TopStack, Any, dict[str, Any]]:
    """The whole teacher: the base encoder with its trained top layers, the heads, its tokenizer."""
    meta = json.loads((Path(folder) / "teacher.json").read_text())
    encoder = load_encoder(meta["base_model"]).to(device).eval()
    top = TopStack(encoder, meta["cache_layers"], 0.0).to(device)  # shares the encoder's top layer modules
    top.load_state_dict(torch.load(Path(folder) / "teacher.pt", map_location=device, weights_only=True))
    top.eval()
    tokenizer = load_tokenizer(Path(meta["base_model"]) / "tokenizer.json", meta["max_length"])
    return encoder, top, tokenizer, meta


@torch.no_grad()
def teacher_predict(
    teacher: tuple[Any, TopStack, Any, dict[str, Any]], rows: Sequence[Example], bf16: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Logits of both heads for any rows (company targets read as pairs), through every layer."""
    encoder, top, tokenizer, _ = teacher
    pad_id = tokenizer.token_to_id("<pad>")
    pad_id = pad_id_of(tokenizer) if pad_id is None else pad_id
    ids = encode(tokenizer, [r.text for r in rows], [r.target for r in rows])
    sent = np.zeros((len(ids), len(SENTIMENT_LABELS)), dtype=np.float32)
    topic = np.zeros((len(ids), len(TOPIC_LABELS)), dtype=np.float32)
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    device = next(top.parameters()).device
    for start in range(0, len(order), 64):
        idx = order[start : start + 64]
        input_ids, mask = pad_batch([ids[i] for i in idx], pad_id)
        m = torch.from_numpy(mask).to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16_pays(device.type, bf16)):
            hidden = encoder(input_ids=torch.from_numpy(input_ids).to(device), attention_mask=m).last_hidden_state
            w = m.unsqueeze(-1).to(hidden.dtype)
            pooled = ((hidden * w).sum(1) / w.sum(1).clamp(min=1e-9)).float()
        sent[idx] = top.sentiment_head(pooled).cpu().numpy()
        topic[idx] = top.topic_head(pooled).cpu().numpy()
    return sent, topic


def evaluate_teacher(folder: str | Path, data_dir: str | None) -> dict[str, Any]:
    """The teacher's figures on every test set, written into ``folder/teacher.json`` under ``test``."""
    teacher = load_teacher(folder)
    corpus = build_corpus(data_dir)
    results = {}
    for name, rows in tqdm(corpus.test.items(), desc="teacher on the test sets"):
        s, t = teacher_predict(teacher, rows)
        results[name] = score_set(rows, s, t)
    path = Path(folder) / "teacher.json"
    meta = json.loads(path.read_text())
    meta["test"] = results
    path.write_text(json.dumps(meta, indent=2))
    return results
