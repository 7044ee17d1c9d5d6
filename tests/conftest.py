import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from release_layout import make_release

SHARED_CONVERSION = "converted_demo"


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """`make test` spreads the tests over one pytest-xdist worker a core (`--dist loadgroup`):
    the tests that share the session's conversion form one group, so that it is made once."""
    for item in items:
        if SHARED_CONVERSION in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group(SHARED_CONVERSION))


def pytest_collection_finish(session: pytest.Session) -> None:
    """Say so when pytest-xdist ignored the groups (each would then convert on every worker,
    slower but as correct): it marks a grouped test's id with `@group`."""
    if not session.config.getoption("loadgroup", default=False):
        return
    grouped = [item for item in session.items if item.get_closest_marker("xdist_group")]
    if any("@" not in item.nodeid for item in grouped):
        warnings.warn(
            "pytest-xdist ignored the tests' groups: each group's conversion is made on every "
            "worker (requirements/lock.txt says which pytest it groups with)",
            pytest.PytestWarning,
            stacklevel=1,
        )


@pytest.fixture(scope="session")
def release(tmp_path_factory):
    """A small-width checkpoint directory in the release layout: (directory, state dicts)."""
    directory = tmp_path_factory.mktemp("release")
    return directory, make_release(directory)


@pytest.fixture(scope="session")
def demo_weights(tmp_path_factory):
    """Small untrained weights written by `sanet weights demo --small`."""
    from sanet.cli import main

    directory = tmp_path_factory.mktemp("demo")
    assert main(["weights", "demo", str(directory), "--small"]) == 0
    return directory


@pytest.fixture(scope="session")
def converted_demo(tmp_path_factory):
    """Small demo weights converted through every stage, once for the whole run: (options,
    report). Its sizes: square; odd relu4_1 sides (5 x 9); elongated, odd. test_convert checks
    the conversion; the bench's tests only need a converted build. Tests that change files
    work on copies."""
    from convert.pipeline import Options, run

    build = tmp_path_factory.mktemp("converted-small") / "build"
    sizes = (((48, 48), (48, 48)), ((40, 72), (48, 32)), ((24, 100), (50, 35)))
    options = Options(demo="small", build=build, output=build / "model", sizes=sizes)
    return options, run(options)


@pytest.fixture(scope="session")
def converted_small(converted_demo) -> Path:
    """The build folder of `converted_demo` (ONNX, SavedModel, TF.js under model/)."""
    return converted_demo[0].build


def smooth_image(height: int, width: int, seed: int) -> np.ndarray:
    """A smooth random float image [H, W, 3] in [0, 1] (structure at several scales)."""
    import torch
    import torch.nn.functional as F

    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, 6, 6, generator=generator)
    fine = torch.rand(1, 3, height, width, generator=generator)
    image = F.interpolate(coarse, size=(height, width), mode="bilinear") * 0.8 + fine * 0.2
    return image[0].permute(1, 2, 0).numpy()
