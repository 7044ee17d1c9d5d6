"""Full resolution in tiles: the same result as the untiled model, in bounded memory."""

import copy
import dataclasses
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
from sanet.tiling import (
    Tiling,
    _Moments,
    decoder_margin,
    encoder_margin,
    features_margin,
    plan_tiling,
    tiled_floats,
)


@pytest.fixture(scope="module")
def models(demo_weights):
    model = Stylizer.from_checkpoints(demo_weights).model
    return model, copy.deepcopy(model).double()


def _images(size, dtype):
    def tensor(image):
        return torch.from_numpy(image).permute(2, 0, 1)[None].to(dtype)

    images = (smooth_image(*size, seed=1), smooth_image(48, 40, seed=2), smooth_image(36, 52, 9))
    return tuple(tensor(image) for image in images)


@torch.no_grad()
def _run(model, size, iterations, strength, tiling=None, dtype=torch.float32, mix=0.0):
    """A stylization of `size`; `mix` > 0 mixes in a second style."""
    content, style, style2 = _images(size, dtype)
    second = {"style2": style2, "mix": mix} if mix else {}
    return model(content, style, iterations, strength, tiling=tiling, **second).double()


@pytest.fixture(scope="module")
def reference(models):
    """(size, iterations, strength, mix) -> (the untiled float64 result, the tolerance): the
    parity suite's rule (convert/parity.py), which judges a tiled run like a converted one."""
    cache = {}

    def untiled(size, iterations, strength, mix=0.0):
        key = (size, iterations, strength, mix)
        if key not in cache:
            single, double = models
            exact = _run(double, size, iterations, strength, dtype=torch.float64, mix=mix)
            plain = _run(single, size, iterations, strength, mix=mix)
            with Float32Noise(seed=size[0] * 7919 + size[1]).on(single):
                noisy = _run(single, size, iterations, strength, mix=mix)
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


def _streamed(model, decoder_cut=0):
    """A streamed tiling of 32 px tiles (see `_small_tiles`)."""
    margin = features_margin(model.transform, model.decoder) - decoder_cut
    return Tiling(32, 7, encoder_margin(model.encoder), margin, streamed=True)


