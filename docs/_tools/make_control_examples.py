"""Make the creative controls' before/after pictures for docs/controls.md, and measure the
colour-keeping choice.

Usage: python docs/_tools/make_control_examples.py OUTPUT_DIR [--weights DIR]

Without --weights it uses deterministic UNTRAINED demo weights (full size, as
`sanet weights demo`), and the files are named `demo-*`; with the release files, `release-*`.
Inputs are the web app's samples (web/samples/, credits in web/samples/CREDITS.md); the mask is
drawn here. Each picture is a small JPEG (longest side 256 px).

It also prints, for one pair, how far each way of keeping the content's colours leaves the
output's chroma from the content's, and how far it moves the luminance from the plain
stylization: luminance transfer (what `--keep-colors` does) against matching the style's
colour statistics to the content's before stylizing (Gatys et al. 2016).
"""

import sys
import tempfile
from pathlib import Path

import numpy as np
from make_examples import ROOT, SAMPLES, SIDE, parse_args, save_small
from PIL import Image, ImageDraw, ImageFilter

from sanet.controls import RGB_TO_YCBCR
from sanet.encoder import FULL_WIDTHS
from sanet.images import read_image
from sanet.stylizer import Stylizer
from sanet.weights import write_demo_weights


def sample(name: str) -> np.ndarray:
    return read_image(SAMPLES / name)


def draw_mask(height: int, width: int) -> np.ndarray:
    """White ellipse (stylize) on black (keep), its edge blurred: float [H, W] in [0, 1]."""
    image = Image.new("L", (width, height), 0)
    box = (width * 0.12, height * 0.08, width * 0.88, height * 0.72)
    ImageDraw.Draw(image).ellipse(box, fill=255)
    blurred = image.filter(ImageFilter.GaussianBlur(max(height, width) / 100))
    return np.asarray(blurred, np.float32) / 255.0


def save(array: np.ndarray, path: Path) -> None:
    save_small(Image.fromarray(np.round(np.clip(array, 0.0, 1.0) * 255.0).astype(np.uint8)), path)
    print("wrote", path.relative_to(ROOT) if path.is_relative_to(ROOT) else path, flush=True)


def match_color_statistics(style: np.ndarray, content: np.ndarray) -> np.ndarray:
    """The style's pixels mapped affinely so that their mean and covariance are the content's
    (Gatys et al. 2016, section 2.2, with symmetric matrix square roots)."""

    def sqrt_and_inverse(covariance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        values, vectors = np.linalg.eigh(covariance)
        values = np.maximum(values, 1e-8)
        return (vectors * values**0.5) @ vectors.T, (vectors * values**-0.5) @ vectors.T

    pixels_s, pixels_c = style.reshape(-1, 3), content.reshape(-1, 3)
    mean_s, mean_c = pixels_s.mean(0), pixels_c.mean(0)
    root_c, _ = sqrt_and_inverse(np.cov(pixels_c.T))
    _, inverse_root_s = sqrt_and_inverse(np.cov(pixels_s.T))
    mapped = (pixels_s - mean_s) @ (root_c @ inverse_root_s).T + mean_c
    return np.clip(mapped, 0.0, 1.0).reshape(style.shape).astype(np.float32)


def measure(stylizer: Stylizer) -> None:
    """Chroma error against the content and luminance change against the plain stylization."""
    content, style = sample("content-coffee.jpg"), sample("style-waves.jpg")
    run = {"max_resolution": SIDE}
    plain = stylizer.stylize(content, style, **run)
    methods = {
        "plain stylization": plain,
        "luminance transfer (--keep-colors 1)": stylizer.stylize(
            content, style, keep_colors=1.0, **run
        ),
        "colour statistics matched first": stylizer.stylize(
            content, match_color_statistics(style, content), **run
        ),
    }

    def ycbcr(image: np.ndarray) -> np.ndarray:
        return image.astype(np.float64) @ RGB_TO_YCBCR.T

    print("\n| method | chroma RMS vs content | luminance RMS vs plain |\n|---|---|---|")
    for name, result in methods.items():
        chroma = np.sqrt(np.mean((ycbcr(result) - ycbcr(content))[..., 1:] ** 2))
        luma = np.sqrt(np.mean((ycbcr(result) - ycbcr(plain))[..., 0] ** 2))
        print(f"| {name} | {chroma:.4f} | {luma:.4f} |")
    kept = methods["luminance transfer (--keep-colors 1)"]
    clipped = ((kept <= 0.0) | (kept >= 1.0)).any(axis=-1).mean()
    print(f"\npixels where --keep-colors 1 clips a channel: {100 * clipped:.1f}%")


def main(argv: list[str] | None = None) -> int:
    args, prefix = parse_args(__doc__, argv)
    with tempfile.TemporaryDirectory() as scratch:
        weights = args.weights or write_demo_weights(Path(scratch), FULL_WIDTHS, 0).vgg.parent
        stylizer = Stylizer.from_checkpoints(weights, memory_budget_mb=0)
    run = {"max_resolution": SIDE}
    coffee, waves = sample("content-coffee.jpg"), sample("style-waves.jpg")
    chelsea, mosaic = sample("content-chelsea.jpg"), sample("style-mosaic.jpg")
    astronaut, hubble = sample("content-astronaut.jpg"), sample("style-hubble.jpg")
    mask = draw_mask(*astronaut.shape[:2])
    pictures = {
        "coffee-waves": stylizer.stylize(coffee, waves, **run),
        "coffee-waves-keep-colors-0.5": stylizer.stylize(coffee, waves, keep_colors=0.5, **run),
        "coffee-waves-keep-colors-1": stylizer.stylize(coffee, waves, keep_colors=1.0, **run),
        "chelsea-mosaic": stylizer.stylize(chelsea, mosaic, **run),
        "chelsea-waves": stylizer.stylize(chelsea, waves, **run),
        "chelsea-mosaic-waves-mix-0.5": stylizer.stylize(
            chelsea, mosaic, style2=waves, mix=0.5, **run
        ),
        "astronaut-hubble": stylizer.stylize(astronaut, hubble, **run),
        "astronaut-hubble-strength-0": stylizer.stylize(astronaut, hubble, strength=0.0, **run),
        "astronaut-hubble-mask": stylizer.stylize(astronaut, hubble, mask=mask, **run),
    }
    for name, picture in pictures.items():
        save(picture, args.output / f"{prefix}-{name}.jpg")
    save(np.repeat(mask[:, :, None], 3, axis=2), args.output / "mask-ellipse.jpg")
    measure(stylizer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
