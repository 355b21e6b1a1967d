"""Static int8: activation scales fixed once, on training texts, so no text depends on its batch.

``quantize_dynamic`` gives ONNX Runtime's fastest int8 kernels (``QAttention``,
``MatMulIntegerToFloat``), but each ``DynamicQuantizeLinear`` in it derives its scale
from the min and max of the whole input tensor: every text of the batch, padding
positions included. A text's neighbours therefore change its result, and near-ties
flip. Here every ``DynamicQuantizeLinear`` becomes a ``QuantizeLinear`` with a constant
scale and zero point, measured on calibration texts (never a test set):

1. run the dynamic graph on each calibration text alone (no padding) and record the
   min and max of every ``DynamicQuantizeLinear`` input;
2. derive the uint8 scale and zero point the way ``DynamicQuantizeLinear`` would for
   that range (the range always includes 0);
3. replace each node by ``QuantizeLinear`` with those constants and point the nodes
   that read its scale and zero point at the constants.

The kernels stay the same integer kernels; integer accumulation is exact, and the
float parts (layer norms, softmax, pooling) work row by row, so a text gets the same
probabilities alone, in a sorted batch or among longer neighbours (up to float
rounding in reductions whose length follows the padding; measured in the card).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from models.tokenization import pad_batch

DYNAMIC_QUANTIZE = "DynamicQuantizeLinear"


@dataclass(frozen=True)
class Range:
    """Observed min and max of one tensor over the calibration texts."""

    low: float
    high: float

    def uint8_scale_and_zero_point(self) -> tuple[float, int]:
        """Scale and zero point as ``DynamicQuantizeLinear`` computes them for this range."""
        low, high = min(0.0, self.low), max(0.0, self.high)
        scale = (high - low) / 255.0 or 1.0
        zero_point = int(np.clip(np.round(-low / scale), 0, 255))
        return scale, zero_point


def dynamic_inputs(model: onnx.ModelProto) -> list[str]:
    """Names of the tensors that the graph quantises with batch-wide dynamic scales."""
    return [node.input[0] for node in model.graph.node if node.op_type == DYNAMIC_QUANTIZE]


def measure_ranges(
    model_path: str | Path, ids: Iterable[Sequence[int]], pad_id: int = 0, threads: int = 2
) -> dict[str, Range]:
    """Min and max of every ``DynamicQuantizeLinear`` input, each text run alone."""
    import onnxruntime as ort

    model = onnx.load(str(model_path))
    names = dynamic_inputs(model)
    known = {o.name for o in model.graph.output}
    for name in names:
        if name not in known:
            model.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    low = {n: np.inf for n in names}
    high = {n: -np.inf for n in names}
    for row in ids:
        input_ids, mask = pad_batch([row], pad_id)
        values = session.run(names, {"input_ids": input_ids, "attention_mask": mask})
        for name, value in zip(names, values, strict=True):
            low[name] = min(low[name], float(np.min(value)))
            high[name] = max(high[name], float(np.max(value)))
    return {n: Range(low[n], high[n]) for n in names}


def freeze_activation_scales(
    dynamic_model: str | Path, output: str | Path, ranges: dict[str, Range]
) -> dict[str, tuple[float, int]]:
    """Write ``output``: ``dynamic_model`` with constant activation scales; returns them per tensor."""
    model = onnx.load(str(dynamic_model))
    graph = model.graph
    renamed: dict[str, str] = {}
    frozen: dict[str, tuple[float, int]] = {}
    nodes = []
    for node in graph.node:
        if node.op_type != DYNAMIC_QUANTIZE:
            nodes.append(node)
            continue
        source = node.input[0]
        if source not in ranges:
            raise ValueError(f"no calibration range for {source!r}: calibrate on the same graph")
        scale, zero_point = ranges[source].uint8_scale_and_zero_point()
        scale_name, zp_name = f"{source}_static_scale", f"{source}_static_zero_point"
        graph.initializer.extend(
            [
                numpy_helper.from_array(np.array(scale, dtype=np.float32), scale_name),
                numpy_helper.from_array(np.array(zero_point, dtype=np.uint8), zp_name),
            ]
        )
        nodes.append(
            helper.make_node(
                "QuantizeLinear", [source, scale_name, zp_name], [node.output[0]], name=f"{node.name}_static"
            )
        )
        renamed[node.output[1]] = scale_name
        renamed[node.output[2]] = zp_name
        frozen[source] = (scale, zero_point)
    del graph.node[:]
    graph.node.extend(nodes)
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name in renamed:
                node.input[i] = renamed[name]
    onnx.checker.check_model(model)
    onnx.save(model, str(output))
    return frozen
