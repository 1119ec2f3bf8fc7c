"""What every command module of the CLI shares: the Typer app (and its `--version`), the common options, two helpers.

``entry`` registers the command modules' commands on ``app``; the command modules import only this and ``ui``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from compressctl import __version__
from compressctl.core.errors import EXIT_USER_ERROR, UserError

app = typer.Typer(
    name="compressctl",
    help="Compress trained Keras models into measured TFLite artifacts for CPU, GPU and Edge TPU.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode=None,
)


def _version(value: bool):
    if value:
        typer.echo(f"compressctl {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
):
    """Compress trained Keras models into measured TFLite artifacts for CPU, GPU and Edge TPU.

    Exit codes: 0 ok, 1 a gate failed, 2 bad input, 3 a stage or conversion failed.
    """


JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout, nothing else there.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Only errors, warnings and the result.")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Let TensorFlow's own log lines through to stderr.")]
CustomObjectsOpt = Annotated[
    str | None,
    typer.Option(
        "--custom-objects", help="module:dict of custom layer classes (imports, so runs, that module's code)."
    ),
]
TrustOpt = Annotated[
    bool, typer.Option("--trust-model", help="Load models even when loading runs Python code stored in them.")
]


def write_text(path: str, text: str) -> None:
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UserError(f"{path}: cannot write ({exc.strerror or exc})") from None


def bad_flag(message: str, json_mode: bool = False):
    typer.echo(f"error: {message}", err=True)
    if json_mode:
        typer.echo(json.dumps({"exit_code": EXIT_USER_ERROR, "errors": [message]}, indent=2))
    raise typer.Exit(EXIT_USER_ERROR)
