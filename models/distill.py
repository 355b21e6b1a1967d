"""The v3 student: one small encoder, both heads on every text, distilled from the teacher.

Every row of the v3 corpus (``models.corpus``) trains: its gold label where it has one (the
neutral logit masked for forum posts, which have no neutral class), and the teacher's
temperature-scaled soft labels of **both** heads (``--soft-labels``, from ``models.teacher``;
several files are averaged, an ensemble), so a topic-only tweet also teaches sentiment and a
headline also teaches topic. Target rows ("target [SEP] text") teach the sentiment head to read
one company's sentiment. Each epoch, every row that names a company is entity-swapped with
probability ``--swap`` (its soft labels are its original's: a name must not change the label).

The student starts from a pretrained backbone (``--base-model``) or from a checkpoint
(``--init-from``, e.g. a fine-tuned L6), optionally cut to its lowest ``--layers``. ``--lora R``
trains low-rank adapters (``peft``) instead of the full encoder. The best checkpoint by the mean
dev figure over all dev sets is kept in ``output_dir/best`` (the format ``finsent export`` reads),
and the student's own logits on the training rows are written beside it, so students can be
ensembled as teachers too.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from models.augment import EntitySwapper, load_gazetteer
from models.corpus import Corpus, build_corpus, dev_score, score_set
from models.data import IGNORE, Example
from models.hardware import bf16_pays
from models.network import MultiTaskClassifier, default_base_model
from models.teacher import choose_max_length, masked_sentiment, row_key
from models.tokenization import encode, load_tokenizer, pad_batch, pad_id_of
from models.train import bucketed_batches, distill_loss, load_checkpoint, parameter_groups, predict, save_checkpoint

log = logging.getLogger(__name__)


@dataclass
class StudentConfig:
    output_dir: str = "runs/student"
    data_dir: str | None = None
    base_model: str | None = None
    init_from: str | None = None
    layers: int | None = None
    soft_labels: list[str] = field(default_factory=list)
    extra_data: list[str] = field(default_factory=list)  # analysts' corrections (``finsent feedback-export``)
    distill_weight: float = 1.0
    temperature: float = 2.0
    swap: float = 0.5
    joins: int = 4000
    epochs: float = 3.0
    batch_size: int = 32
    lr: float = 8e-5
    head_lr: float = 1e-3
    layer_decay: float = 1.0
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    dropout: float = 0.1
    max_length: int = 0  # 0: from the training rows' token lengths (``choose_max_length``, at most 128)
    lora: int = 0
    eval_every: int = 500
    patience: int = 6
    seed: int = 13
    threads: int = 0
    bf16: bool = True
    limit: int | None = None
    max_steps: int | None = None
    write_soft_labels: bool = True


def load_soft_labels(paths: Sequence[str], rows: Sequence[Example]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean logits of every file for each row (by ``row_key``), and which rows have them."""
    keys = [row_key(r) for r in rows]
    sent = np.zeros((len(rows), 3), dtype=np.float32)
    topic = np.zeros((len(rows), 20), dtype=np.float32)
    found = np.ones(len(rows), dtype=bool)
    for path in paths:
        with np.load(path) as saved:
            index = {k: i for i, k in enumerate(saved["keys"].tolist())}
            at = np.array([index.get(k, -1) for k in keys])
            found &= at >= 0
            sent += np.where(at[:, None] >= 0, saved["sentiment"][np.maximum(at, 0)], 0) / len(paths)
            topic += np.where(at[:, None] >= 0, saved["topic"][np.maximum(at, 0)], 0) / len(paths)
    if paths and not found.all():
        log.warning("%d of %d training rows have no soft labels; they learn from gold only", (~found).sum(), len(rows))
    return sent, topic, found if paths else np.zeros(len(rows), dtype=bool)


def build_student(cfg: StudentConfig) -> tuple[MultiTaskClassifier, str]:
    """The network and the folder of its tokenizer."""
    if cfg.init_from:
        model, _meta = load_checkpoint(cfg.init_from)
        model.dropout.p = cfg.dropout
        tokenizer_dir = cfg.init_from
    else:
        base = cfg.base_model or default_base_model()
        model = MultiTaskClassifier.from_pretrained(base, dropout=cfg.dropout)
        tokenizer_dir = base
    if cfg.layers is not None:
        model.keep_lowest_layers(cfg.layers)
    if cfg.lora:
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(r=cfg.lora, lora_alpha=2 * cfg.lora, lora_dropout=0.1,
                          target_modules=["query", "key", "value", "dense"])  # fmt: skip
        model.encoder = get_peft_model(model.encoder, lora)
    return model, tokenizer_dir


