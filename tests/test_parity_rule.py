"""The parity rule publishes faithful conversions of weights it has never seen and refuses
conversions with a real defect injected into one stage's output.

The weight sets differ in generator, seed and conditioning: the last decoder convolution is
scaled so that the network damps (gain 0.5) or amplifies (gain 1.5) what the previous
iteration rounded. The defects are bugs a converter could really have, each injected into the
artifact of one stage, which is then checked again on its own (`--only`).
"""

import re
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper
from release_layout import decoder_convs, make_release

from convert.parity import Check
from convert.pipeline import Options, run
from sanet import SANetError
from sanet.encoder import SMALL_WIDTHS
from sanet.weights import write_demo_weights

# (content, style) as (height, width): square; odd relu4_1 side (3 x 9), elongated.
SIZES = (((40, 40), (40, 40)), ((24, 72), (56, 40)))


def condition(directory: Path, gain: float) -> None:
    """Scale the last decoder convolution's weights in place by `gain`."""
    [path] = directory.glob("decoder_iter_*.pth")
    state = torch.load(path, weights_only=True)
    last = decoder_convs(SMALL_WIDTHS)[-1][0]
    state[f"{last}.weight"] = state[f"{last}.weight"] * gain
    torch.save(state, path)


def release_layout(seed: int, gain: float):
    def write(directory: Path) -> None:
        make_release(directory, SMALL_WIDTHS, seed=seed)
        condition(directory, gain)

    return write


def demo(seed: int, gain: float):
    def write(directory: Path) -> None:
        write_demo_weights(directory, SMALL_WIDTHS, seed=seed)
        condition(directory, gain)

    return write


WEIGHT_SETS = {
    "release layout, seed 7, damped (gain 0.5)": release_layout(7, 0.5),
    "release layout, seed 5, as made (gain 1)": release_layout(5, 1.0),
    "demo generator, seed 3, chaotic (gain 1.5)": demo(3, 1.5),
}
# Its small floors make the sharpest test of the rule: the defects are injected into its build.
WELL_CONDITIONED = "release layout, seed 7, damped (gain 0.5)"


def convert(weights: Path, root: Path, **options) -> Options:
    chosen = Options(
        weights=weights, build=root / "build", output=root / "model", sizes=SIZES, **options
    )
    run(chosen)
    return chosen


def by_conversion(name: str) -> pytest.MarkDecorator:
    """The tests that share weight set `name`'s conversion run on one worker under `make test`
    (pytest-xdist, `--dist loadgroup`), which makes the conversion once."""
    return pytest.mark.xdist_group(f"weights: {name}")


@pytest.fixture(
    scope="module", params=[pytest.param(n, marks=by_conversion(n)) for n in WEIGHT_SETS]
)
def faithful(request, tmp_path_factory):
    return conversion(request.param, tmp_path_factory)


_CONVERSIONS: dict[str, Options] = {}


def conversion(name: str, tmp_path_factory) -> Options:
    """The conversion of weight set `name`, made once for every test that needs it."""
    if name not in _CONVERSIONS:
        root = tmp_path_factory.mktemp("weights")
        WEIGHT_SETS[name](root / "weights")
        _CONVERSIONS[name] = convert(root / "weights", root)
    return _CONVERSIONS[name]


def test_faithful_conversions_of_unseen_weights_are_published(faithful):
    import json

    document = json.loads((faithful.output / "metadata.json").read_text())
    checks = [Check(**{k: v for k, v in c.items() if k != "passed"}) for c in document["parity"]]
    judged = [c for c in checks if c.tolerance is not None]
    assert {c.stage.split("/")[0].split(".")[0] for c in judged} == {
        "onnxruntime", "tensorflow", "tf", "tfjs"
    }  # fmt: skip
    assert all(c.passed for c in judged)
    assert (faithful.output / "model.json").is_file()

    # The figures behind the rule's factor (docs/conversion.md; shown with `pytest -s`).
    def runtime(check: Check) -> str:
        return check.stage if check.stage.startswith("tfjs") else check.stage.split("/")[0]

    for name in sorted({runtime(c) for c in judged}):
        worst = max(c.max_abs / c.floor for c in judged if runtime(c) == name)
        print(f"\nfaithful: {name}: worst error / floor {worst:.2f}", end="")


# --- the defects, one per stage artifact ---------------------------------------------------


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    return conversion(WELL_CONDITIONED, tmp_path_factory)


def scale_onnx_conv(graphs, factor=1.01, index=4):
    """1% more on the weights of the encoder's fifth convolution."""
    path = dict(graphs.items())["encoder"]
    model = onnx.load(str(path))
    weight = [n for n in model.graph.node if n.op_type == "Conv"][index].input[1]
    [init] = [i for i in model.graph.initializer if i.name == weight]
    init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) * factor, weight))
    onnx.save(model, str(path))


