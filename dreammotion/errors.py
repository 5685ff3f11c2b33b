"""Errors a user can act on. The CLI prints them without a traceback (exit status 1)."""


class DreamMotionError(Exception):
    """Base of every user-facing error."""


class InputError(DreamMotionError, ValueError):
    """Bad input: the message names the file, and where known the manifest row and field."""


class NumericalError(DreamMotionError, FloatingPointError):
    """A loss or gradient became NaN/Inf, or the optimisation diverged; names the iteration."""