def evaluate_sets(model: MultiTaskClassifier, sets: dict[str, list[Example]], tokenizer: Any, pad_id: int) -> dict:  # type: ignore[type-arg]
    out = {}
    for name, rows in sets.items():
        s, t = predict(model, encode(tokenizer, [r.text for r in rows], [r.target for r in rows]), pad_id, logits=True)
        out[name] = score_set(rows, s, t)
    return out


def train_student(cfg: StudentConfig, corpus: Corpus | None = None) -> dict[str, Any]:
    started = time.time()
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    corpus = corpus or build_corpus(
        cfg.data_dir, seed=cfg.seed, joins=cfg.joins, limit=cfg.limit, extra=tuple(Path(p) for p in cfg.extra_data)
    )
    rows = corpus.train
    model, tokenizer_dir = build_student(cfg)
    tokenizer_path = Path(tokenizer_dir) / "tokenizer.json"
    texts, targets = [r.text for r in rows], [r.target for r in rows]
    max_length = cfg.max_length or choose_max_length(
        [len(x) for x in encode(load_tokenizer(tokenizer_path, 512), texts, targets)], cap=128
    )
    tokenizer = load_tokenizer(tokenizer_path, max_length)
    pad_id = pad_id_of(tokenizer)
    base_ids = encode(tokenizer, texts, targets)
    soft_s, soft_t, has_soft = load_soft_labels(cfg.soft_labels, rows)
    ys = torch.tensor([r.sentiment for r in rows])
    yt = torch.tensor([r.topic for r in rows])
    binary = torch.tensor([r.binary for r in rows])
    is_target = torch.tensor([r.target is not None for r in rows])
    swapper = EntitySwapper(load_gazetteer(), seed=cfg.seed) if cfg.swap > 0 else None

    optimizer = torch.optim.AdamW(parameter_groups(model, cfg))  # type: ignore[arg-type]
    base_lrs = [g["lr"] for g in optimizer.param_groups]
    steps_per_epoch = math.ceil(len(rows) / cfg.batch_size)
    total = int(steps_per_epoch * cfg.epochs)
    if cfg.max_steps is not None:
        total = min(total, cfg.max_steps)
    warmup = max(1, int(total * cfg.warmup_ratio))
    ce = nn.CrossEntropyLoss(ignore_index=IGNORE)
    meta: dict[str, Any] = {
        "config": asdict(cfg),
        "max_length": max_length,
        "recipe": "v3",
        "base_model": cfg.base_model or (cfg.init_from and f"checkpoint {cfg.init_from}") or default_base_model(),
        "corpus": corpus.meta,
        "data_sizes": corpus.splits.sizes(),
        "test_overlap_with_train": corpus.splits.overlap,
        "extra_data": {"files": [Path(p).name for p in cfg.extra_data], **corpus.splits.extra_counts},
        "command": ("finsent " if Path(sys.argv[0]).name == "finsent" else "python -m models.distill ")
        + " ".join(sys.argv[1:]),
        "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "encoder_layers": model.encoder.config.num_hidden_layers,
    }
    meta["config"]["max_length"] = max_length
    log_path = out / "train_log.jsonl"
    log_path.write_text("")
    best: dict[str, Any] = {"score": -1.0}
    since_best, step, epoch, running = 0, 0, 0, 0.0
    progress = tqdm(total=total, desc="student", unit="step", dynamic_ncols=True)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16_pays("cpu", cfg.bf16))
    while step < total and since_best < cfg.patience:
        epoch += 1
        ids = list(base_ids)
        if swapper is not None:
            rng = random.Random(cfg.seed * 100 + epoch)
            chosen = {i: swapper.swap(r) for i, r in enumerate(rows) if rng.random() < cfg.swap}
            swapped = {i: r for i, r in chosen.items() if r is not None}
            new_ids = encode(tokenizer, [r.text for r in swapped.values()], [r.target for r in swapped.values()])
            for i, x in zip(swapped, new_ids, strict=True):
                ids[i] = x
        epoch_start = time.time()
        for batch in bucketed_batches([len(x) for x in ids], cfg.batch_size, random.Random(cfg.seed + epoch)):
            model.train()
            input_ids, mask = pad_batch([ids[i] for i in batch], pad_id)
            b = torch.tensor(batch)
            with autocast:
                s_logits, t_logits = model(torch.from_numpy(input_ids), torch.from_numpy(mask))
            s_logits, t_logits = s_logits.float(), t_logits.float()
            loss = torch.zeros(())
            if (ys[b] != IGNORE).any():
                loss = loss + ce(masked_sentiment(s_logits, binary[b]), ys[b])
            if (yt[b] != IGNORE).any():
                loss = loss + ce(t_logits, yt[b])
            soft = has_soft[batch]
            if cfg.distill_weight and soft.any():
                k = torch.from_numpy(np.flatnonzero(soft))
                kd = distill_loss(s_logits[k], soft_s[batch][soft], cfg.temperature)
                topical = np.flatnonzero(soft & ~is_target[b].numpy())
                if topical.size:
                    t_idx = torch.from_numpy(topical)
                    kd = kd + distill_loss(t_logits[t_idx], soft_t[batch][topical], cfg.temperature)
                loss = loss + cfg.distill_weight * kd
            factor = (step + 1) / warmup if step < warmup else max(0.0, (total - step) / max(1, total - warmup))
            for group, lr in zip(optimizer.param_groups, base_lrs, strict=True):
                group["lr"] = lr * factor
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            step += 1
            running = 0.98 * running + 0.02 * loss.item() if step > 1 else loss.item()
            progress.update(1)
            progress.set_postfix(loss=f"{running:.3f}", epoch=epoch)
            if step % cfg.eval_every == 0 or step == total:
                dev = evaluate_sets(model, corpus.dev, tokenizer, pad_id)
                record = {"step": step, "epoch": round(step / steps_per_epoch, 3), "loss": running,
                          "elapsed_s": round(time.time() - started, 1), "score": dev_score(dev),
                          "dev": dev}  # fmt: skip
                with log_path.open("a") as fh:
                    fh.write(json.dumps(record) + "\n")
                progress.write(f"step {step}: dev score {record['score']:.4f}")
                if record["score"] > best["score"]:
                    best, since_best = record, 0
                    save_checkpoint(_plain(model), tokenizer_path, out / "best", {**meta, "best": best})
                else:
                    since_best += 1
            if step >= total or since_best >= cfg.patience:
                break
        meta.setdefault("epoch_seconds", []).append(round(time.time() - epoch_start, 1))
    progress.close()
    summary = {**meta, "best": best, "steps": step, "epochs_run": round(step / steps_per_epoch, 3),
               "wall_time_s": round(time.time() - started, 1)}  # fmt: skip
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    if (out / "best").is_dir():
        (out / "best" / "training.json").write_text(json.dumps(summary, indent=2))
        if cfg.write_soft_labels:
            best_model, _ = load_checkpoint(out / "best")
            s, t = predict(best_model, base_ids, pad_id, logits=True)
            np.savez_compressed(
                out / "soft_labels.npz", keys=np.array([row_key(r) for r in rows]), sentiment=s, topic=t
            )
    return summary


