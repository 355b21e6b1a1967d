"""The teacher: a large encoder fine-tuned on every row of the v3 corpus, affordable on two CPU cores.

A full fine-tune of all-mpnet-base-v2 (12 layers × 768) costs about eight MiniLM-L6 steps. Here
the lower ``cache_layers`` layers stay frozen: their outputs are computed once per text (in bf16
where the CPU has it) and kept on disk, and only the top layers and the two heads train over them.
Batches are length-bucketed, the token limit comes from the data's own lengths, and a checkpoint
after every evaluation lets an interrupted run resume where it stopped (the layer cache too).

Outputs in ``output_dir``: ``best/`` (top layers and heads, the base model's path), ``soft_labels.npz``
(logits of both heads for every training and dev row by ``row_key``, which the student reads),
``teacher.json`` (dev figures, sizes, wall time), ``train_log.jsonl``.

    python -m models.teacher --base-model DIR --data-dir DATA -o runs/teacher   # ~1 h on 2 cores, minutes on cuda
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from models.contract import NEUTRAL_INDEX, SENTIMENT_LABELS, TOPIC_LABELS, normalize_text
from models.corpus import Corpus, build_corpus, dev_score, score_set
from models.data import IGNORE, Example
from models.hardware import bf16_pays
from models.tokenization import encode, load_tokenizer, pad_batch, pad_id_of
from models.train import bucketed_batches

log = logging.getLogger(__name__)


@dataclass
class TeacherConfig:
    base_model: str
    output_dir: str = "runs/teacher"
    data_dir: str | None = None
    cache_layers: int = 6
    max_length: int = 0  # 0: the 99.5th percentile of the training rows' token lengths (at most 256)
    epochs: float = 2.0
    batch_size: int = 32
    lr: float = 5e-5
    head_lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    dropout: float = 0.1
    joins: int = 4000
    eval_every: int = 400
    seed: int = 13
    threads: int = 0
    device: str = "cpu"
    bf16: bool = True
    limit: int | None = None
    max_steps: int | None = None


def row_key(row: Example) -> str:
    """The key a row's soft labels are stored under: its target and normalised text."""
    return hashlib.sha1(f"{row.target or ''}\x1f{normalize_text(row.text)}".encode()).hexdigest()  # noqa: S324


def _layers_out(out: Any) -> torch.Tensor:
    return out[0] if isinstance(out, tuple) else out


class TopStack(nn.Module):
    """The encoder's layers from ``start`` up, over cached hidden states; mean pooling; both heads."""

    def __init__(self, encoder: Any, start: int, dropout: float) -> None:
        super().__init__()
        self.layers = nn.ModuleList(list(encoder.encoder.layer)[start:])
        inner = encoder.encoder
        # MPNet adds a relative position bias in every layer, computed once per batch by its encoder.
        self.bias_of = inner.compute_position_bias if hasattr(inner, "compute_position_bias") else None
        hidden = encoder.config.hidden_size
        self.dropout = nn.Dropout(dropout)
        self.sentiment_head = nn.Linear(hidden, len(SENTIMENT_LABELS))
        self.topic_head = nn.Linear(hidden, len(TOPIC_LABELS))

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        additive = (1.0 - mask[:, None, None, :].to(hidden.dtype)) * -1e4
        if self.bias_of is not None:
            with torch.no_grad():
                bias = self.bias_of(hidden)
            for layer in self.layers:
                hidden = _layers_out(layer(hidden, additive, bias))
        else:
            for layer in self.layers:
                hidden = _layers_out(layer(hidden, attention_mask=additive))
        m = mask.unsqueeze(-1).to(hidden.dtype)
        pooled = self.dropout((hidden * m).sum(1) / m.sum(1).clamp(min=1e-9))
        return self.sentiment_head(pooled.float()), self.topic_head(pooled.float())


def load_encoder(base_model: str) -> Any:
    from transformers import AutoModel

    return AutoModel.from_pretrained(base_model, attn_implementation="eager")


