"""The commands that take a recipe: ``run`` it, ``validate`` it, print the recipe format's ``schema``."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from compressctl.cli.common import CustomObjectsOpt, JsonOpt, QuietOpt, TrustOpt, VerboseOpt
from compressctl.cli.ui import UI, session


def run(
    recipe: Annotated[str, typer.Argument(help="Recipe YAML file.")],
    *,
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
    from compressctl.report.summary import artifact_rows, summary_columns

    # report.md's columns: the stored ratio first, the gzip (download) size beside the stored one.
    keys = summary_columns(record)
    columns = [(heading, "left" if key == "name" else "right") for key, heading in keys]
    rows = [[r[key] for key, _ in keys] for r in artifact_rows(record)]
    ui.table(f"compressctl: {record.name}", columns, rows)


def validate(
    recipe: Annotated[str, typer.Argument(help="Recipe YAML file.")],
    *,
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


def schema(
    *,
    report: Annotated[
        bool, typer.Option("--report", help="report.json's schema instead (docs/report.schema.json).")
    ] = False,
    json_: Annotated[bool, typer.Option("--json", help="Accepted for symmetry: the output is always JSON.")] = False,
):
    """Print the recipe format's JSON Schema (recipes/recipe.schema.json is this output), or report.json's."""
    from compressctl import api

    sys.stdout.write(json.dumps(api.report_schema() if report else api.schema(), indent=2) + "\n")
