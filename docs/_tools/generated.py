"""Markdown rendered from the code and from build results, for the documentation's pages.

Each `render_*` function returns Markdown; the hooks put it where a page says
`<!-- generated:NAME -->`. Nothing here is typed by hand: tables come from build/parity.json
(`make convert`) and bench/results.json (`make bench`), reference text from the argparse
parsers and the docstrings. When a results file is absent the text says how to make it.
"""

# ruff: noqa: RUF001  (typographic dashes, times and minus signs are meant)

import contextlib
import inspect
import json
import os
import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path

# ------------------------------------------------------------------------------ helpers


def read_json(path: Path) -> dict | None:
    """The parsed file, or None when it does not exist."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None


DASH = "–"


def sci(value: float | None) -> str:
    return DASH if value is None else f"{value:.1e}"


def megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size >= 1e5 else f"{size / 1e3:.0f} kB"


def table(header: list[str], rows: list[list[str]], align: str = "") -> str:
    """A Markdown table; `align` has one letter per column (l or r), default left."""
    align = align or "l" * len(header)
    rule = ["---:" if a == "r" else "---" for a in align]
    lines = [header, rule, *rows]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)


def make_targets(root: Path, extra: tuple[str, ...] = ()) -> set[str]:
    """Targets from make's database (`make -pq`), includes followed; `extra` adds makefiles."""
    command = ["make", "--no-print-directory", "-pq", "-f", "Makefile"]
    for makefile in extra:
        command += ["-f", makefile]
    # A goal that does not exist: make prints its database, runs nothing and fails; fine.
    listing = subprocess.run(
        [*command, "__sanet_docs_no_such_goal__"],
        cwd=root,
        capture_output=True,
        text=True,
        env={**os.environ, "MAKEFLAGS": ""},
        check=False,
    ).stdout
    targets, previous = set(), ""
    for line in listing.splitlines():
        match = re.match(r"^([A-Za-z0-9_.%/-]+):(?!=)", line)
        if match and previous != "# Not a target:":
            targets.add(match.group(1))
        previous = line
    return targets


