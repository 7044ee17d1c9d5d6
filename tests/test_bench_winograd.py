"""The Winograd micro-benchmark (bench/winograd/) computes the convolution it is timed against:
its F(2x2,3x3) and F(4x4,3x3), written with TF.js ops, agree with TF.js's own convolution
(plus bias and ReLU) on wasm in Chromium, at a small layer and chained over the encoder's deep
end. About 10 s. And `make bench`'s end-to-end part (bench/winograd_end_to_end.py) times a
converted model plain and with the pass through the shipped worker and compares their outputs
(small demo weights at 64 px: a minute, most of it the conversion)."""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import winograd_end_to_end
from bench.winograd import measure

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# Largest difference over the largest output, float32: measured 1e-6 (F2) and 5e-6 (F4) at
# this size; a wrong transform entry, tile offset or depth-to-space order gives order 1.
TOLERANCE = 1e-4


def test_winograd_as_tfjs_ops_agrees_with_the_plain_convolution():
    # Not square, so that rows and columns cannot be swapped unseen.
    layer = {"channels": 24, "outputs": 40, "height": 16, "width": 12}
    # The encoder's conv4_1 to relu5_1, every layer in F(2x2,3x3), chained with its pads.
    chain = {"channels": 24, "height": 8, "width": 12}
    result = measure([layer], repeats=1, chromium=CHROMIUM, chains=[chain])
    assert "error" not in result, result.get("error")
    [measured] = result["layers"]
    for m in (2, 4):
        assert measured[f"f{m}_max_error_relative"] < TOLERANCE, (m, measured)
        assert measured[f"f{m}_best_ms"] > 0 and measured[f"f{m}_by_kernel_ms"]
    [chained] = result["chains"]
    assert chained["f2_max_error_relative"] < TOLERANCE, chained
    assert chained["plain_best_ms"] > 0 and chained["f2_best_ms"] > 0


def test_end_to_end_runs_the_model_with_and_without_the_pass(converted_small):
    # The small model's widest layers have 64 channels: rewrite those with 16 or more.
    document = winograd_end_to_end.measure(
        converted_small, CHROMIUM, thresholds=(16,), size=64, rounds=2
    )
    assert "error" not in document, document.get("error")
    plain, rewritten = document["models"]["plain"], document["models"]["stored-16"]
    assert rewritten["layers"] > 0 and rewritten["bytes"] > plain["bytes"]
    assert len(plain["times_s"]) == len(rewritten["times_s"]) == 2
    assert rewritten["ratio_median"] > 0 and rewritten["ratio_cpu"] > 0
    # The outputs as RGB bytes: the pass moves float32 results by about 1e-6, a rounding.
    assert max(document["max_difference"].values()) <= 1, document["max_difference"]
    missing = winograd_end_to_end.measure(converted_small.parent / "none", CHROMIUM)
    assert missing == {
        "error": f"{converted_small.parent / 'none' / 'model'} is missing: run `make bench-model`"
    }
