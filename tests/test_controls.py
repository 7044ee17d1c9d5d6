"""The creative controls: keep the content's colours, mix two styles, stylize only a region."""

import copy
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import smooth_image
from PIL import Image

from sanet import SANetError, Stylizer
from sanet.cli import main
from sanet.stylizer import estimate_memory_mb
from sanet.tiling import decoder_margin

PARITY = 1e-5  # float32, the same computations in another order


@pytest.fixture(scope="module")
def stylizer(demo_weights):
    return Stylizer.from_checkpoints(demo_weights)


@pytest.fixture(scope="module")
def images():
    return smooth_image(64, 96, seed=11), smooth_image(48, 48, seed=12), smooth_image(56, 40, 13)


def chroma(rgb: np.ndarray) -> np.ndarray:
    """(Cb, Cr) by ITU-R BT.601's definition (Kr = 0.299, Kb = 0.114), without offsets."""
    kr, kb = 0.299, 0.114
    rgb = rgb.astype(np.float64)
    luma = kr * rgb[..., 0] + (1 - kr - kb) * rgb[..., 1] + kb * rgb[..., 2]
    return np.stack([(rgb[..., 2] - luma) / (2 * (1 - kb)), (rgb[..., 0] - luma) / (2 * (1 - kr))])


def unclipped(rgb: np.ndarray) -> np.ndarray:
    """Pixels no channel of which sits on 0 or 1, where the final clip did not bite."""
    return ((rgb > 1e-6) & (rgb < 1 - 1e-6)).all(axis=-1)


def test_keep_colors_gives_the_contents_chroma(stylizer, images):
    content, style, _ = images
    plain = stylizer.stylize(content, style)
    kept = stylizer.stylize(content, style, keep_colors=1.0)
    half = stylizer.stylize(content, style, keep_colors=0.5)
    # Clipping changes a pixel's chroma; only where no channel was clipped must it be exact.
    where = unclipped(kept) & unclipped(half)
    assert where.mean() > 0.5
    assert np.abs(chroma(kept) - chroma(content))[:, where].max() < PARITY
    midway = (chroma(plain) + chroma(content)) / 2
    assert np.abs(chroma(half) - midway)[:, where].max() < PARITY
    # The luminance stays the stylization's.
    luma = [image @ np.array([0.299, 0.587, 0.114]) for image in (plain, kept)]
    assert np.abs(luma[0] - luma[1])[where].max() < PARITY
    assert np.abs(chroma(plain) - chroma(content)).max() > 0.05  # the test has teeth


def test_defaults_leave_the_output_unchanged_bit_for_bit(stylizer, images):
    content, style, second = images
    today = stylizer.stylize(content, style, strength=0.7)
    same = stylizer.stylize(content, style, strength=0.7, keep_colors=0.0, style2=second, mix=0)
    assert np.array_equal(today, same)


def test_mix_reproduces_each_style_at_its_ends_and_blends_between(stylizer, images):
    content, first, second = images
    alone = [stylizer.stylize(content, style) for style in (first, second)]
    mixed = {m: stylizer.stylize(content, first, style2=second, mix=m) for m in (0, 0.5, 1)}
    assert np.array_equal(mixed[0], alone[0])
    assert np.abs(mixed[1] - alone[1]).max() < PARITY
    assert min(np.abs(mixed[0.5] - image).max() for image in alone) > 0.02


def test_mix_one_is_the_second_style_over_iterations_in_float64(stylizer, images):
    # Each iteration feeds the unclamped image back: with untrained weights float32 rounding
    # (1e-7) grows to 1e-4 in two iterations, so the equations are compared in float64.
    model = copy.deepcopy(stylizer.model).double()
    content, first, second = (torch.from_numpy(a).double().permute(2, 0, 1)[None] for a in images)
    with torch.no_grad():
        expected = model(content, second, iterations=2, strength=0.6)
        result = model(content, first, iterations=2, strength=0.6, style2=second, mix=1.0)
    assert (result - expected).abs().max() < 1e-10


def test_second_style_defaults_to_an_even_mix(stylizer, images):
    content, first, second = images
    assert np.array_equal(
        stylizer.stylize(content, first, style2=second),
        stylizer.stylize(content, first, style2=second, mix=0.5),
    )


