"""MkDocs hooks: the stylizer app inside the site, and the pages' generated parts.

- on_files adds the built web app (web/index.html and everything it needs, the model when
  `make convert` has made one) under app/, and the browser tests' screenshots when they exist.
- on_page_markdown replaces each `<!-- generated:NAME -->` line with Markdown rendered from the
  code or from build results (see generated.py).
- on_post_build copies the app's Markdown files (its image credits) as they are: MkDocs would
  otherwise render them as pages.

Paths can be overridden for tests with environment variables: SANET_DOCS_PARITY (default
build/parity.json), SANET_DOCS_BENCH (bench/results.json), SANET_DOCS_MODEL (web/model) and
SANET_DOCS_SCREENSHOTS (build/screenshots).
"""

import logging
import os
import re
import shutil
import sys
from pathlib import Path

from mkdocs.structure.files import File, Files

sys.path.insert(0, str(Path(__file__).parent))

import generated

log = logging.getLogger("mkdocs.hooks.sanet")
ROOT = Path(__file__).resolve().parents[2]
APP = "app"
MARKER = re.compile(r"^<!-- generated:([a-z-]+) -->$", re.MULTILINE)


def _path(variable: str, default: str) -> Path:
    value = os.environ.get(variable)
    return Path(value) if value else ROOT / default


def app_sources(web: Path, model: Path) -> dict[str, Path]:
    """Files of the built web app by their path under app/: what index.html references,
    the shell, web/dist/, the samples and, when present, the converted model."""
    sources: dict[str, Path] = {}

    def add(relative: str, path: Path) -> None:
        if path.is_file() and not any(part.startswith(".") for part in Path(relative).parts):
            sources[relative] = path

    for name in ("index.html", "style.css", "sw.js", "favicon.svg"):
        add(name, web / name)
    for reference in generated.local_references((web / "index.html").read_text()):
        add(reference, web / reference)
    for folder, pattern in (("dist", "**/*"), ("samples", "*.jpg"), ("samples", "*.md")):
        for path in sorted((web / folder).glob(pattern)):
            add(path.relative_to(web).as_posix(), path)
    if model.is_dir():
        for path in sorted(model.rglob("*")):
            add(f"model/{path.relative_to(model).as_posix()}", path)
    return sources


def on_files(files: Files, config) -> Files:
    web, model = ROOT / "web", _path("SANET_DOCS_MODEL", "web/model")
    if not (web / "dist" / "main.js").is_file():
        log.warning("web/dist/ is not built: run `make docs` (it runs `make web` first)")
    if not model.is_dir():
        log.info(f"{model} is absent: the app in the site will ask for `make convert`")
    for relative, path in app_sources(web, model).items():
        if relative.endswith(".md"):
            continue  # copied by on_post_build
        files.append(File.generated(config, f"{APP}/{relative}", abs_src_path=str(path)))

    shots = _path("SANET_DOCS_SCREENSHOTS", "build/screenshots")
    for name in ("desktop.png", "phone.png"):
        if (shots / name).is_file():
            uri = f"images/screenshots/{name}"
            committed = files.get_file_from_path(uri)
            if committed is not None:
                files.remove(committed)
            files.append(File.generated(config, uri, abs_src_path=str(shots / name)))
    return files


def on_page_markdown(markdown: str, page, config, files) -> str:
    def render(match: re.Match[str]) -> str:
        name = match.group(1)
        parity = _path("SANET_DOCS_PARITY", "build/parity.json")
        if name == "parity":
            return generated.render_parity(generated.read_json(parity))
        if name == "ops":
            return generated.render_ops(generated.read_json(parity))
        if name == "variants":
            return generated.render_variants(generated.read_json(parity))
        if name == "bench":
            return generated.render_bench_page(_path("SANET_DOCS_BENCH", "bench/results.json"))
        if name == "cli":
            return generated.render_cli()
        if name == "api":
            return generated.render_api()
        raise ValueError(f"{page.file.src_uri}: unknown generated block {name!r}")

    return MARKER.sub(render, markdown)


def on_post_build(config) -> None:
    web, model = ROOT / "web", _path("SANET_DOCS_MODEL", "web/model")
    for relative, path in app_sources(web, model).items():
        if relative.endswith(".md"):
            target = Path(config.site_dir) / APP / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
