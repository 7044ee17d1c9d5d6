"""The bench's full-resolution part (bench/fullres.py, issue 11) on small converted demo weights
at small sizes: PyTorch (holding the content's maps, and streamed) and the TF SavedModel each in
their own process, TF.js wasm (both ways) through the shipped worker in Chromium
(bench/tfjs/run.mjs). About four minutes (the conversion one of them; the small model tiles at
these sizes only with one-position attention chunks, which PyTorch runs slowly). No wall-clock
assertions."""

import dataclasses
import os
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import fullres, report, worker
from sanet import SANetError

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# Sizes at which a memory budget in whole MB tiles the small model at 64 px (smaller ones fit
# untiled in less than their smallest tiles need), both ways.
PLAN = fullres.FullresPlan(
    sizes=((576, 768), (768, 1024)), tile=64, style_side=128, warmup_side=64, quiet=False
)


@pytest.fixture(scope="module")
def build(converted_small) -> Path:
    return converted_small


@pytest.fixture(scope="module")
def document(build, tmp_path_factory) -> dict:
    work = tmp_path_factory.mktemp("fullres-work")
    return fullres.run(PLAN, build, build / "demo-weights-small", CHROMIUM, work)


def test_budget_for_tile_is_the_smallest_that_tiles_that_large(build):
    worker.WEIGHTS["dir"] = build / "demo-weights-small"
    stylizer = worker.pytorch_stylizer(build)
    content, style = (768, 1024), (128, 128)
    for streamed in (False, True):
        budget, tiling = fullres.budget_for_tile(stylizer, content, style, 64, streamed)
        assert tiling.tile >= 64 and tiling.streamed == streamed

        def below(mb: int, streamed: bool = streamed):
            try:
                limited = dataclasses.replace(stylizer, memory_budget_mb=mb)
                return limited.tiling(content, style, 1.0, streamed=streamed)
            except SANetError:
                return None

        smaller = below(budget - 1)
        assert smaller is None or smaller.tile < 64
        fits_whole = fullres.budget_for_tile(stylizer, (96, 128), style, 64, streamed)
        assert fits_whole == (None, None)


def test_every_runtime_measures_each_size_in_tiles_and_the_first_untiled(document):
    records = document["records"]
    assert [r for r in records if "error" in r] == []
    shapes = [list(s) for s in PLAN.sizes]
    for runtime in ("pytorch", "pytorch-streamed", "tensorflow", *fullres.BROWSER):
        mine = [r for r in records if r["runtime"] == runtime and not r.get("page_plan")]
        assert [(r["shape"], r["tile"]) for r in mine] == [
            (shapes[0], 64),
            (shapes[0], 0),
            (shapes[1], 64),
        ]
        for r in mine:
            assert r["output_shape"] == r["shape"]
            assert r["seconds"] > 0 and r["s_per_mp"] == pytest.approx(
                r["seconds"] / (r["shape"][0] * r["shape"][1] / 1e6), rel=1e-2
            )
            assert r["memory_mb"] > 0 and r["process_peak_mb"] > r["memory_mb"]
        assert mine[0]["s_per_mp_over_first"] == mine[0]["memory_over_first"] == 1.0
        assert mine[2]["memory_over_first"] == pytest.approx(
            mine[2]["memory_mb"] / mine[0]["memory_mb"], abs=1e-3
        )


def test_the_last_runs_are_the_pages_own_plan_at_every_size_and_within_its_estimate(document):
    planned = [r for r in document["records"] if r.get("page_plan")]
    assert document["records"][-len(planned) :] == planned
    assert [r["shape"] for r in planned] == [list(s) for s in PLAN.sizes]
    for r in planned:
        assert r["runtime"] in fullres.BROWSER and r["budget_mb"] == PLAN.page_budget_mb
        assert r["tile"] > 0 and r["estimate_mb"] <= r["budget_mb"]
        # What the page's rule promises: the heap within its estimate, the page's renderer (the
        # tab: the heap and the page's own part) within the plan's.
        assert 0 < r["memory_mb"] <= r["heap_estimate_mb"] < r["estimate_mb"]
        assert r["memory_mb"] < r["page_renderer_peak_mb"] <= r["estimate_mb"]
    assert planned[0]["memory_over_first"] == planned[0]["s_per_mp_over_first"] == 1.0


def test_python_memory_is_read_from_each_runs_own_process(document):
    for r in document["records"]:
        if r["runtime"] in ("pytorch", "pytorch-streamed", "tensorflow"):
            # A fresh interpreter with torch or TF loaded holds over 100 MB before the run.
            assert r["baseline_mb"] > 100 and r["peak_scope"] == "run"
            assert r["process_peak_mb"] == pytest.approx(r["baseline_mb"] + r["memory_mb"], abs=0.2)
    for runtime in ("pytorch", "pytorch-streamed"):
        pytorch = [r for r in document["records"] if r["runtime"] == runtime]
        assert pytorch[0]["budget_mb"] < pytorch[2]["budget_mb"]  # larger images held whole
        assert pytorch[0]["tile_px"] >= 64 and pytorch[2]["tile_px"] >= 64
        assert pytorch[0]["streamed"] == pytorch[2]["streamed"] == (runtime == "pytorch-streamed")


def test_tfjs_reports_the_wasm_heap_and_ran_at_full_resolution(document):
    for r in (r for r in document["records"] if r["runtime"] in fullres.BROWSER):
        assert r["working_resolution"] == max(r["shape"])  # no retry at a lower resolution
        assert r["memory_mb"] >= 16  # a wasm heap grows in 64 KiB pages from a few MB
        assert r["threads"] >= 1
        # The page's own renderer holds the worker's heap; the sum adds the spare renderers.
        assert r["memory_mb"] < r["page_renderer_peak_mb"] <= r["process_peak_mb"]
        assert r["page_errors"] == []  # not even the browser's own request for a favicon


def test_tiled_results_equal_untiled_ones(document):
    # TF.js: 8-bit pixels. Streamed: the statistics summed in another order, the content
    # encoded twice, so float32 rounding in other places.
    limits = {"pytorch": 1e-4, "pytorch-streamed": 1e-3, "tensorflow": 1e-4, "tfjs": 2 / 255}
    limits["tfjs-streamed"] = 2 / 255
    found = {a["runtime"]: a["tiled_vs_untiled_max_abs"] for a in document["agreement"]}
    assert found.keys() == limits.keys()
    for runtime, difference in found.items():
        assert difference <= limits[runtime], runtime


def test_report_shows_every_record_and_the_agreement(document):
    text = "\n".join(report.fullres_lines(document))
    assert text.count("| 768x576 | 64 px") == 5 and text.count("| 1024x768 | 64 px") == 5
    assert text.count("| 768x576 | none |") == 5
    assert "could not run" not in text and "out of memory" not in text
    assert text.count("tiled against untiled at 768x576") == 5


def test_a_failed_run_is_recorded_not_raised(build, tmp_path):
    plan = dataclasses.replace(PLAN, sizes=((576, 768),), python=("pytorch",), browser=False)
    missing = tmp_path / "no-weights"
    document = fullres.run(plan, build, missing, None, tmp_path)
    assert all("error" in r for r in document["records"]) and document["agreement"] == []
    assert "could not run this part" in "\n".join(report.fullres_lines(document))
    assert np.isfinite(document["duration_s"])
