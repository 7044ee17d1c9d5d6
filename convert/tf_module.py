"""Stage 3: one `tf.Module` that composes the three graphs behind a serving signature.

    serving_default(content [H, W, 3], style [h, w, 3], iterations, max_resolution, strength,
                    style_resolution, style2 [h2, w2, 3], mix, mask [hm, wm], keep_colors, tile,
                    stream, measure [4], content_moments [n, 2, 3, C], and the encodings of
                    `convert.contract.ENCODINGS`)
        -> {"result": [H, W, 3], "content_moments", and the encodings}

Same semantics as `sanet.Stylizer.stylize`: both images are scaled (aspect kept) so that the
longest side is at most `max_resolution` (0: as given) and the shortest at least MIN_SIDE; the
style is encoded once; each iteration stylizes the previous, unclamped output; `strength`
blends toward the content's own transform; the result is clipped to [0, 1] and scaled back to
the content's size. The controls (`sanet.controls`, docs/controls.md): `style_resolution`
scales the style to that longest side instead (0: as given, -1: the content's rule);
`style2` is mixed in with weight `mix` (0: not used, any image will do); `mask` (luminance,
any size; all ones: everywhere) makes the strength blend per position; `keep_colors` moves the
result's chroma to the content's. `tile` > 0 runs the encoder, the transform and the decoder in
tiles of about that side (`convert.tf_tiles`): the same result in memory that grows with the
tile, not the image, apart from the image and its relu4_1 and relu5_1 maps. `stream` > 0 holds
neither map (`sanet.tiling`, streamed): statistics in a first pass over the tiles, then each
decoder tile encodes its own region; it applies at strength 1 without a mask and without given
content encodings (else the maps are held), and returns the content's encodings empty. A photo
in pieces (`convert.pieces`): `measure` (a box, [top, left, bottom, right]) returns the moments
of the content's relu4_1 and relu5_1 there as `content_moments` [1, 2, 3, C] and no image;
`content_moments` given ([n, 2, 3, C], every piece's) replace the first pass's statistics.
"""

from pathlib import Path

import tensorflow as tf

from convert import tf_tiles
from convert.contract import ENCODINGS, SIGNATURE_KEY
from convert.tf_graphs import TfGraphs, load_graph
from convert.tf_tiles import Cells, Margins
from sanet.controls import CHROMA_OF_RGB
from sanet.request import MIN_SIDE
from sanet.tiling import RELU4_1_STRIDE, RELU5_1_STRIDE

SIGNATURE = [
    tf.TensorSpec([None, None, 3], tf.float32, name="content"),
    tf.TensorSpec([None, None, 3], tf.float32, name="style"),
    tf.TensorSpec([], tf.int32, name="iterations"),
    tf.TensorSpec([], tf.int32, name="max_resolution"),
    tf.TensorSpec([], tf.float32, name="strength"),
    tf.TensorSpec([], tf.int32, name="style_resolution"),
    tf.TensorSpec([None, None, 3], tf.float32, name="style2"),
    tf.TensorSpec([], tf.float32, name="mix"),
    tf.TensorSpec([None, None], tf.float32, name="mask"),
    tf.TensorSpec([], tf.float32, name="keep_colors"),
    tf.TensorSpec([], tf.int32, name="tile"),
    tf.TensorSpec([], tf.int32, name="stream"),
    tf.TensorSpec([4], tf.int32, name="measure"),
    tf.TensorSpec([None, 2, 3, None], tf.float32, name="content_moments"),
    *(tf.TensorSpec([None, None, None, None], tf.float32, name=name) for name in ENCODINGS),
]
# RGB difference -> its chroma part (`sanet.controls.keep_colors`).
CHROMA = tf.constant(CHROMA_OF_RGB.T)


