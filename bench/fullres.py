"""Full resolution (issue 11): seconds per megapixel and peak memory at about 1, 4 and 12 MP,
in tiles, for PyTorch, the TF SavedModel and TF.js wasm (the shipped worker in Chromium).

    python -m bench.fullres RUNTIME REQUEST.json RESPONSE.json   (one run, in this process)

Each Python run is a fresh process (`run_python`): load, a warm-up at `warmup_side` px, then
the resident memory as the baseline, the peak reset (VmHWM through /proc/self/clear_refs),
one timed stylization, and the peak again: `added_mb` is what the stylization itself needed.
PyTorch tiles through `Stylizer`'s memory budget: at each size, the smallest budget whose
plan has tiles of at least `tile` px (`budget_for_tile`), so that its tiles match the
signature's; once holding the content's maps, once streamed (`pytorch-streamed`). The
SavedModel and TF.js get the signature's `tile` input; TF.js also streamed (`tfjs-streamed`,
its `stream` input). TF.js runs in a fresh browser context per size; its memory is the
worker's wasm heap (which only grows: its size after the run is the peak) and the renderer
process's peak (bench/tfjs/run.mjs).

REQUEST: {"build", "weights", "shape": [h, w], "style_side", "tile" (0: untiled),
"warmup_side", "keep": a .npy path or null}. RESPONSE: one record, or {"error"}.
"""

import dataclasses
import datetime
import functools
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench import collect, quiet, worker
from bench.images import content_image, style_image

# (height, width), 4:3 like a photo: 1.0, 4.0 and 12.0 megapixels (4000x3000 a phone's).
SIZES = ((864, 1152), (1728, 2304), (3000, 4000))
# The page's budget on a device that reports 4 GB (memory.js memoryBudgetMb gives a stylization
# half), which at full size bounds the page's whole renderer (memory.js fullSizePlan): on 3 GB,
# the full-size model's 12 MP photo is refused (issue 11 aimed at 1.5 GB).
PAGE_BUDGET_MB = 2048
QUIET_GATE_S = 20.0  # the longest wait for a quiet machine before each run (the driver's)


@dataclass(frozen=True)
class FullresPlan:
    """What the full-resolution part runs: every size tiled at `tile` px, the first size also
    untiled (the reference the tiled results must equal), a `style_side` px square style,
    one iteration, one timed run per size and runtime."""

    sizes: tuple[tuple[int, int], ...] = SIZES
    tile: int = 512
    style_side: int = 512
    warmup_side: int = 256
    python: tuple[str, ...] = ("pytorch", "pytorch-streamed", "tensorflow")
    browser: bool = True
    quiet: bool = True
    timeout_s: int = 7200  # a browser run: TF.js wasm takes 40 s or more per megapixel here
    page_budget_mb: int = PAGE_BUDGET_MB

    def description(self) -> list[str]:
        sides = ", ".join(f"{w}x{h}" for h, w in self.sizes)
        return [
            f"Full resolution: contents of {sides} px (4:3) with a {self.style_side} px square "
            f"style, iterations 1, one timed run each, in tiles of {self.tile} px (PyTorch: "
            "the smallest memory budget whose plan has tiles that large, holding the content's "
            "relu4_1 and relu5_1 maps, and streamed: holding neither); the first size also "
            "untiled. Python: a fresh process per run, after a warm-up at "
            f"{self.warmup_side} px (untiled); TF.js wasm: a fresh browser context per run (the "
            "worker's load and warm-up, then the run), holding the maps and streamed (the "
            "signature's `stream`). Size by size, every runtime before the "
            f"next size; before each run a wait of at most {QUIET_GATE_S:.0f} s for a quiet "
            f"machine. Last, TF.js at each size on the page's own plan for a "
            f"{self.page_budget_mb} MB budget (web/src/memory.js fullSizePlan: in pieces where "
            "the page uses them, its tile, held or streamed, and its estimate beside the heap).",
        ]


def label(shape: tuple[int, int]) -> str:
    return f"{shape[1]}x{shape[0]}"


def megapixels(shape: tuple[int, int]) -> float:
    return shape[0] * shape[1] / 1e6


