"""The one exception type the package raises for problems a user can fix."""


class SANetError(Exception):
    """A user-facing error: its message is one complete line, shown without a traceback."""
