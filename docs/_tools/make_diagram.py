"""Draw docs/images/architecture.svg: SANet's data flow with tensor shapes.

Usage: python docs/_tools/make_diagram.py OUTPUT.svg

The picture is plain SVG (system fonts, no external resources). `make docs-pictures` runs this;
tests/test_docs.py checks that the committed file is what this script draws.
"""

# ruff: noqa: RUF001  (typographic dashes, times and minus signs are meant)

import sys
from html import escape
from pathlib import Path

WIDTH, HEIGHT = 960, 560
COLORS = {  # fill, stroke
    "content": ("#e8f0fe", "#3b5bdb"),
    "style": ("#fff1e6", "#d9480f"),
    "model": ("#f3f0ff", "#6741d9"),
    "decode": ("#ebfbee", "#2b8a3e"),
    "plain": ("#f8f9fa", "#868e96"),
}
# Arrows: relu4_1 paths and relu5_1 paths in their own colours, the rest grey.
ARROWS = {"grey": "#495057", "r4": "#5f3dc4", "r5": "#0b7285"}


class Drawing:
    def __init__(self) -> None:
        self.items: list[str] = []

    def box(self, x, y, w, h, lines, kind="plain", bold_first=True, dashed=False) -> None:
        fill, stroke = COLORS[kind]
        dash = ' stroke-dasharray="5 4"' if dashed else ""
        self.items.append(
            f'<rect x="{x}" y="{y}" width="{w}" height="{h}" rx="8" fill="{fill}" '
            f'stroke="{stroke}" stroke-width="1.6"{dash}/>'
        )
        step = 17
        top = y + h / 2 - (len(lines) - 1) * step / 2 + 5
        for i, line in enumerate(lines):
            weight = ' font-weight="600"' if bold_first and i == 0 else ""
            cls = ' class="shape"' if line.startswith("[") else ""
            self.items.append(
                f'<text x="{x + w / 2}" y="{top + i * step}" text-anchor="middle"{weight}{cls}>'
                f"{escape(line)}</text>"
            )

    def arrow(
        self, points, label="", label_at=None, dashed=False, anchor="middle", color="grey"
    ) -> None:
        path = " ".join(f"{'M' if i == 0 else 'L'}{x},{y}" for i, (x, y) in enumerate(points))
        dash = ' stroke-dasharray="6 5"' if dashed else ""
        self.items.append(
            f'<path d="{path}" fill="none" stroke="{ARROWS[color]}" stroke-width="1.6"{dash} '
            f'marker-end="url(#head-{color})"/>'
        )
        if label:
            x, y = label_at or points[0]
            self.items.append(
                f'<text x="{x}" y="{y}" text-anchor="{anchor}" class="note">{escape(label)}</text>'
            )

    def text(self, x, y, content, cls="note", anchor="start") -> None:
        self.items.append(
            f'<text x="{x}" y="{y}" text-anchor="{anchor}" class="{cls}">{escape(content)}</text>'
        )

    def svg(self) -> str:
        head = (
            f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
            f'width="{WIDTH}" height="{HEIGHT}" role="img" '
            'aria-labelledby="title desc">\n'
            '<title id="title">SANet\'s data flow with tensor shapes</title>\n'
            '<desc id="desc">The style and the content image each pass the VGG-19 encoder to '
            "relu4_1 and relu5_1; two style-attention blocks match content positions to style "
            "positions; their outputs are merged, optionally blended toward the content, decoded "
            "back to an image and cropped to the content's size; further iterations feed the "
            "unclamped result back to the encoder.</desc>\n"
            "<defs>"
            + "".join(
                f'<marker id="head-{name}" viewBox="0 0 10 10" refX="9" refY="5" '
                'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
                f'<path d="M0,0 L10,5 L0,10 z" fill="{color}"/></marker>'
                for name, color in ARROWS.items()
            )
            + "</defs>\n"
            "<style>text{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;"
            "font-size:13px;fill:#212529}.shape{font-family:ui-monospace,'SF Mono',Menlo,"
            "Consolas,monospace;font-size:12px;fill:#343a40}.note{font-size:12px;fill:#495057;"
            "font-style:italic}.title{font-size:15px;font-weight:600}</style>\n"
            f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>\n'
        )
        return head + "\n".join(self.items) + "\n</svg>\n"


