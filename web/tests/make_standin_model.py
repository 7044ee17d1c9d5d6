"""Build a small stand-in for the converted SANet model, with the same signature.

The web page and its tests only rely on the model contract written by `convert/`:

    inputs  content float32 [H, W, 3] in [0, 1], style float32 [h, w, 3] in [0, 1],
            iterations int32 scalar (>= 1), max_resolution int32 scalar (0 = as given),
            strength float32 scalar in [0, 1], and the controls (convert/contract.py INPUTS):
            style_resolution, style2, mix, mask [hm, wm], keep_colors, tile, stream, and the
            encodings (convert/contract.py ENCODINGS: empty = computed from the image)
    outputs result float32 [H, W, 3] in [0, 1] (the content's size), and the encodings

with a `tf.while_loop` inside, so that the TF.js graph model needs `executeAsync` exactly like the
real one.  This module resizes the content to the working size (the real model's rule,
`convert.tf_module.working_size`), blends it `iterations` times with
the style's mean colour (mixed with the second style's by `mix`) and a copy of the style resized
by the style's rule (`style_working_size`), per pixel as strong as the mask (resampled), resizes
back, moves its chroma toward the content's by `keep_colors` and clips.  Its "encodings" are
those images (NCHW): the working-size content and style (relu4_1) and their mean colours
(relu5_1); given ones replace them, so a page that feeds stale encodings gets a wrong result.
It is not style transfer; it is a fast, deterministic function of every input, which is what
the page tests need.

Writes OUT/saved_model (the TF SavedModel, used as the reference in the tests) and OUT/tfjs
(model.json + shards, float16/ and uint8/ variants, metadata.json).

Usage: python web/tests/make_standin_model.py OUT_DIR
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf

from convert import contract
from convert.pipeline import tiling_rule
from convert.tf_module import CHROMA, SIGNATURE, style_working_size, working_size
from convert.tfjs import tf_to_tfjs
from sanet.encoder import FULL_WIDTHS
from sanet.model import SANet

CHANNELS = 16
GRAIN = 256


class StandIn(tf.Module):
    def __init__(self) -> None:
        super().__init__()
        rng = np.random.default_rng(0)
        # Enough weights that the quantised variants differ measurably from fp32. Constants, not
        # tf.Variables: TF.js 4.22 cannot run a converted while loop whose body reads a captured
        # variable ("Cannot compute the outputs [Identity]"); onnx-tf's graphs hold constants too.
        self.mix_in = tf.constant(rng.normal(0, 0.3, (3, CHANNELS)).astype("float32"))
        self.mix_out = tf.constant(rng.normal(0, 0.3, (CHANNELS, 3)).astype("float32"))
        # A cheap but large weight (768 kB in fp32), so that the float16 and uint8 variants are
        # smaller than fp32 like the real model's, rather than dominated by model.json.
        self.grain = tf.constant(rng.uniform(0, 1, (GRAIN, GRAIN, 3)).astype("float32"))

    @tf.function(input_signature=SIGNATURE)
    def __call__(self, content, style, iterations, max_resolution, strength, style_resolution,
                 style2, mix, mask, keep_colors, tile, stream, measure, content_moments,
                 content_relu4_1, content_relu5_1, style_relu4_1, style_relu5_1, style2_relu4_1,
                 style2_relu5_1):  # fmt: skip
        # `tile` and `stream` are taken and not used: in the real model they change only float
        # rounding. Nor are `content_moments`; a measuring call (`measure`) returns moments of
        # zeros: the stand-in normalises nothing.
        size = tf.shape(content)[:2]
        work = tf.image.resize(content[None], working_size(tf.shape(content)[:2], max_resolution))
        work = _given(content_relu4_1, work)
        work_size = tf.shape(work)[1:3]
        # The style at its own working size (style_resolution).
        style_size = style_working_size(tf.shape(style)[:2], max_resolution, style_resolution)
        style_own = _given(style_relu4_1, tf.image.resize(style[None], style_size))
        style_small = tf.image.resize(style_own, work_size)
        # The controls, cheaply: the second style's mean colour mixed in, the mask (resampled to
        # the working size) making the strength per pixel, the content's chroma back by
        # keep_colors.
        mix = tf.clip_by_value(mix, 0.0, 1.0)
        style_colour = _given(style_relu5_1, _mean(style_own))
        style2_colour = _given(style2_relu4_1, _mean(style2[None]))
        style_mean = (1.0 - mix) * style_colour + mix * style2_colour
        grain = tf.image.resize(self.grain[None], work_size)
        mask = tf.image.resize(tf.clip_by_value(mask, 0.0, 1.0)[None, :, :, None], work_size)
        strength = tf.clip_by_value(strength, 0.0, 1.0) * mask  # [1, h, w, 1]
        encodings = [work, _mean(work), style_own, style_colour, style2_colour, style2_colour]

        def body(i, image):
            hidden = tf.nn.relu(tf.tensordot(image, self.mix_in, 1))
            texture = tf.sigmoid(tf.tensordot(hidden, self.mix_out, 1))
            styled = 0.3 * style_small + 0.2 * texture + 0.1 * grain + 0.4 * style_mean
            return i + 1, image + strength * 0.5 * (styled - image)

        _, work = tf.while_loop(
            lambda i, _: i < tf.maximum(iterations, 1),
            body,
            [tf.constant(0), work],
            shape_invariants=[tf.TensorShape([]), tf.TensorShape([None, None, None, 3])],
        )
        result = tf.image.resize(work, size)[0]
        # As the real model: only the chroma moves (convert.tf_module._keep_colors).
        result += tf.clip_by_value(keep_colors, 0.0, 1.0) * tf.tensordot(
            content - result, CHROMA, 1
        )
        measuring = tf.cast(tf.reduce_all(measure[2:] > measure[:2]), tf.int32)
        outputs = {
            "result": tf.clip_by_value(result, 0.0, 1.0),
            "content_moments": tf.zeros([measuring, 2, 3, 3]),
        }
        for name, value in zip(contract.ENCODINGS, encodings, strict=True):
            outputs[name] = tf.transpose(value, [0, 3, 1, 2])  # NCHW, as the encoder's
        return outputs


def _mean(images: tf.Tensor) -> tf.Tensor:
    """[1, h, w, 3] -> its mean colour [1, 1, 1, 3]."""
    return tf.reduce_mean(images, axis=[1, 2], keepdims=True)


def _given(encoding: tf.Tensor, computed: tf.Tensor) -> tf.Tensor:
    """A given encoding (NCHW, not empty) as NHWC, else `computed`."""
    return tf.cond(
        tf.size(encoding) > 0, lambda: tf.transpose(encoding, [0, 2, 3, 1]), lambda: computed
    )


def _variant(name: str, path: str, directory: Path) -> dict:
    model_json = directory / path
    shards = json.loads(model_json.read_text())["weightsManifest"]
    size = model_json.stat().st_size + sum(
        (model_json.parent / p).stat().st_size for group in shards for p in group["paths"]
    )
    return {"name": name, "path": path, "bytes": size}


def build(out: Path) -> None:
    saved = out / "saved_model"
    tfjs = out / "tfjs"
    shutil.rmtree(out, ignore_errors=True)
    module = StandIn()
    tf.saved_model.save(module, str(saved), signatures={contract.SIGNATURE_KEY: module.__call__})
    for sub, dtype_map in (("", None), ("float16", {"float16": "*"}), ("uint8", {"uint8": "*"})):
        tf_to_tfjs(saved, tfjs / sub, dtype_map)
    metadata = contract.metadata(
        weights={"source": "demo", "untrained": True, "iteration": 0},
        variants=[_variant(name, contract.variant_path(name), tfjs) for name in contract.VARIANTS],
        versions={"tensorflow": tf.__version__, "model": "web stand-in"},
        parity=[],
        ops={},
        # The memory and tiling rules of the real model it stands in for.
        widths=FULL_WIDTHS,
        tiling=tiling_rule(SANet(FULL_WIDTHS)),
    )
    (tfjs / contract.METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="output directory (replaced)")
    build(parser.parse_args(argv).out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
