"""`convert.pieces`: how a photo is cut into pieces and put back together. That the pieces
reproduce one call is a parity case of the conversion (tests/test_convert.py)."""

import numpy as np
import pytest

from convert.contract import CONTROLS_OFF
from convert.pieces import Piece, check, cuts, margins, plan, stylize_in_pieces

TILING = {"align": 16, "encoder_margin": 32, "features_margin": 2, "relu4_1_stride": 8}


def test_cuts_are_on_the_grid_and_as_even_as_it_allows():
    # 229 / 3 = 76.3 and 152.7, to the nearest multiple of 16: 80 and 160.
    assert cuts(229, 96, 16) == [0, 80, 160, 229]
    # 149 / 2 = 74.5 -> 80; a side within one piece is not cut.
    assert cuts(149, 96, 16) == [0, 80, 149]
    assert cuts(64, 96, 16) == [0, 64]
    # 4000 in pieces of about 1024 at most: 4 of 1000; 62.5 and 187.5 grid steps round up.
    assert cuts(4000, 1024, 16) == [0, 1008, 2000, 3008, 4000]


def test_each_piece_carries_its_margins_where_the_photo_has_them():
    pieces = plan((149, 229), 96, 48, 16)
    assert len(pieces) == 6
    assert pieces[0] == Piece(keep=(0, 0, 80, 80), crop=(0, 0, 128, 128))
    assert pieces[1] == Piece(keep=(0, 80, 80, 160), crop=(0, 32, 128, 208))
    assert pieces[5] == Piece(keep=(80, 160, 149, 229), crop=(32, 112, 149, 229))
    assert pieces[5].inside() == (48, 48, 117, 117)


def test_margins_follow_the_models_tiling_rule():
    # measuring: the encoder's 32 px; stylizing: and 2 relu4_1 positions of 8 px.
    assert margins(TILING) == (32, 48)


def inputs(content: np.ndarray, **changes) -> dict:
    return {
        "content": content,
        "iterations": np.array(1, np.int32),
        "max_resolution": np.array(0, np.int32),
        "strength": np.array(1.0, np.float32),
        "mask": CONTROLS_OFF["mask"],
        **changes,
    }


def test_the_kept_parts_make_the_photo_and_every_piece_gets_every_moment():
    """A stand-in for the signature that returns what it is sent: the pieces put together
    must be the content itself, and each stylizing call must get every measuring call's
    moments, in order."""
    content = np.random.default_rng(0).random((149, 229, 3)).astype(np.float32)
    sent = []

    def calls(feeds: list[dict], output: str) -> list[np.ndarray]:
        sent.append((output, feeds))
        if output == "content_moments":
            return [np.full((1, 2, 3, 4), i, np.float32) for i in range(len(feeds))]
        return [feed["content"] for feed in feeds]

    result = stylize_in_pieces(calls, inputs(content), 96, TILING)
    np.testing.assert_array_equal(result, content)
    (first, measuring), (second, stylizing) = sent
    assert (first, second) == ("content_moments", "result")
    assert [tuple(f["measure"]) for f in measuring][:2] == [(0, 0, 80, 80), (0, 32, 80, 112)]
    assert all(f["content_moments"].shape == (0, 2, 3, 0) for f in measuring)
    for feed in stylizing:
        assert list(feed["content_moments"][:, 0, 0, 0]) == list(range(6))
        assert not feed["measure"].any()


@pytest.mark.parametrize(
    "change, named",
    [
        ({"iterations": np.array(2, np.int32)}, "iterations"),
        ({"max_resolution": np.array(512, np.int32)}, "max_resolution"),
        ({"strength": np.array(0.5, np.float32)}, "strength"),
        ({"mask": np.zeros((2, 2), np.float32)}, "mask"),
    ],
)
def test_requests_pieces_would_not_reproduce_are_refused_in_one_line(change, named):
    with pytest.raises(ValueError, match=rf"^pieces need .*\({named}\)$"):
        check(inputs(np.zeros((64, 64, 3), np.float32), **change))
