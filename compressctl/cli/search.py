"""The commands that search: ``search`` recipe settings on Ray, and each layer's ``sensitivity``.

Thin like the rest of the CLI: parse, call compressctl.api, render, exit. Imports neither Ray nor
TensorFlow at module level.
"""

from __future__ import annotations

from typing import Annotated

import typer

from compressctl.cli.common import CustomObjectsOpt, JsonOpt, TrustOpt, VerboseOpt, bad_flag, write_text
from compressctl.cli.ui import UI, session


def _floats(text: str | None, name: str, json_: bool, integer: bool = False) -> list | None:
    if text is None:
        return None
    try:
        values = [int(v) if integer else float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        bad_flag(f"{name}: expected comma-separated {'integers' if integer else 'numbers'}, got {text!r}", json_)
    if not values:
        bad_flag(f"{name}: give at least one value", json_)
    return values


def search(
    recipe: Annotated[str, typer.Argument(help="Recipe YAML file with a `search:` section.")],
    *,
    out: Annotated[str, typer.Option("--out", "-o", help="Search directory (search.json, trials/NNNN/, best.yaml).")],
    model: Annotated[str | None, typer.Option("--model", "-m", help="Model path (overrides the recipe).")] = None,
    data: Annotated[str | None, typer.Option("--data", "-d", help="npz data set (overrides the recipe).")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", "-s", help="Override a recipe field.")] = None,
    trials: Annotated[int | None, typer.Option("--trials", "-n", min=1, help="Trials to run (search.trials).")] = None,
    time_budget: Annotated[
        float | None, typer.Option("--time-budget", min=1, help="Seconds after which no new trial starts.")
    ] = None,
    max_concurrent: Annotated[
        int | None, typer.Option("--max-concurrent", "-k", min=1, help="Trials at once (default: CPUs / 2).")
    ] = None,
    address: Annotated[
        str | None, typer.Option("--address", help="Ray cluster HEAD:PORT (default: RAY_ADDRESS, else embedded Ray).")
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the search in --out; finished trials are kept.")
    ] = False,
    trust_model: TrustOpt = False,
    custom_objects: CustomObjectsOpt = None,
    json_: JsonOpt = False,
    verbose: VerboseOpt = False,
):
    """Search recipe settings on Ray: trials in parallel, Pareto front of size and metric, best.yaml."""
    from compressctl import api
    from compressctl.search.engine import SearchRequest

    request = SearchRequest(
        recipe=recipe,
        out=out,
        overrides=set_ or [],
        model=model,
        data=data,
        trials=trials,
        time_budget=time_budget,
        max_concurrent=max_concurrent,
        address=address,
        resume=resume,
        trust_model=trust_model,
        custom_objects=custom_objects,
    )
    with session(json_, verbose=verbose) as ui:
        result = api.search(request, emit=ui.emit)
        _render_search(ui, result)
    raise typer.Exit(result.exit_code)


def _render_search(ui: UI, result) -> None:
    found = result.search
    if ui.json_mode:
        ui.print_json({"out": str(result.out), "exit_code": result.exit_code, **found})
    else:
        from compressctl.core.metrics import format_delta, format_value

        front, metric = set(found["pareto"]), found.get("metric") or "accuracy"
        best = (found["best"] or {}).get("trial")
        columns = [("trial", "left"), ("status", "left"), (found.get("metric") or "metric", "right"), ("Δ", "right"),
                   ("gzip", "right"), ("gzip ratio", "right"), ("p50 ms", "right"), ("front", "left")]  # fmt: skip
        rows = []
        for t in found["trials"]:
            measured = t["gzip_bytes"] is not None
            rows.append(
                [
                    t["id"] + (" best" if t["id"] == best else ""),
                    t["status"],
                    format_value(metric, t["metric_value"]) if measured else "",
                    format_delta(metric, t["metric_delta"]) if measured else "",
                    f"{t['gzip_bytes'] / 1024:,.1f} KiB" if measured else "",
                    f"{t['compression_ratio_gzip']:.2f}×" if measured else "",
                    f"{t['latency_ms_p50']:.3f}" if measured else "",
                    "*" if t["id"] in front else (t["error"] or "")[:60],
                ]
            )
        ui.table(f"compressctl search: {found['recipe']['path']}", columns, rows)
        ui.line(f"wrote {result.out}/ (search.json, report.html, trials/{', best.yaml' if best else ''})")
    if result.interrupted:
        ui.error(f"interrupted: {len(found['trials'])} finished trial(s) kept; continue with --resume")
    elif not found["best"]:
        ui.err.print("FAILED search: no trial passed every gate", style="bold red", markup=False)
    elif not ui.quiet:
        ui.err.print(f"best: trial {found['best']['trial']}; reproduce it with: compressctl run {result.out}/best.yaml",
                     markup=False)  # fmt: skip


def sensitivity(
    model: Annotated[str, typer.Argument(help="Model path: SavedModel dir, .h5 or .keras.")],
    *,
    data: Annotated[str, typer.Option("--data", "-d", help="npz data set; the metric is taken on its test split.")],
    out: Annotated[str, typer.Option("--out", "-o", help="Folder for sensitivity.json, .md and .png.")] = "sensitivity",
    levels: Annotated[
        str | None, typer.Option("--levels", help="Sparsity levels, comma-separated (default 0.5,…,0.98).")
    ] = None,
    clusters: Annotated[str | None, typer.Option("--clusters", help="Cluster counts, comma-separated.")] = None,
    trust_model: TrustOpt = False,
    custom_objects: CustomObjectsOpt = None,
    json_: JsonOpt = False,
    verbose: VerboseOpt = False,
):
    """Prune (and cluster) one layer at a time at several levels; table and plot of the metric."""
    from compressctl import api

    level_values = _floats(levels, "--levels", json_)
    if level_values and any(not 0 < v < 1 for v in level_values):
        bad_flag(f"--levels: each level must be in (0, 1), got {levels}", json_)
    cluster_values = _floats(clusters, "--clusters", json_, integer=True)
    if cluster_values and any(not 2 <= v <= 256 for v in cluster_values):
        bad_flag(f"--clusters: each count must be in [2, 256], got {clusters}", json_)
    with session(json_, verbose=verbose) as ui:
        result = api.sensitivity(
            model, data, out, level_values, cluster_values,
            trust_model=trust_model, custom_objects=custom_objects, emit=ui.emit,
        )  # fmt: skip
        if json_:
            ui.print_json(result)
            return
        from compressctl.search.sensitivity import table

        head, rows = table(result)
        columns = [(name, "left" if i < 2 else "right") for i, name in enumerate(head)]
        ui.table(
            f"{result['metric']} drop (points, positive: worse) per layer from the baseline "
            f"{result['baseline_metric']:.4f}, one layer changed at a time: pruned to each sparsity, shared into "
            "N values, N channels removed",
            columns,
            rows,
        )
        ui.line(f"wrote {out}/ (sensitivity.json, sensitivity.md, sensitivity.png)")


def write_search_starter(ui: UI, model: str, data: str, out: str, trust_model: bool) -> None:
    """`init --search`: the starter search recipe to ``out`` (or stdout for '-')."""
    from compressctl import api

    text, chosen = api.search_starter(model, data, "recipe.yaml" if out == "-" else out, trust_model, emit=ui.emit)
    if out == "-":
        if ui.json_mode:
            ui.print_json({"recipe": text, **chosen})
        else:
            ui.out_stream.write(text)
        return
    write_text(out, text)
    if ui.json_mode:
        ui.print_json({"out": out, **chosen})
        return
    ui.line(
        f"wrote {out} ({' → '.join(chosen['stages']) or 'no stages'}; {len(chosen['space'])} searched field(s)); "
        f"run it with: compressctl search {out} --out runs/search"
    )
    for note in chosen["notes"]:
        ui.info(f"note: {note}")
