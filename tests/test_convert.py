"""The conversion pipeline, run once on small demo weights, and its failure paths."""

import collections
import hashlib
import json
import shutil

import numpy as np
import pytest
import tensorflow as tf
import torch

from convert import contract
from convert.__main__ import main
from convert.contract import ENCODINGS, SMALL_CONSTANT_ELEMENTS
from convert.onnx_export import STATISTICS
from convert.parity import Case
from convert.pipeline import CPU_BACKEND_CASE, Options, run
from convert.runtimes import TfjsJob, TfModule, module_inputs, run_tfjs, run_tfjs_jobs
from convert.tfjs_graph import TfjsGraph, is_small, node_name, quantize
from sanet import SANetError, Stylizer
from sanet.stylizer import working_size


@pytest.fixture(scope="module")
def converted(converted_demo):
    return converted_demo  # conftest.py: one conversion for the whole run


def test_every_stage_is_checked_and_within_tolerance(converted):
    options, report = converted
    stages = {check.stage.split("/")[0].split(".")[0] for check in report.checks}
    assert stages == {"onnxruntime", "tensorflow", "tf", "tfjs", "tfjs-float16", "tfjs-uint8"}
    judged = [c for c in report.checks if c.tolerance is not None]
    assert judged and all(c.max_abs <= c.tolerance for c in judged)
    # Each size at one iteration and full strength, at two iterations and strength 0.5, and
    # once through max_resolution (scaled down and back up), end to end in TF and TF.js; the
    # pure-JavaScript backend on one small case.
    for stage in ("tf.Module", "tfjs/wasm"):
        cases = [c.case for c in report.checks if c.stage == stage]
        assert len(cases) == len(options.sizes) * 3 + 10
        assert len([c for c in cases if "it 2, str 0.5" in c]) == len(options.sizes)
        assert len([c for c in cases if ", max " in c]) == len(options.sizes)
        # the controls: a second style, a mask and the content's colours; the style resolution
        assert len([c for c in cases if "mix 0.6" in c and "mask" in c and "keep" in c]) == 2
        mixed = [c for c in cases if "str 1, mix 0.6" in c and "tiles" not in c]
        assert len(mixed) == 1  # mixed, not blended
        assert len([c for c in cases if "style res" in c]) == 1
        # the encodings given instead of the images
        assert len([c for c in cases if "encodings given" in c]) == 1
        # and tiles: a larger content in 3 x 4 of them, and the controls' case; streamed, the
        # larger content, and two passes with a second style mixed in
        assert len([c for c in cases if ", tiles 64" in c]) == 2
        streamed = [c for c in cases if "streamed tiles 64" in c and "pieces" not in c]
        assert len(streamed) == 2 and any("it 2" in c and "mix 0.6" in c for c in streamed)
        # and the larger content in pieces (convert.pieces): one call each, and streamed tiles
        # with a second style and the content's colours
        pieces = [c for c in cases if "in pieces of 96" in c]
        assert len(pieces) == 2 and any("streamed tiles 64, " in c and "keep" in c for c in pieces)
    assert [c.case for c in report.checks if c.stage == "tfjs/cpu"] == [CPU_BACKEND_CASE.label]
    saved = json.loads((options.build / "parity.json").read_text())
    assert len(saved["checks"]) == len(report.checks)


def test_onnx_graphs_have_symbolic_height_and_width(converted):
    import onnx

    options, _ = converted
    for name in ("encoder", "transform", "decoder"):
        model = onnx.load(str(options.build / "onnx" / f"{name}.onnx"))
        onnx.checker.check_model(model)
        assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) <= 15
        for value in [*model.graph.input, *model.graph.output]:
            dims = value.type.tensor_type.shape.dim
            if value.name in STATISTICS:  # per channel: [1, C, 1, 1]
                assert [d.dim_value for d in dims[2:]] == [1, 1]
                continue
            assert dims[2].dim_param and dims[3].dim_param, (name, value.name)


@pytest.fixture(scope="module")
def module(converted):
    options, _ = converted
    return TfModule(options.build / "tf" / "sanet_module")


