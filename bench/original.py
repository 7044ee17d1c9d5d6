"""The original SANet evaluation loop, re-created from its description for comparison.

The original release's `Eval.py` runs, for each of `--steps` iterations, the encoder on the
content *and on the style*, the transform and the decoder; the decoded image is fed back
unclamped. Its network is built from plain `nn.Sequential` slices (enc_1 .. enc_5 of the
normalised VGG with ceil-mode max pooling), a transform whose relu5_1 branch is upsampled
with `nn.Upsample(scale_factor=2)` (no crop: relu4_1 must be even on both sides) and
mean-variance normalisation through `var(dim=2)` on flattened features.

Written here from that description, on the release's state-dict layout, so that it loads the
same checkpoints as `sanet.SANet`. Only the loop's cost matters for the benchmark; at
iteration 1 it must agree with this project's model (tests/test_bench.py checks this).
"""

from pathlib import Path

import torch
from torch import Tensor, nn

# Children of the release's VGG that end each slice enc_1 .. enc_5 (relu1_1 .. relu5_1).
SLICE_ENDS = (4, 11, 18, 31, 44)


def _vgg(widths: tuple[int, int, int, int]) -> nn.Sequential:
    w1, w2, w3, w4 = widths
    layers: list[nn.Module] = [nn.Conv2d(3, 3, 1)]

    def conv(c_in: int, c_out: int) -> None:
        layers.extend([nn.ReflectionPad2d(1), nn.Conv2d(c_in, c_out, 3), nn.ReLU()])

    def pool() -> None:
        layers.append(nn.MaxPool2d(2, 2, 0, ceil_mode=True))

    conv(3, w1), conv(w1, w1), pool()
    conv(w1, w2), conv(w2, w2), pool()
    conv(w2, w3), conv(w3, w3), conv(w3, w3), conv(w3, w3), pool()
    conv(w3, w4), conv(w4, w4), conv(w4, w4), conv(w4, w4), pool()
    conv(w4, w4)
    return nn.Sequential(*layers)


def _decoder(widths: tuple[int, int, int, int]) -> nn.Sequential:
    w1, w2, w3, w4 = widths
    layers: list[nn.Module] = []

    def conv(c_in: int, c_out: int, relu: bool = True) -> None:
        layers.extend([nn.ReflectionPad2d(1), nn.Conv2d(c_in, c_out, 3)])
        if relu:
            layers.append(nn.ReLU())

    def up() -> None:
        layers.append(nn.Upsample(scale_factor=2, mode="nearest"))

    conv(w4, w3), up(), conv(w3, w3), conv(w3, w3), conv(w3, w3), conv(w3, w2), up()
    conv(w2, w2), conv(w2, w1), up(), conv(w1, w1), conv(w1, 3, relu=False)
    return nn.Sequential(*layers)


def _normalise(features: Tensor, eps: float = 1e-5) -> Tensor:
    n, c = features.shape[:2]
    flat = features.reshape(n, c, -1)
    mean = flat.mean(dim=2).reshape(n, c, 1, 1)
    std = (flat.var(dim=2) + eps).sqrt().reshape(n, c, 1, 1)
    return (features - mean) / std


class _Attention(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.f = nn.Conv2d(channels, channels, 1)
        self.g = nn.Conv2d(channels, channels, 1)
        self.h = nn.Conv2d(channels, channels, 1)
        self.sm = nn.Softmax(dim=-1)
        self.out_conv = nn.Conv2d(channels, channels, 1)

    def forward(self, content: Tensor, style: Tensor) -> Tensor:
        n, c, height, width = content.shape
        query = self.f(_normalise(content)).reshape(n, c, -1).permute(0, 2, 1)
        key = self.g(_normalise(style)).reshape(n, c, -1)
        value = self.h(style).reshape(n, c, -1)
        scores = self.sm(torch.bmm(query, key))
        gathered = torch.bmm(value, scores.permute(0, 2, 1)).reshape(n, c, height, width)
        return content + self.out_conv(gathered)


class _Transform(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.sanet4_1 = _Attention(channels)
        self.sanet5_1 = _Attention(channels)
        self.upsample5_1 = nn.Upsample(scale_factor=2, mode="nearest")
        self.merge_conv_pad = nn.ReflectionPad2d(1)
        self.merge_conv = nn.Conv2d(channels, channels, 3)

    def forward(self, content4_1, style4_1, content5_1, style5_1) -> Tensor:
        merged = self.sanet4_1(content4_1, style4_1) + self.upsample5_1(
            self.sanet5_1(content5_1, style5_1)
        )
        return self.merge_conv(self.merge_conv_pad(merged))


class OriginalLoop(nn.Module):
    """enc_1 .. enc_5, transform, decoder, and the `--steps` loop that re-encodes the style."""

    def __init__(self, widths: tuple[int, int, int, int]) -> None:
        super().__init__()
        self.vgg = _vgg(widths)
        self.transform = _Transform(widths[3])
        self.decoder = _decoder(widths)
        children = list(self.vgg)
        starts = (0, *SLICE_ENDS[:-1])
        self.slices = [
            nn.Sequential(*children[a:b]) for a, b in zip(starts, SLICE_ENDS, strict=True)
        ]

    def encode(self, image: Tensor) -> tuple[Tensor, Tensor]:
        enc_1, enc_2, enc_3, enc_4, enc_5 = self.slices
        relu4_1 = enc_4(enc_3(enc_2(enc_1(image))))
        return relu4_1, enc_5(relu4_1)

    @torch.no_grad()
    def forward(self, content: Tensor, style: Tensor, steps: int = 1) -> Tensor:
        for _ in range(steps):
            content4_1, content5_1 = self.encode(content)
            style4_1, style5_1 = self.encode(style)  # again at every step, as the original
            content = self.decoder(self.transform(content4_1, style4_1, content5_1, style5_1))
        return content.clamp(0.0, 1.0)


def load_original(directory: Path) -> OriginalLoop:
    """The loop on the release files in `directory` (this project's weights layout)."""
    from sanet.weights import find_checkpoints, load_model, read_state_dict

    files = find_checkpoints(directory)
    vgg = read_state_dict(files.vgg)
    model = OriginalLoop(load_model(directory)[0].widths)  # the widths as the package reads them
    used = {k: v for k, v in vgg.items() if int(k.split(".")[0]) < SLICE_ENDS[-1]}
    model.vgg.load_state_dict(used)
    model.decoder.load_state_dict(read_state_dict(files.decoder))
    model.transform.load_state_dict(read_state_dict(files.transformer))
    return model.eval()
