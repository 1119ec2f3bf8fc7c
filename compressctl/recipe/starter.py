"""``compressctl init``: a starter recipe chosen from what ``inspect`` found in a model.

Pure: it reads the inspection dict (``compressctl.recipe.inspection.inspect_model``), never a model, and
validates the YAML it produces against the recipe schema before anyone writes it.

The choices, in the spirit of Deep Compression: prune every layer TFMOT can prune to 50 % (30 % for a
layer of under 1,024 weights, which has little to spare), and the big Dense layers (those holding at
least a tenth of the parameters, and 4,096 or more) to 90 % (80 % for the output layer), because
fully connected layers carry most of the redundancy; cluster to 16 shared values, keeping the zeros;
quantization-aware training preserving both when any layer supports QAT (its activation ranges
start from the model's measured ones, so a regression output of any range keeps it); a full-int8
CPU target; gates a first run should meet (issue 18), each derived in a comment:

- ``max_metric_drop`` keeps the user's budget: one point for accuracy and auc; for a regression
  model (one linear output, float labels) the task is scored in mae and may rise by a twentieth
  of the train labels' standard deviation, in the labels' unit (the labels come from ``--data``).
- ``min_compression_ratio`` is what full int8 implies for this model's stored file (``stored_sizes``:
  int8 kernels with per-channel scales and int32 biases against float32, folded BatchNormalization,
  weights of other layers left float, the flatbuffer's fixed and per-op structure, which dominates
  a small model), less a safety margin. Pruning and clustering do not shrink the stored file (dense
  TFLite tensors); they show in the gzip size, which gets no gate: how far it shrinks depends on the
  training.
- no ``min_speedup``: int8's speed-up depends on the host's int8 kernels, and small models are timed
  in microseconds.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

from compressctl.recipe.bundled import SCHEMA_COMMENT, schema_file
from compressctl.recipe.schema import Recipe, Source, parse_yaml, validate

BIG_DENSE_SHARE = 0.10
BIG_DENSE_SPARSITY = 0.9
OUTPUT_DENSE_SPARSITY = 0.8
DEFAULT_SPARSITY = 0.5
# Deep Compression's 90 % is for big fully connected layers (its have 10^5-10^6 weights); a Dense layer of a
# few thousand has little to spare, and a layer of under a thousand weights (a few per unit) less still:
# 90 % on a 30-32-16-1 tabular MLP lost 2.6 points, 50 % on a 10-32-1 regression MLP raised mae by a
# sixth of the labels' standard deviation (issue 18).
BIG_DENSE_MIN_PARAMS = 4_096
SMALL_LAYER_PARAMS = 1_024
SMALL_LAYER_SPARSITY = 0.3

# Gates (issue 18).
ACCURACY_BUDGET = 0.01  # one point of accuracy (or auc)
REGRESSION_BUDGET_SHARE = 0.05  # mae may rise by this share of the train labels' standard deviation
SIZE_MARGIN = 0.9  # the ratio gate is this share of the estimated ratio, rounded down to 0.05
# Layers whose weights full int8 stores as int8 kernels (per output channel scales) and int32 biases.
KERNEL_CLASSES = {
    "Dense", "Conv1D", "Conv2D", "Conv3D", "DepthwiseConv2D", "DepthwiseConv1D", "SeparableConv1D",
    "SeparableConv2D", "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose",
}  # fmt: skip
FOLDED_CLASSES = {"BatchNormalization"}  # folded into the convolution before it: no tensor of its own
# Layers that become no op of their own (fused into the op before them, or dropped at inference).
NO_OP_CLASSES = FOLDED_CLASSES | {
    "ReLU", "Activation", "Dropout", "SpatialDropout1D", "SpatialDropout2D", "GaussianNoise", "GaussianDropout",
    "AlphaDropout", "InputLayer",
}  # fmt: skip
# Bytes of the TFLite flatbuffer besides the weights, measured on TF 2.x conversions of ten models from
# 385 to 431k parameters (sample_models, tests/conftest.py, tests/test_init_e2e.py, MobileNetV2-0.35 at
# 32×32), both taken at the high end so that the estimate errs towards 1×: a float32 file carries
# 1.1-3.3 kB on models of 2-7 ops (6.9 kB on MobileNetV2's 68), an int8 file 0.1-1 kB more (7.9 kB more).
FIXED_BYTES = 1400
OP_BYTES = 300
INT8_FIXED_BYTES = 300  # the quantize and dequantize ops at the float input and output
INT8_OP_BYTES = 150  # each activation's scale and zero point
INT8_CHANNEL_BYTES = 24  # per output channel: a float32 scale and an int64 zero point for kernel and bias


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
    big_dense = [
        row
        for row in prunable
        if row["class"] == "Dense" and row["params"] >= max(BIG_DENSE_SHARE * total, BIG_DENSE_MIN_PARAMS)
    ]
    if prunable:
        sparsity, big = {}, {row["name"] for row in big_dense}
        for row in prunable:
            if row["name"] in big:
                sparsity[row["name"]] = OUTPUT_DENSE_SPARSITY if row["name"] == last else BIG_DENSE_SPARSITY
            elif row["params"] < SMALL_LAYER_PARAMS:
                sparsity[row["name"]] = SMALL_LAYER_SPARSITY
            else:
                sparsity[row["name"]] = DEFAULT_SPARSITY
        # The level most layers get is the default (a MobileNet is mostly small layers); the rest are listed.
        small = sum(value == SMALL_LAYER_SPARSITY for value in sparsity.values())
        levels = set(sparsity.values())
        default = levels.pop() if len(levels) == 1 else DEFAULT_SPARSITY
        if 2 * small > len(sparsity):
            default = SMALL_LAYER_SPARSITY
        prune = {"type": "prune", "target_sparsity": default}
        per_layer = {re.escape(name): value for name, value in sparsity.items() if value != default}
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


def stored_sizes(info: dict) -> dict | None:
    """Estimated bytes of the model's float32 TFLite file and of its full-int8 one, and their ratio.

    From each layer's weight shapes (``inspect``): kernels of KERNEL_CLASSES are int8 in the int8 file,
    with a bias of one int32 per output channel (BatchNormalization folds into it) and per-channel
    quantization parameters; the weights of every other layer are counted as float in both files (a
    GRU, an Embedding, a Normalization's statistics); then the structure of the flatbuffer. None when
    the inspection holds no weight shapes (an inference-only SavedModel).
    """
    layers = info.get("layers") or []
    if not layers or any("weights" not in row for row in layers):
        return None
    kernel = channels = other = ops = 0
    for row in layers:
        cls, weights = row["class"], row["weights"]
        ops += cls not in NO_OP_CLASSES
        kernels = {name: shape for name, shape in weights.items() if "kernel" in name and "recurrent" not in name}
        if cls in KERNEL_CLASSES and kernels:
            for name, shape in kernels.items():
                kernel += math.prod(shape)
                # a depthwise kernel's outputs: input channels × depth multiplier; else its last axis
                channels += shape[-2] * shape[-1] if name.startswith("depthwise") else shape[-1]
            ops += len(kernels) - 1  # a separable convolution is two ops
        elif cls not in FOLDED_CLASSES:
            other += sum(math.prod(shape) for name, shape in weights.items() if name != "count")
    structure = FIXED_BYTES + OP_BYTES * ops
    float32 = 4 * (kernel + channels + other) + structure
    int8 = kernel + (4 + INT8_CHANNEL_BYTES) * channels + 4 * other + structure
    int8 += INT8_FIXED_BYTES + INT8_OP_BYTES * ops
    return {
        "float32": float32,
        "int8": int8,
        "ratio": float32 / int8,
        "kernel": kernel,
        "channels": channels,
        "other": other,
        "ops": ops,
        "structure": structure,
    }


def label_facts(labels) -> dict:
    """What the metric gate needs of the train labels (``y_train``): whether they are floats other than 0/1, spread."""
    import numpy as np

    y = np.asarray(labels)
    floats = bool(np.issubdtype(y.dtype, np.floating)) and not bool(np.all(np.isin(y, (0, 1))))
    if not y.size:
        return {"float": floats, "std": 0.0, "min": 0.0, "max": 0.0, "count": 0}
    return {
        "float": floats,
        "std": float(np.std(y)),
        "min": float(np.min(y)),
        "max": float(np.max(y)),
        "count": int(y.size),
    }


def label_facts_file(path: str | Path | None) -> dict | None:
    """``label_facts`` of an npz's ``y_train``; None when there is no such file or array."""
    if path is None:
        return None
    import numpy as np

    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError):  # missing, unreadable, or not numpy's
        return None
    if not hasattr(data, "files"):  # a lone .npy array
        return None
    with data:
        return label_facts(data["y_train"]) if "y_train" in data.files else None