def test_serving_signature(module):
    inputs = module.signature.structured_input_signature[1]
    assert {k: (v.dtype.name, v.shape.as_list()) for k, v in inputs.items()} == {
        "content": ("float32", [None, None, 3]),
        "style": ("float32", [None, None, 3]),
        "iterations": ("int32", []),
        "max_resolution": ("int32", []),
        "strength": ("float32", []),
        "style_resolution": ("int32", []),
        "style2": ("float32", [None, None, 3]),
        "mix": ("float32", []),
        "mask": ("float32", [None, None]),
        "keep_colors": ("float32", []),
        "tile": ("int32", []),
        "stream": ("int32", []),
        "measure": ("int32", [4]),
        "content_moments": ("float32", [None, 2, 3, None]),
        **{name: ("float32", [None] * 4) for name in ENCODINGS},
    }
    outputs = module.signature.structured_outputs
    assert set(outputs) == {"result", "content_moments", *ENCODINGS}
    assert outputs["result"].shape.as_list() == [None, None, 3]
    assert all(outputs[name].shape.rank == 4 for name in ENCODINGS)  # [1, C, h, w]


def call(module: TfModule, case: Case, **inputs: np.ndarray) -> dict[str, np.ndarray]:
    """Every output of the serving signature for `case`, with some inputs replaced."""
    feed = module_inputs(case) | inputs
    outputs = module.signature(**{k: tf.constant(v) for k, v in feed.items()})
    return {k: v.numpy() for k, v in outputs.items()}


def test_tfjs_signature_keys_every_output_as_the_saved_model(converted):
    """The TF.js converter keys outputs by shape; the encodings share one (`_key_outputs`)."""
    options, _ = converted
    for variant in contract.VARIANTS:
        model = json.loads((options.output / contract.variant_path(variant)).read_text())
        assert set(model["signature"]["outputs"]) == set(contract.OUTPUTS), variant
    case = Case((40, 56), (48, 32), style2=(24, 40), mix=0.5)
    saved = call(TfModule(options.build / "tf" / "sanet_module"), case)
    for name in contract.ENCODINGS:
        job = TfjsJob(options.output, "wasm", (module_inputs(case),), name)
        [([tfjs], _)] = run_tfjs_jobs([job])
        assert np.abs(tfjs - saved[name].ravel()).max() < 1e-4, name


def test_signature_returns_the_encoders_features(converted, module):
    options, _ = converted
    model = Stylizer.from_checkpoints(options.build / "demo-weights-small").model
    case = Case((40, 56), (48, 32), style2=(24, 40), mix=0.5)
    outputs = call(module, case)
    images = {"content": case.images()[0], "style": case.images()[1], "style2": case.extras()[0]}
    for name, image in images.items():
        with torch.no_grad():
            relu4_1, relu5_1 = model.encoder(torch.from_numpy(image).permute(2, 0, 1)[None])
        assert np.abs(outputs[f"{name}_relu4_1"] - relu4_1.numpy()).max() < 1e-4
        assert np.abs(outputs[f"{name}_relu5_1"] - relu5_1.numpy()).max() < 1e-4


@pytest.mark.parametrize("iterations", [1, 2])
def test_given_encodings_replace_the_images(module, iterations):
    """A call given another call's encodings computes what that call did: the style's stand
    for the style image, the content's for the content's first pass."""
    case = Case((40, 56), (48, 32), iterations=iterations, strength=0.7)
    source = Case((40, 56), (36, 60))  # another content image (same size) and style
    given = {k: v for k, v in call(module, source).items() if k != "result"}
    content = source.images()[0]
    expected = call(module, case, content=content, style=source.images()[1])["result"]
    style_only = {k: v for k, v in given.items() if k.startswith("style_")}
    with_style = call(module, case, content=content, **style_only)["result"]
    assert np.abs(with_style - expected).max() < 1e-5
    # The content's drive the first pass (later passes encode its output): with the style's,
    # the content image then only gives the size to scale back to (and keep_colors's chroma).
    with_both = call(module, case, **given)["result"]
    assert np.abs(with_both - expected).max() < 1e-5
    plain = call(module, case)["result"]
    assert np.abs(plain - expected).max() > 1e-2  # the inputs above did make a difference


@pytest.mark.parametrize(
    ("content", "max_resolution"),
    [((10, 10), 0), ((33, 19), 0), ((90, 60), 48), ((20, 300), 64), ((300, 41), 0)],
)
def test_result_has_the_content_shape(module, content, max_resolution):
    result = module(Case(content, (30, 40), max_resolution=max_resolution))
    assert result.shape == (*content, 3)
    assert result.min() >= 0.0 and result.max() <= 1.0


