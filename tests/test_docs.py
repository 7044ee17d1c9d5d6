"""The documentation cannot drift from the code.

- Every `sanet ...`, `python -m convert ...` and `make TARGET` command in a fenced shell block
  of docs/*.md or README.md exists: each subcommand path is run with `--help`, and each flag
  shown must appear in that help (and a value shown for a flag with choices must be one).
- `mkdocs build --strict` succeeds (no warning: broken links, missing anchors, pages left out
  of the nav all fail), with and without conversion and benchmark results, and the built site
  holds the app with every file its page references, and loads nothing from other origins.
- The generated tables render from the documented formats; the committed diagram is what its
  script draws; the committed pictures stay small.
"""

import functools
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TOOLS = ROOT / "docs" / "_tools"
sys.path.insert(0, str(TOOLS))

import generated  # noqa: E402

DOC_FILES = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]
SHELL_LANGUAGES = {"sh", "bash", "shell", "console"}


# ------------------------------------------------------------------------------ commands


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """(language, body) of each fenced code block."""
    pattern = re.compile(r"^(```|~~~)[ \t]*([\w+-]*)[^\n]*\n(.*?)^\1[ \t]*$", re.M | re.S)
    return [(m.group(2).lower(), m.group(3)) for m in pattern.finditer(text)]


def shell_commands(text: str) -> list[list[str]]:
    """Each command of the shell blocks as tokens: continuations joined, comments dropped,
    `&&`, `;` and `||` separating commands, brackets of optional parts removed."""
    commands = []
    for language, body in fenced_blocks(text):
        if language not in SHELL_LANGUAGES:
            continue
        for line in body.replace("\\\n", " ").splitlines():
            line = line.strip().removeprefix("$ ")
            for part in re.split(r"\s*(?:&&|\|\||;)\s*", line):
                tokens = [t.strip("[]") for t in shlex.split(part, comments=True)]
                tokens = [t for t in tokens if t]
                if tokens:
                    commands.append(tokens)
    return commands


def invocation(tokens: list[str]) -> tuple[str, list[str]] | None:
    """("sanet" | "convert" | "make", arguments) when `tokens` runs one of the project's
    commands, else None."""
    program = Path(tokens[0]).name
    if program == "sanet":
        return "sanet", tokens[1:]
    if program.startswith("python") and tokens[1:3] == ["-m", "convert"]:
        return "convert", tokens[3:]
    if program == "make":
        return "make", tokens[1:]
    return None


def documented(kind: str) -> list[tuple[str, list[str]]]:
    """(file name, arguments) of every documented command of `kind`."""
    found = []
    for path in DOC_FILES:
        for tokens in shell_commands(path.read_text()):
            call = invocation(tokens)
            if call and call[0] == kind:
                found.append((path.name, call[1]))
    return found


