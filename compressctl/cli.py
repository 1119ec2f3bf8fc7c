"""The command line: parse, call the API, render, map errors to exit codes.

Nothing here imports TensorFlow: ``--help``, ``validate`` and ``schema`` answer at once, and the
commands that need TensorFlow import it through the API when they run.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import traceback
from typing import Annotated

import typer

from compressctl import __version__
from compressctl.errors import EXIT_STAGE_FAILED, EXIT_USER_ERROR, CompressctlError

app = typer.Typer(
    name="compressctl",
    help="Compress trained Keras models into measured TFLite artifacts for CPU, GPU and Edge TPU.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode=None,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout, nothing else there.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Only errors, warnings and the result.")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Let TensorFlow's own log lines through to stderr.")]
TrustOpt = Annotated[
    bool, typer.Option("--trust-model", help="Load models even when loading runs Python code stored in them.")
]


class UI:
    """compressctl's own output: results on stdout, progress and messages on (the real) stderr."""

    def __init__(self, err_stream, json_mode: bool = False, quiet: bool = False):
        from rich.console import Console

        plain = bool(os.environ.get("CI")) or not err_stream.isatty()
        self.err = Console(
            file=err_stream, highlight=False, soft_wrap=True, force_terminal=None if not plain else False
        )
        # Piped output keeps whole rows: a file or CI log has no terminal width to respect.
        out_plain = bool(os.environ.get("CI")) or not sys.stdout.isatty()
        self.out = Console(file=sys.stdout, highlight=False, soft_wrap=True, width=160 if out_plain else None)
        self.json_mode = json_mode
        self.quiet = quiet
        self.live = not plain and not quiet
        self._progress = None
        self._task = None

    def info(self, message: str) -> None:
        if not self.quiet:
            self.err.print(message, markup=False)

    def warn(self, message: str) -> None:
        self.err.print(f"warning: {message}", style="yellow", markup=False)

    def error(self, message: str) -> None:
        for line in message.splitlines() or [""]:
            self.err.print(f"error: {line}", style="bold red", markup=False)

    def emit(self, event) -> None:
        kind = event.kind
        if kind == "step":
            self._stop_progress()
            self.info(f"• {event.message}")
        elif kind == "warn":
            self._stop_progress()
            self.warn(event.message)
        elif kind == "epoch":
            loss, metric = event.data.get("loss"), event.data.get("metric")
            self.info(f"  {event.message}: loss {loss:.4f}, accuracy {metric:.4f}")
        elif kind == "task_begin" and self.live:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._stop_progress()
            self._progress = Progress(
                TextColumn("  {task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=self.err,
                transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task(event.message, total=event.total)
        elif kind == "task_advance" and self._progress is not None:
            description = event.message
            if "loss" in event.data:
                description += f" loss {event.data['loss']:.4f}"
            self._progress.update(self._task, completed=event.completed, description=description)
        elif kind == "task_end":
            self._stop_progress()

    def _stop_progress(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def print_json(self, payload) -> None:
        sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")
        sys.stdout.flush()


@contextlib.contextmanager
def session(json_mode: bool = False, quiet: bool = False, verbose: bool = False, heavy: bool = True):
    """Run one command: TensorFlow's chatter to the log, errors to one line and an exit code."""
    from compressctl.logs import default_log_path, quiet_tensorflow

    log_path = default_log_path()
    redirect = quiet_tensorflow(log_path) if heavy and not verbose else contextlib.nullcontext(sys.stderr)
    with redirect as err_stream:
        ui = UI(err_stream, json_mode=json_mode, quiet=quiet)
        try:
            yield ui
        except CompressctlError as exc:
            ui._stop_progress()
            ui.error(str(exc))
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            ui._stop_progress()
            ui.error("interrupted; nothing was written")
            raise typer.Exit(130) from None
        except (typer.Exit, typer.Abort):
            raise
        except Exception as exc:  # noqa: BLE001 - a bug: one line for the user, the traceback to the log
            ui._stop_progress()
            with contextlib.suppress(OSError), open(log_path, "a") as log:
                traceback.print_exc(file=log)
            text = str(exc).splitlines()[0] if str(exc) else ""
            ui.error(f"internal error: {type(exc).__name__}: {text} (traceback in {log_path})")
            raise typer.Exit(EXIT_STAGE_FAILED) from None


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


@app.command()
def run(
    recipe: Annotated[str, typer.Argument(help="Recipe YAML file.")],
    model: Annotated[str | None, typer.Option("--model", "-m", help="Model path (overrides the recipe).")] = None,
    data: Annotated[str | None, typer.Option("--data", "-d", help="npz data set (overrides the recipe).")] = None,
    out: Annotated[str | None, typer.Option("--out", "-o", help="Run directory (overrides the recipe).")] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", "-s", help="Override a recipe field: stages.0.target_sparsity=0.8")
    ] = None,
    trust_model: TrustOpt = False,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
):
    """Run a recipe: stages, conversion per target, evaluation, timing, report, gates."""
    from compressctl import api

    with session(json_, quiet, verbose) as ui:
        api.validate(recipe, set_ or [], {"model": model, "data": data, "out": out})
        result = api.run(recipe, set_ or [], model=model, data=data, out=out, trust_model=trust_model, emit=ui.emit)
        _render_run(ui, result)
    raise typer.Exit(result.exit_code)


def _render_run(ui: UI, result) -> None:
    from compressctl.gates import describe

    report = result.report
    if ui.json_mode:
        ui.print_json({"out": str(result.out), "exit_code": result.exit_code, **report})
    else:
        _summary_table(ui, report)
        ui.out.print(f"wrote {result.out}/ (report.json, report.md, recipe.lock.yaml)", markup=False)
    for failure in report["failed_targets"]:
        ui.error(f"target {failure['target']} failed: {failure['error']}")
    for gate in report["gates"]:
        if not gate["passed"]:
            ui.err.print(describe(gate), style="bold red", markup=False)
        elif not ui.quiet:
            ui.err.print(describe(gate), markup=False)


def _summary_table(ui: UI, report: dict) -> None:
    from rich.table import Table

    from compressctl.report.markdown import artifact_rows

    table = Table(title=f"compressctl: {report.get('recipe', {}).get('name') or report['model']['path']}")
    for column, justify in (
        ("artifact", "left"),
        ("size", "right"),
        ("gzip", "right"),
        ("ratio", "right"),
        ("gzip ratio", "right"),
        (report["metric"], "right"),
        ("Δ", "right"),
        ("p50 ms", "right"),
        ("speed-up", "right"),
    ):
        table.add_column(column, justify=justify)
    for r in artifact_rows(report):
        table.add_row(
            r["name"],
            r["size"],
            r["gzip"],
            r["ratio"],
            r["ratio_gzip"],
            r["metric"],
            r["delta"],
            r["p50"],
            r["speedup"],
        )
    ui.out.print(table)


@app.command()
def validate(
    recipe: Annotated[str, typer.Argument(help="Recipe YAML file.")],
    set_: Annotated[list[str] | None, typer.Option("--set", "-s", help="Override a recipe field.")] = None,
    json_: JsonOpt = False,
):
    """Check a recipe without running it (does not load TensorFlow)."""
    from compressctl import api

    with session(json_, heavy=False) as ui:
        recipe_obj = api.validate(recipe, set_ or [])
        if json_:
            ui.print_json({"valid": True, "recipe": recipe_obj.model_dump(mode="json")})
        else:
            stages = " → ".join(s.type for s in recipe_obj.stages) or "no stages"
            targets = ", ".join(recipe_obj.target_names())
            ui.out.print(f"{recipe}: valid ({stages}; targets: {targets})", markup=False)


@app.command()
def schema():
    """Print the recipe format's JSON Schema."""
    from compressctl import api

    sys.stdout.write(json.dumps(api.schema(), indent=2) + "\n")


@app.command()
def inspect(
    model: Annotated[str, typer.Argument(help="Model path: SavedModel dir, .h5 or .keras.")],
    trust_model: TrustOpt = False,
    json_: JsonOpt = False,
    verbose: VerboseOpt = False,
):
    """Show the model's layers, parameters and which techniques apply to each."""
    from compressctl import api

    with session(json_, verbose=verbose) as ui:
        info = api.inspect(model, trust_model=trust_model)
        if json_:
            ui.print_json(info)
            return
        from rich.table import Table

        shape = "×".join("?" if d is None else str(d) for d in info["input_shape"])
        title = f"{info['model']} ({info['format']}, input {shape}, {info.get('params', 0):,} params)"
        table = Table(title=title)
        for column in ("layer", "class", "params", "prune", "cluster", "quantize"):
            table.add_column(column, justify="right" if column == "params" else "left")
        for row in info["layers"]:
            cells = ["yes" if row[k] is True else f"no: {row[k]}" for k in ("prune", "cluster", "quantize")]
            table.add_row(row["name"], row["class"], f"{row['params']:,}", *cells)
        ui.out.print(table)
        for note in info["notes"]:
            ui.out.print(f"note: {note}", markup=False)


@app.command("eval")
def eval_(
    artifact: Annotated[str, typer.Argument(help=".tflite file.")],
    data: Annotated[str, typer.Option("--data", "-d", help="npz data set; its test split is used.")],
    metric: Annotated[str, typer.Option(help="accuracy or top_k_accuracy.")] = "accuracy",
    top_k: Annotated[int, typer.Option(min=1, help="k for top_k_accuracy.")] = 5,
    logits: Annotated[bool, typer.Option(help="The model outputs logits (threshold 0 for one output).")] = False,
    json_: JsonOpt = False,
):
    """Measure an artifact's metric on the test split through the LiteRT interpreter."""
    from compressctl import api

    if metric not in ("accuracy", "top_k_accuracy"):
        _bad_flag(f"--metric: must be accuracy or top_k_accuracy, got {metric!r}")
    with session(json_) as ui:
        result = api.evaluate_artifact(artifact, data, metric, top_k, logits=logits)
        if json_:
            ui.print_json(result)
        else:
            ui.out.print(f"{artifact}: {result['metric']} {result['metric_value']:.4f} on {result['samples']} samples")


@app.command("bench")
def bench_(
    artifact: Annotated[str, typer.Argument(help=".tflite file.")],
    runs: Annotated[int, typer.Option(min=1, max=1_000_000, help="Timed invocations.")] = 200,
    threads: Annotated[int, typer.Option(min=1, max=256, help="Interpreter threads.")] = 1,
    warmup: Annotated[int, typer.Option(min=0, max=100_000, help="Untimed invocations first.")] = 20,
    baseline: Annotated[str | None, typer.Option(help="A second .tflite timed alternately, for a speed-up.")] = None,
    json_: JsonOpt = False,
):
    """Time an artifact in the LiteRT interpreter (p50/p90/p99/mean, batch 1)."""
    from compressctl import api

    with session(json_) as ui:
        result = api.bench_artifact(artifact, runs=runs, threads=threads, warmup=warmup, baseline=baseline)
        if json_:
            ui.print_json(result)
            return
        lat = result["latency_ms"]
        ui.out.print(
            f"{artifact}: p50 {lat['p50']:.4f} ms, p90 {lat['p90']:.4f} ms, p99 {lat['p99']:.4f} ms, "
            f"mean {lat['mean']:.4f} ms ({lat['runs']} runs, {result['measured_on']})",
            markup=False,
        )
        if baseline:
            ui.out.print(f"speed-up over {baseline}: {result['speedup']:.2f}×", markup=False)


@app.command()
def report(
    run_dir: Annotated[str, typer.Argument(help="A run directory (holding report.json).")],
    format_: Annotated[str, typer.Option("--format", "-f", help="md or json.")] = "md",
):
    """Re-render a run's report from its report.json (runs nothing)."""
    from compressctl import api
    from compressctl.report import render_markdown

    if format_ not in ("md", "json"):
        _bad_flag(f"--format: must be md or json, got {format_!r}")
    with session(heavy=False):
        data = api.load_report(run_dir)
        sys.stdout.write(json.dumps(data, indent=2) + "\n" if format_ == "json" else render_markdown(data))


def _bad_flag(message: str):
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_USER_ERROR)


def main() -> None:
    app(prog_name="compressctl")


if __name__ == "__main__":
    main()