@pytest.mark.parametrize(("iterations", "strength"), [(1, 1.0), (2, 0.5)])
def test_module_resizes_like_the_python_stylizer(converted, module, iterations, strength):
    """With max_resolution below the image size, both scale down, stylize, scale back."""
    options, _ = converted
    stylizer = Stylizer.from_checkpoints(options.build / "demo-weights-small")
    case = Case((90, 60), (64, 80), iterations, strength, max_resolution=48)
    content, style = case.images()
    expected = stylizer.stylize(content, style, iterations, strength, max_resolution=48)
    error = np.abs(module(case) - expected).max()
    assert error < (2e-4 if iterations == 1 else 1e-2)


def test_module_controls_mean_what_the_python_stylizer_does(converted, module):
    """A second style, a mask and the content's colours through the signature and the API."""
    options, _ = converted
    stylizer = Stylizer.from_checkpoints(options.build / "demo-weights-small")
    case = Case((56, 72), (64, 48), strength=0.8, style_resolution=40, style2=(50, 30),
                mix=0.6, mask=(21, 33), keep_colors=0.7)  # fmt: skip
    (content, style), (style2, mask) = case.images(), case.extras()
    expected = stylizer.stylize(
        content, style, strength=0.8, max_resolution=0, style_resolution=40, style2=style2,
        mix=0.6, mask=np.repeat(mask[..., None], 3, axis=-1), keep_colors=0.7,
    )  # fmt: skip
    assert np.abs(module(case) - expected).max() < 2e-4


def test_out_of_range_controls_are_clamped(module):
    base = module(Case((40, 40), (40, 40), iterations=1, strength=1.0))
    assert np.array_equal(module(Case((40, 40), (40, 40), iterations=0, strength=1.0)), base)
    assert np.array_equal(module(Case((40, 40), (40, 40), iterations=1, strength=1.7)), base)


def test_tfjs_graph_is_optimised(converted):
    options, report = converted
    ops = report.ops["tfjs"]
    assert ops["optimized"]["Transpose"] < ops["converted"]["Transpose"]
    assert ops["transpose_pairs_removed"] > 0 and ops["duplicate_bytes_removed"] > 0
    # No matrix product keeps a transpose flag (they send TF.js wasm down a slow path).
    # 2 attention blocks x 2 products x 11 transforms: one branch per set of transforms a pass
    # runs (convert/tf_module.py): the style's; with the second style's; with the content's
    # own for strength and mask; with both; and streamed, the style's, with the second's.
    assert ops["matmul_transpose_flags_unfolded"] == 2 * 2 * (1 + 2 + 2 + 3 + 1 + 2)
    flags = ("adj_x", "adj_y", "transpose_a", "transpose_b")
    nodes = TfjsGraph.load(options.output).nodes
    flagged = [n for n in nodes if any(n.get("attr", {}).get(f, {}).get("b") for f in flags)]
    assert flagged == []
    # No ReLU is left as an op of its own after a convolution that only it reads.
    assert ops["relus_fused"] > 0
    producers, readers = {n["name"]: n for n in nodes}, collections.Counter()
    for node in nodes:
        readers.update(node_name(reference) for reference in node.get("input", []))
    lone = [
        n for n in nodes if n["op"] == "Relu"
        and producers[node_name(n["input"][0])]["op"] == "_FusedConv2D"
        and readers[node_name(n["input"][0])] == 1
    ]  # fmt: skip
    assert lone == []
    graph = TfjsGraph.load(options.output)
    digests = [
        hashlib.sha256(w.data).hexdigest() for w in graph.weights.values() if not is_small(w.spec)
    ]
    assert len(digests) == len(set(digests))  # no kernel stored twice
    # Every kernel of the model is there once: the PyTorch parameters of that size, exactly.
    # (Small constants, the biases among them, are stored once per call site of a graph: the
    # streamed branches added three: 6 % of the small model's bytes, 0.4 % of the full one's.)
    from sanet.weights import load_model

    model, _ = load_model(options.build / "demo-weights-small")
    kernels = sum(p.numel() for p in model.parameters() if p.numel() >= SMALL_CONSTANT_ELEMENTS)
    stored = sum(
        len(w.data)
        for w in graph.weights.values()
        if w.spec["dtype"] == "float32" and not is_small(w.spec)
    )
    assert stored == 4 * kernels


