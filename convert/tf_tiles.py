"""Full resolution through the serving signature: `sanet.tiling`'s rules in TF ops.

The encoder runs on overlapping tiles of the image (margins of `encoder_margin` pixels, cut
edges on the ALIGN grid), and its relu4_1 and relu5_1 maps are assembled whole: the attention
normalises the content by the whole maps' statistics. The transform and the decoder then run
together on tiles of those maps (margins of `features_margin` relu4_1 positions), so the
decoder's input is never held whole, and the attention takes one tile's positions at a time.
Each tile's kept part equals the untiled result up to float rounding.

A tile side of 0 runs the whole image as one tile: the same ops, no overlap.
"""

from collections.abc import Callable
from dataclasses import dataclass

import tensorflow as tf

from sanet.attention import EPS
from sanet.tiling import ALIGN, MIN_TILE, RELU4_1_STRIDE, RELU5_1_STRIDE

Maps = tuple[tf.Tensor, ...]


@dataclass(frozen=True)
class Margins:
    encoder: int  # pixels, a multiple of ALIGN (`sanet.tiling.encoder_margin`)
    features: int  # relu4_1 positions, even (`sanet.tiling.features_margin`)


def _ceil_div(a: tf.Tensor, b: int | tf.Tensor) -> tf.Tensor:
    return -(-a // b)


def tile_side(tile: tf.Tensor, height: tf.Tensor, width: tf.Tensor) -> tf.Tensor:
    """The kept side of a tile in pixels: `tile` rounded up to a multiple of ALIGN and at
    least MIN_TILE; 0 or less: the whole image in one tile."""
    side = tf.where(tile > 0, tf.maximum(tile, MIN_TILE), tf.maximum(height, width))
    return _ceil_div(side, ALIGN) * ALIGN


def _span(index: tf.Tensor, tile: tf.Tensor, margin: int, length: tf.Tensor) -> tuple:
    """(keep start, keep stop, region start, region stop) of tile `index` along one axis."""
    start = index * tile
    stop = tf.minimum(length, start + tile)
    return start, stop, tf.maximum(0, start - margin), tf.minimum(length, stop + margin)


def _grid(
    size: tuple[tf.Tensor, tf.Tensor],
    tile: tf.Tensor,
    run: Callable[[tf.Tensor, tf.Tensor], Maps],
    layout: tuple[tuple[int, Callable], ...],
) -> Maps:
    """Run `run(row, column)` on each tile, row by row, and assemble its outputs: tiles side
    by side into a strip, strips top to bottom. `layout` gives each output's channels and
    `extent(start, stop)`: its positions for the input span [start, stop)."""
    rows, columns = _ceil_div(size[0], tile), _ceil_div(size[1], tile)
    width = [extent(0, size[1]) for _, extent in layout]
    partial = tuple(tf.TensorShape([1, channels, None, None]) for channels, _ in layout)

    def strip(row: tf.Tensor, maps: Maps) -> tuple[tf.Tensor, Maps]:
        top = row * tile
        height = [extent(top, tf.minimum(size[0], top + tile)) for _, extent in layout]

        def cell(column: tf.Tensor, parts: Maps) -> tuple[tf.Tensor, Maps]:
            joined = zip(parts, run(row, column), strict=True)
            return column + 1, tuple(tf.concat([part, out], 3) for part, out in joined)

        empty = tuple(tf.zeros([1, c, h, 0]) for (c, _), h in zip(layout, height, strict=True))
        _, parts = tf.while_loop(
            lambda column, _: column < columns,
            cell,
            (tf.constant(0), empty),
            shape_invariants=(tf.TensorShape([]), partial),
        )
        return row + 1, tuple(tf.concat([m, p], 2) for m, p in zip(maps, parts, strict=True))

    empty = tuple(tf.zeros([1, c, 0, w]) for (c, _), w in zip(layout, width, strict=True))
    _, maps = tf.while_loop(
        lambda row, _: row < rows,
        strip,
        (tf.constant(0), empty),
        shape_invariants=(tf.TensorShape([]), partial),
    )
    return maps


def _positions(stride: int) -> Callable:
    """Positions at `stride` pixels each that cover pixels [start, stop) (start on the grid)."""
    return lambda start, stop: _ceil_div(stop, stride) - start // stride


def _kept(out: tf.Tensor, rows: tuple, columns: tuple, stride: int) -> tf.Tensor:
    """A tile's output cut to its kept part; spans in input units, `stride` of them per
    output position (see `sanet.tiling._keep`)."""
    (top, bottom, region_top, _), (left, right, region_left, _) = rows, columns
    y, x = (top - region_top) // stride, (left - region_left) // stride
    height = _ceil_div(bottom, stride) - top // stride
    width = _ceil_div(right, stride) - left // stride
    return out[:, :, y : y + height, x : x + width]


def encode(
    encoder: Callable[[tf.Tensor], Maps],
    image: tf.Tensor,
    tile: tf.Tensor,
    margin: int,
    channels: int,
) -> Maps:
    """`encoder(image)` -> (relu4_1, relu5_1), tile by tile; `image` [1, 3, H, W], `tile` in
    pixels (a multiple of ALIGN), `margin` the encoder's."""
    height, width = tf.shape(image)[2], tf.shape(image)[3]

    def run(row: tf.Tensor, column: tf.Tensor) -> Maps:
        rows = _span(row, tile, margin, height)
        columns = _span(column, tile, margin, width)
        relu4_1, relu5_1 = encoder(image[:, :, rows[2] : rows[3], columns[2] : columns[3]])
        return (
            _kept(relu4_1, rows, columns, RELU4_1_STRIDE),
            _kept(relu5_1, rows, columns, RELU5_1_STRIDE),
        )

    layout = ((channels, _positions(RELU4_1_STRIDE)), (channels, _positions(RELU5_1_STRIDE)))
    return _grid((height, width), tile, run, layout)


def decode(
    features: Callable[[tuple, tuple], tf.Tensor],
    decoder: Callable[[tf.Tensor], tf.Tensor],
    size: tuple[tf.Tensor, tf.Tensor],
    tile: tf.Tensor,
    margin: int,
) -> tf.Tensor:
    """The decoded image [1, 3, 8h, 8w] of a relu4_1-sized map of `size` (h, w), tile by tile:
    `features(rows, columns)` is the decoder's input on a region (spans in relu4_1
    positions, `margin` the features margin); `tile` in pixels."""
    tile = tile // RELU4_1_STRIDE  # relu4_1 positions, even

    def run(row: tf.Tensor, column: tf.Tensor) -> Maps:
        rows = _span(row, tile, margin, size[0])
        columns = _span(column, tile, margin, size[1])
        image = decoder(features(rows, columns))
        pixels = tuple(tuple(RELU4_1_STRIDE * side for side in span) for span in (rows, columns))
        return (_kept(image, *pixels, 1),)

    (image,) = _grid(size, tile, run, ((3, lambda start, stop: RELU4_1_STRIDE * (stop - start)),))
    return image


def region(features: tf.Tensor, rows: tuple, columns: tuple, stride: int = 1) -> tf.Tensor:
    """The region part of a relu4_1 map (or, `stride` 2, of the relu5_1 map that goes with it:
    the region starts on its grid, and its end rounds up)."""
    return features[
        :,
        :,
        rows[2] // stride : _ceil_div(rows[3], stride),
        columns[2] // stride : _ceil_div(columns[3], stride),
    ]


def channel_statistics(features: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """`sanet.attention.channel_statistics` of a whole map [1, C, h, w]: per-channel mean and
    unbiased standard deviation with EPS, [1, C, 1, 1] each."""
    mean = tf.reduce_mean(features, axis=[2, 3], keepdims=True)
    centered = features - mean
    count = tf.cast(tf.shape(features)[2] * tf.shape(features)[3], tf.float32)
    variance = tf.reduce_sum(tf.square(centered), axis=[2, 3], keepdims=True) / (count - 1.0)
    return mean, tf.sqrt(variance + EPS)
