"""Winograd's minimal filtering F(2x2,3x3) (Lavin & Gray, "Fast Algorithms for Convolutional
Neural Networks", 2016) as a pass over a TF.js graph: `winograd` rewrites the wide 3x3
convolutions into ops TF.js's wasm backend runs fast, 2.25x fewer multiplies each.

For a convolution of a padded input d [1, H+2, W+2, C] with a kernel g [3, 3, C, K] (stride 1,
VALID: the graph's MirrorPad gave the border) and a bias b, over 4x4 input tiles at stride 2:

    V_ij = (B^T d B)_ij   [T tiles, C]  B^T d B is separable: a depthwise convolution down the
                                        columns per row i (4x1, stride 2) then one along the
                                        rows per column j (1x4, stride 2), fixed filters
    M_ij = V_ij U_ij      [T, K]        U = G g G^T as 16 [C, K] constants transformed here
                                        (or computed in the graph from g at every run);
                                        b added to M_11 (A^T's column 1 is all ones)
    Y    = A^T M A                      one product of all 16 by kron(A^T, A^T), then
                                        depth-to-space as a 3-D and a 4-D transpose

An odd H or W gets one zero row or column of padding inside the depthwise convolutions
(explicit padding, no copy) and the extra output row or column is cropped.

Why this shape of graph (bench/winograd/winograd.js measured each choice on TF.js wasm 4.22):
one [C, K] product per position, because a batched BatchMatMul runs outside XNNPACK; U stored
as constants, because XNNPACK repacks a right operand that changes at every call; separable
transforms, because one 4x4 depthwise convolution per position is 3x slower and slicing the
positions out of one tensor copies at about 25 M floats/s; no 5-D transpose.
"""

import base64

import numpy as np

from convert.tfjs_graph import TfjsGraph, fused_ops, node_name

# Both channel counts at least this: below, the transforms' memory traffic costs more than the
# multiplies saved (bench/winograd.json: 1.7x faster at 512 channels, about 1.2x at 256,
# slower at 64 and 128).
MIN_CHANNELS = 256

BT = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], np.float64)
G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], np.float64)
AT = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], np.float64)
TILE, SPAN = 2, 4  # output tile side m; input tile side m + 2

_FLOAT = {"T": {"type": "DT_FLOAT"}}
_INT = {"T": {"type": "DT_INT32"}}


def transformed_kernel(kernel: np.ndarray) -> np.ndarray:
    """U = G g G^T for a kernel [3, 3, C, K]: [4, 4, C, K], in float64."""
    return np.einsum("ia,jb,abck->ijck", G, G, kernel.astype(np.float64))


def _text(value: str) -> dict:
    return {"s": base64.b64encode(value.encode()).decode()}


def _ints(values: list[int]) -> dict:
    return {"list": {"i": [str(v) for v in values]}}


def _attr_text(node: dict, name: str, default: str) -> str:
    value = node.get("attr", {}).get(name, {}).get("s")
    return base64.b64decode(value).decode() if value else default


def rewritable(graph: TfjsGraph, node: dict, min_channels: int = MIN_CHANNELS) -> bool:
    """Whether `node` is a 3x3, stride 1, VALID, NHWC FusedConv2D with a stored kernel whose
    input and output channels are both at least `min_channels`, plus a bias and maybe a ReLU."""
    if node["op"] != "_FusedConv2D" or len(node["input"]) != 3:
        return False
    kernel = graph.float_values(node_name(node["input"][1]))
    attr = node.get("attr", {})
    return (
        kernel is not None
        and kernel.shape[:2] == (3, 3)
        and min(kernel.shape[2:]) >= min_channels
        and graph.float_values(node_name(node["input"][2])) is not None
        and fused_ops(node) in (["BiasAdd"], ["BiasAdd", "Relu"])
        and _attr_text(node, "padding", "") == "VALID"
        and _attr_text(node, "data_format", "NHWC") == "NHWC"
        and attr.get("strides", {}).get("list", {}).get("i") == ["1"] * 4
        and attr.get("dilations", {}).get("list", {}).get("i", ["1"] * 4) == ["1"] * 4
    )


