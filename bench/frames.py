"""A clip's frames with the style encoded once, and a re-run with only the strength changed,
each against full single-image calls of the same size (issues 14 and 15), for one Python
runtime in its own process, as bench/worker.py measures the single images.

    python -m bench.frames RUNTIME REQUEST.json RESPONSE.json

REQUEST: {"build", "weights", "quiet", and bench.plan.Clip.as_dict()}. RESPONSE: {"runtime",
"info", "records": [a clip per size], "rerun": a record or null, "error"?}.

PyTorch encodes a clip's style once in `sanet.frames.FrameStylizer`; the TF SavedModel is fed
back the `style_relu4_1`/`style_relu5_1` outputs of the clip's first call, and for a re-run
the content's and the style's. Every record keeps the largest difference between a frame as
the clip gave it and a single-image call on that frame: the saved encodings must not change
the result.
"""

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from bench import quiet, worker
from bench.images import content_image, content_size, style_image, style_size
from convert.contract import ENCODINGS

CONTENT = tuple(name for name in ENCODINGS if name.startswith("content_"))
STYLE = tuple(name for name in ENCODINGS if name.startswith("style_"))
RERUN_SEED = 3  # the re-run's styles; the clip's is `pair`'s (style_image's default seed)
Single = Callable[[np.ndarray, np.ndarray, int, int], np.ndarray]
# (style, frame shape, size, iterations) -> a function from one frame to its result
StartClip = Callable[[np.ndarray, tuple[int, int], int, int], Callable[[np.ndarray], np.ndarray]]
# (content, style, size, iterations) -> (the full run's result, a re-run at a given strength)
Rerun = Callable[
    [np.ndarray, np.ndarray, int, int], tuple[np.ndarray, Callable[[float], np.ndarray]]
]


