"""`python -m convert`: every stage in order, each checked against PyTorch, then published."""

import json
import os
import shutil
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch

from convert import contract
from convert.contract import VARIANTS
from convert.parity import GRAPH_OUTPUTS, Case, Check, Reference, compare
from sanet.errors import SANetError
from sanet.files import check_writable
from sanet.model import SANet

STAGES = ("onnx", "tf", "module", "tfjs")
# (content, style) as (height, width): square; odd relu4_1 sides (13 x 19); non-square and odd.
DEFAULT_SIZES = (((128, 128), (128, 128)), ((100, 150), (96, 64)), ((72, 200), (130, 90)))
F32, F64 = torch.float32, torch.float64


@dataclass
class Options:
    weights: Path | None = None  # None: the default weights directory, else demo weights
    demo: str | None = None  # "full" or "small": convert untrained demo weights
    build: Path = Path("build")
    output: Path = Path("web/model")
    only: str | None = None  # one stage, on the files the earlier stages left in `build`
    variants: tuple[str, ...] = VARIANTS
    sizes: tuple = DEFAULT_SIZES
    node_backends: tuple[str, ...] = ("wasm", "cpu")


@dataclass
class Report:
    weights: dict = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    ops: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    variants: list[dict] = field(default_factory=list)

    def add(self, checks: list[Check]) -> None:
        """Record checks; the run stops at a stage whose error exceeds its tolerance."""
        self.checks.extend(checks)
        failed = [c for c in checks if not c.passed]
        if failed:
            worst = max(failed, key=lambda c: c.max_abs / (c.tolerance or 1.0))
            raise SANetError(
                f"parity failed at {worst.stage} ({worst.case}): max error {worst.max_abs:.2e} "
                f"over tolerance {worst.tolerance:.2e} ({len(failed)} failing checks)"
            )

    def as_dict(self) -> dict:
        return {
            "weights": self.weights,
            "versions": versions(),
            "timings_s": self.timings,
            "checks": [c.as_dict() for c in self.checks],
            "ops": self.ops,
            "variants": self.variants,
        }


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def versions() -> dict[str, str]:
    packages = ("torch", "onnx", "onnxruntime", "onnx-tf", "tensorflow-cpu", "tensorflowjs")
    return {name: version(name) for name in packages}


