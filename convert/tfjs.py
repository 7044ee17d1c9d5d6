"""Stage 4: the composed SavedModel as a TF.js graph model (then optimised by `tfjs_graph`)."""

import contextlib
import io
import json
import logging
import warnings
from pathlib import Path

from convert.contract import SIGNATURE_KEY


class _DropVersionNotice(logging.Filter):
    """TF-DF, which the converter imports, warns on the root logger that it was built for
    TF 2.15.0; 2.15.1 is the release tensorflow-addons needs, and the converter works with it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Decision Forests" not in record.getMessage()


def tf_to_tfjs(
    saved_model: Path, directory: Path, quantization_dtype_map: dict | None = None
) -> Path:
    """Convert the `serving_default` signature to `directory/model.json` and its shards."""
    logging.getLogger().addFilter(_DropVersionNotice())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from tensorflowjs.converters import tf_saved_model_conversion_v2 as converter

    directory.mkdir(parents=True, exist_ok=True)
    # The converter prints a line for every int64 constant it narrows to int32.
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        converter.convert_tf_saved_model(
            str(saved_model),
            str(directory),
            signature_def=SIGNATURE_KEY,
            saved_model_tags="serve",
            quantization_dtype_map=quantization_dtype_map,
        )
    _key_outputs(saved_model, directory / "model.json")
    return directory


def _key_outputs(saved_model: Path, model_json: Path) -> None:
    """Give model.json's signature outputs the SavedModel's keys.

    The converter keys each output by matching its dtype and shape against the signature's, so
    outputs that share a shape (the encodings, [?, ?, ?, ?]) keep their node names. The
    SavedModel's k-th output ("StatefulPartitionedCall:k") is the frozen graph's `Identity_k`.
    """
    from tensorflow.python.tools import saved_model_utils

    meta_graph = saved_model_utils.get_meta_graph_def(str(saved_model), "serve")
    model = json.loads(model_json.read_text())
    converted = {entry["name"]: entry for entry in model["signature"]["outputs"].values()}
    outputs = {}
    for key, info in meta_graph.signature_def[SIGNATURE_KEY].outputs.items():
        index = int(info.name.rsplit(":", 1)[1])
        node = "Identity:0" if index == 0 else f"Identity_{index}:0"
        if node not in converted:
            raise RuntimeError(f"the converted model has no output {node} for {key}")
        outputs[key] = converted[node]
    model["signature"]["outputs"] = outputs
    model_json.write_text(json.dumps(model))
