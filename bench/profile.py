"""Where TF.js spends its time: a `tf.profile` of one stylization, summarised per kernel.

Kernel times are wall-clock per kernel as the backend reports them (the wasm backend times
each kernel synchronously). What the kernels do not account for is the graph executor's
own JavaScript work: scheduling ~2000 nodes, control flow, shape ops without kernels.
"""

import json
import math
from collections import defaultdict
from pathlib import Path

CONVOLUTION = {"Conv2D", "FusedConv2D", "DepthwiseConv2dNative", "FusedDepthwiseConv2D"}
MATMUL = {"BatchMatMul", "_FusedMatMul", "MatMul"}
LAYOUT = {"Transpose"}
PADDING = {"MirrorPad", "PadV2", "Pad"}
SMALL = 64  # elements: outputs this small are shape arithmetic, not image data
# Graph ops that only compute shapes or route control flow in the converted graph.
SHAPE_OPS = (
    "Shape",
    "StridedSlice",
    "GatherV2",
    "Pack",
    "Cast",
    "SparseToDense",
    "SelectV2",
    "Equal",
    "Where",
    "Range",
    "ConcatV2",
    "Squeeze",
    "ExpandDims",
    "Less",
    "Greater",
    "Minimum",
    "Maximum",
    "Ceil",
    "Floor",
    "Round",
)


def _numel(shape: list[int] | None) -> int:
    return math.prod(shape) if shape else 1


def category(kernel: dict) -> str:
    name = kernel["name"]
    if name in CONVOLUTION:
        return "convolution"
    if name in MATMUL:
        return "matmul"
    if name in LAYOUT:
        return "transpose"
    if name in PADDING:
        return "padding"
    outputs = kernel.get("outputShapes") or [[]]
    if all(_numel(s) < SMALL for s in outputs if s is not None):
        return "shape arithmetic"
    return "other (elementwise, pooling, softmax, resize, reductions)"


def kernel_flops(kernel: dict) -> int:
    """FLOPs of a convolution or matrix product from its shapes (0 for other kernels)."""
    inputs, outputs = kernel.get("inputShapes") or [], kernel.get("outputShapes") or []
    if not outputs or outputs[0] is None:
        return 0
    out = outputs[0]
    if kernel["name"] in CONVOLUTION and len(inputs) >= 2 and len(inputs[1] or []) == 4:
        kh, kw, c_in, _ = inputs[1]
        return 2 * kh * kw * c_in * _numel(out)
    if kernel["name"] in MATMUL and len(inputs) >= 1 and len(out) >= 2:
        batch = _numel(out[:-2])
        rows, cols = out[-2], out[-1]
        k = _numel(inputs[0]) // max(batch * rows, 1)
        return 2 * batch * rows * cols * k
    return 0


def matmul_transposes(kernel: dict) -> dict:
    """Which operands a BatchMatMul read transposed, inferred from its shapes.

    tfjs-backend-wasm 4.x runs a product on XNNPACK only with batch 1 and neither operand
    transposed; otherwise it falls back to a scalar, single-threaded triple loop.
    """
    a, b = (kernel.get("inputShapes") or [None, None])[:2]
    out = (kernel.get("outputShapes") or [None])[0]
    if not (a and b and out) or len(a) < 2 or len(b) < 2:
        return {}
    return {"transpose_a": a[-2] != out[-2], "transpose_b": b[-1] != out[-1]}


def graph_matmul_flags(model_json: Path) -> list[dict]:
    """The converted graph's matrix products and their transpose flags."""
    nodes = json.loads(model_json.read_text())["modelTopology"]["node"]
    counts: dict[tuple, int] = defaultdict(int)
    for node in nodes:
        if node["op"] in ("BatchMatMulV2", "BatchMatMul", "MatMul"):
            attr = node.get("attr", {})
            flags = ("adj_x", "adj_y") if node["op"] != "MatMul" else ("transpose_a", "transpose_b")
            key = (node["op"], *(attr.get(f, {}).get("b", False) for f in flags))
            counts[key] += 1
    return [
        {"op": op, "transpose_a": ta, "transpose_b": tb, "count": n}
        for (op, ta, tb), n in sorted(counts.items())
    ]


