"""A TF.js graph model on disk as plain data, and the passes this project runs over it.

`model.json` holds a GraphDef as JSON and a manifest of weights whose bytes lie in shard
files. `TfjsGraph` reads both so that passes can change nodes and constants together:
`deduplicate`, `cancel_transposes`, `fuse_relus`, `unfold_matmul_transposes` and `quantize`.
"""

import base64
import hashlib
import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from convert.contract import SMALL_CONSTANT_ELEMENTS, is_small

SHARD_BYTES = 4 * 2**20
_NUMPY = {"float32": np.float32, "int32": np.int32, "float16": np.float16, "uint8": np.uint8}
_BYTES = {"float32": 4, "int32": 4, "float16": 2, "uint16": 2, "uint8": 1, "bool": 1}
# Ops that act on each element alone, whatever the layout.
ELEMENTWISE = {"Relu", "Relu6", "Identity", "Neg", "Abs", "Sqrt", "Rsqrt", "Square", "Exp"}
PADS = {"MirrorPad", "Pad", "PadV2"}
# Elements: convolution kernels are quantized, small constants (biases, scalars) are not.
QUANTIZE_FROM = SMALL_CONSTANT_ELEMENTS


def node_name(reference: str) -> str:
    """Node inputs look like "name", "name:1" or "^name" (a control dependency)."""
    return reference.lstrip("^").split(":")[0]


@dataclass
class Weight:
    spec: dict  # name, shape, dtype and, when quantized, quantization
    data: bytes


@dataclass
class TfjsGraph:
    model: dict  # model.json without its weights manifest
    weights: dict[str, Weight] = field(default_factory=dict)

    @property
    def nodes(self) -> list[dict]:
        return self.model["modelTopology"]["node"]

    @classmethod
    def load(cls, directory: Path) -> "TfjsGraph":
        model = json.loads((directory / "model.json").read_text())
        groups = model.pop("weightsManifest")
        data = b"".join((directory / p).read_bytes() for g in groups for p in g["paths"])
        weights, offset = {}, 0
        for spec in (s for g in groups for s in g["weights"]):
            size = math.prod(spec["shape"]) * _BYTES[spec.get("quantization", spec)["dtype"]]
            weights[spec["name"]] = Weight(spec, data[offset : offset + size])
            offset += size
        return cls(model, weights)

    def save(self, directory: Path) -> int:
        """Write model.json and shards into an empty or new `directory`; returns total bytes."""
        directory.mkdir(parents=True, exist_ok=True)
        constants = self.const_names()
        kept = [w for w in self.weights.values() if w.spec["name"] in constants]
        # Small constants (shapes, permutations, biases) first, so that they all arrive with the
        # first shard: the page can rehearse the graph (compile GPU shaders) with them while
        # the large kernels still download. A stable sort keeps the rest in graph order.
        kept.sort(key=lambda w: not is_small(w.spec))
        payload = b"".join(w.data for w in kept)
        count = max(1, math.ceil(len(payload) / SHARD_BYTES))
        paths = [f"group1-shard{i + 1}of{count}.bin" for i in range(count)]
        for i, path in enumerate(paths):
            (directory / path).write_bytes(payload[i * SHARD_BYTES : (i + 1) * SHARD_BYTES])
        manifest = [{"paths": paths, "weights": [w.spec for w in kept]}]
        text = json.dumps({**self.model, "weightsManifest": manifest})
        (directory / "model.json").write_text(text)
        return len(text.encode()) + len(payload)

    def const_names(self) -> set[str]:
        return {n["name"] for n in self.nodes if n["op"] == "Const"}

    def op_counts(self) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        for node in self.nodes:
            counts[node["op"]] += 1
        return dict(sorted(counts.items(), key=lambda item: -item[1]))

    def int_values(self, name: str) -> np.ndarray | None:
        """The value of an int32 constant, from the weights or inline in the node."""
        if name in self.weights and self.weights[name].spec["dtype"] == "int32":
            weight = self.weights[name]
            return np.frombuffer(weight.data, np.int32).reshape(weight.spec["shape"])
        node = next((n for n in self.nodes if n["name"] == name and n["op"] == "Const"), None)
        tensor = node and node.get("attr", {}).get("value", {}).get("tensor")
        if tensor and "tensorContent" in tensor:
            return np.frombuffer(base64.b64decode(tensor["tensorContent"]), np.int32)
        if tensor and "intVal" in tensor:
            return np.array(tensor["intVal"], np.int32)
        return None

    def consumers(self) -> dict[str, list[dict]]:
        users: dict[str, list[dict]] = defaultdict(list)
        for node in self.nodes:
            for reference in node.get("input", []):
                users[node_name(reference)].append(node)
        return users

    def add_const(self, name: str, values: np.ndarray) -> str:
        """A new int32 or float32 constant node (its value stored with the weights); returns
        its name."""
        dtype = "int32" if values.dtype.kind in "iu" else "float32"
        dims = [{"size": str(d)} for d in values.shape]
        tf_dtype = {"int32": "DT_INT32", "float32": "DT_FLOAT"}[dtype]
        self.nodes.append({
            "name": name, "op": "Const", "input": [],
            "attr": {"value": {"tensor": {"dtype": tf_dtype, "tensorShape": {"dim": dims}}},
                     "dtype": {"type": tf_dtype}},
        })  # fmt: skip
        spec = {"name": name, "shape": list(values.shape), "dtype": dtype}
        self.weights[name] = Weight(spec, values.astype(_NUMPY[dtype]).tobytes())
        return name

    def float_values(self, name: str) -> np.ndarray | None:
        """The value of a float32 constant stored with the weights, unquantized."""
        weight = self.weights.get(name)
        if weight is None or weight.spec["dtype"] != "float32" or "quantization" in weight.spec:
            return None
        return np.frombuffer(weight.data, np.float32).reshape(weight.spec["shape"])

    def prune(self) -> None:
        """Drop constants that nothing reads any more, with their weights."""
        used = {node_name(r) for n in self.nodes for r in n.get("input", [])}
        outputs = {node_name(o["name"]) for o in self.model["signature"]["outputs"].values()}
        unused = {n["name"] for n in self.nodes if n["op"] == "Const"} - used - outputs
        self.model["modelTopology"]["node"] = [n for n in self.nodes if n["name"] not in unused]
        for name in unused:
            self.weights.pop(name, None)

    def rename_inputs(self, alias: dict[str, str]) -> None:
        for node in self.nodes:
            node["input"] = [_renamed(ref, alias) for ref in node.get("input", [])]


