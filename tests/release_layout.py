"""Checkpoints in the original release's layout, made by the tests' own seeded generator.

The layout is written out here from the release's description (which children of each
`nn.Sequential` are convolutions, and their shapes), independently of the `sanet` package.
"""

from pathlib import Path

import torch


# (child index, in channels, out channels, kernel) of every convolution in vgg_normalised.pth,
# as a function of the stage widths; the release has w = (64, 128, 256, 512).
def vgg_convs(w: tuple[int, int, int, int]) -> list[tuple[int, int, int, int]]:
    w1, w2, w3, w4 = w
    return [
        (0, 3, 3, 1), (2, 3, w1, 3), (5, w1, w1, 3),
        (9, w1, w2, 3), (12, w2, w2, 3),
        (16, w2, w3, 3), (19, w3, w3, 3), (22, w3, w3, 3), (25, w3, w3, 3),
        (29, w3, w4, 3), (32, w4, w4, 3), (35, w4, w4, 3), (38, w4, w4, 3),
        (42, w4, w4, 3), (45, w4, w4, 3), (48, w4, w4, 3), (51, w4, w4, 3),
    ]  # fmt: skip


def decoder_convs(w: tuple[int, int, int, int]) -> list[tuple[int, int, int, int]]:
    w1, w2, w3, w4 = w
    return [
        (1, w4, w3, 3), (5, w3, w3, 3), (8, w3, w3, 3), (11, w3, w3, 3), (14, w3, w2, 3),
        (18, w2, w2, 3), (21, w2, w1, 3), (25, w1, w1, 3), (28, w1, 3, 3),
    ]  # fmt: skip


def transformer_convs(c: int) -> list[tuple[str, int, int, int]]:
    convs = [(f"sanet{level}.{name}", c, c, 1) for level in ("4_1", "5_1")
             for name in ("f", "g", "h", "out_conv")]  # fmt: skip
    return [*convs, ("merge_conv", c, c, 3)]


def _state(convs: list, generator: torch.Generator) -> dict[str, torch.Tensor]:
    state = {}
    for name, cin, cout, k in convs:
        std = (2.0 / (cin * k * k)) ** 0.5
        weight = torch.randn(cout, cin, k, k, generator=generator) * std
        state[f"{name}.weight"] = weight - weight.mean(dim=(1, 2, 3), keepdim=True)
        state[f"{name}.bias"] = torch.randn(cout, generator=generator) * 0.05
    return state


def make_release(directory: Path, widths=(8, 16, 32, 64), seed=1234, iteration=500000) -> dict:
    """Write the three release files; return their state dicts by file name."""
    generator = torch.Generator().manual_seed(seed)
    states = {
        "vgg_normalised.pth": _state(vgg_convs(widths), generator),
        f"decoder_iter_{iteration}.pth": _state(decoder_convs(widths), generator),
        f"transformer_iter_{iteration}.pth": _state(transformer_convs(widths[3]), generator),
    }
    # Keep the decoded image mostly inside [0, 1], so that clamping hides no difference.
    states[f"decoder_iter_{iteration}.pth"]["28.bias"] = torch.full((3,), 0.5)
    directory.mkdir(parents=True, exist_ok=True)
    for name, state in states.items():
        torch.save(state, directory / name)
    return states