def _round_down(value: float, step: float) -> float:
    return round(math.floor(value / step + 1e-9) * step, 6)


def _significant(value: float, digits: int = 2) -> float:
    """``value`` rounded down to ``digits`` significant digits (a budget never grows by rounding)."""
    if value <= 0:
        return 0.0
    scale = 10 ** (math.floor(math.log10(value)) - digits + 1)
    return float(f"{math.floor(value / scale + 1e-9) * scale:.12g}")


def metric_gate(info: dict, labels: dict | None) -> dict:
    """The metric gate: ``task`` (a metric to write, or None), ``value`` (None: no gate) and ``comments``."""
    linear_single = _linear_single(info)
    if linear_single and labels is not None and labels["float"]:
        budget = _significant(REGRESSION_BUDGET_SHARE * labels["std"])
        if budget > 0:
            return {
                "task": "mae",
                "value": budget,
                "comments": [
                    f"mae may rise by {REGRESSION_BUDGET_SHARE:g} × the train labels' standard deviation "
                    f"({labels['std']:.4g}), in the labels' unit"
                ],
            }
        return {
            "task": "mae",
            "value": None,
            "comments": ["max_metric_drop: not set, the train labels do not vary; set a budget in their unit"],
        }
    if linear_single and labels is None:
        return {
            "task": None,
            "value": None,
            "comments": [
                "max_metric_drop: not set. One linear output: a regression model (budget in the labels' unit) or a",
                "binary classifier on logits (0.01 = one point); pass --data so that init tells them apart",
            ],
        }
    return {"task": None, "value": ACCURACY_BUDGET, "comments": ["at most one point of accuracy lost"]}


