"""The style-attention block of SANet (Park & Lee, 2019, Sec. 3.2).

For content features Fc and style features Fs (both relu4_1 or both relu5_1):

    S   = softmax_j( f(norm(Fc))_i . g(norm(Fs))_j )     attention of content i over style j
    O_i = sum_j S_ij h(Fs)_j                             style values gathered per content position
    Fcs = Fc + out_conv(O)                               residual

f, g, h and out_conv are 1x1 convolutions; norm is mean-variance normalisation per channel.
"""

import torch
from torch import Tensor, nn

EPS = 1e-5  # added to the variance before its square root

# A content map's per-channel mean and standard deviation, each [N, C, 1, 1].
Statistics = tuple[Tensor, Tensor]


def channel_statistics(features: Tensor) -> Statistics:
    """Per-channel mean and (unbiased) standard deviation over the whole map, with EPS."""
    mean = features.mean(dim=(2, 3), keepdim=True)
    centered = features - mean
    # H*W as a tensor built from the data itself, so the exported graph carries no Shape ops.
    count = (centered[:, :1] * 0 + 1).sum(dim=(2, 3), keepdim=True)
    variance = centered.square().sum(dim=(2, 3), keepdim=True) / (count - 1)
    return mean, (variance + EPS).sqrt()


def mean_variance_norm(features: Tensor, statistics: Statistics | None = None) -> Tensor:
    """Normalise each channel to zero mean and unit standard deviation, by `statistics` if
    given (those of a whole map, when `features` is part of it), else by the map's own."""
    mean, std = statistics if statistics is not None else channel_statistics(features)
    return (features - mean) / std


class StyleAttention(nn.Module):
    """content [N, C, H, W], style [1 or N, C, h, w] -> stylized content features [N, C, H, W]."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.f = nn.Conv2d(channels, channels, 1)  # query, from the content
        self.g = nn.Conv2d(channels, channels, 1)  # key, from the style
        self.h = nn.Conv2d(channels, channels, 1)  # value, from the style
        self.out_conv = nn.Conv2d(channels, channels, 1)

    def forward(
        self, content: Tensor, style: Tensor, chunk: int = 0, statistics: Statistics | None = None
    ) -> Tensor:
        """`chunk` > 0 attends that many content positions at a time: each position's row of
        the attention is independent of the others, so the result is the same in less memory.
        The normalisation's statistics are still taken over the whole content map, or are
        `statistics` (the whole map's, when `content` is a tile of it)."""
        query = self.f(mean_variance_norm(content, statistics)).flatten(2)  # [N, C, H*W]
        key = self.g(mean_variance_norm(style)).flatten(2)  # [N, C, h*w]
        value = self.h(style).flatten(2)  # [N, C, h*w]
        if chunk:
            gathered = query.new_empty(value.shape[:2] + query.shape[2:])
            for start in range(0, query.shape[2], chunk):
                part = query[:, :, start : start + chunk]
                gathered[:, :, start : start + chunk] = _gather(part, key, value)
        else:
            gathered = _gather(query, key, value)
        return content + self.out_conv(gathered.reshape_as(content))  # [N, C, H, W]


def _gather(query: Tensor, key: Tensor, value: Tensor) -> Tensor:
    """[N, C, n] queries -> [N, C, n] style values, each the attention-weighted sum over keys."""
    attention = torch.softmax(query.transpose(1, 2) @ key, dim=-1)  # [N, n, h*w]
    return value @ attention.transpose(1, 2)