def test_quantized_variants_run_in_node_within_their_recorded_error(converted):
    options, _report = converted
    metadata = json.loads((options.output / "metadata.json").read_text())
    cases = [Case(content, style) for content, style in options.sizes]
    fp32, _ = run_tfjs(options.output, cases, "wasm")
    for variant in metadata["variants"]:
        directory = options.output / variant["path"].replace("model.json", "")
        files = [directory / "model.json", *directory.glob("group1-shard*.bin")]
        assert variant["bytes"] == sum(f.stat().st_size for f in files)
        if variant["name"] == "fp32":
            continue
        results, _ = run_tfjs(directory, cases, "wasm")
        errors = np.concatenate([np.abs(r - f).ravel() for r, f in zip(results, fp32, strict=True)])
        assert errors.max() <= variant["max_abs_error"] + 1e-6
        assert abs(errors.mean() - variant["mean_abs_error"]) < 1e-6
    sizes = {v["name"]: v["bytes"] for v in metadata["variants"]}
    assert sizes["uint8"] < sizes["float16"] < sizes["fp32"]


def test_small_constants_come_first_in_every_variant(converted):
    """The page compiles GPU shaders from the first shard while the rest downloads."""
    options, _ = converted
    for model_json in sorted(options.output.rglob("model.json")):
        specs = json.loads(model_json.read_text())["weightsManifest"][0]["weights"]
        small = [is_small(spec) for spec in specs]
        assert any(small) and not all(small)
        assert small == sorted(small, reverse=True), model_json


def test_uint8_kernels_are_stored_per_output_channel(converted):
    options, _ = converted
    original = TfjsGraph.load(options.output)
    graph = TfjsGraph.load(options.output)
    assert quantize(graph, "uint8") > 0
    per_channel = [
        w for w in graph.weights.values() if w.spec.get("quantization", {}).get("min") == -127.0
    ]
    assert per_channel
    for weight in per_channel:
        name = weight.spec["name"]
        exact = original.float_values(name)
        scale = graph.float_values(f"{name}/channel_scale")
        codes = np.frombuffer(weight.data, np.uint8).reshape(exact.shape).astype(np.float32)
        # Every channel's rounding is at most half a step of that channel's own scale, and its
        # largest magnitude is a code (the scale is not wasted on a range it never uses).
        assert np.all(np.abs((codes - 127) * scale - exact) <= scale / 2 + 1e-7)
        assert np.allclose(np.abs(codes - 127).max(axis=(0, 1, 2)), 127)
    # Whatever read a convolution reads its rescaled output under the same name.
    names = {n["name"] for n in graph.nodes}
    for node in original.nodes:
        if node["op"] == "_FusedConv2D":
            assert node["name"] in names


def test_per_channel_rewrite_keeps_the_function(converted, tmp_path):
    """With each kernel stored exactly as W / s (no rounding), the rewritten graph (bias / s,
    then a Mul by s) computes what the float32 graph computes."""
    options, _ = converted
    original = TfjsGraph.load(options.output)
    graph = TfjsGraph.load(options.output)
    quantize(graph, "uint8")
    for weight in graph.weights.values():
        if weight.spec.get("quantization", {}).get("min") == -127.0:
            name = weight.spec["name"]
            exact = original.float_values(name) / graph.float_values(f"{name}/channel_scale")
            weight.spec = {"name": name, "shape": weight.spec["shape"], "dtype": "float32"}
            weight.data = exact.astype(np.float32).tobytes()
        elif "quantization" in weight.spec:
            weight.spec = original.weights[weight.spec["name"]].spec
            weight.data = original.weights[weight.spec["name"]].data
    graph.save(tmp_path / "rescaled")
    cases = [Case(content, style) for content, style in options.sizes[:2]]
    fp32, _ = run_tfjs(options.output, cases, "wasm")
    rescaled, _ = run_tfjs(tmp_path / "rescaled", cases, "wasm")
    for a, b in zip(rescaled, fp32, strict=True):
        assert np.abs(a - b).max() < 1e-4


def test_metadata_labels_demo_weights(converted):
    options, _ = converted
    metadata = json.loads((options.output / "metadata.json").read_text())
    assert metadata["weights"]["untrained"] is True and metadata["weights"]["source"] == "demo"
    assert metadata["signature"]["execute"] == "executeAsync"
    assert metadata["versions"]["tensorflowjs"] == "4.22.0"