def graph_op_counts(model_json: Path) -> dict[str, int]:
    nodes = json.loads(model_json.read_text())["modelTopology"]["node"]
    counts: dict[str, int] = defaultdict(int)
    for node in nodes:
        counts[node["op"]] += 1
    # Loop bodies live in the graph's function library when the converter keeps them there.
    library = json.loads(model_json.read_text())["modelTopology"].get("library", {})
    for function in library.get("function", []):
        for node in function.get("nodeDef", []):
            counts[node["op"]] += 1
    return dict(sorted(counts.items(), key=lambda item: -item[1]))


def is_scope(kernel: dict) -> bool:
    """Op-level records ("fusedConv2d__op") that wrap a kernel recorded on its own as well:
    counting both would count that time twice."""
    return kernel["name"].endswith("__op")


def summarise(raw: dict, model_json: Path | None, peak_gflops: float, top: int = 25) -> dict:
    scopes = [k for k in raw["kernels"] if is_scope(k)]
    kernels = [k for k in raw["kernels"] if not is_scope(k)]
    total_ms = sum(k["ms"] for k in kernels)
    by_name: dict[str, dict] = defaultdict(lambda: {"count": 0, "ms": 0.0, "flops": 0})
    by_category: dict[str, dict] = defaultdict(lambda: {"count": 0, "ms": 0.0})
    for kernel in kernels:
        entry = by_name[kernel["name"]]
        entry["count"] += 1
        entry["ms"] += kernel["ms"]
        entry["flops"] += kernel_flops(kernel)
        cat = by_category[category(kernel)]
        cat["count"] += 1
        cat["ms"] += kernel["ms"]
    names = []
    for name, entry in sorted(by_name.items(), key=lambda item: -item[1]["ms"]):
        row = {
            "kernel": name,
            "count": entry["count"],
            "total_ms": round(entry["ms"], 1),
            "share": round(entry["ms"] / total_ms, 4) if total_ms else 0.0,
        }
        if entry["flops"]:
            row["gflops_per_s"] = round(entry["flops"] / (entry["ms"] / 1000) / 1e9, 1)
            row["share_of_peak"] = round(row["gflops_per_s"] / peak_gflops, 3)
        names.append(row)
    instances = sorted(kernels, key=lambda k: -k["ms"])[:top]
    transposes: dict[tuple, dict] = defaultdict(lambda: {"count": 0, "ms": 0.0})
    for kernel in kernels:
        if kernel["name"] in LAYOUT:
            key = (json.dumps(kernel["inputShapes"]), json.dumps(kernel["outputShapes"]))
            transposes[key]["count"] += 1
            transposes[key]["ms"] += kernel["ms"]
    wall_ms = raw["wall_s"] * 1000
    result = {
        "backend": raw.get("backend"),
        "size": raw.get("size"),
        "iterations": raw.get("iterations"),
        "wall_ms": round(wall_ms, 1),
        "kernel_ms": round(total_ms, 1),
        "executor_overhead_ms": round(wall_ms - total_ms, 1),
        "kernel_count": len(kernels),
        "op_scopes_not_counted": len(scopes),
        "by_category": [
            {
                "category": c,
                "count": v["count"],
                "total_ms": round(v["ms"], 1),
                "share": round(v["ms"] / total_ms, 4) if total_ms else 0.0,
            }
            for c, v in sorted(by_category.items(), key=lambda item: -item[1]["ms"])
        ],
        "by_kernel": names,
        "top_instances": [
            {
                "kernel": k["name"],
                "ms": round(k["ms"], 2),
                "input_shapes": k["inputShapes"],
                "output_shapes": k["outputShapes"],
                **(matmul_transposes(k) if k["name"] in MATMUL else {}),
                **(
                    {"gflops_per_s": round(kernel_flops(k) / (k["ms"] / 1000) / 1e9, 1)}
                    if kernel_flops(k) and k["ms"] > 0
                    else {}
                ),
            }
            for k in instances
        ],
        "transposes": [
            {
                "input_shapes": json.loads(a),
                "output_shapes": json.loads(b),
                "count": v["count"],
                "total_ms": round(v["ms"], 1),
            }
            for (a, b), v in sorted(transposes.items(), key=lambda item: -item[1]["ms"])
        ],
        "executed_counts": {n["kernel"]: n["count"] for n in names},
    }
    if model_json is not None and model_json.exists():
        counts = graph_op_counts(model_json)
        result["graph_op_counts"] = counts
        result["graph_shape_ops"] = {op: counts[op] for op in SHAPE_OPS if op in counts}
        result["graph_transposes"] = counts.get("Transpose", 0)
        result["graph_nodes"] = sum(counts.values())
        result["graph_matmuls"] = graph_matmul_flags(model_json)
    return result


