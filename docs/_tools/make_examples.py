"""Make the example outputs shown in the docs, with the `sanet` CLI and UNTRAINED demo weights.

Usage: python docs/_tools/make_examples.py OUTPUT_DIR [--weights DIR]

Without --weights it writes deterministic demo weights (`sanet weights demo`) to a temporary
folder: the outputs then show what an untrained network does (abstract textures), and their
file names start with `demo-`. With --weights DIR (the release files) the same commands make
real stylizations, named `release-`. Inputs are the web app's samples (web/samples/, credits in
web/samples/CREDITS.md). Each result is saved as a small JPEG (longest side 256 px).
"""

import argparse
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "web" / "samples"
SANET = Path(sys.executable).parent / "sanet"
SIDE = 256

# name: (content, style, extra flags)
EXAMPLES = {
    "coffee-waves": ("content-coffee.jpg", "style-waves.jpg", []),
    "coffee-waves-strength-0.5": ("content-coffee.jpg", "style-waves.jpg", ["--strength", "0.5"]),
    "coffee-waves-iterations-2": ("content-coffee.jpg", "style-waves.jpg", ["--iterations", "2"]),
    "chelsea-mosaic": ("content-chelsea.jpg", "style-mosaic.jpg", []),
    "astronaut-hubble": ("content-astronaut.jpg", "style-hubble.jpg", []),
}


def run(command: list[str]) -> None:
    print("$", shlex.join(str(part) for part in command), flush=True)
    subprocess.run(command, check=True)


def parse_args(doc: str, argv: list[str] | None) -> tuple[argparse.Namespace, str]:
    """OUTPUT_DIR [--weights DIR] (made if absent), and the file-name prefix they imply."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("output", type=Path)
    parser.add_argument("--weights", type=Path, help="release weights (default: demo weights)")
    args = parser.parse_args(argv)
    args.output.mkdir(parents=True, exist_ok=True)
    return args, "release" if args.weights else "demo"


def save_small(image: Image.Image, path: Path) -> None:
    """A docs picture: longest side SIDE, a small JPEG."""
    image.thumbnail((SIDE, SIDE), Image.Resampling.LANCZOS)
    image.convert("RGB").save(path, quality=82, optimize=True)


def main(argv: list[str] | None = None) -> int:
    args, prefix = parse_args(__doc__, argv)
    with tempfile.TemporaryDirectory() as scratch:
        weights = args.weights
        if weights is None:
            weights = Path(scratch) / "weights"
            run([SANET, "weights", "demo", weights])
        for name, (content, style, flags) in EXAMPLES.items():
            result = Path(scratch) / f"{name}.png"
            run(
                [
                    SANET,
                    "stylize",
                    SAMPLES / content,
                    SAMPLES / style,
                    "-o",
                    result,
                    "--weights",
                    weights,
                    "--max-resolution",
                    str(SIDE),
                    *flags,
                ]
            )
            with Image.open(result) as image:
                save_small(image, args.output / f"{prefix}-{name}.jpg")
    return 0


if __name__ == "__main__":
    sys.exit(main())
