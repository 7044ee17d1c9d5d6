"""Test inputs and the reference output for the web page's tests.

python web/tests/reference.py inputs OUT_DIR
    writes the PNG inputs the browser tests upload (lossless, no colour profile, so the
    browser and PIL read identical pixels) and two files that are not images.
python web/tests/reference.py info IMAGE
    prints an image file's format, size, mode and share of fully transparent pixels (JSON).
python web/tests/reference.py serve
    compares the page's downloads with a reference, as a service: a JSON request a line on
    stdin, a JSON line on stdout for each, in order (the error in 8-bit levels, or {"error"}).
    A request: {"mode", "model", "case"}. Mode "compare" runs the TF SavedModel at "model" (its
    serving_default signature), "compare-tfjs" the TF.js graph model there in Node on the wasm
    backend (convert.runtimes.run_tfjs_inputs: for a quantized variant, which no SavedModel
    represents). Each SavedModel is loaded once: importing TensorFlow and loading the model take
    most of one comparison's time, and a test file makes many.
    "case": {"content", "style", "result" (paths; "result" the page's PNG), "iterations",
    "strength", "max_resolution"} and, for the creative controls (else off,
    convert.contract.CONTROLS_OFF), any of "style_resolution", "style2" and "mask" (image paths;
    a mask counts by its BT.601 luminance, sanet.controls.mask_from_rgb), "mix", "keep_colors".
"""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _pattern(width: int, height: int, seed: int) -> np.ndarray:
    """A smooth, structured RGB image (gradients, rings and a stripe) as uint8."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    y /= height
    x /= width
    f = rng.uniform(2, 6, 3)
    rings = np.sin(2 * np.pi * f[0] * np.hypot(x - 0.4, y - 0.6))
    waves = np.cos(2 * np.pi * (f[1] * x + f[2] * y * y))
    rgb = np.stack([0.5 + 0.4 * rings, 0.5 + 0.4 * waves, 0.2 + 0.6 * x * (1 - y)], -1)
    rgb[(x > 0.7) & (x < 0.75)] = rng.uniform(0, 1, 3)
    return np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8)


def write_inputs(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, (width, height, seed) in {
        "content.png": (173, 131, 1),  # odd, non-square: the result must keep this size
        "style-a.png": (120, 90, 2),
        "style-b.png": (97, 111, 3),
    }.items():
        Image.fromarray(_pattern(width, height, seed)).save(out / name)
    # A second style unlike the first: dark and blue, so that its mix changes the output.
    dark = _pattern(97, 111, 3).astype(np.float64) * np.array([0.25, 0.3, 1.0])
    Image.fromarray(np.round(dark).astype(np.uint8)).save(out / "style-dark.png")
    # Larger than the page's 2048 px intake limit: it must be scaled down before any tensor.
    big = np.zeros((2000, 3000, 3), np.uint8)
    big[:, :, 0] = np.linspace(0, 255, 3000, dtype=np.uint8)[None, :]
    big[:, :, 1] = np.linspace(255, 0, 2000, dtype=np.uint8)[:, None]
    big[::100] = 255
    Image.fromarray(big).save(out / "large.png", optimize=True)
    # 144 megapixels (1 bit each, so the file is tiny): refused before it is decoded.
    Image.new("1", (12000, 12000), 1).save(out / "huge.png", optimize=True)
    # Smaller than the model's minimum side (17 px), and shapes a 4:3 frame would crop.
    for name, (width, height, seed) in {
        "tiny-1x1.png": (1, 1, 4),
        "thin-8x400.png": (8, 400, 5),
        "square.png": (600, 600, 6),
        "sliver-20x5000.png": (20, 5000, 7),
    }.items():
        Image.fromarray(_pattern(width, height, seed)).save(out / name)
    # Transparent on its left half: the download keeps that transparency.
    rgba = np.dstack([_pattern(120, 90, 8), np.full((90, 120), 255, np.uint8)])
    rgba[:, :60, 3] = 0
    Image.fromarray(rgba, "RGBA").save(out / "alpha.png")
    # Region masks (white: stylize): a soft ellipse at the content's size, and a hard-edged
    # square of another size and shape (the signature resamples any mask).
    y, x = np.mgrid[0:131, 0:173] / np.array([131.0, 173.0])[:, None, None]
    ellipse = np.clip(3.0 - 8.0 * np.hypot(x - 0.6, (y - 0.45) * 1.3), 0.0, 1.0)
    Image.fromarray(np.round(ellipse * 255).astype(np.uint8), "L").save(out / "mask.png")
    square = np.zeros((40, 64), np.uint8)
    square[:, 32:] = 255
    Image.fromarray(square, "L").save(out / "mask-small.png")
    (out / "empty.png").write_bytes(b"")
    (out / "drawing.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="40" height="30">'
        '<rect width="40" height="30" fill="teal"/></svg>\n'
    )
    (out / "notes.txt").write_text("These are notes, not an image.\n")
    (out / "broken.png").write_bytes(b"not really a PNG file\n" * 10)


def _pixels(path: str) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), np.float32) / np.float32(255)


def _inputs(case: dict) -> dict[str, np.ndarray]:
    """The signature's inputs for a page run; controls the case does not set are off."""
    from convert.contract import CONTROLS_OFF
    from sanet.controls import mask_from_rgb

    controls = {
        "style_resolution": lambda v: np.array(v, np.int32),
        "style2": _pixels,
        "mix": lambda v: np.array(v, np.float32),
        "mask": lambda path: mask_from_rgb(_pixels(path)).astype(np.float32),
        "keep_colors": lambda v: np.array(v, np.float32),
    }
    return {
        "content": _pixels(case["content"]),
        "style": _pixels(case["style"]),
        "iterations": np.array(case["iterations"], np.int32),
        "max_resolution": np.array(case["max_resolution"], np.int32),
        "strength": np.array(case["strength"], np.float32),
        **CONTROLS_OFF,
        **{name: read(case[name]) for name, read in controls.items() if case.get(name) is not None},
    }


