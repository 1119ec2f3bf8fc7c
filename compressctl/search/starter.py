"""``compressctl init --search``: a starter search recipe from ``inspect`` and the layer sensitivity.

The recipe is the starter recipe of ``compressctl init`` (prune → cluster → QAT → int8, chosen
from what inspect finds) plus a ``search:`` section: one sparsity range per prunable layer, from
0.3 up to the first level whose one-shot pruning of that layer alone lost more than two points
(fine-tuning recovers part of it), the number of clusters, and the TPE sampler. It is validated,
search space included, before it is written.
"""

from __future__ import annotations

import re
from pathlib import Path

from compressctl.core.events import Emit, ignore
from compressctl.recipe.schema import Source, parse_yaml, validate
from compressctl.recipe.starter import label_facts_file, plan, starter_recipe
from compressctl.search.sensitivity import layer_bound
from compressctl.search.space import check_space

LOW = 0.3
MAX_DROP = 0.02
_SAFE = re.compile(r"[A-Za-z0-9_-]+")


def search_section(info: dict, sensitivity: dict) -> tuple[list[str], list[str]]:
    """YAML lines of the search: section and notes on what was left out."""
    chosen = plan(info)
    kinds = [s["type"] for s in chosen["stages"]]
    prunable = {row["name"] for row in info.get("layers", []) if row.get("prune") is True}
    lines = ["search:", "  objective: gzip_bytes          # smallest gzip artifact that passes every gate", "  space:"]
    notes = []
    if "prune" in kinds:
        index = kinds.index("prune")
        for row in sensitivity["layers"]:
            bound = layer_bound(row, MAX_DROP)
            if row["name"] not in prunable or bound is None:
                continue
            if not _SAFE.fullmatch(row["name"]):
                notes.append(f"layer {row['name']!r}: its name cannot be a --set path segment; not searched")
                continue
            drop = row["prune"][f"{bound:g}"]["drop"]
            high = round(min(max(bound, LOW + 0.05), 0.995), 4)
            lines.append(
                f"    stages.{index}.layers.{row['name']}: {{sparsity: [{LOW}, {high}]}}"
                f"  # this layer alone at {bound:g}: {100 * drop:.1f} pt lost"
            )
    if "cluster" in kinds:
        lines.append(f"    stages.{kinds.index('cluster')}.number_of_clusters: {{choice: [8, 16, 32]}}")
    if len(lines) == 3:
        lines.append("    targets.0.calibration_samples: {choice: [100, 200, 400]}")
        notes.append("nothing to prune or cluster: the search varies the int8 calibration only")
    lines += ["  sampler: tpe", "  seed: 0", "  trials: 24"]
    return lines, notes


def search_starter(
    model: str, data: str, recipe_path: str | Path, trust_model: bool = False, emit: Emit = ignore
) -> tuple[str, dict]:
    from compressctl.recipe.inspection import inspect_model
    from compressctl.search.sensitivity import analyse

    info = inspect_model(model, trust_model=trust_model)
    sensitivity = analyse(model, data, trust_model=trust_model, emit=emit)
    base = starter_recipe(info, model, data, recipe_path, labels=label_facts_file(data))
    lines, notes = search_section(info, sensitivity)
    header = "# `compressctl search` varies the fields under search.space (per-layer ranges from the sensitivity).\n"
    text = base + header + "\n".join(lines) + "\n"
    parsed, node = parse_yaml(text, str(recipe_path))
    source = Source(path=str(recipe_path), node=node, text=text)
    recipe = validate(parsed, source)
    check_space(parsed, source, recipe.search.space)
    return text, {"stages": [s.type for s in recipe.stages], "space": list(recipe.search.space), "notes": notes}
