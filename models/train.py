"""Joint fine-tuning of the sentiment and topic heads on one encoder.

Each batch mixes rows of both data sets; a head's loss ignores rows that carry no
label for it. Batches are built from length-sorted pools so that padding wastes
little compute. The best checkpoint by dev macro-F1 (mean of both tasks) is kept.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import os
import random
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from models.contract import SENTIMENT_LABELS, TOPIC_LABELS
from models.data import IGNORE, TASKS, Example, Splits, load_splits
from models.metrics import classification_report
from models.network import MultiTaskClassifier, default_base_model
from models.tokenization import encode, load_tokenizer, pad_batch, pad_id_of

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Every knob of a training run; written into the checkpoint and the model card."""

    output_dir: str = "runs/finsent"
    data_dir: str | None = None
    base_model: str | None = None
    extra_data: list[str] = field(default_factory=list)
    epochs: float = 4.0
    batch_size: int = 32
    lr: float = 8e-5
    head_lr: float = 1e-3
    layer_decay: float = 1.0
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    dropout: float = 0.1
    label_smoothing: float = 0.0
    max_grad_norm: float = 1.0
    max_length: int = 64
    freeze_layers: int = 0
    layers: int | None = None  # keep only the lowest N encoder layers (None = all)
    init_from: str | None = None  # a training checkpoint whose weights start this run (else base_model)
    teacher: str | None = None  # a training checkpoint whose soft labels are distilled into this run
    distill_weight: float = 0.0  # weight of the distillation loss (both heads, every row)
    distill_temperature: float = 2.0
    sentiment_weight: float = 1.0
    topic_weight: float = 1.0
    eval_every: int = 250
    patience: int = 4
    dev_fraction: float = 0.1
    seed: int = 13
    threads: int = 0
    limit: int | None = None
    max_steps: int | None = None


@dataclass
class Encoded:
    ids: list[list[int]]
    sentiment: np.ndarray
    topic: np.ndarray


def encode_examples(tokenizer, rows: Sequence[Example]) -> Encoded:  # type: ignore[no-untyped-def]
    return Encoded(
        ids=encode(tokenizer, [r.text for r in rows]),
        sentiment=np.array([r.sentiment for r in rows], dtype=np.int64),
        topic=np.array([r.topic for r in rows], dtype=np.int64),
    )


def bucketed_batches(lengths: Sequence[int], batch_size: int, rng: random.Random, pool: int = 50) -> list[list[int]]:
    """Shuffle, sort pools of ``pool`` batches by length, cut batches, shuffle the batches."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    batches: list[list[int]] = []
    span = batch_size * pool
    for start in range(0, len(order), span):
        chunk = sorted(order[start : start + span], key=lambda i: lengths[i])
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


def parameter_groups(model: MultiTaskClassifier, cfg: TrainConfig) -> list[dict]:  # type: ignore[type-arg]
    """AdamW groups: layer-wise decayed encoder LRs, no weight decay on biases and norms, own LR for heads."""
    layers = getattr(getattr(model.encoder, "encoder", None), "layer", [])
    n_layers = len(layers)
    groups: dict[tuple[float, float], list[nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if name.startswith(("sentiment_head", "topic_head")):
            lr = cfg.head_lr
        else:
            depth = n_layers + 1  # pooler and anything above the last layer
            if "embeddings" in name:
                depth = 0
            elif ".layer." in name:
                depth = int(name.split(".layer.")[1].split(".")[0]) + 1
            lr = cfg.lr * cfg.layer_decay ** (n_layers + 1 - depth)
        wd = 0.0 if param.ndim == 1 else cfg.weight_decay
        groups.setdefault((lr, wd), []).append(param)
    return [{"params": ps, "lr": lr, "weight_decay": wd} for (lr, wd), ps in groups.items()]


def freeze(model: MultiTaskClassifier, n_layers: int) -> None:
    """Freeze the embeddings and the lowest ``n_layers`` encoder layers."""
    if n_layers <= 0:
        return
    for p in model.encoder.embeddings.parameters():
        p.requires_grad = False
    for layer in model.encoder.encoder.layer[:n_layers]:
        for p in layer.parameters():
            p.requires_grad = False


@torch.no_grad()
def predict(
    model: MultiTaskClassifier, ids: list[list[int]], pad_id: int, batch_size: int = 128, logits: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities (or logits) of both heads, in the order of ``ids``."""
    model.eval()
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    sent = np.zeros((len(ids), len(SENTIMENT_LABELS)), dtype=np.float32)
    topic = np.zeros((len(ids), len(TOPIC_LABELS)), dtype=np.float32)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        input_ids, mask = pad_batch([ids[i] for i in idx], pad_id)
        s, t = model(torch.from_numpy(input_ids), torch.from_numpy(mask))
        sent[idx] = (s if logits else s.softmax(-1)).numpy()
        topic[idx] = (t if logits else t.softmax(-1)).numpy()
    return sent, topic


