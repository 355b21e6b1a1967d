"""Static activation scales: the arithmetic of one scale, and the graph rewrite on a tiny graph."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from models.quantize import Range, dynamic_inputs, freeze_activation_scales, measure_ranges


@pytest.mark.parametrize(
    ("low", "high", "scale", "zero_point"),
    [
        (-1.0, 1.0, 2 / 255, 128),  # symmetric range: zero in the middle
        (0.0, 2.55, 0.01, 0),  # non-negative (after GELU or softmax): zero point at 0
        (-2.55, 0.0, 0.01, 255),  # non-positive
        (0.5, 2.55, 0.01, 0),  # the range is widened to include 0, as DynamicQuantizeLinear does
        (0.0, 0.0, 1.0, 0),  # a constant zero tensor: any scale works, 1.0 avoids dividing by 0
    ],
)
def test_scale_and_zero_point_follow_dynamic_quantize_linear(
    low: float, high: float, scale: float, zero_point: int
) -> None:
    got_scale, got_zero_point = Range(low, high).uint8_scale_and_zero_point()
    assert got_scale == pytest.approx(scale) and got_zero_point == zero_point


def _tiny_dynamic_graph(path: Path) -> Path:
    """input_ids -> float -> DynamicQuantizeLinear -> MatMulInteger with a constant weight -> scaled float."""
    weight = helper.make_tensor("w", TensorProto.INT8, [4, 2], np.arange(-4, 4, dtype=np.int8).tobytes(), raw=True)
    nodes = [
        helper.make_node("Cast", ["input_ids"], ["x"], to=TensorProto.FLOAT),
        helper.make_node("Cast", ["attention_mask"], ["mask_f"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["x", "mask_f"], ["xm"]),
        helper.make_node("DynamicQuantizeLinear", ["xm"], ["xq", "xs", "xz"]),
        helper.make_node("MatMulInteger", ["xq", "w", "xz"], ["acc"]),
        helper.make_node("Cast", ["acc"], ["accf"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["accf", "xs"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", 4]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", 4]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 2])],
        [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_frozen_graph_gives_each_row_the_same_result_whatever_its_neighbours(tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    dynamic = _tiny_dynamic_graph(tmp_path / "dynamic.onnx")
    assert dynamic_inputs(onnx.load(str(dynamic))) == ["xm"]
    calibration = [[1, 2, 3, 4], [0, 5, 9, 2], [7, 7, 1, 0]]
    ranges = measure_ranges(dynamic, calibration)
    assert ranges["xm"] == Range(0.0, 9.0)
    frozen = freeze_activation_scales(dynamic, tmp_path / "static.onnx", ranges)
    assert set(frozen) == {"xm"}
    ops = [n.op_type for n in onnx.load(str(tmp_path / "static.onnx")).graph.node]
    assert "DynamicQuantizeLinear" not in ops and "QuantizeLinear" in ops

    def run(path: Path, rows: list[list[int]]) -> np.ndarray:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        ids = np.array(rows, dtype=np.int64)
        return session.run(["y"], {"input_ids": ids, "attention_mask": np.ones_like(ids)})[0]

    row = [1, 2, 3, 4]
    big_neighbour = [200, 0, 0, 0]  # widens a batch-wide dynamic range
    static = tmp_path / "static.onnx"
    assert np.array_equal(run(static, [row])[0], run(static, [row, big_neighbour])[0])
    assert not np.array_equal(run(dynamic, [row])[0], run(dynamic, [row, big_neighbour])[0])
