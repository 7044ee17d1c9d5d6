"""A photo in pieces through the serving signature, so that no call holds the whole photo.

The mean-variance normalisation needs statistics of the whole content's maps; everything else
is local. So a caller that cannot hold a photo's working set in one call (a browser tab with a
12-megapixel photo) cuts it into pieces and makes two rounds of calls:

1. *measuring*: each piece with the encoder's margin around it, `measure` set to the piece's
   place in what it sent: the call returns the moments of the content's maps there
   (`content_moments`, [1, 2, 3, C]) and no image;
2. *stylizing*: each piece with the encoder's and the features' margins around it, and every
   piece's moments (`content_moments`, [n, 2, 3, C]): the call returns what it was sent,
   stylized with the whole photo's statistics; the caller keeps the piece.

Pieces start on the ALIGN grid of the photo, so every call's poolings and upsamplings see the
photo's own grid, and their margins reach past every layer's reach: the pieces put together
are the photo stylized in one call, up to float rounding. That holds for what the statistics
are the only global part of: one pass (iterations 1), at strength 1 without a mask (the
content's own attention takes all of its positions), at the photo's own size (max_resolution
0). The page does the same in `web/src/pieces.js`.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from convert.contract import CONTROLS_OFF

Arrays = dict[str, np.ndarray]
# Runs the signature on each feed; returns the named output of each.
Calls = Callable[[list[Arrays], str], list[np.ndarray]]
Box = tuple[int, int, int, int]  # top, left, bottom, right, pixels


@dataclass(frozen=True)
class Piece:
    keep: Box  # the piece, in the photo
    crop: Box  # what a call is sent: the piece and its margins, within the photo

    def inside(self) -> Box:
        """`keep` in the crop's pixels."""
        top, left = self.crop[:2]
        return self.keep[0] - top, self.keep[1] - left, self.keep[2] - top, self.keep[3] - left


def cuts(length: int, side: int, align: int) -> list[int]:
    """Where pieces of at most about `side` start and end along an axis of `length`: as even as
    the `align` grid allows, so that no piece is a sliver."""
    count = max(1, math.ceil(length / side))
    # i * length / count to the nearest multiple of `align`, halves up, in integers.
    step = 2 * count * align
    inner = [align * ((2 * i * length + count * align) // step) for i in range(1, count)]
    return [0, *sorted(set(inner) - {0, length}), length]


def plan(size: tuple[int, int], side: int, margin: int, align: int) -> list[Piece]:
    """The pieces of a photo of `size` (height, width), row by row, each with `margin` pixels
    more on every side the photo has them."""
    rows, columns = cuts(size[0], side, align), cuts(size[1], side, align)
    pieces = []
    for top, bottom in pairwise(rows):
        for left, right in pairwise(columns):
            crop = (max(0, top - margin), max(0, left - margin),
                    min(size[0], bottom + margin), min(size[1], right + margin))  # fmt: skip
            pieces.append(Piece((top, left, bottom, right), crop))
    return pieces


def margins(tiling: dict) -> tuple[int, int]:
    """The measuring and the stylizing calls' margins (pixels) of a model's `tiling` rule
    (`metadata.json`)."""
    encoder = tiling["encoder_margin"]
    return encoder, encoder + tiling["relu4_1_stride"] * tiling["features_margin"]


def check(inputs: Arrays) -> None:
    """Refuse a request that pieces would not reproduce (see the module's docstring)."""
    reasons = {
        "iterations": int(inputs["iterations"]) != 1,
        "max_resolution": int(inputs["max_resolution"]) != 0,
        "strength": float(inputs["strength"]) < 1.0,
        "mask": float(np.min(inputs["mask"])) < 1.0,
    }
    wrong = [name for name, found in reasons.items() if found]
    if wrong:
        needed = "iterations 1, max_resolution 0, strength 1 and no mask"
        raise ValueError(f"pieces need {needed} ({', '.join(wrong)})")


def _cut(image: np.ndarray, box: Box) -> np.ndarray:
    return image[box[0] : box[2], box[1] : box[3]]


def stylize_in_pieces(calls: Calls, inputs: Arrays, side: int, tiling: dict) -> np.ndarray:
    """The result of the serving signature on `inputs` (a whole photo), from calls on pieces of
    about `side` pixels; `tiling` is the model's rule (`metadata.json`)."""
    check(inputs)
    content = inputs["content"]
    size = content.shape[:2]
    measuring, stylizing = margins(tiling)
    off = {"measure": CONTROLS_OFF["measure"], "content_moments": CONTROLS_OFF["content_moments"]}
    measured = plan(size, side, measuring, tiling["align"])
    feeds = [
        inputs | off | {"content": _cut(content, p.crop), "measure": np.array(p.inside(), np.int32)}
        for p in measured
    ]
    moments = np.concatenate(calls(feeds, "content_moments"))  # [n, 2, 3, C]
    pieces = plan(size, side, stylizing, tiling["align"])
    feeds = [
        inputs | off | {"content": _cut(content, p.crop), "content_moments": moments}
        for p in pieces
    ]
    result = np.empty_like(content)
    for piece, stylized in zip(pieces, calls(feeds, "result"), strict=True):
        top, left, bottom, right = piece.keep
        result[top:bottom, left:right] = _cut(stylized, piece.inside())
    return result
