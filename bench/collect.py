"""Run every part of the benchmark and gather raw measurements (no formatting here)."""

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.frames import clip_frames, rerun_styles
from bench.images import content_image, content_size, pair, style_image, style_size
from bench.plan import Clip, Config, Plan
from convert import contract

REPO = Path(__file__).resolve().parent.parent
TFJS_RUNNER = Path(__file__).with_name("tfjs") / "run.mjs"


def say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def run_python_runtime(
    runtime: str,
    configs: list[Config],
    build: Path,
    weights: Path | None,
    outputs: Path,
    extra_path: str | None = None,
    quiet: bool = True,
) -> dict:
    """One runtime in its own process (bench/worker.py); returns its response."""
    request = {
        "build": str(build),
        "weights": str(weights) if weights else None,
        "outputs": str(outputs),
        "configs": [c.as_dict() for c in configs],
        "quiet": quiet,
    }
    return run_python_part("bench.worker", runtime, request, extra_path)


def run_clip(runtime: str, clip: Clip, build: Path, weights: Path | None, quiet: bool) -> dict:
    """A clip's frames and a re-run for one runtime in its own process (bench/frames.py)."""
    request = {"build": str(build), "weights": str(weights) if weights else None, "quiet": quiet}
    return run_python_part("bench.frames", runtime, request | clip.as_dict())


def run_python_part(
    module: str, runtime: str, request: dict, extra_path: str | None = None
) -> dict:
    """`python -m MODULE RUNTIME REQUEST RESPONSE` (bench/worker.py, bench/frames.py): its
    response, with the process's exit recorded as an error when it wrote none."""
    with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
        request_path = Path(scratch) / "request.json"
        response = Path(scratch) / "response.json"
        request_path.write_text(json.dumps(request))
        env = dict(os.environ)
        if extra_path:
            env["PYTHONPATH"] = os.pathsep.join(p for p in (extra_path, env.get("PYTHONPATH")) if p)
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", module, runtime, str(request_path), str(response)],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        result = json.loads(response.read_text()) if response.exists() else {"runtime": runtime}
        if done.returncode != 0 and "error" not in result:
            tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
            result["error"] = f"worker exited with {done.returncode}: {tail}"
        result["wall_s"] = round(time.perf_counter() - started, 1)
        return result


def run_quantization_study(weights: Path, work: Path) -> dict:
    """bench/quantization.py in its own process; its error is recorded, not raised."""
    out = work / "quantization.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.quantization", str(weights), str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0 or not out.exists():
        return {"error": (done.stderr.strip().splitlines() or ["no output"])[-1]}
    return json.loads(out.read_text())


def rgba_bytes(image: np.ndarray) -> bytes:
    """float32 [H, W, 3] in [0, 1] as the page's pixels: RGBA bytes, opaque."""
    rgb = np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)
    alpha = np.full((*rgb.shape[:2], 1), 255, np.uint8)
    return np.concatenate([rgb, alpha], axis=-1).tobytes()


def write_rgba(file: Path, image: np.ndarray) -> dict:
    """`image` into `file` as the page's RGBA bytes; how run.mjs finds it."""
    file.write_bytes(rgba_bytes(image))
    height, width = image.shape[:2]
    return {"file": str(file), "width": width, "height": height}


def write_inputs(sizes: list[int], folder: Path) -> dict:
    """The same images as the Python runtimes, as the RGBA bytes the page hands the worker."""
    folder.mkdir(parents=True, exist_ok=True)
    inputs = {}
    for side in sizes:
        inputs[str(side)] = {
            name: write_rgba(folder / f"{name}-{side}.rgba", image)
            for name, image in zip(("content", "style"), pair(side), strict=True)
        }
    return inputs


def write_clip_inputs(clip: Clip, folder: Path) -> dict:
    """The clip's frames at each of its sizes and the re-run's styles (bench/frames.py), as
    the page's RGBA bytes: {size: {"frames": [...], "styles": [...]}}."""
    folder.mkdir(parents=True, exist_ok=True)
    inputs = {}
    for side in clip.sizes:
        images = {"frames": clip_frames(side, clip.frames), "styles": []}
        if side == clip.rerun_size:
            images["styles"] = rerun_styles(side, clip.reruns)
        inputs[str(side)] = {
            name: [write_rgba(folder / f"{name}-{side}-{i}.rgba", a) for i, a in enumerate(list_)]
            for name, list_ in images.items()
        }
    return inputs


def write_photos(config: Config, folder: Path) -> dict:
    """JPEG files as a user would pick them: a 4000x3000 photo, the same scene at the working
    size (4:3, longest side `config.size`) and a square style; {name: path}."""
    from PIL import Image

    images = {
        "photo-4000x3000": content_image(3000, 4000),
        f"image-{'x'.join(map(str, content_size(config.size)[::-1]))}": content_image(
            *content_size(config.size)
        ),
        "style": style_image(*style_size(config.size)),
    }
    files = {}
    for name, image in images.items():
        files[name] = folder / f"{name}.jpg"
        pixels = np.round(image * 255.0).astype(np.uint8)
        Image.fromarray(pixels).save(files[name], quality=92)
    return {name: str(path) for name, path in files.items()}


