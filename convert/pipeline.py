"""`python -m convert`: every stage in order, each checked against the float64 reference,
then published.

A stage is a function of one `Context`: it writes its artifacts under `options.build`, runs
them on the parity cases and hands its checks to `Context.judge`, which records them and stops
the run at the first stage over its tolerance. Nothing is published unless every stage passed.
"""

import json
import os
import shutil
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

import numpy as np
from tqdm import tqdm

from convert import contract
from convert.contract import VARIANTS
from convert.parity import Case, Check, Reference, compare, record
from sanet.errors import SANetError
from sanet.files import check_writable
from sanet.model import SANet
from sanet.request import MIN_SIDE
from sanet.tiling import ALIGN, MIN_TILE, RELU4_1_STRIDE, encoder_margin, features_margin

# (content, style) as (height, width): square; relu4_1 with odd sides (9 x 13, so relu5_1's
# upsampling overshoots); elongated (relu4_1 6 x 25) with a portrait style.
DEFAULT_SIZES = (((96, 96), (96, 96)), ((72, 104), (96, 64)), ((48, 200), (104, 72)))
# Odd sides over three by four of the smallest tiles.
TILED_CONTENT = (2 * MIN_TILE + 21, 3 * MIN_TILE + 37)
# Pieces (`convert.pieces`) of that content: 2 x 3 of them.
PIECE_SIDE = MIN_TILE + 2 * ALIGN
# The pure-JavaScript backend is slow: one small case shows that the fallback runs and agrees.
CPU_BACKEND_CASE = Case((48, 48), (48, 48))


@dataclass
class Options:
    weights: Path | None = None  # None: the default weights directory, else demo weights
    demo: str | None = None  # "full" or "small": convert untrained demo weights
    build: Path = Path("build")
    output: Path = Path("web/model")
    only: str | None = None  # one stage, on the files the earlier stages left in `build`
    variants: tuple[str, ...] = VARIANTS
    sizes: tuple = DEFAULT_SIZES
    winograd: bool = False  # the wide 3x3 convolutions in F(2x2,3x3): convert/winograd.py


@dataclass
class Report:
    weights: dict = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    ops: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    variants: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "weights": self.weights,
            "versions": versions(),
            "timings_s": self.timings,
            "checks": [c.as_dict() for c in self.checks],
            "ops": self.ops,
            "variants": self.variants,
        }


@dataclass
class Context:
    """What every stage reads and adds to."""

    options: Options
    model: SANet
    reference: Reference
    report: Report
    site: Path | None = None  # the TF.js model folder, once the tfjs stage has written it

    def judge(self, checks: list[Check]) -> None:
        """Record checks; stop the run at a stage whose error exceeds its tolerance."""
        self.report.checks.extend(checks)
        failed = [c for c in checks if not c.passed]
        if failed:
            worst = max(failed, key=lambda c: c.max_abs / c.tolerance)
            more = f" (and {len(failed) - 1} more failing checks)" if len(failed) > 1 else ""
            raise SANetError(
                f"parity failed at {worst.describe()}{more}; {self.options.output} is "
                f"unchanged. Every figure is in {self.options.build / 'parity.json'}; "
                "next steps: docs/troubleshooting.md"
            )


def say(message: str) -> None:
    tqdm.write(message, file=sys.stderr)


@contextmanager
def steps(total: int, what: str) -> Iterator[tqdm]:
    """A progress bar on stderr over `total` steps (which step, n of N, elapsed, left)."""
    # disable=None: drawn on a terminal, silent in logs (the stage lines still say each step).
    with tqdm(
        total=total, desc=what, file=sys.stderr, unit="step", leave=False, disable=None
    ) as bar:
        yield bar