def _renamed(reference: str, alias: dict[str, str]) -> str:
    name = node_name(reference)
    return reference.replace(name, alias[name], 1) if name in alias else reference


def deduplicate(graph: TfjsGraph) -> int:
    """Keep one kernel per distinct value and point its users at it; returns bytes saved.

    The converter inlines a function at every call site: the encoder (run for the style and,
    in the loop, for the content) and the transform (run twice for strength) would otherwise
    ship their weights twice. Small constants are left alone: they are few bytes, and one
    merged across the frames of nested loops (the tiles) left TF.js unable to run the loop.
    """
    first: dict[tuple, str] = {}
    alias: dict[str, str] = {}
    for name, weight in graph.weights.items():
        if is_small(weight.spec):
            continue
        described = json.dumps(
            {k: v for k, v in weight.spec.items() if k != "name"}, sort_keys=True
        )
        key = (described, hashlib.sha256(weight.data).digest())
        alias_of = first.setdefault(key, name)
        if alias_of != name:
            alias[name] = alias_of
    graph.model["modelTopology"]["node"] = [n for n in graph.nodes if n["name"] not in alias]
    graph.rename_inputs(alias)
    saved = sum(len(graph.weights.pop(name).data) for name in alias)
    return saved


def fused_ops(node: dict) -> list[str]:
    """The ops a `_FusedConv2D` node applies after its convolution, e.g. ["BiasAdd", "Relu"]."""
    encoded = node.get("attr", {}).get("fused_ops", {}).get("list", {}).get("s", [])
    return [base64.b64decode(op).decode() for op in encoded]


def fuse_relus(graph: TfjsGraph) -> int:
    """Fold each ReLU that alone reads a convolution (plus bias) into it; returns how many.

    TF.js runs a `_FusedConv2D` with its ReLU in one kernel. As two ops, the convolution's
    output and the ReLU's are held at once: at full resolution on a 672 px tile, 110 MB
    each, and the wasm heap grows by one more block of that size. Same arithmetic either way.
    """
    users = graph.consumers()
    by_name = {n["name"]: n for n in graph.nodes}
    alias: dict[str, str] = {}
    for relu in [n for n in graph.nodes if n["op"] == "Relu"]:
        conv = by_name.get(node_name(relu["input"][0]))
        if not conv or conv["op"] != "_FusedConv2D" or len(users[conv["name"]]) != 1:
            continue
        if fused_ops(conv) != ["BiasAdd"]:
            continue
        conv["attr"]["fused_ops"]["list"]["s"].append(base64.b64encode(b"Relu").decode())
        alias[relu["name"]] = conv["name"]
    graph.model["modelTopology"]["node"] = [n for n in graph.nodes if n["name"] not in alias]
    graph.rename_inputs(alias)
    return len(alias)


def _inverse(perm: list[int]) -> list[int]:
    return [perm.index(i) for i in range(len(perm))]


