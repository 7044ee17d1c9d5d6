"""Run each converted artifact on the same inputs: ONNX Runtime, TensorFlow, TF.js in Node.

Each artifact is loaded once and then called on many inputs; the TF.js runs go to Node
processes that run side by side and report each finished run.
"""

import json
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from convert.contract import CONTROLS_OFF, ENCODINGS, SIGNATURE_KEY
from convert.parity import Case
from convert.pieces import stylize_in_pieces
from sanet.errors import SANetError

NODE_RUNNER = Path(__file__).with_name("run_tfjs.mjs")
Arrays = dict[str, np.ndarray]
Runner = Callable[[Arrays], Arrays]


def onnx_runner(path: Path) -> Runner:
    """An ONNX Runtime session on `path`, as a function of named float32 arrays."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    wanted = {i.name for i in session.get_inputs()}

    def run(inputs: Arrays) -> Arrays:
        feeds = {k: v.astype(np.float32) for k, v in inputs.items() if k in wanted}
        return dict(zip(names, session.run(names, feeds), strict=True))

    return run


def tf_graph_runner(path: Path) -> Runner:
    """A frozen TF graph written by `convert.tf_graphs`, as a function of named arrays."""
    import tensorflow as tf

    from convert.tf_graphs import load_graph

    function = load_graph(path)
    wanted = {spec.name.split(":")[0] for spec in function.inputs}

    def run(inputs: Arrays) -> Arrays:
        feeds = {k: tf.constant(v, tf.float32) for k, v in inputs.items() if k in wanted}
        return {k: v.numpy() for k, v in function(**feeds).items()}

    return run


def module_inputs(case: Case, encodings: Arrays | None = None) -> Arrays:
    """The serving signature's inputs for `case`; a `reuse` case takes its `encodings`
    (`Reference.encodings`) with a decoy style image."""
    content, style = case.images()
    style2, mask = case.extras()
    if case.reuse:
        assert encodings, "a reuse case needs its encodings"
        style = case.decoy()
    return {
        "content": content,
        "style": style,
        "iterations": np.array(case.iterations, np.int32),
        "max_resolution": np.array(case.max_resolution, np.int32),
        "strength": np.array(case.strength, np.float32),
        "style_resolution": np.array(case.style_resolution, np.int32),
        "style2": style2,
        "mix": np.array(case.mix, np.float32),
        "mask": mask,
        "keep_colors": np.array(case.keep_colors, np.float32),
        "tile": np.array(case.tile, np.int32),
        "stream": np.array(int(case.stream), np.int32),
        "measure": CONTROLS_OFF["measure"],
        "content_moments": CONTROLS_OFF["content_moments"],
        **{name: CONTROLS_OFF[name] for name in ENCODINGS},
        **(encodings or {}),
    }


class TfModule:
    """The composed SavedModel's serving signature."""

    def __init__(self, path: Path) -> None:
        import tensorflow as tf

        self._tf = tf
        self.signature = tf.saved_model.load(str(path)).signatures[SIGNATURE_KEY]

    def __call__(
        self, case: Case, encodings: Arrays | None = None, tiling: dict | None = None
    ) -> np.ndarray:
        """The result of `case`; a `pieces` case takes the model's `tiling` rule."""
        inputs = module_inputs(case, encodings)
        if case.pieces:
            assert tiling, "a case in pieces needs the model's tiling rule"
            return stylize_in_pieces(self.calls, inputs, case.pieces, tiling)
        return self.calls([inputs], "result")[0]

    def calls(self, feeds: list[Arrays], output: str) -> list[np.ndarray]:
        """The signature's `output` for each feed, one call after the other."""
        return [
            self.signature(**{k: self._tf.constant(v) for k, v in feed.items()})[output].numpy()
            for feed in feeds
        ]


def node_available() -> bool:
    return (
        shutil.which("node") is not None and (NODE_RUNNER.parent.parent / "node_modules").is_dir()
    )


@dataclass(frozen=True)
class TfjsJob:
    """Serving inputs (`module_inputs`' names) to run through one TF.js model on one backend."""

    model: Path
    backend: str
    feeds: tuple[Arrays, ...]
    output: str = "result"  # the signature output each run returns (others: flattened)