def zero_pad_in_tf(graphs):
    """A reflection pad of the decoder turned into a zero pad."""
    import tensorflow as tf

    path = dict(graphs.items())["decoder"]
    graph = tf.compat.v1.GraphDef.FromString(path.read_bytes())
    node = next(n for n in graph.node if n.op == "MirrorPad")
    node.op = "Pad"
    del node.attr["mode"]
    path.write_bytes(graph.SerializeToString())


def scale_tfjs_kernel(directory, factor=1.01):
    """1% more on the first convolution kernel of the TF.js graph."""
    from convert.contract import is_small
    from convert.tfjs_graph import TfjsGraph

    graph = TfjsGraph.load(directory)
    kernel = next(
        w
        for w in graph.weights.values()
        if w.spec["dtype"] == "float32" and len(w.spec["shape"]) == 4 and not is_small(w.spec)
    )
    values = np.frombuffer(kernel.data, np.float32) * np.float32(factor)
    kernel.data = values.astype(np.float32).tobytes()
    graph.save(directory)


def after(module, name, change):
    """`module.name`, followed by `change` of what it returned."""
    original = getattr(module, name)

    def wrapped(*args, **kwargs):
        result = original(*args, **kwargs)
        change(result)
        return result

    return wrapped


def defect_onnx_conv(monkeypatch):
    import convert.onnx_export

    monkeypatch.setattr(convert.onnx_export, "export_onnx",
                        after(convert.onnx_export, "export_onnx", scale_onnx_conv))  # fmt: skip
    return "onnx", r"onnxruntime/encoder\.relu\d_1"


def defect_tf_zero_pad(monkeypatch):
    import convert.tf_graphs

    monkeypatch.setattr(convert.tf_graphs, "onnx_to_tf",
                        after(convert.tf_graphs, "onnx_to_tf", zero_pad_in_tf))  # fmt: skip
    return "tf", r"tensorflow/decoder\.image"


def defect_rgb_swapped(monkeypatch):
    import convert.tf_module as m

    original = m.SANetModule.encode
    monkeypatch.setattr(m.SANetModule, "encode", lambda self, image, size, tile: original(
        self, m.tf_tiles.hold(image.read(0)[..., ::-1]), size, tile))  # fmt: skip
    return "module", r"tf\.Module"


def defect_resize_half_pixel(monkeypatch):
    import tensorflow as tf

    import convert.tf_module as m

    def shifted(size_in, size_out):  # the output's pixel centres forgotten: a half-pixel shift
        size_in, size_out = tf.cast(size_in, tf.float32), tf.cast(size_out, tf.float32)
        scale = size_in / size_out
        centers = tf.range(size_out) * scale + 0.5
        taps = tf.range(size_in) + 0.5
        distance = tf.abs(taps[tf.newaxis] - centers[:, tf.newaxis]) / tf.maximum(scale, 1.0)
        weights = tf.nn.relu(1.0 - distance)
        return weights / tf.reduce_sum(weights, axis=1, keepdims=True)

    monkeypatch.setattr(m, "_resize_matrix", shifted)
    return "module", r"tf\.Module"


def defect_one_iteration_too_few(monkeypatch):
    import tensorflow as tf

    import convert.tf_module as m

    monkeypatch.setattr(m, "_passes", lambda iterations: tf.maximum(iterations - 1, 1))
    return "module", r"tf\.Module"


def defect_strength_ignored(monkeypatch):
    import convert.tf_module as m

    monkeypatch.setattr(m, "_blend", lambda identity, features, *rest: features)
    return "module", r"tf\.Module"


def defect_second_style_ignored(monkeypatch):
    import convert.tf_module as m

    monkeypatch.setattr(m, "_mix", lambda features, *rest: features)
    return "module", r"tf\.Module"


def defect_mask_ignored(monkeypatch):
    import tensorflow as tf

    import convert.tf_module as m

    original = m._blend

    def everywhere(identity, features, strength, mask):
        return original(identity, features, strength, tf.ones_like(mask))

    monkeypatch.setattr(m, "_blend", everywhere)
    return "module", r"tf\.Module"


def defect_colours_not_kept(monkeypatch):
    import convert.tf_module as m

    monkeypatch.setattr(m, "_keep_colors", lambda result, content, amount: result)
    return "module", r"tf\.Module"


def defect_encodings_ignored(monkeypatch):
    import tensorflow as tf

    import convert.tf_module as m

    for method in ("encoded", "encoded_whole"):  # the content's; the styles'
        original = getattr(m.SANetModule, method)

        def ignoring(self, image, tile, *given, original=original):
            nothing = tf.zeros([1, 1, 0, 0])
            return original(self, image, tile, nothing, nothing)

        monkeypatch.setattr(m.SANetModule, method, ignoring)
    return "module", r"tf\.Module"