@pytest.mark.parametrize("size", [(97, 131), (20, 700), (700, 20), (161, 229)])
@pytest.mark.parametrize(("iterations", "mix"), [(1, 0.0), (2, 0.0), (1, 0.4)])
def test_streamed_equals_untiled(models, reference, size, iterations, mix):
    """Holding no content map (statistics first, then each decoder tile encoding its own
    region) gives the untiled result, a second style mixed in included."""
    untiled, tolerance = reference(size, iterations, 1.0, mix)
    tiling = _streamed(models[0])
    steps = []
    tiling.step = lambda: steps.append(1)
    streamed = _run(models[0], size, iterations, 1.0, tiling, mix=mix)
    assert streamed.shape == untiled.shape
    assert float((streamed - untiled).abs().max()) <= tolerance
    # Each style's tiles once; the content's twice (statistics, then encode-and-decode) a pass.
    content_tiles = -(-size[0] // 32) * -(-size[1] // 32)
    assert len(steps) == 4 + 4 * (mix > 0) + 2 * iterations * content_tiles


class _WithinTiles(_Moments):
    """A defect: each tile's spread about its own mean, the spread between tiles forgotten."""

    def add(self, part):
        previous = self.squares
        super().add(part)
        mean = part.double().mean(dim=(2, 3), keepdim=True)
        self.squares = previous + (part.double() - mean).square().sum(dim=(2, 3), keepdim=True)


@pytest.mark.parametrize("defect", ["decoder margin 2 short", "statistics within tiles"])
def test_a_defective_streamed_tiling_is_caught(models, reference, monkeypatch, defect):
    size = (161, 229)
    untiled, tolerance = reference(size, 1, 1.0)
    if defect == "statistics within tiles":
        monkeypatch.setattr("sanet.tiling._Moments", _WithinTiles)
    tiling = _streamed(models[0], decoder_cut=2 if "margin" in defect else 0)
    streamed = _run(models[0], size, 1, 1.0, tiling)
    assert float((streamed - untiled).abs().max()) > 10 * tolerance


def test_a_streamed_tiling_refuses_what_needs_the_whole_map(models):
    content, style, _ = _images((64, 64), torch.float32)
    with pytest.raises(ValueError, match="streamed"):
        models[0](content, style, strength=0.5, tiling=_streamed(models[0]))


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


def _plan(content, budget_mb, blend=False, streamed=None):
    model = SANet(FULL_WIDTHS)  # the architecture alone: untrained weights are fine
    parts = model.transform, model.encoder, model.decoder, model.widths
    budget = budget_mb * 2**20 // 4
    return plan_tiling(*parts, content, (512, 512), blend, budget, streamed), budget


def test_stylizer_streams_a_request_whose_maps_do_not_fit(demo_weights):
    """A budget under what holding the content's maps needs even in the smallest tiles, but
    over what streaming needs: the same picture, streamed, with a tick per tile."""
    content, style = smooth_image(800, 700, seed=3), smooth_image(300, 300, seed=4)
    unlimited = _stylizer(demo_weights, 0)
    model = unlimited.model
    parts = model.transform, model.encoder, model.decoder, model.widths
    _, held = plan_tiling(*parts, (800, 700), (300, 300), False, 1, streamed=False)
    budget = held * 4 // 2**20 - 1
    streamed = _stylizer(demo_weights, budget)
    tiling = streamed.tiling((800, 700), (300, 300), 1.0)
    assert tiling is not None and tiling.streamed
    heard = []
    result = streamed.stylize(
        content, style, max_resolution=0, tile_progress=lambda *tick: heard.append(tick)
    )
    expected = unlimited.stylize(content, style, max_resolution=0)
    # Two float32 runs of one computation; the statistics are summed in another order.
    assert np.abs(result - expected).max() <= 1e-4
    total = tiling.count((800, 700), (300, 300), 1)
    assert heard == [(done, total) for done in range(1, total + 1)]


def test_plan_fits_the_budget_and_uses_it():
    (tiling, floats), budget = _plan((3000, 4000), 6 * 1024)
    assert floats <= budget and tiling.tile % 16 == 0 and not tiling.streamed
    assert floats == tiled_floats((3000, 4000), (512, 512), FULL_WIDTHS, False, tiling)
    # The next tile size up would not fit, or the tiles are already at their largest.
    larger = dataclasses.replace(tiling, tile=tiling.tile + 16)
    needed = tiled_floats((3000, 4000), (512, 512), FULL_WIDTHS, False, larger)
    assert tiling.tile == 1024 or needed > budget


def test_plan_streams_when_the_maps_do_not_fit():
    """At 12 MP, 1.5 GB holds the images but not the content's maps: streamed, in the
    largest tiles that fit. A strength below 1 (or a caller that needs the maps) cannot
    stream: over the budget."""
    (tiling, floats), budget = _plan((3000, 4000), 1536)
    assert tiling.streamed and floats <= budget
    larger = dataclasses.replace(tiling, tile=tiling.tile + 16)
    assert tiled_floats((3000, 4000), (512, 512), FULL_WIDTHS, False, larger) > budget
    (held, floats), _ = _plan((3000, 4000), 6 * 1024)
    assert not held.streamed  # what fits both ways runs the cheaper, holding the maps
    (forced, _), _ = _plan((3000, 4000), 6 * 1024, streamed=True)
    assert forced.streamed and forced.tile > tiling.tile  # asked for, and with more room
    for refused in (_plan((3000, 4000), 1536, blend=True), _plan((3000, 4000), 1536, False, False)):
        (tiling, floats), budget = refused
        assert not tiling.streamed and floats > budget


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
    tiled = _cli(*common, "-o", tmp_path / "tiled.png", "--memory-budget", "45")
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