@functools.cache
def _serving_signature(saved_model: Path):
    import tensorflow as tf

    from convert.contract import SIGNATURE_KEY

    return tf.saved_model.load(str(saved_model)).signatures[SIGNATURE_KEY]


def saved_model_result(saved_model: Path, case: dict) -> np.ndarray:
    import tensorflow as tf

    serve = _serving_signature(saved_model)
    return serve(**{k: tf.constant(v) for k, v in _inputs(case).items()})["result"].numpy()


def tfjs_result(model: Path, case: dict) -> np.ndarray:
    from convert.runtimes import run_tfjs_inputs

    results, _ = run_tfjs_inputs(model, [_inputs(case)], "wasm")
    return results[0]


def compare(result: np.ndarray, page_png: str) -> dict:
    """The page's PNG against a reference result in [0, 1], in 8-bit levels."""
    reference = result * 255.0
    page = np.asarray(Image.open(page_png).convert("RGB"), np.float64)
    report = {
        "reference_size": [reference.shape[1], reference.shape[0]],
        "page_size": [page.shape[1], page.shape[0]],
    }
    if reference.shape == page.shape:
        diff = np.abs(page - reference)
        report |= {"max_abs": float(diff.max()), "mean_abs": float(diff.mean())}
    return report


def image_info(path: str) -> dict:
    """An image file's format, size, and the share of fully transparent pixels."""
    image = Image.open(path)
    alpha = np.asarray(image.convert("RGBA"))[:, :, 3]
    return {
        "format": image.format,
        "size": [image.width, image.height],
        "mode": image.mode,
        "transparent": float((alpha == 0).mean()),
    }


RUNNERS = {"compare": saved_model_result, "compare-tfjs": tfjs_result}


def serve() -> None:
    """Answers comparison requests from stdin until it closes (the `serve` mode)."""
    for line in sys.stdin:
        try:
            request = json.loads(line)
            case = request["case"]
            result = RUNNERS[request["mode"]](Path(request["model"]), case)
            reply = compare(result, case["result"])
        except Exception as error:  # the test that asked reports it; the service goes on
            reply = {"error": f"{type(error).__name__}: {error}"}
        print(json.dumps(reply), flush=True)


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "inputs":
        write_inputs(Path(argv[1]))
        return 0
    if len(argv) == 2 and argv[0] == "info":
        print(json.dumps(image_info(argv[1])))
        return 0
    if argv == ["serve"]:
        serve()
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
