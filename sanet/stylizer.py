"""The Python API: images in, stylized image out, at a bounded resolution and memory."""

import math
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from sanet import controls, request
from sanet.controls import resize
from sanet.errors import SANetError
from sanet.images import ImageLike, to_rgb_array
from sanet.model import SANet, Stage
from sanet.request import (
    BYTES_PER_FLOAT,
    DEFAULT_KEEP_COLORS,
    DEFAULT_MAX_RESOLUTION,
    DEFAULT_MIX,
    MIN_SIDE,
    estimate_memory_mb,
)
from sanet.tiling import RELU4_1_STRIDE, Tiling, held_floats, plan_tiling
from sanet.weights import default_weights_dir, load_model

Progress = Callable[[str, float], None]
TileProgress = Callable[[int, int], None]
ENV_MEMORY_BUDGET = "SANET_MEMORY_BUDGET_MB"


def default_memory_budget_mb() -> int:
    """`$SANET_MEMORY_BUDGET_MB` if set, else half of this machine's physical memory."""
    if os.environ.get(ENV_MEMORY_BUDGET):
        return int(os.environ[ENV_MEMORY_BUDGET])
    physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return physical // 2 // 2**20


def working_size(height: int, width: int, max_resolution: int) -> tuple[int, int]:
    """The size to compute at: longest side at most `max_resolution` (0: no limit), then scaled
    up, as far as that limit allows, until the shortest side reaches MIN_SIDE. Only an image
    more elongated than max_resolution:MIN_SIDE is stretched to fit both."""
    longest, shortest = max(height, width), min(height, width)
    scale = min(1.0, max_resolution / longest) if max_resolution else 1.0
    if shortest * scale < MIN_SIDE:
        scale = MIN_SIDE / shortest
        if max_resolution:
            scale = min(scale, max_resolution / longest)
    # At scale 1 this is the size itself, unless a side is under MIN_SIDE (then stretched).
    return max(MIN_SIDE, round(height * scale)), max(MIN_SIDE, round(width * scale))


