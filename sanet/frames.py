"""Many frames, one style: the request checked and the style encoded once per clip."""

from functools import partial

import numpy as np
import torch
from torch import Tensor

from sanet.errors import SANetError
from sanet.images import ImageLike, to_rgb_array
from sanet.stylizer import Stylizer, to_array, to_tensor


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

    With `stabilize` 0 each result equals `stylizer.stylize(frame, style, ...)`; above 0 the
    decoder's input is averaged over frames (`TemporalSmoothing`), which reduces flicker and
    makes fast motion trail.
    """

    def __init__(
        self,
        stylizer: Stylizer,
        style: ImageLike,
        frame_shape: tuple[int, int],
        iterations: int = 1,
        strength: float = 1.0,
        max_resolution: int = 512,
        stabilize: float = 0.0,
        style_resolution: int | None = None,
    ) -> None:
        style_array = to_rgb_array(style)
        self.frame_shape = frame_shape
        self.content_size, style_size = stylizer.check_request(
            frame_shape, style_array.shape[:2], iterations, strength, max_resolution,
            style_resolution,
        )  # fmt: skip
        self.smoothing = TemporalSmoothing(stabilize)
        self.model, self.iterations, self.strength = stylizer.model, iterations, strength
        # Over the memory budget, every frame runs in tiles, as `Stylizer.stylize` would.
        self.tiling = stylizer.tiling(self.content_size, style_size, strength)
        encoder = self.model.encoder
        encode = partial(self.tiling.encode, encoder) if self.tiling else encoder
        with torch.no_grad():
            self.style_features = encode(to_tensor(style_array, style_size))

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
        )
        return to_array(result, self.frame_shape)
