"""The request rules: what sizes a stylization computes at, and its defaults and limits.

Defined here, once. The CLI and `Stylizer` follow them directly; the converter writes them
into the model's `metadata.json` (`request`), which is how the web page learns them. Plain
Python: the CLI reads it before loading anything heavy.
"""

import math

# The smallest side that reaches relu5_1 with room for its reflection padding:
# ceil(side / 16) >= 2. Smaller images are scaled up to it and the result scaled back.
MIN_SIDE = 17
# The longest side a stylization computes at when the caller does not say (the CLI, the API,
# the page's default): the resolution SANet was trained at.
DEFAULT_MAX_RESOLUTION = 512
# The largest working resolution the page offers for an untiled run.
MAX_RESOLUTION_LIMIT = 2048

# The creative controls (docs/controls.md, equations in sanet.controls). Each amount is in
# [CONTROL_MIN, CONTROL_MAX]; the defaults leave today's output unchanged.
CONTROL_MIN, CONTROL_MAX = 0.0, 1.0
# How far the output's chroma moves to the content's: 0 keeps the stylization's colours.
DEFAULT_KEEP_COLORS = 0.0
# The second style's weight when one is given (without one, the output is today's): an even mix.
DEFAULT_MIX = 0.5


BYTES_PER_FLOAT = 4
# estimate_memory_mb's copies: an attention's scores, their softmax and a transposed copy; the
# first block's activations before and after its ReLU and the next convolution's padded input.
ATTENTION_COPIES = 3
ACTIVATION_COPIES = 3
# estimate_tiled_memory_mb's copies, fitted to the wasm heap of TF.js after one run (the heap
# only grows: its size is the run's peak plus the allocator's growth steps): the full-size
# model at 2 and 12 megapixels in 256, 512 and 896 px tiles, and the small model in the page
# (docs/web-app.md "Full size"), each at least 10 % under its estimate. Whole: float [H, W, 3]
# images (the input, the decoded tiles, and joining, clipping and returning them) and the
# relu4_1 and relu5_1 maps (the cells); per tile: its activations at full resolution (padded
# input and convolution, and the blocks the heap grows by around them). Each pass after the
# first holds its input image and decoded tiles, and the content's maps, once more. Fixed, in
# MiB: the full model's weights twice (80 MiB of float32 in every variant: TF.js's tensors and
# XNNPACK's packed copy) and the heap's last growth step (emscripten grows it by at most 96 MiB
# past the request). The maps used to stand for that part too, which a streamed run, holding
# none, left out: 12 MP streamed in 256 px tiles measured 3 MiB over its estimate. And a
# streamed run's heap stops falling with its tiles below about 256 px on the full-size model:
# fitted, it counts one copy of the content's maps after all (12 MP streamed in 160 px tiles
# measured 1550 MiB of heap, 19 MiB over the estimate without it).
# A call of a request in pieces (convert/pieces.py) runs after the other calls, of two rounds on
# crops of several sizes (measuring, then stylizing, the photo's edges smaller): the heap keeps
# their freed blocks, which it cannot always reuse. Fitted, a fixed part more: the 12 MP photo
# in 272 px tiles measured 1022 MiB of heap in pieces of 1024 px and 988 in pieces of 768
# (0.99 and 1.04 of the estimate without it; the activations, which had covered it in larger
# tiles, are small in small ones). The extra did not shrink with the crop, so it is not counted
# by the crop's pixels.
TILED_FIXED_MB = 2 * 80 + 96
TILED_IMAGE_COPIES = 6
TILED_MAP_COPIES = 2
TILED_STREAM_MAP_COPIES = 1
TILED_ACTIVATION_COPIES = 9
TILED_PASS_IMAGE_COPIES = 2
TILED_PASS_MAP_COPIES = 1
TILED_PIECES_FIXED_MB = 192


def iterations_problem(value: int) -> str | None:
    """Why `value` is not an iteration count, or None."""
    return None if value >= 1 else f"must be at least 1, got {value}"