@functools.cache
def help_text(command: tuple[str, ...]) -> str:
    result = subprocess.run(
        [*command, "--help"], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert result.returncode == 0, f"`{' '.join(command)} --help` failed: {result.stderr}"
    return result.stdout


def check_arguments(base: tuple[str, ...], arguments: list[str], where: str) -> None:
    """Walk subcommands by their `--help`, then check every flag (and choice) shown."""
    command = base
    helped = help_text(command)
    positional = True
    for i, token in enumerate(arguments):
        if token.startswith("-") and token != "-":
            positional = False
            flag, _, inline_value = token.partition("=")
            assert re.search(rf"(^|[\s,\[]){re.escape(flag)}([\s,=\]]|$)", helped, re.M), (
                f"{where}: `{' '.join(command)}` has no option {flag}"
            )
            choices = re.search(rf"{re.escape(flag)} \{{([\w,.-]+)\}}", helped)
            value = inline_value or (arguments[i + 1] if i + 1 < len(arguments) else "")
            if choices:
                allowed = choices.group(1).split(",")
                for item in value.split(","):
                    assert item in allowed, f"{where}: {flag} {value}: not one of {allowed}"
            continue
        if not positional:
            continue
        subcommands = re.search(r"\{([\w,-]+)\} \.\.\.", helped)
        if subcommands is None:
            positional = False  # an argument (a file, a folder), not a subcommand
            continue
        names = subcommands.group(1).split(",")
        assert token in names, f"{where}: `{' '.join(command)} {token}`: no such subcommand"
        command = (*command, token)
        helped = help_text(command)


def test_the_docs_show_commands():
    # The docs must show each tool at least once, or this test would check nothing.
    for kind in ("sanet", "convert", "make"):
        assert documented(kind), f"no `{kind}` command found in the docs"
    shown = [arguments for _, arguments in documented("sanet") if arguments]
    assert {"stylize", "weights"} <= {a[0] for a in shown}
    assert {"fetch", "demo", "check"} <= {a[1] for a in shown if a[0] == "weights" and a[1:]}


@pytest.mark.parametrize(
    ("where", "arguments"),
    documented("sanet"),
    ids=lambda v: v if isinstance(v, str) else " ".join(v)[:60],
)
def test_sanet_commands_exist(where, arguments):
    check_arguments((str(BIN / "sanet"),), arguments, where)


@pytest.mark.parametrize(
    ("where", "arguments"),
    documented("convert"),
    ids=lambda v: v if isinstance(v, str) else " ".join(v)[:60],
)
def test_convert_commands_exist(where, arguments):
    check_arguments((sys.executable, "-m", "convert"), arguments, where)


@functools.cache
def make_targets() -> frozenset[str]:
    return frozenset(generated.make_targets(ROOT))


def test_makefile_includes_docs_mk():
    assert re.search(r"^-?include\s+.*\bdocs\.mk\b", (ROOT / "Makefile").read_text(), re.M), (
        "the Makefile must `include docs.mk` for `make docs` to exist"
    )


@pytest.mark.parametrize(
    ("where", "arguments"),
    documented("make"),
    ids=lambda v: v if isinstance(v, str) else " ".join(v)[:60],
)
def test_make_targets_exist(where, arguments):
    targets = [a for a in arguments if "=" not in a and not a.startswith("-")]
    assert targets or arguments == [], f"{where}: `make {' '.join(arguments)}` names no target"
    for target in targets:
        assert target in make_targets(), f"{where}: `make {target}`: no such target"


def test_the_command_checker_catches_drift():
    with pytest.raises(AssertionError, match="no option --no-such-flag"):
        check_arguments((str(BIN / "sanet"),), ["stylize", "a", "b", "--no-such-flag"], "t")
    with pytest.raises(AssertionError, match="no such subcommand"):
        check_arguments((str(BIN / "sanet"),), ["weights", "download"], "t")
    with pytest.raises(AssertionError, match="not one of"):
        check_arguments((sys.executable, "-m", "convert"), ["--demo", "tiny"], "t")
    assert "no-such-target" not in make_targets()
    assert {"install", "convert", "test", "web"} <= make_targets()


def test_commands_are_read_from_shell_blocks_only():
    text = (
        "```sh\n.venv/bin/sanet weights demo DIR \\\n    --small  # note\nmake docs && make x=1 y\n"
        "```\n```python\nsanet = 1\n```\n"
    )
    assert shell_commands(text) == [
        [".venv/bin/sanet", "weights", "demo", "DIR", "--small"],
        ["make", "docs"],
        ["make", "x=1", "y"],
    ]


# ------------------------------------------------------------------------------ site build

PARITY = {
    "weights": {"source": "demo", "untrained": True, "iteration": 0, "widths": [8, 16, 32, 64]},
    "versions": {"torch": "2.13.0", "tensorflowjs": "4.22.0"},
    "timings_s": {"onnx": 2.0},
    "checks": [
        {"stage": "onnxruntime/encoder.relu4_1", "case": "128x128 / 128x128, it 1, str 1",
         "max_abs": 8.6e-06, "mean_abs": 7.1e-07, "floor": 7.9e-06, "tolerance": 1e-4,
         "passed": True},
        {"stage": "tfjs/wasm", "case": "150x100 / 64x96, it 2, str 0.5", "max_abs": 3.5e-3,
         "mean_abs": 1e-4, "floor": 2.1e-3, "tolerance": 1.05e-2, "passed": True},
        {"stage": "tf.Module", "case": "200x72 / 90x130, it 1, str 1", "max_abs": 0.25,
         "mean_abs": 0.01, "floor": 1e-5, "tolerance": 1e-4, "passed": False},
        {"stage": "tfjs-uint8", "case": "128x128 / 128x128, it 1, str 1", "max_abs": 0.82,
         "mean_abs": 0.078, "floor": 0.0, "tolerance": None, "passed": True},
    ],
    "ops": {"tfjs": {"converted": {"Transpose": 145, "Const": 1117},
                     "optimized": {"Transpose": 81, "Const": 98},
                     "transpose_pairs_removed": 32, "duplicate_bytes_removed": 49_000_000}},
    "variants": [
        {"name": "fp32", "path": "model.json", "bytes": 84_000_000, "max_abs_error": 0.0,
         "mean_abs_error": 0.0, "psnr": None},
        {"name": "uint8", "path": "uint8/model.json", "bytes": 21_000_000,
         "max_abs_error": 0.82, "mean_abs_error": 0.078, "psnr": 19.56},
    ],
}  # fmt: skip
BENCH = {
    "runs": [
        {"runtime": "pytorch", "backend": "cpu", "size": 512, "iterations": 1, "median_s": 5.43,
         "min_s": 5.2, "max_s": 5.9, "peak_mb": 1890.0},
        {"runtime": "tfjs-node", "backend": "wasm", "size": 256, "iterations": 1,
         "median_s": 10.2, "min_s": 10.0, "max_s": 10.9, "peak_mb": None, "cold_s": 12.5},
    ],
    "variants": [{"name": "float16", "bytes": 42_000_000, "mean_abs_error": 0.003,
                  "max_abs_error": 0.05, "psnr": 47.5}],
}  # fmt: skip


@pytest.fixture(scope="module")
def web_built():
    """The app's bundles: `make docs` builds them first (`make web`), so the test does too."""
    subprocess.run(["make", "--no-print-directory", "-s", "web"], cwd=ROOT, check=True)
    assert (ROOT / "web" / "dist" / "main.js").is_file()


def build_site(site: Path, **paths: Path) -> str:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    env |= {f"SANET_DOCS_{name.upper()}": str(path) for name, path in paths.items()}
    result = subprocess.run(
        [str(BIN / "mkdocs"), "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "WARNING" not in result.stderr
    return result.stderr


def page(site: Path, name: str) -> str:
    return (site / name / "index.html").read_text()


def visible_text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


@pytest.fixture(scope="module")
def bare_site(tmp_path_factory, web_built):
    """The site as a fresh clone builds it: no conversion, no benchmarks, no screenshots."""
    tmp = tmp_path_factory.mktemp("bare")
    site = tmp / "site"
    build_site(site, parity=tmp / "none.json", bench=tmp / "none.json",
               model=tmp / "no-model", screenshots=tmp / "no-shots")  # fmt: skip
    return site


@pytest.fixture(scope="module")
def full_site(tmp_path_factory, web_built):
    """The site after `make convert`, `make bench` and the browser tests."""
    tmp = tmp_path_factory.mktemp("full")
    (tmp / "parity.json").write_text(json.dumps(PARITY))
    (tmp / "results.json").write_text(json.dumps(BENCH))
    (tmp / "model").mkdir()
    (tmp / "model" / "metadata.json").write_text('{"variants": []}')
    (tmp / "shots").mkdir()
    for name in ("desktop.png", "phone.png"):
        (tmp / "shots" / name).write_bytes(b"\x89PNG test " + name.encode())
    site = tmp / "site"
    build_site(site, parity=tmp / "parity.json", bench=tmp / "results.json",
               model=tmp / "model", screenshots=tmp / "shots")  # fmt: skip
    return site


def test_bare_site_builds_and_says_how_to_fill_it(bare_site):
    conversion = visible_text(page(bare_site, "conversion"))
    assert "No conversion results in this build" in conversion
    assert "make convert" in conversion
    assert "No benchmark results in this build" in visible_text(page(bare_site, "benchmarks"))
    assert not (bare_site / "app" / "model").exists()
    for name in ("desktop.png", "phone.png"):
        committed = ROOT / "docs" / "images" / "screenshots" / name
        assert (bare_site / "images" / "screenshots" / name).read_bytes() == committed.read_bytes()


def test_site_holds_the_app_with_everything_it_references(bare_site):
    html = (bare_site / "app" / "index.html").read_text()
    assert html == (ROOT / "web" / "index.html").read_text()
    references = generated.local_references(html)
    assert "dist/main.js" in references
    for reference in references:
        assert (bare_site / "app" / reference).is_file(), f"app/{reference} is missing"
    precache = json.loads((bare_site / "app" / "dist" / "precache.json").read_text())
    for file in precache["files"]:
        if file != "./":
            assert (bare_site / "app" / file).is_file(), f"precached app/{file} is missing"
    assert (bare_site / "app" / "sw.js").is_file()
    assert (bare_site / "app" / "samples" / "CREDITS.md").read_text().startswith("# ")
    assert 'href="app/"' in (bare_site / "index.html").read_text()  # in the nav


def test_site_loads_nothing_from_other_origins(bare_site):
    remote = r"""(?:https?:)?//"""
    checks = {
        ".html": [rf"<(?:script|img|iframe|source|video|audio|embed)\b[^>]*\bsrc=[\"']?{remote}",
                  rf"<link\b[^>]*\bhref=[\"']?{remote}"],
        ".css": [rf"url\(\s*[\"']?{remote}", r"@import"],
    }  # fmt: skip
    scanned = 0
    for path in bare_site.rglob("*"):
        for pattern in checks.get(path.suffix, []):
            text = path.read_text(errors="replace")
            assert not re.search(pattern, text, re.I), f"{path.relative_to(bare_site)}: {pattern}"
            scanned += 1
    assert scanned > 20
    # Material's script can fetch two things from a CDN: a ResizeObserver polyfill (only in
    # browsers without ResizeObserver) and Mermaid (only for `mermaid` blocks). No page has
    # one, and no page uses MathJax (its default loads from a CDN).
    for path in bare_site.rglob("*.html"):
        text = path.read_text()
        assert 'class="mermaid"' not in text and "mathjax" not in text.lower(), path


def test_reference_pages_come_from_the_code(bare_site):
    from sanet import Stylizer
    from sanet.cli import build_parser

    cli = visible_text(page(bare_site, "cli"))
    for path, _parser in generated.parser_tree(build_parser()):
        assert f"sanet {' '.join(path)}".strip() in cli
    for flag in ("--max-resolution", "--memory-budget", "--small", "--api", "--quantize"):
        assert flag in cli
    api = visible_text(page(bare_site, "python-api"))
    assert "Stylizer.stylize" in api
    assert Stylizer.stylize.__doc__.split(";")[0].strip().replace("`", "") in api


def test_full_site_renders_results(full_site):
    conversion = visible_text(page(full_site, "conversion"))
    assert "Untrained demo weights" in conversion
    assert "2 of 3 judged checks pass" in conversion
    assert "FAIL" in conversion and "recorded" in conversion
    assert "8.6e-06" in conversion and "1.0e-04" in conversion
    assert "49.0 MB" in conversion and "instead of 133.0 MB" in conversion  # deduplication
    assert "84.0 MB" in conversion and "19.6 dB" in conversion
    bench = visible_text(page(full_site, "benchmarks"))
    assert "5.43" in bench and "12.50" in bench and "1890" in bench and "47.5 dB" in bench
    assert (full_site / "app" / "model" / "metadata.json").is_file()
    assert (full_site / "images" / "screenshots" / "phone.png").read_bytes() == (
        b"\x89PNG test phone.png"
    )


# ------------------------------------------------------------------------------ renderers


def test_parity_renders_every_check_and_a_summary_per_stage():
    text = generated.render_parity(PARITY)
    assert text.count("| `tfjs/wasm` |") == 2  # summary row and detail row
    assert "| **NO** |" in text
    summary = next(line for line in text.splitlines() if line.startswith("| `tf.Module`"))
    assert "2500.00" in summary and "**FAIL**" in summary  # 0.25 / 1e-4
    assert generated.render_parity(None) == generated.MISSING_PARITY
    assert "make convert" in generated.render_ops(None)


def test_bench_without_results_says_how_to_make_them():
    assert "`make bench` writes it" in generated.render_bench(None)
    rows = [line for line in generated.render_bench(BENCH).splitlines() if "| " in line]
    assert len(rows) == 2 + 2 + 2 + 1  # two tables: header, rule, rows


def test_bench_page_prefers_the_suites_own_report(tmp_path):
    results = tmp_path / "results.json"
    results.write_text(json.dumps(BENCH))
    assert "| pytorch | cpu | 512 |" in generated.render_bench_page(results)
    (tmp_path / "results.md").write_text("### Latency\n\n| runtime | 256 px |\n|---|---|\n")
    page = generated.render_bench_page(results)
    assert page.endswith("### Latency\n\n| runtime | 256 px |\n|---|---|\n")
    assert "pytorch | cpu" not in page


def test_local_references_skip_remote_and_fragments():
    html = (
        '<link href="style.css"><script src="./dist/main.js?v=1"></script>'
        '<a href="https://example.org/">x</a><a href="#top">t</a><img src="//cdn/x.png">'
        '<button data-src="samples/a.jpg"></button>'
    )
    assert generated.local_references(html) == ["style.css", "dist/main.js", "samples/a.jpg"]


def test_web_app_page_matches_the_page_controls():
    """The control table of web-app.md states the ranges that web/index.html has."""
    from html.parser import HTMLParser

    class Controls(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.inputs: dict[str, dict] = {}
            self.options: dict[str, list[dict]] = {}
            self.select: str | None = None

        def handle_starttag(self, tag, attrs):
            attributes = dict(attrs)
            if tag == "input" and "id" in attributes:
                self.inputs[attributes["id"]] = attributes
            elif tag == "select":
                self.select = attributes.get("id")
                self.options[self.select] = []
            elif tag == "option" and self.select:
                self.options[self.select].append(attributes)

    controls = Controls()
    controls.feed((ROOT / "web" / "index.html").read_text())
    text = " ".join((ROOT / "docs" / "web-app.md").read_text().split())
    strength, iterations = controls.inputs["strength"], controls.inputs["iterations"]
    assert f"{strength['min']} to {strength['max']} in steps of {strength['step']}" in text
    assert f"{iterations['min']} to {iterations['max']} passes" in text
    sizes = [int(o["value"]) for o in controls.options["max-resolution"]]
    default = next(o["value"] for o in controls.options["max-resolution"] if "selected" in o)
    assert f"{min(sizes)} to {max(sizes)} px (default {default})" in text
    backends = [o["value"] for o in controls.options["backend"]]
    assert backends[0] == "auto" and "**Auto**" in text
    names = {"webgpu": "WebGPU", "webgl": "WebGL", "wasm": "WebAssembly", "cpu": "plain JavaScript"}
    for backend in backends[1:]:
        assert names[backend] in text, f"backend {backend} is not described"


# ------------------------------------------------------------------------------ pictures


def test_committed_diagram_is_what_the_script_draws():
    import make_diagram

    assert (ROOT / "docs" / "images" / "architecture.svg").read_text() == make_diagram.draw()


def test_pictures_are_present_and_small():
    images = ROOT / "docs" / "images"
    examples = sorted((images / "examples").glob("demo-*.jpg"))
    assert len(examples) == 5
    total = sum(p.stat().st_size for p in images.rglob("*") if p.is_file())
    assert total < 1_000_000, f"docs/images holds {total} bytes"
    for path in examples:
        assert f"images/examples/{path.name}" in (ROOT / "docs" / "how-it-works.md").read_text()
