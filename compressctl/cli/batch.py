"""The ``batch`` command: every model of a fleet file with every recipe, each run a Ray task.

Thin like the rest of the CLI: parse, call compressctl.api, render, exit. Imports neither Ray nor
TensorFlow at module level.
"""

from __future__ import annotations

from typing import Annotated

import typer

from compressctl.cli.common import CustomObjectsOpt, JsonOpt, TrustOpt, VerboseOpt
from compressctl.cli.ui import UI, session


def batch(
    fleet: Annotated[str, typer.Argument(help="Fleet YAML file: `models:` (name, model, data) and `recipes:`.")],
    *,
    out: Annotated[str, typer.Option("--out", "-o", help="Batch directory (batch.json, report.html, runs/).")],
    address: Annotated[
        str | None, typer.Option("--address", help="Ray cluster HEAD:PORT (default: RAY_ADDRESS, else embedded Ray).")
    ] = None,
    max_concurrent: Annotated[
        int | None, typer.Option("--max-concurrent", "-k", min=1, help="Runs at once (default: CPUs / 2).")
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the batch in --out; finished runs are kept.")
    ] = False,
    trust_model: TrustOpt = False,
    custom_objects: CustomObjectsOpt = None,
    json_: JsonOpt = False,
    verbose: VerboseOpt = False,
):
    """Compress a fleet: every model × recipe as one run on Ray; one table, each model's best artifact.

    Exit codes: 0 every run met its gates, 1 some missed, 2 bad fleet file, 3 some runs failed.
    """
    from compressctl import api
    from compressctl.search.batch import BatchRequest

    request = BatchRequest(
        fleet=fleet,
        out=out,
        address=address,
        max_concurrent=max_concurrent,
        resume=resume,
        trust_model=trust_model,
        custom_objects=custom_objects,
    )
    with session(json_, verbose=verbose) as ui:
        result = api.batch(request, emit=ui.emit)
        _render(ui, result)
        if result.interrupted:
            done = sum(r["status"] != "pending" for r in result.batch["runs"])
            ui.error(f"interrupted: {done} finished run(s) kept; continue with --resume")
    raise typer.Exit(result.exit_code)


def _render(ui: UI, result) -> None:
    found = result.batch
    if ui.json_mode:
        ui.print_json({"out": str(result.out), **found, "exit_code": result.exit_code})
        return
    from pathlib import Path

    columns = [("model", "left"), ("recipe", "left"), ("status", "left"), ("gzip ratio", "right"), ("ratio", "right"),
               ("Δ metric", "right"), ("node", "left"), ("s", "right"), ("error", "left")]  # fmt: skip
    rows = []
    for r in found["runs"]:
        measured = r["compression_ratio"] is not None
        rows.append(
            [
                r["model"],
                Path(r["recipe"]).stem,
                r["status"],
                f"{r['compression_ratio_gzip']:.2f}×" if measured else "",
                f"{r['compression_ratio']:.2f}×" if measured else "",
                f"{r['metric_delta'] * 100:+.2f} pt" if measured else "",
                r["node"] or "",
                f"{r['seconds']:.1f}" if r["seconds"] is not None else "",
                (r["error"] or "")[:70],
            ]
        )
    ui.table(f"compressctl batch: {found['fleet']['path']}", columns, rows)
    for model, best in found["best"].items():
        if best is None:
            ui.line(f"{model}: no run met every gate")
        else:
            ui.line(f"{model}: best {best['run_dir']}/{best['path']} ({best['compression_ratio_gzip']:.2f}× gzip)")
    ui.line(f"wrote {result.out}/ (batch.json, report.html, runs/)")
