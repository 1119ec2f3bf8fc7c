"""The command line: parse, call the API, render, map errors to exit codes.

Nothing here imports TensorFlow or matplotlib: ``--help``, ``validate`` and ``schema`` answer at
once, and the commands that need either import it through the API when they run.

How output looks (JSON, plain or rich, quiet) is decided in compressctl.cli.ui.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from compressctl import __version__
from compressctl.cli.common import (
    CustomObjectsOpt,
    JsonOpt,
    QuietOpt,
    TrustOpt,
    VerboseOpt,
    app,
    bad_flag,
    write_text,
)
from compressctl.cli.ui import UI, in_ci, session  # noqa: F401 - in_ci is part of the CLI's interface
from compressctl.core.errors import EXIT_GATE_FAILED, UserError


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
    custom_objects: CustomObjectsOpt = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Reuse cached stage outputs whose inputs are unchanged.")
    ] = False,
    sign_key: Annotated[
        str | None, typer.Option("--sign-key", help="Ed25519 private key (PEM) to sign the run's manifest.json.")
    ] = None,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
):
    """Run a recipe: stages, conversion per target, evaluation, timing, report, gates."""
    from compressctl import api

    with session(json_, quiet, verbose) as ui:
        flags = {"model": model, "data": data, "out": out}
        api.validate(recipe, set_ or [], flags)
        options = {"trust_model": trust_model, "custom_objects": custom_objects, "resume": resume, "sign_key": sign_key}
        result = api.run(recipe, set_ or [], **flags, **options, emit=ui.emit)
        _render_run(ui, result)
    raise typer.Exit(result.exit_code)


def _render_run(ui: UI, result) -> None:
    from compressctl.run.gates import describe as gate_line

    record = result.record
    if ui.json_mode:
        ui.print_json({"out": str(result.out), "exit_code": result.exit_code, **record.to_dict()})
    else:
        _summary_table(ui, record)
        ui.line(f"wrote {result.out}/ (report.json, report.md, report.html, recipe.lock.yaml)")
    for failure in record.failed_targets:
        ui.error(f"target {failure.target} failed: {failure.error}")
    for gate in record.gates:
        if not gate.passed:
            ui.err.print(gate_line(gate), style="bold red", markup=False)
        elif not ui.quiet:
            ui.err.print(gate_line(gate), markup=False)


def _summary_table(ui: UI, record) -> None:
    from compressctl.report.summary import artifact_rows

    columns = [("artifact", "left")] + [
        (heading, "right")
        for heading in ("size", "gzip", "ratio", "gzip ratio", record.metric.name, "Δ", "p50 ms", "speed-up")
    ]
    keys = ("name", "size", "gzip", "ratio", "ratio_gzip", "metric", "delta", "p50", "speedup")
    rows = [[r[k] for k in keys] for r in artifact_rows(record)]
    ui.table(f"compressctl: {record.name}", columns, rows)


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
            ui.line(f"{recipe}: valid ({stages}; targets: {targets})")


@app.command()
def schema(
    report: Annotated[
        bool, typer.Option("--report", help="report.json's schema instead (docs/report.schema.json).")
    ] = False,
    json_: Annotated[bool, typer.Option("--json", help="Accepted for symmetry: the output is always JSON.")] = False,
):
    """Print the recipe format's JSON Schema (recipes/recipe.schema.json is this output), or report.json's."""
    from compressctl import api

    sys.stdout.write(json.dumps(api.report_schema() if report else api.schema(), indent=2) + "\n")


@app.command()
def inspect(
    model: Annotated[str, typer.Argument(help="Model path: SavedModel dir, .h5 or .keras.")],
    trust_model: TrustOpt = False,
    custom_objects: CustomObjectsOpt = None,
    json_: JsonOpt = False,
    verbose: VerboseOpt = False,
):
    """Show the model's layers, parameters and which techniques apply to each."""
    from compressctl import api

    with session(json_, verbose=verbose) as ui:
        info = api.inspect(model, trust_model=trust_model, custom_objects=custom_objects)
        if json_:
            ui.print_json(info)
            return
        shape = "×".join("?" if d is None else str(d) for d in info["input_shape"])
        title = f"{info['model']} ({info['format']}, input {shape}, {info.get('params', 0):,} params)"
        columns = [(c, "right" if c == "params" else "left") for c in ("layer", "class", "params", "role")]
        techniques = info["techniques"]
        columns += [(c, "left") for c in techniques]
        rows = []
        for row in info["layers"]:
            cells = ["yes" if row.get(k) is True else f"no: {row.get(k)}" for k in techniques]
            role = ", ".join(row.get("roles", []))  # what `role:` selectors in a recipe pick
            rows.append([row["name"], row["class"], f"{row['params']:,}", role, *cells])
        ui.table(title, columns, rows)
        for group in info.get("channel_groups", []):  # prune_channels removes a group's channels together
            state = "prunable" if group["prunable"] else f"kept whole: {group['reason']}"
            tied = f", tied by {', '.join(group['tied_by'])}" if group["tied_by"] else ""
            ui.line(
                f"channel group {group['group']}: {', '.join(group['layers'])} ({group['channels']}){tied}; {state}"
            )
        for note in info["notes"]:
            ui.line(f"note: {note}")