def to_tensor(array: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """float32 [H, W, 3] -> [1, 3, height, width] at `size` (height, width)."""
    return resize(torch.from_numpy(array).permute(2, 0, 1)[None], size)


def to_array(result: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """A model result [1, 3, h, w] -> float32 [height, width, 3] in [0, 1] at `size`."""
    return resize(result, size).clamp(0.0, 1.0)[0].permute(1, 2, 0).numpy()


@dataclass(frozen=True)
class Stylizer:
    """A loaded SANet ready to stylize. `memory_budget_mb` 0 sets no memory limit; `streamed`
    True or False makes a run over it hold the content's maps or not (`sanet.tiling`), None
    (the default) chooses the tiling with less work.

    >>> stylizer = Stylizer.from_checkpoints("weights/")           # doctest: +SKIP
    >>> result = stylizer.stylize(content, style, iterations=2)    # doctest: +SKIP
    """

    model: SANet
    untrained: bool = False
    memory_budget_mb: int = 0
    streamed: bool | None = None

    @classmethod
    def from_checkpoints(
        cls, directory: str | Path | None = None, memory_budget_mb: int | None = None
    ) -> "Stylizer":
        """Load the release files from `directory` (default: `default_weights_dir()`)."""
        model, files = load_model(Path(directory) if directory else default_weights_dir())
        budget = memory_budget_mb if memory_budget_mb is not None else default_memory_budget_mb()
        return cls(model, files.untrained, budget)

    @torch.no_grad()
    def stylize(
        self,
        content: ImageLike,
        style: ImageLike,
        iterations: int = 1,
        strength: float = 1.0,
        max_resolution: int = DEFAULT_MAX_RESOLUTION,
        progress: Progress | None = None,
        style_resolution: int | None = None,
        tile_progress: TileProgress | None = None,
        keep_colors: float = DEFAULT_KEEP_COLORS,
        style2: ImageLike | None = None,
        mix: float | None = None,
        mask: ImageLike | None = None,
    ) -> ImageLike:
        """Stylize `content` with `style`; the result has the content's size.

        Inputs are PIL images or arrays (see `to_rgb_array`). Both are scaled so that their
        longest side is at most `max_resolution` (0: never) and their shortest at least
        MIN_SIDE; the result is scaled back. Returns a PIL image for a PIL content, else a
        float32 array [H, W, 3] in [0, 1]. `progress(stage, seconds)` hears each stage.

        `style_resolution` sets the style's longest side (see `style_working_size`). A request
        over the memory budget runs in tiles (see `sanet.tiling`) with the same result;
        `tile_progress(done, total)` then hears each tile.

        The creative controls (docs/controls.md, equations in `sanet.controls`), each in
        [0, 1]: `keep_colors` moves the output's chroma to the content's; `style2`, an image
        scaled like `style`, is mixed in with weight `mix` (default `DEFAULT_MIX` with a second
        style); `mask`, an image of any size (white: stylize, black: keep, grey: partial), is
        resampled to the content's working size and stylizes only where it is light. The
        defaults give the result without these controls, bit for bit.
        """
        content_array, style_array = _image(content, "content"), _image(style, "style")
        style2_array = None if style2 is None else _image(style2, "second style")
        mask_array = None if mask is None else _image(mask, "mask")
        original = content_array.shape[:2]
        shape2 = None if style2_array is None else style2_array.shape[:2]
        content_size, style_size = self.check_request(
            original, style_array.shape[:2], iterations, strength, max_resolution,
            style_resolution, keep_colors, shape2, mix, mask_array is not None,
        )  # fmt: skip
        mix = mix_weight(mix, shape2 is not None)
        size2 = style_working_size(shape2, max_resolution, style_resolution) if mix else None
        tiling = self.tiling(content_size, style_size, strength, size2, mask_array is not None)
        if tiling and tile_progress:
            total = tiling.count(content_size, style_size, iterations)
            tiling.step = _counter(tile_progress, total + (tiling.tiles(size2) if size2 else 0))
        result = self.model(
            to_tensor(content_array, content_size),
            to_tensor(style_array, style_size),
            iterations=iterations,
            strength=strength,
            stage=_timed(progress),
            tiling=tiling,
            style2=to_tensor(style2_array, size2) if size2 and style2_array is not None else None,
            mix=mix,
            mask=None if mask_array is None else mask_tensor(mask_array, content_size),
        )
        output = controls.keep_colors(to_array(result, original), content_array, keep_colors)
        if isinstance(content, Image.Image):
            return Image.fromarray(np.round(output * 255.0).astype(np.uint8), "RGB")
        return output

    def check_request(
        self,
        content_shape: tuple[int, int],
        style_shape: tuple[int, int],
        iterations: int = 1,
        strength: float = 1.0,
        max_resolution: int = DEFAULT_MAX_RESOLUTION,
        style_resolution: int | None = None,
        keep_colors: float = DEFAULT_KEEP_COLORS,
        style2_shape: tuple[int, int] | None = None,
        mix: float | None = None,
        masked: bool = False,
    ) -> tuple[tuple[int, int], tuple[int, int]]:
        """Validate a request before any work; returns the (content, style) sizes to compute at.

        A request whose working memory would exceed the budget even in tiles is refused with
        advice. `style2_shape` and `masked` say whether a second style and a mask come along.
        """
        problems = [
            ("iterations", request.iterations_problem(iterations)),
            *(
                (name, request.amount_problem(value))
                for name, value in (
                    ("strength", strength), ("keep colors", keep_colors), ("mix", mix or 0.0)
                )
            ),
            *(
                (f"{name} resolution", request.resolution_problem(value))
                for name, value in (("max", max_resolution), ("style", style_resolution or 0))
            ),
        ]  # fmt: skip
        for name, problem in problems:
            if problem:
                raise SANetError(f"{name} {problem}")
        if mix is not None and style2_shape is None:
            raise SANetError("mix needs a second style to mix with")
        content_size = working_size(*content_shape, max_resolution)
        style_size = style_working_size(style_shape, max_resolution, style_resolution)
        size2 = None
        if mix_weight(mix, style2_shape is not None) and style2_shape is not None:
            size2 = style_working_size(style2_shape, max_resolution, style_resolution)
        self.tiling(content_size, style_size, strength, size2, masked)
        return content_size, style_size

    def tiling(
        self,
        content_size: tuple[int, int],
        style_size: tuple[int, int],
        strength: float,
        style2_size: tuple[int, int] | None = None,
        masked: bool = False,
        streamed: bool | None = None,
    ) -> Tiling | None:
        """None when the untiled run fits the memory budget, else the tiling that does with
        the least work (`plan_tiling`; `streamed` True or False, else the field's, asks for
        one kind); refuses a request that does not fit even in tiles. A second style is planned
        for as the first: the attention's chunks fit the style with more positions, and the
        other style's features, held whole, come off the budget."""
        blend, widths = strength < 1.0 or masked, self.model.widths
        needed = estimate_memory_mb(content_size, style_size, widths, blend, style2_size)
        if not self.memory_budget_mb or needed <= self.memory_budget_mb:
            return None
        budget = self.memory_budget_mb * 2**20 // BYTES_PER_FLOAT
        largest, held = style_size, 0
        if style2_size:
            largest, other = sorted((style_size, style2_size), key=_positions, reverse=True)
            held = held_floats((0, 0), other, widths, blend=False)  # the other style's part
        model = self.model
        tiling, floats = plan_tiling(
            model.transform, model.encoder, model.decoder, widths, content_size, largest, blend,
            budget - held, self.streamed if streamed is None else streamed,
        )  # fmt: skip
        needed = (floats + held) * BYTES_PER_FLOAT // 2**20
        if needed > self.memory_budget_mb:
            raise SANetError(
                f"stylizing at {content_size[1]}x{content_size[0]} with a "
                f"{style_size[1]}x{style_size[0]} style"
                + (f" and a {style2_size[1]}x{style2_size[0]} second one" if style2_size else "")
                + f" needs about {needed} MB even in tiles, "
                f"over the {self.memory_budget_mb} MB budget: lower --max-resolution "
                f"(or raise {ENV_MEMORY_BUDGET})"
            )
        return tiling


def style_working_size(
    shape: tuple[int, int], max_resolution: int, style_resolution: int | None
) -> tuple[int, int]:
    """The style's working size. By default the content's rule (`working_size` with
    `max_resolution`); a `style_resolution` PX scales the style, up or down, to a longest side
    of PX (0: as given). Brush strokes grow with it: SANet copies the style's patterns at
    their size in pixels, whatever the content's size."""
    if style_resolution is None:
        return working_size(*shape, max_resolution)
    if not style_resolution:
        return working_size(*shape, 0)
    scale = style_resolution / max(shape)
    return max(MIN_SIDE, round(shape[0] * scale)), max(MIN_SIDE, round(shape[1] * scale))


def _image(image: ImageLike, name: str) -> np.ndarray:
    array = to_rgb_array(image)
    if not array.shape[0] or not array.shape[1]:
        raise SANetError(f"the {name} image is empty ({array.shape[1]}x{array.shape[0]} pixels)")
    return array


def mix_weight(mix: float | None, has_style2: bool) -> float:
    """The second style's weight: `mix`, else DEFAULT_MIX with a second style, else 0."""
    if not has_style2:
        return 0.0
    return DEFAULT_MIX if mix is None else mix


def mask_tensor(mask: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """A mask image [H, W, 3] -> [1, 1, height, width] weights at `size` (the content's)."""
    return resize(torch.from_numpy(controls.mask_from_rgb(mask))[None, None], size)


def _positions(size: tuple[int, int]) -> int:
    return math.ceil(size[0] / RELU4_1_STRIDE) * math.ceil(size[1] / RELU4_1_STRIDE)


def _counter(report: TileProgress, total: int) -> Callable[[], None]:
    done = 0

    def step() -> None:
        nonlocal done
        done += 1
        report(done, total)

    return step


def _timed(progress: Progress | None) -> Stage:
    @contextmanager
    def stage(name: str) -> Iterator[None]:
        start = time.perf_counter()
        yield
        if progress:
            progress(name, time.perf_counter() - start)

    return stage
