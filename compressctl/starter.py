"""``compressctl init``: a starter recipe chosen from what ``inspect`` found in a model.

Pure: it reads the inspection dict (``compressctl.inspection.inspect_model``), never a model, and
validates the YAML it produces against the recipe schema before anyone writes it.

The choices, in the spirit of Deep Compression: prune every layer TFMOT can prune to 50 %, and the
big Dense layers (those holding at least a tenth of the parameters) to 90 % (80 % for the output
layer), because fully connected layers carry most of the redundancy; cluster to 16 shared values,
keeping the zeros; quantization-aware training preserving both when any layer supports QAT; a
full-int8 CPU target; gates a first run should meet.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from compressctl.bundled import SCHEMA_COMMENT, schema_file
from compressctl.recipe import Recipe, Source, parse_yaml, validate

BIG_DENSE_SHARE = 0.10
BIG_DENSE_SPARSITY = 0.9
OUTPUT_DENSE_SPARSITY = 0.8
DEFAULT_SPARSITY = 0.5


def _name_for(model: str) -> str:
    stem = Path(model.rstrip("/\\")).name
    stem = stem.rsplit(".", 1)[0] if stem.endswith((".h5", ".keras")) else stem
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).strip("-") or "model"


def _yaml_str(value: str) -> str:
    """A YAML scalar that reads back as this exact string: plain when that is safe, else double-quoted."""
    import json

    import yaml

    if re.fullmatch(r"[A-Za-z_][\w./-]*", value) and yaml.safe_load(value) == value:
        return value
    return json.dumps(value, ensure_ascii=False)


def schema_reference(recipe_path: Path) -> str:
    """The `$schema` value for a recipe written at ``recipe_path``: the bundled schema, relative when possible."""
    schema = schema_file()
    if schema is None:
        return "recipe.schema.json"
    try:
        return Path(os.path.relpath(schema, recipe_path.resolve().parent)).as_posix()
    except ValueError:  # another drive on Windows
        return schema.as_posix()


def plan(info: dict) -> dict:
    """What the recipe will do and why: stages (as dicts), per-layer choices, notes."""
    layers = info.get("layers") or []
    total = info.get("params") or sum(row["params"] for row in layers) or 1
    notes = []
    stages: list[dict] = []
    if not info.get("trainable", False) or not layers:
        notes.append("the model cannot be fine-tuned here (no Keras layers): post-training int8 only")
        return {"stages": stages, "notes": notes, "big_dense": []}
    prunable = [row for row in layers if row.get("prune") is True]
    last = layers[-1]["name"]
    big_dense = [row for row in prunable if row["class"] == "Dense" and row["params"] >= BIG_DENSE_SHARE * total]
    if prunable:
        per_layer = {
            re.escape(row["name"]): OUTPUT_DENSE_SPARSITY if row["name"] == last else BIG_DENSE_SPARSITY
            for row in big_dense
        }
        prune = {"type": "prune", "target_sparsity": DEFAULT_SPARSITY}
        if per_layer:
            prune["layers"] = per_layer
        prune.update({"schedule": "polynomial", "epochs": 6, "learning_rate": 0.0005})
        stages.append(prune)
    else:
        notes.append("no layer TFMOT can prune")
    if any(row.get("cluster") is True for row in layers):
        stages.append({"type": "cluster", "number_of_clusters": 16, "preserve_sparsity": bool(prunable), "epochs": 3})
    else:
        notes.append("no layer TFMOT can cluster")
    if any(row.get("quantize") is True for row in layers):
        preserve = [kind for kind, stage in (("sparsity", "prune"), ("clusters", "cluster")) if _has(stages, stage)]
        stages.append({"type": "quantize", "preserve": preserve, "epochs": 2})
        unsupported = [row["name"] for row in layers if row.get("quantize") is not True and row["params"]]
        if unsupported:
            notes.append(
                f"QAT leaves {', '.join(unsupported)} in float (no QAT support); the int8 target still converts them"
            )
    else:
        notes.append("no layer supports quantization-aware training: post-training int8 only")
    return {"stages": stages, "notes": notes, "big_dense": [row["name"] for row in big_dense]}


def _has(stages: list[dict], kind: str) -> bool:
    return any(s["type"] == kind for s in stages)


def _flow(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_yaml_str(k)}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, str):
        return _yaml_str(value)
    return repr(value)


def starter_recipe(info: dict, model: str, data: str | None = None, recipe_path: str | Path = "recipe.yaml") -> str:
    """The YAML text of a starter recipe for the inspected model, validated."""
    recipe_path = Path(recipe_path)
    chosen = plan(info)
    name = f"{_name_for(model)}-compressed"
    params = info.get("params") or 0
    stage_kinds = " → ".join(s["type"] for s in chosen["stages"]) or "no fine-tuning"
    lines = [
        f"{SCHEMA_COMMENT}{schema_reference(recipe_path)}",
        f"# Starter recipe written by `compressctl init` for {model} ({params:,} parameters).",
        "# Check it with `compressctl validate`, then tune: docs/recipes.md lists every field.",
        f"name: {_yaml_str(name)}",
        f"description: {_yaml_str(f'{stage_kinds}, then full-int8 TFLite for CPU (starter recipe).')}",
        f"model: {_yaml_str(model)}",
    ]
    if data:
        lines.append(f"data: {_yaml_str(data)}")
    else:
        lines.append("# data: path/to/data.npz      # x_train, y_train, x_test, y_test; or pass --data")
    lines += [f"out: {_yaml_str(f'runs/{name}')}", "seed: 0"]
    for note in chosen["notes"]:
        lines.append(f"# note: {note}")
    if chosen["stages"]:
        lines.append("stages:")
        for stage in chosen["stages"]:
            lines.append(f"  - type: {stage['type']}")
            for key, value in stage.items():
                if key == "type":
                    continue
                comment = ""
                if key == "layers":
                    comment = "  # big Dense layers hold most of the redundancy"
                lines.append(f"    {key}: {_flow(value)}{comment}")
    small = params < 100_000
    lines += [
        "targets:",
        "  - type: cpu",
        "    mode: int8                 # weights and activations int8, calibrated on train samples",
        "    calibration_samples: 200",
        "bench: {runs: 200, warmup: 20, rounds: 5, threads: 1}",
        "gates:",
        "  max_metric_drop: 0.01        # at most one point of the metric lost",
        # int8 weights give close to 4x on a model whose file is mostly weights; small models carry
        # proportionally more graph structure in the file.
        f"  min_compression_ratio: {2.0 if small else 3.5}",
    ]
    text = "\n".join(lines) + "\n"
    check_starter(text, str(recipe_path))
    return text


def check_starter(text: str, path: str) -> Recipe:
    """Validate generated recipe text exactly as `compressctl validate` would read it."""
    data, node = parse_yaml(text, path)
    return validate(data, Source(path=path, node=node, text=text))
