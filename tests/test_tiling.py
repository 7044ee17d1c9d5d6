"""Full resolution in tiles: the same result as the untiled model, in bounded memory."""

import copy
import io
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import smooth_image
from PIL import Image

from convert.parity import Expected, Float32Noise
from sanet import SANetError, Stylizer
from sanet.encoder import FULL_WIDTHS
from sanet.model import SANet
from sanet.request import MIN_SIDE
from sanet.stylizer import estimate_memory_mb, style_working_size, working_size
from sanet.tiling import Tiling, decoder_margin, encoder_margin, plan_tiling, tiled_floats


@pytest.fixture(scope="module")
def models(demo_weights):
    model = Stylizer.from_checkpoints(demo_weights).model
    return model, copy.deepcopy(model).double()


def _images(size, dtype):
    def tensor(image):
        return torch.from_numpy(image).permute(2, 0, 1)[None].to(dtype)

    return tensor(smooth_image(*size, seed=1)), tensor(smooth_image(48, 40, seed=2))


@torch.no_grad()
def _run(model, size, iterations, strength, tiling=None, dtype=torch.float32):
    content, style = _images(size, dtype)
    return model(content, style, iterations, strength, tiling=tiling).double()


@pytest.fixture(scope="module")
def reference(models):
    """(size, iterations, strength) -> (the untiled float64 result, the tolerance): the
    parity suite's rule (convert/parity.py), which judges a tiled run like a converted one."""
    cache = {}

    def untiled(size, iterations, strength):
        key = (size, iterations, strength)
        if key not in cache:
            single, double = models
            exact = _run(double, size, iterations, strength, dtype=torch.float64)
            plain = _run(single, size, iterations, strength)
            with Float32Noise(seed=size[0] * 7919 + size[1]).on(single):
                noisy = _run(single, size, iterations, strength)
            floor = max(float((run - exact).abs().max()) for run in (plain, noisy))
            cache[key] = exact, Expected(exact.numpy(), floor, visible=True).tolerance
        return cache[key]

    return untiled


def _small_tiles(model, tile=32, chunk=7, encoder_cut=0, decoder_cut=0):
    """Tiles far smaller than the images, so that every size here is cut many times."""
    margins = (
        encoder_margin(model.encoder) - encoder_cut,
        decoder_margin(model.decoder) - decoder_cut,
    )
    return Tiling(tile, chunk, *margins)


def test_margins_cover_the_receptive_field(models):
    # By hand: relu5_1 sees 5 positions (80 px) past a cut edge (2 convolutions at full
    # resolution, 2 at 1/2, 4 at 1/4, 4 at 1/8 and 1 at 1/16, halving at each pooling);
    # the decoder's image sees 30 px, 3.75 relu4_1 positions, past a cut in its input.
    model = models[0]
    assert encoder_margin(model.encoder) == 80
    assert decoder_margin(model.decoder) == 4