def size_gate(info: dict) -> dict:
    """The stored-size gate: ``value`` (None: no gate) and the ``comments`` saying how it was derived."""
    sizes = stored_sizes(info)
    if sizes is None:
        return {
            "value": None,
            "comments": [
                "min_compression_ratio: not set, inspect shows no weights to size the int8 file from; set it",
                "after a first run (its report's compression_ratio)",
            ],
        }
    gate = _round_down(SIZE_MARGIN * sizes["ratio"], 0.05)
    derivation = [
        f"full int8 stores {sizes['kernel']:,} kernel weights in 1 byte instead of 4, {sizes['channels']:,} biases "
        f"in 4 (int32)",
        f"with {INT8_CHANNEL_BYTES} bytes of scales per output channel, {sizes['other']:,} other weights in 4 "
        f"(left float); both files",
        f"carry about {sizes['structure']:,} bytes of structure ({sizes['ops']} ops): estimated "
        f"{sizes['float32']:,} → {sizes['int8']:,} bytes, {sizes['ratio']:.2f}×.",
        "Pruning and clustering shrink the gzip size, not the stored file; ops selective int8 keeps in float do not.",
    ]
    if gate < 1.0:
        return {
            "value": None,
            "comments": [
                *derivation,
                f"min_compression_ratio: not set, {SIZE_MARGIN:g} × {sizes['ratio']:.2f}× is under 1×: int8 cannot "
                "reliably shrink a file",
                "that is mostly fixed structure, not weights",
            ],
        }
    margin = f"Gate: {SIZE_MARGIN:g} × the estimate, rounded down to 0.05 (QAT and the converter vary the file)."
    return {"value": gate, "comments": [*derivation, margin]}


def _linear_single(info: dict) -> bool:
    return info.get("output_units") == 1 and info.get("output_activation") in (None, "linear")


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


def starter_recipe(
    info: dict,
    model: str,
    data: str | None = None,
    recipe_path: str | Path = "recipe.yaml",
    labels: dict | None = None,
) -> str:
    """The YAML text of a starter recipe for the inspected model, validated.

    ``labels``: ``label_facts`` of the train labels (the CLI reads them from ``--data``), for the metric gate.
    """
    recipe_path = Path(recipe_path)
    metric = metric_gate(info, labels)
    size = size_gate(info)
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
    if metric["task"]:
        lines.append(f"task: {{metric: {metric['task']}}}          # one linear output, float labels: regression")
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
                    comment = "  # big Dense layers hold most of the redundancy; small layers little"
                lines.append(f"    {key}: {_flow(value)}{comment}")
    lines += [
        "targets:",
        "  - type: cpu",
        "    mode: int8                 # weights and activations int8, calibrated on train samples",
        "    calibration_samples: 200",
        "bench: {runs: 200, warmup: 20, rounds: 5, threads: 1}",
    ]
    lines += _gate_lines(metric, size)
    text = "\n".join(lines) + "\n"
    check_starter(text, str(recipe_path))
    return text


def _gate_lines(metric: dict, size: dict) -> list[str]:
    """``gates:`` with each gate's derivation in comments above it; a gate not set is a comment saying why."""
    lines = ["gates:"]
    for key, gate in (("max_metric_drop", metric), ("min_compression_ratio", size)):
        lines += [f"  # {line}" for line in gate["comments"]]
        if gate["value"] is not None:
            lines.append(f"  {key}: {gate['value']:g}")
    lines += [
        "  # min_speedup: not set, int8's speed-up depends on the host's int8 kernels (cpu_features in the report)",
        "  # and a small model's latency is mostly the interpreter's; set it from a first run's speedup",
    ]
    if metric["value"] is None and size["value"] is None:
        lines.append("  {}")  # gates: with no gate at all is an empty mapping
    return lines


def check_starter(text: str, path: str) -> Recipe:
    """Validate generated recipe text exactly as `compressctl validate` would read it."""
    data, node = parse_yaml(text, path)
    return validate(data, Source(path=path, node=node, text=text))