def run_tfjs_jobs(
    jobs: list[TfjsJob], on_run: Callable[[], None] = lambda: None
) -> list[tuple[list[np.ndarray], dict]]:
    """Run each job in its own Node process (`@tensorflow/tfjs-*` from node_modules), all at
    once; `on_run()` hears every finished run. Returns, per job, one result per feed (shaped
    like its content) and the runner's timings."""
    if not node_available():
        raise SANetError("TF.js checks need Node and the npm packages: run `make install`")
    with tempfile.TemporaryDirectory(prefix="sanet-tfjs-") as scratch:
        requests = [_write_request(job, Path(scratch) / str(i)) for i, job in enumerate(jobs)]
        processes = []
        for request in requests:  # stderr to a file: a full pipe would stall the process
            with open(request.with_name("stderr.txt"), "w") as errors:
                processes.append(
                    subprocess.Popen(
                        ["node", str(NODE_RUNNER), str(request)],
                        stdout=subprocess.PIPE,
                        stderr=errors,
                        text=True,
                    )
                )
        lock = threading.Lock()
        outputs: list[list[str]] = [[] for _ in processes]

        def follow(process: subprocess.Popen, lines: list[str]) -> None:
            for line in process.stdout:
                lines.append(line)
                if line.startswith("done "):
                    with lock:
                        on_run()

        threads = [
            threading.Thread(target=follow, args=(p, lines))
            for p, lines in zip(processes, outputs, strict=True)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        results = []
        for job, process, lines, request in zip(jobs, processes, outputs, requests, strict=True):
            if process.wait() != 0:
                errors = request.with_name("stderr.txt").read_text().strip().splitlines()
                # Node ends an uncaught error's report with its own version: name the error.
                named = [line for line in errors if "Error" in line] or errors or ["no output"]
                raise SANetError(f"TF.js ({job.backend}) failed on {job.model}: {named[0]}")
            runs = json.loads(request.read_text())["runs"]
            values = [np.fromfile(run["output"], np.float32) for run in runs]
            if job.output == "result":
                shapes = [feed["content"].shape for feed in job.feeds]
                values = [v.reshape(shape) for v, shape in zip(values, shapes, strict=True)]
            results.append((values, json.loads(lines[-1])))
    return results


def _write_request(job: TfjsJob, folder: Path) -> Path:
    folder.mkdir()
    runs = []
    for index, values in enumerate(job.feeds):
        inputs = {}
        for name, value in values.items():
            file = folder / f"{index}-{name}.bin"
            value.tofile(file)
            dtype = "int32" if value.dtype == np.int32 else "float32"
            inputs[name] = {"dtype": dtype, "shape": list(value.shape), "file": str(file)}
        runs.append({"inputs": inputs, "output": str(folder / f"{index}-result.bin")})
    request = folder / "request.json"
    request.write_text(
        json.dumps(
            {"model": str(job.model), "backend": job.backend, "output": job.output, "runs": runs}
        )
    )
    return request


def run_tfjs_inputs(
    model: Path, feeds: list[Arrays], backend: str
) -> tuple[list[np.ndarray], dict]:
    """Run the TF.js graph model in Node on each set of serving inputs; returns one result
    per set and the runner's timings."""
    [result] = run_tfjs_jobs([TfjsJob(model, backend, tuple(feeds))])
    return result


def tfjs_calls(model: Path, backend: str) -> Callable[[list[Arrays], str], list[np.ndarray]]:
    """`convert.pieces.Calls` through the TF.js graph model in Node: one process a round."""

    def calls(feeds: list[Arrays], output: str) -> list[np.ndarray]:
        [(values, _)] = run_tfjs_jobs([TfjsJob(model, backend, tuple(feeds), output)])
        if output == "content_moments":  # flattened by the runner: [1, 2, 3, C]
            return [value.reshape(1, 2, 3, -1) for value in values]
        return values

    return calls


def run_tfjs(model: Path, cases: list[Case], backend: str) -> tuple[list[np.ndarray], dict]:
    """`run_tfjs_inputs` on the serving inputs of each case."""
    return run_tfjs_inputs(model, [module_inputs(case) for case in cases], backend)