def _plain(model: MultiTaskClassifier) -> MultiTaskClassifier:
    """The model with LoRA adapters merged into the encoder's weights (what export and serving read)."""
    if not hasattr(model.encoder, "merge_and_unload"):
        return model
    import copy

    merged = copy.deepcopy(model)
    merged.encoder = merged.encoder.merge_and_unload()
    return merged


def parse_args(argv: Sequence[str]) -> StudentConfig:
    parser = argparse.ArgumentParser(prog="python -m models.distill", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    for name, value in asdict(StudentConfig()).items():
        flag = "--" + name.replace("_", "-")
        if name == "output_dir":
            parser.add_argument("-o", flag, default=value)
        elif name == "soft_labels":
            parser.add_argument(flag, action="append", default=[], help="teacher logits (.npz); repeat to average")
        elif name == "extra_data":
            parser.add_argument(flag, action="append", default=[], help="extra labelled rows (CSV/JSONL)")
        elif isinstance(value, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=value)
        elif name in ("limit", "max_steps", "layers"):
            parser.add_argument(flag, type=int, default=value)
        else:
            parser.add_argument(flag, type=type(value) if value is not None else str, default=value)
    return StudentConfig(**vars(parser.parse_args(list(argv))))


def main(argv: Sequence[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = parse_args(sys.argv[1:] if argv is None else argv)
    summary = train_student(cfg)
    print(f"best dev score {summary['best'].get('score', 0):.4f} at step {summary['best'].get('step')}")


if __name__ == "__main__":
    main()