class LayerCache:
    """The frozen layers' output for every sequence, fp16, ragged, in one file; resumable."""

    def __init__(self, folder: Path, lengths: Sequence[int], hidden: int, key: str) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)])
        self.hidden = hidden
        self.state_path = folder / "state.json"
        state = json.loads(self.state_path.read_text()) if self.state_path.is_file() else {}
        fresh = state.get("key") != key
        mode: Literal["w+", "r+"] = "w+" if fresh or not (folder / "hidden.f16").is_file() else "r+"
        self.data = np.memmap(folder / "hidden.f16", dtype=np.float16, mode=mode, shape=(int(self.offsets[-1]), hidden))
        self.done = 0 if fresh else int(state.get("done", 0))
        self.key = key

    def fill(self, encoder: Any, ids: Sequence[Sequence[int]], pad_id: int, n_layers: int, cfg: TeacherConfig) -> None:
        """Run the lowest ``n_layers`` over every sequence not cached yet (length-sorted order, saved as it goes)."""
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        batches = [order[i : i + 64] for i in range(0, len(order), 64)]
        if self.done >= len(batches):
            return
        full = encoder.encoder.layer
        encoder.encoder.layer = nn.ModuleList(list(full)[:n_layers])
        encoder.eval()
        try:
            for b, batch in enumerate(tqdm(batches, desc="caching lower layers", unit="batch", initial=self.done)):
                if b < self.done:
                    continue
                input_ids, mask = pad_batch([ids[i] for i in batch], pad_id)
                with torch.no_grad(), _autocast(cfg):
                    out = encoder(
                        input_ids=torch.from_numpy(input_ids).to(cfg.device),
                        attention_mask=torch.from_numpy(mask).to(cfg.device),
                    ).last_hidden_state
                out = out.float().cpu().numpy().astype(np.float16)
                for row, i in enumerate(batch):
                    self.data[self.offsets[i] : self.offsets[i + 1]] = out[row, : self.lengths[i]]
                if b % 50 == 49 or b == len(batches) - 1:
                    self.data.flush()
                    self.done = b + 1
                    self.state_path.write_text(json.dumps({"key": self.key, "done": self.done}))
        finally:
            encoder.encoder.layer = full

    def batch(self, idx: Sequence[int], device: str) -> tuple[torch.Tensor, torch.Tensor]:
        width = int(max(self.lengths[i] for i in idx))
        hidden = np.zeros((len(idx), width, self.hidden), dtype=np.float32)
        mask = np.zeros((len(idx), width), dtype=np.int64)
        for row, i in enumerate(idx):
            n = int(self.lengths[i])
            hidden[row, :n] = self.data[self.offsets[i] : self.offsets[i + 1]]
            mask[row, :n] = 1
        return torch.from_numpy(hidden).to(device), torch.from_numpy(mask).to(device)


def _autocast(cfg: TeacherConfig) -> Any:
    device = "cuda" if cfg.device.startswith("cuda") else "cpu"
    return torch.autocast(device, dtype=torch.bfloat16, enabled=bf16_pays(device, cfg.bf16))


def masked_sentiment(logits: torch.Tensor, binary: torch.Tensor) -> torch.Tensor:
    """Logits with the neutral class removed for rows from a set that has none."""
    if not bool(binary.any()):
        return logits
    neutral = torch.zeros_like(logits, dtype=torch.bool)
    neutral[:, NEUTRAL_INDEX] = True
    return logits.masked_fill(neutral & binary[:, None], -1e4)


@torch.no_grad()
def logits_of(
    model: TopStack, cache: LayerCache, idx: Sequence[int], cfg: TeacherConfig
) -> tuple[np.ndarray, np.ndarray]:
    model.eval()
    order = sorted(idx, key=lambda i: cache.lengths[i])
    pos = {i: k for k, i in enumerate(idx)}
    sent = np.zeros((len(idx), len(SENTIMENT_LABELS)), dtype=np.float32)
    topic = np.zeros((len(idx), len(TOPIC_LABELS)), dtype=np.float32)
    for start in range(0, len(order), 128):
        chunk = order[start : start + 128]
        hidden, mask = cache.batch(chunk, cfg.device)
        with _autocast(cfg):
            s, t = model(hidden, mask)
        rows = [pos[i] for i in chunk]
        sent[rows], topic[rows] = s.float().cpu().numpy(), t.float().cpu().numpy()
    return sent, topic


def choose_max_length(lengths: Sequence[int], cap: int = 256) -> int:
    """The 99.5th percentile of the token lengths (truncating the longest 0.5%), at most ``cap``."""
    return int(min(cap, max(16, np.percentile(np.asarray(lengths), 99.5))))


