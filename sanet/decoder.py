"""The decoder: relu4_1-sized features back to an RGB image, 8x larger per side.

Mirrors `decoder_iter_*.pth` child by child (convolutions at children 1, 5, 8, 11, 14, 18,
21, 25 and 28), so the official state dict loads by key.
"""

from torch import nn

from sanet.encoder import FULL_WIDTHS, conv3x3


def _upsample() -> nn.Module:
    return nn.Upsample(scale_factor=2.0, mode="nearest")


class Decoder(nn.Sequential):
    """features [N, C, H, W] -> image [N, 3, 8H, 8W], not clamped."""

    def __init__(self, widths: tuple[int, int, int, int] = FULL_WIDTHS) -> None:
        w1, w2, w3, w4 = widths
        super().__init__(
            *conv3x3(w4, w3),
            _upsample(),
            *conv3x3(w3, w3),
            *conv3x3(w3, w3),
            *conv3x3(w3, w3),
            *conv3x3(w3, w2),
            _upsample(),
            *conv3x3(w2, w2),
            *conv3x3(w2, w1),
            _upsample(),
            *conv3x3(w1, w1),
            *conv3x3(w1, 3, relu=False),
        )
