"""Full resolution in bounded memory: the encoder and the decoder in overlapping tiles, the
attention in chunks of content positions. The result equals the untiled model's up to float
rounding, for any image size.

- The attention treats each content position on its own (its keys and values are the
  style's), so chunks of positions give the same rows. The mean-variance normalisation needs
  per-channel statistics of the whole content map: the transform runs on the whole relu4_1 and
  relu5_1 maps (1/64 and 1/256 of the pixels, times 512 channels), chunked inside.
- A *streamed* tiling holds neither map, so that its memory does not grow with the photo: a
  first pass over the encoder's tiles only gathers the maps' statistics, then each decoder
  tile encodes its own region again and runs the transform on it with those statistics. It
  encodes the content twice, and it cannot attend the content to itself (a strength below 1
  or a mask), which needs all the content's positions at once.
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

import torch
from torch import Tensor, nn

from sanet.attention import EPS, Statistics
from sanet.decoder import Decoder
from sanet.encoder import RELU4_1, CeilMaxPool, Encoder
from sanet.request import tiled_pixels
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
# One tile's peak, in full-resolution activations of its region (widths[0] channels): the
# tensors, and what PyTorch's CPU convolutions hold besides them. Measured 7.3 on the full-size
# model (streamed 512 and 256 px tiles, 1 and 4 MP, whose peak grew with the region's area).
TILE_ACTIVATION_COPIES = 8
# Decoder input for a region of relu4_1 maps: the transform, as the serving signature's tiles.
Features = Callable[[Tensor, Tensor], Tensor]


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
    """How to run a stylization in tiles and chunks. Sides in pixels; `step` hears each tile.
    `streamed`: hold no content map (see the module's docstring); its decoder tiles then take
    `decoder_margin` from `features_margin`."""

    tile: int  # kept side of a tile, pixels, a multiple of ALIGN
    chunk: int  # content positions the attention takes at a time
    encoder_margin: int  # pixels, a multiple of ALIGN
    decoder_margin: int  # relu4_1 positions
    step: Callable[[], None] | None = None
    streamed: bool = False

    def __post_init__(self) -> None:
        # Off the grid, a pooling would pair different pixels than untiled.
        if self.tile <= 0 or self.tile % ALIGN or self.encoder_margin % ALIGN:
            raise ValueError(f"tiles must be a positive multiple of {ALIGN} px, margins a multiple")
        # A streamed region must start on relu5_1's grid, as its tile does.
        if self.streamed and self.decoder_margin % (RELU5_1_STRIDE // RELU4_1_STRIDE):
            raise ValueError("a streamed tiling's decoder margin must be even")

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

    def statistics(self, encoder: Encoder, image: Tensor) -> tuple[Statistics, Statistics]:
        """`channel_statistics` of `encoder(image)`'s relu4_1 and relu5_1, tile by tile,
        holding neither map."""
        height, width = image.shape[2:]
        moments4_1, moments5_1 = _Moments(), _Moments()
        for rows, cols in product(
            _spans(height, self.tile, self.encoder_margin),
            _spans(width, self.tile, self.encoder_margin),
        ):
            out4_1, out5_1 = encoder(image[:, :, rows[2] : rows[3], cols[2] : cols[3]])
            moments4_1.add(_cut(out4_1, rows, cols, RELU4_1_STRIDE))
            moments5_1.add(_cut(out5_1, rows, cols, RELU5_1_STRIDE))
            self._stepped()
        return moments4_1.statistics(), moments5_1.statistics()

    def stream(
        self, encoder: Encoder, features: Features, decoder: Decoder, image: Tensor
    ) -> Tensor:
        """`decoder(features(*encoder(image)))`, tile by tile, holding neither map: each
        decoder tile encodes its region (its relu4_1 positions and `decoder_margin` more on
        each cut side, from their pixels and `encoder_margin` more) and transforms it.
        [N, 3, H, W] -> [N, 3, 8h, 8w] with h, w relu4_1's sides."""
        height, width = image.shape[2:]
        tile = self.tile // RELU4_1_STRIDE
        decoded = None
        for rows, cols in product(
            _spans(math.ceil(height / RELU4_1_STRIDE), tile, self.decoder_margin),
            _spans(math.ceil(width / RELU4_1_STRIDE), tile, self.decoder_margin),
        ):
            # The region's pixels as a kept span, and with the encoder's margins around it.
            region_rows = _encoded(rows, height, self.encoder_margin)
            region_cols = _encoded(cols, width, self.encoder_margin)
            pixels = image[:, :, region_rows[2] : region_rows[3], region_cols[2] : region_cols[3]]
            out4_1, out5_1 = encoder(pixels)
            out = decoder(
                features(
                    _cut(out4_1, region_rows, region_cols, RELU4_1_STRIDE),
                    _cut(out5_1, region_rows, region_cols, RELU5_1_STRIDE),
                )
            )
            if decoded is None:
                decoded = _empty(out, *_map_side(height, width), Fraction(1, RELU4_1_STRIDE))
            _keep(decoded, out, _pixels(rows), _pixels(cols), 1)
            self._stepped()
        assert decoded is not None
        return decoded

    def _stepped(self) -> None:
        if self.step:
            self.step()


class _Moments:
    """Per-channel count, mean and sum of squared deviations of a map's parts [N, C, h, w],
    combined part by part (Chan, Golub and LeVeque's pairwise update) in float64."""

    def __init__(self) -> None:
        self.count = 0
        self.mean = self.squares = torch.zeros(())

    def add(self, part: Tensor) -> None:
        count = part.shape[2] * part.shape[3]
        mean = part.double().mean(dim=(2, 3), keepdim=True)
        squares = (part.double() - mean).square().sum(dim=(2, 3), keepdim=True)
        total = self.count + count
        delta = mean - self.mean
        self.mean = self.mean + delta * (count / total)
        self.squares = self.squares + squares + delta.square() * (self.count * count / total)
        self.count = total

    def statistics(self) -> Statistics:
        """As `channel_statistics`: the mean and the unbiased standard deviation with EPS."""
        std = (self.squares / (self.count - 1) + EPS).sqrt()
        return self.mean.float(), std.float()


def _map_side(height: int, width: int) -> tuple[int, int]:
    return math.ceil(height / RELU4_1_STRIDE), math.ceil(width / RELU4_1_STRIDE)


def _encoded(
    span: tuple[int, int, int, int], length: int, margin: int
) -> tuple[int, int, int, int]:
    """A decoder tile's region (a span in relu4_1 positions) as the span of pixels to keep from
    the encoder, with `margin` pixels more on each side to encode (see `_spans`)."""
    start, stop = RELU4_1_STRIDE * span[2], min(length, RELU4_1_STRIDE * span[3])
    return start, stop, max(0, start - margin), min(length, stop + margin)


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
    """Copy a tile's kept part to `target`, which has `stride` input pixels per position."""
    (top, bottom, _, _), (left, right, _, _) = rows, cols
    r0, r1 = top // stride, math.ceil(bottom / stride)
    c0, c1 = left // stride, math.ceil(right / stride)
    target[:, :, r0:r1, c0:c1] = _cut(source, rows, cols, stride)


def _cut(
    source: Tensor, rows: tuple[int, int, int, int], cols: tuple[int, int, int, int], stride: int
) -> Tensor:
    """A tile's kept part of `source`, which has `stride` input pixels per position. `rows` and
    `cols` are spans in input pixels (see `_spans`); they start on the stride's grid, and only
    the image's last span may end off it."""
    (top, bottom, region_top, _), (left, right, region_left, _) = rows, cols
    y, x = (top - region_top) // stride, (left - region_left) // stride
    height = math.ceil(bottom / stride) - top // stride
    width = math.ceil(right / stride) - left // stride
    return source[:, :, y : y + height, x : x + width]


def _positions(size: tuple[int, int]) -> int:
    return math.ceil(size[0] / RELU4_1_STRIDE) * math.ceil(size[1] / RELU4_1_STRIDE)


def held_floats(
    content: tuple[int, int],
    style: tuple[int, int],
    widths: tuple[int, int, int, int],
    blend: bool,
    streamed: bool = False,
) -> int:
    """Floats a tiled stylization holds whole: images and relu4_1-sized feature maps.
    `blend`: strength < 1 (the content-content transform); `streamed`: no content map."""
    content_maps = 0 if streamed else (HELD_MAPS + BLEND_MAPS * blend) * _positions(content)
    maps = widths[3] * (content_maps + HELD_MAPS * _positions(style))
    return maps + 3 * IMAGE_COPIES * (content[0] * content[1] + style[0] * style[1])


def _keys(content: tuple[int, int], style: tuple[int, int], blend: bool) -> int:
    """Key positions of the largest attention: the content's own for strength < 1."""
    return max(_positions(style), _positions(content) if blend else 0)


def _region(size: tuple[int, int], side: int) -> tuple[int, int]:
    """A tile of `side` pixels with its margins, cut to an image of `size`."""
    return min(side, size[0]), min(side, size[1])


def tiled_floats(
    content: tuple[int, int],
    style: tuple[int, int],
    widths: tuple[int, int, int, int],
    blend: bool,
    tiling: Tiling,
) -> int:
    """Peak floats alive in a tiled stylization: what it holds whole, plus the larger of one
    encoder tile's activations (the decoder's tiles have smaller margins) and one attention
    chunk (its scores, their softmax and a transposed copy). A streamed tile also holds its
    region's maps; its region adds the decoder's margin to the encoder's."""
    side = tiling.tile + 2 * tiling.encoder_margin
    streamed = side + 2 * RELU4_1_STRIDE * tiling.decoder_margin if tiling.streamed else side
    regions = [_region(content, streamed), _region(style, side)]
    largest = max(height * width for height, width in regions)
    attention = 3 * tiling.chunk * _keys(content, style, blend)
    tile = TILE_ACTIVATION_COPIES * widths[0] * largest
    return _held(content, style, widths, blend, tiling) + max(attention, tile)


def _held(
    content: tuple[int, int],
    style: tuple[int, int],
    widths: tuple[int, int, int, int],
    blend: bool,
    tiling: Tiling,
) -> int:
    """`held_floats`, and a streamed tile's own maps, on its region."""
    held = held_floats(content, style, widths, blend, tiling.streamed)
    if not tiling.streamed:
        return held
    side = tiling.tile + 2 * (tiling.encoder_margin + RELU4_1_STRIDE * tiling.decoder_margin)
    return held + HELD_MAPS * widths[3] * _positions(_region(content, side))


def tiled_work(size: tuple[int, int], tiling: Tiling) -> int:
    """`tiled_pixels` of `tiling` on an image of `size`: what `plan_tiling` compares by."""
    margins = tiling.encoder_margin, RELU4_1_STRIDE * tiling.decoder_margin
    return tiled_pixels(size, tiling.tile, margins, tiling.streamed)


def plan_tiling(
    transform: Transform,
    encoder: Encoder,
    decoder: Decoder,
    widths: tuple[int, int, int, int],
    content: tuple[int, int],
    style: tuple[int, int],
    blend: bool,
    budget_floats: int,
    streamed: bool | None = None,
) -> tuple[Tiling, int]:
    """The tiling whose peak fits `budget_floats` with the least work (`tiled_work`), and that
    peak in floats: the largest tiles that fit, holding the content's maps or streamed (never
    with `blend`); `streamed` True or False asks for one of the two. When nothing fits, the
    smallest tiling and its peak."""
    queries = max(_positions(content), _positions(style))
    keys = _keys(content, style, blend)
    largest = max(MIN_TILE, min(MAX_TILE, ALIGN * math.ceil(max(*content, *style) / ALIGN)))
    fitting, smallest = [], []
    modes = [mode for mode in (False, True) if streamed in (None, mode) and not (mode and blend)]
    for mode in modes or [False]:
        margin = features_margin(transform, decoder) if mode else decoder_margin(decoder)
        for tile in range(largest, MIN_TILE - 1, -ALIGN):
            tiling = Tiling(tile, 1, encoder_margin(encoder), margin, streamed=mode)
            spare = budget_floats - _held(content, style, widths, blend, tiling)
            tiling.chunk = max(1, min(queries, MAX_CHUNK_SCORES // keys, spare // (3 * keys)))
            needed = tiled_floats(content, style, widths, blend, tiling)
            if needed <= budget_floats:
                fitting.append((tiled_work(content, tiling), mode, tiling, needed))
                break
        least = Tiling(MIN_TILE, 1, encoder_margin(encoder), margin, streamed=mode)
        smallest.append((tiled_floats(content, style, widths, blend, least), mode, least))
    if fitting:
        _, _, tiling, needed = min(fitting, key=lambda plan: plan[:2])
        return tiling, needed
    needed, _, tiling = min(smallest, key=lambda plan: plan[:2])
    return tiling, needed
