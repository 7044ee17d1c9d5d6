"""The request rules: what sizes a stylization computes at, and its defaults and limits.

Defined here, once. The CLI and `Stylizer` follow them directly; the converter writes them
into the model's `metadata.json` (`request`), which is how the web page learns them.
"""

from sanet.model import MIN_SIDE

# The longest side a stylization computes at when the caller does not say (the CLI, the API,
# the page's default): the resolution SANet was trained at.
DEFAULT_MAX_RESOLUTION = 512
# The largest working resolution the page offers for an untiled run.
MAX_RESOLUTION_LIMIT = 2048

# The creative controls (docs/controls.md, equations in sanet.controls). Each amount is in
# [CONTROL_MIN, CONTROL_MAX]; the defaults leave today's output unchanged.
CONTROL_MIN, CONTROL_MAX = 0.0, 1.0
# How far the output's chroma moves to the content's: 0 keeps the stylization's colours.
DEFAULT_KEEP_COLORS = 0.0
# The second style's weight when one is given (without one, the output is today's): an even mix.
DEFAULT_MIX = 0.5


def rules() -> dict[str, int]:
    """The rules as plain values, for consumers outside Python (metadata.json)."""
    return {
        "min_side": MIN_SIDE,
        "default_max_resolution": DEFAULT_MAX_RESOLUTION,
        "max_resolution_limit": MAX_RESOLUTION_LIMIT,
    }