def working_size(size: tf.Tensor, max_resolution: tf.Tensor) -> tf.Tensor:
    """[height, width] to compute at; the rule of `sanet.stylizer.working_size`."""
    size = tf.cast(size, tf.float32)
    longest, shortest = tf.reduce_max(size), tf.reduce_min(size)
    limited = max_resolution > 0
    limit = tf.cast(max_resolution, tf.float32)
    scale = tf.where(limited, tf.minimum(1.0, limit / longest), 1.0)
    grown = tf.where(limited, tf.minimum(MIN_SIDE / shortest, limit / longest), MIN_SIDE / shortest)
    scale = tf.where(shortest * scale < MIN_SIDE, grown, scale)
    # At scale 1 this is the size itself, unless a side is under MIN_SIDE (then stretched).
    return tf.cast(tf.maximum(float(MIN_SIDE), tf.round(size * scale)), tf.int32)


def style_working_size(
    size: tf.Tensor, max_resolution: tf.Tensor, style_resolution: tf.Tensor
) -> tf.Tensor:
    """The rule of `sanet.stylizer.style_working_size`, with -1 for its None."""
    by_rule = working_size(size, tf.where(style_resolution < 0, max_resolution, 0))
    size = tf.cast(size, tf.float32)
    scale = tf.cast(style_resolution, tf.float32) / tf.reduce_max(size)
    scaled = tf.cast(tf.maximum(float(MIN_SIDE), tf.round(size * scale)), tf.int32)
    return tf.where(style_resolution > 0, scaled, by_rule)


def _resize_matrix(size_in: tf.Tensor, size_out: tf.Tensor) -> tf.Tensor:
    """[size_out, size_in] weights of a bilinear resize with antialiasing.

    A triangle filter widened by the scale factor when shrinking, over half-pixel centres,
    each row normalised: the rule of torch's `interpolate(mode="bilinear", antialias=True)`.
    Written with plain ops because TF.js has no kernel for TF's antialiased resize.
    """
    size_in, size_out = tf.cast(size_in, tf.float32), tf.cast(size_out, tf.float32)
    scale = size_in / size_out
    centers = (tf.range(size_out) + 0.5) * scale
    taps = tf.range(size_in) + 0.5
    weights = tf.nn.relu(
        1.0 - tf.abs(taps[tf.newaxis] - centers[:, tf.newaxis]) / tf.maximum(scale, 1.0)
    )
    return weights / tf.reduce_sum(weights, axis=1, keepdims=True)


def _resize_rows(image: tf.Tensor, height: tf.Tensor) -> tf.Tensor:
    """[H, W, C] -> [height, W, C]."""
    shape = tf.shape(image)
    rows = _resize_matrix(shape[0], height) @ tf.reshape(image, [shape[0], -1])
    return tf.reshape(rows, [height, shape[1], shape[2]])


def _resize(image: tf.Tensor, size: tf.Tensor) -> tf.Tensor:
    """[H, W, C] -> [size[0], size[1], C] as torch's antialiased bilinear; at equal sizes the
    image itself (the matrices would be identities: at 12 megapixels, hundreds of GFLOP).
    The branches read the image from a TensorArray, which TF.js does not copy."""
    held = tf_tiles.hold(image)

    def resized() -> tf.Tensor:
        rows = _resize_rows(held.read(0), size[0])
        return tf.transpose(_resize_rows(tf.transpose(rows, [1, 0, 2]), size[1]), [1, 0, 2])

    same = tf.reduce_all(tf.equal(tf.shape(image)[:2], tf.cast(size, tf.int32)))
    return tf_tiles.either(same, lambda: held.read(0), resized)


def _passes(iterations: tf.Tensor) -> tf.Tensor:
    """How many times the loop runs: `iterations`, at least once."""
    return tf.maximum(iterations, 1)


