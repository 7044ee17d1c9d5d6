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


def check_output_file(path: Path) -> None:
    """Fail with one line unless `path` could be created: its directory exists and is
    writable, and `path` is not itself a directory."""
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise SANetError(f"{path}: directory {directory} does not exist")
    if path.is_dir():
        raise SANetError(f"{path}: is a directory")
    check_writable(directory, path)
