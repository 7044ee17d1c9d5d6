"""The normalised VGG-19 encoder, cut at relu5_1.

The layer list mirrors `vgg_normalised.pth` child by child, so the official state dict loads
by key (`0.weight`, `2.weight`, ...). The release holds all 53 children of VGG-19; only the
first 44 reach relu5_1, and those are the ones built here.
"""

import torch.nn.functional as F
from torch import Tensor, nn

# Output channels of each VGG-19 stage at full size, and 1/8 of them (fast demo weights).
FULL_WIDTHS = (64, 128, 256, 512)
SMALL_WIDTHS = (8, 16, 32, 64)

# Children [0, RELU4_1) produce relu4_1; children [RELU4_1, RELU5_1) continue to relu5_1.
RELU4_1 = 31
RELU5_1 = 44


def conv3x3(in_channels: int, out_channels: int, relu: bool = True) -> list[nn.Module]:
    """Reflection pad, 3x3 convolution and (optionally) ReLU: the unit of VGG and the decoder."""
    layers: list[nn.Module] = [nn.ReflectionPad2d(1), nn.Conv2d(in_channels, out_channels, 3)]
    return [*layers, nn.ReLU()] if relu else layers


class CeilMaxPool(nn.Module):
    """2x2 max pooling in ceil mode (a partial last row or column is kept: 25 -> 13), as the
    release's `MaxPool2d(ceil_mode=True)`, for non-negative inputs (VGG pools follow a ReLU).

    One row and column of zeros, then floor-mode pooling: for inputs >= 0 the zeros never win
    a max, and the pad is static, so the exported graph needs no run-time size arithmetic.
    """

    def forward(self, features: Tensor) -> Tensor:
        return F.max_pool2d(F.pad(features, (0, 1, 0, 1)), 2)


def _pool() -> nn.Module:
    return CeilMaxPool()


def vgg_layers(widths: tuple[int, int, int, int] = FULL_WIDTHS) -> list[nn.Module]:
    """The first 44 children of the normalised VGG-19, in release order."""
    w1, w2, w3, w4 = widths
    layers: list[nn.Module] = [nn.Conv2d(3, 3, 1)]  # RGB in [0, 1] -> the caffe input space
    layers += conv3x3(3, w1) + conv3x3(w1, w1) + [_pool()]  # relu1_1 at child 3
    layers += conv3x3(w1, w2) + conv3x3(w2, w2) + [_pool()]  # relu2_1 at child 10
    layers += (
        conv3x3(w2, w3) + conv3x3(w3, w3) + conv3x3(w3, w3) + conv3x3(w3, w3) + [_pool()]
    )  # relu3_1 at child 17
    layers += conv3x3(w3, w4)  # relu4_1 at child 30
    layers += conv3x3(w4, w4) + conv3x3(w4, w4) + conv3x3(w4, w4) + [_pool()]
    layers += conv3x3(w4, w4)  # relu5_1 at child 43
    assert len(layers) == RELU5_1
    return layers


class Encoder(nn.Sequential):
    """The normalised VGG-19 up to relu5_1.

    image [N, 3, H, W] -> relu4_1 [N, C4, ceil(H/8), ceil(W/8)],
                          relu5_1 [N, C4, ceil(H/16), ceil(W/16)]
    """

    def __init__(self, widths: tuple[int, int, int, int] = FULL_WIDTHS) -> None:
        super().__init__(*vgg_layers(widths))

    def forward(self, image: Tensor) -> tuple[Tensor, Tensor]:
        layers = list(self)
        relu4_1 = image
        for layer in layers[:RELU4_1]:
            relu4_1 = layer(relu4_1)
        relu5_1 = relu4_1
        for layer in layers[RELU4_1:]:
            relu5_1 = layer(relu5_1)
        return relu4_1, relu5_1
