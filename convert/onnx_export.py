"""Stage 1: the three SANet graphs as ONNX, with symbolic height and width everywhere."""

import warnings
from dataclasses import dataclass
from pathlib import Path

import onnx
import torch
from torch import nn

from sanet.attention import channel_statistics
from sanet.model import SANet
from sanet.transform import Transform

# onnx-tf 1.10 handles opsets up to 15, but from opset 11 on a reflection pad's widths become a
# run-time tensor computed by a small shape subgraph, which TF.js then fails on. At opset 10
# they are attributes.
OPSET = 10


@dataclass(frozen=True)
class OnnxGraphs:
    encoder: Path  # image [1, 3, H, W] -> relu4_1 [1, C, H/8, W/8], relu5_1 [1, C, H/16, W/16]
    # content4_1, style4_1, content5_1, style5_1, mean4_1, std4_1, mean5_1, std5_1
    #   -> features [1, C, H/8, W/8]
    transform: Path
    decoder: Path  # features [1, C, h, w] -> image [1, 3, 8h, 8w] (not cropped, not clamped)

    def items(self) -> list[tuple[str, Path]]:
        return [("encoder", self.encoder), ("transform", self.transform), ("decoder", self.decoder)]


# The transform's statistics inputs, in order: [1, C, 1, 1] each, no dynamic axes.
STATISTICS = ("mean4_1", "std4_1", "mean5_1", "std5_1")


def _export(
    module: nn.Module,
    args: tuple[torch.Tensor, ...],
    path: Path,
    inputs: dict[str, str],
    outputs: dict[str, str],
) -> Path:
    """Export with every image-like tensor's dims 2 and 3 symbolic; `inputs`/`outputs` map a
    tensor name to the prefix of its dimension names ("": a fixed shape)."""
    axes = {
        name: {2: f"{prefix}_height", 3: f"{prefix}_width"}
        for name, prefix in inputs.items()
        if prefix
    }
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


class StatisticsTransform(nn.Module):
    """The transform with the content's normalisation statistics ([1, C, 1, 1] each) as inputs:
    given the whole maps' statistics, it runs on a tile of the content's maps as on the whole
    (`sanet.tiling`). Untiled, they are the maps' own (`channel_statistics`)."""

    def __init__(self, transform: Transform) -> None:
        super().__init__()
        self.transform = transform

    def forward(self, content4_1, style4_1, content5_1, style5_1, mean4_1, std4_1, mean5_1, std5_1):
        return self.transform(
            content4_1, style4_1, content5_1, style5_1, 0, (mean4_1, std4_1), (mean5_1, std5_1)
        )


@torch.no_grad()
def export_onnx(model: SANet, directory: Path) -> OnnxGraphs:
    """Write encoder.onnx, transform.onnx and decoder.onnx into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    # Odd relu4_1 sides (13x9) so that the transform's crop after upsampling is traced.
    image = torch.rand(1, 3, 104, 72)
    content4_1, content5_1 = model.encoder(image)
    style4_1, style5_1 = model.encoder(torch.rand(1, 3, 64, 80))
    statistics = (*channel_statistics(content4_1), *channel_statistics(content5_1))
    features = model.transform(content4_1, style4_1, content5_1, style5_1)
    return OnnxGraphs(
        encoder=_export(
            model.encoder, (image,), directory / "encoder.onnx",
            {"image": "image"}, {"relu4_1": "relu4_1", "relu5_1": "relu5_1"},
        ),
        transform=_export(
            StatisticsTransform(model.transform),
            (content4_1, style4_1, content5_1, style5_1, *statistics),
            directory / "transform.onnx",
            {"content4_1": "content4_1", "style4_1": "style4_1",
             "content5_1": "content5_1", "style5_1": "style5_1",
             **{name: "" for name in STATISTICS}},
            {"features": "content4_1"},
        ),
        decoder=_export(
            model.decoder, (features,), directory / "decoder.onnx",
            {"features": "features"}, {"image": "decoded"},
        ),
    )  # fmt: skip
