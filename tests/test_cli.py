"""`sanet` end to end, and its one-line errors."""

import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import smooth_image
from PIL import Image

from sanet.cli import main


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    directory = tmp_path_factory.mktemp("images")
    Image.fromarray((smooth_image(75, 110, seed=1) * 255).astype(np.uint8)).save(
        directory / "c.jpg"
    )
    Image.fromarray((smooth_image(64, 64, seed=2) * 255).astype(np.uint8)).save(directory / "s.png")
    return directory / "c.jpg", directory / "s.png"


def run_cli(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "sanet", *map(str, args)],
        capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=300,
    )  # fmt: skip


def test_stylize_end_to_end(images, demo_weights, tmp_path):
    content, style = images
    output = tmp_path / "out.png"
    done = run_cli("stylize", content, style, "-o", output, "--weights", demo_weights,
                   "--iterations", "2", "--strength", "0.7", "--max-resolution", "64")  # fmt: skip
    assert done.returncode == 0, done.stderr
    with Image.open(output) as result:
        assert result.size == (110, 75) and result.mode == "RGB"
        assert "UNTRAINED" in result.info["Comment"]
        assert np.asarray(result).std() > 5  # an image, not a flat fill
    stages = [line.split()[0] for line in done.stderr.splitlines()]
    assert stages[0] == "load" and stages.count("encode") == 3  # style once, content twice
    assert stages.count("transform") == 2 and stages.count("decode") == 2
    assert "UNTRAINED" in done.stderr and "Traceback" not in done.stderr


def test_default_weights_location(images, demo_weights, tmp_path):
    content, style = images
    output = tmp_path / "out.jpg"
    done = run_cli(
        "stylize", content, style, "-o", output, env={"SANET_WEIGHTS": str(demo_weights)}
    )
    assert done.returncode == 0, done.stderr
    with Image.open(output) as result:
        assert result.format == "JPEG" and result.size == (110, 75)


def test_weights_check_and_demo(tmp_path):
    made = run_cli("weights", "demo", tmp_path / "w", "--small", "--seed", "5")
    assert made.returncode == 0 and "UNTRAINED" in made.stdout
    checked = run_cli("weights", "check", tmp_path / "w")
    assert checked.returncode == 0
    assert "iteration 0 (UNTRAINED demo weights)" in checked.stdout


def bad_call(capsys, *args) -> str:
    """Run the CLI in-process: one stderr line, no traceback, non-zero status."""
    try:
        code = main([str(a) for a in args])
    except SystemExit as exit_:  # argparse
        code = exit_.code
    err = capsys.readouterr().err
    assert code != 0
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize(
    ("change", "message"),
    [({"content": "missing.png"}, "no such file"),
     ({"content": "notimage.png"}, "not an image"),
     ({"style": "missing.png"}, "no such file"),
     ({"output": "nodir/out.png"}, "does not exist"),
     ({"output": "out.gif"}, "must end in"),
     ({"output": "/proc/out.png"}, "not writable"),
     ({"extra": ["--iterations", "0"]}, "at least 1"),
     ({"extra": ["--iterations", "two"]}, "whole number"),
     ({"extra": ["--strength", "1.5"]}, "between 0 and 1"),
     ({"extra": ["--strength", "-0.1"]}, "between 0 and 1"),
     ({"extra": ["--max-resolution", "-5"]}, "at least 17"),
     ({"content": "big.png", "extra": ["--max-resolution", "0", "--memory-budget", "1"]},
      "--max-resolution"),
     ({"weights": "nowhere"}, "does not exist")],
)  # fmt: skip
def test_bad_input_is_one_line_and_leaves_no_output(
    capsys, images, demo_weights, tmp_path, change, message
):
    (tmp_path / "notimage.png").write_text("hello")
    Image.new("RGB", (600, 500)).save(tmp_path / "big.png")
    content = tmp_path / change["content"] if "content" in change else images[0]
    style = tmp_path / change["style"] if "style" in change else images[1]
    output = tmp_path / change.get("output", "out.png")
    weights = tmp_path / change["weights"] if "weights" in change else demo_weights
    args = ["stylize", content, style, "-o", output, "--weights", weights, *change.get("extra", [])]
    err = bad_call(capsys, *args)
    assert message in err
    assert not output.exists()
    leftovers = [p.name for p in tmp_path.rglob("*") if p.name.startswith(".")]
    assert leftovers == []
