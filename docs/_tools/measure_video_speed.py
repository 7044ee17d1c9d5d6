"""Frames per second of PyTorch video stylization against single-image calls, by hand.

Usage: python docs/_tools/measure_video_speed.py [--weights DIR] [--repeats N]

Full-size UNTRAINED demo weights unless --weights. At each side (square content and style of
that side), times `FrameStylizer` per frame (the style encoded once) and `Stylizer.stylize`
per image (the style encoded every call), one after the other N times after a warm-up, so
that a busy machine slows both alike. Reports the fastest wall-clock run of each (the least
disturbed) and the median CPU time (less sensitive to other processes than wall-clock time),
as the Markdown table docs/video.md shows.
"""

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from sanet.encoder import FULL_WIDTHS
from sanet.flicker import scene
from sanet.frames import FrameStylizer
from sanet.stylizer import Stylizer
from sanet.weights import write_demo_weights

SIDES = (256, 512)


def timings(calls: dict[str, Callable[[], object]], repeats: int) -> dict[str, tuple[float, float]]:
    """name -> (fastest wall-clock seconds, median CPU seconds), the calls interleaved."""
    for call in calls.values():
        call()  # warm-up
    wall: dict[str, list[float]] = {name: [] for name in calls}
    cpu: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            call()
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    return {name: (min(wall[name]), statistics.median(cpu[name])) for name in calls}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, help="release weights (default: demo weights)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per figure")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        weights = args.weights or write_demo_weights(Path(scratch), FULL_WIDTHS).vgg.parent
        stylizer = Stylizer.from_checkpoints(weights, memory_budget_mb=0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print("| side | video frame: fastest, CPU | frames per second | single image: fastest, CPU |")
    print("|---|---|---|---|")
    for side in SIDES:
        content, style = scene(side, side, seed=1), scene(side, side, seed=2)
        frames = FrameStylizer(stylizer, style, (side, side), max_resolution=side)
        calls = {
            "frame": lambda: frames(content),  # noqa: B023
            "single": lambda: stylizer.stylize(content, style, max_resolution=side),  # noqa: B023
        }
        (frame, frame_cpu), (single, single_cpu) = timings(calls, args.repeats).values()
        print(
            f"| {side} px | {frame:.2f} s, {frame_cpu:.2f} s | {1 / frame:.2f} "
            f"| {single:.2f} s, {single_cpu:.2f} s |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