@app.command("eval")
def eval_(
    artifact: Annotated[str, typer.Argument(help=".tflite file.")],
    data: Annotated[str, typer.Option("--data", "-d", help="npz data set; its test split is used.")],
    metric: Annotated[str, typer.Option(help="accuracy, top_k_accuracy, auc, mae, mse or rmse.")] = "accuracy",
    top_k: Annotated[int, typer.Option(min=1, help="k for top_k_accuracy.")] = 5,
    logits: Annotated[bool, typer.Option(help="The model outputs logits (threshold 0 for one output).")] = False,
    layers: Annotated[
        bool, typer.Option("--layers", help="Also the layer-wise error against the float32 baseline, worst first.")
    ] = False,
    baseline: Annotated[
        str | None,
        typer.Option(help="Float32 .tflite for --layers (default: the run's baseline/model_float32.tflite)."),
    ] = None,
    json_: JsonOpt = False,
):
    """Measure an artifact's metric on the test split through the LiteRT interpreter."""
    from compressctl import api

    # The names live in compressctl.core.metrics (NumPy; imported here, not when the CLI starts).
    names = ("accuracy", "top_k_accuracy", "auc", "mae", "mse", "rmse")
    if metric not in names:
        bad_flag(f"--metric: must be one of {', '.join(names)}, got {metric!r}", json_)
    with session(json_) as ui:
        result = api.evaluate_artifact(artifact, data, metric, top_k, logits=logits, layers=layers, baseline=baseline)
        if json_:
            ui.print_json(result)
        else:
            ui.line(f"{artifact}: {result['metric']} {result['metric_value']:.4f} on {result['samples']} samples")
            if layers:  # issue 10: the layer-wise error table (litert/quant_debug.py)
                from compressctl.litert.quant_debug import format_table

                info = result["layers"]
                ui.line(f"layer-wise error against {info['baseline']} ({info['samples']} test samples), worst first:")
                for line in format_table(info["layer_errors"]):
                    ui.line(line)


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
        ui.line(
            f"{artifact}: p50 {lat['p50']:.4f} ms, p90 {lat['p90']:.4f} ms, p99 {lat['p99']:.4f} ms, "
            f"mean {lat['mean']:.4f} ms ({lat['runs']} runs, {result['measured_on']})"
        )
        if baseline:
            ui.line(f"speed-up over {baseline}: {result['speedup']:.2f}×")


REPORT_FORMATS = ("md", "html", "json")


@app.command()
def report(
    run_dir: Annotated[str, typer.Argument(help="A run directory (holding report.json).")],
    format_: Annotated[str, typer.Option("--format", "-f", help="md, html or json.")] = "md",
    out: Annotated[str | None, typer.Option("--out", "-o", help="Write to this file instead of stdout.")] = None,
    json_: Annotated[bool, typer.Option("--json", help="The same as --format json.")] = False,
):
    """Re-render a run's report from its report.json (runs nothing)."""
    from compressctl import api

    if json_:
        if format_ not in ("md", "json"):
            bad_flag(f"--json and --format {format_} ask for two formats; give one", json_)
        format_ = "json"
    if format_ not in REPORT_FORMATS:
        bad_flag(f"--format: must be md, html or json, got {format_!r}", json_)
    with session(json_, heavy=False) as ui:
        record = api.load_report(run_dir)
        if format_ == "json":
            text = record.to_json()
        elif format_ == "html":
            from compressctl.report import render_html

            text = render_html(record)
        else:
            from compressctl.report import render_markdown

            text = render_markdown(record)
        if out:
            write_text(out, text)
            ui.info(f"wrote {out}")
        elif json_:
            ui.print_json(record.to_dict())
        else:
            ui.out_stream.write(text)


@app.command()
def compare(
    run_dirs: Annotated[list[str], typer.Argument(help="Run directories (each holding report.json).")],
    by: Annotated[str, typer.Option("--by", help="Size axis of the Pareto front: size or gzip.")] = "size",
    html: Annotated[str | None, typer.Option("--html", help="Also write a self-contained HTML page here.")] = None,
    json_: JsonOpt = False,
):
    """One table of every artifact across runs, with the Pareto front of size against metric."""
    from compressctl import api
    from compressctl.report.compare import SIZE_KEYS, compare_reports, run_names
    from compressctl.report.summary import TABLE_COLUMNS, format_row

    if by not in SIZE_KEYS:
        bad_flag(f"--by: must be size or gzip, got {by!r}", json_)
    with session(json_, heavy=False) as ui:
        names = run_names(run_dirs)
        runs = [(name, d, api.load_report(d)) for name, d in zip(names, run_dirs, strict=True)]
        rows, notes = compare_reports(runs, SIZE_KEYS[by])
        for note in notes:
            ui.warn(note)
        if html:
            from compressctl.report.html import render_compare_html

            write_text(html, render_compare_html(rows, SIZE_KEYS[by], notes))
            ui.info(f"wrote {html}")
        if json_:
            ui.print_json(rows)
            return
        metric = rows[0]["metric"] if rows else "metric"
        columns = [(metric if key == "metric_value" else label, "left" if key in ("run", "target") else "right")
                   for key, label in TABLE_COLUMNS]  # fmt: skip
        columns.append(("Pareto", "left"))
        table_rows = [[*format_row(r).values(), "*" if r["pareto"] else ""] for r in rows]
        ui.table(f"compressctl compare (Pareto front by {by} and {metric}: *)", columns, table_rows)


