"""Full resolution in bounded memory: the encoder and the decoder in overlapping tiles, the
attention in chunks of content positions. The result equals the untiled model's up to float
rounding, for any image size.

- The attention treats each content position on its own (its keys and values are the
  style's), so chunks of positions give the same rows. The mean-variance normalisation needs
  per-channel statistics of the whole content map: the transform runs on the whole relu4_1 and
  relu5_1 maps (1/64 and 1/256 of the pixels, times 512 channels), chunked inside.
- The encoder and the decoder are convolutions. A tile computed with a margin at least their
  halo (how far the reflection padding at a cut edge reaches inward) has the untiled values in
  the part that is kept. Margins stop at the image's true borders, where the padding is the
  untiled one.
- Tile origins and the cut edges of every region are multiples of ALIGN = 16 pixels, so the
  encoder's four 2x2 ceil-mode poolings see the untiled grid and the decoder's x2 upsamplings
  put each feature on the pixels it covers untiled.
"""

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from itertools import product

from torch import Tensor, nn

from sanet.decoder import Decoder
from sanet.encoder import RELU4_1, CeilMaxPool, Encoder
from sanet.transform import Transform

ALIGN = 16  # pixels: 2**4 for the encoder's four poolings
RELU4_1_STRIDE = 8  # pixels per relu4_1 position (the decoder's input)
RELU5_1_STRIDE = 16
MAX_TILE = 1024  # pixels: larger tiles save little time (the margins' share is small)
MIN_TILE = 64  # pixels: smaller tiles would spend most of their time in the margins
# Attention scores per chunk (64 MB): 4096 content positions against a 512 px style's 4096;
# larger chunks save no time, and the memory stays flat whatever the image's size.
MAX_CHUNK_SCORES = 2**24
# What a tiled run holds whole, besides one tile or one attention chunk (measured: see
# docs/how-it-works.md#full-resolution): float [H, W, 3] images (input, resized, decoded,
# output and its conversions) and relu4_1-sized feature maps in the transform.
IMAGE_COPIES = 6
HELD_MAPS = 8
BLEND_MAPS = 3  # more for strength < 1: the identity transform, the content's keys and values


def halo(layers: Sequence[nn.Module]) -> Fraction:
    """How deep, in input positions, the values next to a cut edge of the input differ in the
    output of `layers`: each k x k convolution (after its reflection pad) reaches k // 2
    positions further at its level, a 2x2 pooling halves the depth (rounding up: the grid is
    aligned), and a x2 upsampling doubles it."""
    depth, stride = 0, Fraction(1)
    for layer in layers:
        if isinstance(layer, nn.Conv2d):
            depth += layer.kernel_size[0] // 2
        elif isinstance(layer, CeilMaxPool):
            depth, stride = math.ceil(depth / 2), stride * 2
        elif isinstance(layer, nn.Upsample):
            depth, stride = depth * 2, stride / 2
    return depth * stride


def encoder_margin(encoder: Encoder) -> int:
    """Pixels of context a tile needs on each cut side for exact relu4_1 and relu5_1."""
    layers = list(encoder)
    reach = max(halo(layers[:RELU4_1]), halo(layers))
    return ALIGN * math.ceil(reach / ALIGN)


def decoder_margin(decoder: Decoder) -> int:
    """relu4_1 positions of context a tile needs on each cut side for an exact image."""
    return math.ceil(halo(list(decoder)))


def features_margin(transform: Transform, decoder: Decoder) -> int:
    """relu4_1 positions of context a tile needs on each cut side when the transform and the
    decoder run on it one after the other (the serving signature's tiles): the decoder's
    margin plus the merge convolution's reach, rounded up to even so that the relu5_1 part
    of the tile starts on relu5_1's grid."""
    reach = decoder_margin(decoder) + halo([transform.merge_conv])
    return 2 * math.ceil(reach / 2)


def _spans(length: int, tile: int, margin: int) -> Iterator[tuple[int, int, int, int]]:
    """Along one axis: (keep start, keep stop, region start, region stop) of each tile."""
    for start in range(0, length, tile):
        stop = min(length, start + tile)
        yield start, stop, max(0, start - margin), min(length, stop + margin)


@dataclass
class Tiling:
    """How to run a stylization in tiles and chunks. Sides in pixels; `step` hears each tile."""

    tile: int  # kept side of a tile, pixels, a multiple of ALIGN
    chunk: int  # content positions the attention takes at a time
    encoder_margin: int  # pixels, a multiple of ALIGN
    decoder_margin: int  # relu4_1 positions
    step: Callable[[], None] | None = None

    def __post_init__(self) -> None:
        # Off the grid, a pooling would pair different pixels than untiled.
        if self.tile <= 0 or self.tile % ALIGN or self.encoder_margin % ALIGN:
            raise ValueError(f"tiles must be a positive multiple of {ALIGN} px, margins a multiple")

    def tiles(self, size: tuple[int, int]) -> int:
        """How many tiles one encoding (or one decoding) of an image this size runs."""
        return math.ceil(size[0] / self.tile) * math.ceil(size[1] / self.tile)

    def count(self, content: tuple[int, int], style: tuple[int, int], iterations: int) -> int:
        """Tiles a whole stylization runs: the style's once, the content's twice a pass."""
        return self.tiles(style) + 2 * iterations * self.tiles(content)

    def encode(self, encoder: Encoder, image: Tensor) -> tuple[Tensor, Tensor]:
        """`encoder(image)`, tile by tile."""
        height, width = image.shape[2:]
        relu4_1 = relu5_1 = None
        for rows, cols in product(
            _spans(height, self.tile, self.encoder_margin),
            _spans(width, self.tile, self.encoder_margin),
        ):
            out4_1, out5_1 = encoder(image[:, :, rows[2] : rows[3], cols[2] : cols[3]])
            if relu4_1 is None or relu5_1 is None:
                relu4_1 = _empty(out4_1, height, width, RELU4_1_STRIDE)
                relu5_1 = _empty(out5_1, height, width, RELU5_1_STRIDE)
            _keep(relu4_1, out4_1, rows, cols, RELU4_1_STRIDE)
            _keep(relu5_1, out5_1, rows, cols, RELU5_1_STRIDE)
            self._stepped()
        assert relu4_1 is not None and relu5_1 is not None
        return relu4_1, relu5_1

    def decode(self, decoder: Decoder, features: Tensor) -> Tensor:
        """`decoder(features)`, tile by tile: [N, C, h, w] -> [N, 3, 8h, 8w]."""
        height, width = features.shape[2:]
        tile = self.tile // RELU4_1_STRIDE
        image = None
        for rows, cols in product(
            _spans(height, tile, self.decoder_margin), _spans(width, tile, self.decoder_margin)
        ):
            out = decoder(features[:, :, rows[2] : rows[3], cols[2] : cols[3]])
            if image is None:
                image = _empty(out, height, width, Fraction(1, RELU4_1_STRIDE))
            # The decoder's output has RELU4_1_STRIDE pixels per input position.
            _keep(image, out, _pixels(rows), _pixels(cols), 1)
            self._stepped()
        assert image is not None
        return image

    def _stepped(self) -> None:
        if self.step:
            self.step()


