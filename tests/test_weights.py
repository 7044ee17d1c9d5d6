"""Loading release checkpoints: every damaged or hostile file gets one clear line."""

import os
import pickle
import shutil

import pytest
import torch

from sanet import SANetError
from sanet.weights import describe, find_checkpoints, load_model, read_state_dict


@pytest.fixture
def weights(release, tmp_path):
    directory = tmp_path / "weights"
    shutil.copytree(release[0], directory)
    return directory


def one_line_error(directory) -> str:
    with pytest.raises(SANetError) as caught:
        load_model(directory)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_release_layout_loads_by_key(weights, release):
    model, files = load_model(weights)
    assert files.iteration == 500000 and model.widths == (8, 16, 32, 64)
    loaded = model.decoder.state_dict()["28.weight"]
    assert torch.equal(loaded, release[1]["decoder_iter_500000.pth"]["28.weight"])


def test_vgg_children_past_relu5_1_are_ignored(weights):
    vgg = torch.load(weights / "vgg_normalised.pth", weights_only=True)
    assert "51.weight" in vgg  # the release keeps the whole VGG-19
    model, _ = load_model(weights)
    assert "45.weight" not in model.encoder.state_dict()


def test_missing_directory(tmp_path):
    assert "does not exist" in one_line_error(tmp_path / "nowhere")


@pytest.mark.parametrize(
    "name", ["vgg_normalised.pth", "decoder_iter_500000.pth", "transformer_iter_500000.pth"]
)
def test_missing_file(weights, name):
    (weights / name).unlink()
    assert name.split("_")[0] in one_line_error(weights)


def test_mismatched_iterations(weights):
    (weights / "decoder_iter_500000.pth").rename(weights / "decoder_iter_1000.pth")
    assert "do not match" in one_line_error(weights)


def test_newest_complete_iteration_wins(weights):
    shutil.copy(weights / "decoder_iter_500000.pth", weights / "decoder_iter_600000.pth")
    assert find_checkpoints(weights).iteration == 500000


def test_truncated_file(weights):
    path = weights / "decoder_iter_500000.pth"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert "not a readable PyTorch checkpoint" in one_line_error(weights)


def test_not_a_pickle(weights):
    (weights / "transformer_iter_500000.pth").write_text("<html>404 Not Found</html>")
    assert "not a readable PyTorch checkpoint" in one_line_error(weights)


class Exploit:
    """Unpickling this would create a marker file: proof that code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("container", ["torch.save", "pickle"])
def test_malicious_pickle_does_not_run(weights, tmp_path, container):
    marker = tmp_path / "pwned"
    path = weights / "decoder_iter_500000.pth"
    payload = {"1.weight": Exploit(marker)}
    if container == "torch.save":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload))
    message = one_line_error(weights)
    assert not marker.exists()
    assert "refused" in message or "not a readable" in message
    # The same pickle, loaded unsafely, does run: the test's payload is real.
    if container == "pickle":
        pickle.loads(path.read_bytes())
        assert marker.exists()


def test_not_a_state_dict(weights):
    torch.save([torch.zeros(3)], weights / "decoder_iter_500000.pth")
    assert "not a state dict" in one_line_error(weights)


def test_wrong_keys(weights):
    path = weights / "transformer_iter_500000.pth"
    state = torch.load(path, weights_only=True)
    state["merge.weight"] = state.pop("merge_conv.weight")
    torch.save(state, path)
    message = one_line_error(weights)
    assert "missing merge_conv.weight" in message and "unexpected merge.weight" in message


def test_wrong_shape(weights):
    path = weights / "decoder_iter_500000.pth"
    state = torch.load(path, weights_only=True)
    state["5.weight"] = torch.zeros(3, 3, 3, 3)
    torch.save(state, path)
    assert "5.weight has shape (3, 3, 3, 3)" in one_line_error(weights)


def test_widths_must_agree_across_files(weights, tmp_path):
    from release_layout import make_release

    other = make_release(tmp_path / "wide", widths=(16, 32, 64, 128))
    torch.save(other["decoder_iter_500000.pth"], weights / "decoder_iter_500000.pth")
    assert "has shape" in one_line_error(weights)


def test_read_state_dict_on_a_directory(tmp_path):
    with pytest.raises(SANetError, match="directory"):
        read_state_dict(tmp_path)


def test_describe_summarises(weights):
    lines = describe(weights)
    assert lines[-1].startswith("ok: iteration 500000 (trained)")
    assert any(line.startswith("decoder_iter_500000.pth: decoder") for line in lines)


def test_demo_weights_are_deterministic(tmp_path):
    from sanet.weights import write_demo_weights

    a = write_demo_weights(tmp_path / "a", (8, 16, 32, 64), seed=3)
    b = write_demo_weights(tmp_path / "b", (8, 16, 32, 64), seed=3)
    for name in ("vgg", "decoder", "transformer"):
        left = read_state_dict(getattr(a, name))
        right = read_state_dict(getattr(b, name))
        assert left.keys() == right.keys()
        assert all(torch.equal(left[k], right[k]) for k in left)
    assert a.untrained and a.decoder.name == "decoder_iter_0.pth"
