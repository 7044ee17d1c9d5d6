"""Numerical parity against PyTorch, judged against PyTorch's own float32 rounding noise.

A converted stage is compared with the PyTorch model in float32. The random untrained demo
weights amplify rounding differences (a second iteration re-encodes the first one's output),
so the same computation in float64 gives a noise floor: how far PyTorch's own float32 result
is from exact. A stage passes when its error is within ABSOLUTE (1e-4) or NOISE_FACTOR times
that floor, whichever is larger.
"""

import copy
from dataclasses import asdict, dataclass

import numpy as np
import torch

from sanet.model import SANet
from sanet.stylizer import resize, working_size

ABSOLUTE = 1e-4
NOISE_FACTOR = 5.0


@dataclass(frozen=True)
class Case:
    """One stylization request: image sizes as (height, width)."""

    content: tuple[int, int]
    style: tuple[int, int]
    iterations: int = 1
    strength: float = 1.0
    max_resolution: int = 0

    @property
    def label(self) -> str:
        (h, w), (sh, sw) = self.content, self.style
        text = f"{w}x{h} / {sw}x{sh}, it {self.iterations}, str {self.strength:g}"
        return text + (f", max {self.max_resolution}" if self.max_resolution else "")

    def images(self) -> tuple[np.ndarray, np.ndarray]:
        seed = self.content[0] * 7919 + self.content[1]
        return sample_image(*self.content, seed), sample_image(*self.style, seed + 1)


@dataclass(frozen=True)
class Check:
    stage: str
    case: str
    max_abs: float
    mean_abs: float
    floor: float
    tolerance: float | None  # None: recorded, not judged

    @property
    def passed(self) -> bool:
        return self.tolerance is None or self.max_abs <= self.tolerance

    def as_dict(self) -> dict:
        return asdict(self) | {"passed": self.passed}


def sample_image(height: int, width: int, seed: int) -> np.ndarray:
    """A deterministic test image [H, W, 3] in [0, 1]: smooth colour fields plus fine grain."""
    rng = np.random.default_rng(seed)
    ys, xs = np.linspace(0, 1, height)[:, None], np.linspace(0, 1, width)[None, :]
    channels = []
    for _ in range(3):
        fy, fx = rng.uniform(1, 6, 2)
        phase = rng.uniform(0, 6.3)
        channels.append(0.5 + 0.4 * np.sin(fy * 3 * ys + phase) * np.cos(fx * 3 * xs))
    grain = rng.random((height, width, 3)) * 0.2 - 0.1
    return np.clip(np.stack(channels, axis=-1) + grain, 0, 1).astype(np.float32)


def compare(
    stage: str, case: str, actual: np.ndarray, expected: np.ndarray, exact: np.ndarray | None
) -> Check:
    """`expected` is PyTorch in float32, `exact` the same in float64 (None: not judged)."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    if actual.shape != expected.shape:
        raise ValueError(f"{stage} {case}: shape {actual.shape}, expected {expected.shape}")
    error = np.abs(actual - expected)
    floor = float(np.abs(expected - exact).max()) if exact is not None else 0.0
    tolerance = max(ABSOLUTE, NOISE_FACTOR * floor) if exact is not None else None
    return Check(stage, case, float(error.max()), float(error.mean()), floor, tolerance)


class Reference:
    """PyTorch results for a case in float32 and float64, computed once each."""

    def __init__(self, model: SANet) -> None:
        self.models = {torch.float32: model.eval(), torch.float64: copy.deepcopy(model).double()}
        self._cache: dict[tuple, np.ndarray] = {}

    @torch.no_grad()
    def stylize(self, case: Case, dtype: torch.dtype) -> np.ndarray:
        """The result [H, W, 3] of `sanet.Stylizer.stylize`: scaled to the working size,
        stylized, clamped, scaled back to the content's size."""
        key = (case, dtype)
        if key not in self._cache:
            content, style = (_tensor(a, dtype) for a in case.images())
            content = resize(content, working_size(*case.content, case.max_resolution))
            style = resize(style, working_size(*case.style, case.max_resolution))
            model = self.models[dtype]
            result = model(content, style, iterations=case.iterations, strength=case.strength)
            self._cache[key] = resize(result, case.content)[0].permute(1, 2, 0).numpy()
        return self._cache[key]

    @torch.no_grad()
    def graphs(self, case: Case, dtype: torch.dtype) -> dict[str, dict[str, np.ndarray]]:
        """Inputs and outputs of each of the three graphs for one pass of `case`."""
        model = self.models[dtype]
        content, style = (_tensor(a, dtype) for a in case.images())
        c4, c5 = model.encoder(content)
        s4, s5 = model.encoder(style)
        features = model.transform(c4, s4, c5, s5)
        image = model.decoder(features)
        as_np = {k: v.numpy() for k, v in locals().items() if isinstance(v, torch.Tensor)}
        return {
            "encoder": {"image": as_np["content"], "relu4_1": as_np["c4"], "relu5_1": as_np["c5"]},
            "transform": {"content4_1": as_np["c4"], "style4_1": as_np["s4"],
                          "content5_1": as_np["c5"], "style5_1": as_np["s5"],
                          "features": as_np["features"]},
            "decoder": {"features": as_np["features"], "image": as_np["image"]},
        }  # fmt: skip


def _tensor(image: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    return torch.from_numpy(image).permute(2, 0, 1)[None].to(dtype)


GRAPH_OUTPUTS = {
    "encoder": ("relu4_1", "relu5_1"),
    "transform": ("features",),
    "decoder": ("image",),
}
