"""Stage 2: each ONNX graph converted by onnx-tf, then frozen and constant-folded.

onnx-tf writes a SavedModel per graph. Two things in its output would cost in TF.js, and both
are removed here: every Pad sits in a `tf.cond` (to handle negative pads, which SANet never
has), and every convolution transposes its weights at run time (ONNX OIHW to TF HWIO). The
frozen, folded graphs (`*.pb`) are what the composed module runs.
"""

import contextlib
import json
import logging
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import onnx
import tensorflow as tf

from convert.onnx_export import OnnxGraphs

NAMES = ("encoder", "transform", "decoder")


@dataclass(frozen=True)
class TfGraphs:
    """Frozen GraphDefs (`NAME.pb`, with `NAME.json` giving input and output tensor names)."""

    directory: Path

    def items(self) -> list[tuple[str, Path]]:
        return [(name, self.directory / f"{name}.pb") for name in NAMES]


def _quiet() -> None:
    """onnx-tf's imports and SavedModel export announce themselves at INFO and WARNING; its
    pool handler even resets absl's verbosity to INFO, so a filter does the silencing."""
    warnings.filterwarnings("ignore", module="tensorflow_addons")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    absl = logging.getLogger("absl")
    if not any(isinstance(f, _ErrorsOnly) for f in absl.filters):
        absl.addFilter(_ErrorsOnly())


class _ErrorsOnly(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR


@contextlib.contextmanager
def _static_pads() -> Iterator[None]:
    """Make onnx-tf emit a plain `tf.pad` for a Pad whose widths are non-negative constants."""
    from onnx_tf.handlers.backend.pad import Pad

    original = Pad._common

    def common(cls, node, **kwargs):
        pads = node.attrs.get("pads")
        if pads is None or min(pads) < 0:
            return original.__func__(cls, node, **kwargs)
        x = kwargs["tensor_dict"][node.inputs[0]]
        rank = len(pads) // 2
        widths = [[pads[i], pads[i + rank]] for i in range(rank)]
        mode = node.attrs.get("mode", "constant").upper()
        if mode == "REFLECT":
            return [tf.pad(x, widths, mode="REFLECT")]
        return [tf.pad(x, widths, mode="CONSTANT", constant_values=node.attrs.get("value", 0.0))]

    Pad._common = classmethod(common)
    try:
        yield
    finally:
        Pad._common = original


def _fold(function: tf.types.experimental.ConcreteFunction) -> tuple[tf.compat.v1.GraphDef, dict]:
    """Freeze variables into constants, then let grappler fold constant subgraphs.

    Returns the graph and its tensor names: {"inputs": {name: tensor}, "outputs": {...}}.
    """
    from tensorflow.core.protobuf import config_pb2
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )
    from tensorflow.python.grappler import tf_optimizer
    from tensorflow.python.training.saver import export_meta_graph

    frozen = convert_variables_to_constants_v2(function)
    meta = export_meta_graph(graph_def=frozen.graph.as_graph_def(), graph=frozen.graph)
    fetches = meta.collection_def["train_op"].node_list.value
    fetches.extend(tensor.name for tensor in frozen.outputs)
    config = config_pb2.ConfigProto()
    config.graph_options.rewrite_options.optimizers.extend(
        ["constfold", "arithmetic", "dependency", "constfold"]
    )
    names = {
        "inputs": {t.name.split(":")[0]: t.name for t in frozen.inputs},
        # Outputs come in the order of tf.nest.flatten: a dict's keys, sorted.
        "outputs": dict(
            zip(sorted(function.structured_outputs), (t.name for t in frozen.outputs), strict=True)
        ),
    }
    return tf_optimizer.OptimizeGraph(config, meta), names


def onnx_to_tf(graphs: OnnxGraphs, directory: Path) -> TfGraphs:
    """Convert each graph with onnx-tf (SavedModel in `directory/NAME/`), then freeze it."""
    _quiet()
    from onnx_tf.backend import prepare

    directory.mkdir(parents=True, exist_ok=True)
    for name, onnx_path in graphs.items():
        saved_model = directory / name
        with _static_pads():
            prepare(onnx.load(str(onnx_path)), device="CPU").export_graph(str(saved_model))
        function = tf.saved_model.load(str(saved_model)).signatures["serving_default"]
        graph_def, names = _fold(function)
        (directory / f"{name}.pb").write_bytes(graph_def.SerializeToString())
        (directory / f"{name}.json").write_text(json.dumps(names, indent=1))
    return TfGraphs(directory)


def load_graph(path: Path) -> tf.types.experimental.ConcreteFunction:
    """A frozen graph written by `onnx_to_tf` as a function taking and returning named tensors
    (keyword arguments in, a dict out)."""
    names = json.loads(path.with_suffix(".json").read_text())
    graph_def = tf.compat.v1.GraphDef.FromString(path.read_bytes())
    wrapped = tf.compat.v1.wrap_function(
        lambda: tf.compat.v1.import_graph_def(graph_def, name=""), []
    )
    graph = wrapped.graph
    return wrapped.prune(
        feeds={name: graph.as_graph_element(t) for name, t in names["inputs"].items()},
        fetches={name: graph.as_graph_element(t) for name, t in names["outputs"].items()},
    )
