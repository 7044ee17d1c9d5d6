"""Numerical parity: each converted stage judged against a float64 reference.

A faithful float32 runtime cannot match exact arithmetic: every layer rounds, and the network
amplifies what was rounded (untrained weights and repeated iterations amplify most). How much
depends on the weights, so the allowance is measured for the weights at hand, per stage, per
case, from two faithful float32 evaluations of the same computation:

- PyTorch in float32;
- PyTorch in float32 with rounding noise injected after every layer (Monte Carlo arithmetic),
  standing for a runtime that sums in another order: each convolution's output is perturbed
  by Gaussian noise of standard deviation FLOAT32_UNIT x sqrt(fan-in) x its RMS (the rounding
  error a sum of fan-in float32 products accumulates), every other layer's by FLOAT32_UNIT x
  its RMS, and each resize's like a product of RESIZE_FAN_IN terms.

Their largest error against the float64 result is the **noise floor**. A candidate passes when

    max |candidate - float64| <= max(FACTOR x floor, FLOOR_MIN)

and a final image must also stay within VISIBLE of the float64 image (one level of an 8-bit
image: no viewer can tell the two apart), unless the weights amplify rounding so much that
faithful float32 arithmetic cannot (floor > VISIBLE): then within the floor itself. The
reasoning and the measurements behind FACTOR are in docs/conversion.md ("How parity is judged").
"""

import copy
import math
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from convert.contract import CONTROLS_OFF
from convert.onnx_export import STATISTICS, StatisticsTransform
from sanet.attention import channel_statistics
from sanet.controls import keep_colors
from sanet.model import SANet
from sanet.stylizer import resize, style_working_size, working_size

FLOAT32_UNIT = 2.0**-24  # float32's unit roundoff
# Measured (docs/conversion.md): faithful runtimes (ONNX Runtime, TensorFlow, TF.js wasm and
# cpu) stay within 1.11x the floor over four weight sets; every injected conversion defect is
# at least 113x over the tolerance. 8 leaves room on both sides.
FACTOR = 8.0
FLOOR_MIN = 1e-6  # below this, differences are at the level of float32 storage itself
VISIBLE = 1.0 / 255.0  # one level of an 8-bit image
# (tensor, fan_in) -> the tensor as a runtime would hold it: exactly, or rounded (Float32Noise).
Rounding = Callable[..., torch.Tensor]


@dataclass(frozen=True)
class Case:
    """One stylization request: image sizes as (height, width)."""

    content: tuple[int, int]
    style: tuple[int, int]
    iterations: int = 1
    strength: float = 1.0
    max_resolution: int = 0
    # The controls (sanet.controls); the defaults leave them out.
    style_resolution: int = -1  # -1: the content's rule
    style2: tuple[int, int] | None = None
    mix: float = 0.0
    mask: tuple[int, int] | None = None
    keep_colors: float = 0.0
    # The signature's tile side (0: untiled). The expected result is the untiled one: tiles
    # change only float rounding.
    tile: int = 0
    # Tiles that hold no content map (the signature's `stream`): the same expected result.
    stream: bool = False
    # The module is given the content's and the style's encodings (float32 PyTorch's) and a
    # decoy style image: the result must follow the encodings. Sizes as given (max_resolution
    # 0, the style's own rule), so that the encodings are of the images themselves.
    reuse: bool = False
    # The content in pieces of about this side (`convert.pieces`): measuring calls, then
    # stylizing calls with the pieces' moments. The expected result is the one call's.
    pieces: int = 0

    @property
    def label(self) -> str:
        (h, w), (sh, sw) = self.content, self.style
        parts = [f"{w}x{h} / {sw}x{sh}, it {self.iterations}, str {self.strength:g}"]
        if self.max_resolution:
            parts.append(f"max {self.max_resolution}")
        if self.style_resolution >= 0:
            parts.append(f"style res {self.style_resolution}")
        if self.style2:
            parts.append(f"mix {self.mix:g} of {self.style2[1]}x{self.style2[0]}")
        if self.mask:
            parts.append(f"mask {self.mask[1]}x{self.mask[0]}")
        if self.keep_colors:
            parts.append(f"keep colours {self.keep_colors:g}")
        if self.tile:
            parts.append(f"{'streamed ' if self.stream else ''}tiles {self.tile}")
        if self.reuse:
            parts.append("encodings given")
        if self.pieces:
            parts.append(f"in pieces of {self.pieces}")
        return ", ".join(parts)

    def images(self) -> tuple[np.ndarray, np.ndarray]:
        seed = self.content[0] * 7919 + self.content[1]
        return sample_image(*self.content, seed), sample_image(*self.style, seed + 1)

    def decoy(self) -> np.ndarray:
        """A style image other than `images()`'s, for a `reuse` case."""
        return sample_image(*self.style, self.content[0] * 7919 + self.content[1] + 5)

    def extras(self) -> tuple[np.ndarray, np.ndarray]:
        """The second style [h, w, 3] and the mask [h, w] (grey levels with black and white
        regions); when the case has none, what a caller sends instead: a 1 x 1 image (unused
        at mix 0) and a 1 x 1 mask of ones (everywhere)."""
        seed = self.content[0] * 7919 + self.content[1] + 2
        style2 = sample_image(*self.style2, seed) if self.style2 else CONTROLS_OFF["style2"]
        if not self.mask:
            return style2, CONTROLS_OFF["mask"]
        levels = sample_image(*self.mask, seed + 1)[..., 0]
        return style2, np.clip((levels - 0.5) * 3.0 + 0.5, 0.0, 1.0).astype(np.float32)


