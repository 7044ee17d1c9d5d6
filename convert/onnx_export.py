"""Stage 1: the three SANet graphs as ONNX, with symbolic height and width everywhere."""

import warnings
from dataclasses import dataclass
from pathlib import Path

import onnx
import torch
from torch import nn

from sanet.model import SANet

# onnx-tf 1.10 handles opsets up to 15, but from opset 11 on a reflection pad's widths become a
# run-time tensor computed by a small shape subgraph, which TF.js then fails on. At opset 10
# they are attributes.
OPSET = 10


@dataclass(frozen=True)
class OnnxGraphs:
    encoder: Path  # image [1, 3, H, W] -> relu4_1 [1, C, H/8, W/8], relu5_1 [1, C, H/16, W/16]
    transform: Path  # content4_1, style4_1, content5_1, style5_1 -> features [1, C, H/8, W/8]
    decoder: Path  # features [1, C, h, w] -> image [1, 3, 8h, 8w] (not cropped, not clamped)

    def items(self) -> list[tuple[str, Path]]:
        return [("encoder", self.encoder), ("transform", self.transform), ("decoder", self.decoder)]


def _export(
    module: nn.Module,
    args: tuple[torch.Tensor, ...],
    path: Path,
    inputs: dict[str, str],
    outputs: dict[str, str],
) -> Path:
    """Export with every image-like tensor's dims 2 and 3 symbolic; `inputs`/`outputs` map a
    tensor name to the prefix of its dimension names."""
    axes = {name: {2: f"{prefix}_height", 3: f"{prefix}_width"} for name, prefix in inputs.items()}
    axes |= {
        name: {2: f"{prefix}_height", 3: f"{prefix}_width"} for name, prefix in outputs.items()
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter announces its deprecation
        torch.onnx.export(
            module,
            args,
            str(path),
            dynamo=False,
            opset_version=OPSET,
            input_names=list(inputs),
            output_names=list(outputs),
            dynamic_axes=axes,
            do_constant_folding=True,
        )
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    return path


@torch.no_grad()
def export_onnx(model: SANet, directory: Path) -> OnnxGraphs:
    """Write encoder.onnx, transform.onnx and decoder.onnx into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    # Odd relu4_1 sides (13x9) so that the transform's crop after upsampling is traced.
    image = torch.rand(1, 3, 104, 72)
    content4_1, content5_1 = model.encoder(image)
    style4_1, style5_1 = model.encoder(torch.rand(1, 3, 64, 80))
    features = model.transform(content4_1, style4_1, content5_1, style5_1)
    return OnnxGraphs(
        encoder=_export(
            model.encoder, (image,), directory / "encoder.onnx",
            {"image": "image"}, {"relu4_1": "relu4_1", "relu5_1": "relu5_1"},
        ),
        transform=_export(
            model.transform, (content4_1, style4_1, content5_1, style5_1),
            directory / "transform.onnx",
            {"content4_1": "content4_1", "style4_1": "style4_1",
             "content5_1": "content5_1", "style5_1": "style5_1"},
            {"features": "content4_1"},
        ),
        decoder=_export(
            model.decoder, (features,), directory / "decoder.onnx",
            {"features": "features"}, {"image": "decoded"},
        ),
    )  # fmt: skip
