"""Full resolution through the serving signature: `sanet.tiling`'s rules in TF ops.

The encoder runs on overlapping tiles of the image (margins of `encoder_margin` pixels, cut
edges on the ALIGN grid) and keeps each tile's part of relu4_1 and relu5_1 as a *cell*. The
attention normalises the content by statistics summed over all cells. The transform and the
decoder then run together, tile by tile, on a region gathered from a cell and its neighbours
(margins of `features_margin` relu4_1 positions): no relu4_1-sized map is ever assembled, and
the attention takes one region's positions at a time. Each tile's kept part equals the
untiled result up to float rounding. A tile side of 0 runs each image as one tile.

Written for TF.js as much as for TensorFlow. TF.js never frees a tensor that enters or
leaves a loop or a branch before the run ends, and copies it there unless it is kept; a
TensorArray's elements and handle are kept. So loops and branches here carry only scalars
and TensorArrays: large tensors are `hold`-ed in a TensorArray and read where needed, and a
branch passes its result out in one (`either`). TF.js also runs loop steps ahead of their
work, so each loop's test waits for the step before (`_for_each`). Cells are stored padded
to the tile's full side, because TF.js can only stack, not concatenate, a TensorArray whose
elements differ in shape (docs/how-it-works.md has the measurements).
"""

from collections.abc import Callable
from dataclasses import dataclass

import tensorflow as tf

from sanet.attention import EPS
from sanet.tiling import ALIGN, MIN_TILE, RELU4_1_STRIDE, RELU5_1_STRIDE

Span = tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]  # keep start, stop, region start, stop


@dataclass(frozen=True)
class Margins:
    encoder: int  # pixels, a multiple of ALIGN (`sanet.tiling.encoder_margin`)
    features: int  # relu4_1 positions, even (`sanet.tiling.features_margin`)


@dataclass(frozen=True)
class Cells:
    """A feature map [1, C, h, w] as its tiles' parts: a TensorArray of [1, C, side, side]
    cells in row-major order, each zero-padded to the full side. `side` = tile / stride."""

    array: tf.TensorArray
    size: tuple[tf.Tensor, tf.Tensor]  # (h, w) of the map
    side: tf.Tensor


def hold(tensor: tf.Tensor) -> tf.TensorArray:
    """`tensor` in a one-element TensorArray, for loops to read (`.read(0)`)."""
    shape = tf.TensorShape([None] * tensor.shape.rank)
    return tf.TensorArray(tensor.dtype, size=1, element_shape=shape, infer_shape=False).write(
        0, tensor
    )


def either(predicate: tf.Tensor, true_fn: Callable, false_fn: Callable):
    """`tf.cond` of branches that return a tensor or a tuple of tensors, each passed out in a
    TensorArray: TF.js copies a tensor that leaves a branch and keeps the original and the
    copy to the end of the run; a TensorArray's handle it passes as it is."""

    def held(branch: Callable) -> Callable:
        return lambda: tf.nest.map_structure(hold, branch())

    arrays = tf.cond(predicate, held(true_fn), held(false_fn))
    return tf.nest.map_structure(lambda array: array.read(0), arrays)


