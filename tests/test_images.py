"""Reading every common image kind and writing results atomically."""

import numpy as np
import pytest
from PIL import Image

from sanet import SANetError
from sanet.images import check_output_path, read_image, to_rgb_array, write_image


def test_grayscale_becomes_rgb(tmp_path):
    Image.fromarray(np.full((5, 7), 128, np.uint8), "L").save(tmp_path / "g.png")
    image = read_image(tmp_path / "g.png")
    assert image.shape == (5, 7, 3) and np.allclose(image, 128 / 255)


def test_palette(tmp_path):
    palette = Image.new("P", (4, 3))
    palette.putpalette([255, 0, 0] + [0, 0, 255] * 255)
    palette.save(tmp_path / "p.png")
    assert np.allclose(read_image(tmp_path / "p.png")[0, 0], [1, 0, 0])


def test_rgba_is_composited_on_white(tmp_path):
    pixels = np.zeros((2, 2, 4), np.uint8)
    pixels[0, 0] = [0, 0, 0, 0]  # fully transparent black -> white
    pixels[0, 1] = [0, 0, 0, 255]  # opaque black stays black
    pixels[1, :] = [255, 0, 0, 128]  # half-transparent red -> pink
    Image.fromarray(pixels, "RGBA").save(tmp_path / "a.png")
    image = read_image(tmp_path / "a.png")
    assert np.allclose(image[0, 0], 1) and np.allclose(image[0, 1], 0)
    assert np.allclose(image[1, 0], [1, 127 / 255, 127 / 255], atol=1e-2)


def test_sixteen_bit_keeps_precision(tmp_path):
    values = np.array([[0, 257, 65535, 1000]], np.uint16)
    Image.fromarray(values).save(tmp_path / "d.png")
    with Image.open(tmp_path / "d.png") as check:
        assert check.mode.startswith("I")
    image = read_image(tmp_path / "d.png")
    assert np.allclose(image[0, :, 0], values[0] / 65535, atol=1e-6)


def test_exif_orientation_is_applied(tmp_path):
    pixels = np.zeros((10, 20, 3), np.uint8)
    pixels[:, :10] = 255  # white on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: display turns it 90 degrees clockwise
    Image.fromarray(pixels).save(tmp_path / "r.jpg", exif=exif, quality=100)
    image = read_image(tmp_path / "r.jpg")
    assert image.shape == (20, 10, 3)
    assert image[2, :, 0].mean() > 0.9 and image[-2, :, 0].mean() < 0.1  # left became top


def test_webp(tmp_path):
    Image.fromarray(np.full((6, 8, 3), 200, np.uint8)).save(tmp_path / "w.webp", lossless=True)
    assert np.allclose(read_image(tmp_path / "w.webp"), 200 / 255)


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"not an image at all", "not an image"), (None, "no such file"), ("dir", "directory")],
)
def test_unreadable_inputs(tmp_path, content, message):
    path = tmp_path / "x.png"
    if content == "dir":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(SANetError, match=message):
        read_image(path)


def test_truncated_image(tmp_path):
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(
        tmp_path / "t.jpg"
    )
    data = (tmp_path / "t.jpg").read_bytes()
    (tmp_path / "t.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(SANetError, match="damaged"):
        read_image(tmp_path / "t.jpg")


def test_arrays():
    assert to_rgb_array(np.zeros((3, 4), np.uint8)).shape == (3, 4, 3)
    assert to_rgb_array(np.full((3, 4, 1), 65535, np.uint16)).max() == 1.0
    with pytest.raises(SANetError, match="shape"):
        to_rgb_array(np.zeros((3, 4, 2)))
    with pytest.raises(SANetError, match="NaN"):
        to_rgb_array(np.full((3, 4, 3), np.nan))


@pytest.mark.parametrize(
    ("name", "kind"), [("o.png", "PNG"), ("o.JPG", "JPEG"), ("o.jpeg", "JPEG")]
)
def test_writes_by_extension(tmp_path, name, kind):
    write_image(np.full((5, 6, 3), 0.5, np.float32), tmp_path / name, note="hello")
    with Image.open(tmp_path / name) as image:
        assert image.format == kind and image.size == (6, 5)
        if kind == "PNG":
            assert image.info["Comment"] == "hello"
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no temporary left behind


@pytest.mark.parametrize(
    ("name", "message"), [("o.gif", "must end in"), ("no/o.png", "does not exist")]
)
def test_bad_output_paths(tmp_path, name, message):
    with pytest.raises(SANetError, match=message):
        check_output_path(tmp_path / name)


def test_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "o.png"
    target.write_bytes(b"old")

    def broken_save(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(SANetError, match="No space left"):
        write_image(np.zeros((2, 2, 3)), target)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["o.png"]
