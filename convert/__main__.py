"""`python -m convert`: PyTorch -> ONNX -> TF -> TF.js with parity at every stage."""

import argparse
import sys
from pathlib import Path

from convert.contract import VARIANTS
from convert.pipeline import STAGES, Options, run
from convert.winograd import MIN_CHANNELS
from sanet.errors import SANetError


def parse(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m convert", description=__doc__)
    parser.add_argument(
        "--weights",
        type=Path,
        metavar="DIR",
        help="release weights (default: the default weights directory; fetched "
        "if absent, else UNTRAINED demo weights with a warning)",
    )
    parser.add_argument(
        "--demo",
        choices=("full", "small"),
        help="convert UNTRAINED demo weights (small: 1/8 of the channels)",
    )
    parser.add_argument(
        "--build",
        type=Path,
        default=Path("build"),
        metavar="DIR",
        help="intermediate files and parity.json (default build/)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=Path("web/model"),
        metavar="DIR",
        help="where the TF.js model is published (default web/model/)",
    )
    parser.add_argument(
        "--only",
        choices=list(STAGES),
        help="run one stage on the files the earlier stages left in --build",
    )
    parser.add_argument(
        "--quantize",
        default="float16,uint8",
        metavar="LIST",
        help="quantized variants beside fp32: float16, uint8, both (default) or none",
    )
    parser.add_argument(
        "--winograd",
        action=argparse.BooleanOptionalAction,
        default=Options.winograd,
        help=f"rewrite the 3x3 convolutions with {MIN_CHANNELS}+ channels on both sides in "
        "Winograd F(2x2,3x3) in the fp32 and float16 variants (docs/conversion.md; default: "
        f"{'on' if Options.winograd else 'off'}, as measured in docs/benchmarks.md)",
    )
    args = parser.parse_args(argv)
    chosen = [] if args.quantize == "none" else args.quantize.split(",")
    unknown = [v for v in chosen if v not in VARIANTS[1:]]
    if unknown:
        parser.error(f"--quantize: unknown variant {unknown[0]!r} (float16, uint8 or none)")
    return Options(weights=args.weights, demo=args.demo, build=args.build, output=args.output,
                   only=args.only, variants=("fp32", *chosen), winograd=args.winograd)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    options = parse(argv)
    try:
        run(options)
    except SANetError as error:
        print(f"convert: error: {error}", file=sys.stderr)
        return 1
    except ImportError as error:
        print(f"convert: error: {error.name or error} is not installed: run `make install`",
              file=sys.stderr)  # fmt: skip
        return 1
    except KeyboardInterrupt:
        print("convert: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
