"""`sanet`: stylize images and manage weights from the command line.

Every failure a user can cause ends with one line on stderr and a non-zero exit status.
"""

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from sanet import request
from sanet.errors import SANetError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _request_value(
    parse: Callable[[str], Any], what: str, problem: Callable[[Any], str | None]
) -> Callable[[str], Any]:
    """An argparse type: the text parsed by `parse`, then held to `problem`, one of the
    request rules of `sanet.request`."""

    def convert(text: str) -> Any:
        try:
            value = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if reason := problem(value):
            raise argparse.ArgumentTypeError(reason)
        return value

    return convert


_iterations = _request_value(int, "a whole number", request.iterations_problem)
# A number in [0, 1]: strength and the creative controls.
_amount = _request_value(float, "a number", request.amount_problem)
_resolution = _request_value(int, "a whole number of pixels", request.resolution_problem)


def _add_controls(command: argparse.ArgumentParser) -> None:
    """The stylization controls `stylize` and `video` share."""
    command.add_argument(
        "--iterations",
        type=_iterations,
        default=1,
        help="stylize the result again N-1 times (default 1)",
    )
    command.add_argument(
        "--strength",
        type=_amount,
        default=1.0,
        help="0 keeps the content, 1 is full SANet (default 1)",
    )
    command.add_argument(
        "--max-resolution",
        type=_resolution,
        default=request.DEFAULT_MAX_RESOLUTION,
        metavar="PX",
        help="compute with the longest side at most PX, 0 for never resizing "
        f"(default {request.DEFAULT_MAX_RESOLUTION}); the output keeps the content's size",
    )
    command.add_argument(
        "--weights",
        type=Path,
        metavar="DIR",
        help="directory with the release files (default: see `sanet weights`)",
    )
    command.add_argument(
        "--memory-budget",
        type=_positive_int,
        metavar="MB",
        help="working memory to stay under, by tiling and chunking the work; a request that "
        "cannot fit even then is refused (default: half the RAM)",
    )
    command.add_argument(
        "--style-resolution",
        type=_resolution,
        metavar="PX",
        help="compute with the style's longest side at PX, scaled up or down: the larger, "
        "the larger the brush strokes; 0 as given (default: as --max-resolution)",
    )


