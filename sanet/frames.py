"""Many frames, one style: the request checked and the style encoded once per clip."""

from functools import partial

import numpy as np
import torch
from torch import Tensor

from sanet import controls
from sanet.errors import SANetError
from sanet.images import ImageLike, to_rgb_array
from sanet.request import DEFAULT_KEEP_COLORS, DEFAULT_MAX_RESOLUTION
from sanet.stylizer import (
    Stylizer,
    mask_tensor,
    mix_weight,
    style_working_size,
    to_array,
    to_tensor,
)


class TemporalSmoothing:
    """An exponential moving average over frames of the decoder's input:
    F'_t = (1 - weight) F_t + weight F'_{t-1}. Weight 0 leaves every frame as it is."""

    def __init__(self, weight: float) -> None:
        if not 0.0 <= weight < 1.0:
            raise SANetError(f"stabilize must be at least 0 and below 1, got {weight}")
        self.weight = weight
        self.previous: Tensor | None = None

    def __call__(self, features: Tensor) -> Tensor:
        if self.previous is not None and self.weight:
            features = torch.lerp(features, self.previous, self.weight)
        self.previous = features
        return features


class FrameStylizer:
    """Stylize frames of one size, in order, with one style (see `Stylizer.stylize`).

    >>> clip = FrameStylizer(stylizer, style, (480, 640), stabilize=0.5)  # doctest: +SKIP
    >>> results = [clip(frame) for frame in frames]                        # doctest: +SKIP

    With `stabilize` 0 each result equals `stylizer.stylize(frame, style, ...)`, the creative
    controls included (`keep_colors`, `style2` with `mix`, and a `mask` resampled to every
    frame); above 0 the decoder's input is averaged over frames (`TemporalSmoothing`), which
    reduces flicker and makes fast motion trail. Both styles are encoded once.
    """

    def __init__(
        self,
        stylizer: Stylizer,
        style: ImageLike,
        frame_shape: tuple[int, int],
        iterations: int = 1,
        strength: float = 1.0,
        max_resolution: int = DEFAULT_MAX_RESOLUTION,
        stabilize: float = 0.0,
        style_resolution: int | None = None,
        keep_colors: float = DEFAULT_KEEP_COLORS,
        style2: ImageLike | None = None,
        mix: float | None = None,
        mask: ImageLike | None = None,
    ) -> None:
        style_array = to_rgb_array(style)
        style2_array = None if style2 is None else to_rgb_array(style2)
        shape2 = None if style2_array is None else style2_array.shape[:2]
        self.frame_shape = frame_shape
        self.content_size, style_size = stylizer.check_request(
            frame_shape, style_array.shape[:2], iterations, strength, max_resolution,
            style_resolution, keep_colors, shape2, mix, mask is not None,
        )  # fmt: skip
        self.smoothing = TemporalSmoothing(stabilize)
        self.model, self.iterations, self.strength = stylizer.model, iterations, strength
        self.keep_colors, self.mix = keep_colors, mix_weight(mix, shape2 is not None)
        size2 = style_working_size(shape2, max_resolution, style_resolution) if self.mix else None
        # Over the memory budget, every frame runs in tiles, as `Stylizer.stylize` would, but
        # holding its maps: the smoothing needs the whole of them.
        self.tiling = stylizer.tiling(
            self.content_size, style_size, strength, size2, mask is not None, streamed=False
        )
        encoder = self.model.encoder
        encode = partial(self.tiling.encode, encoder) if self.tiling else encoder
        with torch.no_grad():
            self.style_features = encode(to_tensor(style_array, style_size))
            self.style2_features = (
                encode(to_tensor(style2_array, size2))
                if size2 and style2_array is not None
                else None
            )
        self.mask = None if mask is None else mask_tensor(to_rgb_array(mask), self.content_size)

    @torch.no_grad()
    def __call__(self, frame: ImageLike) -> np.ndarray:
        """The next frame [H, W, 3] (uint8 or float, as `to_rgb_array`) -> float32 [H, W, 3]."""
        array = to_rgb_array(frame)
        if array.shape[:2] != self.frame_shape:
            raise SANetError(
                f"frame size {array.shape[:2]} differs from the clip's {self.frame_shape}"
            )
        result = self.model(
            to_tensor(array, self.content_size),
            self.style_features,
            self.iterations,
            self.strength,
            smooth=self.smoothing,
            tiling=self.tiling,
            style2=self.style2_features,
            mix=self.mix,
            mask=self.mask,
        )
        return controls.keep_colors(to_array(result, self.frame_shape), array, self.keep_colors)