@contextmanager
def busy(what: str) -> Iterator[None]:
    """Elapsed time on stderr while one long call (a converter) runs."""
    done = threading.Event()
    with tqdm(desc=what, file=sys.stderr, bar_format="{desc}: {elapsed}", leave=False,
              disable=None) as bar:  # fmt: skip

        def tick() -> None:
            while not done.wait(0.5):
                bar.refresh()

        ticker = threading.Thread(target=tick, daemon=True)
        ticker.start()
        try:
            yield
        finally:
            done.set()
            ticker.join()


def versions() -> dict[str, str]:
    packages = ("torch", "onnx", "onnxruntime", "onnx-tf", "tensorflow-cpu", "tensorflowjs")
    return {name: version(name) for name in packages}


def end_to_end_cases(sizes: tuple) -> list[Case]:
    """Each size as given at one iteration and full strength, and at two iterations with
    strength 0.5 (the loop and the blend); and scaled down by `max_resolution` (to 3/4 of its
    longest side) and back up. Then the controls: the last size with a second style mixed in,
    a mask and the content's colours over two iterations; the first with a second style at
    full strength (the signature's branch without the blend); the first with the style
    scaled to its own resolution; and the first with its encodings given (`Case.reuse`).
    Last, tiles (`Case.tile`) of the smallest side: a larger content with odd sides in 3 x 4
    tiles, held and streamed (`Case.stream`); the controls' case in tiles; and two streamed
    passes with a second style mixed in. Then that content in pieces (`Case.pieces`), each in
    one call and in streamed tiles with a second style and the content's colours."""
    cases = []
    for content, style in sizes:
        cases += [
            Case(content, style),
            Case(content, style, iterations=2, strength=0.5),
            Case(content, style, max_resolution=max(MIN_SIDE, max(content) * 3 // 4)),
        ]
    (first, first_style), (last, last_style) = sizes[0], sizes[-1]
    return [
        *cases,
        Case(last, last_style, iterations=2, strength=0.8, style2=(60, 44), mix=0.6,
             mask=(37, 53), keep_colors=0.7),
        Case(first, first_style, style2=(60, 44), mix=0.6),
        Case(first, first_style, style_resolution=max(MIN_SIDE, max(first_style) * 2 // 3)),
        Case(first, first_style, reuse=True),
        Case(TILED_CONTENT, first_style, tile=MIN_TILE),
        Case(TILED_CONTENT, first_style, tile=MIN_TILE, stream=True),
        Case(last, last_style, iterations=2, strength=0.8, style2=(60, 44), mix=0.6,
             mask=(37, 53), keep_colors=0.7, tile=MIN_TILE),
        Case(TILED_CONTENT, first_style, iterations=2, style2=(60, 44), mix=0.6,
             keep_colors=0.7, tile=MIN_TILE, stream=True),
        Case(TILED_CONTENT, first_style, pieces=PIECE_SIDE),
        Case(TILED_CONTENT, first_style, style2=(60, 44), mix=0.6, keep_colors=0.7,
             tile=MIN_TILE, stream=True, pieces=PIECE_SIDE),
    ]  # fmt: skip


def load_weights(options: Options) -> tuple[SANet, dict]:
    """The model and a description of its weights; falls back to demo weights, loudly."""
    from sanet.encoder import FULL_WIDTHS, SMALL_WIDTHS
    from sanet.fetch import release_or_demo
    from sanet.weights import default_weights_dir, load_model, write_demo_weights

    if options.demo:
        directory = options.build / f"demo-weights-{options.demo}"
        write_demo_weights(directory, SMALL_WIDTHS if options.demo == "small" else FULL_WIDTHS)
    else:
        directory = options.weights or default_weights_dir()
        if options.weights is None and not directory.is_dir():
            directory = release_or_demo(directory, options.build / "demo-weights-full", say)
    model, files = load_model(directory)
    if files.untrained:
        say("WARNING: converting UNTRAINED demo weights: every artifact is labelled as such")
    return model, {
        "source": "demo" if files.untrained else "release",
        "untrained": files.untrained,
        "iteration": files.iteration,
        "widths": list(model.widths),
    }


def _require(*paths: Path) -> None:
    missing = [p for p in paths if not p.exists()]
    if missing:
        raise SANetError(f"{missing[0]} is missing: run the earlier stages first")


def _graph_checks(context: Context, runtime: str, runners: dict[str, Callable]) -> list[Check]:
    """Each graph on the float64 pipeline's own intermediate tensors, at each size."""
    cases = [Case(content, style) for content, style in context.options.sizes]
    checks = []
    with steps(len(cases) * len(runners), f"{runtime} checks") as bar:
        for case in cases:
            for name, (inputs, expected) in context.reference.graphs(case).items():
                bar.set_postfix_str(f"{name}, {case.label}")
                outputs = runners[name](inputs)
                checks += [
                    compare(f"{runtime}/{name}.{key}", case.label, outputs[key], value)
                    for key, value in expected.items()
                ]
                bar.update()
    return checks


def stage_onnx(context: Context) -> None:
    import onnx

    from convert.onnx_export import export_onnx
    from convert.runtimes import onnx_runner

    with busy("exporting the three ONNX graphs"):
        graphs = dict(export_onnx(context.model, context.options.build / "onnx").items())
    context.report.ops["onnx"] = {
        name: dict(Counter(n.op_type for n in onnx.load(str(path)).graph.node))
        for name, path in graphs.items()
    }
    runners = {name: onnx_runner(path) for name, path in graphs.items()}
    context.judge(_graph_checks(context, "onnxruntime", runners))


def stage_tf(context: Context) -> None:
    import tensorflow as tf

    from convert.onnx_export import OnnxGraphs
    from convert.runtimes import tf_graph_runner
    from convert.tf_graphs import onnx_to_tf

    folder = context.options.build / "onnx"
    onnx_graphs = OnnxGraphs(*(folder / f"{n}.onnx" for n in ("encoder", "transform", "decoder")))
    _require(*(path for _, path in onnx_graphs.items()))
    with busy("onnx-tf: converting, freezing and folding the three graphs"):
        graphs = dict(onnx_to_tf(onnx_graphs, context.options.build / "tf").items())
    context.report.ops["tf"] = {
        name: dict(Counter(n.op for n in tf.compat.v1.GraphDef.FromString(path.read_bytes()).node))
        for name, path in graphs.items()
    }
    runners = {name: tf_graph_runner(path) for name, path in graphs.items()}
    context.judge(_graph_checks(context, "tensorflow", runners))


def stage_module(context: Context) -> None:
    from convert.runtimes import TfModule
    from convert.tf_graphs import TfGraphs
    from convert.tf_module import build_tf_module
    from convert.tf_tiles import Margins

    graphs = TfGraphs(context.options.build / "tf")
    _require(*(path for _, path in graphs.items()))
    rule = tiling_rule(context.model)
    margins = Margins(rule["encoder_margin"], rule["features_margin"])
    directory = context.options.build / "tf" / "sanet_module"
    with busy("composing and saving the tf.Module"):
        module = TfModule(build_tf_module(graphs, margins, context.model.widths[3], directory))
    cases = end_to_end_cases(context.options.sizes)
    checks = []
    with steps(len(cases), "tf.Module checks") as bar:
        for case in cases:
            bar.set_postfix_str(case.label)
            expected = context.reference.stylize(case)
            result = module(case, context.reference.encodings(case), rule)
            checks.append(compare("tf.Module", case.label, result, expected))
            bar.update()
    context.judge(checks)


def stage_tfjs(context: Context) -> None:
    """Convert, optimise and quantize into build/tfjs/site, then check it in Node."""
    from convert.tfjs import tf_to_tfjs

    options = context.options
    module = options.build / "tf" / "sanet_module"
    _require(module)
    staging = options.build / "tfjs"
    shutil.rmtree(staging, ignore_errors=True)
    with busy("TF.js converter"):
        converted = tf_to_tfjs(module, staging / "converted")
    site = staging / "site"
    with steps(len(options.variants), "optimising and writing the variants") as bar:
        for variant in options.variants:
            bar.set_postfix_str(variant)
            _write_variant(context, converted, site, variant)
            bar.update()
    shutil.rmtree(converted)
    _check_tfjs(context, site)
    context.site = site


def _write_variant(context: Context, converted: Path, site: Path, variant: str) -> None:
    """One variant of the converted graph, with this project's passes, into `site`."""
    from convert.tfjs_graph import (
        TfjsGraph,
        cancel_transposes,
        deduplicate,
        fuse_relus,
        quantize,
        unfold_matmul_transposes,
    )
    from convert.winograd import winograd

    graph = TfjsGraph.load(converted)
    before = graph.op_counts()
    removed_pairs, removed_bytes = cancel_transposes(graph), deduplicate(graph)
    fused, unfolded = fuse_relus(graph), unfold_matmul_transposes(graph)
    # uint8 keeps plain convolutions: their kernels get one scale per output channel, which a
    # transformed kernel (a product per transform position) has no place for.
    rewritten = winograd(graph) if context.options.winograd and variant != "uint8" else 0
    if variant == "fp32":
        context.report.ops["tfjs"] = {
            "converted": before, "optimized": graph.op_counts(),
            "transpose_pairs_removed": removed_pairs, "duplicate_bytes_removed": removed_bytes,
            "relus_fused": fused, "matmul_transpose_flags_unfolded": unfolded,
            "winograd_layers": rewritten,
        }  # fmt: skip
    else:
        quantize(graph, variant)
    path = contract.variant_path(variant)
    size = graph.save(site / Path(path).parent)
    context.report.variants.append({"name": variant, "path": path, "bytes": size})


def _check_tfjs(context: Context, site: Path) -> None:
    """In Node, side by side: fp32 on the wasm backend (every case) and on the pure-JavaScript
    cpu backend (CPU_BACKEND_CASE), judged against float64; each quantized variant on wasm,
    measured against fp32 (recorded, not judged)."""
    from convert.pieces import stylize_in_pieces
    from convert.runtimes import TfjsJob, module_inputs, run_tfjs_jobs, tfjs_calls

    report = context.report
    every = end_to_end_cases(context.options.sizes)
    cases, in_pieces = [c for c in every if not c.pieces], [c for c in every if c.pieces]
    plain = [c for c in cases if c == Case(c.content, c.style)]  # one pass, nothing else
    quantized = [v for v in report.variants if v["name"] != "fp32"]
    encodings = context.reference.encodings
    jobs = [
        TfjsJob(site, "wasm", tuple(module_inputs(c, encodings(c)) for c in cases)),
        TfjsJob(site, "cpu", (module_inputs(CPU_BACKEND_CASE),)),
        *(
            TfjsJob(site / Path(v["path"]).parent, "wasm", tuple(module_inputs(c) for c in plain))
            for v in quantized
        ),
    ]
    expected = [context.reference.stylize(case) for case in cases]  # before the bar starts
    on_cpu = context.reference.stylize(CPU_BACKEND_CASE)
    with steps(sum(len(job.feeds) for job in jobs), "TF.js runs in Node") as bar:
        outcomes = run_tfjs_jobs(jobs, on_run=bar.update)
    (wasm, wasm_timing), (cpu, cpu_timing), *variant_outcomes = outcomes
    report.timings |= {"tfjs-wasm": wasm_timing, "tfjs-cpu": cpu_timing}
    fp32 = dict(zip(cases, wasm, strict=True))
    judged = [
        compare("tfjs/wasm", c.label, result, e)
        for c, result, e in zip(cases, wasm, expected, strict=True)
    ]
    judged.append(compare("tfjs/cpu", CPU_BACKEND_CASE.label, cpu[0], on_cpu))
    # Two rounds of calls each (measuring, then stylizing), one Node process a round.
    calls, rule = tfjs_calls(site, "wasm"), tiling_rule(context.model)
    with busy(f"TF.js in Node: {len(in_pieces)} requests in pieces"):
        judged += [
            compare("tfjs/wasm", c.label,
                    stylize_in_pieces(calls, module_inputs(c), c.pieces, rule),
                    context.reference.stylize(c))
            for c in in_pieces
        ]  # fmt: skip
    context.judge(judged)
    report.variants[0] |= {"max_abs_error": 0.0, "mean_abs_error": 0.0, "psnr": None}
    for variant, (results, _) in zip(quantized, variant_outcomes, strict=True):
        report.checks += [
            record(f"tfjs-{variant['name']}", c.label, result, fp32[c])
            for c, result in zip(plain, results, strict=True)
        ]
        variant |= error_summary(results, [fp32[c] for c in plain])


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
    (site / contract.METADATA_FILE).write_text(json.dumps(metadata, indent=1))
    incoming = output.with_name(f".{output.name}.incoming")
    retired = output.with_name(f".{output.name}.retired")
    for leftover in (incoming, retired):
        shutil.rmtree(leftover, ignore_errors=True)
    shutil.copytree(site, incoming)
    if output.exists():
        os.replace(output, retired)
    os.replace(incoming, output)
    shutil.rmtree(retired, ignore_errors=True)


def tiling_rule(model: SANet) -> dict[str, int]:
    """How the signature's `tile` input cuts a request (`convert.tf_tiles`): the tile grid
    (pixels), the smallest tile and the margins of this model."""
    return {
        "align": ALIGN,
        "min_tile": MIN_TILE,
        "encoder_margin": encoder_margin(model.encoder),  # pixels
        "features_margin": features_margin(model.transform, model.decoder),  # relu4_1 positions
        "relu4_1_stride": RELU4_1_STRIDE,
    }


def metadata(report: Report, model: SANet) -> dict:
    """What the web page reads: see `convert.contract.metadata`."""
    return contract.metadata(
        weights=report.weights,
        variants=report.variants,
        versions=versions(),
        parity=[c.as_dict() for c in report.checks],
        ops=report.ops.get("tfjs", {}),
        widths=model.widths,
        tiling=tiling_rule(model),
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


STAGES: dict[str, Callable[[Context], None]] = {
    "onnx": stage_onnx,
    "tf": stage_tf,
    "module": stage_module,
    "tfjs": stage_tfjs,
}


def run(options: Options) -> Report:
    """Run the stages (all, or `options.only`), write build/parity.json, publish the model."""
    check_writable_dirs(options.build, options.output.parent)
    report = Report()
    model, report.weights = load_weights(options)
    context = Context(options, model.eval(), Reference(model), report)
    stages = [options.only] if options.only else list(STAGES)
    # The float64 references are a large part of the work: computed on the side while the
    # converters (mostly single-threaded) run, in the order the stages need them.
    context.reference.prefetch(
        [Case(c, s) for c, s in options.sizes] if {"onnx", "tf"} & set(stages) else [],
        [
            *(end_to_end_cases(options.sizes) if {"module", "tfjs"} & set(stages) else []),
            *([CPU_BACKEND_CASE] if "tfjs" in stages else []),
        ],
    )
    started = time.perf_counter()
    try:
        for name in stages:
            began = time.perf_counter()
            say(f"{name}: running")
            STAGES[name](context)
            report.timings[name] = round(time.perf_counter() - began, 2)
            say(f"{name}: passed in {report.timings[name]:.1f} s")
    finally:
        context.reference.close()
        report.timings["total"] = round(time.perf_counter() - started, 2)
        (options.build / "parity.json").write_text(json.dumps(report.as_dict(), indent=1))
    if context.site is not None:
        publish(context.site, options.output, metadata(report, context.model))
        say(f"published {options.output} ({report.timings['total']:.0f} s)")
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
