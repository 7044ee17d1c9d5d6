"""Prototypes of conversion changes, measured by `make bench` before anyone adopts them.

Each function rewrites a copy of the converted TF.js model (never the published one) so the
benchmark can show what a change to convert/ would buy. They are evidence for the conversion
owner, not part of the pipeline.
"""

from pathlib import Path

import numpy as np

BATCH_MATMUL = ("BatchMatMulV2", "BatchMatMul")


def unfold_matmul_transposes(source: Path, target: Path) -> dict:
    """Turn every BatchMatMul's adj_x / adj_y flag into an explicit Transpose of that operand.

    tfjs-backend-wasm 4.x sends a product to XNNPACK only with batch 1 and no transpose flag;
    with a flag it runs a scalar single-threaded loop (~1 GFLOP/s). The converter folds the
    attention's transposes into those flags. An explicit Transpose costs one pass over the
    operand; the product then runs on XNNPACK. Returns what changed and the bytes written.
    """
    from convert.tfjs_graph import TfjsGraph

    graph = TfjsGraph.load(source)
    perm = graph.add_int_const("bench_experiment/perm_0_2_1", np.array([0, 2, 1], np.int32))
    added, unfolded = [], 0
    for node in graph.nodes:
        if node["op"] not in BATCH_MATMUL:
            continue
        attr = node.setdefault("attr", {})
        for index, flag in enumerate(("adj_x", "adj_y")):
            if not attr.get(flag, {}).get("b", False):
                continue
            name = f"{node['name']}/bench_unfold_{flag}"
            added.append({
                "name": name, "op": "Transpose", "input": [node["input"][index], perm],
                "attr": {"T": {"type": "DT_FLOAT"}, "Tperm": {"type": "DT_INT32"}},
            })  # fmt: skip
            node["input"][index] = name
            attr[flag] = {"b": False}
            unfolded += 1
    graph.nodes.extend(added)
    size = graph.save(target)
    return {"name": "unfold-matmul-transposes", "unfolded_flags": unfolded, "bytes": size}