def budget_for_tile(
    stylizer, content: tuple[int, int], style: tuple[int, int], tile: int, streamed: bool
):
    """The smallest memory budget (MB) whose tiling plan, holding the content's maps or
    `streamed`, has tiles of at least `tile` px, and that plan; (None, None) when the untiled
    run fits that budget. (The full-size model's plans then have the attention in chunks of
    4096 positions; the small one's in far smaller chunks.)"""
    from sanet import SANetError

    def plan(budget: int) -> tuple[bool, object]:
        """(whether `budget` tiles at `tile` px or more, or runs untiled; its plan)."""
        try:
            tiling = dataclasses.replace(stylizer, memory_budget_mb=budget).tiling(
                content, style, 1.0, streamed=streamed
            )
        except SANetError:  # does not fit even in tiles
            return False, None
        return tiling is None or tiling.tile >= tile, tiling

    low, high = 0, 1
    while not plan(high)[0]:  # larger budgets plan larger tiles, then no tiles at all
        low, high = high, high * 2
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if plan(middle)[0] else (middle, high)
    tiling = plan(high)[1]
    return (high, tiling) if tiling is not None else (None, None)


def load_pytorch(build: Path, streamed: bool = False):
    """PyTorch's tiled runs hold the content's maps, or are `streamed` (sanet.tiling)."""
    stylizer = worker.pytorch_stylizer(build)  # no budget: untiled
    facts: dict = {}

    def stylize(content: np.ndarray, style: np.ndarray, tile: int) -> np.ndarray:
        tiled = stylizer
        if tile:
            shapes = content.shape[:2], style.shape[:2]
            budget, tiling = budget_for_tile(stylizer, *shapes, tile, streamed)
            if budget is None:
                raise ValueError(f"no memory budget tiles {label(content.shape[:2])} at {tile} px")
            tiled = dataclasses.replace(stylizer, memory_budget_mb=budget, streamed=streamed)
            facts.update(budget_mb=budget, tile_px=tiling.tile, chunk=tiling.chunk)
            facts.update(streamed=tiling.streamed)
        return tiled.stylize(content, style, max_resolution=0)

    return stylize, facts


def load_tensorflow(build: Path):
    import tensorflow as tf

    signature = worker.load_signature(build)

    def stylize(content: np.ndarray, style: np.ndarray, tile: int) -> np.ndarray:
        # `tile` rides with the fed inputs over the controls' off values (worker.Signature).
        fed = {"tile": tf.constant(np.int32(tile))}
        return signature(content, style, 1, 0, encodings=fed)["result"].numpy()

    return stylize, {}


BROWSER = ("tfjs", "tfjs-streamed")  # TF.js wasm in Chromium, holding the maps or streamed
LOADERS = {
    "pytorch": load_pytorch,
    "pytorch-streamed": functools.partial(load_pytorch, streamed=True),
    "tensorflow": load_tensorflow,
}


