"""The benchmark's inputs: deterministic synthetic images, the same bytes for every runtime.

A content "photo" (smooth shading, a few shapes, fine noise) in landscape 4:3 and a square
"painting" (coloured strokes). Untrained demo weights do not care what the images show, and
generating them keeps third-party pictures out of the repository.
"""

import numpy as np


def content_size(side: int) -> tuple[int, int]:
    """(height, width) of the content at longest side `side`: landscape 4:3."""
    return side * 3 // 4, side


def style_size(side: int) -> tuple[int, int]:
    return side, side


def _grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    return y / max(height - 1, 1), x / max(width - 1, 1)


def content_image(height: int, width: int, seed: int = 1) -> np.ndarray:
    """float32 [H, W, 3] in [0, 1]."""
    rng = np.random.default_rng(seed)
    y, x = _grid(height, width)
    sky = np.stack([0.35 + 0.3 * y, 0.55 + 0.2 * y, 0.9 - 0.3 * y], axis=-1)
    image = sky.copy()
    ground = y > 0.6 + 0.08 * np.sin(6.0 * x)
    image[ground] = np.array([0.25, 0.45, 0.2]) + 0.15 * x[ground, None]
    for _ in range(5):  # discs: "houses", "trees"
        cy, cx, r = rng.uniform(0.3, 0.9), rng.uniform(0.05, 0.95), rng.uniform(0.05, 0.15)
        inside = (y - cy) ** 2 + ((x - cx) * width / height) ** 2 < r**2
        image[inside] = rng.uniform(0.1, 0.9, 3)
    image += rng.normal(0.0, 0.03, image.shape)
    return np.clip(image, 0.0, 1.0).astype(np.float32)


def style_image(height: int, width: int, seed: int = 2) -> np.ndarray:
    """float32 [h, w, 3] in [0, 1]: swirling coloured strokes."""
    rng = np.random.default_rng(seed)
    y, x = _grid(height, width)
    angle = np.arctan2(y - 0.5, x - 0.5)
    radius = np.hypot(y - 0.5, x - 0.5)
    phase = 18.0 * radius + 3.0 * angle
    strokes = 0.5 + 0.5 * np.sin(phase + 2.0 * np.sin(9.0 * x))
    palette = rng.uniform(0.0, 1.0, (2, 3))
    image = strokes[..., None] * palette[0] + (1.0 - strokes[..., None]) * palette[1]
    image += 0.08 * np.sin(40.0 * (x + y))[..., None]
    image += rng.normal(0.0, 0.02, image.shape)
    return np.clip(image, 0.0, 1.0).astype(np.float32)


def pair(side: int) -> tuple[np.ndarray, np.ndarray]:
    """(content, style) at longest side `side`."""
    return content_image(*content_size(side)), style_image(*style_size(side))