class _References(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href", "data-src") and value:
                self.found.append(value)


def local_references(html: str) -> list[str]:
    """Relative URLs that a page loads or links to (src, href, data-src), without query."""
    parser = _References()
    parser.feed(html)
    local = []
    for url in parser.found:
        if re.match(r"^([a-z][a-z0-9+.-]*:|//|#|/)", url, re.IGNORECASE):
            continue
        local.append(url.split("#")[0].split("?")[0].removeprefix("./"))
    return [url for url in dict.fromkeys(local) if url]


# ------------------------------------------------------------------------------ parity

MISSING_PARITY = """\
!!! note "No conversion results in this build"
    This table is generated from `build/parity.json`, which `make convert` writes. This copy
    of the site was built before any conversion ran. Run `make convert` (release weights) or
    `make convert CONVERT_FLAGS="--demo small"` (a small untrained model, about a minute), then
    `make docs` again.
"""


def describe_stage(stage: str) -> str:
    """What a check named `stage` compares."""
    runtime, _, rest = stage.partition("/")
    if runtime in ("onnxruntime", "tensorflow"):
        graph, _, output = rest.partition(".")
        who = "ONNX Runtime" if runtime == "onnxruntime" else "TensorFlow (onnx-tf)"
        return f"{who}: {graph} → `{output}`"
    if stage == "tf.Module":
        return "SavedModel, end to end"
    if runtime == "tfjs":
        return f"TF.js in Node ({rest}), end to end"
    if stage.startswith("tfjs-"):
        return f"{stage.removeprefix('tfjs-')} variant vs fp32 TF.js"
    return stage


def weights_note(data: dict) -> str:
    weights = data.get("weights", {})
    widths = ", ".join(str(w) for w in weights.get("widths", []))
    if weights.get("untrained"):
        return (
            '!!! warning "Untrained demo weights"\n'
            f"    These results come from deterministic **untrained** demo weights (VGG widths "
            f"{widths}). They prove the conversion is exact for this network; they say nothing "
            "about picture quality. Run `make convert` with the release weights for those "
            "numbers.\n"
        )
    return (
        f"Weights: the release files, iteration {weights.get('iteration', '?')}, "
        f"VGG widths {widths}.\n"
    )


def render_parity(data: dict | None) -> str:
    if data is None:
        return MISSING_PARITY
    checks = data.get("checks", [])
    stages: dict[str, list[dict]] = {}
    for check in checks:
        stages.setdefault(check["stage"], []).append(check)

    summary = []
    for stage, group in stages.items():
        judged = [c for c in group if c["tolerance"] is not None]
        worst = max(group, key=lambda c: c["max_abs"])
        if judged:
            ratio = max(c["max_abs"] / c["tolerance"] for c in judged)
            verdict = "pass" if all(c["passed"] for c in judged) else "**FAIL**"
            margin = f"{ratio:.2f}"
        else:
            verdict, margin = "recorded", "–"
        summary.append(
            [
                f"`{stage}`",
                describe_stage(stage),
                str(len(group)),
                sci(worst["max_abs"]),
                margin,
                verdict,
            ]
        )

    rows = [
        [
            f"`{c['stage']}`",
            c["case"],
            sci(c["max_abs"]),
            sci(c["mean_abs"]),
            sci(c["floor"]) if c["tolerance"] is not None else "–",
            sci(c["tolerance"]) if c["tolerance"] is not None else "recorded",
            "yes" if c["passed"] else "**NO**",
        ]
        for c in checks
    ]
    passed = sum(1 for c in checks if c["passed"] and c["tolerance"] is not None)
    judged = sum(1 for c in checks if c["tolerance"] is not None)
    versions = ", ".join(f"{name} {v}" for name, v in data.get("versions", {}).items())
    parts = [
        weights_note(data),
        f"**{passed} of {judged} judged checks pass** "
        f"({len(checks) - judged} more are recorded, not judged). Versions: {versions}.",
        "",
        table(
            [
                "stage",
                "what is compared",
                "checks",
                "worst max error",
                "worst error / tolerance",
                "result",
            ],
            summary,
            "llrrrl",
        ),
        "",
        '??? info "Every check (max and mean absolute error against float64, images in [0, 1])"',
        "",
        indent(
            table(
                [
                    "stage",
                    "case (content / style, iterations, strength)",
                    "max",
                    "mean",
                    "float32 noise floor",
                    "tolerance",
                    "ok",
                ],
                rows,
                "llrrrrl",
            )
        ),
        "",
    ]
    return "\n".join(parts)


def indent(text: str, by: str = "    ") -> str:
    return "\n".join(by + line if line else line for line in text.splitlines())


def render_ops(data: dict | None) -> str:
    if data is None or "tfjs" not in data.get("ops", {}):
        return MISSING_PARITY
    tfjs = data["ops"]["tfjs"]
    before, after = tfjs["converted"], tfjs["optimized"]
    watched = [
        "Transpose",
        "Const",
        "_FusedConv2D",
        "MirrorPad",
        "Shape",
        "GatherV2",
        "Switch",
        "Merge",
        "Enter",
        "Exit",
        "BatchMatMulV2",
        "MatMul",
        "Softmax",
    ]
    rows = [[f"`{op}`", str(before.get(op, 0)), str(after.get(op, 0))] for op in watched]
    rows.append(["all nodes", str(sum(before.values())), str(sum(after.values()))])
    widths = data.get("weights", {}).get("widths", [])
    removed = tfjs["duplicate_bytes_removed"]
    fp32 = next((v for v in data.get("variants", []) if v["name"] == "fp32"), None)
    sizes = f"duplicate weights removed: **{megabytes(removed)}**"
    if fp32:
        sizes += (
            f", so the fp32 model is {megabytes(fp32['bytes'])} instead of "
            f"{megabytes(fp32['bytes'] + removed)}"
        )
    note = f" (VGG widths {', '.join(map(str, widths))})" if widths else ""
    return "\n".join(
        [
            table(["TF.js op", "as converted", "after this project's passes"], rows, "lrr"),
            "",
            f"Transpose pairs cancelled: **{tfjs['transpose_pairs_removed']}**; {sizes}{note}.",
            "",
        ]
    )


def render_variants(data: dict | None) -> str:
    if data is None or not data.get("variants"):
        return MISSING_PARITY
    rows = []
    for v in data["variants"]:
        reference = v["name"] == "fp32"
        rows.append(
            [
                f"`{v['name']}`",
                f"`{v['path']}`",
                megabytes(v["bytes"]),
                "reference" if reference else sci(v.get("max_abs_error")),
                "reference" if reference else sci(v.get("mean_abs_error")),
                "–" if v.get("psnr") is None else f"{v['psnr']:.1f} dB",
            ]
        )
    lines = [
        table(
            [
                "variant",
                "model file",
                "download",
                "max error vs fp32",
                "mean error vs fp32",
                "PSNR vs fp32",
            ],
            rows,
            "llrrrr",
        ),
        "",
    ]
    if data.get("weights", {}).get("untrained"):
        lines.append(
            "These errors were measured on **untrained** demo weights, where a random network "
            "amplifies small weight changes; they are an upper bound of little meaning for "
            "trained weights. Convert the release weights to measure the real loss."
        )
        lines.append("")
    return "\n".join(lines)


# ------------------------------------------------------------------------------ benchmarks


def number(value, digits: int) -> str:
    """A number with `digits` decimals; a dash for a missing or non-numeric value."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return DASH
    return f"{value:.{digits}f}"


def render_bench_page(results: Path) -> str:
    """The benchmark suite's own Markdown report (results.md beside results.json) when it
    exists, since it is made for this page; else tables rendered from results.json."""
    report = results.with_suffix(".md")
    if report.is_file():
        return (
            f"Generated by the benchmark suite from `{results.name}` "
            f"(`bench/{report.name}`).\n\n" + report.read_text()
        )
    return render_bench(read_json(results))


def render_bench(data: dict | None) -> str:
    """The benchmark tables; tolerant of missing fields, since the suite's format may grow."""
    if data is None:
        return (
            '!!! note "No benchmark results in this build"\n'
            "    This page is generated from `bench/results.json`. `make bench` writes it "
            "(about 15 minutes on 2 cores).\n"
        )
    columns = [  # (header, key, decimals or None for text, alignment)
        ("runtime", "runtime", None, "l"),
        ("backend", "backend", None, "l"),
        ("size (px)", "size", 0, "r"),
        ("iterations", "iterations", 0, "r"),
        ("median (s)", "median_s", 2, "r"),
        ("min (s)", "min_s", 2, "r"),
        ("max (s)", "max_s", 2, "r"),
        ("peak memory (MB)", "peak_mb", 0, "r"),
        ("first run (s)", "cold_s", 2, "r"),
    ]
    rows = [
        [
            str(run.get(key) or DASH) if digits is None else number(run.get(key), digits)
            for _, key, digits, _ in columns
        ]
        for run in data.get("runs", [])
    ]
    parts = []
    machine = data.get("machine") or {}
    if machine.get("cpu_model"):
        parts += [f"Measured on {machine['cpu_model']}, {machine.get('cores', '?')} cores.", ""]
    parts += [table([c[0] for c in columns], rows, "".join(c[3] for c in columns)), ""]
    variants = data.get("variants", [])
    if variants:
        variant_rows = [
            [
                f"`{v.get('name', '?')}`",
                megabytes(v["bytes"]) if isinstance(v.get("bytes"), int) else DASH,
                sci(v.get("max_abs_error")),
                sci(v.get("mean_abs_error")),
                DASH if v.get("psnr") is None else f"{v['psnr']:.1f} dB",
            ]
            for v in variants
        ]
        parts += [
            "Model variants:",
            "",
            table(
                ["variant", "download", "max error", "mean error", "PSNR"], variant_rows, "lrrrr"
            ),
            "",
        ]
    return "\n".join(parts)


# ------------------------------------------------------------------------------ CLI reference


def _help_text(parser) -> str:
    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "92"  # argparse wraps to the terminal: fix it for the docs
    try:
        return parser.format_help().rstrip()
    finally:
        if previous is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = previous


def parser_tree(parser, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], object]]:
    """(subcommand path, parser) for the parser and every sub-parser, depth first."""
    import argparse

    found = [(path, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += parser_tree(sub, (*path, name))
    return found


def convert_parser():
    """The parser of `python -m convert`, caught as it prints --help."""
    import argparse

    from convert.__main__ import parse

    captured = {}
    original = argparse.ArgumentParser.parse_args

    def capture(self, args=None, namespace=None):
        captured["parser"] = self
        raise SystemExit(0)

    argparse.ArgumentParser.parse_args = capture
    try:
        with contextlib.suppress(SystemExit):
            parse([])
    finally:
        argparse.ArgumentParser.parse_args = original
    return captured["parser"]


def render_cli() -> str:
    from sanet.cli import build_parser

    parts = []
    for path, parser in parser_tree(build_parser()):
        name = " ".join(("sanet", *path))
        parts += [f"### `{name}`", "", "```text", _help_text(parser), "```", ""]
    parts += ["### `python -m convert`", "", "```text", _help_text(convert_parser()), "```", ""]
    return "\n".join(parts)


# ------------------------------------------------------------------------------ Python API

API = [
    ("sanet", "Stylizer", ["from_checkpoints", "stylize", "check_request"]),
    ("sanet", "SANet", ["forward"]),
    ("sanet", "SANetError", []),
    ("sanet.stylizer", "working_size", None),
    ("sanet.stylizer", "estimate_memory_mb", None),
    ("sanet.stylizer", "default_memory_budget_mb", None),
    ("sanet.weights", "default_weights_dir", None),
    ("sanet.weights", "load_model", None),
    ("sanet.weights", "describe", None),
    ("sanet.weights", "write_demo_weights", None),
    ("sanet.weights", "read_state_dict", None),
    ("sanet.fetch", "fetch_release", None),
    ("sanet.images", "read_image", None),
    ("sanet.images", "write_image", None),
    ("sanet.images", "to_rgb_array", None),
    ("sanet.attention", "StyleAttention", ["forward"]),
    ("sanet.attention", "mean_variance_norm", None),
    ("convert.pipeline", "run", None),
    ("convert.parity", "compare", None),
]


def docstring_markdown(doc: str) -> str:
    """A docstring as Markdown: doctest lines become a Python block, the rest stays prose
    (indented blocks in a docstring are code blocks in Markdown already)."""
    out, session = [], []
    for line in doc.splitlines():
        if line.startswith(">>>"):
            session.append(re.sub(r"\s*# doctest:.*$", "", line[4:]))
            continue
        if session:
            out += ["```python", *session, "```"]
            session = []
        out.append(line)
    if session:
        out += ["```python", *session, "```"]
    return "\n".join(out)


def _signature(name: str, obj, method: bool) -> str:
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return name
    if method:
        parameters = list(signature.parameters.values())
        if parameters and parameters[0].name in ("self", "cls"):
            signature = signature.replace(parameters=parameters[1:])
    text = re.sub(r"<class '([\w.]+)'>", r"\1", f"{name}{signature}")
    if len(text) <= 88:
        return text
    # One parameter a line, as a formatter would write a long signature.
    parameters = [
        re.sub(r"<class '([\w.]+)'>", r"\1", str(p)) for p in signature.parameters.values()
    ]
    returns = ""
    if signature.return_annotation is not inspect.Signature.empty:
        returns = " -> " + inspect.formatannotation(signature.return_annotation).strip("'")
    return f"{name}(\n" + "".join(f"    {p},\n" for p in parameters) + f"){returns}"


def render_api() -> str:
    import importlib

    parts = []
    for module_name, name, members in API:
        obj = getattr(importlib.import_module(module_name), name)
        qualified = f"{module_name}.{name}"
        kind = "class" if inspect.isclass(obj) else "function"
        if kind == "class":
            heading = f"`{qualified}`"
            shown = _signature(name, obj, True) if members is not None else name
        else:
            heading = f"`{qualified}()`"
            shown = _signature(name, obj, False)
        parts += [f"### {heading}", "", "```python", shown, "```", ""]
        parts += [docstring_markdown(inspect.getdoc(obj) or "(no docstring)"), ""]
        for member in members or []:
            attribute = getattr(obj, member)
            parts += [
                f"#### `{name}.{member}`",
                "",
                "```python",
                _signature(member, attribute, True),
                "```",
                "",
            ]
            parts += [docstring_markdown(inspect.getdoc(attribute) or "(no docstring)"), ""]
    return "\n".join(parts)
