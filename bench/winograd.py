"""`python -m bench.winograd`: Winograd's F(2x2,3x3) and F(4x4,3x3), written with operations
TF.js runs, against TF.js's own convolution, at every 3x3 layer shape of one stylization at
512 px, on wasm in headless Chromium (issue 15). A micro-benchmark: it decides whether a
conversion pass is worth writing, it is not one.

    python -m bench.winograd [--build build/bench-model] [--size 512] [--repeats 3]
                             [--out bench/winograd.json] [--chromium /usr/bin/chromium]

Each layer is timed on random data: a warm-up call per method, then rounds that take the
methods in turn; the best round counts (the shared machine's busy spells only ever add time).
The Winograd result is compared with the plain convolution's in float32. The estimate of the
whole stylization's gain sums, over the layers, each layer's count times its best time.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import torch
from torch import nn

from bench.collect import REPO, say
from bench.images import content_size, style_size

RUNNER = Path(__file__).with_name("winograd") / "run.mjs"
TILES = (2, 4)


def conv_shapes(model: nn.Module, size: int) -> Counter:
    """{(in channels, out channels, output height, output width): how many runs} of the 3x3
    convolutions in one stylization (iterations 1) at `size`, seen by hooks on the model."""
    seen: Counter = Counter()

    def record(layer: nn.Conv2d, inputs: tuple, output: torch.Tensor) -> None:
        if layer.kernel_size == (3, 3):
            seen[(layer.in_channels, layer.out_channels, *output.shape[2:])] += 1

    hooks = [m.register_forward_hook(record) for m in model.modules() if isinstance(m, nn.Conv2d)]
    try:
        with torch.no_grad():
            model(torch.rand(1, 3, *content_size(size)), torch.rand(1, 3, *style_size(size)))
    finally:
        for hook in hooks:
            hook.remove()
    return seen


def estimate(layers: list[dict]) -> dict:
    """The convolutions' time per stylization, plain and with each layer's fastest method."""
    plain = best = 0.0
    for layer in layers:
        times = {"plain": layer["plain_best_ms"]} | {
            f"f{m}": layer[f"f{m}_best_ms"] for m in TILES if f"f{m}_best_ms" in layer
        }
        layer["fastest"] = min(times, key=times.get)
        plain += layer["count"] * times["plain"]
        best += layer["count"] * times[layer["fastest"]]
    return {
        "plain_ms": round(plain, 1),
        "fastest_ms": round(best, 1),
        "saved_ms": round(plain - best, 1),
    }


def markdown(document: dict) -> str:
    lines = [
        f"Best of {document['repeats']} rounds, in ms.",
        "",
        "| layer (C -> K, output) | runs | plain | F(2x2,3x3) | F(4x4,3x3) "
        "| F2 max error | F4 max error | fastest |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    cell = lambda layer, key, fmt: format(layer[key], fmt) if key in layer else ""  # noqa: E731
    for layer in document["layers"]:
        lines.append(
            f"| {layer['channels']} -> {layer['outputs']}, {layer['height']}x{layer['width']} "
            f"| {layer['count']} | {layer['plain_best_ms']:.1f} "
            f"| {cell(layer, 'f2_best_ms', '.1f')} | {cell(layer, 'f4_best_ms', '.1f')} "
            f"| {cell(layer, 'f2_max_error_relative', '.1e')} "
            f"| {cell(layer, 'f4_max_error_relative', '.1e')} | {layer['fastest']} |"
        )
    for chain in document["chains"]:
        lines.append(
            f"| conv4_1 to relu5_1, {chain['channels']} channels in at "
            f"{chain['height']}x{chain['width']} | 1 | {chain['plain_best_ms']:.1f} "
            f"| {chain['f2_best_ms']:.1f} | | {chain['f2_max_error_relative']:.1e} | | chained |"
        )
    total = document["estimate"]
    lines += [
        "",
        f"All 3x3 convolutions of one stylization at {document['size']} px: "
        f"{total['plain_ms'] / 1000:.2f} s plain, {total['fastest_ms'] / 1000:.2f} s with each "
        f"layer's fastest method ({total['saved_ms'] / 1000:.2f} s saved). Errors: largest "
        "difference from the plain convolution over its largest output, float32. "
        f"Load average {document['load_average'][0]:.2f} at the start, "
        f"{document['load_average_end'][0]:.2f} at the end; {document['threads']} threads.",
    ]
    return "\n".join(lines) + "\n"


def measure(
    layers: list[dict], repeats: int, chromium: str, chains: list[dict] | None = None
) -> dict:
    """Time `layers` ({channels, outputs, height, width}) and `chains` ({channels, height,
    width}: the encoder's conv4_1 to relu5_1 on that input, every layer plain or every layer in
    F(2x2,3x3)) in Chromium (bench/winograd/run.mjs); {"threads", "layers", "chains"} with
    times and errors, or {"error": one line}."""
    with tempfile.TemporaryDirectory(prefix="winograd-") as scratch:
        request, response = Path(scratch) / "request.json", Path(scratch) / "response.json"
        request.write_text(
            json.dumps(
                {
                    "chromium": chromium,
                    "repo": str(REPO),
                    "repeats": repeats,
                    "tiles": list(TILES),
                    "layers": layers,
                    "chains": chains or [],
                }
            )
        )
        subprocess.run(["node", str(RUNNER), str(request), str(response)], cwd=REPO, check=False)
        result = json.loads(response.read_text()) if response.exists() else {"errors": ["none"]}
    done = (len(result.get("layers", [])), len(result.get("chains", [])))
    if result.get("errors") or done != (len(layers), len(chains or [])):
        return {"error": f"the browser part failed: {result.get('errors')}"}
    for layer in result["layers"]:
        for key in ["plain"] + [f"f{m}" for m in TILES]:
            if f"{key}_ms" in layer:
                layer[f"{key}_best_ms"] = round(min(layer[f"{key}_ms"]), 2)
            if f"{key}_kernels" in layer:  # one profiled call: milliseconds per kernel type
                by_kernel: Counter = Counter()
                for kernel in layer.pop(f"{key}_kernels"):
                    if not kernel["name"].endswith("__op"):  # an op around a kernel: not twice
                        by_kernel[kernel["name"]] += kernel["ms"]
                layer[f"{key}_by_kernel_ms"] = {k: round(v, 1) for k, v in by_kernel.items()}
    for chain in result["chains"]:
        for key in ("plain", "f2"):
            chain[f"{key}_best_ms"] = round(min(chain[f"{key}_ms"]), 2)
    return {k: result[k] for k in ("layers", "chains")} | {"threads": result["env"]["threads"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.winograd", description=__doc__)
    parser.add_argument("--build", type=Path, default=Path("build/bench-model"))
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("bench/winograd.json"))
    parser.add_argument("--chromium", default=os.environ.get("CHROMIUM", "/usr/bin/chromium"))
    args = parser.parse_args(argv)
    weights = args.build / "demo-weights-full"
    if not weights.exists():
        print(f"bench.winograd: {weights} is missing: run `make bench-model`", file=sys.stderr)
        return 1
    from sanet.weights import load_model

    shapes = conv_shapes(load_model(weights)[0], args.size)
    layers = [
        {"channels": c, "outputs": k, "height": h, "width": w, "count": n}
        for (c, k, h, w), n in sorted(shapes.items())
    ]
    # The encoder's deep end on the relu3_4 pooled maps of the content and of the style.
    chains = [
        {"channels": 256, "height": h // 8, "width": w // 8}
        for h, w in (content_size(args.size), style_size(args.size))
    ]
    start = os.getloadavg()
    say(f"winograd: {len(layers)} layer shapes at {args.size} px in Chromium")
    result = measure(layers, args.repeats, args.chromium, chains)
    if "error" in result:
        print(f"bench.winograd: {result['error']}", file=sys.stderr)
        return 1
    document = {
        "size": args.size,
        "repeats": args.repeats,
        "threads": result["threads"],
        "load_average": [round(x, 2) for x in start],
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
        "layers": result["layers"],
        "chains": result["chains"],
    }
    document["estimate"] = estimate(document["layers"])
    args.out.write_text(json.dumps(document, indent=1) + "\n")
    print(markdown(document), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