class _Builder:
    """Appends nodes named under one prefix to a graph; constants shared by value name."""

    def __init__(self, graph: TfjsGraph, prefix: str) -> None:
        self.graph, self.prefix = graph, prefix

    def node(self, name: str, op: str, inputs: list[str], attr: dict, full: bool = False) -> str:
        name = name if full else f"{self.prefix}/{name}"
        self.graph.nodes.append({"name": name, "op": op, "input": inputs, "attr": attr})
        return name

    def const(self, name: str, values: np.ndarray, shared: bool = False) -> str:
        """A constant named `name` under winograd/ (`shared`: one per graph, whoever asks),
        created on first use."""
        name = f"winograd/{name}" if shared else name
        if name not in self.graph.weights:
            self.graph.add_const(name, values)
        return name

    def ints(self, name: str, values: list[int]) -> str:
        return self.const(f"{name}_{'_'.join(map(str, values))}", np.array(values, np.int32),
                          shared=True)  # fmt: skip

    def depthwise(self, name: str, x: str, filter_: str, strides: list[int], pad: list[int]) -> str:
        return self.node(name, "DepthwiseConv2dNative", [x, filter_], _FLOAT | {
            "strides": _ints(strides), "padding": _text("EXPLICIT"),
            "explicit_paddings": _ints(pad), "data_format": _text("NHWC"),
            "dilations": _ints([1, 1, 1, 1]),
        })  # fmt: skip

    def reshape(self, name: str, x: str, shape: str) -> str:
        return self.node(name, "Reshape", [x, shape], _FLOAT | {"Tshape": {"type": "DT_INT32"}})

    def transpose(self, name: str, x: str, perm: list[int]) -> str:
        return self.node(name, "Transpose", [x, self.ints("perm", perm)],
                         _FLOAT | {"Tperm": {"type": "DT_INT32"}})  # fmt: skip

    def matmul(self, name: str, a: str, b: str, bias: str | None = None) -> str:
        flags = {"transpose_a": {"b": False}, "transpose_b": {"b": False}}
        if bias is None:
            return self.node(name, "MatMul", [a, b], _FLOAT | flags)
        return self.node(name, "_FusedMatMul", [a, b, bias], _FLOAT | flags | {
            "fused_ops": {"list": {"s": [_text("BiasAdd")["s"]]}}, "num_args": {"i": "1"},
            "epsilon": {"f": 0.0}, "leakyrelu_alpha": {"f": 0.2},
        })  # fmt: skip

    def concat(self, name: str, values: list[str], axis: str, dtype: dict) -> str:
        attr = dtype | {"N": {"i": str(len(values))}, "Tidx": {"type": "DT_INT32"}}
        return self.node(name, "ConcatV2", [*values, axis], attr)