def train_teacher(cfg: TeacherConfig, corpus: Corpus | None = None) -> dict[str, Any]:
    started = time.time()
    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    corpus = corpus or build_corpus(cfg.data_dir, seed=cfg.seed, joins=cfg.joins, limit=cfg.limit)
    dev_names = list(corpus.dev)
    rows: list[Example] = [*corpus.train, *(r for name in dev_names for r in corpus.dev[name])]
    n_train = len(corpus.train)
    tokenizer_path = Path(cfg.base_model) / "tokenizer.json"
    probe = load_tokenizer(tokenizer_path, 512)
    raw = encode(probe, [r.text for r in corpus.train], [r.target for r in corpus.train])
    max_length = cfg.max_length or choose_max_length([len(x) for x in raw])
    tokenizer = load_tokenizer(tokenizer_path, max_length)
    pad_id = tokenizer.token_to_id("<pad>")
    if pad_id is None:
        pad_id = pad_id_of(tokenizer)
    ids = encode(tokenizer, [r.text for r in rows], [r.target for r in rows])
    encoder = load_encoder(cfg.base_model).to(cfg.device)
    n_layers = len(encoder.encoder.layer)
    if not 0 <= cfg.cache_layers < n_layers:
        raise ValueError(f"cache_layers must be in 0..{n_layers - 1} (got: {cfg.cache_layers})")
    key = hashlib.sha256(json.dumps([cfg.base_model, cfg.cache_layers, ids]).encode()).hexdigest()[:16]
    cache = LayerCache(out / "cache", [len(x) for x in ids], encoder.config.hidden_size, key)
    cache.fill(encoder, ids, pad_id, cfg.cache_layers, cfg)
    model = TopStack(encoder, cfg.cache_layers, cfg.dropout).to(cfg.device)
    for p in model.parameters():
        p.requires_grad = True
    if model.bias_of is not None:
        encoder.encoder.relative_attention_bias.requires_grad_(False)
    del encoder.encoder.layer  # the lower layers' work is in the cache
    heads = [p for n, p in model.named_parameters() if n.startswith(("sentiment_head", "topic_head"))]
    body = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith(("sentiment", "topic"))]
    optimizer = torch.optim.AdamW(
        [{"params": body, "lr": cfg.lr}, {"params": heads, "lr": cfg.head_lr}], weight_decay=cfg.weight_decay
    )
    base_lrs = [cfg.lr, cfg.head_lr]
    steps_per_epoch = math.ceil(n_train / cfg.batch_size)
    total = int(steps_per_epoch * cfg.epochs)
    if cfg.max_steps is not None:
        total = min(total, cfg.max_steps)
    warmup = max(1, int(total * cfg.warmup_ratio))
    ys = torch.tensor([r.sentiment for r in rows])
    yt = torch.tensor([r.topic for r in rows])
    binary = torch.tensor([r.binary for r in rows])
    ce = nn.CrossEntropyLoss(ignore_index=IGNORE)
    dev_idx = {}
    at = n_train
    for name in dev_names:
        dev_idx[name] = list(range(at, at + len(corpus.dev[name])))
        at += len(corpus.dev[name])

    ckpt_path = out / "checkpoint.pt"
    step, best, evals = 0, {"score": -1.0}, []
    if ckpt_path.is_file():
        state = torch.load(ckpt_path, map_location=cfg.device, weights_only=False)
        if state.get("key") == key:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            step, best, evals = state["step"], state["best"], state["evals"]
            log.info("resuming at step %d of %d", step, total)
    log_path = out / "train_log.jsonl"

    def evaluate(at_step: int) -> dict[str, Any]:
        results = {}
        for name in dev_names:
            s, t = logits_of(model, cache, dev_idx[name], cfg)
            results[name] = score_set(corpus.dev[name], s, t)
        elapsed = round(time.time() - started, 1)
        return {"step": at_step, "elapsed_s": elapsed, "score": dev_score(results), "dev": results}

    progress = tqdm(total=total, initial=step, desc="teacher", unit="step", dynamic_ncols=True)
    lengths = [len(x) for x in ids[:n_train]]
    running = 0.0
    while step < total:
        epoch = step // steps_per_epoch
        batches = bucketed_batches(lengths, cfg.batch_size, random.Random(cfg.seed * 1000 + epoch))
        for batch in batches[step - epoch * steps_per_epoch :]:
            model.train()
            hidden, mask = cache.batch(batch, cfg.device)
            with _autocast(cfg):
                s_logits, t_logits = model(hidden, mask)
            b = torch.tensor(batch)
            loss = torch.zeros((), device=cfg.device)
            if (ys[b] != IGNORE).any():
                loss = loss + ce(masked_sentiment(s_logits, binary[b].to(cfg.device)), ys[b].to(cfg.device))
            if (yt[b] != IGNORE).any():
                loss = loss + ce(t_logits, yt[b].to(cfg.device))
            factor = (step + 1) / warmup if step < warmup else max(0.0, (total - step) / max(1, total - warmup))
            for group, lr in zip(optimizer.param_groups, base_lrs, strict=True):
                group["lr"] = lr * factor
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            step += 1
            running = 0.98 * running + 0.02 * loss.item() if running else loss.item()
            progress.update(1)
            progress.set_postfix(loss=f"{running:.3f}")
            if step % cfg.eval_every == 0 or step == total:
                record = evaluate(step)
                record["loss"] = running
                evals.append({"step": step, "score": record["score"]})
                with log_path.open("a") as fh:
                    fh.write(json.dumps(record) + "\n")
                progress.write(f"step {step}: dev score {record['score']:.4f}")
                if record["score"] > best["score"]:
                    best = record
                    save_teacher(model, cfg, max_length, out / "best", record)
                torch.save(
                    {
                        "key": key,
                        "model": model.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "step": step,
                        "best": best,
                        "evals": evals,
                    },
                    ckpt_path.with_suffix(".tmp"),
                )
                ckpt_path.with_suffix(".tmp").replace(ckpt_path)
            if step >= total:
                break
    progress.close()
    model.load_state_dict(torch.load(out / "best" / "teacher.pt", map_location=cfg.device, weights_only=True))
    s, t = logits_of(model, cache, list(range(len(rows))), cfg)
    np.savez_compressed(out / "soft_labels.npz", keys=np.array([row_key(r) for r in rows]), sentiment=s, topic=t)
    summary = {
        "config": asdict(cfg),
        "max_length": max_length,
        "corpus": corpus.meta,
        "best": best,
        "steps": step,
        "wall_time_s": round(time.time() - started, 1),
        "command": "python -m models.teacher " + " ".join(sys.argv[1:]),
    }
    (out / "teacher.json").write_text(json.dumps(summary, indent=2))
    return summary