def cancel_transposes(graph: TfjsGraph) -> int:
    """Remove Transpose pairs that undo each other around layout-free ops; returns how many.

    onnx-tf keeps ONNX's NCHW between ops and wraps each NHWC convolution in transposes, so
    conv -> T(NCHW) -> Relu -> MirrorPad -> T(NHWC) -> conv is common. The ops between the
    two transposes run just as well in NHWC (a pad's widths are permuted to match), so both
    transposes go. Only chains whose inner nodes feed nothing else are rewritten.
    """
    removed = 0
    users = graph.consumers()
    by_name = {n["name"]: n for n in graph.nodes}
    dead: set[str] = set()
    for second in [n for n in graph.nodes if n["op"] == "Transpose"]:
        chain, current = [], by_name.get(node_name(second["input"][0]))
        while current and current["op"] in ELEMENTWISE | PADS and len(users[current["name"]]) == 1:
            chain.append(current)
            current = by_name.get(node_name(current["input"][0]))
        first = current
        if not first or first["op"] != "Transpose" or first["name"] in dead:
            continue
        if len(users[first["name"]]) != 1 and chain:
            continue
        outer = graph.int_values(node_name(first["input"][1]))
        inner = graph.int_values(node_name(second["input"][1]))
        if outer is None or inner is None or list(inner) != _inverse(list(outer)):
            continue
        widths = [_pad_widths(graph, n, list(outer)) for n in chain if n["op"] in PADS]
        if any(w is None for w in widths):
            continue
        for pad, values in zip([n for n in chain if n["op"] in PADS], widths, strict=True):
            pad["input"][1] = graph.add_const(f"{pad['name']}/paddings_nhwc", values)
        source = first["input"][0]
        if chain:
            chain[-1]["input"][0] = source
        target = chain[0]["name"] if chain else source
        for user in users[second["name"]]:
            user["input"] = [target if node_name(r) == second["name"] else r for r in user["input"]]
        dead.add(second["name"])
        if len(users[first["name"]]) == 1:
            dead.add(first["name"])
        removed += 1
    graph.model["modelTopology"]["node"] = [n for n in graph.nodes if n["name"] not in dead]
    graph.prune()
    return removed


MATMUL_FLAGS = {
    "MatMul": ("transpose_a", "transpose_b"),
    "BatchMatMul": ("adj_x", "adj_y"),
    "BatchMatMulV2": ("adj_x", "adj_y"),
}


def unfold_matmul_transposes(graph: TfjsGraph) -> int:
    """Move each matrix product's transpose flag into an explicit Transpose; returns how many.

    TF.js's wasm backend hands a product to XNNPACK only when neither operand is flagged as
    transposed; with a flag it falls back to a scalar loop. The attention's products carry
    such flags (TensorFlow folds the transposes into them), and that loop was about 78% of a
    512 px stylization (bench/profile.md). An explicit transpose of the operand costs little.
    """
    unfolded = 0
    for node in list(graph.nodes):
        flags = MATMUL_FLAGS.get(node["op"], ())
        # Operand ranks, when the converter recorded them; else MatMul's 2 and, for batched
        # products, the 3 of the attention's [N, positions, channels] operands. A wrong guess
        # cannot pass silently: the TF.js parity checks run this graph.
        ranks = [len(s.get("dim", [])) for s in _input_shapes(node)] or [
            2 if node["op"] == "MatMul" else 3
        ] * 2
        for index, flag in enumerate(flags):
            if not node.get("attr", {}).get(flag, {}).get("b"):
                continue
            rank = ranks[index]
            perm = np.array([*range(rank - 2), rank - 1, rank - 2], np.int32)
            name = f"{node['name']}/{flag}"
            graph.nodes.append({
                "name": name, "op": "Transpose",
                "input": [node["input"][index], graph.add_const(f"{name}/perm", perm)],
                "attr": {"T": {"type": "DT_FLOAT"}, "Tperm": {"type": "DT_INT32"}},
            })  # fmt: skip
            node["input"][index] = name
            node["attr"][flag] = {"b": False}
            unfolded += 1
    return unfolded


def _input_shapes(node: dict) -> list[dict]:
    return node.get("attr", {}).get("_input_shapes", {}).get("list", {}).get("shape", [])


def _pad_widths(graph: TfjsGraph, pad: dict, perm: list[int]) -> np.ndarray | None:
    """A pad's constant widths rewritten for the layout before `perm` (row i of the widths
    pads dim perm[i] of that layout); None if they are not constant."""
    widths = graph.int_values(node_name(pad["input"][1]))
    if widths is None:
        return None
    widths = widths.reshape(len(perm), 2)
    moved = np.empty_like(widths)
    moved[perm] = widths
    return moved.astype(np.int32)