@dataclass(frozen=True)
class Expected:
    """A float64 result and what faithful float32 arithmetic may differ from it by."""

    exact: np.ndarray
    floor: float  # the largest error of the faithful float32 evaluations
    visible: bool = False  # a final image: also bounded by VISIBLE

    @property
    def tolerance(self) -> float:
        tolerance = max(FACTOR * self.floor, FLOOR_MIN)
        if self.visible:  # within sight of exact, unless float32 itself cannot be
            tolerance = min(tolerance, max(VISIBLE, self.floor))
        return tolerance


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

    def describe(self) -> str:
        """One line naming the stage, the case and the error."""
        return (
            f"{self.stage} ({self.case}): max error {self.max_abs:.2e} over tolerance "
            f"{self.tolerance:.2e} (float32 noise floor {self.floor:.2e})"
        )

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


def compare(stage: str, case: str, actual: np.ndarray, expected: Expected) -> Check:
    """Judge `actual` against the float64 result under the rule above."""
    error = _error(stage, case, actual, expected.exact)
    return Check(
        stage, case, float(error.max()), float(error.mean()), expected.floor, expected.tolerance
    )


def record(stage: str, case: str, actual: np.ndarray, baseline: np.ndarray) -> Check:
    """Measure `actual` against `baseline` without judging (the quantized variants)."""
    error = _error(stage, case, actual, baseline)
    return Check(stage, case, float(error.max()), float(error.mean()), 0.0, None)


def _error(stage: str, case: str, actual: np.ndarray, expected: np.ndarray) -> np.ndarray:
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    if actual.shape != expected.shape:
        raise ValueError(f"{stage} {case}: shape {actual.shape}, expected {expected.shape}")
    return np.abs(actual - expected)


class Float32Noise:
    """Rounding noise of a float32 runtime with its own summation order: as a context, after
    every layer of a model; called, on one tensor (each element a sum of `fan_in` products)."""

    def __init__(self, seed: int) -> None:
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, output: torch.Tensor, fan_in: int = 1) -> torch.Tensor:
        scale = FLOAT32_UNIT * math.sqrt(fan_in) * output.square().mean().sqrt()
        noise = torch.randn(output.shape, generator=self.generator, dtype=output.dtype)
        return output + scale * noise

    @contextmanager
    def on(self, model: nn.Module) -> Iterator[None]:
        def round_output(module: nn.Module, inputs: tuple, output: torch.Tensor) -> torch.Tensor:
            if isinstance(module, nn.Conv2d):
                return self(output, module.in_channels * math.prod(module.kernel_size))
            return self(output)

        leaves = [m for m in model.modules() if not list(m.children())]
        handles = [leaf.register_forward_hook(round_output) for leaf in leaves]
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()


# A resize sums a few taps per output pixel and per pass (2 to 4 when enlarging, more when
# shrinking): modelled as a product of this many terms.
RESIZE_FAN_IN = 16


