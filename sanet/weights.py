"""Reading, checking and making checkpoints in the layout of the original SANet release.

A weights directory holds three plain state dicts under their release names:
`vgg_normalised.pth`, `decoder_iter_<N>.pth` and `transformer_iter_<N>.pth`. Iteration 0 marks
untrained weights (see `write_demo_weights`); everything built from them says so.
"""

import math
import os
import pickle
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from sanet.encoder import FULL_WIDTHS, RELU5_1, Encoder, conv3x3
from sanet.errors import SANetError
from sanet.model import SANet

VGG_FILE = "vgg_normalised.pth"
DECODER_PATTERN = re.compile(r"decoder_iter_(\d+)\.pth")
TRANSFORMER_PATTERN = re.compile(r"transformer_iter_(\d+)\.pth")
ENV_WEIGHTS = "SANET_WEIGHTS"

StateDict = dict[str, Tensor]


def default_weights_dir() -> Path:
    """`$SANET_WEIGHTS`, else `$XDG_DATA_HOME/sanet/weights` (~/.local/share/sanet/weights)."""
    if os.environ.get(ENV_WEIGHTS):
        return Path(os.environ[ENV_WEIGHTS])
    data_home = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(data_home) / "sanet" / "weights"


@dataclass(frozen=True)
class CheckpointFiles:
    """The three files of one release, found in a weights directory."""

    vgg: Path
    decoder: Path
    transformer: Path
    iteration: int

    @property
    def untrained(self) -> bool:
        return self.iteration == 0


def find_checkpoints(directory: Path) -> CheckpointFiles:
    """Locate the release files in `directory`; the newest iteration present for both wins."""
    if not directory.is_dir():
        raise SANetError(
            f"weights directory {directory} does not exist: run `sanet weights fetch` "
            "(or `sanet weights demo DIR` for untrained test weights)"
        )
    names = [p.name for p in directory.iterdir()]

    def iterations(pattern: re.Pattern[str]) -> set[int]:
        return {int(m.group(1)) for name in names if (m := pattern.fullmatch(name))}

    if VGG_FILE not in names:
        raise SANetError(f"{directory}: {VGG_FILE} is missing")
    decoders, transformers = iterations(DECODER_PATTERN), iterations(TRANSFORMER_PATTERN)
    if not decoders:
        raise SANetError(f"{directory}: no decoder_iter_<N>.pth")
    if not transformers:
        raise SANetError(f"{directory}: no transformer_iter_<N>.pth")
    common = decoders & transformers
    if not common:
        raise SANetError(
            f"{directory}: decoder and transformer iterations do not match "
            f"({sorted(decoders)} vs {sorted(transformers)})"
        )
    n = max(common)
    return CheckpointFiles(
        directory / VGG_FILE,
        directory / f"decoder_iter_{n}.pth",
        directory / f"transformer_iter_{n}.pth",
        n,
    )


def read_state_dict(path: Path) -> StateDict:
    """Load a plain state dict safely (`weights_only=True`: no code in the pickle runs)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns about unusual pickles before refusing
            state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise SANetError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise SANetError(f"{path}: is a directory, not a checkpoint") from None
    except pickle.UnpicklingError as error:
        if "GLOBAL" in str(error):
            raise SANetError(
                f"{path}: refused, the file asks to run code or build objects (plain tensors only)"
            ) from None
        raise SANetError(
            f"{path}: not a readable PyTorch checkpoint (not a pickle of tensors)"
        ) from None
    except Exception as error:  # torch raises many types for damaged files
        detail = str(error).split(".")[0].strip() or type(error).__name__
        raise SANetError(f"{path}: not a readable PyTorch checkpoint ({detail})") from None
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, Tensor) for k, v in state.items()
    ):
        raise SANetError(f"{path}: not a state dict of named tensors")
    return state


def _vgg_widths(path: Path, state: StateDict) -> tuple[int, int, int, int]:
    """Channel widths of the four VGG stages, read from the first conv of each stage."""
    widths = []
    for key in ("2.weight", "9.weight", "16.weight", "29.weight"):
        if key not in state or state[key].dim() != 4:
            raise SANetError(f"{path}: missing or malformed {key}: not a VGG-19 state dict")
        widths.append(int(state[key].shape[0]))
    return widths[0], widths[1], widths[2], widths[3]


def _load_into(module: nn.Module, state: StateDict, path: Path) -> None:
    """Copy `state` into `module` after checking keys and shapes, with one-line errors."""
    expected = module.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing[:4])}" + (" ..." if len(missing) > 4 else ""))
        if unexpected:
            parts.append(
                f"unexpected {', '.join(unexpected[:4])}" + (" ..." if len(unexpected) > 4 else "")
            )
        raise SANetError(f"{path}: keys do not match the SANet layout ({'; '.join(parts)})")
    for key, tensor in expected.items():
        if state[key].shape != tensor.shape:
            raise SANetError(
                f"{path}: {key} has shape {tuple(state[key].shape)}, expected {tuple(tensor.shape)}"
            )
    module.load_state_dict(state)


def load_model(directory: Path) -> tuple[SANet, CheckpointFiles]:
    """Build a SANet from a weights directory; its widths follow the checkpoint."""
    files = find_checkpoints(directory)
    vgg = read_state_dict(files.vgg)
    widths = _vgg_widths(files.vgg, vgg)
    model = SANet(widths)
    # The release keeps all of VGG-19; children past relu5_1 are not used.
    used = {k: v for k, v in vgg.items() if not _past_relu5_1(k)}
    _load_into(model.encoder, used, files.vgg)
    _load_into(model.decoder, read_state_dict(files.decoder), files.decoder)
    _load_into(model.transform, read_state_dict(files.transformer), files.transformer)
    return model.eval(), files


def _past_relu5_1(key: str) -> bool:
    child = key.split(".")[0]
    return child.isdigit() and int(child) >= RELU5_1


def _full_vgg(widths: tuple[int, int, int, int]) -> nn.Sequential:
    """All 53 children of the release's VGG-19: the encoder plus relu5_2 .. relu5_4."""
    w4 = widths[3]
    tail = conv3x3(w4, w4) + conv3x3(w4, w4) + conv3x3(w4, w4)
    return nn.Sequential(*Encoder(widths), *tail)