def defect_margins_too_small(monkeypatch):
    import convert.pipeline as p

    monkeypatch.setattr(p, "encoder_margin", lambda encoder: 16)
    monkeypatch.setattr(p, "features_margin", lambda transform, decoder: 2)
    return "module", r"tf\.Module"


def defect_tile_statistics(monkeypatch):
    import tensorflow as tf

    import convert.tf_module as m

    original = m.SANetModule.stylize_features

    def own(self, content4_1, style4_1, content5_1, style5_1, statistics):
        mine = []
        for part in (content4_1, content5_1):
            mean, variance = tf.nn.moments(part, axes=[2, 3], keepdims=True)
            mine += [mean, tf.sqrt(variance + 1e-5)]
        return original(self, content4_1, style4_1, content5_1, style5_1, mine)

    monkeypatch.setattr(m.SANetModule, "stylize_features", own)
    return "module", r"tf\.Module"


def defect_streamed_statistics(monkeypatch):
    import tensorflow as tf

    import convert.tf_tiles as t

    def within_parts(parts):  # the spread between the tiles forgotten
        counts, means, squares = parts[:, 0], parts[:, 1], parts[:, 2]
        total = tf.reduce_sum(counts, axis=0)
        mean = tf.reduce_sum(counts * means, axis=0) / total
        return tf.stack([total, mean, tf.reduce_sum(squares, axis=0)])

    monkeypatch.setattr(t, "combined", within_parts)
    return "module", r"tf\.Module"


def defect_pieces_margins(monkeypatch):
    import convert.pieces

    # the stylizing calls' margin without the features' reach: the encoder's alone
    monkeypatch.setattr(convert.pieces, "margins", lambda tiling: (tiling["encoder_margin"],) * 2)
    return "module", r"tf\.Module"


def defect_pieces_moments(monkeypatch):
    import convert.tf_module as m

    # each piece normalised by the first piece's moments, not by all of them
    monkeypatch.setattr(m, "given_moments", lambda moments: moments[0])
    return "module", r"tf\.Module"


def defect_tfjs_kernel(monkeypatch):
    import convert.tfjs

    monkeypatch.setattr(convert.tfjs, "tf_to_tfjs",
                        after(convert.tfjs, "tf_to_tfjs", scale_tfjs_kernel))  # fmt: skip
    return "tfjs", r"tfjs/(wasm|cpu)"  # whichever TF.js backend it shows most on


DEFECTS = {
    "1% on one convolution's weights (ONNX)": defect_onnx_conv,
    "zero instead of reflection padding in one layer (TF)": defect_tf_zero_pad,
    "RGB order swapped (tf.Module)": defect_rgb_swapped,
    "half-pixel shift in the resize (tf.Module)": defect_resize_half_pixel,
    "one iteration too few (tf.Module)": defect_one_iteration_too_few,
    "strength ignored (tf.Module)": defect_strength_ignored,
    "second style ignored (tf.Module)": defect_second_style_ignored,
    "mask ignored (tf.Module)": defect_mask_ignored,
    "content's colours not kept (tf.Module)": defect_colours_not_kept,
    "given encodings ignored (tf.Module)": defect_encodings_ignored,
    "tile margins short of the receptive field (tf.Module)": defect_margins_too_small,
    "each tile normalised by its own statistics (tf.Module)": defect_tile_statistics,
    "streamed statistics without the spread between tiles (tf.Module)": (
        defect_streamed_statistics
    ),
    "pieces with the encoder's margin alone (tf.Module)": defect_pieces_margins,
    "pieces normalised by the first piece's moments (tf.Module)": defect_pieces_moments,
    "1% on one convolution's weights (TF.js)": defect_tfjs_kernel,
}
CASE = r"\d+x\d+ / \d+x\d+, it \d, str [\d.]+(, [\w .]+)*"


@by_conversion(WELL_CONDITIONED)
@pytest.mark.parametrize("defect", list(DEFECTS))
def test_each_injected_defect_is_refused_in_one_line(converted, defect, tmp_path, monkeypatch):
    build = tmp_path / "build"
    shutil.copytree(converted.build, build)
    stage, pattern = DEFECTS[defect](monkeypatch)
    with pytest.raises(SANetError) as refused:
        run(Options(weights=converted.weights, build=build, output=tmp_path / "model",
                    sizes=SIZES, only=stage))  # fmt: skip
    message = str(refused.value)
    print(f"\n{defect}: {message}", end="")  # shown with `pytest -s`
    assert "\n" not in message
    assert re.match(
        rf"parity failed at {pattern} \({CASE}\): max error \S+ over tolerance \S+", message
    ), message
    assert not (tmp_path / "model").exists()