def _ceil_div(a: tf.Tensor, b: int | tf.Tensor) -> tf.Tensor:
    return -(-a // b)


def tile_side(tile: tf.Tensor, height: tf.Tensor, width: tf.Tensor) -> tf.Tensor:
    """The kept side of a tile in pixels: `tile` rounded up to a multiple of ALIGN and at
    least MIN_TILE; 0 or less: the whole image in one tile."""
    side = tf.where(tile > 0, tf.maximum(tile, MIN_TILE), tf.maximum(height, width))
    return _ceil_div(side, ALIGN) * ALIGN


def _span(index: tf.Tensor, tile: tf.Tensor, margin: int, length: tf.Tensor) -> Span:
    """(keep start, keep stop, region start, region stop) of tile `index` along one axis."""
    return _span_within(index, tile, margin, (0, length), length)


def _span_within(
    index: tf.Tensor, tile: tf.Tensor, margin: int, within: tuple, length: tf.Tensor
) -> Span:
    """`_span` of tile `index` of a grid that covers only `within` (start, stop) of the axis;
    the region's margin still reaches as far as the axis's `length`."""
    start = within[0] + index * tile
    stop = tf.minimum(within[1], start + tile)
    return start, stop, tf.maximum(0, start - margin), tf.minimum(length, stop + margin)


def _for_each(count: tf.Tensor, body: Callable, arrays: tuple[tf.TensorArray, ...]) -> tuple:
    """`arrays = body(index, *arrays)` for index in [0, count), one index at a time.

    TF.js runs a loop's steps as far ahead as their inputs allow: with a test on the index
    alone, it would cut every tile's region (and read the style's maps for each) before the
    first tile's work is done, and hold them all. So the test also waits for the arrays the
    step before wrote, through their length: at most `count` (in TF.js, the elements written
    so far; in TensorFlow, the size), so the test is the same."""

    def more(index: tf.Tensor, arrays: tuple) -> tf.Tensor:
        written = tf.raw_ops.TensorListLength(input_handle=arrays[0].flow)
        return index < tf.maximum(count, written)

    _, arrays = tf.while_loop(
        more,
        lambda index, arrays: (index + 1, body(index, *arrays)),
        (tf.constant(0), arrays),
    )
    return arrays


def _for_each_tile(rows: tf.Tensor, columns: tf.Tensor, body: Callable, arrays: tuple) -> tuple:
    """`_for_each` over the tiles of a grid, largest region first: the inner rows and columns
    (margins on both sides), then the first, then the last (cut short by the image's edge).
    TF.js's wasm heap never shrinks and grows whenever a tensor is larger than every free
    block, so tiles that never grow let each reuse the memory of the one before."""

    def position(step: tf.Tensor, count: tf.Tensor) -> tf.Tensor:
        return tf.where(step < count - 2, step + 1, tf.where(step == count - 2, 0, count - 1))

    def tile(step: tf.Tensor, *arrays) -> tuple:
        row, column = position(step // columns, rows), position(step % columns, columns)
        return body(row * columns + column, *arrays)

    return _for_each(rows * columns, tile, arrays)


def empty_cells(channels: int, count: tf.Tensor | int) -> tf.TensorArray:
    """An empty TensorArray for `count` cells of a map with `channels`."""
    shape = tf.TensorShape([1, channels, None, None])
    return tf.TensorArray(tf.float32, size=count, element_shape=shape, infer_shape=False)


def _padded(part: tf.Tensor, side: tf.Tensor) -> tf.Tensor:
    """[1, C, h, w] -> [1, C, side, side], zeros below and to the right."""
    shape = tf.shape(part)
    return tf.pad(part, [[0, 0], [0, 0], [0, side - shape[2]], [0, side - shape[3]]])


def _kept(out: tf.Tensor, rows: Span, columns: Span, stride: int) -> tf.Tensor:
    """A tile's output cut to its kept part; spans in input units, `stride` of them per
    output position (see `sanet.tiling._keep`)."""
    (top, bottom, region_top, _), (left, right, region_left, _) = rows, columns
    y, x = (top - region_top) // stride, (left - region_left) // stride
    height = _ceil_div(bottom, stride) - top // stride
    width = _ceil_div(right, stride) - left // stride
    return out[:, :, y : y + height, x : x + width]


def encode(
    encoder: Callable[[tf.Tensor], tuple[tf.Tensor, tf.Tensor]],
    image: tf.TensorArray,
    size: tuple[tf.Tensor, tf.Tensor],
    tile: tf.Tensor,
    margin: int,
    channels: int,
) -> tuple[Cells, Cells]:
    """relu4_1 and relu5_1 of the held image [H, W, 3] of `size`, tile by tile (`tile` in
    pixels, a multiple of ALIGN; `margin` the encoder's)."""
    grid = _grid(size, tile)
    columns, count = grid[1], grid[0] * grid[1]

    def body(index: tf.Tensor, cells4_1: tf.TensorArray, cells5_1: tf.TensorArray) -> tuple:
        rows = _span(index // columns, tile, margin, size[0])
        cols = _span(index % columns, tile, margin, size[1])
        relu4_1, relu5_1 = _encoded(encoder, image, rows, cols)
        return (
            cells4_1.write(index, _padded(relu4_1, tile // 8)),
            cells5_1.write(index, _padded(relu5_1, tile // 16)),
        )

    arrays = _for_each_tile(
        *grid, body, (empty_cells(channels, count), empty_cells(channels, count))
    )
    return cells_of(arrays, size, tile)


def _encoded(
    encoder: Callable[[tf.Tensor], tuple[tf.Tensor, tf.Tensor]],
    image: tf.TensorArray,
    rows: Span,
    columns: Span,
) -> tuple[tf.Tensor, tf.Tensor]:
    """relu4_1 and relu5_1 of the kept part of a tile of the held image [H, W, 3], encoded on
    its region (`rows` and `columns`: `_span`s in pixels)."""
    region = image.read(0)[rows[2] : rows[3], columns[2] : columns[3]]
    relu4_1, relu5_1 = encoder(tf.transpose(region, [2, 0, 1])[tf.newaxis])
    return (
        _kept(relu4_1, rows, columns, RELU4_1_STRIDE),
        _kept(relu5_1, rows, columns, RELU5_1_STRIDE),
    )


def _map_size(size: tuple, stride: int) -> tuple[tf.Tensor, tf.Tensor]:
    """(h, w) of the map with `stride` pixels per position of an image of `size` pixels."""
    return _ceil_div(size[0], stride), _ceil_div(size[1], stride)


def _as_cells(array: tf.TensorArray, size: tuple, tile: tf.Tensor, stride: int) -> Cells:
    return Cells(array, _map_size(size, stride), tile // stride)


def cells_of(arrays: tuple, size: tuple, tile: tf.Tensor) -> tuple[Cells, Cells]:
    """The relu4_1 and relu5_1 Cells of an image of `size` pixels in `tile`s, from their
    TensorArrays (what a loop or a branch carries)."""
    return _as_cells(arrays[0], size, tile, RELU4_1_STRIDE), _as_cells(
        arrays[1], size, tile, RELU5_1_STRIDE
    )


def split(
    features: tf.TensorArray, size: tuple, tile: tf.Tensor, stride: int, channels: int
) -> tf.TensorArray:
    """The held map [1, C, h, w] of an image of `size` pixels, cut into the cells of
    `tile`-pixel tiles; returns their TensorArray."""
    side = tile // stride
    rows, columns = _grid(_map_size(size, stride), side)
    count = rows * columns

    def body(index: tf.Tensor, array: tf.TensorArray) -> tuple:
        top, left = (index // columns) * side, (index % columns) * side
        part = features.read(0)[:, :, top : top + side, left : left + side]
        return (array.write(index, _padded(part, side)),)

    (array,) = _for_each(count, body, (empty_cells(channels, count),))
    return array


def _grid(size: tuple, side: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Rows and columns of cells of `side` positions over a map of `size`."""
    return _ceil_div(size[0], side), _ceil_div(size[1], side)


def _valid(cells: Cells, cell: tf.Tensor, index: tf.Tensor) -> tf.Tensor:
    """The part of cell `index` inside the map (cells at the bottom and right are padded)."""
    _, columns = _grid(cells.size, cells.side)
    height = tf.minimum(cells.side, cells.size[0] - (index // columns) * cells.side)
    width = tf.minimum(cells.side, cells.size[1] - (index % columns) * cells.side)
    return cell[:, :, :height, :width]


def channel_statistics(cells: Cells) -> tuple[tf.Tensor, tf.Tensor]:
    """`sanet.attention.channel_statistics` of the whole map: per-channel mean and unbiased
    standard deviation with EPS, [1, C, 1, 1] each, summed cell by cell."""
    rows, columns = _grid(cells.size, cells.side)
    count = tf.cast(cells.size[0] * cells.size[1], tf.float32)

    def summed(value: Callable[[tf.Tensor], tf.Tensor]) -> tf.Tensor:
        def body(index: tf.Tensor, sums: tf.TensorArray) -> tuple:
            cell = _valid(cells, cells.array.read(index), index)
            return (sums.write(index, tf.reduce_sum(value(cell), axis=[2, 3], keepdims=True)),)

        sums = tf.TensorArray(tf.float32, size=rows * columns, element_shape=[1, None, 1, 1])
        (sums,) = _for_each(rows * columns, body, (sums,))
        return tf.reduce_sum(sums.stack(), axis=0)  # [1, C, 1, 1]

    mean = summed(lambda cell: cell) / count
    variance = summed(lambda cell: tf.square(cell - mean)) / (count - 1.0)
    return mean, tf.sqrt(variance + EPS)


def whole(cells: Cells) -> tf.Tensor:
    """The map [1, C, h, w], assembled from its cells."""
    rows, columns = _grid(cells.size, cells.side)
    stacked = cells.array.stack()  # [rows * columns, 1, C, side, side]
    channels = tf.shape(stacked)[2]
    grid = tf.reshape(stacked, [rows, columns, channels, cells.side, cells.side])
    grid = tf.transpose(grid, [2, 0, 3, 1, 4])  # [C, rows, side, columns, side]
    features = tf.reshape(grid, [1, channels, rows * cells.side, columns * cells.side])
    return features[:, :, : cells.size[0], : cells.size[1]]


def region(cells: Cells, index: tf.Tensor, margin: int) -> tf.Tensor:
    """Cell `index` with `margin` positions of its neighbours' on each side that has them:
    the map on `_span`'s region of that tile (`margin` at most the side)."""
    rows, columns = _grid(cells.size, cells.side)
    row, column = index // columns, index % columns

    def extent(position: tf.Tensor, count: tf.Tensor, length: tf.Tensor) -> tuple:
        """Along one axis: the spans taken from the previous cell, this one and the next."""
        before = tf.cast(position > 0, tf.int32) * margin
        after = tf.cast(position < count - 1, tf.int32) * margin
        here = tf.minimum(cells.side, length - position * cells.side)
        following = tf.minimum(after, length - (position + 1) * cells.side)
        return (cells.side - before, cells.side), (0, here), (0, tf.maximum(following, 0))

    vertical = extent(row, rows, cells.size[0])
    horizontal = extent(column, columns, cells.size[1])
    strips = []
    for dy, (top, bottom) in zip((-1, 0, 1), vertical, strict=True):
        parts = []
        for dx, (left, right) in zip((-1, 0, 1), horizontal, strict=True):
            at = tf.clip_by_value(row + dy, 0, rows - 1) * columns + tf.clip_by_value(
                column + dx, 0, columns - 1
            )
            parts.append(cells.array.read(at)[:, :, top:bottom, left:right])
        strips.append(tf.concat(parts, 3))
    return tf.concat(strips, 2)


def decode(
    features: Callable[[tf.Tensor, Span, Span], tf.Tensor],
    decoder: Callable[[tf.Tensor], tf.Tensor],
    size: tuple[tf.Tensor, tf.Tensor],
    side: tf.Tensor,
    margin: int,
) -> tf.TensorArray:
    """The decoded image of a relu4_1 map of `size`, tile by tile (`side` positions a tile),
    as its tiles [8 side, 8 side, 3] (`assemble` joins them): `features(index, rows, columns)`
    is the decoder's input on tile `index`'s region (spans in relu4_1 positions, `margin` the
    features margin)."""
    rows, columns = _grid(size, side)
    pixels_side = RELU4_1_STRIDE * side

    def body(index: tf.Tensor, tiles: tf.TensorArray) -> tuple:
        spans = (
            _span(index // columns, side, margin, size[0]),
            _span(index % columns, side, margin, size[1]),
        )
        image = decoder(features(index, *spans))
        pixels = [tuple(RELU4_1_STRIDE * end for end in span) for span in spans]
        tile = _padded(_kept(image, *pixels, 1), pixels_side)[0]
        return (tiles.write(index, tf.transpose(tile, [1, 2, 0])),)

    image_size = (RELU4_1_STRIDE * size[0], RELU4_1_STRIDE * size[1])
    (tiles,) = _for_each_tile(rows, columns, body, (image_tiles(image_size, pixels_side),))
    return tiles


def moments(
    encoder: Callable[[tf.Tensor], tuple[tf.Tensor, tf.Tensor]],
    image: tf.TensorArray,
    size: tuple[tf.Tensor, tf.Tensor],
    tile: tf.Tensor,
    margin: int,
    region: tf.Tensor,
) -> tf.Tensor:
    """The moments ([2, 3, C]: for relu4_1 and relu5_1, the count, mean and sum of squared
    deviations of each channel) of the maps of the held image [H, W, 3] of `size` at the
    positions that `region` covers ([top, left, bottom, right] pixels; top and left on the
    ALIGN grid, bottom and right too or at the image's edge), tile by tile over the region
    alone (each tile encoded with `margin` pixels more where the image has them), holding
    neither map: each tile's moments, combined at the end (`combined`)."""
    top, left, bottom, right = region[0], region[1], region[2], region[3]
    grid = _ceil_div(bottom - top, tile), _ceil_div(right - left, tile)
    columns = grid[1]

    def part_moments(part: tf.Tensor) -> tf.Tensor:
        """[1, C, h, w] -> [3, C]."""
        shape = tf.shape(part)
        mean = tf.reduce_mean(part, axis=[0, 2, 3])
        squares = tf.reduce_sum(tf.square(part - mean[:, tf.newaxis, tf.newaxis]), [0, 2, 3])
        count = tf.fill(tf.shape(mean), tf.cast(shape[2] * shape[3], tf.float32))
        return tf.stack([count, mean, squares])

    def body(index: tf.Tensor, parts4_1: tf.TensorArray, parts5_1: tf.TensorArray) -> tuple:
        rows = _span_within(index // columns, tile, margin, (top, bottom), size[0])
        cols = _span_within(index % columns, tile, margin, (left, right), size[1])
        relu4_1, relu5_1 = _encoded(encoder, image, rows, cols)
        return parts4_1.write(index, part_moments(relu4_1)), parts5_1.write(
            index, part_moments(relu5_1)
        )

    def parts() -> tf.TensorArray:
        return tf.TensorArray(tf.float32, size=grid[0] * columns, element_shape=[3, None])

    arrays = _for_each_tile(*grid, body, (parts(), parts()))
    return tf.stack([combined(array.stack()) for array in arrays])


def combined(parts: tf.Tensor) -> tf.Tensor:
    """The moments [3, C] of a map from its parts' [n, 3, C] (count, mean, sum of squared
    deviations): the spread within the parts plus the spread of their means (the pairwise
    rule of `sanet.tiling._Moments`, for all parts at once)."""
    counts, means, squares = parts[:, 0], parts[:, 1], parts[:, 2]
    total = tf.reduce_sum(counts, axis=0)
    mean = tf.reduce_sum(counts * means, axis=0) / total
    spread = tf.reduce_sum(squares, axis=0) + tf.reduce_sum(counts * tf.square(means - mean), 0)
    return tf.stack([total, mean, spread])


def statistics(moments: tf.Tensor) -> tuple[tf.Tensor, ...]:
    """`channel_statistics` (mean4_1, std4_1, mean5_1, std5_1: [1, C, 1, 1] each) from the
    moments [2, 3, C] of relu4_1 and relu5_1: the unbiased standard deviation with EPS."""
    values = []
    for layer in (0, 1):
        count, mean, squares = moments[layer, 0], moments[layer, 1], moments[layer, 2]
        std = tf.sqrt(squares / (count - 1.0) + EPS)
        values += [tf.reshape(mean, [1, -1, 1, 1]), tf.reshape(std, [1, -1, 1, 1])]
    return tuple(values)


def encoded_region(
    encoder: Callable[[tf.Tensor], tuple[tf.Tensor, tf.Tensor]],
    image: tf.TensorArray,
    size: tuple[tf.Tensor, tf.Tensor],
    rows: Span,
    columns: Span,
    margin: int,
) -> tuple[tf.Tensor, tf.Tensor]:
    """relu4_1 and relu5_1 on a decoder tile's region (`rows` and `columns`: `_span`s in
    relu4_1 positions, region starts on relu5_1's grid), encoded from the held image [H, W, 3]
    of `size` with `margin` pixels more on each cut side (`sanet.tiling.Tiling.stream`)."""

    def pixels(span: Span, length: tf.Tensor) -> Span:
        start = RELU4_1_STRIDE * span[2]
        stop = tf.minimum(length, RELU4_1_STRIDE * span[3])
        return start, stop, tf.maximum(0, start - margin), tf.minimum(length, stop + margin)

    return _encoded(encoder, image, pixels(rows, size[0]), pixels(columns, size[1]))


def image_tiles(size: tuple, tile: tf.Tensor) -> tf.TensorArray:
    """An empty TensorArray for the tiles of an image of `size` pixels, [tile, tile, 3] each."""
    rows, columns = _grid(size, tile)
    shape = tf.TensorShape([None, None, 3])
    return tf.TensorArray(tf.float32, size=rows * columns, element_shape=shape, infer_shape=False)


def assemble(tiles: tf.TensorArray, size: tuple, tile: tf.Tensor) -> tf.Tensor:
    """The image [size[0], size[1], 3] from its `tile`-pixel tiles (`decode`'s): laid out as
    an image, they join with a stack, one transpose and the cut to `size`."""
    rows, columns = _grid(size, tile)
    grid = tf.reshape(tiles.stack(), [rows, columns, tile, tile, 3])
    grid = tf.transpose(grid, [0, 2, 1, 3, 4])  # [rows, tile, columns, tile, 3]
    image = tf.reshape(grid, [rows * tile, columns * tile, 3])
    return image[: size[0], : size[1]]