class Reference:
    """Float64 results for a case and their float32 noise floor, computed once each."""

    def __init__(self, model: SANet) -> None:
        # Own copies: the noise hooks go on and off them in a background thread.
        self.float32 = copy.deepcopy(model).float().eval()
        self.float64 = copy.deepcopy(model).double().eval()
        self._stylized: dict[Case, Future] = {}
        self._graphs: dict[Case, Future] = {}
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reference")

    def prefetch(self, graph_cases: list[Case], stylize_cases: list[Case]) -> None:
        """Start computing these in a background thread; `graphs` and `stylize` then wait."""
        for case in graph_cases:
            if case not in self._graphs:
                self._graphs[case] = self._worker.submit(self._compute_graphs, case)
        for case in stylize_cases:
            if case not in self._stylized:
                self._stylized[case] = self._worker.submit(self._compute_stylize, case)

    def close(self) -> None:
        """Drop what was prefetched but not started (a run that stops early)."""
        self._worker.shutdown(wait=False, cancel_futures=True)

    def stylize(self, case: Case) -> Expected:
        """The result [H, W, 3] of `sanet.Stylizer.stylize`: scaled to the working size,
        stylized, clamped, scaled back to the content's size."""
        self.prefetch([], [case])
        return self._stylized[case].result()

    def encodings(self, case: Case) -> dict[str, np.ndarray]:
        """What a `reuse` case gives the module for its content and style (float32 PyTorch's
        relu4_1 and relu5_1, named as the signature's inputs); nothing for other cases."""
        if not case.reuse:
            return {}
        return self._worker.submit(self._compute_encodings, case).result()

    def graphs(self, case: Case) -> dict[str, tuple[dict[str, np.ndarray], dict[str, Expected]]]:
        """For each of the three graphs: its inputs for one pass of `case` (the float64
        pipeline's tensors, rounded to float32) and its outputs, expected as that pipeline's."""
        self.prefetch([case], [])
        return self._graphs[case].result()

    def _floors(self, case: Case, run, exact: list[np.ndarray]) -> list[float]:
        """The noise floor of each array `run(model, dtype, rounding)` returns, against its
        float64 value `exact`: the larger error of float32 and of float32 with noise."""
        float32 = run(self.float32, torch.float32, _exact)
        noise = Float32Noise(zlib.crc32(case.label.encode()))
        with noise.on(self.float32):
            noisy = run(self.float32, torch.float32, noise)
        return [
            max(_max_error(f, e), _max_error(n, e))
            for e, f, n in zip(exact, float32, noisy, strict=True)
        ]

    @torch.no_grad()
    def _compute_stylize(self, case: Case) -> Expected:
        content_image, style_image = case.images()
        style2_image, mask_image = case.extras()
        size = working_size(*case.content, case.max_resolution)
        style_resolution = None if case.style_resolution < 0 else case.style_resolution

        def run(model: SANet, dtype: torch.dtype, rounding: Rounding) -> list[np.ndarray]:
            def scaled(image: torch.Tensor, to: tuple[int, int]) -> torch.Tensor:
                if image.shape[-2:] == to:
                    return image
                return rounding(resize(image, to), RESIZE_FAN_IN)

            def styled(image: np.ndarray) -> torch.Tensor:
                to = style_working_size(image.shape[:2], case.max_resolution, style_resolution)
                return scaled(_tensor(image, dtype), to)

            controls = {}
            if case.mix:
                controls |= {"style2": styled(style2_image), "mix": case.mix}
            if case.mask:
                mask = torch.from_numpy(mask_image)[None, None].to(dtype)
                controls["mask"] = scaled(mask, size)
            result = model(
                scaled(_tensor(content_image, dtype), size),
                styled(style_image),
                iterations=case.iterations,
                strength=case.strength,
                **controls,
            )
            output = scaled(result, case.content)[0].permute(1, 2, 0).numpy()
            return [keep_colors(output, content_image, case.keep_colors)]

        exact = run(self.float64, torch.float64, _exact)
        [floor] = self._floors(case, run, exact)
        return Expected(exact[0], floor, visible=True)

    @torch.no_grad()
    def _compute_encodings(self, case: Case) -> dict[str, np.ndarray]:
        # In the background thread: it alone puts noise hooks on self.float32.
        assert case.max_resolution == 0 and case.style_resolution < 0, "sizes as given"
        encodings = {}
        for name, image in zip(("content", "style"), case.images(), strict=True):
            relu4_1, relu5_1 = self.float32.encoder(_tensor(image, torch.float32))
            encodings |= {f"{name}_relu4_1": relu4_1.numpy(), f"{name}_relu5_1": relu5_1.numpy()}
        return encodings

    @torch.no_grad()
    def _compute_graphs(self, case: Case) -> dict:
        content, style = (_tensor(a, torch.float64) for a in case.images())
        c4, c5 = self.float64.encoder(content)
        s4, s5 = self.float64.encoder(style)
        features = self.float64.transform(c4, s4, c5, s5)
        image = self.float64.decoder(features)
        statistics = (*channel_statistics(c4), *channel_statistics(c5))
        tensors = {
            "encoder": ({"image": content}, (c4, c5)),
            "transform": (
                {"content4_1": c4, "style4_1": s4, "content5_1": c5, "style5_1": s5}
                | dict(zip(STATISTICS, statistics, strict=True)),
                (features,),
            ),
            "decoder": ({"features": features}, (image,)),
        }
        graphs = {}
        for name, (inputs, outputs) in tensors.items():
            values = {k: v.float() for k, v in inputs.items()}
            exact = [t.numpy() for t in outputs]

            def run(model: SANet, dtype: torch.dtype, rounding, name=name, values=values) -> list:
                graph = StatisticsTransform(model.transform) if name == "transform" else None
                result = (graph or getattr(model, name))(*values.values())
                return [t.numpy() for t in (result if isinstance(result, tuple) else (result,))]

            floors = self._floors(case, run, exact)
            expected = {
                key: Expected(e, f)
                for key, e, f in zip(GRAPH_OUTPUTS[name], exact, floors, strict=True)
            }
            graphs[name] = ({k: v.numpy() for k, v in values.items()}, expected)
        return graphs


def _exact(tensor: torch.Tensor, fan_in: int = 1) -> torch.Tensor:
    return tensor


def _max_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(np.asarray(a, np.float64) - b).max())


def _tensor(image: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    return torch.from_numpy(image).permute(2, 0, 1)[None].to(dtype)


GRAPH_OUTPUTS = {
    "encoder": ("relu4_1", "relu5_1"),
    "transform": ("features",),
    "decoder": ("image",),
}