@app.command()
def recipes(json_: JsonOpt = False):
    """List the bundled recipes with one line on each."""
    from compressctl.recipe.bundled import bundled_recipes, recipes_dir

    with session(json_, heavy=False) as ui:
        found = bundled_recipes()
        if not found:
            raise UserError("no bundled recipes found (looked in compressctl/recipes and the repository's recipes/)")
        if json_:
            ui.print_json(found)
            return
        cwd = Path.cwd()
        rows = []
        for r in found:
            path = Path(r["path"])
            with contextlib.suppress(ValueError):
                path = path.relative_to(cwd)
            rows.append([r["name"], r["description"], str(path)])
        ui.table(
            f"bundled recipes ({recipes_dir()})", [("name", "left"), ("description", "left"), ("file", "left")], rows
        )


@app.command()
def init(
    model: Annotated[str, typer.Argument(help="Model path: SavedModel dir, .h5 or .keras.")],
    out: Annotated[str, typer.Option("--out", "-o", help="Recipe file to write ('-': stdout).")] = "recipe.yaml",
    data: Annotated[str | None, typer.Option("--data", "-d", help="npz data set to put in the recipe.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing recipe file.")] = False,
    search: Annotated[
        bool, typer.Option("--search", help="Write a search recipe (ranges from layer sensitivity; needs --data).")
    ] = False,
    trust_model: TrustOpt = False,
    json_: JsonOpt = False,
    verbose: VerboseOpt = False,
):
    """Write a starter recipe for a model, with stages chosen from what `inspect` finds in it."""
    from compressctl import api
    from compressctl.recipe.starter import label_facts_file, plan, starter_recipe

    if out != "-" and Path(out).exists() and not force:
        bad_flag(f"{out}: exists; pass --force to replace it or choose another --out", json_)
    if search and data is None:
        bad_flag("--search: the layer sensitivity needs a data set; pass --data", json_)
    with session(json_, verbose=verbose) as ui:
        if data is not None and not Path(data).is_file():
            raise UserError(f"{data}: data file not found")
        if search:  # issue 11: starter search recipe (compressctl/cli/search.py)
            from compressctl.cli.search import write_search_starter

            write_search_starter(ui, model, data, out, trust_model)
            return
        info = api.inspect(model, trust_model=trust_model)
        # The metric gate of a regression model is sized from the train labels' spread (issue 18).
        labels = label_facts_file(data)
        text = starter_recipe(info, model, data, "recipe.yaml" if out == "-" else out, labels=labels)
        chosen = plan(info)
        if out == "-":
            if json_:
                ui.print_json({"recipe": text, "stages": [s["type"] for s in chosen["stages"]]})
            else:
                ui.out_stream.write(text)
            return
        write_text(out, text)
        if json_:
            ui.print_json({"out": out, "stages": [s["type"] for s in chosen["stages"]], "notes": chosen["notes"]})
            return
        stages = " → ".join(s["type"] for s in chosen["stages"]) or "no stages"
        ui.line(f"wrote {out} ({stages}; target cpu int8); check it with: compressctl validate {out}")
        for note in chosen["notes"]:
            ui.info(f"note: {note}")


@app.command()
def verify(
    run_dir: Annotated[str, typer.Argument(help="A run directory (holding manifest.json).")],
    public_key: Annotated[
        str | None, typer.Option("--public-key", help="Ed25519 public key (PEM): also check manifest.sig.")
    ] = None,
    json_: JsonOpt = False,
):
    """Check every file of a run against its manifest.json (and signature); exit 1 naming what differs."""
    from compressctl import api

    with session(json_, heavy=False) as ui:
        result = api.verify(run_dir, public_key)
        if json_:
            ui.print_json(result)
        else:
            for kind in ("differ", "missing", "added"):
                for name in result[kind]:
                    ui.err.print(f"{kind}: {name}", style="bold red", markup=False)
            if result["signature"] is not None:
                ui.line(f"signature: {result['signature']}")
            verdict = "ok" if result["ok"] else "FAILED"
            ui.line(f"{run_dir}: {verdict} ({result['files']} files in the manifest)")
    raise typer.Exit(0 if result["ok"] else EXIT_GATE_FAILED)


# `search` and `sensitivity` (issue 11) live in their own module, registered on the same app after these.
import compressctl.cli.search  # noqa: E402, F401


def main() -> None:
    try:
        app(prog_name="compressctl")
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    if "tensorflow" in sys.modules:
        # Every file is written and closed by now; TensorFlow's interpreter teardown would add most
        # of a second to each command, so leave without it.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