def quantize(graph: TfjsGraph, dtype: str) -> int:
    """Store float32 weight tensors of QUANTIZE_FROM elements or more as float16 or uint8, in
    the TF.js manifest format (TF.js restores float32 when it loads them); returns how many
    convolution kernels went to uint8 with one scale per output channel.

    TF.js only knows one affine range per tensor. For uint8, a kernel whose convolutions only
    add a bias is stored per output channel instead (`_quantize_per_channel`); other tensors
    get a per-tensor range with zero exact.
    """
    per_channel = _quantize_per_channel(graph) if dtype == "uint8" else 0
    for weight in graph.weights.values():
        if weight.spec["dtype"] != "float32" or "quantization" in weight.spec:
            continue
        if is_small(weight.spec):
            continue  # biases and small constants: exact, for a few kB
        values = np.frombuffer(weight.data, np.float32)
        if dtype == "float16":
            weight.data = values.astype(np.float16).tobytes()
            weight.spec["quantization"] = {"dtype": "float16", "original_dtype": "float32"}
            continue
        codes, low, scale = uint8_affine(values)
        weight.data = codes.tobytes()
        weight.spec["quantization"] = {
            "dtype": "uint8", "min": low, "scale": scale, "original_dtype": "float32",
        }  # fmt: skip
    return per_channel


def uint8_affine(values: np.ndarray) -> tuple[np.ndarray, float, float]:
    """One affine range for the whole tensor, nudged so that 0.0 is a code: (codes, min,
    scale), with values ~ min + scale * codes."""
    low, high = min(float(values.min()), 0.0), max(float(values.max()), 0.0)
    scale = (high - low) / 255 or 1.0
    low = -round(-low / scale) * scale
    codes = np.clip(np.round((values - low) / scale), 0, 255).astype(np.uint8)
    return codes, low, scale


def uint8_symmetric(values: np.ndarray, axis: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Codes 0..254 with one scale per slice that `axis` reduces over (kept as size-1 dims):
    values ~ (codes - 127) * scale, each slice's largest magnitude exact."""
    peak = np.abs(values).max(axis=axis, keepdims=True)
    scale = np.where(peak > 0, peak / 127, 1).astype(np.float32)
    return (np.round(values / scale) + 127).astype(np.uint8), scale


def _quantize_per_channel(graph: TfjsGraph) -> int:
    """uint8 kernels with one symmetric scale s per output channel, undone after the product.

    A kernel W [h, w, in, out] is stored as codes q = round(W / s) + 127 with the manifest range
    (min -127, scale 1), so TF.js loads q - 127 = W / s. Each convolution using it,
    conv(x, W) + b, becomes conv(x, W / s) + b / s followed by a Mul by s: the same function,
    with each channel's rounding relative to that channel's own range. The Mul costs one pass
    over the convolution's output.
    """
    users = graph.consumers()
    quantized, scaled_biases = 0, {}
    for name, weight in list(graph.weights.items()):
        values = graph.float_values(name)
        if values is None or values.ndim != 4 or values.size < QUANTIZE_FROM:
            continue
        convs = users[name]
        if not convs or not all(_adds_only_a_bias(graph, conv, name) for conv in convs):
            continue
        codes, scale = uint8_symmetric(values, axis=(0, 1, 2))
        scale = scale.reshape(-1)  # [out]
        weight.data = codes.tobytes()
        weight.spec["quantization"] = {
            "dtype": "uint8", "min": -127.0, "scale": 1.0, "original_dtype": "float32",
        }  # fmt: skip
        scale_name = graph.add_const(f"{name}/channel_scale", scale)
        for conv in convs:
            bias = node_name(conv["input"][2])
            if (bias, name) not in scaled_biases:
                scaled = graph.float_values(bias) / scale
                scaled_name = f"{bias}/over_{name.replace('/', '_')}_scale"
                scaled_biases[bias, name] = graph.add_const(scaled_name, scaled)
            conv["input"][2] = scaled_biases[bias, name]
            # The Mul takes the convolution's name, so whatever read the convolution reads it.
            output = conv["name"]
            conv["name"] = f"{output}/per_channel"
            graph.nodes.append({
                "name": output, "op": "Mul", "input": [conv["name"], scale_name],
                "attr": {"T": {"type": "DT_FLOAT"}},
            })  # fmt: skip
        quantized += 1
    graph.prune()
    return quantized


def _adds_only_a_bias(graph: TfjsGraph, conv: dict, kernel: str) -> bool:
    """Whether `conv` is a convolution of some input with `kernel` plus a constant bias, maybe
    then a ReLU, and nothing else, so that scaling its output channels (by positive scales)
    commutes with it."""
    if conv["op"] != "_FusedConv2D" or len(conv["input"]) != 3:
        return False
    return (
        fused_ops(conv) in (["BiasAdd"], ["BiasAdd", "Relu"])
        and node_name(conv["input"][1]) == kernel
        and node_name(conv["input"][0]) != kernel
        and graph.float_values(node_name(conv["input"][2])) is not None
    )
