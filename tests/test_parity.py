"""The model against an independent implementation of the paper's equations."""

import equations
import pytest
import torch
from conftest import smooth_image

from sanet.weights import load_model

TOLERANCE = 1e-4  # float32, on images in [0, 1]


def tensor(array):
    return torch.from_numpy(array).permute(2, 0, 1)[None]


@pytest.fixture(scope="module")
def loaded(release):
    directory, states = release
    model, _ = load_model(directory)
    return model, states


# 64x64 and 48x80: sizes the original handles (sides multiples of 16); the rest it does not.
@pytest.mark.parametrize(
    ("content_size", "style_size"),
    [((64, 64), (64, 64)), ((48, 80), (96, 64)), ((100, 100), (72, 40)), ((17, 300), (50, 50)),
     ((333, 250), (37, 41))],
)  # fmt: skip
@pytest.mark.parametrize("iterations", [1, 2])
def test_model_matches_equations(loaded, content_size, style_size, iterations):
    model, states = loaded
    content = tensor(smooth_image(*content_size, seed=1))
    style = tensor(smooth_image(*style_size, seed=2))
    vgg, decoder, transformer = states.values()
    expected = equations.stylize(content, style, vgg, decoder, transformer, iterations)
    with torch.no_grad():
        actual = model(content, style, iterations=iterations)
    assert actual.shape == content.shape
    assert expected.std() > 0.05 and ((expected > 0) & (expected < 1)).float().mean() > 0.8
    assert (actual - expected).abs().max() < TOLERANCE


@pytest.mark.parametrize("strength", [0.0, 0.3, 1.0])
def test_strength_blends_transform_outputs(loaded, strength):
    model, states = loaded
    content, style = tensor(smooth_image(48, 64, seed=3)), tensor(smooth_image(64, 48, seed=4))
    expected = equations.stylize(content, style, *states.values(), iterations=2, strength=strength)
    with torch.no_grad():
        actual = model(content, style, iterations=2, strength=strength)
    assert (actual - expected).abs().max() < TOLERANCE


def test_strength_changes_the_result(loaded):
    model, _ = loaded
    content, style = tensor(smooth_image(48, 64, seed=3)), tensor(smooth_image(64, 48, seed=4))
    with torch.no_grad():
        full, none = model(content, style, strength=1.0), model(content, style, strength=0.0)
    assert (full - none).abs().mean() > 1e-3


def test_style_is_encoded_once_per_call(loaded):
    model, _ = loaded
    calls = []
    handle = model.encoder.register_forward_hook(lambda *args: calls.append(1))
    try:
        with torch.no_grad():
            model(tensor(smooth_image(32, 32, 5)), tensor(smooth_image(32, 32, 6)), iterations=3)
    finally:
        handle.remove()
    assert len(calls) == 1 + 3  # the style once, the content at each iteration


def test_full_width_release_matches_equations(tmp_path):
    """The release's own widths (64..512), once, at a size the original handles."""
    from release_layout import make_release

    states = make_release(tmp_path, widths=(64, 128, 256, 512), seed=7)
    model, files = load_model(tmp_path)
    assert files.iteration == 500000 and not files.untrained
    content, style = tensor(smooth_image(64, 48, seed=8)), tensor(smooth_image(48, 64, seed=9))
    expected = equations.stylize(content, style, *states.values())
    with torch.no_grad():
        actual = model(content, style)
    assert (actual - expected).abs().max() < TOLERANCE
