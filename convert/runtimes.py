"""Run each converted artifact on the same inputs: ONNX Runtime, TensorFlow, TF.js in Node."""

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from convert.parity import Case
from sanet.errors import SANetError

NODE_RUNNER = Path(__file__).with_name("run_tfjs.mjs")


def run_onnx(path: Path, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    wanted = {i.name for i in session.get_inputs()}
    values = session.run(names, {k: v.astype(np.float32) for k, v in inputs.items() if k in wanted})
    return dict(zip(names, values, strict=True))


def run_tf_graph(path: Path, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    import tensorflow as tf

    from convert.tf_graphs import load_graph

    function = load_graph(path)
    wanted = {spec.name.split(":")[0] for spec in function.inputs}
    outputs = function(**{k: tf.constant(v, tf.float32) for k, v in inputs.items() if k in wanted})
    return {k: v.numpy() for k, v in outputs.items()}


def module_inputs(case: Case) -> dict[str, np.ndarray]:
    content, style = case.images()
    return {
        "content": content,
        "style": style,
        "iterations": np.array(case.iterations, np.int32),
        "max_resolution": np.array(case.max_resolution, np.int32),
        "strength": np.array(case.strength, np.float32),
    }


class TfModule:
    """The composed SavedModel's serving signature."""

    def __init__(self, path: Path) -> None:
        import tensorflow as tf

        self._tf = tf
        self.signature = tf.saved_model.load(str(path)).signatures["serving_default"]

    def __call__(self, case: Case) -> np.ndarray:
        inputs = {k: self._tf.constant(v) for k, v in module_inputs(case).items()}
        return self.signature(**inputs)["result"].numpy()


def node_available() -> bool:
    return (
        shutil.which("node") is not None and (NODE_RUNNER.parent.parent / "node_modules").is_dir()
    )


def run_tfjs(model: Path, cases: list[Case], backend: str) -> tuple[list[np.ndarray], dict]:
    """Run the TF.js graph model in Node on each case; returns the results and the runner's
    timings."""
    return run_tfjs_inputs(model, [module_inputs(case) for case in cases], backend)


def run_tfjs_inputs(
    model: Path, feeds: list[dict[str, np.ndarray]], backend: str
) -> tuple[list[np.ndarray], dict]:
    """Run the TF.js graph model in Node (`@tensorflow/tfjs-*` from the project's node_modules)
    on each set of serving inputs (`module_inputs`' names); returns one result per set, shaped
    like its content, and the runner's timings."""
    if not node_available():
        raise SANetError("TF.js checks need Node and the npm packages: run `make install`")
    with tempfile.TemporaryDirectory(prefix="sanet-tfjs-") as scratch:
        folder = Path(scratch)
        runs = []
        for index, values in enumerate(feeds):
            inputs = {}
            for name, value in values.items():
                file = folder / f"{index}-{name}.bin"
                value.tofile(file)
                dtype = "int32" if value.dtype == np.int32 else "float32"
                inputs[name] = {"dtype": dtype, "shape": list(value.shape), "file": str(file)}
            runs.append({"inputs": inputs, "output": str(folder / f"{index}-result.bin")})
        request = folder / "request.json"
        request.write_text(json.dumps({"model": str(model), "backend": backend, "runs": runs}))
        done = subprocess.run(
            ["node", str(NODE_RUNNER), str(request)], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise SANetError(f"TF.js ({backend}) failed on {model}: {last}")
        timings = json.loads(done.stdout.strip().splitlines()[-1])
        results = [
            np.fromfile(run["output"], np.float32).reshape(values["content"].shape)
            for run, values in zip(runs, feeds, strict=True)
        ]
    return results, timings
