"""The artifact contract: what the converter publishes, read by the page, the bench and tests.

One place for the serving signature's names, the variant paths, the `metadata.json` schema and
the boundary between small constants and kernels that the page's warm-up relies on. Anything
that reads a converted model takes these from here (Python) or from `metadata.json` (the page).
"""

import json
import math
from pathlib import Path

import numpy as np

from sanet import request
from sanet.request import memory_rule

# 2: the creative controls and the style resolution joined the signature; 3: the encodings
# and the memory rule; 4: the tile side; 5: the tiled memory rule of the graph that holds no
# image in control flow, with the cost of each further pass; 6: `stream`, tiles that hold no
# content map, and their memory rule; 7: the tiled rule's fixed part (the weights and the heap's
# growth step), which the maps no longer stand for; 8: the content's maps counted once in a
# streamed run (fitted); 9: `measure` and `content_moments`, a photo in pieces; 10: the tiled
# rule's images once more for a call in pieces (`tiled_pieces_image_copies`, fitted); 11: a
# fixed part instead (`tiled_pieces_fixed_mb`), which the next measurement fitted better.
SCHEMA_VERSION = 11
SIGNATURE_KEY = "serving_default"
# Logical input names, in signature order, with their dtype, shape and meaning.
INPUTS = {
    "content": ("float32", "[H, W, 3]", "in [0, 1]"),
    "style": ("float32", "[h, w, 3]", "in [0, 1]"),
    "iterations": ("int32", "[]", ">= 1"),
    "max_resolution": ("int32", "[]", "0 = as given"),
    "strength": ("float32", "[]", "in [0, 1]"),
    "style_resolution": ("int32", "[]", "the style's longest side; 0 = as given, -1 = as content"),
    "style2": ("float32", "[h2, w2, 3]", "in [0, 1]; any image when mix = 0"),
    "mix": ("float32", "[]", "in [0, 1], 0 = one style"),
    "mask": ("float32", "[hm, wm]", "in [0, 1], any size; all ones = everywhere"),
    "keep_colors": ("float32", "[]", "in [0, 1]"),
    "tile": ("int32", "[]", "tile side in working pixels, rounded up to 16, at least 64; 0 = none"),
    "stream": ("int32", "[]", "1 = tiles hold no content map (strength 1, no mask); 0 = they do"),
    "measure": (
        "int32",
        "[4]",
        "[top, left, bottom, right] working pixels: return the content's "
        "moments there, no image; empty (bottom <= top) = stylize",
    ),
    "content_moments": (
        "float32",
        "[n, 2, 3, C]",
        "pieces' moments: the content's statistics in the first pass; n = 0: its own",
    ),
}
# The encoder's features of each image at its working size, returned by every call and taken
# back by the next: a caller that keeps them skips the encoder (the style of a clip's frames;
# the content and styles when only strength, mix, mask or keep_colors change). The content's
# are the first pass's. Empty ([1, 1, 0, 0]): encode the image.
ENCODINGS = tuple(
    f"{image}_{layer}"
    for image in ("content", "style", "style2")
    for layer in ("relu4_1", "relu5_1")
)
ENCODING = ("float32", "[1, C, h, w]", "the encoder's features of that image at its working size")
INPUTS |= {name: (*ENCODING[:2], "from an earlier call with that image; empty: encode it")
           for name in ENCODINGS}  # fmt: skip
# The controls' and the encodings' inputs when a caller does not use them: the output is then
# the plain stylization, every image encoded.
CONTROLS_OFF = {
    "style_resolution": np.array(-1, np.int32),
    "style2": np.ones((1, 1, 3), np.float32),
    "mix": np.array(0.0, np.float32),
    "mask": np.ones((1, 1), np.float32),
    "keep_colors": np.array(0.0, np.float32),
    "tile": np.array(0, np.int32),
    "stream": np.array(0, np.int32),
    "measure": np.zeros(4, np.int32),
    "content_moments": np.zeros((0, 2, 3, 0), np.float32),
    **{name: np.zeros((1, 1, 0, 0), np.float32) for name in ENCODINGS},
}
OUTPUTS = {
    "result": ("float32", "[H, W, 3]", "in [0, 1], the content's size"),
    "content_moments": ("float32", "[n, 2, 3, C]", "a measuring call's: n = 1, else 0"),
    **{name: ENCODING for name in ENCODINGS},
}
VARIANTS = ("fp32", "float16", "uint8")
# Weights with fewer elements, and every int32 weight, are "small constants": they shape the
# computation (shapes, paddings, biases), are never quantized, and are stored first so that
# the page can compile the graph from the first shard while the kernels download.
SMALL_CONSTANT_ELEMENTS = 1024
METADATA_FILE = "metadata.json"


def variant_path(name: str) -> str:
    """Where a variant's model.json lies, relative to the published model folder."""
    if name not in VARIANTS:
        raise ValueError(f"unknown variant {name!r} (one of {', '.join(VARIANTS)})")
    return "model.json" if name == "fp32" else f"{name}/model.json"


def is_small(spec: dict) -> bool:
    """Whether a weight (a model.json manifest entry) is a small constant; see above."""
    return spec["dtype"] == "int32" or math.prod(spec["shape"]) < SMALL_CONSTANT_ELEMENTS


def signature() -> dict:
    def describe(entries: dict) -> dict:
        return {name: " ".join(fields) for name, fields in entries.items()}

    return {"inputs": describe(INPUTS), "outputs": describe(OUTPUTS), "execute": "executeAsync"}


def metadata(
    weights: dict,
    variants: list[dict],
    versions: dict,
    parity: list[dict],
    ops: dict,
    widths: tuple[int, int, int, int],
    tiling: dict[str, int],
) -> dict:
    """The document the page reads: schema version, request rules, the memory rule of a model
    with these `widths`, how its `tile` input cuts a request, signature, variants ({name,
    path, bytes, ...}), the weights they came from and the parity evidence."""
    return {
        "schema_version": SCHEMA_VERSION,
        "request": request.rules(),
        "memory": memory_rule(widths),
        "tiling": tiling,
        "signature": signature(),
        "small_constant_elements": SMALL_CONSTANT_ELEMENTS,
        "weights": weights,
        "variants": variants,
        "versions": versions,
        "parity": parity,
        "ops": ops,
    }


def read_metadata(model_dir: Path) -> dict:
    """A published model's metadata.json, refused when its schema is not this one."""
    document = json.loads((model_dir / METADATA_FILE).read_text())
    found = document.get("schema_version")
    if found != SCHEMA_VERSION:
        raise ValueError(
            f"{model_dir / METADATA_FILE}: schema version {found}, expected {SCHEMA_VERSION}: "
            "convert the model again"
        )
    return document