def _demo_init(module: nn.Module, generator: torch.Generator) -> None:
    """Zero-sum He-normal filters and small biases; f and g scaled so attention logits are O(1)."""
    for name, param in sorted(module.named_parameters()):
        if name.endswith("bias"):
            param.data = torch.randn(param.shape, generator=generator) * 0.01
            continue
        fan_in = math.prod(param.shape[1:])
        if name.endswith((".f.weight", ".g.weight")):
            std = fan_in**-0.75  # the query . key product over channels then has unit variance
        else:
            std = (2.0 / fan_in) ** 0.5  # He init: activations keep their scale through ReLUs
        weight = torch.randn(param.shape, generator=generator)
        # Zero-sum filters respond to structure, not to the (positive) mean after a ReLU.
        weight -= weight.mean(dim=tuple(range(1, weight.dim())), keepdim=True)
        param.data = weight * std


@torch.no_grad()
def _calibrate(layers: nn.Sequential, features: Tensor) -> Tensor:
    """Rescale each convolution so that its output has unit standard deviation on `features`."""
    for layer in layers:
        features = layer(features)
        if isinstance(layer, nn.Conv2d):
            scale = 1.0 / features.std()
            layer.weight.data *= scale
            layer.bias.data *= scale
            features = features * scale
    return features


@torch.no_grad()
def write_demo_weights(
    directory: Path, widths: tuple[int, int, int, int] = FULL_WIDTHS, seed: int = 0
) -> CheckpointFiles:
    """Write deterministic, untrained weights in the release layout (iteration 0 marks them).

    Random filters are calibrated on a smooth random image so that features keep their scale
    and decoded images vary around mid-grey instead of clipping: abstract, but not flat.
    """
    directory.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(seed)
    vgg, model = _full_vgg(widths), SANet(widths)
    for module in (vgg, model.transform, model.decoder):
        _demo_init(module, generator)
    coarse = torch.rand(1, 3, 8, 8, generator=generator)
    image = nn.functional.interpolate(coarse, size=(128, 128), mode="bilinear")
    _calibrate(vgg, image)
    model.encoder.load_state_dict(
        {k: v for k, v in vgg.state_dict().items() if not _past_relu5_1(k)}
    )
    relu4_1, relu5_1 = model.encoder(image)
    decoded = _calibrate(model.decoder, model.transform(relu4_1, relu4_1, relu5_1, relu5_1))
    output_conv = model.decoder[-1]
    output_conv.weight.data *= 0.2
    output_conv.bias.data += 0.5 - (decoded * 0.2).mean()
    files = CheckpointFiles(
        directory / VGG_FILE,
        directory / "decoder_iter_0.pth",
        directory / "transformer_iter_0.pth",
        0,
    )
    save_atomically(vgg.state_dict(), files.vgg)
    save_atomically(model.decoder.state_dict(), files.decoder)
    save_atomically(model.transform.state_dict(), files.transformer)
    return files


def save_atomically(state: StateDict, path: Path) -> None:
    """Write a state dict so that `path` is either absent, the old file, or complete."""
    partial = path.with_name(f".{path.name}.partial")
    try:
        torch.save(state, partial)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def describe(directory: Path) -> list[str]:
    """Validate a weights directory by loading it; one summary line per file and one overall."""
    model, files = load_model(directory)
    parts = (
        ("encoder", files.vgg, model.encoder),
        ("decoder", files.decoder, model.decoder),
        ("transform", files.transformer, model.transform),
    )
    lines = []
    for role, path, module in parts:
        count = sum(p.numel() for p in module.parameters())
        lines.append(
            f"{path.name}: {role}, {count:,} parameters, {path.stat().st_size / 2**20:.1f} MB"
        )
    label = "UNTRAINED demo weights" if files.untrained else "trained"
    lines.append(f"ok: iteration {files.iteration} ({label}), VGG widths {model.widths}")
    return lines