def run_tfjs(
    plan: Plan,
    model_dir: Path,
    chromium: str,
    work: Path,
    variants: dict,
    onnx_dir: Path | None = None,
) -> dict:
    """The browser part: the shipped worker on every backend of the plan, ONNX Runtime Web on
    the graphs in `onnx_dir`, the worker without isolation, on the variants and on photos; then
    the profile and the matmul checks."""
    ort_web = plan.ort_web if onnx_dir else []
    clip = plan.clip if plan.clip and plan.clip.browser else None
    sizes = sorted(
        {c.size for configs in plan.tfjs.values() for c in configs}
        | set(clip.sizes if clip else ())
        | {c.size for c in ort_web}
        | {c["config"].size for c in plan.plain_check}
        | ({plan.variants.size} if plan.variants else set())
        | ({plan.profile.size} if plan.profile else set())
    )
    outputs = work / "tfjs-outputs"
    outputs.mkdir(parents=True, exist_ok=True)
    backends = []
    for name, configs in plan.tfjs.items():
        spec: dict = {"name": name, "configs": [c.as_dict() for c in configs]}
        if name == "wasm":
            for config in spec["configs"]:
                config["keep"] = config["iterations"] == 1  # outputs, to check agreement
        if name == "webgl":
            # Chromium only falls back to SwiftShader (software WebGL) when asked.
            spec["args"] = ["--enable-unsafe-swiftshader"]
        backends.append(spec)
    request = {
        "chromium": chromium,
        "repo": str(REPO),
        "modelDir": str(model_dir),
        "inputsDir": str(work / "inputs"),
        "outputsDir": str(outputs),
        "inputs": write_inputs(sizes, work / "inputs"),
        "backends": backends,
        "plainCheck": [{"label": c["label"], **c["config"].as_dict()} for c in plan.plain_check],
        "matmulCheck": plan.matmul_checks,
        "quiet": {
            "threshold": 0.3,
            "windowS": 2,
            "maxWaitS": 45,
            "totalWaitS": 300 if plan.quiet else 0,
        },
        "variants": None,
        "profile": None,
    }
    if ort_web:
        request["ortWeb"] = {
            "onnxDir": str(onnx_dir),
            "configs": [c.as_dict() | {"keep": True} for c in ort_web],
        }
    if clip:
        request["clip"] = {
            "inputs": write_clip_inputs(clip, work / "inputs"),
            "configs": [
                {
                    "size": size,
                    "iterations": clip.iterations,
                    "singles": clip.singles,
                    # The re-run in the same context, after the clip, at one size.
                    "rerunStrength": clip.rerun_strength if size == clip.rerun_size else None,
                }
                for size in clip.sizes
            ],
        }
    if plan.variants:
        request["variants"] = {
            "backend": "wasm",
            "size": plan.variants.size,
            "iterations": plan.variants.iterations,
            "models": variants,
        }
    if plan.photos:
        request["photos"] = {
            "files": write_photos(plan.photos, work / "inputs"),
            "style": "style",
            "maxResolution": plan.photos.size,
            "iterations": plan.photos.iterations,
            "repeats": plan.photos.repeats,
        }
    if plan.profile:
        request["profile"] = {
            "size": plan.profile.size,
            "iterations": plan.profile.iterations,
            # The profile feeds the graph itself: the creative controls off, as the worker does.
            "controls": {
                name: {
                    "values": value.ravel().tolist(),
                    "shape": value.shape,
                    "dtype": value.dtype.name,
                }
                for name, value in contract.CONTROLS_OFF.items()
            },
        }
    request_path, response_path = work / "tfjs-request.json", work / "tfjs-response.json"
    request_path.write_text(json.dumps(request))
    started = time.perf_counter()
    done = subprocess.run(
        ["node", str(TFJS_RUNNER), str(request_path), str(response_path)],
        cwd=REPO,
        text=True,
        check=False,
    )
    response = json.loads(response_path.read_text()) if response_path.exists() else {}
    if done.returncode != 0:
        response.setdefault("errors", []).append(f"run.mjs exited with {done.returncode}")
    response["wall_s"] = round(time.perf_counter() - started, 1)
    return response


def read_output(path: Path, size: int) -> np.ndarray:
    """An output the worker returned (RGB bytes) as float32 [H, W, 3] in [0, 1]."""
    rgb = np.fromfile(path, np.uint8).reshape(*content_size(size), 3)
    return rgb.astype(np.float32) / 255.0


def read_ort_web_output(path: Path, size: int) -> np.ndarray:
    """ONNX Runtime Web's output (float32 [H, W, 3] in [0, 1], as bench/ort/worker.js keeps it)."""
    return np.fromfile(path, np.float32).reshape(*content_size(size), 3)