def amount_problem(value: float) -> str | None:
    """Why `value` is not an amount (strength, keep colours, mix), or None."""
    if CONTROL_MIN <= value <= CONTROL_MAX:
        return None
    return f"must be between {CONTROL_MIN:g} and {CONTROL_MAX:g}, got {value:g}"


def resolution_problem(value: int) -> str | None:
    """Why `value` is not a working resolution (0: as given), or None."""
    if value == 0 or value >= MIN_SIDE:
        return None
    return f"must be 0 (no limit) or at least {MIN_SIDE}, got {value}"


def rules() -> dict[str, int | float]:
    """The rules as plain values, for consumers outside Python (metadata.json)."""
    return {
        "min_side": MIN_SIDE,
        "default_max_resolution": DEFAULT_MAX_RESOLUTION,
        "max_resolution_limit": MAX_RESOLUTION_LIMIT,
        "control_min": CONTROL_MIN,
        "control_max": CONTROL_MAX,
        "default_keep_colors": DEFAULT_KEEP_COLORS,
        "default_mix": DEFAULT_MIX,
    }


def estimate_memory_mb(
    content: tuple[int, int],
    style: tuple[int, int],
    widths: tuple[int, int, int, int],
    blend: bool,
    style2: tuple[int, int] | None = None,
) -> int:
    """Peak working memory of one stylization, from the largest tensors alive at once.

    The attention matrices hold (H/8 * W/8) x (h/8 * w/8) floats at relu4_1 (and 1/16 of that
    at relu5_1); the scores, their softmax and a transposed copy can coexist. Full-resolution
    VGG activations (64 channels) dominate otherwise. `blend` adds the content-content attention
    that a strength below 1 or a mask needs, `style2` a second style's (its attention runs
    after the first's; its encoding while the first's features are held).
    """

    attention = _attention_floats(content, style, blend, style2)
    styles = style[0] * style[1] + (style2[0] * style2[1] if style2 else 0)
    activations = widths[0] * (content[0] * content[1] + styles)
    floats = ATTENTION_COPIES * attention + ACTIVATION_COPIES * activations
    return floats * BYTES_PER_FLOAT // 2**20


def estimate_tiled_memory_mb(
    content: tuple[int, int],
    style: tuple[int, int],
    widths: tuple[int, int, int, int],
    tile: int,
    margins: tuple[int, int],
    blend: bool,
    style2: tuple[int, int] | None = None,
    passes: int = 1,
    streamed: bool = False,
    pieces: bool = False,
) -> int:
    """Peak working memory of one stylization through the serving signature's `tile` input.

    `tile` is the kept side of a tile in pixels, on the signature's grid (`convert.tf_tiles`
    `tile_side`); `margins` are the encoder's and the features' in pixels (metadata.json
    `tiling`: encoder_margin, and features_margin times relu4_1_stride). Held whole: the
    weights, the images and every image's relu4_1 and relu5_1 maps. One tile at a time: the
    encoder's or the decoder's full-resolution activations on the tile with its margins, and
    the attention of the decoder tile's content positions over the style's. `blend` (strength
    below 1 or a mask) attends over ALL the content's positions for every tile: memory that
    grows with the image, not the tile. `passes`: the iterations. `streamed` (the signature's
    `stream`, never with `blend`): the content's maps are not held, each decoder tile
    encodes its region with both margins; the maps still count once (fitted). `pieces`: one
    call of a request in pieces, `content` the largest crop a call is sent; the heap also keeps
    the other calls' blocks (fitted: a fixed part more).
    """
    encoder_margin, features_margin = margins
    images = [image for image in (content, style, style2) if image]

    def region(size: tuple[int, int], margin: int) -> tuple[int, int]:
        """A tile with its margins, cut to the image."""
        return (min(size[0], tile + 2 * margin), min(size[1], tile + 2 * margin))

    decoded = region(content, features_margin)
    attention = _attention_floats(decoded, style, blend, style2, content)
    encoded = region(content, features_margin + encoder_margin) if streamed else decoded
    tiles = [region(image, encoder_margin) for image in images] + [encoded]
    activations = widths[0] * max(height * width for height, width in tiles)
    pixels = 3 * content[0] * content[1]
    content_maps = widths[3] * _maps(content)
    held_maps = 0 if streamed else content_maps
    maps = held_maps + widths[3] * sum(_maps(image) for image in images[1:])
    floats = (
        TILED_IMAGE_COPIES * pixels
        + TILED_MAP_COPIES * maps
        + (TILED_STREAM_MAP_COPIES * content_maps if streamed else 0)
        + TILED_ACTIVATION_COPIES * activations
        + ATTENTION_COPIES * attention
        + (passes - 1) * (TILED_PASS_IMAGE_COPIES * pixels + TILED_PASS_MAP_COPIES * held_maps)
    )
    fixed_mb = TILED_FIXED_MB + (TILED_PIECES_FIXED_MB if pieces else 0)
    return fixed_mb + floats * BYTES_PER_FLOAT // 2**20


