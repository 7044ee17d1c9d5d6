"""Make the example clips of docs/video.md and measure flicker, with UNTRAINED demo weights.

Usage: python docs/_tools/make_video_example.py OUTPUT_DIR [--weights DIR] [--frames N]

The input is a generated slow pan with sensor noise (`sanet.flicker.pan_clip`); the `sanet
video` command stylizes it with web/samples/style-waves.jpg, once as it is and once with
`--stabilize 0.8`. The clips are kept as small VP9 WebM files, re-encoded at a low quality
(`demo-video-*.webm`, or `release-...` with --weights). Then the flicker of both generated
clips (a still scene and the pan) is measured with and without stabilizing, and printed as
the Markdown table docs/video.md shows.
"""

import argparse
import sys
import tempfile
from pathlib import Path

import av
import numpy as np
from make_examples import SAMPLES, SANET, run

from sanet.flicker import flicker, pan_clip, still_clip
from sanet.frames import FrameStylizer
from sanet.images import read_image
from sanet.stylizer import Stylizer
from sanet.weights import write_demo_weights

STYLE = SAMPLES / "style-waves.jpg"
HEIGHT, WIDTH, RATE, STEP = 128, 192, 12, 2
STABILIZE = (0.0, 0.5, 0.8)


def write_frames(path: Path, frames: list[np.ndarray], crf: int = 45) -> None:
    """Float frames [H, W, 3] in [0, 1] -> a VP9 WebM at RATE frames per second; the default
    quality is low, for small files."""
    with av.open(str(path), "w") as container:
        options = {"crf": str(crf), "b": "0"}
        stream = container.add_stream("libvpx-vp9", rate=RATE, options=options)
        stream.height, stream.width = frames[0].shape[:2]
        for index, frame in enumerate(frames):
            pixels = np.round(frame * 255).astype(np.uint8)
            image = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            image.pts = index
            container.mux(stream.encode(image))
        container.mux(stream.encode(None))


def read_frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") / 255.0 for f in container.decode(video=0)]


def flicker_table(weights: Path, frames: int) -> str:
    """Flicker and the stabilized result's mean distance from per-frame stylization."""
    stylizer = Stylizer.from_checkpoints(weights)
    style = read_image(STYLE)
    clips = {
        "still scene": (still_clip(HEIGHT, WIDTH, frames), 0),
        f"pan, {STEP} px per frame": (pan_clip(HEIGHT, WIDTH, frames, STEP), STEP),
    }
    rows = ["| clip | --stabilize | flicker | mean change from per-frame |", "|---|---|---|---|"]
    for name, (clip, shift) in clips.items():
        plain = None
        for stabilize in STABILIZE:
            stylize = FrameStylizer(stylizer, style, (HEIGHT, WIDTH), stabilize=stabilize)
            outputs = [stylize(frame) for frame in clip]
            plain = plain or outputs
            moved = np.mean([np.abs(a - b).mean() for a, b in zip(outputs, plain, strict=True)])
            score = flicker(clip, outputs, shift)
            rows.append(f"| {name} | {stabilize:g} | {score:.2f} | {moved:.3f} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path)
    parser.add_argument("--weights", type=Path, help="release weights (default: demo weights)")
    parser.add_argument("--frames", type=int, default=24, help="frames per clip (default 24)")
    args = parser.parse_args(argv)
    args.output.mkdir(parents=True, exist_ok=True)
    prefix = "release" if args.weights else "demo"
    with tempfile.TemporaryDirectory() as scratch:
        weights = args.weights or write_demo_weights(Path(scratch) / "weights").vgg.parent
        clip = pan_clip(HEIGHT, WIDTH, args.frames, STEP)
        source = Path(scratch) / "input.webm"
        write_frames(source, clip, crf=4)  # near lossless: keeps the sensor noise
        write_frames(args.output / f"{prefix}-video-input.webm", clip)
        for name, flags in (("", []), ("-stabilized", ["--stabilize", "0.8"])):
            result = Path(scratch) / f"video{name}.webm"
            run([SANET, "video", source, STYLE, "-o", result, "--weights", weights, *flags])
            write_frames(args.output / f"{prefix}-video{name}.webm", read_frames(result))
        print(flicker_table(weights, args.frames))
    return 0


if __name__ == "__main__":
    sys.exit(main())