def test_both_styles_are_encoded_once(stylizer, images):
    content, first, second = images
    encoded = []
    hook = stylizer.model.encoder.register_forward_hook(lambda *args: encoded.append(1))
    try:
        stylizer.stylize(content, first, iterations=3, style2=second, mix=0.3)
    finally:
        hook.remove()
    assert len(encoded) == 2 + 3  # two styles, then the content at each iteration


def test_mask_stylizes_only_the_white_region(stylizer):
    # 64 x 224 px: relu4_1 is 8 x 28, the mask's edge at column 14. Farther than the decoder's
    # reach plus the mask's resampling (one position), features and so pixels are exact.
    content, style = smooth_image(64, 224, seed=21), smooth_image(48, 48, seed=22)
    mask = np.zeros((64, 224), np.float32)
    mask[:, :112] = 1.0
    full = stylizer.stylize(content, style, max_resolution=0)
    kept = stylizer.stylize(content, style, max_resolution=0, strength=0.0)
    masked = stylizer.stylize(content, style, max_resolution=0, mask=mask)
    reach = 8 * (decoder_margin(stylizer.model.decoder) + 2)
    assert np.abs(masked[:, : 112 - reach] - full[:, : 112 - reach]).max() < PARITY
    assert np.abs(masked[:, 112 + reach :] - kept[:, 112 + reach :]).max() < PARITY
    assert np.abs(full - kept)[:, 112 + reach :].max() > 0.05  # the two sides differ


@pytest.mark.parametrize(
    "mask",
    [np.ones((7, 300), np.float32), np.full((500, 3, 3), 255, np.uint8),
     Image.new("L", (13, 1), 255), Image.new("RGBA", (30, 20), (0, 0, 0, 0))],
)  # fmt: skip
def test_a_white_mask_of_any_size_reproduces_todays_result(stylizer, images, mask):
    content, style, _ = images
    today = stylizer.stylize(content, style, strength=0.8)
    assert np.abs(stylizer.stylize(content, style, strength=0.8, mask=mask) - today).max() < PARITY


def test_a_grey_mask_is_a_partial_strength(stylizer, images):
    content, style, _ = images
    grey = np.full((10, 10), 0.5, np.float32)
    half = stylizer.stylize(content, style, strength=0.5)
    assert np.abs(stylizer.stylize(content, style, mask=grey) - half).max() < PARITY


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"keep_colors": 1.5}, "keep colors must be between 0 and 1, got 1.5"),
     ({"keep_colors": -0.1}, "keep colors must be between 0 and 1"),
     ({"mix": 1.01, "style2": smooth_image(20, 20, 1)}, "mix must be between 0 and 1, got 1.01"),
     ({"mix": 0.5}, "mix needs a second style"),
     ({"mask": np.zeros((0, 5), np.float32)}, "the mask image is empty"),
     ({"style2": np.zeros((4, 0, 3), np.uint8)}, "the second style image is empty")],
)  # fmt: skip
def test_bad_controls_are_refused(stylizer, images, kwargs, message):
    content, style, _ = images
    with pytest.raises(SANetError, match=message):
        stylizer.stylize(content, style, **kwargs)


def test_memory_estimate_counts_the_second_styles_attention():
    widths, content = (64, 128, 256, 512), (1024, 1024)
    one = estimate_memory_mb(content, (256, 256), widths, blend=False)
    two = estimate_memory_mb(content, (256, 256), widths, blend=False, style2=(1024, 1024))
    assert two >= estimate_memory_mb(content, (1024, 1024), widths, blend=False) > 4 * one


