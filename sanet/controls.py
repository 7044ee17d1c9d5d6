"""The creative controls' equations: keep the content's colours, mix two styles, stylize a region.

Each is one small function, so that every runtime (PyTorch here, the converter's TF module and
so the page) computes the same thing. See docs/controls.md.

- `mix_styles`: F = T(c, s1) + m (T(c, s2) - T(c, s1)), on the transform's output, before the
  strength blend and the decoder.
- `blend`: F' = I + strength * M * (F - I), with I = T(c, c) and M the region mask at relu4_1's
  size (M = 1 everywhere without a mask: SANet's strength).
- `keep_colors`: the result's BT.601 luminance with its chroma moved toward the content's by the
  amount a, on the images at the content's own size, clipped to [0, 1].
"""

import numpy as np
import torch.nn.functional as F
from torch import Tensor

# RGB -> (Y, Cb, Cr), ITU-R BT.601 full range (as JPEG/JFIF). The chroma offsets (+0.5) cancel
# in the blend below, so they are left out.
RGB_TO_YCBCR = np.array(
    [
        [0.299, 0.587, 0.114],
        [-0.168736, -0.331264, 0.5],
        [0.5, -0.418688, -0.081312],
    ],
    dtype=np.float64,
)
YCBCR_TO_RGB = np.linalg.inv(RGB_TO_YCBCR)
# An RGB difference's chroma part, in RGB: YCbCr^-1 . diag(0, 1, 1) . YCbCr (3 x 3).
CHROMA_OF_RGB = (YCBCR_TO_RGB[:, 1:] @ RGB_TO_YCBCR[1:]).astype(np.float32)


def resize(image: Tensor, size: tuple[int, int]) -> Tensor:
    """[N, C, H, W] to `size` (height, width): bilinear, antialiased when shrinking. The one
    resampling rule for images and masks."""
    if tuple(image.shape[-2:]) == size:
        return image
    return F.interpolate(image, size=size, mode="bilinear", align_corners=False, antialias=True)


def mix_styles(first: Tensor, second: Tensor, mix: float) -> Tensor:
    """Transform outputs T(c, s1), T(c, s2) -> T(c, s1) + mix * (T(c, s2) - T(c, s1))."""
    return first + mix * (second - first)


def blend(identity: Tensor, features: Tensor, strength: float, mask: Tensor | None) -> Tensor:
    """identity + strength * M * (features - identity), on [N, C, h, w] transform outputs.

    `mask` [N, 1, H, W] in [0, 1] (1: stylize, 0: keep) at any size is resampled to the
    features' size (`resize`); None means M = 1 (the original strength blend, unchanged)."""
    if mask is None:
        return identity + strength * (features - identity)
    weight = strength * resize(mask, (features.shape[2], features.shape[3]))
    return identity + weight * (features - identity)


def mask_from_rgb(image: np.ndarray) -> np.ndarray:
    """An RGB mask image [H, W, 3] in [0, 1] -> its BT.601 luminance [H, W], float32:
    white stylizes, black keeps, grey is partial."""
    return image @ RGB_TO_YCBCR[0].astype(image.dtype)


def keep_colors(result: np.ndarray, content: np.ndarray, amount: float) -> np.ndarray:
    """Images [H, W, 3] in [0, 1] of one size, amount a ->
    RGB(Y_result, (1 - a) CbCr_result + a CbCr_content) clipped to [0, 1], float32.
    Amount 0 returns `result` itself (today's output, bit for bit).

    Where the content's chroma does not fit the result's luminance (a saturated colour at a
    luminance it cannot have), the clip changes the chroma: those pixels are the exception to
    "the output's chroma equals the content's" at amount 1."""
    if not amount:
        return result
    # Linear in YCbCr: the luminance stays, the chroma moves by a times the difference's.
    moved = result + amount * ((content - result) @ CHROMA_OF_RGB.T)
    return np.clip(moved, 0.0, 1.0, out=moved).astype(np.float32, copy=False)
