"""The Python API: any size in, the same size out; resolution and memory limits."""

import numpy as np
import pytest
from conftest import smooth_image
from PIL import Image

from sanet import SANetError, Stylizer
from sanet.request import MIN_SIDE
from sanet.stylizer import estimate_memory_mb, working_size


@pytest.fixture(scope="module")
def stylizer(demo_weights):
    return Stylizer.from_checkpoints(demo_weights)


@pytest.mark.parametrize("size", [(100, 100), (500, 333), (17, 300), (300, 17), (5, 9)])
def test_output_has_the_content_size(stylizer, size):
    content, style = smooth_image(*size, seed=1), smooth_image(64, 64, seed=2)
    result = stylizer.stylize(content, style, max_resolution=0)
    assert result.shape == (*size, 3)
    assert result.dtype == np.float32 and result.min() >= 0.0 and result.max() <= 1.0


def test_pil_in_pil_out(stylizer):
    content = Image.fromarray((smooth_image(40, 70, seed=3) * 255).astype(np.uint8))
    result = stylizer.stylize(content, smooth_image(30, 30, seed=4))
    assert isinstance(result, Image.Image) and result.size == (70, 40) and result.mode == "RGB"


def test_demo_weights_are_labelled_untrained(stylizer):
    assert stylizer.untrained


def test_max_resolution_computes_smaller_but_returns_full_size(stylizer):
    content, style = smooth_image(120, 90, seed=5), smooth_image(50, 50, seed=6)
    seen = []
    stylizer.model.register_forward_pre_hook(lambda module, args: seen.append(args[0].shape))
    try:
        small = stylizer.stylize(content, style, max_resolution=40)
    finally:
        stylizer.model._forward_pre_hooks.clear()
    assert tuple(seen[0][-2:]) == (40, 30)
    assert small.shape == (120, 90, 3)


@pytest.mark.parametrize(
    ("size", "limit", "expected"),
    [((1000, 500), 512, (512, 256)), ((300, 400), 512, (300, 400)), ((300, 400), 0, (300, 400)),
     ((10, 40), 512, (MIN_SIDE, 68)), ((2000, 20), 512, (512, MIN_SIDE)),
     # the longest side exactly at the limit: scale 1, but the short side is still stretched
     ((10, 512), 512, (MIN_SIDE, 512)), ((512, 3), 512, (512, MIN_SIDE))],
)  # fmt: skip
def test_working_size(size, limit, expected):
    assert working_size(*size, limit) == expected


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"iterations": 0}, "iterations"), ({"strength": 1.5}, "strength"),
     ({"strength": -0.1}, "strength"), ({"max_resolution": -1}, "max resolution"),
     ({"max_resolution": 8}, "max resolution")],
)  # fmt: skip
def test_bad_arguments(stylizer, kwargs, message):
    with pytest.raises(SANetError, match=message):
        stylizer.stylize(smooth_image(32, 32, 1), smooth_image(32, 32, 2), **kwargs)


def test_memory_budget_refuses_with_advice(demo_weights):
    strict = Stylizer.from_checkpoints(demo_weights, memory_budget_mb=50)
    with pytest.raises(SANetError, match="--max-resolution"):
        strict.stylize(smooth_image(600, 600, 1), smooth_image(600, 600, 2), max_resolution=0)


def test_memory_estimate_follows_the_attention_matrix():
    widths = (64, 128, 256, 512)
    # 1024 px square content and style: (128*128)^2 floats = 1 GiB per attention matrix.
    big = estimate_memory_mb((1024, 1024), (1024, 1024), widths, blend=False)
    assert 3 * 1024 <= big <= 6 * 1024
    # Halving the style's sides divides the attention by four.
    assert estimate_memory_mb((1024, 1024), (512, 512), widths, blend=False) < big / 2


def test_memory_estimate_bounds_the_measured_peak(demo_weights):
    """Measured in a fresh process: the estimate covers the real peak, without being absurd."""
    import subprocess
    import sys

    # VmHWM, the peak of this process's own memory: unlike ru_maxrss, it does not start
    # from the forking parent's size (pytest with TensorFlow loaded is over 1 GB).
    script = f"""
import numpy as np
from sanet import Stylizer
from sanet.stylizer import estimate_memory_mb
def peak_mb():
    line = next(l for l in open("/proc/self/status") if l.startswith("VmHWM"))
    return int(line.split()[1]) // 1024
stylizer = Stylizer.from_checkpoints({str(demo_weights)!r})
image = np.random.default_rng(0).random((768, 768, 3)).astype(np.float32)
stylizer.stylize(image[:64, :64], image[:64, :64], max_resolution=0)  # warm up kernels
before = peak_mb()
stylizer.stylize(image, image, max_resolution=0)
print(peak_mb() - before, estimate_memory_mb((768, 768), (768, 768), stylizer.model.widths, False))
"""
    command = [sys.executable, "-c", script]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    measured, estimated = map(int, done.stdout.split())
    assert 0.25 * estimated <= measured <= estimated, (measured, estimated)
