"""File-system checks shared by the CLI and the converter."""

import tempfile
from pathlib import Path

from sanet.errors import SANetError


def check_writable(directory: Path, label: Path | None = None) -> None:
    """Fail with one line unless a file can be created in `directory` (named `label` in the
    message). A real probe: permission bits say nothing for root or read-only mounts."""
    try:
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as error:
        raise SANetError(f"{label or directory}: not writable ({error.strerror})") from None