def test_a_larger_second_style_runs_in_tiles_with_the_same_result(demo_weights):
    content, first = smooth_image(256, 256, seed=30), smooth_image(48, 48, seed=31)
    second = smooth_image(400, 400, seed=32)
    sizes = (256, 256), (48, 48)
    tight = Stylizer.from_checkpoints(demo_weights, memory_budget_mb=40)
    assert tight.tiling(*sizes, 1.0) is None  # one style fits untiled, the second does not
    # A mask needs the content's self-attention, as strength < 1 does: more than a budget
    # that the same request without it fits whole.
    smaller = Stylizer.from_checkpoints(demo_weights, memory_budget_mb=14)
    assert smaller.tiling(*sizes, 1.0) is None
    with pytest.raises(SANetError, match="even in tiles"):
        smaller.tiling(*sizes, 1.0, masked=True)
    tiling = tight.tiling(*sizes, 1.0, style2_size=(400, 400))
    assert tiling is not None
    heard = []
    result = tight.stylize(
        content, first, style2=second, mix=0.7, max_resolution=0,
        tile_progress=lambda done, total: heard.append((done, total)),
    )  # fmt: skip
    roomy = Stylizer.from_checkpoints(demo_weights, memory_budget_mb=0)
    expected = roomy.stylize(content, first, style2=second, mix=0.7, max_resolution=0)
    assert np.abs(result - expected).max() < 1e-4  # chunked attention sums in another order
    total = tiling.tiles((48, 48)) + tiling.tiles((400, 400)) + 2 * tiling.tiles((256, 256))
    assert heard[-1] == (total, total) and len(heard) == total


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    directory = tmp_path_factory.mktemp("controls")
    for name, (height, width, seed) in {
        "c.jpg": (60, 90, 41), "s.png": (40, 40, 42), "s2.png": (50, 30, 43)
    }.items():  # fmt: skip
        pixels = (smooth_image(height, width, seed) * 255).astype(np.uint8)
        Image.fromarray(pixels).save(directory / name)
    mask = np.zeros((20, 70), np.uint8)
    mask[:, :35] = 255
    Image.fromarray(mask).save(directory / "mask.png")
    (directory / "empty.png").write_bytes(b"")
    (directory / "text.png").write_text("not an image")
    return directory


def stylize_cli(files, weights, output, *flags):
    inputs = [files / "c.jpg", files / "s.png", "-o", output, "--weights", weights]
    return main(["stylize", *map(str, inputs), "--max-resolution", "64", *map(str, flags)])


def test_cli_controls_end_to_end_and_recorded(files, demo_weights, tmp_path, capsys):
    output = tmp_path / "out.png"
    flags = ["--keep-colors", "0.8", "--style2", files / "s2.png", "--mix", "0.25",
             "--mask", files / "mask.png"]  # fmt: skip
    assert stylize_cli(files, demo_weights, output, *flags) == 0
    err = capsys.readouterr().err
    assert "second style 30x50, mask 70x20" in err
    assert err.count("encode") == 3  # the style, the second style, the content
    with Image.open(output) as result:
        comment = result.info["Comment"]
        assert result.size == (90, 60) and np.asarray(result).std() > 5
    for text in ("c.jpg with s.png", "keep colors 0.8", "second style s2.png, mix 0.25",
                 "mask mask.png", "UNTRAINED"):  # fmt: skip
        assert text in comment
    plain = tmp_path / "plain.png"
    assert stylize_cli(files, demo_weights, plain) == 0
    with Image.open(plain) as result:
        assert "keep colors" not in result.info["Comment"] and "mask" not in result.info["Comment"]
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "message"),
    [(["--mix", "0.5"], "--mix needs --style2"),
     (["--mask", "empty.png"], "empty.png: not an image"),
     (["--style2", "text.png"], "text.png: not an image"),
     (["--mask", "missing.png"], "missing.png: no such file")],
)  # fmt: skip
def test_cli_bad_control_input_is_one_line_and_no_file(
    files, demo_weights, tmp_path, capsys, flags, message
):
    output = tmp_path / "out.png"
    flags = [files / flag if flag.endswith(".png") else flag for flag in flags]
    assert stylize_cli(files, demo_weights, output, *flags) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and err[0].startswith("sanet: error:")
    assert not output.exists()


@pytest.mark.parametrize("flag", ["--keep-colors", "--mix"])
def test_cli_refuses_out_of_range_amounts_with_the_range(files, demo_weights, tmp_path, flag):
    done = subprocess.run(
        [sys.executable, "-m", "sanet", "stylize", files / "c.jpg", files / "s.png", "-o",
         tmp_path / "o.png", "--style2", files / "s2.png", flag, "1.5"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2 and "must be between 0 and 1, got 1.5" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not (tmp_path / "o.png").exists()
