"""Error types and the exit codes they map to (see README: 0 ok, 1 gate failed, 2 bad input, 3 stage failed)."""

EXIT_OK = 0
EXIT_GATE_FAILED = 1
EXIT_USER_ERROR = 2
EXIT_STAGE_FAILED = 3


class CompressctlError(Exception):
    """Base class: an error with a message meant for the user and an exit code."""

    exit_code = EXIT_STAGE_FAILED


class UserError(CompressctlError):
    """Bad input: recipe, model, data or flags. One clear message, exit 2."""

    exit_code = EXIT_USER_ERROR


class StageError(CompressctlError):
    """A stage, conversion or measurement failed at run time. Exit 3."""

    exit_code = EXIT_STAGE_FAILED


class ConversionError(StageError):
    """The TFLite converter failed or crashed in its child process."""


def require_file(path, what: str, expected: str) -> None:
    """A UserError unless ``path`` is an existing file: ``what`` names it, ``expected`` says what it should be."""
    from pathlib import Path

    if not Path(path).exists():
        raise UserError(f"{path}: {what} not found")
    if Path(path).is_dir():
        raise UserError(f"{path}: is a directory; expected {expected}")


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name when it has none): one line for the user."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
