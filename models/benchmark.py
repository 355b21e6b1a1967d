"""Measurements recorded in a card: the CPU, batch dependence and model-alone throughput.

* ``describe_cpu`` — int8 kernels differ between instruction sets, so every figure says
  where it was measured.
* ``batch_dependence`` — score the same texts alone, in length-sorted batches of 64 and
  in shuffled batches of odd sizes; count texts whose sentiment or topic label differs
  between any two orders and the largest probability difference.
* ``throughput`` — tokenise + pad + forward over length-sorted batches, several models
  interleaved in one run (the machine's speed drifts; compare only within one run).
"""

from __future__ import annotations

import platform
import random
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models.inference import OnnxModel, Predictions

ODD_BATCH_SIZES = (7, 13, 31, 5, 63, 1, 19)
VECTOR_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "sve")


def describe_cpu() -> str:
    """CPU model and the SIMD extensions int8 kernels choose by, e.g. 'AMD EPYC (x86_64; avx2 avx512_vnni)'."""
    name = platform.processor() or platform.machine()
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model") and name in ("", platform.machine(), platform.processor()):
                name = value.strip()
            elif key.strip() in ("flags", "Features") and not flags:
                flags = set(value.split())
    except OSError:
        pass
    present = " ".join(f for f in VECTOR_FLAGS if f in flags)
    return f"{name} ({platform.machine()}{'; ' + present if present else ''})"


def batch_orders(n: int, seed: int = 0, *, lengths: Sequence[int] | None = None) -> dict[str, list[list[int]]]:
    """Three ways to batch ``n`` texts: one by one, length-sorted by 64, shuffled in odd sizes."""
    by_length = sorted(range(n), key=lambda i: lengths[i]) if lengths is not None else list(range(n))
    shuffled = list(range(n))
    random.Random(seed).shuffle(shuffled)
    odd: list[list[int]] = []
    start = 0
    while start < n:
        size = ODD_BATCH_SIZES[len(odd) % len(ODD_BATCH_SIZES)]
        odd.append(shuffled[start : start + size])
        start += size
    return {
        "alone": [[i] for i in range(n)],
        "sorted_64": [by_length[i : i + 64] for i in range(0, n, 64)],
        "shuffled_odd": odd,
    }


def score_in_batches(model: OnnxModel, ids: Sequence[Sequence[int]], batches: Sequence[Sequence[int]]) -> Predictions:
    """Probabilities of every text, each batch run as given (no re-sorting), in input order."""
    sentiment = np.zeros((len(ids), len(model.card.sentiment_labels)), dtype=np.float32)
    topic = np.zeros((len(ids), len(model.card.topic_labels)), dtype=np.float32)
    for batch in batches:
        out = model.run_ids([ids[i] for i in batch])
        sentiment[list(batch)] = out.sentiment
        topic[list(batch)] = out.topic
    return Predictions(sentiment, topic)


@dataclass(frozen=True)
class BatchDependence:
    texts: int
    changed_labels: int  # texts whose sentiment or topic label differs between two orders
    max_prob_diff: float

    def as_dict(self) -> dict[str, Any]:
        return {"texts": self.texts, "changed_labels": self.changed_labels, "max_prob_diff": self.max_prob_diff}


def batch_dependence(model: OnnxModel, texts: Sequence[str], seed: int = 0) -> BatchDependence:
    """Score ``texts`` in the three orders of ``batch_orders`` and compare them with each other."""
    ids = model.encode(texts)
    runs = [
        score_in_batches(model, ids, batches)
        for batches in batch_orders(len(ids), seed, lengths=[len(i) for i in ids]).values()
    ]
    changed = np.zeros(len(ids), dtype=bool)
    diff = 0.0
    for other in runs[1:]:
        for a, b in ((runs[0].sentiment, other.sentiment), (runs[0].topic, other.topic)):
            changed |= a.argmax(axis=1) != b.argmax(axis=1)
            diff = max(diff, float(np.abs(a - b).max()))
    return BatchDependence(len(ids), int(changed.sum()), diff)


def throughput(
    models: dict[str, OnnxModel], texts: Sequence[str], *, batch_size: int = 32, repeats: int = 5
) -> dict[str, float]:
    """Model-alone texts/s of each model (median of ``repeats``), the models taking turns."""
    times: dict[str, list[float]] = {name: [] for name in models}
    for model in models.values():  # warm-up: first runs allocate
        model.predict(texts[: batch_size * 4], batch_size=batch_size)
    for _ in range(repeats):
        for name, model in models.items():
            started = time.perf_counter()
            model.predict(texts, batch_size=batch_size)
            times[name].append(time.perf_counter() - started)
    return {name: round(len(texts) / statistics.median(t), 1) for name, t in times.items()}