class SANetModule(tf.Module):
    """The three onnx-tf graphs behind one signature; see the module docstring."""

    def __init__(self, graphs: TfGraphs, margins: Margins, channels: int) -> None:
        super().__init__(name="sanet")
        functions = {name: load_graph(path) for name, path in graphs.items()}
        self.encoder = functions["encoder"]
        self.transform = functions["transform"]
        self.decoder = functions["decoder"]
        self.margins = margins
        self.channels = channels  # of relu4_1 and relu5_1

    def encoded_maps(self, part: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """relu4_1 and relu5_1 of an image [1, 3, h, w]."""
        out = self.encoder(image=part)
        return out["relu4_1"], out["relu5_1"]

    def encode(self, image: tf.TensorArray, size: tuple, tile: tf.Tensor) -> tuple[Cells, Cells]:
        """relu4_1 and relu5_1 of the held image [h, w, 3] of `size`, in tiles of side `tile`."""
        return tf_tiles.encode(
            self.encoded_maps, image, size, tile, self.margins.encoder, self.channels
        )

    # The branches below read the image and the maps from TensorArrays: a tensor that a
    # branch captures, TF.js copies (twice) and keeps to the end of the run.

    def encoded(self, image, tile, relu4_1, relu5_1) -> tuple[Cells, Cells]:
        """The cells of `relu4_1` and `relu5_1` when given (not empty), else of `image`'s
        encodings; `image` [h, w, 3]."""
        size = tf.shape(image)[0], tf.shape(image)[1]
        held, maps = tf_tiles.hold(image), (tf_tiles.hold(relu4_1), tf_tiles.hold(relu5_1))

        def given() -> tuple[tf.TensorArray, tf.TensorArray]:
            return tuple(
                tf_tiles.split(f, size, tile, stride, self.channels)
                for f, stride in zip(maps, (RELU4_1_STRIDE, RELU5_1_STRIDE), strict=True)
            )

        arrays = tf.cond(
            tf.size(relu4_1) > 0,
            given,
            lambda: tuple(c.array for c in self.encode(held, size, tile)),
        )
        return tf_tiles.cells_of(arrays, size, tile)

    def encoded_whole(self, image, tile, relu4_1, relu5_1) -> tuple[tf.Tensor, tf.Tensor]:
        """`relu4_1` and `relu5_1` when given (not empty), else `image`'s, whole; the signature's
        `tile` input, for this image's size."""
        size = tf.shape(image)[0], tf.shape(image)[1]
        tile = tf_tiles.tile_side(tile, *size)
        held, maps = tf_tiles.hold(image), (tf_tiles.hold(relu4_1), tf_tiles.hold(relu5_1))
        return tf_tiles.either(
            tf.size(relu4_1) > 0,
            lambda: tuple(f.read(0) for f in maps),
            lambda: tuple(tf_tiles.whole(c) for c in self.encode(held, size, tile)),
        )

    def stylize_features(self, content4_1, style4_1, content5_1, style5_1, statistics):
        """The transform of a region of the content's maps, normalised by `statistics`
        (mean4_1, std4_1, mean5_1, std5_1: the whole maps')."""
        mean4_1, std4_1, mean5_1, std5_1 = statistics
        return self.transform(
            content4_1=content4_1, style4_1=style4_1, content5_1=content5_1, style5_1=style5_1,
            mean4_1=mean4_1, std4_1=std4_1, mean5_1=mean5_1, std5_1=std5_1,
        )["features"]  # fmt: skip

    @tf.function(input_signature=SIGNATURE)
    def serve(self, content, style, iterations, max_resolution, strength, style_resolution,
              style2, mix, mask, keep_colors, tile, stream, measure, content_moments,
              content_relu4_1, content_relu5_1, style_relu4_1, style_relu5_1, style2_relu4_1,
              style2_relu5_1):  # fmt: skip
        source, original = content, tf.shape(content)[:2]
        size = working_size(original, max_resolution)
        content = _resize(content, size)  # [h, w, 3]
        size2 = style_working_size(tf.shape(style2)[:2], max_resolution, style_resolution)
        # At mix 0 the second style is not used: encoded at the smallest size, for nothing.
        size2 = tf.where(mix > 0.0, size2, [MIN_SIDE, MIN_SIDE])
        style2 = _resize(style2, size2)
        size1 = style_working_size(tf.shape(style)[:2], max_resolution, style_resolution)
        style = _resize(style, size1)
        strength = tf.clip_by_value(strength, 0.0, 1.0)
        mix = tf.clip_by_value(mix, 0.0, 1.0)
        mask = tf.clip_by_value(mask, 0.0, 1.0)[..., tf.newaxis]
        masked = tf.reduce_min(mask) < 1.0  # all ones: no mask
        partial = tf.logical_or(strength < 1.0, masked)
        height, width = size[0], size[1]
        content_tile = tf_tiles.tile_side(tile, height, width)
        # Streamed: tiles that hold no content map (`sanet.tiling`), which the content's own
        # attention and given content encodings need.
        given = tf.size(content_relu4_1) > 0
        streaming = tf.logical_and(
            tf.logical_and(stream > 0, tile > 0),
            tf.logical_not(tf.logical_or(partial, given)),
        )
        # A measuring call (a region given) returns the content's moments there and no image;
        # given moments stand for the first pass's statistics (a piece of a larger image).
        region = tf.concat([measure[:2], tf.minimum(measure[2:], size)], 0)
        measuring = tf.reduce_all(region[2:] > region[:2])
        held_moments = tf_tiles.hold(content_moments)
        moments_given = tf.shape(content_moments)[0] > 0
        # Encodings an earlier call returned are used as given; empty ones are computed.
        held_content = tf_tiles.hold(content)
        # What a branch returns must depend on a tensor it takes in: TF.js runs a branch made
        # of constants whatever the predicate, and may pass its result on instead.
        nothing = 0 * height
        first = tf_tiles.cells_of(
            tf.cond(
                tf.logical_or(streaming, measuring),
                lambda: (
                    tf_tiles.empty_cells(self.channels, nothing),
                    tf_tiles.empty_cells(self.channels, nothing),
                ),
                lambda: tuple(
                    c.array
                    for c in self.encoded(
                        held_content.read(0), content_tile, content_relu4_1, content_relu5_1
                    )
                ),
            ),
            size,
            content_tile,
        )
        styles = {
            "style": self.encoded_whole(style, tile, style_relu4_1, style_relu5_1),
            "style2": self.encoded_whole(style2, tile, style2_relu4_1, style2_relu5_1),
        }
        held = {name: tuple(tf_tiles.hold(f) for f in maps) for name, maps in styles.items()}
        # The mask at relu4_1's size, [1, 1, h/8, w/8], through the content's size as the
        # PyTorch model resizes it; all ones (no mask) it stays as small as it came.
        mask = _resize(mask, tf.where(masked, size, tf.shape(mask)[:2]))
        mask4_1 = tf.transpose(_resize(mask, first[0].size), [2, 0, 1])
        mask4_1 = tf_tiles.hold(mask4_1[tf.newaxis])

        def first_or(index: tf.Tensor, computed) -> tuple[tf.Tensor, ...]:
            """Pass `index`'s statistics: the given moments' in the first pass, if any; else
            `computed()`."""
            return tf_tiles.either(
                tf.logical_and(moments_given, tf.equal(index, 0)),
                lambda: tf_tiles.statistics(given_moments(held_moments.read(0))),
                computed,
            )

        def stylize(index: tf.Tensor, content4_1: Cells, content5_1: Cells) -> tf.TensorArray:
            """Pass `index`: the content's cells -> the decoded image's tiles."""
            statistics = first_or(
                index,
                lambda: (
                    *tf_tiles.channel_statistics(content4_1),
                    *tf_tiles.channel_statistics(content5_1),
                ),
            )

            def decode(second: bool, blended: bool) -> tf.TensorArray:
                """The pass with the style's transform, the second style's (`second`: mix >
                0) and the content's own (`blended`: strength < 1 or a mask), with keys from
                its whole maps. A branch for each combination, outside the tiles' loop: in a
                loop, TF.js would keep a copy of every tile's features that a `tf.cond`
                passes through; and a transform that is not needed costs a fifth of a run."""
                own = (
                    tuple(tf_tiles.hold(tf_tiles.whole(c)) for c in (content4_1, content5_1))
                    if blended
                    else None
                )

                def features(index: tf.Tensor, rows: tuple, columns: tuple) -> tf.Tensor:
                    """The decoder's input on tile `index`'s region."""
                    part4_1 = tf_tiles.region(content4_1, index, self.margins.features)
                    part5_1 = tf_tiles.region(content5_1, index, self.margins.features // 2)

                    def transform(keys: tuple) -> tf.Tensor:
                        style4_1, style5_1 = (k.read(0) for k in keys)
                        return self.stylize_features(
                            part4_1, style4_1, part5_1, style5_1, statistics
                        )

                    stylized = transform(held["style"])
                    if second:
                        stylized = _mix(stylized, transform(held["style2"]), mix)
                    if blended:
                        part_mask = mask4_1.read(0)[
                            :, :, rows[2] : rows[3], columns[2] : columns[3]
                        ]
                        stylized = _blend(transform(own), stylized, strength, part_mask)
                    return stylized

                def decoder(part: tf.Tensor) -> tf.Tensor:
                    return self.decoder(features=part)["image"]

                return tf_tiles.decode(
                    features, decoder, content4_1.size, content4_1.side, self.margins.features
                )

            def by_mix(blended: bool) -> tf.TensorArray:
                return tf.cond(
                    mix > 0.0, lambda: decode(True, blended), lambda: decode(False, blended)
                )

            return tf.cond(partial, lambda: by_mix(True), lambda: by_mix(False))

        passes = _passes(iterations)

        whole_image = tf.stack([0, 0, height, width])

        def stream_pass(index: tf.Tensor, image: tf.TensorArray) -> tf.TensorArray:
            """Streamed pass `index`: the held image -> the decoded image's tiles."""
            encoder = self.encoded_maps
            statistics = first_or(
                index,
                lambda: tf_tiles.statistics(
                    tf_tiles.moments(
                        encoder, image, size, content_tile, self.margins.encoder, whole_image
                    )
                ),
            )

            def decode(second: bool) -> tf.TensorArray:
                """The pass with the style's transform and, if `second`, the second style's."""

                def features(index: tf.Tensor, rows: tuple, columns: tuple) -> tf.Tensor:
                    part4_1, part5_1 = tf_tiles.encoded_region(
                        encoder, image, size, rows, columns, self.margins.encoder
                    )

                    def transform(keys: tuple) -> tf.Tensor:
                        style4_1, style5_1 = (k.read(0) for k in keys)
                        return self.stylize_features(
                            part4_1, style4_1, part5_1, style5_1, statistics
                        )

                    stylized = transform(held["style"])
                    return _mix(stylized, transform(held["style2"]), mix) if second else stylized

                def decoder(part: tf.Tensor) -> tf.Tensor:
                    return self.decoder(features=part)["image"]

                side = content_tile // RELU4_1_STRIDE
                return tf_tiles.decode(
                    features, decoder, first[0].size, side, self.margins.features
                )

            return tf.cond(mix > 0.0, lambda: decode(True), lambda: decode(False))

        def streamed() -> tf.TensorArray:
            """Every pass streamed; the image between passes held, not encoded."""

            def step(i, tiles, image):
                tiles = stream_pass(i, image)
                image = tf.cond(
                    i + 1 < passes,
                    lambda: tf_tiles.hold(tf_tiles.assemble(tiles, size, content_tile)),
                    lambda: image,
                )
                return i + 1, tiles, image

            _, tiles, _ = tf.while_loop(
                lambda i, *_: i < passes,
                step,
                [tf.constant(0), tf_tiles.image_tiles(size, content_tile), held_content],
            )
            return tiles

        def step(i, tiles, cells4_1, cells5_1):
            """One pass from the content's cells; then the output's, for the next pass
            (none after the last). Images stay in tiles (TensorArrays) between passes."""
            content4_1, content5_1 = tf_tiles.cells_of((cells4_1, cells5_1), size, content_tile)
            tiles = stylize(i, content4_1, content5_1)

            def encode_next() -> tuple[tf.TensorArray, tf.TensorArray]:
                image = tf_tiles.hold(tf_tiles.assemble(tiles, size, content_tile))
                return tuple(c.array for c in self.encode(image, size, content_tile))

            def nothing() -> tuple[tf.TensorArray, tf.TensorArray]:
                return cells4_1, cells5_1

            cells4_1, cells5_1 = tf.cond(i + 1 < passes, encode_next, nothing)
            return i + 1, tiles, cells4_1, cells5_1

        def held_maps() -> tf.TensorArray:
            _, tiles, _, _ = tf.while_loop(
                lambda i, *_: i < passes,
                step,
                [
                    tf.constant(0),
                    tf_tiles.image_tiles(size, content_tile),
                    first[0].array,
                    first[1].array,
                ],
            )
            return tiles

        def stylized() -> tuple[tf.Tensor, tf.Tensor]:
            """The result, and no moments."""
            tiles = tf.cond(streaming, streamed, held_maps)
            image = tf_tiles.assemble(tiles, size, content_tile)
            # Clipped before scaling back, as the PyTorch model returns its image; the resize
            # averages with non-negative weights, so the result stays in [0, 1].
            result = _resize(tf.clip_by_value(image, 0.0, 1.0), original)
            amount = tf.clip_by_value(keep_colors, 0.0, 1.0)
            result = _keep_colors(result, held_source.read(0), amount)
            return result, tf.zeros([nothing, 2, 3, self.channels])

        def measured() -> tuple[tf.Tensor, tf.Tensor]:
            """No image, and the content's moments over `region`."""
            found = tf_tiles.moments(
                self.encoded_maps, held_content, size, content_tile, self.margins.encoder,
                region,
            )  # fmt: skip
            return tf.zeros([nothing, nothing, 3]), found[tf.newaxis]

        # The branches read the input from a TensorArray: TF.js would copy it (see `encoded`).
        held_source = tf_tiles.hold(source)
        result, moments = tf_tiles.either(measuring, measured, stylized)
        result.set_shape([None, None, 3])  # a TensorArray's element has no static shape
        outputs = {"result": result, "content_moments": moments}
        # A streamed run has no content maps to return: empty ones, as a caller sends.
        content_maps = tf_tiles.either(
            tf.logical_or(streaming, measuring),
            lambda: (tf.zeros([1, self.channels, nothing, nothing]),) * 2,
            lambda: tuple(tf_tiles.whole(c) for c in first),
        )
        encodings = {"content": content_maps, **styles}
        for image_name, (relu4_1, relu5_1) in encodings.items():
            outputs |= {f"{image_name}_relu4_1": relu4_1, f"{image_name}_relu5_1": relu5_1}
        return outputs


def given_moments(moments: tf.Tensor) -> tf.Tensor:
    """The moments [2, 3, C] of a whole image from its pieces' [n, 2, 3, C]."""
    return tf.stack([tf_tiles.combined(moments[:, layer]) for layer in (0, 1)])


def _mix(features: tf.Tensor, second: tf.Tensor, mix: tf.Tensor) -> tf.Tensor:
    """`sanet.controls.mix_styles`: toward the second style's transform by `mix`."""
    return features + mix * (second - features)


def _blend(identity: tf.Tensor, features: tf.Tensor, strength: tf.Tensor, mask: tf.Tensor):
    """`sanet.controls.blend`: from the content's own transform toward the stylized features
    by `strength` times the mask (at the features' size), per position."""
    return identity + strength * mask * (features - identity)


def _keep_colors(result: tf.Tensor, content: tf.Tensor, amount: tf.Tensor) -> tf.Tensor:
    """`sanet.controls.keep_colors` on [H, W, 3] images; amount 0: `result` itself, without
    the arithmetic (five image-sized copies: 0.7 GB at 12 MP). The branches read the images
    from TensorArrays, which TF.js does not copy."""
    held_result, held_content = tf_tiles.hold(result), tf_tiles.hold(content)

    def moved() -> tf.Tensor:
        image = held_result.read(0)
        shift = tf.tensordot(held_content.read(0) - image, CHROMA, 1)
        return tf.clip_by_value(image + amount * shift, 0.0, 1.0)

    kept = tf_tiles.either(amount > 0.0, moved, lambda: held_result.read(0))
    kept.set_shape([None, None, 3])  # a TensorArray's element has no static shape
    return kept


def build_tf_module(graphs: TfGraphs, margins: Margins, channels: int, directory: Path) -> Path:
    """Save the composed module as a SavedModel with signature `serving_default`; `margins`
    and `channels` (relu4_1's) are those of the model the graphs came from."""
    module = SANetModule(graphs, margins, channels)
    tf.saved_model.save(module, str(directory), signatures={SIGNATURE_KEY: module.serve})
    return directory
