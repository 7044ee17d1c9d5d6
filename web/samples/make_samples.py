"""Make the page's sample gallery: photos from scikit-image's bundled data, textures drawn here.

The photos come from the scikit-image wheel on PyPI (its `skimage/data/` folder); every one used
here is public domain or CC0 (see CREDITS.md).  The style textures are generated procedurally by
this script from fixed seeds, so they are this project's own work.  All images are resized to at
most 512 px on their longest side and saved as JPEG, quality 85.

Usage: python web/samples/make_samples.py [--wheel PATH]   (without --wheel, pip downloads it)
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

HERE = Path(__file__).resolve().parent
SIZE = 512
QUALITY = 85
# output name -> file inside the wheel's skimage/data/
PHOTOS = {
    "content-astronaut.jpg": "astronaut.png",
    "content-coffee.jpg": "coffee.png",
    "content-chelsea.jpg": "chelsea.png",
    "content-rocket.jpg": "rocket.jpg",
    "style-hubble.jpg": "hubble_deep_field.jpg",
}
PALETTES = {
    "night": ["#0b1d51", "#1f3f8f", "#3f6fc1", "#e8c547", "#f2e394", "#101020"],
    "ember": ["#3b0d11", "#8c1c13", "#d94f04", "#f29f05", "#f2e8cf", "#1b1b1e"],
    "lagoon": ["#05386b", "#379683", "#5cdb95", "#8ee4af", "#edf5e1", "#ffcb77"],
}


def _palette(name: str) -> np.ndarray:
    return np.array([[int(c[i : i + 2], 16) for i in (1, 3, 5)] for c in PALETTES[name]], float)


def _save(image: Image.Image, name: str) -> None:
    image = image.convert("RGB")
    image.thumbnail((SIZE, SIZE), Image.LANCZOS)
    image.save(HERE / name, "JPEG", quality=QUALITY, optimize=True, progressive=True)


def waves(rng: np.random.Generator) -> Image.Image:
    """Swirling bands, warped twice, mapped through a night-sky palette."""
    y, x = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    u = x + 0.12 * np.sin(2 * np.pi * (2.0 * y + 0.3 * np.sin(5 * x)))
    v = y + 0.12 * np.sin(2 * np.pi * (1.5 * x + 0.4 * np.cos(4 * y)))
    field = np.sin(14 * u + 3 * np.sin(9 * v)) + np.sin(11 * v + 2 * np.cos(7 * u))
    field += 0.35 * rng.standard_normal((SIZE, SIZE))  # brush grain
    t = (field - field.min()) / (field.max() - field.min())
    palette = _palette("night")
    pos = t * (len(palette) - 1)
    low = np.floor(pos).astype(int).clip(0, len(palette) - 2)
    frac = (pos - low)[..., None]
    rgb = palette[low] * (1 - frac) + palette[low + 1] * frac
    return Image.fromarray(rgb.astype(np.uint8)).filter(ImageFilter.GaussianBlur(1.2))


def mosaic(rng: np.random.Generator) -> Image.Image:
    """Voronoi tiles in warm colours with dark grout between them."""
    seeds = rng.uniform(0, SIZE, (260, 2))
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    pixels = np.stack([y.ravel(), x.ravel()], 1).astype(float)
    best = np.full(len(pixels), np.inf)
    second = np.full(len(pixels), np.inf)
    label = np.zeros(len(pixels), int)
    for i, seed in enumerate(seeds):
        d = np.hypot(*(pixels - seed).T)
        closer = d < best
        second = np.where(closer, best, np.minimum(second, d))
        label = np.where(closer, i, label)
        best = np.where(closer, d, best)
    palette = _palette("ember")[:5]
    colours = palette[rng.integers(0, len(palette), len(seeds))]
    colours += rng.normal(0, 14, colours.shape)
    rgb = colours[label]
    rgb[(second - best) < 3.0] = _palette("ember")[5]
    return Image.fromarray(rgb.reshape(SIZE, SIZE, 3).clip(0, 255).astype(np.uint8))


def strokes(rng: np.random.Generator) -> Image.Image:
    """Short thick brush strokes that follow a smooth flow field."""
    palette = _palette("lagoon")
    image = Image.new("RGB", (SIZE, SIZE), tuple(int(c) for c in palette[0]))
    draw = ImageDraw.Draw(image)
    for _ in range(4200):
        x, y = rng.uniform(-20, SIZE + 20, 2)
        angle = np.sin(x / 70.0) * 1.6 + np.cos(y / 55.0) * 1.2
        length = rng.uniform(10, 34)
        dx, dy = np.cos(angle) * length, np.sin(angle) * length
        colour = palette[rng.integers(0, len(palette))] + rng.normal(0, 12, 3)
        draw.line(
            [(x - dx, y - dy), (x + dx, y + dy)],
            fill=tuple(int(c) for c in colour.clip(0, 255)),
            width=int(rng.integers(4, 11)),
        )
    return image.filter(ImageFilter.SMOOTH_MORE)


def _wheel(path: Path | None, tmp: Path) -> Path:
    if path is not None:
        return path
    pip = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet"]
    subprocess.run([*pip, "-d", str(tmp), "scikit-image==0.26.0"], check=True)
    return next(tmp.glob("scikit_image-*.whl"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, help="a scikit-image wheel already on disk")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(_wheel(args.wheel, Path(tmp))) as z:
        for name, source in PHOTOS.items():
            _save(Image.open(io.BytesIO(z.read(f"skimage/data/{source}"))), name)
    for index, (name, make) in enumerate(
        (("style-waves.jpg", waves), ("style-mosaic.jpg", mosaic), ("style-strokes.jpg", strokes))
    ):
        _save(make(np.random.default_rng(index)), name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
