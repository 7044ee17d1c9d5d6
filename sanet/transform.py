"""The transform: style attention at relu4_1 and relu5_1, merged at relu4_1's resolution."""

import torch.nn.functional as F
from torch import Tensor, nn

from sanet.attention import Statistics, StyleAttention


def upsample_to(features: Tensor, like: Tensor) -> Tensor:
    """Nearest-neighbour x2, cropped to `like`'s height and width.

    relu5_1 is ceil(relu4_1 / 2) per side, so x2 overshoots by one row or column when relu4_1
    is odd; the original release crashes there. The crop keeps the rows that cover the image
    and equals a nearest resize to relu4_1's size; for even sides it is the original's upsampling.
    """
    upsampled = F.interpolate(features, scale_factor=2.0, mode="nearest")
    return upsampled[:, :, : like.shape[2], : like.shape[3]]


class Transform(nn.Module):
    """(content relu4_1, style relu4_1, content relu5_1, style relu5_1) -> decoder input."""

    def __init__(self, channels: int = 512) -> None:
        super().__init__()
        self.sanet4_1 = StyleAttention(channels)
        self.sanet5_1 = StyleAttention(channels)
        self.merge_conv_pad = nn.ReflectionPad2d(1)
        self.merge_conv = nn.Conv2d(channels, channels, 3)

    def forward(
        self,
        content4_1: Tensor,
        style4_1: Tensor,
        content5_1: Tensor,
        style5_1: Tensor,
        chunk: int = 0,
        statistics4_1: Statistics | None = None,
        statistics5_1: Statistics | None = None,
    ) -> Tensor:
        """`chunk` > 0 bounds the attention's memory; `statistics*` normalise a tile of the
        content's maps as the whole maps (see `StyleAttention.forward`)."""
        attended4_1 = self.sanet4_1(content4_1, style4_1, chunk, statistics4_1)  # [N, C, H/8, W/8]
        attended5_1 = self.sanet5_1(content5_1, style5_1, chunk, statistics5_1)
        attended5_1 = upsample_to(attended5_1, attended4_1)
        return self.merge_conv(self.merge_conv_pad(attended4_1 + attended5_1))
