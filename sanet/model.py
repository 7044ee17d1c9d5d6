"""SANet: encoder -> transform -> decoder, with iterations and a strength control."""

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from functools import partial

from torch import Tensor, nn

from sanet.controls import blend, mix_styles
from sanet.decoder import Decoder
from sanet.encoder import FULL_WIDTHS, Encoder
from sanet.tiling import Tiling
from sanet.transform import Transform

Stage = Callable[[str], AbstractContextManager[object]]


def _no_timing(name: str) -> AbstractContextManager[object]:
    return nullcontext()


def crop_to(image: Tensor, like: Tensor) -> Tensor:
    """Crop `image` to `like`'s size; the decoder rounds sides up to a multiple of 8."""
    return image[:, :, : like.shape[2], : like.shape[3]]


class SANet(nn.Module):
    """Arbitrary style transfer with style-attentional networks (Park & Lee, CVPR 2019).

    Images are float tensors [N, 3, H, W] with RGB in [0, 1]; any H, W >= MIN_SIDE works and the
    result has the content's size.
    """

    def __init__(self, widths: tuple[int, int, int, int] = FULL_WIDTHS) -> None:
        super().__init__()
        self.widths = widths
        self.encoder = Encoder(widths)
        self.transform = Transform(widths[3])
        self.decoder = Decoder(widths)

    def forward(
        self,
        content: Tensor,
        style: Tensor | tuple[Tensor, Tensor],
        iterations: int = 1,
        strength: float = 1.0,
        stage: Stage = _no_timing,
        smooth: Callable[[Tensor], Tensor] | None = None,
        tiling: Tiling | None = None,
        style2: Tensor | tuple[Tensor, Tensor] | None = None,
        mix: float = 0.0,
        mask: Tensor | None = None,
    ) -> Tensor:
        """Stylize `content` with `style`; returns an image clamped to [0, 1].

        Each iteration stylizes the previous, unclamped output again, as the original `--steps`
        does; the style is encoded once. `strength` blends the transform of (content, style)
        with that of (content, content), which training maps back to the content; 1.0 is the
        original SANet. `stage(name)` wraps each stage, e.g. to time it.

        `style` is an image or its features `self.encoder(style)`, computed once for many
        contents (the frames of a video). `smooth`, if given, maps the last iteration's decoder
        input before it is decoded (a video's temporal smoothing).

        `tiling` runs the encoder and the decoder in tiles and the attention in chunks: the
        same result in bounded memory (see `sanet.tiling`). A streamed one holds no content
        map; it takes neither a strength below 1, nor a mask, nor `smooth`.

        The creative controls (`sanet.controls`): `style2` (an image or its features, encoded
        once like `style`) is mixed in with weight `mix` in [0, 1]; `mask` [N, 1, H, W] in
        [0, 1] at any size (1: stylize, 0: keep) makes the strength blend per position.
        """
        encode = partial(tiling.encode, self.encoder) if tiling else self.encoder
        decode = partial(tiling.decode, self.decoder) if tiling else self.decoder
        chunk = tiling.chunk if tiling else 0
        if isinstance(style, Tensor):
            with stage("encode"):
                style = encode(style)
        style4_1, style5_1 = style
        if mix and style2 is None:
            raise ValueError("mix needs a second style")
        if isinstance(style2, Tensor) and mix:
            with stage("encode"):
                style2 = encode(style2)
        if tiling and tiling.streamed and (strength < 1.0 or mask is not None or smooth):
            raise ValueError("a streamed tiling attends no content to itself and smooths nothing")

        def transformed(content4_1: Tensor, content5_1: Tensor, statistics=(None, None)) -> Tensor:
            """The decoder's input before the strength blend: the style's, mixed."""
            features = self.transform(
                content4_1, style4_1, content5_1, style5_1, chunk, *statistics
            )
            if mix and style2 is not None:
                second = self.transform(
                    content4_1, style2[0], content5_1, style2[1], chunk, *statistics
                )
                features = mix_styles(features, second, mix)
            return features

        image = content
        for iteration in range(iterations):
            if tiling and tiling.streamed:
                with stage("encode"):
                    statistics = tiling.statistics(self.encoder, image)
                with stage("decode"):
                    stylized = partial(transformed, statistics=statistics)
                    image = crop_to(
                        tiling.stream(self.encoder, stylized, self.decoder, image), content
                    )
                continue
            with stage("encode"):
                content4_1, content5_1 = encode(image)
            with stage("transform"):
                features = transformed(content4_1, content5_1)
                if strength < 1.0 or mask is not None:
                    identity = self.transform(content4_1, content4_1, content5_1, content5_1, chunk)
                    features = blend(identity, features, strength, mask)
            if smooth and iteration == iterations - 1:
                features = smooth(features)
            with stage("decode"):
                image = crop_to(decode(features), content)
        return image.clamp(0.0, 1.0)