def one_line_failure(capsys, *args) -> str:
    code = main([str(a) for a in args])
    err = capsys.readouterr().err
    assert code == 1
    lines = [line for line in err.strip().splitlines() if line.startswith("convert: error:")]
    assert len(lines) == 1 and "Traceback" not in err
    return lines[0]


def test_missing_weights(tmp_path, capsys):
    message = one_line_failure(capsys, "--weights", tmp_path / "none", "--build", tmp_path / "b",
                               "--output", tmp_path / "m")  # fmt: skip
    assert "does not exist" in message


def test_corrupt_weights(tmp_path, capsys, demo_weights):
    weights = tmp_path / "w"
    shutil.copytree(demo_weights, weights)
    (weights / "decoder_iter_0.pth").write_bytes(b"\0" * 100)
    message = one_line_failure(capsys, "--weights", weights, "--build", tmp_path / "b",
                               "--output", tmp_path / "m")  # fmt: skip
    assert "decoder_iter_0.pth" in message


def test_unwritable_output(tmp_path, capsys, demo_weights):
    message = one_line_failure(capsys, "--weights", demo_weights, "--build", tmp_path / "b",
                               "--output", "/proc/sanet/model")  # fmt: skip
    assert "not writable" in message


def test_stage_needs_the_earlier_ones(tmp_path, capsys, demo_weights):
    message = one_line_failure(capsys, "--weights", demo_weights, "--build", tmp_path / "b",
                               "--output", tmp_path / "m", "--only", "tf")  # fmt: skip
    assert "run the earlier stages first" in message


def test_missing_node_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no node here
    with pytest.raises(SANetError, match="Node"):
        run_tfjs(tmp_path, [Case((32, 32), (32, 32))], "wasm")


def test_failed_run_keeps_the_published_model(converted, tmp_path, monkeypatch):
    options, _ = converted
    build, output = tmp_path / "build", tmp_path / "model"
    shutil.copytree(options.build, build)  # the shared build stays as converted
    shutil.copytree(options.output, output)
    before = sorted((p.name, p.stat().st_size) for p in output.rglob("*"))

    def broken(*args, **kwargs):
        raise SANetError("TF.js (wasm) failed: simulated")

    monkeypatch.setattr("convert.runtimes.run_tfjs_jobs", broken)
    failed = Options(demo="small", build=build, output=output, only="tfjs", sizes=options.sizes[:1])
    with pytest.raises(SANetError, match="simulated"):
        run(failed)
    assert sorted((p.name, p.stat().st_size) for p in output.rglob("*")) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["build", "model"]


def test_falls_back_to_demo_weights_when_nothing_can_be_fetched(tmp_path, monkeypatch, capsys):
    from convert.pipeline import load_weights

    def offline(directory, api=None):
        raise SANetError("cannot reach cloud-api.yandex.net (no network)")

    monkeypatch.setenv("SANET_WEIGHTS", str(tmp_path / "absent"))
    monkeypatch.setattr("sanet.fetch.fetch_release", offline)
    _model, info = load_weights(Options(build=tmp_path / "build"))
    assert info["untrained"] and info["source"] == "demo"
    assert "UNTRAINED" in capsys.readouterr().err


def test_missing_python_package_is_one_line(monkeypatch, capsys, tmp_path):
    import builtins

    real_import = builtins.__import__

    def without_onnx(name, *args, **kwargs):
        if name == "onnx":
            raise ImportError("No module named 'onnx'", name="onnx")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_onnx)
    message = one_line_failure(capsys, "--demo", "small", "--build", tmp_path / "b",
                               "--output", tmp_path / "m", "--only", "onnx")  # fmt: skip
    assert "onnx is not installed" in message


@pytest.mark.parametrize(
    ("size", "limit"),
    [((10, 512), 512), ((512, 3), 512), ((1000, 500), 512), ((300, 400), 0), ((1, 1), 0),
     ((45, 100), 50), ((2000, 20), 512), ((131, 173), 128)],
)  # fmt: skip
def test_signature_computes_at_the_model_packages_working_size(size, limit):
    import tensorflow as tf

    from convert.tf_module import working_size as in_graph

    computed = in_graph(tf.constant(size, tf.int32), tf.constant(limit, tf.int32))
    assert tuple(int(v) for v in computed.numpy()) == working_size(*size, limit)
