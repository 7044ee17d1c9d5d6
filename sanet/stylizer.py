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
import torch.nn.functional as F
from PIL import Image

from sanet.errors import SANetError
from sanet.images import ImageLike, to_rgb_array
from sanet.model import MIN_SIDE, SANet, Stage
from sanet.tiling import Tiling, plan_tiling
from sanet.weights import default_weights_dir, load_model

Progress = Callable[[str, float], None]
TileProgress = Callable[[int, int], None]
BYTES_PER_FLOAT = 4
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
    if scale == 1.0:
        return height, width
    return max(MIN_SIDE, round(height * scale)), max(MIN_SIDE, round(width * scale))


def estimate_memory_mb(
    content: tuple[int, int], style: tuple[int, int], widths: tuple[int, int, int, int], blend: bool
) -> int:
    """Peak working memory of one stylization, from the largest tensors alive at once.

    The attention matrices hold (H/8 * W/8) x (h/8 * w/8) floats at relu4_1 (and 1/16 of that
    at relu5_1); the scores, their softmax and a transposed copy can coexist. Full-resolution
    VGG activations (64 channels) dominate otherwise. `blend` adds the content-content attention
    that a strength below 1 needs.
    """

    def positions(size: tuple[int, int], stride: int) -> int:
        return math.ceil(size[0] / stride) * math.ceil(size[1] / stride)

    def attention_floats(query: tuple[int, int], key: tuple[int, int]) -> int:
        return positions(query, 8) * positions(key, 8) + positions(query, 16) * positions(key, 16)

    attention = attention_floats(content, style)
    if blend:
        attention = max(attention, attention_floats(content, content))
    activations = widths[0] * (content[0] * content[1] + style[0] * style[1])
    return (3 * attention + 3 * activations) * BYTES_PER_FLOAT // 2**20


def resize(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """[N, C, H, W] to `size` (height, width): bilinear, antialiased when shrinking."""
    if tuple(image.shape[-2:]) == size:
        return image
    return F.interpolate(image, size=size, mode="bilinear", align_corners=False, antialias=True)


def to_tensor(array: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """float32 [H, W, 3] -> [1, 3, height, width] at `size` (height, width)."""
    return resize(torch.from_numpy(array).permute(2, 0, 1)[None], size)


def to_array(result: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """A model result [1, 3, h, w] -> float32 [height, width, 3] in [0, 1] at `size`."""
    return resize(result, size).clamp(0.0, 1.0)[0].permute(1, 2, 0).numpy()


@dataclass(frozen=True)
class Stylizer:
    """A loaded SANet ready to stylize. `memory_budget_mb` 0 sets no memory limit.

    >>> stylizer = Stylizer.from_checkpoints("weights/")           # doctest: +SKIP
    >>> result = stylizer.stylize(content, style, iterations=2)    # doctest: +SKIP
    """

    model: SANet
    untrained: bool = False
    memory_budget_mb: int = 0

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
        max_resolution: int = 512,
        progress: Progress | None = None,
        style_resolution: int | None = None,
        tile_progress: TileProgress | None = None,
    ) -> ImageLike:
        """Stylize `content` with `style`; the result has the content's size.

        Inputs are PIL images or arrays (see `to_rgb_array`). Both are scaled so that their
        longest side is at most `max_resolution` (0: never) and their shortest at least
        MIN_SIDE; the result is scaled back. Returns a PIL image for a PIL content, else a
        float32 array [H, W, 3] in [0, 1]. `progress(stage, seconds)` hears each stage.

        `style_resolution` sets the style's longest side (see `style_working_size`). A request
        over the memory budget runs in tiles (see `sanet.tiling`) with the same result;
        `tile_progress(done, total)` then hears each tile.
        """
        content_array, style_array = to_rgb_array(content), to_rgb_array(style)
        original = content_array.shape[:2]
        content_size, style_size = self.check_request(
            original, style_array.shape[:2], iterations, strength, max_resolution, style_resolution
        )
        tiling = self.tiling(content_size, style_size, strength)
        if tiling and tile_progress:
            tiling.step = _counter(
                tile_progress, tiling.count(content_size, style_size, iterations)
            )
        result = self.model(
            to_tensor(content_array, content_size),
            to_tensor(style_array, style_size),
            iterations=iterations,
            strength=strength,
            stage=_timed(progress),
            tiling=tiling,
        )
        output = to_array(result, original)
        if isinstance(content, Image.Image):
            return Image.fromarray(np.round(output * 255.0).astype(np.uint8), "RGB")
        return output

    def check_request(
        self,
        content_shape: tuple[int, int],
        style_shape: tuple[int, int],
        iterations: int = 1,
        strength: float = 1.0,
        max_resolution: int = 512,
        style_resolution: int | None = None,
    ) -> tuple[tuple[int, int], tuple[int, int]]:
        """Validate a request before any work; returns the (content, style) sizes to compute at.

        A request whose working memory would exceed the budget even in tiles is refused with
        advice.
        """
        if iterations < 1:
            raise SANetError(f"iterations must be at least 1, got {iterations}")
        if not 0.0 <= strength <= 1.0:
            raise SANetError(f"strength must be between 0 and 1, got {strength}")
        for name, value in (("max", max_resolution), ("style", style_resolution or 0)):
            if value < 0 or 0 < value < MIN_SIDE:
                raise SANetError(
                    f"{name} resolution must be 0 (no limit) or at least {MIN_SIDE}, got {value}"
                )
        content_size = working_size(*content_shape, max_resolution)
        style_size = style_working_size(style_shape, max_resolution, style_resolution)
        self.tiling(content_size, style_size, strength)
        return content_size, style_size

    def tiling(
        self, content_size: tuple[int, int], style_size: tuple[int, int], strength: float
    ) -> Tiling | None:
        """None when the untiled run fits the memory budget, else the largest tiles and chunks
        that do; refuses a request that does not fit even in tiles."""
        blend, widths = strength < 1.0, self.model.widths
        needed = estimate_memory_mb(content_size, style_size, widths, blend)
        if not self.memory_budget_mb or needed <= self.memory_budget_mb:
            return None
        budget = self.memory_budget_mb * 2**20 // BYTES_PER_FLOAT
        model = self.model
        tiling, floats = plan_tiling(
            model.encoder, model.decoder, widths, content_size, style_size, blend, budget
        )
        needed = floats * BYTES_PER_FLOAT // 2**20
        if needed > self.memory_budget_mb:
            raise SANetError(
                f"stylizing at {content_size[1]}x{content_size[0]} with a "
                f"{style_size[1]}x{style_size[0]} style needs about {needed} MB even in tiles, "
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
