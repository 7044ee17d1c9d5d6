"""Temporal stability of a stylized clip, and the two generated clips it is measured on.

flicker = mean |out_t - M(out_{t-1})| / mean |in_t - M(in_{t-1})|, over t >= 1, where M is
the clip's known motion (none for a still scene, a shift for a pan), compared where the frames
overlap. With M applied, what remains of the input's change is its sensor noise; the measure
says how much of it the stylization turns into change of the output. 1: as much as the input
(a stable stylization of a noisy clip is below 1, a flickering one far above).
"""

from collections.abc import Sequence
from itertools import pairwise

import numpy as np


def flicker(inputs: Sequence[np.ndarray], outputs: Sequence[np.ndarray], shift: int = 0) -> float:
    """The measure above for frames [H, W, 3] in [0, 1] whose content moves `shift` pixels to
    the left per frame (0: a still scene)."""
    if len(inputs) != len(outputs) or len(inputs) < 2:
        raise ValueError("flicker needs as many outputs as inputs, two frames at least")
    width = inputs[0].shape[1]

    def change(frames: Sequence[np.ndarray]) -> float:
        steps = [
            np.abs(now[:, : width - shift] - before[:, shift:]).mean()
            for before, now in pairwise(frames)
        ]
        return float(np.mean(steps))

    return change(outputs) / change(inputs)


def scene(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A synthetic photograph float32 [H, W, 3]: a lit gradient, discs and bars of colour."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.empty((height, width, 3), np.float32)
    low, high = rng.uniform(0.1, 0.5, 3), rng.uniform(0.5, 0.9, 3)
    ramp = (rows / height * 0.6 + cols / width * 0.4)[:, :, None]
    image[:] = low + (high - low) * ramp
    side = min(height, width)
    for _ in range(max(3, width // max(1, side // 3))):
        y, x = rng.uniform(0, height), rng.uniform(0, width)
        radius = rng.uniform(0.08, 0.25) * side
        image[(rows - y) ** 2 + (cols - x) ** 2 < radius**2] = rng.uniform(0, 1, 3)
        top, left = int(rng.uniform(0, height)), int(rng.uniform(0, width))
        image[top : top + side // 10 + 1, left : left + int(radius * 2)] = rng.uniform(0, 1, 3)
    return image


def _with_noise(frames: list[np.ndarray], noise: float, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed + 1)
    return [
        np.clip(frame + rng.normal(0.0, noise, frame.shape), 0.0, 1.0).astype(np.float32)
        for frame in frames
    ]


def still_clip(
    height: int, width: int, frames: int, noise: float = 0.02, seed: int = 0
) -> list[np.ndarray]:
    """A tripod shot of `scene`: every frame the same but for Gaussian sensor noise."""
    return _with_noise([scene(height, width, seed)] * frames, noise, seed)


def pan_clip(
    height: int, width: int, frames: int, step: int = 2, noise: float = 0.02, seed: int = 0
) -> list[np.ndarray]:
    """A slow pan across a wider `scene`: the content moves `step` pixels left per frame."""
    wide = scene(height, width + step * (frames - 1), seed)
    views = [wide[:, t * step : t * step + width] for t in range(frames)]
    return _with_noise(views, noise, seed)