def end_to_end_cases(sizes: tuple) -> list[Case]:
    """Each size at iterations 1 and 2, strength 1 and 0.5, as given; and once scaled down
    by `max_resolution` (to 3/4 of its longest side) and back up."""
    as_given = [
        Case(content, style, iterations, strength)
        for content, style in sizes
        for iterations in (1, 2)
        for strength in (1.0, 0.5)
    ]
    scaled = [Case(c, s, max_resolution=max(17, max(c) * 3 // 4)) for c, s in sizes]
    return as_given + scaled


def load_weights(options: Options) -> tuple[SANet, dict]:
    """The model and a description of its weights; falls back to demo weights, loudly."""
    from sanet.cli import SMALL_WIDTHS
    from sanet.encoder import FULL_WIDTHS
    from sanet.weights import default_weights_dir, load_model, write_demo_weights

    if options.demo:
        directory = options.build / f"demo-weights-{options.demo}"
        write_demo_weights(directory, SMALL_WIDTHS if options.demo == "small" else FULL_WIDTHS)
    else:
        directory = options.weights or default_weights_dir()
        if options.weights is None and not directory.is_dir():
            directory = _fetch_or_demo(directory, options.build)
    model, files = load_model(directory)
    if files.untrained:
        say("WARNING: converting UNTRAINED demo weights: every artifact is labelled as such")
    return model, {
        "source": "demo" if files.untrained else "release",
        "untrained": files.untrained,
        "iteration": files.iteration,
        "widths": list(model.widths),
    }


def _fetch_or_demo(directory: Path, build: Path) -> Path:
    from sanet.fetch import fetch_release
    from sanet.weights import write_demo_weights

    try:
        for line in fetch_release(directory):
            say(line)
        return directory
    except SANetError as error:
        say(f"WARNING: no release weights ({error})")
        say("WARNING: falling back to UNTRAINED demo weights: the model will not really stylize")
        demo = build / "demo-weights-full"
        write_demo_weights(demo)
        return demo


Runner = Callable[[Path, dict[str, np.ndarray]], dict[str, np.ndarray]]


def _graph_checks(runtime: str, run: Runner, paths: dict[str, Path], ref: Reference, sizes) -> list:
    """Each graph on PyTorch's own intermediate tensors, at each size."""
    checks = []
    for content, style in sizes:
        case = Case(content, style)
        expected, exact = ref.graphs(case, F32), ref.graphs(case, F64)
        for name, path in paths.items():
            outputs = run(path, expected[name])
            for key in GRAPH_OUTPUTS[name]:
                stage = f"{runtime}/{name}.{key}"
                checks.append(
                    compare(stage, case.label, outputs[key], expected[name][key], exact[name][key])
                )
    return checks


def _require(*paths: Path) -> None:
    missing = [p for p in paths if not p.exists()]
    if missing:
        raise SANetError(f"{missing[0]} is missing: run the earlier stages first")


def stage_onnx(model: SANet, options: Options, report: Report, ref: Reference) -> None:
    import onnx

    from convert.onnx_export import export_onnx
    from convert.runtimes import run_onnx

    graphs = dict(export_onnx(model, options.build / "onnx").items())
    report.ops["onnx"] = {
        name: dict(Counter(n.op_type for n in onnx.load(str(path)).graph.node))
        for name, path in graphs.items()
    }
    report.add(_graph_checks("onnxruntime", run_onnx, graphs, ref, options.sizes))


def stage_tf(model: SANet, options: Options, report: Report, ref: Reference) -> None:
    import tensorflow as tf

    from convert.onnx_export import OnnxGraphs
    from convert.runtimes import run_tf_graph
    from convert.tf_graphs import onnx_to_tf

    folder = options.build / "onnx"
    onnx_graphs = OnnxGraphs(*(folder / f"{n}.onnx" for n in ("encoder", "transform", "decoder")))
    _require(*(path for _, path in onnx_graphs.items()))
    graphs = dict(onnx_to_tf(onnx_graphs, options.build / "tf").items())
    report.ops["tf"] = {
        name: dict(Counter(n.op for n in tf.compat.v1.GraphDef.FromString(path.read_bytes()).node))
        for name, path in graphs.items()
    }
    report.add(_graph_checks("tensorflow", run_tf_graph, graphs, ref, options.sizes))


def stage_module(model: SANet, options: Options, report: Report, ref: Reference) -> None:
    from convert.runtimes import TfModule
    from convert.tf_graphs import TfGraphs
    from convert.tf_module import build_tf_module

    graphs = TfGraphs(options.build / "tf")
    _require(*(path for _, path in graphs.items()))
    module = TfModule(build_tf_module(graphs, options.build / "tf" / "sanet_module"))
    report.add([
        compare("tf.Module", case.label, module(case),
                ref.stylize(case, F32), ref.stylize(case, F64))
        for case in end_to_end_cases(options.sizes)
    ])  # fmt: skip


def stage_tfjs(model: SANet, options: Options, report: Report, ref: Reference) -> Path:
    """Convert, optimise and quantize into build/tfjs/site; check it in Node; returns the site."""
    from convert.tfjs import tf_to_tfjs
    from convert.tfjs_graph import (
        TfjsGraph,
        cancel_transposes,
        deduplicate,
        quantize,
        unfold_matmul_transposes,
    )

    module = options.build / "tf" / "sanet_module"
    _require(module)
    staging = options.build / "tfjs"
    shutil.rmtree(staging, ignore_errors=True)
    converted = tf_to_tfjs(module, staging / "converted")
    site = staging / "site"
    for variant in options.variants:
        graph = TfjsGraph.load(converted)
        before = graph.op_counts()
        removed_pairs, removed_bytes = cancel_transposes(graph), deduplicate(graph)
        unfolded = unfold_matmul_transposes(graph)
        if variant == "fp32":
            report.ops["tfjs"] = {
                "converted": before, "optimized": graph.op_counts(),
                "transpose_pairs_removed": removed_pairs, "duplicate_bytes_removed": removed_bytes,
                "matmul_transpose_flags_unfolded": unfolded,
            }  # fmt: skip
        else:
            quantize(graph, variant)
        size = graph.save(site if variant == "fp32" else site / variant)
        report.variants.append(
            {"name": variant, "path": contract.variant_path(variant), "bytes": size}
        )
    shutil.rmtree(converted)
    _check_tfjs(site, options, report, ref)
    return site


def _check_tfjs(site: Path, options: Options, report: Report, ref: Reference) -> None:
    """fp32 against PyTorch on each backend; each quantized variant against fp32 (recorded)."""
    from convert.runtimes import run_tfjs

    cases = end_to_end_cases(options.sizes)
    single = [c for c in cases if (c.iterations, c.strength, c.max_resolution) == (1, 1.0, 0)]
    fp32: dict[Case, np.ndarray] = {}
    for backend in options.node_backends:
        # The pure-JavaScript cpu backend is slow: one pass per size shows that it runs.
        chosen = cases if backend == "wasm" else single
        results, timings = run_tfjs(site, chosen, backend)
        report.timings[f"tfjs-{backend}"] = timings
        if backend == options.node_backends[0]:  # the quantized variants' baseline
            fp32 = dict(zip(chosen, results, strict=True))
        report.add([
            compare(f"tfjs/{backend}", case.label, result,
                    ref.stylize(case, F32), ref.stylize(case, F64))
            for case, result in zip(chosen, results, strict=True)
        ])  # fmt: skip
    for record in report.variants:
        if record["name"] == "fp32":
            record |= {"max_abs_error": 0.0, "mean_abs_error": 0.0, "psnr": None}
            continue
        results, _ = run_tfjs(site / record["name"], single, options.node_backends[0])
        for case, result in zip(single, results, strict=True):
            report.checks.append(
                compare(f"tfjs-{record['name']}", case.label, result, fp32[case], None)
            )
        record |= error_summary(results, [fp32[c] for c in single])


def error_summary(results: list[np.ndarray], references: list[np.ndarray]) -> dict:
    errors = np.concatenate(
        [np.abs(r - e).ravel() for r, e in zip(results, references, strict=True)]
    )
    mse = float(np.mean(errors**2))
    return {
        "max_abs_error": float(errors.max()),
        "mean_abs_error": float(errors.mean()),
        "psnr": None if mse == 0 else float(10 * np.log10(1.0 / mse)),
    }


def check_writable_dirs(*directories: Path) -> None:
    for directory in directories:
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise SANetError(f"{directory}: not writable ({error.strerror})") from None
        check_writable(directory)


def publish(site: Path, output: Path, metadata: dict) -> None:
    """Swap the new model in whole: `output` is the old model or the new one, never a mix."""
    (site / "metadata.json").write_text(json.dumps(metadata, indent=1))
    incoming = output.with_name(f".{output.name}.incoming")
    retired = output.with_name(f".{output.name}.retired")
    for leftover in (incoming, retired):
        shutil.rmtree(leftover, ignore_errors=True)
    shutil.copytree(site, incoming)
    if output.exists():
        os.replace(output, retired)
    os.replace(incoming, output)
    shutil.rmtree(retired, ignore_errors=True)


def metadata(report: Report) -> dict:
    """What the web page reads: see `convert.contract.metadata`."""
    return contract.metadata(
        weights=report.weights,
        variants=report.variants,
        versions=versions(),
        parity=[c.as_dict() for c in report.checks],
        ops=report.ops.get("tfjs", {}),
    )


def format_table(checks: list[Check]) -> str:
    lines = [f"{'stage':<32} {'case':<36} {'max err':>9} {'mean err':>9} {'tolerance':>9}  ok"]
    for c in checks:
        tolerance = f"{c.tolerance:.1e}" if c.tolerance is not None else "recorded"
        lines.append(
            f"{c.stage:<32} {c.case:<36} {c.max_abs:9.2e} {c.mean_abs:9.2e} {tolerance:>9}  "
            + ("yes" if c.passed else "NO")
        )
    return "\n".join(lines)


STAGE_FUNCTIONS = {"onnx": stage_onnx, "tf": stage_tf, "module": stage_module, "tfjs": stage_tfjs}


def run(options: Options) -> Report:
    """Run the stages (all, or `options.only`), write build/parity.json, publish the model."""
    check_writable_dirs(options.build, options.output.parent)
    report = Report()
    model, report.weights = load_weights(options)
    ref = Reference(model)
    site = None
    try:
        for name in [options.only] if options.only else STAGES:
            started = time.perf_counter()
            say(f"{name}: running")
            result = STAGE_FUNCTIONS[name](model, options, report, ref)
            site = result if name == "tfjs" else site
            report.timings[name] = round(time.perf_counter() - started, 2)
            say(f"{name}: done in {report.timings[name]:.1f} s")
    finally:
        (options.build / "parity.json").write_text(json.dumps(report.as_dict(), indent=1))
    if site is not None:
        publish(site, options.output, metadata(report))
        say(f"published {options.output}")
    print(format_table(report.checks))
    if "tfjs" in report.ops:
        say(summary(report))
    return report


def summary(report: Report) -> str:
    """One line on what the TF.js graph carries, before and after this project's passes."""
    ops = report.ops["tfjs"]
    before, after = ops["converted"], ops["optimized"]
    sizes = ", ".join(f"{v['name']} {v['bytes'] / 2**20:.1f} MB" for v in report.variants)
    return (
        f"TF.js graph: {sum(before.values())} -> {sum(after.values())} nodes, Transpose "
        f"{before.get('Transpose', 0)} -> {after.get('Transpose', 0)}; {sizes}"
    )