@pytest.mark.parametrize("size", [(97, 131), (20, 700), (700, 20), (161, 229)])
@pytest.mark.parametrize(("iterations", "strength"), [(1, 1.0), (2, 0.6)])
def test_tiled_equals_untiled(models, reference, size, iterations, strength):
    untiled, tolerance = reference(size, iterations, strength)
    tiling = _small_tiles(models[0])
    steps = []
    tiling.step = lambda: steps.append(1)
    tiled = _run(models[0], size, iterations, strength, tiling)
    assert tiled.shape == untiled.shape
    assert float((tiled - untiled).abs().max()) <= tolerance
    # The style's tiles once, the content's twice (encode, decode) a pass.
    content_tiles = -(-size[0] // 32) * -(-size[1] // 32)
    assert len(steps) == 4 + 2 * iterations * content_tiles


@pytest.mark.parametrize(
    "defect",
    [{"encoder_cut": 16}, {"decoder_cut": 1}],
    ids=["encoder margin 16 px short", "decoder margin 1 short"],
)
def test_a_defective_tiling_is_caught(models, reference, defect):
    """The equality above fails on a real defect: the margins are the least that is exact."""
    size = (161, 229)
    untiled, tolerance = reference(size, 1, 1.0)
    tiled = _run(models[0], size, 1, 1.0, _small_tiles(models[0], **defect))
    assert float((tiled - untiled).abs().max()) > 10 * tolerance


@pytest.mark.parametrize(("tile", "margin"), [(40, 80), (32, 72), (0, 80)])
def test_tiles_must_lie_on_the_pooling_grid(tile, margin):
    with pytest.raises(ValueError, match="multiple"):
        Tiling(tile, 1, margin, 4)


def _stylizer(demo_weights, budget_mb):
    return Stylizer.from_checkpoints(demo_weights, memory_budget_mb=budget_mb)


def test_stylizer_tiles_a_request_over_the_budget(demo_weights):
    content, style = smooth_image(600, 520, seed=3), smooth_image(300, 300, seed=4)
    unlimited = _stylizer(demo_weights, 0)
    model = unlimited.model
    # A budget that holds 256 px tiles: 3 x 3 of them per encoding or decoding.
    tiles = Tiling(256, 1, encoder_margin(model.encoder), decoder_margin(model.decoder))
    floats = tiled_floats((600, 520), (300, 300), model.widths, True, tiles)
    budget = -(-floats * 4 // 2**20)
    assert estimate_memory_mb((600, 520), (300, 300), model.widths, blend=True) > budget
    heard = []
    tiled = _stylizer(demo_weights, budget).stylize(
        content,
        style,
        strength=0.7,
        max_resolution=0,
        tile_progress=lambda done, total: heard.append((done, total)),
    )
    expected = unlimited.stylize(content, style, strength=0.7, max_resolution=0)
    assert np.abs(tiled - expected).max() <= 1e-4  # two float32 runs of one computation
    assert heard == [(done, 2 * 9 + 4) for done in range(1, 23)]


def test_plan_fits_the_budget_and_uses_it():
    model = SANet(FULL_WIDTHS)  # the architecture alone: untrained weights are fine
    content, style, budget = (3000, 4000), (512, 512), 6 * 2**30 // 4
    tiling, floats = plan_tiling(
        model.encoder, model.decoder, model.widths, content, style, False, budget
    )
    assert floats <= budget and tiling.tile % 16 == 0
    assert floats == tiled_floats(content, style, model.widths, False, tiling)
    # The next tile size up would not fit, or the tiles are already at their largest.
    larger = Tiling(tiling.tile + 16, tiling.chunk, tiling.encoder_margin, tiling.decoder_margin)
    assert tiling.tile == 1024 or tiled_floats(content, style, model.widths, False, larger) > budget


def test_refuses_what_does_not_fit_even_in_tiles(demo_weights):
    with pytest.raises(SANetError, match=r"even in tiles.*--max-resolution"):
        _stylizer(demo_weights, 20).stylize(
            smooth_image(900, 900, 1), smooth_image(64, 64, 2), max_resolution=0
        )


def test_style_resolution_default_keeps_the_content_rule():
    assert style_working_size((1200, 900), 512, None) == working_size(1200, 900, 512)
    assert style_working_size((1200, 900), 0, None) == (1200, 900)


@pytest.mark.parametrize(
    ("shape", "resolution", "expected"),
    [((600, 400), 1200, (1200, 800)), ((1200, 900), 300, (300, 225)),
     ((1200, 900), 0, (1200, 900)), ((700, 20), 350, (350, MIN_SIDE))],
)  # fmt: skip
def test_style_resolution_scales_up_or_down(shape, resolution, expected):
    assert style_working_size(shape, 512, resolution) == expected


def test_style_resolution_changes_the_style_tensor(demo_weights):
    stylizer = _stylizer(demo_weights, 0)
    seen = []
    hook = stylizer.model.register_forward_pre_hook(lambda module, args: seen.append(args[1]))
    try:
        stylizer.stylize(smooth_image(40, 40, 1), smooth_image(30, 60, 2), style_resolution=120)
    finally:
        hook.remove()
    assert tuple(seen[0].shape[-2:]) == (60, 120)


@pytest.mark.parametrize("value", [-1, 8])
def test_bad_style_resolution(demo_weights, value):
    with pytest.raises(SANetError, match="style resolution"):
        _stylizer(demo_weights, 0).stylize(
            smooth_image(32, 32, 1), smooth_image(32, 32, 2), style_resolution=value
        )


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "sanet", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    directory = tmp_path_factory.mktemp("photo")
    for name, size, seed in (("content.png", (430, 610), 5), ("style.png", (200, 160), 6)):
        Image.fromarray((smooth_image(*size, seed=seed) * 255).astype(np.uint8)).save(
            directory / name
        )
    return directory / "content.png", directory / "style.png"


def test_cli_full_resolution_in_tiles_matches_untiled(photo, demo_weights, tmp_path):
    common = ["stylize", *photo, "--weights", demo_weights, "--max-resolution", "0"]
    untiled = _cli(*common, "-o", tmp_path / "untiled.png", "--memory-budget", "100000")
    tiled = _cli(*common, "-o", tmp_path / "tiled.png", "--memory-budget", "40")
    assert untiled.returncode == 0 and tiled.returncode == 0, tiled.stderr
    assert "tiles" not in untiled.stderr and "tiles: 100%" in tiled.stderr
    with Image.open(tmp_path / "untiled.png") as a, Image.open(tmp_path / "tiled.png") as b:
        assert a.size == b.size == (610, 430)
        assert np.abs(np.asarray(a, np.int16) - np.asarray(b, np.int16)).max() <= 1


def test_cli_style_resolution(photo, demo_weights, tmp_path):
    output = tmp_path / "out.png"
    done = _cli("stylize", *photo, "-o", output, "--weights", demo_weights,
                "--style-resolution", "700")  # fmt: skip
    assert done.returncode == 0, done.stderr
    bad = _cli("stylize", *photo, "-o", tmp_path / "bad.png", "--style-resolution", "9")
    assert bad.returncode == 2 and "--style-resolution" in bad.stderr
    assert not (tmp_path / "bad.png").exists()


def _huge(directory):
    """A 30000 x 30000 PNG (900 megapixels) that is small on disk: one bit per pixel."""
    path = directory / "huge.png"
    Image.new("1", (30000, 30000), 1).save(path)
    return path


def _truncated(directory):
    """The first half of a large JPEG."""
    path, whole = directory / "truncated.jpg", io.BytesIO()
    Image.fromarray((smooth_image(1500, 2000, seed=7) * 255).astype(np.uint8)).save(whole, "JPEG")
    path.write_bytes(whole.getvalue()[: len(whole.getvalue()) // 2])
    return path


def _wide(directory):
    """30000 x 600 pixels: readable, but far over a small budget at full resolution."""
    path = directory / "wide.png"
    Image.new("L", (30000, 600), 128).save(path)
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [(_huge, "too large: images over 178 megapixels"), (_truncated, "damaged or unreadable"),
     (_wide, "even in tiles, over the 200 MB budget")],
)  # fmt: skip
def test_huge_or_broken_input_is_one_line(photo, demo_weights, tmp_path, make, message):
    output = tmp_path / "out.png"
    done = _cli("stylize", make(tmp_path), photo[1], "-o", output, "--weights", demo_weights,
                "--max-resolution", "0", "--memory-budget", "200")  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and message in done.stderr, done.stderr
    assert not output.exists() and not list(tmp_path.glob(".out.png*"))