def markdown(summary: dict) -> str:
    lines = [
        f"TF.js `{summary['backend']}` backend, one stylization at {summary['size']} px, "
        f"iterations {summary['iterations']}: {summary['wall_ms'] / 1000:.2f} s wall, of which "
        f"{summary['kernel_ms'] / 1000:.2f} s in {summary['kernel_count']} kernels and "
        f"{summary['executor_overhead_ms'] / 1000:.2f} s outside kernels (graph executor, "
        "JavaScript, control flow).",
        "",
        "| category | kernels run | time (ms) | share |",
        "|---|---:|---:|---:|",
    ]
    for row in summary["by_category"]:
        lines.append(
            f"| {row['category']} | {row['count']} | {row['total_ms']:.0f} | {row['share']:.1%} |"
        )
    lines += [
        "",
        "| kernel | runs | time (ms) | share | GFLOP/s | of machine peak |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in summary["by_kernel"][:20]:
        rate = f"{row['gflops_per_s']:.1f}" if "gflops_per_s" in row else ""
        share = f"{row['share_of_peak']:.1%}" if "share_of_peak" in row else ""
        lines.append(
            f"| {row['kernel']} | {row['count']} | {row['total_ms']:.0f} | "
            f"{row['share']:.1%} | {rate} | {share} |"
        )
    lines += [
        "",
        "Slowest single kernels:",
        "",
        "| kernel | ms | input shapes | output shape | GFLOP/s |",
        "|---|---:|---|---|---:|",
    ]
    for row in summary["top_instances"][:15]:
        shapes = " ".join(str(s) for s in row["input_shapes"])
        lines.append(
            f"| {row['kernel']} | {row['ms']:.1f} | {shapes} | {row['output_shapes'][0]} | "
            f"{row.get('gflops_per_s', '')} |"
        )
    slow = [r for r in summary["top_instances"] if r.get("transpose_a") or r.get("transpose_b")]
    if slow:
        lines += [
            "",
            "Matrix products that read an operand transposed (tfjs-backend-wasm 4.x then skips "
            "XNNPACK for a scalar, single-threaded loop):",
            "",
        ]
        for row in slow:
            flags = " and ".join(f"transpose_{x}" for x in "ab" if row.get(f"transpose_{x}"))
            lines.append(
                f"- {row['input_shapes'][0]} x {row['input_shapes'][1]} -> "
                f"{row['output_shapes'][0]} with {flags}: {row['ms']:.0f} ms "
                f"({row.get('gflops_per_s', 0)} GFLOP/s)"
            )
    checks = [c for c in summary.get("matmul_check", []) if c.get("times_ms")]
    if checks:
        names = sorted({k for c in checks for k in c["times_ms"]})
        lines += [
            "",
            "The attention's products alone on wasm (random data, best of a few runs, "
            "ms): with the transpose as a flag, as converted, and made explicit:",
            "",
            "| shapes (n x m, c) | " + " | ".join(names) + " |",
            "|---|" + "---:|" * len(names),
        ]
        for c in checks:
            cells = [str(c["times_ms"].get(k, "")) for k in names]
            lines.append(
                f"| {c['label']} ({c['n']} x {c['m']}, {c['c']}) | " + " | ".join(cells) + " |"
            )
    if summary["transposes"]:
        lines += [
            "",
            "Transposes (grouped by shape):",
            "",
            "| input | output | runs | time (ms) |",
            "|---|---|---:|---:|",
        ]
        for row in summary["transposes"][:12]:
            lines.append(
                f"| {row['input_shapes'][0]} | {row['output_shapes'][0]} | "
                f"{row['count']} | {row['total_ms']:.1f} |"
            )
    if "graph_op_counts" in summary:
        shape_ops = ", ".join(f"{k} {v}" for k, v in summary["graph_shape_ops"].items())
        lines += [
            "",
            f"The graph (model.json) has {summary['graph_nodes']} nodes, among them "
            f"{summary['graph_transposes']} Transpose; shape and control ops: {shape_ops}.",
        ]
    return "\n".join(lines) + "\n"
