"""The Winograd pass (convert/winograd.py): on a small TF.js graph built here (reflection pads
and 3x3 convolutions as the converted model has them), the rewritten graph computes what the
plain one does in TF.js on wasm, at odd and even sizes, and leaves the narrow layers alone.
About 10 s."""

import base64
import copy

import numpy as np
import pytest

from convert import winograd as pass_module
from convert.runtimes import TfjsJob, run_tfjs_jobs
from convert.tfjs_graph import TfjsGraph
from convert.winograd import winograd

# (channels in, channels out, fused ops) of each padded 3x3 convolution, in order. With
# min_channels 8 the first (6 in) stays plain and the other two are rewritten: one with a
# fused ReLU, one with the ReLU a node of its own, as the converted model has it.
LAYERS = ((6, 8, ["BiasAdd", "Relu"]), (8, 12, ["BiasAdd", "Relu"]), (12, 8, ["BiasAdd"]))
MIN_CHANNELS = 8
# Odd and even heights and widths, and the smallest a reflection pad of 1 takes.
SIZES = ((9, 14), (16, 11), (2, 2), (7, 7))
# Largest difference over the largest output of the plain graph. Both graphs run float32; the
# Winograd transforms add and subtract at most 16 terms of the same order as the inputs at
# each step, so rounding stays within a few 1e-7 relative (measured: about 5e-7 here). A wrong
# transform entry, tile offset or crop gives errors of order 1e-1 to 1.
TOLERANCE = 1e-5


def _text(value: str) -> dict:
    return {"s": base64.b64encode(value.encode()).decode()}


def build_graph(seed: int = 0) -> TfjsGraph:
    """x [1, H, W, 6] -> (MirrorPad, 3x3 FusedConv2D) x 3 -> y, He-scaled random weights."""
    rng = np.random.default_rng(seed)
    float_ = {"T": {"type": "DT_FLOAT"}}
    dims = [{"size": s} for s in ("1", "-1", "-1", str(LAYERS[0][0]))]
    graph = TfjsGraph({
        "format": "graph-model", "generatedBy": "tests", "convertedBy": "tests",
        "signature": {
            "inputs": {"x:0": {"name": "x:0", "dtype": "DT_FLOAT", "tensorShape": {"dim": dims}}},
            "outputs": {"y": {"name": "y:0", "dtype": "DT_FLOAT"}},
        },
        "modelTopology": {"node": [{"name": "x", "op": "Placeholder", "attr": {
            "dtype": {"type": "DT_FLOAT"}, "shape": {"shape": {"dim": dims}}}}],
            "library": {}, "versions": {}},
    })  # fmt: skip
    paddings = graph.add_const("paddings", np.array([[0, 0], [1, 1], [1, 1], [0, 0]], np.int32))
    x = "x"
    for index, (channels, outputs, fused) in enumerate(LAYERS):
        kernel = rng.normal(0, np.sqrt(2 / (9 * channels)), (3, 3, channels, outputs))
        graph.nodes.append({"name": f"pad{index}", "op": "MirrorPad", "input": [x, paddings],
                            "attr": float_ | {"mode": _text("REFLECT"),
                                              "Tpaddings": {"type": "DT_INT32"}}})  # fmt: skip
        graph.nodes.append({
            "name": f"conv{index}", "op": "_FusedConv2D",
            "input": [f"pad{index}",
                      graph.add_const(f"kernel{index}", kernel.astype(np.float32)),
                      graph.add_const(f"bias{index}", rng.normal(0, 0.1, outputs))],
            "attr": float_ | {
                "fused_ops": {"list": {"s": [_text(op)["s"] for op in fused]}},
                "num_args": {"i": "1"}, "strides": {"list": {"i": ["1"] * 4}},
                "dilations": {"list": {"i": ["1"] * 4}}, "padding": _text("VALID"),
                "data_format": _text("NHWC"), "epsilon": {"f": 0.0},
                "TArgs": {"list": {"type": ["DT_FLOAT"]}},
            },
        })  # fmt: skip
        x = f"conv{index}"
        if fused == ["BiasAdd"]:
            graph.nodes.append({"name": f"relu{index}", "op": "Relu", "input": [x], "attr": float_})
            x = f"relu{index}"
    graph.nodes.append({"name": "y", "op": "Identity", "input": [x], "attr": float_})
    return graph


def run(graphs: dict[str, TfjsGraph], tmp_path, inputs: list[np.ndarray]) -> dict:
    """Each graph in TF.js on wasm (Node) on each input: {name: [outputs, flattened]}."""
    jobs = []
    for name, graph in graphs.items():
        graph.save(tmp_path / name)
        jobs.append(TfjsJob(tmp_path / name, "wasm", tuple({"x": x} for x in inputs), "y"))
    outcomes = run_tfjs_jobs(jobs)
    return {name: values for name, (values, _) in zip(graphs, outcomes, strict=True)}


@pytest.fixture(scope="module")
def inputs() -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    return [rng.random((1, h, w, LAYERS[0][0]), np.float32) for h, w in SIZES]


@pytest.mark.parametrize("stored", [True, False], ids=["stored", "in-graph"])
def test_the_rewritten_graph_computes_the_plain_one(tmp_path, inputs, stored):
    plain, rewritten = build_graph(), build_graph()
    assert winograd(rewritten, MIN_CHANNELS, stored) == 2
    ops = [n["op"] for n in rewritten.nodes]
    # The narrow first layer stays a convolution, the others are gone.
    assert ops.count("_FusedConv2D") == 1
    products = 2 * (16 + 1 + (0 if stored else 1))  # 16 positions, the output, maybe U
    assert ops.count("MatMul") + ops.count("_FusedMatMul") == products
    # Stored, the transformed kernels replace the kernels; in the graph, the kernels stay.
    assert "kernel0" in rewritten.weights and ("kernel1" in rewritten.weights) != stored
    results = run({"plain": plain, "winograd": rewritten}, tmp_path, inputs)
    for (h, w), expected, got in zip(SIZES, results["plain"], results["winograd"], strict=True):
        assert got.size == expected.size == h * w * LAYERS[-1][1], (h, w)
        error = np.abs(got - expected).max() / np.abs(expected).max()
        assert error < TOLERANCE, ((h, w), error)


def test_nothing_is_rewritten_under_the_threshold():
    graph = build_graph()
    before = copy.deepcopy(graph.model)
    assert winograd(graph, max(c for layer in LAYERS for c in layer[:2]) + 1) == 0
    assert graph.model == before


def test_the_transformed_kernel_is_g_g_transposed():
    # Against the definition written out for one entry, not against the code's own einsum.
    kernel = np.random.default_rng(2).normal(size=(3, 3, 2, 3))
    u = pass_module.transformed_kernel(kernel)
    g = kernel[:, :, 1, 2]
    row = g[0] / 2 + g[1] / 2 + g[2] / 2  # G's row 1 applied down the columns
    assert u[1, 2, 1, 2] == pytest.approx(row[0] / 2 - row[1] / 2 + row[2] / 2)
    assert u[0, 3, 1, 2] == pytest.approx(g[0, 2])