def _filter(row: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A depthwise filter of `shape` ([4, 1, C, 1] or [1, 4, C, 1]) holding `row` along its
    side of 4, the same for every channel."""
    return np.broadcast_to(row.reshape((*shape[:2], 1, 1)), shape).astype(np.float32)


def _kernel_transforms(
    build: _Builder, kernel_name: str, kernel: np.ndarray, stored: bool
) -> list[str]:
    """U_ij, [C, K], for the 16 positions in (i, j) order. `stored`: constants named after the
    kernel (the kernel's call sites share them); else computed in the graph at every run from
    the stored kernel, kron(G, G) [16, 9] x g [9, C K], and sliced per position."""
    channels, outputs = kernel.shape[2:]
    if stored:
        u = transformed_kernel(kernel).astype(np.float32)
        return [
            build.const(f"{node_name(kernel_name)}/winograd_u_{i}{j}", u[i, j].copy())
            for i in range(SPAN)
            for j in range(SPAN)
        ]
    g = build.reshape("g", kernel_name, build.ints("shape", [9, channels * outputs]))
    gg = build.const("kron_g", np.kron(G, G).astype(np.float32), shared=True)
    u = build.matmul("u", gg, g)  # [16, C K]
    return [
        build.reshape(
            f"u_{p}",
            build.node(f"u_{p}_row", "Slice", [u, build.ints("begin", [p, 0]),
                       build.ints("size", [1, -1])], _FLOAT | {"Index": {"type": "DT_INT32"}}),
            build.ints("shape", [channels, outputs]),
        )
        for p in range(SPAN * SPAN)
    ]  # fmt: skip


def _rewrite(graph: TfjsGraph, conv: dict, stored: bool) -> None:
    """Replace `conv` by its F(2x2,3x3) subgraph; the last node takes the convolution's name,
    so whatever read the convolution reads it."""
    output = conv["name"]
    x, kernel_name, bias = conv["input"]
    kernel = graph.float_values(node_name(kernel_name))
    channels, outputs = kernel.shape[2:]
    build = _Builder(graph, f"{output}/winograd")
    u = _kernel_transforms(build, kernel_name, kernel, stored)
    # The input transform's filters, the same for every channel: shared by layers of C channels.
    down = [
        build.depthwise(
            f"down_{i}", x,
            build.const(f"down_{i}_c{channels}", _filter(BT[i], (SPAN, 1, channels, 1)), True),
            [1, TILE, 1, 1], [0, 0, 0, 1, 0, 0, 0, 0],
        )
        for i in range(SPAN)
    ]  # fmt: skip
    along = [
        build.const(f"along_{j}_c{channels}", _filter(BT[j], (1, SPAN, channels, 1)), True)
        for j in range(SPAN)
    ]
    flat = build.ints("shape", [-1, channels])
    products, first = [], None
    for i in range(SPAN):
        for j in range(SPAN):
            v = build.depthwise(f"v_{i}{j}", down[i], along[j], [1, 1, TILE, 1],
                                [0, 0, 0, 0, 0, 1, 0, 0])  # fmt: skip
            first = first or v
            products.append(
                build.matmul(
                    f"m_{i}{j}",
                    build.reshape(f"v_{i}{j}_flat", v, flat),
                    u[i * SPAN + j],
                    bias if (i, j) == (1, 1) else None,
                )
            )
    m = build.concat("m", products, build.ints("axis", [0]), _FLOAT)  # [16 T, K]
    by_position = build.reshape("m_by_position", m, build.ints("shape", [SPAN * SPAN, -1]))
    # Y for every tile and output channel: [T K, 16] x kron(A^T, A^T)^T [16, 4].
    a = build.const("a", np.kron(AT, AT).T.astype(np.float32), shared=True)
    y = build.matmul("y", build.transpose("m_t", by_position, [1, 0]), a)  # [T K, (p, q)]
    y = build.reshape("y_tiles", y, build.ints("shape", [-1, outputs, TILE * TILE]))
    y = build.transpose("y_t", y, [0, 2, 1])  # [T, (p, q), K]
    # Depth-to-space with the tile grid [rows, cols] read from a transformed input's shape.
    shape = build.node("tiles_shape", "Shape", [first], {"T": {"type": "DT_FLOAT"},
                       "out_type": {"type": "DT_INT32"}})  # fmt: skip
    grid = build.node("grid", "Slice", [shape, build.ints("begin", [1]), build.ints("size", [2])],
                      _INT | {"Index": {"type": "DT_INT32"}})  # fmt: skip
    rows_cols = build.concat("rows_cols_shape", [grid, build.ints("shape", [TILE, TILE * outputs])],
                             build.ints("axis", [0]), _INT)  # fmt: skip
    y = build.transpose("y_rows", build.reshape("y_grid", y, rows_cols), [0, 2, 1, 3])
    image_shape = build.concat("image_shape", [
        build.ints("shape", [1]),
        build.node("image_sides", "Mul", [grid, build.ints("tile", [TILE, TILE])], _INT),
        build.ints("shape", [outputs]),
    ], build.ints("axis", [0]), _INT)  # fmt: skip
    y = build.reshape("y_image", y, image_shape)  # [1, 2 rows, 2 cols, K]
    # Crop to [1, H, W, K]: the padded input's shape less the border (an odd side's extra row).
    size = build.node("crop_size", "Sub", [
        build.node("input_shape", "Shape", [x], {"T": {"type": "DT_FLOAT"},
                   "out_type": {"type": "DT_INT32"}}),
        build.ints("border", [0, 2, 2, channels - outputs]),
    ], _INT)  # fmt: skip
    crop_inputs = [y, build.ints("begin", [0, 0, 0, 0]), size]
    slice_attr = _FLOAT | {"Index": {"type": "DT_INT32"}}
    if fused_ops(conv) == ["BiasAdd"]:
        build.node(output, "Slice", crop_inputs, slice_attr, full=True)
    else:
        cropped = build.node("crop", "Slice", crop_inputs, slice_attr)
        build.node(output, "Relu", [cropped], _FLOAT, full=True)


def winograd(graph: TfjsGraph, min_channels: int = MIN_CHANNELS, stored: bool = True) -> int:
    """Rewrite every convolution `rewritable` at `min_channels` into F(2x2,3x3); returns how
    many. `stored`: the kernels' transforms replace the kernels in the weights (16/9 of their
    bytes); else the graph computes them from the kernels at every run."""
    convs = [n for n in graph.nodes if rewritable(graph, n, min_channels)]
    rewritten = {n["name"] for n in convs}
    graph.model["modelTopology"]["node"] = [n for n in graph.nodes if n["name"] not in rewritten]
    for conv in convs:
        _rewrite(graph, conv, stored)
    graph.prune()
    return len(convs)