def _add_creative_controls(command: argparse.ArgumentParser) -> None:
    """Keep the content's colours, mix two styles, stylize a region (docs/controls.md)."""
    command.add_argument(
        "--keep-colors",
        type=_amount,
        default=request.DEFAULT_KEEP_COLORS,
        metavar="A",
        help="in [0, 1]: give the result the content's colours, keeping the stylization's "
        f"luminance; 0 keeps the style's colours (default {request.DEFAULT_KEEP_COLORS:g})",
    )
    command.add_argument(
        "--style2", type=Path, metavar="IMAGE", help="a second style image, mixed in by --mix"
    )
    command.add_argument(
        "--mix",
        type=_amount,
        metavar="M",
        help="in [0, 1]: the second style's weight, 0 the first style only, 1 the second only "
        "(default 0.5 with --style2)",
    )
    command.add_argument(
        "--mask",
        type=Path,
        metavar="IMAGE",
        help="stylize only where IMAGE is white; black keeps the content, grey is partial "
        "(any size: resampled to the content's)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="sanet", description="SANet arbitrary style transfer.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    stylize = commands.add_parser("stylize", help="stylize an image with the style of another")
    stylize.add_argument("content", type=Path, help="content image (JPEG, PNG or WebP)")
    stylize.add_argument("style", type=Path, help="style image (JPEG, PNG or WebP)")
    stylize.add_argument("-o", "--output", type=Path, required=True, help="result, .png or .jpg")
    _add_controls(stylize)
    _add_creative_controls(stylize)
    stylize.set_defaults(run=_stylize)

    video = commands.add_parser(
        "video", help="stylize a video (MP4, WebM, ...) with the style of an image"
    )
    video.add_argument("source", type=Path, help="video file (anything FFmpeg reads)")
    video.add_argument("style", type=Path, help="style image (JPEG, PNG or WebP)")
    video.add_argument(
        "-o", "--output", type=Path, required=True, help="result, .mp4 (H.264) or .webm (VP9)"
    )
    _add_controls(video)
    _add_creative_controls(video)
    video.add_argument(
        "--stabilize",
        type=float,
        default=0.0,
        metavar="A",
        help="in [0, 1): average each frame's features with the previous frames' (weight A) "
        "to reduce flicker; fast motion trails (default 0, off)",
    )
    video.set_defaults(run=_video)

    weights = commands.add_parser(
        "weights",
        help="fetch, make or check weights",
        description="The default weights directory is $SANET_WEIGHTS, else "
        "$XDG_DATA_HOME/sanet/weights (~/.local/share/sanet/weights).",
    )
    actions = weights.add_subparsers(dest="action", required=True, parser_class=_Parser)
    fetch = actions.add_parser("fetch", help="download the original release files")
    fetch.add_argument("dir", type=Path, nargs="?", help="target directory (default: the default)")
    fetch.add_argument(
        "--api",
        default=None,
        metavar="URL",
        help="Yandex.Disk public-resources API address (for mirrors and tests)",
    )
    fetch.set_defaults(run=_fetch)
    demo = actions.add_parser(
        "demo", help="write deterministic UNTRAINED weights for tests and demos"
    )
    demo.add_argument("dir", type=Path, help="target directory")
    demo.add_argument(
        "--small",
        action="store_true",
        help="1/8 of the release's channel widths (fast, for tests)",
    )
    demo.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    demo.set_defaults(run=_demo)
    check = actions.add_parser("check", help="validate a weights directory and summarise it")
    check.add_argument("dir", type=Path, nargs="?", help="directory (default: the default)")
    check.set_defaults(run=_check)
    return parser


UNTRAINED_WARNING = (
    "warning: UNTRAINED demo weights: the result is abstract, not a real stylization"
)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _tile_bar() -> Callable[[int, int], None]:
    """A progress bar on stderr that appears with a tiled run's first tile."""
    from tqdm import tqdm

    bar: tqdm | None = None

    def update(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, desc="tiles", unit="tile", file=sys.stderr)
        bar.update(done - bar.n)
        if done == total:
            bar.close()

    return update


def _stylize(args: argparse.Namespace) -> None:
    from tqdm import tqdm

    from sanet.images import check_output_path, read_image, write_image
    from sanet.stylizer import Stylizer

    started = time.perf_counter()
    check_output_path(args.output)
    if args.mix is not None and args.style2 is None:
        raise SANetError("--mix needs --style2 IMAGE, the second style to mix with")
    content, style = read_image(args.content), read_image(args.style)
    style2 = read_image(args.style2) if args.style2 else None
    mask = read_image(args.mask) if args.mask else None
    stylizer = Stylizer.from_checkpoints(args.weights, args.memory_budget)
    height, width = content.shape[:2]
    stylizer.check_request(
        (height, width),
        style.shape[:2],
        args.iterations,
        args.strength,
        args.max_resolution,
        args.style_resolution,
        args.keep_colors,
        None if style2 is None else style2.shape[:2],
        args.mix,
        mask is not None,
    )
    _say(
        f"load       {time.perf_counter() - started:6.2f} s  content {width}x{height}, "
        f"style {style.shape[1]}x{style.shape[0]}"
        + (f", second style {style2.shape[1]}x{style2.shape[0]}" if style2 is not None else "")
        + (f", mask {mask.shape[1]}x{mask.shape[0]}" if mask is not None else "")
    )
    if stylizer.untrained:
        _say(UNTRAINED_WARNING)
    result = stylizer.stylize(
        content,
        style,
        args.iterations,
        args.strength,
        args.max_resolution,
        progress=lambda stage, seconds: tqdm.write(f"{stage:<10} {seconds:6.2f} s", sys.stderr),
        style_resolution=args.style_resolution,
        tile_progress=_tile_bar(),
        keep_colors=args.keep_colors,
        style2=style2,
        mix=args.mix,
        mask=mask,
    )
    write_image(result, args.output, _note(args, stylizer.untrained))
    _say(f"wrote {args.output} ({width}x{height}) in {time.perf_counter() - started:.2f} s")


def _note(args: argparse.Namespace, untrained: bool) -> str:
    """What made the image, for the PNG's comment: the inputs and every control used."""
    from sanet.stylizer import mix_weight

    parts = [
        f"SANet stylization of {args.content.name} with {args.style.name}",
        f"iterations {args.iterations}, strength {args.strength:g}",
        f"max resolution {args.max_resolution}",
    ]
    if args.style_resolution is not None:
        parts.append(f"style resolution {args.style_resolution}")
    if args.keep_colors:
        parts.append(f"keep colors {args.keep_colors:g}")
    if args.style2:
        parts.append(f"second style {args.style2.name}, mix {mix_weight(args.mix, True):g}")
    if args.mask:
        parts.append(f"mask {args.mask.name}")
    if untrained:
        parts.append("from UNTRAINED demo weights")
    return "; ".join(parts)


def _video(args: argparse.Namespace) -> None:
    from sanet.frames import FrameStylizer
    from sanet.images import read_image
    from sanet.stylizer import Stylizer
    from sanet.video import check_video_output, stylize_video

    started = time.perf_counter()
    check_video_output(args.output)
    if args.mix is not None and args.style2 is None:
        raise SANetError("--mix needs --style2 IMAGE, the second style to mix with")
    style = read_image(args.style)
    style2 = read_image(args.style2) if args.style2 else None
    mask = read_image(args.mask) if args.mask else None
    stylizer = Stylizer.from_checkpoints(args.weights, args.memory_budget)

    def make_clip(shape: tuple[int, int]) -> FrameStylizer:
        clip = FrameStylizer(
            stylizer,
            style,
            shape,
            args.iterations,
            args.strength,
            args.max_resolution,
            args.stabilize,
            args.style_resolution,
            args.keep_colors,
            style2,
            args.mix,
            mask,
        )
        height, width = clip.content_size
        _say(f"video {shape[1]}x{shape[0]}, computed at {width}x{height}, style encoded once")
        if stylizer.untrained:
            _say(UNTRAINED_WARNING)
        return clip

    count = stylize_video(args.source, args.output, make_clip)
    _say(f"wrote {args.output} ({count} frames) in {time.perf_counter() - started:.2f} s")


def _fetch(args: argparse.Namespace) -> None:
    from sanet.fetch import API, fetch_release
    from sanet.weights import default_weights_dir

    for line in fetch_release(args.dir or default_weights_dir(), args.api or API):
        print(line)


def _demo(args: argparse.Namespace) -> None:
    from sanet.encoder import FULL_WIDTHS, SMALL_WIDTHS
    from sanet.weights import write_demo_weights

    files = write_demo_weights(args.dir, SMALL_WIDTHS if args.small else FULL_WIDTHS, args.seed)
    print(f"wrote UNTRAINED demo weights to {files.vgg.parent} (iteration 0 marks them)")


def _check(args: argparse.Namespace) -> None:
    from sanet.weights import default_weights_dir, describe

    for line in describe(args.dir or default_weights_dir()):
        print(line)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except SANetError as error:
        _say(f"sanet: error: {error}")
        return 1
    except MemoryError:
        _say("sanet: error: out of memory: lower --max-resolution or --memory-budget")
        return 1
    except KeyboardInterrupt:
        _say("sanet: interrupted")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