def save_teacher(model: TopStack, cfg: TeacherConfig, max_length: int, folder: Path, record: dict[str, Any]) -> None:
    tmp = folder.with_name(folder.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), tmp / "teacher.pt")
    meta = {"base_model": cfg.base_model, "cache_layers": cfg.cache_layers, "max_length": max_length, "best": record}
    (tmp / "teacher.json").write_text(json.dumps(meta, indent=2))
    if folder.exists():
        for f in folder.iterdir():
            f.unlink()
        folder.rmdir()
    tmp.rename(folder)


def parse_args(argv: Sequence[str]) -> TeacherConfig:
    parser = argparse.ArgumentParser(
        prog="python -m models.teacher", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    defaults = TeacherConfig(base_model="")
    for name, value in asdict(defaults).items():
        flag = "--" + name.replace("_", "-")
        if name == "output_dir":
            parser.add_argument("-o", flag, default=value)
        elif isinstance(value, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=value)
        elif name in ("limit", "max_steps"):
            parser.add_argument(flag, type=int, default=value)
        else:
            parser.add_argument(
                flag, type=type(value) if value is not None else str, default=value, required=name == "base_model"
            )
    return TeacherConfig(**vars(parser.parse_args(list(argv))))


def main(argv: Sequence[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["evaluate"]:  # python -m models.teacher evaluate RUN_DIR/best [--data-dir DIR]
        from models.teacher_eval import evaluate_teacher

        data_dir = argv[argv.index("--data-dir") + 1] if "--data-dir" in argv else None
        print(json.dumps(evaluate_teacher(argv[1], data_dir), indent=2))
        return
    cfg = parse_args(argv)
    summary = train_teacher(cfg)
    print(f"best dev score {summary['best']['score']:.4f} at step {summary['best']['step']}")


if __name__ == "__main__":
    main()