def measure(runtime: str, request: dict) -> dict:
    """One full-resolution run in this process (see the top)."""
    shape, tile = tuple(request["shape"]), request["tile"]
    stylize, facts = LOADERS[runtime](Path(request["build"]))
    side = request["warmup_side"]
    stylize(content_image(side * 3 // 4, side), style_image(side, side), 0)  # untiled
    content = content_image(*shape)
    style = style_image(request["style_side"], request["style_side"])
    baseline = worker.rss_mb()
    resettable = worker.reset_peak()
    others = quiet.meter()
    began = time.perf_counter()
    result = stylize(content, style, tile)
    seconds = time.perf_counter() - began
    peak = worker.peak_mb()
    if request.get("keep"):
        np.save(request["keep"], np.asarray(result, np.float32))
    return {
        "runtime": runtime,
        "backend": "cpu",
        "shape": list(shape),
        "megapixels": round(megapixels(shape), 3),
        "tile": tile,
        "seconds": round(seconds, 3),
        "s_per_mp": round(seconds / megapixels(shape), 3),
        "memory_mb": round(peak - baseline, 1),  # what the stylization itself needed
        "process_peak_mb": peak,
        "baseline_mb": baseline,
        "peak_scope": "run" if resettable else "process",
        "output_shape": list(np.asarray(result).shape[:2]),
        "others_cores": others()["others_cores"],
        **facts,
    }


def steps(plan: FullresPlan) -> list[tuple[tuple[int, int], int]]:
    """(content shape, tile) in the order run: the first size tiled and untiled, then the
    larger sizes tiled, each by every runtime before the next, so that a run cut short still
    has whole sizes."""
    first = plan.sizes[0]
    return [(first, plan.tile), (first, 0)] + [(shape, plan.tile) for shape in plan.sizes[1:]]


def _kept_path(work: Path, runtime: str, shape: tuple[int, int], tile: int) -> Path:
    return work / f"{runtime}-{label(shape)}-{tile}.npy"


def run_python(
    plan: FullresPlan, runtime: str, shape: tuple[int, int], tile: int, paths: dict
) -> dict:
    """One run in a fresh process; the first size's result is kept in paths["work"]."""
    keep = _kept_path(paths["work"], runtime, shape, tile) if shape == plan.sizes[0] else None
    request = {
        "build": str(paths["build"]),
        "weights": str(paths["weights"]),
        "shape": list(shape),
        "style_side": plan.style_side,
        "tile": tile,
        "warmup_side": plan.warmup_side,
        "keep": str(keep) if keep else None,
    }
    response = collect.run_python_part("bench.fullres", runtime, request)
    record = response.get("record") or {
        "runtime": runtime,
        "backend": "cpu",
        "shape": list(shape),
        "tile": tile,
        "error": response.get("error", "no record"),
    }
    return record | {"wall_s": response["wall_s"]}


def run_browser(
    plan: FullresPlan,
    shape: tuple[int, int],
    tile: int,
    paths: dict,
    stream: bool = False,
    pieces: dict | None = None,
) -> dict:
    """One TF.js wasm run through the shipped worker (bench/tfjs/run.mjs `fullres`) in a
    fresh browser context, holding the content's maps or `stream`ed, in one call or in
    `pieces` (the worker's field: web/src/pieces.js workerPieces); the first size's output
    kept."""
    work = paths["work"]
    inputs_dir, outputs = work / "inputs", work / "tfjs-outputs"
    inputs_dir.mkdir(parents=True, exist_ok=True)
    outputs.mkdir(parents=True, exist_ok=True)
    images = {
        "content": (f"content-{label(shape)}", shape),
        "style": ("style", (plan.style_side,) * 2),
    }
    inputs = {}
    for name, (stem, size) in images.items():
        file = inputs_dir / f"{stem}.rgba"
        image = content_image(*size) if name == "content" else style_image(*size)
        inputs[name] = collect.write_rgba(file, image)
    config = {"size": label(shape), "iterations": 1, "repeats": 0, "warmup": 0, "tile": tile}
    config |= {"stream": stream, "pieces": pieces}
    request = {
        "chromium": paths["chromium"],
        "repo": str(collect.REPO),
        "modelDir": str(paths["build"] / "model"),
        "inputsDir": str(inputs_dir),
        "outputsDir": str(outputs),
        "inputs": {label(shape): inputs},
        "backends": [],
        "fullres": {"configs": [config | {"keep": shape == plan.sizes[0]}]},
        "timeoutS": plan.timeout_s,
        "quiet": {"threshold": 0.3, "windowS": 2, "maxWaitS": 0, "totalWaitS": 0},
    }
    request_path, response_path = work / "fullres-request.json", work / "fullres-response.json"
    response_path.unlink(missing_ok=True)
    request_path.write_text(json.dumps(request))
    done = subprocess.run(
        ["node", str(collect.TFJS_RUNNER), str(request_path), str(response_path)],
        cwd=collect.REPO,
        check=False,
    )
    response = json.loads(response_path.read_text()) if response_path.exists() else {}
    error = "; ".join(response.get("errors", [])) or (
        f"run.mjs exited with {done.returncode}" if done.returncode else None
    )
    raw = (response.get("fullres") or [{"size": label(shape), "tile": tile, "error": error}])[0]
    return browser_record(raw | {"stream": stream, "pieces": pieces}, {label(shape): shape})


def page_plan(model_dir: Path, shape: tuple[int, int], style_side: int, budget_mb: int) -> dict:
    """The page's own plan (web/src/memory.js fullSizePlan, from the model's metadata.json) for
    a `shape` photo and a square style on `budget_mb`: {tile, neededMb, streamed, piece?}, and
    the worker's `pieces` field (web/src/pieces.js workerPieces; null: one call)."""
    src = collect.REPO / "web" / "src"
    size = ({"height": shape[0], "width": shape[1]}, {"height": style_side, "width": style_side})
    script = (
        f"const m = await import({json.dumps((src / 'memory.js').as_uri())});"
        f"const p = await import({json.dumps((src / 'pieces.js').as_uri())});"
        f"const metadata = {(model_dir / 'metadata.json').read_text()};"
        f"const [content, style] = {json.dumps(size)};"
        "const tiled = m.tiledRule(metadata);"
        "const plan = m.fullSizePlan(m.memoryRule(metadata), tiled, content, style, false, null,"
        f" {budget_mb});"
        "console.log(JSON.stringify({...plan, pieces: p.workerPieces(plan, tiled)}));"
    )
    done = subprocess.run(
        ["node", "--input-type=module", "-e", script], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


def run_page_plan(plan: FullresPlan, paths: dict) -> list[dict]:
    """TF.js at every size on the page's plan for `plan.page_budget_mb` (in pieces where the
    page uses them), its estimate and budget in each record (`page_plan`)."""
    records = []
    for shape in plan.sizes:
        chosen = page_plan(paths["build"] / "model", shape, plan.style_side, plan.page_budget_mb)
        if chosen["tile"] is None:
            refused = f"the page refuses it: {chosen['neededMb']} MB"
            records.append({"runtime": "tfjs", "backend": "wasm", "shape": list(shape),
                            "tile": None, "page_plan": True, "budget_mb": plan.page_budget_mb,
                            "error": refused})  # fmt: skip
            continue
        collect.say(f"full resolution: the page's plan at {label(shape)}: {chosen}")
        gate = quiet.wait_for_quiet(max_wait_s=QUIET_GATE_S) if plan.quiet else None
        record = run_browser(
            plan, shape, chosen["tile"], paths, chosen["streamed"], chosen["pieces"]
        )
        records.append(record | {
            "quiet_gate": gate,
            "page_plan": True,
            "budget_mb": plan.page_budget_mb,
            "estimate_mb": chosen["neededMb"],  # the tab's: the heap's and the page's own part
            "heap_estimate_mb": chosen["heapMb"],
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        })  # fmt: skip
    return records


def with_page_plan(document: dict, records: list[dict]) -> dict:
    """`document` (results-fullres.json) with `records` as its page-plan runs on their budget,
    replacing any earlier ones on that budget (the step re-measured alone after a change to the
    page's plan), each with its s/MP and memory against the first size's."""
    base = next((r for r in records if "error" not in r), None)
    for record in records:
        if base and "error" not in record:
            record["s_per_mp_over_first"] = round(record["s_per_mp"] / base["s_per_mp"], 3)
            record["memory_over_first"] = round(record["memory_mb"] / base["memory_mb"], 3)
    budgets = {r["budget_mb"] for r in records}
    kept = [r for r in document["records"] if r.get("budget_mb") not in budgets or
            not r.get("page_plan")]  # fmt: skip
    return document | {"records": [*kept, *records]}


def browser_record(raw: dict, shapes: dict) -> dict:
    """run.mjs's record in the Python records' terms."""
    shape = shapes[raw["size"]]
    runtime = "tfjs-streamed" if raw.get("stream") else "tfjs"
    record = {"runtime": runtime, "backend": "wasm", "shape": list(shape), "tile": raw.get("tile")}
    if raw.get("pieces"):  # the calls' tiles held or streamed, in pieces of that side
        record |= {"piece": raw["pieces"]["side"]}
    if raw.get("error"):
        return record | {"error": raw["error"], "page_errors": raw.get("page_errors", [])}
    run = raw["run"]
    seconds = raw["first_run_s"]
    return record | {
        "megapixels": round(megapixels(shape), 3),
        "seconds": round(seconds, 3),
        "s_per_mp": round(seconds / megapixels(shape), 3),
        # The wasm heap (the model's weights included): it only grows, so this is its peak.
        "memory_mb": round(raw["wasm_heap_bytes"] / 2**20, 1),
        "process_peak_mb": round(raw["by_process"].get("renderer", 0), 1),
        "page_renderer_peak_mb": round(raw["largest_by_process"].get("renderer", 0), 1),
        "gpu_process_peak_mb": round(raw["by_process"].get("gpu", 0), 1),
        "load_s": raw["load_s"],
        "threads": raw["env"]["wasm_threads"],
        "working_resolution": run["resolution"],
        "output_shape": [run["height"], run["width"]],
        "page_errors": raw["page_errors"],
        "others_cores": raw["others_cores"],
        "quiet_gate": raw["quiet_gate"],
    }


def _kept(record: dict, work: Path) -> np.ndarray | None:
    """The first size's result of a record, as float32 [h, w, 3] in [0, 1], if kept."""
    shape, tile = tuple(record["shape"]), record["tile"]
    if record["runtime"] not in BROWSER:
        path = _kept_path(work, record["runtime"], shape, tile)
        return np.load(path) if path.exists() else None
    streamed = "-streamed" if record["runtime"] == "tfjs-streamed" else ""
    path = work / "tfjs-outputs" / f"fullres-{label(shape)}-{tile}{streamed}.rgb"  # run.mjs's
    if not path.exists():
        return None
    return np.fromfile(path, np.uint8).reshape(*shape, 3).astype(np.float32) / 255.0


def summarise(records: list[dict], plan: FullresPlan, work: Path) -> list[dict]:
    """Marks each record with its s/MP and memory relative to its runtime's tiled run at the
    first size (linear cost and flat memory: about 1.0); returns per runtime the largest
    difference between the first size's tiled and untiled results."""
    first = list(plan.sizes[0])
    agreement = []
    for runtime in dict.fromkeys(r["runtime"] for r in records):
        mine = [r for r in records if r["runtime"] == runtime and "error" not in r]
        base = next((r for r in mine if r["tile"] and r["shape"] == first), None)
        untiled = next((r for r in mine if not r["tile"] and r["shape"] == first), None)
        for record in mine if base else ():
            record["s_per_mp_over_first"] = round(record["s_per_mp"] / base["s_per_mp"], 3)
            record["memory_over_first"] = round(record["memory_mb"] / base["memory_mb"], 3)
        outputs = [_kept(r, work) for r in (base, untiled) if r]
        if len(outputs) == 2 and all(o is not None for o in outputs):
            difference = float(np.abs(outputs[0] - outputs[1]).max())
            agreement.append(
                {"runtime": runtime, "shape": first, "tiled_vs_untiled_max_abs": difference}
            )
    return agreement


def run(
    plan: FullresPlan,
    build: Path,
    weights: Path,
    chromium: str | None,
    work: Path,
    save: Callable[[dict], None] | None = None,
) -> dict:
    """The whole part, in `steps` order, every runtime of the plan (TF.js when `chromium`);
    `save` hears the document so far after each run."""
    started = time.perf_counter()
    paths = {"build": build, "weights": weights, "chromium": chromium, "work": work}
    runtimes = list(plan.python) + (list(BROWSER) if plan.browser and chromium else [])
    load, records = {"start": os.getloadavg()}, []
    document: dict = {}
    for shape, tile in steps(plan):
        for runtime in runtimes:
            collect.say(f"full resolution: {runtime} {label(shape)}, tile {tile or 'none'}")
            gate = {"waited_s": 0, "quiet": None}
            if plan.quiet:  # runs take minutes: a short gate, then the meter says how busy
                gate = quiet.wait_for_quiet(max_wait_s=QUIET_GATE_S)
            if runtime in BROWSER:
                record = run_browser(plan, shape, tile, paths, runtime == "tfjs-streamed")
            else:
                record = run_python(plan, runtime, shape, tile, paths)
            records.append(record | {"quiet_gate": gate})
            load[runtime] = os.getloadavg()
            document = {
                "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                "plan": plan.description(),
                "tile": plan.tile,
                "style_side": plan.style_side,
                "agreement": summarise(records, plan, work),
                "records": records,
                "load_average": {k: [round(x, 2) for x in v] for k, v in load.items()},
                "duration_s": round(time.perf_counter() - started, 1),
            }
            if save:
                save(document)
    if "tfjs" in runtimes and plan.page_budget_mb:
        collect.say(f"full resolution: tfjs on the page's plan for {plan.page_budget_mb} MB")
        document = with_page_plan(document, run_page_plan(plan, paths)) | {
            "duration_s": round(time.perf_counter() - started, 1)
        }
        if save:
            save(document)
    return document


def main(argv: list[str]) -> int:
    runtime, request_path, response_path = argv
    request = json.loads(Path(request_path).read_text())
    if request.get("weights"):
        worker.WEIGHTS["dir"] = Path(request["weights"])
    response: dict = {"runtime": runtime}
    try:
        response["record"] = measure(runtime, request)
    except Exception as error:  # recorded, not hidden: the driver writes it into the results
        worker.record_error(response, error)
    Path(response_path).write_text(json.dumps(response))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