def tiled_pixels(
    content: tuple[int, int], tile: int, margins: tuple[int, int], streamed: bool
) -> int:
    """Pixels one pass in `tile`s runs through the encoder and the decoder, margins (in pixels:
    the encoder's, the decoder's) included: what the planners compare tilings by, the cost of
    a convolution growing with its pixels (and the encoder's and the decoder's being close).
    `streamed` encodes the content twice, the second time with both margins."""
    encoder, decoder = margins

    def area(margin: int) -> int:
        height, width = (
            sum(min(length, start + tile + margin) - max(0, start - margin)
                for start in range(0, length, tile))
            for length in content
        )  # fmt: skip
        return height * width

    work = area(encoder) + area(decoder)
    return work + area(encoder + decoder) if streamed else work


def _maps(size: tuple[int, int]) -> int:
    """Positions of relu4_1 and relu5_1 together, for an image of `size`."""
    return _positions(size, 8) + _positions(size, 16)


def _positions(size: tuple[int, int], stride: int) -> int:
    return math.ceil(size[0] / stride) * math.ceil(size[1] / stride)


def _attention_floats(
    query: tuple[int, int],
    style: tuple[int, int],
    blend: bool,
    style2: tuple[int, int] | None,
    content: tuple[int, int] | None = None,
) -> int:
    """The largest attention's scores of `query`'s positions, at relu4_1 and relu5_1: over the
    style's, the content's own (`blend`; `content`, else `query` itself) or `style2`'s."""
    keys = [style, *([content or query] if blend else []), *([style2] if style2 else [])]
    return max(
        _positions(query, 8) * _positions(key, 8) + _positions(query, 16) * _positions(key, 16)
        for key in keys
    )


def memory_rule(widths: tuple[int, int, int, int]) -> dict[str, int]:
    """The memory estimates' constants for a model, for consumers outside Python (metadata.json
    `memory`; the page's web/src/memory.js follows the same formulas)."""
    return {
        "bytes_per_float": BYTES_PER_FLOAT,
        "attention_copies": ATTENTION_COPIES,
        "activation_copies": ACTIVATION_COPIES,
        "activation_channels": widths[0],
        "tiled_fixed_mb": TILED_FIXED_MB,
        "tiled_image_copies": TILED_IMAGE_COPIES,
        "tiled_map_copies": TILED_MAP_COPIES,
        "tiled_stream_map_copies": TILED_STREAM_MAP_COPIES,
        "tiled_activation_copies": TILED_ACTIVATION_COPIES,
        "tiled_pass_image_copies": TILED_PASS_IMAGE_COPIES,
        "tiled_pass_map_copies": TILED_PASS_MAP_COPIES,
        "tiled_pieces_fixed_mb": TILED_PIECES_FIXED_MB,
        "map_channels": widths[3],
    }
