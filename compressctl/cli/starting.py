"""The commands that start from a model: ``inspect`` it, list the bundled ``recipes``, ``init`` a starter recipe."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated

import typer

from compressctl.cli.common import CustomObjectsOpt, JsonOpt, TrustOpt, VerboseOpt, bad_flag, write_text
from compressctl.cli.ui import session
from compressctl.core.errors import UserError


def inspect(
    model: Annotated[str, typer.Argument(help="Model path: SavedModel dir, .h5 or .keras.")],
    *,
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


def _parts() -> dict[str, list[dict]]:
    """The stage and target types and data formats a recipe can name, plugins included, one line each."""
    from compressctl.datasets.specs import SPECS
    from compressctl.stages import STAGES
    from compressctl.targets import TARGETS

    def rows(classes: dict) -> list[dict]:
        return [
            {
                "type": name,
                "description": ((cls.__doc__ or "").strip().splitlines() or [""])[0],
                "module": cls.__module__,
            }
            for name, cls in classes.items()
        ]

    return {"stages": rows(STAGES), "targets": rows(TARGETS), "data_sources": rows(SPECS)}


def recipes(
    *,
    parts: Annotated[
        bool,
        typer.Option("--parts", help="List the stage types, target types and data formats (plugins included) instead."),
    ] = False,
    json_: JsonOpt = False,
):
    """List the bundled recipes with one line on each."""
    from compressctl.recipe.bundled import bundled_recipes, recipes_dir

    with session(json_, heavy=False) as ui:
        if parts:
            found = _parts()
            if json_:
                ui.print_json(found)
                return
            rows = [[kind, r["type"], r["description"], r["module"]] for kind, listed in found.items() for r in listed]
            columns = [("kind", "left"), ("type", "left"), ("description", "left"), ("module", "left")]
            ui.table("what a recipe can name", columns, rows)
            return
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


def init(
    model: Annotated[str, typer.Argument(help="Model path: SavedModel dir, .h5 or .keras.")],
    *,
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