def _empty(like: Tensor, height: int, width: int, stride: int | Fraction) -> Tensor:
    """A tensor for the whole output, of `like`'s kind, `stride` input positions per output."""
    return like.new_empty(*like.shape[:2], math.ceil(height / stride), math.ceil(width / stride))


def _pixels(span: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """A span in relu4_1 positions as a span in image pixels."""
    start, stop, region_start, region_stop = (RELU4_1_STRIDE * side for side in span)
    return start, stop, region_start, region_stop


def _keep(
    target: Tensor,
    source: Tensor,
    rows: tuple[int, int, int, int],
    cols: tuple[int, int, int, int],
    stride: int,
) -> None:
    """Copy a tile's kept part to `target`, which has `stride` input pixels per position.
    `rows` and `cols` are spans in input pixels (see `_spans`); they start on the stride's
    grid, and only the image's last span may end off it."""
    (top, bottom, region_top, _), (left, right, region_left, _) = rows, cols
    r0, r1 = top // stride, math.ceil(bottom / stride)
    c0, c1 = left // stride, math.ceil(right / stride)
    y, x = (top - region_top) // stride, (left - region_left) // stride
    target[:, :, r0:r1, c0:c1] = source[:, :, y : y + r1 - r0, x : x + c1 - c0]


def _positions(size: tuple[int, int]) -> int:
    return math.ceil(size[0] / RELU4_1_STRIDE) * math.ceil(size[1] / RELU4_1_STRIDE)


def held_floats(
    content: tuple[int, int], style: tuple[int, int], widths: tuple[int, int, int, int], blend: bool
) -> int:
    """Floats a tiled stylization holds whole: images and relu4_1-sized feature maps.
    `blend`: strength < 1 (the content-content transform)."""
    maps = widths[3] * (
        (HELD_MAPS + BLEND_MAPS * blend) * _positions(content) + HELD_MAPS * _positions(style)
    )
    return maps + 3 * IMAGE_COPIES * (content[0] * content[1] + style[0] * style[1])


def _keys(content: tuple[int, int], style: tuple[int, int], blend: bool) -> int:
    """Key positions of the largest attention: the content's own for strength < 1."""
    return max(_positions(style), _positions(content) if blend else 0)


def tiled_floats(
    content: tuple[int, int],
    style: tuple[int, int],
    widths: tuple[int, int, int, int],
    blend: bool,
    tiling: Tiling,
) -> int:
    """Peak floats alive in a tiled stylization: what it holds whole, plus the larger of one
    encoder tile's activations (the decoder's tiles have smaller margins) and one attention
    chunk (its scores, their softmax and a transposed copy)."""
    side = tiling.tile + 2 * tiling.encoder_margin
    region = max(min(side, size[0]) * min(side, size[1]) for size in (content, style))
    attention = 3 * tiling.chunk * _keys(content, style, blend)
    return held_floats(content, style, widths, blend) + max(attention, 3 * widths[0] * region)


def plan_tiling(
    encoder: Encoder,
    decoder: Decoder,
    widths: tuple[int, int, int, int],
    content: tuple[int, int],
    style: tuple[int, int],
    blend: bool,
    budget_floats: int,
) -> tuple[Tiling, int]:
    """The largest tiles and chunks whose peak fits `budget_floats`, and that peak in floats;
    when nothing fits, the smallest tiling and its peak (over the budget)."""
    margins = encoder_margin(encoder), decoder_margin(decoder)
    spare = budget_floats - held_floats(content, style, widths, blend)
    queries = max(_positions(content), _positions(style))
    keys = _keys(content, style, blend)
    chunk = max(1, min(queries, MAX_CHUNK_SCORES // keys, spare // (3 * keys)))
    largest = max(MIN_TILE, min(MAX_TILE, ALIGN * math.ceil(max(*content, *style) / ALIGN)))
    for tile in range(largest, MIN_TILE - 1, -ALIGN):
        tiling = Tiling(tile, chunk, *margins)
        needed = tiled_floats(content, style, widths, blend, tiling)
        if needed <= budget_floats:
            return tiling, needed
    smallest = Tiling(MIN_TILE, 1, *margins)
    return smallest, tiled_floats(content, style, widths, blend, smallest)