def panning(image: Callable[[int, int], np.ndarray], size: tuple[int, int], count: int) -> list:
    """`count` frames of `size` (height, width) panning right over a wider `image(h, w)`, by
    1/64 of the width a frame: every frame differs, as a clip's do."""
    height, width = size
    step = max(1, width // 64)
    wide = image(height, width + step * (count - 1))
    return [np.ascontiguousarray(wide[:, i * step : i * step + width]) for i in range(count)]


def clip_frames(side: int, count: int) -> list[np.ndarray]:
    """The content's frames at longest side `side`; the clip's style is `pair(side)`'s."""
    return panning(content_image, content_size(side), count)


def rerun_styles(side: int, count: int) -> list[np.ndarray]:
    """A different style per re-run round (none of them the clip's: another seed), so that a
    round's full run encodes its style even where the last run's encodings are kept (the
    page's worker)."""
    return panning(partial(style_image, seed=RERUN_SEED), style_size(side), count)


@dataclass(frozen=True)
class Runtime:
    single: Single
    clip: StartClip
    rerun: Rerun | None
    info: dict


def load_pytorch(build: Path) -> Runtime:
    import torch

    from sanet.frames import FrameStylizer

    stylizer = worker.pytorch_stylizer(build)

    def single(content, style, size, iterations):
        return stylizer.stylize(content, style, iterations=iterations, max_resolution=size)

    def clip(style, shape, size, iterations):
        return FrameStylizer(stylizer, style, shape, iterations=iterations, max_resolution=size)

    # SANet.forward takes the style's features, not the content's: no re-run to measure.
    return Runtime(single, clip, None, {"threads": torch.get_num_threads()})


def signature_runtime(signature: worker.Signature, info: dict | None = None) -> Runtime:
    """A clip and a re-run through the serving signature, feeding back its encodings."""

    def single(content, style, size, iterations):
        return np.asarray(signature(content, style, iterations, size)["result"])

    def clip(style, shape, size, iterations):
        kept: dict = {}

        def frame(content):
            outputs = signature(content, style, iterations, size, encodings=kept)
            if not kept:  # the first frame's call encoded the style: the others re-use it
                kept.update({name: outputs[name] for name in STYLE})
            return np.asarray(outputs["result"])

        return frame

    def rerun(content, style, size, iterations):
        outputs = signature(content, style, iterations, size)
        kept = {name: outputs[name] for name in CONTENT + STYLE}

        def again(strength):
            result = signature(content, style, iterations, size, strength, encodings=kept)
            return np.asarray(result["result"])

        return np.asarray(outputs["result"]), again

    return Runtime(single, clip, rerun, info or {})


def load_tensorflow(build: Path) -> Runtime:
    return signature_runtime(worker.load_signature(build))


LOADERS = {"pytorch": load_pytorch, "tensorflow": load_tensorflow}


def _timed(function: Callable, *args):
    began = time.perf_counter()
    result = function(*args)
    return result, round(time.perf_counter() - began, 4)


def _difference(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(np.asarray(a, np.float32) - np.asarray(b, np.float32)).max())


def measure_clip(runtime: Runtime, size: int, frames: int, singles: int, iterations: int) -> dict:
    """One warm-up call, `singles` timed single-image calls on frames 2.., then the clip:
    its first frame (the style's encoding with it) apart, frames 2..N timed."""
    if not 0 < singles < frames:
        raise ValueError(f"need 0 < singles < frames, got {singles} and {frames}")
    images = clip_frames(size, frames)
    style = style_image(*style_size(size))
    others = quiet.meter()
    runtime.single(images[0], style, size, iterations)  # warm-up
    single_results, single_s = {}, []
    for k in range(1, singles + 1):
        single_results[k], seconds = _timed(runtime.single, images[k], style, size, iterations)
        single_s.append(seconds)
    began = time.perf_counter()
    stylize = runtime.clip(style, images[0].shape[:2], size, iterations)
    stylize(images[0])
    first_s = round(time.perf_counter() - began, 4)
    frame_s, difference = [], 0.0
    for k in range(1, frames):
        result, seconds = _timed(stylize, images[k])
        frame_s.append(seconds)
        if k in single_results:
            difference = max(difference, _difference(result, single_results[k]))
    return {
        "size": size,
        "iterations": iterations,
        "frames": frames,
        "content_shape": list(images[0].shape[:2]),
        "style_shape": list(style.shape[:2]),
        "single_s": single_s,
        "first_frame_s": first_s,
        "frame_s": frame_s,
        "max_difference": difference,
        "others_cores": others()["others_cores"],
    }


def measure_rerun(runtime: Runtime, size: int, rounds: int, strength: float, iterations: int):
    """`rounds` of a full run then the same images at `strength`, encodings re-used."""
    contents, styles = clip_frames(size, rounds), rerun_styles(size, rounds)
    others = quiet.meter()
    runtime.rerun(contents[0], styles[0], size, iterations)  # warm-up
    full_s, rerun_s = [], []
    for content, style in zip(contents, styles, strict=True):
        (_, again), seconds = _timed(runtime.rerun, content, style, size, iterations)
        full_s.append(seconds)
        rerun_s.append(_timed(again, strength)[1])
    return {
        "size": size,
        "iterations": iterations,
        "strength": strength,
        "full_s": full_s,
        "rerun_s": rerun_s,
        "others_cores": others()["others_cores"],
    }


def main(argv: list[str]) -> int:
    runtime_name, request_path, response_path = argv
    request = json.loads(Path(request_path).read_text())
    if request.get("weights"):
        worker.WEIGHTS["dir"] = Path(request["weights"])
    if not request.get("quiet", True):
        worker.QUIET_BUDGET["seconds"] = 0.0
    response: dict = {"runtime": runtime_name, "records": [], "rerun": None}
    try:
        runtime = LOADERS[runtime_name](Path(request["build"]))
        response["info"] = runtime.info
        for size in request["sizes"]:
            gate = worker.wait_for_quiet()
            record = measure_clip(
                runtime, size, request["frames"], request["singles"], request["iterations"]
            )
            response["records"].append(record | {"quiet_gate": gate})
            Path(response_path).write_text(json.dumps(response))  # partial results survive
        rerun = request["rerun"]
        if runtime.rerun and rerun:
            gate = worker.wait_for_quiet()
            record = measure_rerun(
                runtime, rerun["size"], rerun["rounds"], rerun["strength"], request["iterations"]
            )
            response["rerun"] = record | {"quiet_gate": gate}
    except Exception as error:  # recorded, not hidden: the driver writes it into results.json
        worker.record_error(response, error)
    Path(response_path).write_text(json.dumps(response))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
