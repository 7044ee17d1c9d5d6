"""`python -m bench.winograd_end_to_end`: whole stylizations with and without the Winograd pass
(convert/winograd.py), TF.js wasm in headless Chromium through the shipped worker, in one run
(issue 15). The models with the pass are made from the bench model's own converted graph, so
they differ from it by the pass alone: per threshold (the fewest channels a rewritten layer has
on each side), one with the kernels' transforms stored ("stored-256"), one computing them in
the graph at every run ("in-graph-256").

    python -m bench.winograd_end_to_end [--build build/bench-model] [--variant fp32]
        [--kernels stored,in-graph] [--min-channels 256[,512]] [--size 512] [--iterations 1]
        [--rounds 6] [--out bench/winograd-end-to-end.json] [--chromium /usr/bin/chromium]

Each model gets its own browser context and worker, loaded and run once (cold); then rounds
take the models in turn, in alternating order, each run after the machine has gone quiet (a
bounded wait); the best round of each counts (busy spells only ever add time), the median is
reported beside it, and so is the median CPU time the browser's processes used per run, which
other processes hardly change.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.collect import REPO, say, write_inputs
from convert import contract
from convert.tfjs_graph import TfjsGraph, quantize
from convert.winograd import MIN_CHANNELS, winograd

RUNNER = Path(__file__).with_name("winograd") / "end_to_end.mjs"
KERNELS = {"stored": True, "in-graph": False}


def with_winograd(fp32: Path, variant: str, min_channels: int, stored: bool, out: Path) -> dict:
    """The fp32 graph in `fp32` with the pass (then quantized as `variant`) into `out`:
    {"layers": how many rewritten, "bytes": the model's download}."""
    graph = TfjsGraph.load(fp32)
    layers = winograd(graph, min_channels, stored)
    if variant != "fp32":
        quantize(graph, variant)
    return {"layers": layers, "bytes": graph.save(out)}


def model_bytes(folder: Path) -> int:
    return (
        sum(f.stat().st_size for f in folder.glob("*.bin")) + (folder / "model.json").stat().st_size
    )


def summary(document: dict) -> str:
    plain = document["models"]["plain"]
    lines = [
        f"{document['variant']} at {document['size']} px, iterations {document['iterations']}, "
        f"{len(plain['times_s'])} rounds, load average {min(document['load_average']):.2f}-"
        f"{max(document['load_average']):.2f}; best (median) seconds:",
        f"  plain {min(plain['times_s']):.2f} ({statistics.median(plain['times_s']):.2f}), "
        f"CPU {statistics.median(plain['cpu_s']):.1f} s, {plain['bytes'] / 2**20:.1f} MB",
    ]
    for name, model in document["models"].items():
        if name != "plain":
            lines.append(
                f"  {name} {min(model['times_s']):.2f} ({statistics.median(model['times_s']):.2f})"
                f": {model['ratio_best']:.3f}x ({model['ratio_median']:.3f}x), CPU "
                f"{statistics.median(model['cpu_s']):.1f} s ({model['ratio_cpu']:.3f}x), "
                f"{model['layers']} layers, {model['bytes'] / 2**20:.1f} MB, output within "
                f"{document['max_difference'][name]}/255 of plain"
            )
    return "\n".join(lines)


def measure(
    build: Path,
    chromium: str,
    *,
    variant: str = "fp32",
    kernels: tuple[str, ...] = ("stored",),
    thresholds: tuple[int, ...] = (MIN_CHANNELS,),
    size: int = 512,
    iterations: int = 1,
    rounds: int = 3,
) -> dict:
    """The bench model in `build` plain and with the pass in each form, through the shipped
    worker in one browser run: the document `summary` reads, or {"error": one line}."""
    model = build / "model"
    if not (model / "model.json").exists():
        return {"error": f"{model} is missing: run `make bench-model`"}
    plain = model / Path(contract.variant_path(variant)).parent
    models = {"plain": {"folder": plain, "bytes": model_bytes(plain)}}
    with tempfile.TemporaryDirectory(prefix="winograd-e2e-") as scratch:
        work = Path(scratch)
        for kind in kernels:
            for threshold in thresholds:
                name = f"{kind}-{threshold}"
                say(f"winograd: the pass on {variant}, {name}")
                folder = work / name
                made = with_winograd(model, variant, threshold, KERNELS[kind], folder)
                models[name] = {"folder": folder} | made
        request, response = work / "request.json", work / "response.json"
        request.write_text(json.dumps({
            "chromium": chromium, "repo": str(REPO), "inputsDir": str(work / "inputs"),
            "inputs": write_inputs([size], work / "inputs")[str(size)],
            "iterations": iterations, "rounds": rounds, "quiet": 0.3, "maxWaitS": 30,
            "models": {name: str(m.pop("folder")) for name, m in models.items()},
        }))  # fmt: skip
        start = os.getloadavg()[0]
        subprocess.run(["node", str(RUNNER), str(request), str(response)], cwd=REPO, check=False)
        result = json.loads(response.read_text()) if response.exists() else {"errors": ["none"]}
    if result.get("errors") or len(result.get("load_average", [])) != rounds:
        return {"error": f"the browser part failed: {result.get('errors')}"}
    best = min(result["models"]["plain"]["times_s"])
    median = statistics.median(result["models"]["plain"]["times_s"])
    cpu = statistics.median(result["models"]["plain"]["cpu_s"])
    for name, measured in result["models"].items():
        models[name] |= measured
        if name != "plain":
            models[name]["ratio_best"] = min(measured["times_s"]) / best
            models[name]["ratio_median"] = statistics.median(measured["times_s"]) / median
            models[name]["ratio_cpu"] = statistics.median(measured["cpu_s"]) / cpu
    return {
        "variant": variant,
        "size": size,
        "iterations": iterations,
        "threads": result["models"]["plain"]["load"]["env"]["wasm_threads"],
        "load_average": [round(start, 2)] + [round(x, 2) for x in result["load_average"]],
        "max_difference": result["max_difference"],
        "models": models,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.winograd_end_to_end", description=__doc__
    )
    parser.add_argument("--build", type=Path, default=Path("build/bench-model"))
    parser.add_argument("--variant", choices=("fp32", "float16"), default="fp32")
    parser.add_argument("--kernels", default=",".join(KERNELS))
    parser.add_argument("--min-channels", default=str(MIN_CHANNELS))
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--iterations", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--out", type=Path, default=Path("bench/winograd-end-to-end.json"))
    parser.add_argument("--chromium", default=os.environ.get("CHROMIUM", "/usr/bin/chromium"))
    args = parser.parse_args(argv)
    kernels = tuple(args.kernels.split(","))
    if not set(kernels) <= set(KERNELS):
        parser.error(f"--kernels: stored, in-graph or both, not {args.kernels!r}")
    if not all(c.isdigit() for c in args.min_channels.split(",")):
        parser.error(f"--min-channels: channel counts, not {args.min_channels!r}")
    thresholds = tuple(int(c) for c in args.min_channels.split(","))
    document = measure(
        args.build, args.chromium, variant=args.variant, kernels=kernels,
        thresholds=thresholds, size=args.size, iterations=args.iterations, rounds=args.rounds,
    )  # fmt: skip
    if "error" in document:
        print(f"bench.winograd_end_to_end: {document['error']}", file=sys.stderr)
        return 1
    args.out.write_text(json.dumps(document, indent=1) + "\n")
    print(summary(document))
    return 0


if __name__ == "__main__":
    sys.exit(main())
