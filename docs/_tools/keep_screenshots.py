"""Keep small copies of the browser tests' screenshots for the docs.

Usage: python docs/_tools/keep_screenshots.py [FROM] [TO]
       (default build/screenshots -> docs/images/screenshots)

The browser tests (`make test-web`, part of `make test`) write desktop.png and phone.png to
build/screenshots/. `make docs` shows those when they exist; this script stores them, reduced
to a 192-colour palette, under docs/ so that the site builds without them.
"""

import sys
from pathlib import Path

from PIL import Image

NAMES = ("desktop.png", "phone.png")


def main(argv: list[str]) -> int:
    source = Path(argv[0]) if argv else Path("build/screenshots")
    target = Path(argv[1]) if len(argv) > 1 else Path("docs/images/screenshots")
    missing = [name for name in NAMES if not (source / name).is_file()]
    if missing:
        print(f"{source}: no {', '.join(missing)}: run `make test-web` first", file=sys.stderr)
        return 1
    target.mkdir(parents=True, exist_ok=True)
    for name in NAMES:
        with Image.open(source / name) as image:
            reduced = image.convert("RGB").quantize(colors=192, dither=Image.Dither.FLOYDSTEINBERG)
            reduced.save(target / name, optimize=True)
        print(f"{target / name}: {(target / name).stat().st_size // 1000} kB")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
