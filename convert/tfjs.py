"""Stage 4: the composed SavedModel as a TF.js graph model (then optimised by `tfjs_graph`)."""

import contextlib
import io
import logging
import warnings
from pathlib import Path

from convert.contract import SIGNATURE_KEY


class _DropVersionNotice(logging.Filter):
    """TF-DF, which the converter imports, warns on the root logger that it was built for
    TF 2.15.0; 2.15.1 is the release tensorflow-addons needs, and the converter works with it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Decision Forests" not in record.getMessage()


def tf_to_tfjs(saved_model: Path, directory: Path) -> Path:
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
        )
    return directory