def evaluate_dev(model: MultiTaskClassifier, dev: Mapping[str, Encoded], pad_id: int) -> dict[str, float]:
    out: dict[str, float] = {}
    for task, labels in (("sentiment", SENTIMENT_LABELS), ("topic", TOPIC_LABELS)):
        enc = dev[task]
        sent, topic = predict(model, enc.ids, pad_id)
        probs = sent if task == "sentiment" else topic
        report = classification_report(getattr(enc, task), probs, labels)
        out[f"{task}_accuracy"] = report["accuracy"]
        out[f"{task}_macro_f1"] = report["macro_f1"]
    out["score"] = (out["sentiment_macro_f1"] + out["topic_macro_f1"]) / 2
    return out


def teacher_probs(teacher: str, ids: list[list[int]], pad_id: int, out: Path) -> tuple[np.ndarray, np.ndarray]:
    """Logits of a teacher checkpoint on the training texts, computed once and cached in ``out``.

    Every row gets soft labels for both heads, also the head its data set does not label.
    The cache is keyed by the teacher's path and the token ids, so a resumed run reuses it.
    """
    key = hashlib.sha256(json.dumps([str(Path(teacher).resolve()), ids]).encode()).hexdigest()[:16]
    cache = out / f"teacher_logits_{key}.npz"
    if cache.is_file():
        with np.load(cache) as saved:
            return saved["sentiment"], saved["topic"]
    model, _ = load_checkpoint(teacher)
    sentiment, topic = predict(model, ids, pad_id, logits=True)
    np.savez(cache, sentiment=sentiment, topic=topic)
    return sentiment, topic


def distill_loss(student_logits: torch.Tensor, teacher_logits: np.ndarray, temperature: float) -> torch.Tensor:
    """KL(teacher || student) at ``temperature``, scaled by T² so its gradients keep their size."""
    teacher = torch.from_numpy(teacher_logits).div(temperature).log_softmax(-1)
    student = student_logits.div(temperature).log_softmax(-1)
    return nn.functional.kl_div(student, teacher, log_target=True, reduction="batchmean") * temperature**2


def save_checkpoint(model: MultiTaskClassifier, tokenizer_path: Path, folder: Path, meta: dict) -> None:  # type: ignore[type-arg]
    """Weights, encoder config, tokenizer and training metadata: all that export needs."""
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    torch.save(model.state_dict(), tmp / "model.pt")
    model.encoder.config.save_pretrained(tmp)
    shutil.copy(tokenizer_path, tmp / "tokenizer.json")
    (tmp / "training.json").write_text(json.dumps(meta, indent=2))
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)