def draw() -> str:
    d = Drawing()
    # Columns: inputs, encoder, features, attention; the decoder row runs right to left below.
    # Style row.
    d.box(20, 50, 150, 56, ["Style image", "[1, 3, h, w]"], "style")
    d.box(220, 50, 150, 56, ["VGG-19 encoder", "to relu5_1"], "model")
    d.box(420, 22, 190, 50, ["style relu4_1", "[1, 512, h/8, w/8]"], "style", False)
    d.box(420, 86, 190, 50, ["style relu5_1", "[1, 512, h/16, w/16]"], "style", False)
    d.arrow([(170, 78), (218, 78)])
    d.arrow([(370, 70), (418, 47)], color="r4")
    d.arrow([(370, 88), (418, 111)], color="r5")
    d.text(295, 124, "encoded once", anchor="middle")
    # Content row.
    d.box(20, 220, 150, 56, ["Content image", "[1, 3, H, W]"], "content")
    d.box(220, 220, 150, 56, ["VGG-19 encoder", "same weights"], "model")
    d.box(420, 192, 190, 50, ["content relu4_1", "[1, 512, H/8, W/8]"], "content", False)
    d.box(420, 256, 190, 50, ["content relu5_1", "[1, 512, H/16, W/16]"], "content", False)
    d.arrow([(170, 248), (218, 248)])
    d.arrow([(370, 240), (418, 217)], color="r4")
    d.arrow([(370, 258), (418, 281)], color="r5")
    # Attention blocks.
    d.box(
        660,
        30,
        280,
        92,
        [
            "Style attention at relu4_1",
            "attention matrix",
            "[H/8·W/8, h/8·w/8]",
            "→ [1, 512, H/8, W/8]",
        ],
        "model",
    )
    d.box(
        660,
        150,
        280,
        92,
        [
            "Style attention at relu5_1",
            "attention matrix",
            "[H/16·W/16, h/16·w/16]",
            "→ [1, 512, H/16, W/16]",
        ],
        "model",
    )
    d.arrow([(610, 47), (658, 60)], color="r4")
    d.arrow([(610, 217), (640, 217), (640, 92), (658, 92)], color="r4")
    d.arrow([(610, 111), (628, 111), (628, 180), (658, 180)], color="r5")
    d.arrow([(610, 281), (650, 281), (650, 212), (658, 212)], color="r5")
    d.box(
        660,
        270,
        280,
        74,
        ["Merge", "upsample relu5_1 ×2 (crop), add,", "reflect pad, 3×3 conv → [1, 512, H/8, W/8]"],
        "model",
    )
    d.arrow([(940, 76), (952, 76), (952, 307), (942, 307)], color="r4")
    d.arrow([(800, 242), (800, 268)], color="r5")
    # Decoder row, right to left.
    d.box(
        660,
        380,
        280,
        74,
        ["Strength s", "t(c, c) + s · (t(c, s) − t(c, c))", "s = 1: plain SANet (default)"],
        "model",
    )
    d.arrow([(800, 344), (800, 378)])
    d.box(
        420,
        380,
        200,
        74,
        ["Decoder", "3 × nearest upsample ×2", "→ [1, 3, 8·H/8, 8·W/8]"],
        "decode",
    )
    d.arrow([(660, 417), (622, 417)])
    d.box(220, 380, 150, 74, ["Crop", "to [1, 3, H, W]"], "decode")
    d.arrow([(420, 417), (372, 417)])
    d.box(20, 380, 150, 74, ["Clamp to [0, 1]", "result", "[1, 3, H, W]"], "content")
    d.arrow([(220, 417), (172, 417)])
    # The iteration loop: the unclamped crop goes back to the content encoder.
    d.arrow([(295, 380), (295, 278)], dashed=True)
    d.text(305, 340, "iterations > 1: encode the")
    d.text(305, 356, "unclamped result again")
    # Legend.
    d.text(
        20,
        500,
        "Shapes are for the release widths (512 channels at relu4_1 and relu5_1). "
        "H/8 stands for ⌈H/8⌉ and H/16 for ⌈H/16⌉;",
        "note",
    )
    d.text(
        20,
        518,
        "the decoder's output is 8·⌈H/8⌉ × 8·⌈W/8⌉, cropped back to H × W. "
        "t(c, s) is the transform of content features c with style features s.",
        "note",
    )
    d.text(
        20,
        536,
        "Memory: the relu4_1 attention matrix alone holds (H/8·W/8)·(h/8·w/8) "
        "float32 numbers, about 1 GB at 1024 × 1024 for both images.",
        "note",
    )
    return d.svg()


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: make_diagram.py OUTPUT.svg", file=sys.stderr)
        return 2
    Path(argv[0]).write_text(draw())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
