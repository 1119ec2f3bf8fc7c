"""Recipe checks that need the model: run after it is loaded and before any stage trains.

A stage class may define ``check(model) -> [(field path, message)]``; the first problem becomes
one ``file:line:col stages[i].field: message`` error (exit 2). Checks run against the loaded
model up to the first stage that rebuilds the layers (after it, the stage checks itself when it
runs, on the model it is given).
"""

from __future__ import annotations

from compressctl.errors import UserError
from compressctl.recipe_errors import _where, render_loc

# Stage types after which layer names or widths may differ from the loaded model's.
REBUILDS = ("lowrank", "distill", "prune_channels")


def check_stages(recipe, model, recipe_path: str = "", source=None) -> None:
    from compressctl.stages import build

    if model is None:
        return
    for index, params in enumerate(recipe.stages):
        check = getattr(build(params), "check", None)
        problems = check(model) if check is not None else []
        if problems:
            field, message = problems[0]
            loc = ("stages", index, *field)
            # A per-layer key points at the key itself; any other field at its value.
            where = _where(source, loc, want_key=len(field) > 1) if source is not None else f"{recipe_path}:"
            raise UserError(f"{where} {render_loc(loc)}: {message}")
        if params.type in REBUILDS:
            return
