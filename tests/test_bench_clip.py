"""The bench's video frames and re-run part (bench/frames.py, bench/tfjs/page.js) on the web
tests' stand-in model (web/tests/make_standin_model.py: the real signature, encodings included,
whose result changes when it is fed another image's encodings): the TF SavedModel through
bench/frames.py and the shipped worker in Chromium through bench/tfjs/run.mjs. About 20 s."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import collect, frames, report, results, worker
from bench.plan import Clip, Plan
from convert import contract

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SIZE = 64


@pytest.fixture(scope="module")
def standin(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("standin")
    script = REPO / "web" / "tests" / "make_standin_model.py"
    subprocess.run([sys.executable, str(script), str(out)], check=True, capture_output=True)
    return out


def test_saved_model_frames_and_rerun_feed_back_the_right_encodings(standin):
    import tensorflow as tf

    module = tf.saved_model.load(str(standin / "saved_model"))
    signature = worker.Signature(module.signatures[contract.SIGNATURE_KEY], tf.constant, module)
    runtime = frames.signature_runtime(signature)
    record = frames.measure_clip(runtime, SIZE, frames=4, singles=2, iterations=1)
    assert len(record["frame_s"]) == 3 and len(record["single_s"]) == 2
    # Frames 2 and 3 with the first frame's style encodings, as their single-image calls.
    assert record["max_difference"] < 1e-6

    content, style = frames.clip_frames(SIZE, 1)[0], frames.rerun_styles(SIZE, 1)[0]
    _, again = runtime.rerun(content, style, SIZE, 1)
    expected = runtime.single(content, style, SIZE, 1)  # at strength 1, encoded afresh
    assert abs(again(1.0) - expected).max() < 1e-6
    record = frames.measure_rerun(runtime, SIZE, rounds=2, strength=0.5, iterations=1)
    assert len(record["full_s"]) == len(record["rerun_s"]) == 2


def test_shipped_worker_reuses_the_clips_style_and_a_reruns_encodings(standin, tmp_path):
    clip = Clip(sizes=(SIZE,), frames=4, singles=2, rerun_size=SIZE, reruns=2)
    response = collect.run_tfjs(
        Plan(clip=clip, quiet=False), standin / "tfjs", CHROMIUM, tmp_path, {}
    )
    assert not response.get("errors") and "error" not in response["clip"]
    document = results.clip_records([], response["clip"])
    (record,), (rerun,) = document["frames"], document["reruns"]
    assert record["reused_as_expected"] and rerun["reused_as_expected"]
    assert record["max_difference"] == 0
    assert len(record["frame_s"]) == 3 and record["frames_per_s"] > 0
    assert len(rerun["full_s"]) == 2 and rerun["rerun_over_full"] > 0
    assert [p for p in results.problems({"clip": document}) if p.startswith("clip")] == []
    text = "\n".join(report.clip_lines(document))
    assert f"| TF.js wasm (Chromium) | {SIZE} |" in text and "wrong" not in text