def train(  # type: ignore[type-arg]
    cfg: TrainConfig,
    splits: Splits | None = None,
    model: MultiTaskClassifier | None = None,
    command: str | None = None,
) -> dict:
    """Run one training; returns the summary written to ``output_dir/summary.json``."""
    started = time.time()
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    base = cfg.base_model or default_base_model()
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    if splits is None:
        splits = load_splits(
            cfg.data_dir,
            dev_fraction=cfg.dev_fraction,
            seed=cfg.seed,
            extra=[Path(p) for p in cfg.extra_data],
            limit=cfg.limit,
        )
    tokenizer_path = Path(base) / "tokenizer.json"
    tokenizer = load_tokenizer(tokenizer_path, cfg.max_length)
    pad_id = pad_id_of(tokenizer)
    if model is None and cfg.init_from:
        model, _ = load_checkpoint(cfg.init_from)
        model.dropout.p = cfg.dropout
        if cfg.layers is not None:
            model.keep_lowest_layers(cfg.layers)
    elif model is None:
        model = MultiTaskClassifier.from_pretrained(base, dropout=cfg.dropout)
        if cfg.layers is not None:
            model.keep_lowest_layers(cfg.layers)
    freeze(model, cfg.freeze_layers)

    train_enc = encode_examples(tokenizer, splits.training_rows())
    dev_enc: dict[str, Encoded] = {task: encode_examples(tokenizer, splits.dev[task]) for task in TASKS}
    lengths = [len(ids) for ids in train_enc.ids]
    soft = teacher_probs(cfg.teacher, train_enc.ids, pad_id, out) if cfg.teacher and cfg.distill_weight else None
    rng = random.Random(cfg.seed)
    steps_per_epoch = math.ceil(len(lengths) / cfg.batch_size)
    total_steps = int(steps_per_epoch * cfg.epochs)
    if cfg.max_steps is not None:
        total_steps = min(total_steps, cfg.max_steps)
    warmup = int(total_steps * cfg.warmup_ratio)

    optimizer = torch.optim.AdamW(parameter_groups(model, cfg))
    base_lrs = [g["lr"] for g in optimizer.param_groups]

    def lr_factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    loss_s = nn.CrossEntropyLoss(ignore_index=IGNORE, label_smoothing=cfg.label_smoothing)
    loss_t = nn.CrossEntropyLoss(ignore_index=IGNORE, label_smoothing=cfg.label_smoothing)
    log_path = out / "train_log.jsonl"
    log_path.write_text("")
    meta = {
        "config": asdict(cfg),
        "base_model": base,
        "data_sizes": splits.sizes(),
        "test_overlap_with_train": splits.overlap,
        # extra rows (analysts' corrections) read, kept, and dropped as texts of a test set
        "extra_data": {"files": [Path(p).name for p in cfg.extra_data], **splits.extra_counts},
        # argv[0] is the entry point, whichever was used
        "command": command or "finsent " + " ".join(sys.argv[1:]),
    }
    best: dict = {"score": -1.0}  # type: ignore[type-arg]
    evals_since_best = 0
    step = 0
    running = 0.0
    progress = tqdm(total=total_steps, desc="training", unit="step", dynamic_ncols=True)
    stop = False
    epoch = 0
    while step < total_steps and not stop:
        epoch += 1
        for batch in bucketed_batches(lengths, cfg.batch_size, rng):
            model.train()
            input_ids, mask = pad_batch([train_enc.ids[i] for i in batch], pad_id)
            ys = torch.from_numpy(train_enc.sentiment[batch])
            yt = torch.from_numpy(train_enc.topic[batch])
            s_logits, t_logits = model(torch.from_numpy(input_ids), torch.from_numpy(mask))
            loss = torch.zeros(())
            if (ys != IGNORE).any():
                loss = loss + cfg.sentiment_weight * loss_s(s_logits, ys)
            if (yt != IGNORE).any():
                loss = loss + cfg.topic_weight * loss_t(t_logits, yt)
            if soft is not None:
                loss = loss + cfg.distill_weight * (
                    cfg.sentiment_weight * distill_loss(s_logits, soft[0][batch], cfg.distill_temperature)
                    + cfg.topic_weight * distill_loss(t_logits, soft[1][batch], cfg.distill_temperature)
                )
            for group, lr in zip(optimizer.param_groups, base_lrs, strict=True):
                group["lr"] = lr * lr_factor(step)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            optimizer.step()
            step += 1
            running = 0.98 * running + 0.02 * loss.item() if step > 1 else loss.item()
            progress.update(1)
            progress.set_postfix(loss=f"{running:.3f}", epoch=epoch)
            if step % cfg.eval_every == 0 or step == total_steps:
                dev = evaluate_dev(model, dev_enc, pad_id)
                record = {
                    "step": step,
                    "epoch": round(step / steps_per_epoch, 3),
                    "loss": running,
                    "elapsed_s": round(time.time() - started, 1),
                    **dev,
                }
                with log_path.open("a") as fh:
                    fh.write(json.dumps(record) + "\n")
                progress.write(json.dumps(record))
                if dev["score"] > best["score"]:
                    best = record
                    evals_since_best = 0
                    save_checkpoint(model, tokenizer_path, out / "best", {**meta, "best": best})
                else:
                    evals_since_best += 1
                    if evals_since_best >= cfg.patience:
                        progress.write(f"early stop: no dev improvement in {cfg.patience} evaluations")
                        stop = True
            if step >= total_steps or stop:
                break
    progress.close()
    summary = {
        **meta,
        "best": best,
        "steps": step,
        "epochs_run": round(step / steps_per_epoch, 3),
        "wall_time_s": round(time.time() - started, 1),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    best_meta = out / "best" / "training.json"
    if best_meta.exists():
        best_meta.write_text(json.dumps(summary, indent=2))
    return summary


def load_checkpoint(folder: str | Path, attn_implementation: str | None = None) -> tuple[MultiTaskClassifier, dict]:  # type: ignore[type-arg]
    """The model saved by ``save_checkpoint`` and its training metadata."""
    folder = Path(folder)
    if not (folder / "model.pt").is_file():
        raise FileNotFoundError(f"{folder} is not a training checkpoint (no model.pt)")
    model = MultiTaskClassifier.from_config(str(folder), attn_implementation=attn_implementation)
    model.load_state_dict(torch.load(folder / "model.pt", map_location="cpu", weights_only=True))
    model.eval()
    meta = json.loads((folder / "training.json").read_text())
    return model, meta


def parse_config(argv: Sequence[str]) -> TrainConfig:
    """A ``TrainConfig`` from ``--field value`` flags, one per dataclass field.

    ``finsent train`` exposes the common knobs; this entry point (``python -m
    models.train``) also reaches the ones it does not, such as ``--layers``.
    """
    parser = argparse.ArgumentParser(prog="python -m models.train", description=__doc__)
    for f in fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        default = getattr(TrainConfig(), f.name)
        if f.name == "output_dir":
            parser.add_argument("-o", flag, default=default)
        elif f.name == "extra_data":
            parser.add_argument(flag, action="append", default=[])
        elif isinstance(default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default)
        else:
            kind = {"int": int, "float": float}.get(str(f.type).split(" ")[0], str)
            parser.add_argument(flag, type=kind, default=default)
    args = vars(parser.parse_args(list(argv)))
    return TrainConfig(**{f.name: args[f.name] for f in fields(TrainConfig)})


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = parse_config(argv)
    if cfg.data_dir is None:
        cfg.data_dir = os.environ.get("FINSENT_DATA_DIR")
    summary = train(cfg, command="python -m models.train " + " ".join(argv))
    print(f"best dev score {summary['best'].get('score', 0):.4f} at step {summary['best'].get('step')}")


if __name__ == "__main__":
    main()
