"""Prototypes of conversion changes, measured by `make bench` before anyone adopts them.

Each function rewrites a copy of the converted TF.js model (never the published one) so the
benchmark can show what a change to convert/ would buy, and how far its output moves. They are
evidence for the conversion owner, not part of the pipeline. (The first prototype, unfolding
matrix-product transpose flags, measured 4.1x at 512 px and moved into the converter.)
"""

from pathlib import Path

import numpy as np

BATCH_MATMUL = ("BatchMatMulV2", "BatchMatMul")


def transpose_small_operand(source: Path, target: Path) -> dict:
    """Compute A x B^T as (B x A^T)^T when B^T is an explicit Transpose.

    The attention's second product, features [1, C, Ns] x scores^T with scores [1, Nc, Ns],
    transposes the scores: Nc x Ns values (12.6 M at 512 px). The rewritten form transposes the
    features (C x Ns) and the result (C x Nc) instead, 3.5 M values at 512 px with C = 512;
    it only loses when the image is so small that Nc or Ns falls under C. Measured at 512 px:
    x0.98, identical output. The score transpose it saves (~0.1 s) comes back as a slower
    product on the other layout, so the converter keeps the plain form.
    """
    from convert.tfjs_graph import TfjsGraph

    graph = TfjsGraph.load(source)
    nodes = {node["name"]: node for node in graph.nodes}
    perm = graph.add_const("bench_experiment/perm_0_2_1", np.array([0, 2, 1], np.int32))
    transpose_attr = {"T": {"type": "DT_FLOAT"}, "Tperm": {"type": "DT_INT32"}}
    added, rewritten = [], 0
    for node in list(graph.nodes):
        if node["op"] not in BATCH_MATMUL:
            continue
        a, b_t = node["input"][:2]
        if nodes.get(b_t, {}).get("op") != "Transpose" or not _swaps_last_two(graph, nodes[b_t]):
            continue
        b = nodes[b_t]["input"][0]
        product = f"{node['name']}/bench_swapped"
        attr = {k: v for k, v in node.get("attr", {}).items() if not k.startswith("_")}
        added += [
            {"name": f"{product}/a_t", "op": "Transpose", "input": [a, perm],
             "attr": transpose_attr},
            {"name": product, "op": node["op"], "input": [b, f"{product}/a_t"], "attr": attr},
        ]  # fmt: skip
        # The node keeps its name, so its consumers now read the transposed swapped product.
        node.update(op="Transpose", input=[product, perm], attr=dict(transpose_attr))
        rewritten += 1
    graph.nodes.extend(added)
    size = graph.save(target)
    return {"name": "transpose-small-operand", "rewritten_products": rewritten, "bytes": size}


def _swaps_last_two(graph, transpose: dict) -> bool:
    weight = graph.weights.get(transpose["input"][1])
    return weight is not None and np.frombuffer(weight.data, np.int32).tolist() == [0, 2, 1]
