"""FLOPs of one stylization, computed from the model's own layer list and the image shapes.

One multiply-add counts as 2 FLOPs. Counted: every convolution and the two matrix products of
each style-attention block (query x key, value x attention). Not counted: bias, ReLU, pooling,
padding, softmax, normalisation and resizes, which together are well under 1% of the total.
"""

import math
from dataclasses import dataclass

from torch import nn

from sanet.encoder import RELU4_1, CeilMaxPool
from sanet.model import SANet


@dataclass
class Shape:
    channels: int
    height: int
    width: int

    @property
    def positions(self) -> int:
        return self.height * self.width


def _walk(layers: list[nn.Module], shape: Shape) -> tuple[int, Shape]:
    """FLOPs of a chain of layers on an input of `shape`; returns (flops, output shape)."""
    flops = 0
    for layer in layers:
        if isinstance(layer, nn.ReflectionPad2d):
            left, right, top, bottom = layer.padding
            shape = Shape(shape.channels, shape.height + top + bottom, shape.width + left + right)
        elif isinstance(layer, nn.Conv2d):
            kh, kw = layer.kernel_size
            (sh, sw), (ph, pw) = layer.stride, layer.padding
            height = (shape.height + 2 * ph - kh) // sh + 1
            width = (shape.width + 2 * pw - kw) // sw + 1
            per_output = 2 * (layer.in_channels // layer.groups) * kh * kw
            flops += per_output * layer.out_channels * height * width
            shape = Shape(layer.out_channels, height, width)
        elif isinstance(layer, CeilMaxPool | nn.MaxPool2d):
            shape = Shape(shape.channels, math.ceil(shape.height / 2), math.ceil(shape.width / 2))
        elif isinstance(layer, nn.Upsample):
            factor = int(layer.scale_factor)
            shape = Shape(shape.channels, shape.height * factor, shape.width * factor)
        elif not isinstance(layer, nn.ReLU):
            raise TypeError(f"no FLOP rule for {type(layer).__name__}")
    return flops, shape


def encoder_flops(model: SANet, height: int, width: int) -> tuple[int, Shape, Shape]:
    """(FLOPs, relu4_1 shape, relu5_1 shape) of the encoder on an image of this size."""
    layers = list(model.encoder)
    first, relu4_1 = _walk(layers[:RELU4_1], Shape(3, height, width))
    second, relu5_1 = _walk(layers[RELU4_1:], relu4_1)
    return first + second, relu4_1, relu5_1


def attention_flops(channels: int, content_positions: int, style_positions: int) -> int:
    """f on the content, g and h on the style, the two products, out_conv on the content."""
    n, m, c = content_positions, style_positions, channels
    convs = 2 * c * c * (2 * n + 2 * m)
    products = 2 * (2 * n * m * c)
    return convs + products


def transform_flops(
    model: SANet, content4_1: Shape, style4_1: Shape, content5_1: Shape, style5_1: Shape
) -> int:
    flops = attention_flops(content4_1.channels, content4_1.positions, style4_1.positions)
    flops += attention_flops(content5_1.channels, content5_1.positions, style5_1.positions)
    merge, _ = _walk([model.transform.merge_conv_pad, model.transform.merge_conv], content4_1)
    return flops + merge


def decoder_flops(model: SANet, features: Shape) -> int:
    flops, _ = _walk(list(model.decoder), features)
    return flops


def stylization_flops(
    model: SANet,
    content: tuple[int, int],
    style: tuple[int, int],
    iterations: int = 1,
    reencode_style: bool = False,
) -> dict[str, int]:
    """FLOPs of one stylization by stage, and the total.

    This project encodes the style once; the original SANet loop (`reencode_style`) encodes
    it again at every iteration. Every iteration stylizes an image of the content's size.
    """
    style_encode, style4_1, style5_1 = encoder_flops(model, *style)
    content_encode, content4_1, content5_1 = encoder_flops(model, *content)
    transform = transform_flops(model, content4_1, style4_1, content5_1, style5_1)
    decode = decoder_flops(model, content4_1)
    stages = {
        "encode_style": style_encode * (iterations if reencode_style else 1),
        "encode_content": content_encode * iterations,
        "transform": transform * iterations,
        "decode": decode * iterations,
    }
    return {**stages, "total": sum(stages.values())}
