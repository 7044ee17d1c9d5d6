"""Why a model variant loses accuracy: TF.js weight quantization simulated in PyTorch.

`python -m bench.quantization WEIGHTS OUT.json` applies the converter's rules (float32 tensors
of 1024 elements or more stored as float16, or as uint8: convolution kernels with one symmetric
scale per output channel, anything else with one affine range per tensor; biases stay exact)
to the PyTorch weights, stylizes the benchmark's 256 px images and compares with float32: for
the whole model, with the earlier per-tensor uint8 rule, and one layer at a time. It tells
which layers a mixed-precision variant must keep wide, and whether the loss is inherent or a
conversion bug (when it matches what TF.js measures).
"""

import copy
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from convert import tfjs_graph

QUANTIZE_FROM = tfjs_graph.QUANTIZE_FROM
SIZE = 256


def uint8_affine(values: np.ndarray) -> np.ndarray:
    """The converter's per-tensor uint8 rule, dequantized."""
    codes, low, scale = tfjs_graph.uint8_affine(values)
    return (low + scale * codes.astype(np.float32)).astype(np.float32)


def uint8_per_channel(values: np.ndarray) -> np.ndarray:
    """The converter's uint8 rule for kernels, dequantized: one symmetric scale per output
    channel (dim 0 in PyTorch's layout, the last in TensorFlow's)."""
    if values.ndim != 4:
        return uint8_affine(values)
    codes, scale = tfjs_graph.uint8_symmetric(values, axis=(1, 2, 3))
    return ((codes.astype(np.float32) - 127) * scale).astype(np.float32)


def float16(values: np.ndarray) -> np.ndarray:
    return values.astype(np.float16).astype(np.float32)


def _layer(name: str) -> str:
    return name.rsplit(".", 1)[0]


def quantized(model, rule: Callable, layers: set[str] | None = None):
    """A copy of `model` whose large tensors (in `layers`, default all) went through `rule`."""
    copy_ = copy.deepcopy(model)
    with torch.no_grad():
        for name, parameter in copy_.named_parameters():
            if parameter.numel() < QUANTIZE_FROM or (layers and _layer(name) not in layers):
                continue
            parameter.copy_(torch.from_numpy(rule(parameter.data.numpy())))
    return copy_


def study(weights: Path) -> dict:
    from bench.images import pair
    from sanet import Stylizer
    from sanet.weights import load_model

    model, files = load_model(weights)
    content, style = pair(SIZE)

    def stylize(m) -> np.ndarray:
        return Stylizer(m, True, 0).stylize(content, style, iterations=1, max_resolution=SIZE)

    reference = stylize(model)

    def error(m) -> dict:
        diff = np.abs(stylize(m) - reference)
        return {"mean_abs_error_255": round(float(diff.mean()) * 255, 3),
                "max_abs_error": round(float(diff.max()), 4)}  # fmt: skip

    sizes: dict[str, int] = {}
    for name, parameter in model.named_parameters():
        if parameter.numel() >= QUANTIZE_FROM:
            sizes[_layer(name)] = sizes.get(_layer(name), 0) + parameter.numel()
    whole = {
        "uint8 per output channel (the converter's rule)": error(
            quantized(model, uint8_per_channel)
        ),
        "uint8 per tensor (the rule before)": error(quantized(model, uint8_affine)),
        "float16": error(quantized(model, float16)),
    }
    layers = [
        {"layer": layer, "parameters": count,
         **error(quantized(model, uint8_per_channel, {layer}))}
        for layer, count in sizes.items()
    ]  # fmt: skip
    return {
        "size": SIZE, "iterations": 1, "untrained": files.untrained,
        "whole_model": whole,
        "uint8_one_layer_at_a_time": sorted(layers, key=lambda r: -r["mean_abs_error_255"]),
    }  # fmt: skip


def main(argv: list[str]) -> int:
    weights, out = argv
    Path(out).write_text(json.dumps(study(Path(weights))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
