"""Accuracy-aware int8 conversion: keep the worst-quantized ops in float until the metric is within budget.

After the full-int8 conversion, the conversion worker measures each op's quantization error
(quant_debug.py). When the artifact loses more than the target's metric budget, the ops with the
lowest SNR are kept in float (the TFLite quantizer's denylisted nodes), one group at a time
(1, 1, 2, 4, … ops, worst first), re-quantizing the same calibration, until the artifact is within
budget or every op is float. Ops that carry few weights (at most ``LIGHT_SHARE`` of the file each:
activations, squeeze-and-excite gates, depthwise convolutions, arithmetic) are tried first, since
keeping them in float costs little of the file; only when every one of them in float is not enough
are the weight-heavy ops tried too, in the same order. The budget is checked on train samples (``selection_samples`` of
them, drawn from the seed), never on the test split that the report's metric comes from; the
report's figures are then measured on the test split like any artifact's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from compressctl.core import metrics
from compressctl.core.errors import StageError
from compressctl.core.events import Emit, Event

SELECTION_SAMPLES = 300
# An op is weight-light when its constant inputs are at most this share of the full-int8 file.
LIGHT_SHARE = 0.01


@dataclass
class Budget:
    """What a target may lose, and where the loss is measured."""

    max_drop: float
    source: str  # "target" or "gates.max_metric_drop"


def budget_for(target, recipe) -> Budget | None:
    """The target's ``max_metric_drop``, else the recipe's gate when it applies to this target."""
    own = getattr(target.params, "max_metric_drop", None)
    if own is not None:
        return Budget(float(own), "target")
    gates = recipe.gates
    if gates is None or gates.max_metric_drop is None:
        return None
    if gates.targets and target.name not in gates.targets:
        return None
    return Budget(float(gates.max_metric_drop), "gates.max_metric_drop")


def groups(n: int) -> list[int]:
    """How many of the worst ops are float after each step: 1, 2, 4, 8, … then all."""
    counts, k = [], 1
    while k < n:
        counts.append(k)
        k *= 2
    counts.append(n)
    return counts


def record(path: Path, answer: dict, scheme: str, kept: dict[str, str] | None = None) -> dict:
    """``artifacts[].quantization`` for a converter-quantized artifact."""
    from compressctl.litert.quant_debug import float_ops

    info = answer.get("quantization") or {}
    out = {
        "backend": "converter",
        "scheme": scheme,
        "float_ops": float_ops(path, kept),
        "layer_errors": info.get("layer_errors", []),
        "layer_errors_method": "TFLite QuantizationDebugger: each quantized op against the float op on the same "
        "inputs, on the calibration samples",
    }
    if "error" in info:
        out["layer_errors_error"] = info["error"]
    return out


def within_budget(
    *,
    convert,
    path: Path,
    answer: dict,
    budget: Budget,
    baseline_path: Path,
    data,
    task,
    seed: int,
    emit: Emit,
    label: str,
    scheme: str = "int8",
    kept_as: str = "float",
) -> tuple[dict, list[str]]:
    """Keep ops in ``kept_as`` (float; 8 bits for int4, backends/bit_budget.py) until ``path`` is within ``budget``:
    ``convert(quantization)`` re-converts it with ``float_nodes`` out of ``scheme``. Returns (record, notes)."""
    from compressctl.core import measure
    from compressctl.litert import storage
    from compressctl.litert.evaluate import evaluate_tflite

    x, y = data.labeled_sample(SELECTION_SAMPLES, seed + 1)
    n = len(x)
    float_metric = evaluate_tflite(baseline_path, x, y, task)
    full_size = measure.file_facts(path)["size_bytes"]

    def drop() -> float:
        return metrics.drop(task.metric, float_metric, evaluate_tflite(path, x, y, task))

    first = drop()
    weights = storage.weights_by_output(path)  # of the full-int8 file, before any op is kept in float
    ranked = list((answer.get("quantization") or {}).get("layer_errors") or [])
    steps = [{"float_ops": 0, "metric_drop": round(first, 6), "size_bytes": full_size}]
    selective = {
        "max_metric_drop": budget.max_drop,
        "budget_from": budget.source,
        "checked_on": f"{n} train samples (float32 baseline TFLite vs artifact)",
        "full_int8": {"metric_drop": round(first, 6), "size_bytes": full_size},
        "steps": steps,
        "kept_in_float": [],
        "within_budget": first <= budget.max_drop,
        "size_cost_bytes": 0,
    }
    selective.update({"scheme": scheme, "kept_as": kept_as} if (scheme, kept_as) != ("int8", "float") else {})
    if first <= budget.max_drop:
        return selective, []
    if not ranked:
        reason = (answer.get("quantization") or {}).get("error", "no layer errors were measured")
        return selective, [f"full {scheme} loses {100 * first:.2f} points on train samples; no op could be "
                           f"ranked to keep in {kept_as} ({reason})"]  # fmt: skip

    limit = int(LIGHT_SHARE * full_size)
    light = [r for r in ranked if _weight_bytes(r["name"], weights) <= limit]
    # Weight-light ops first where their activations are what the scheme quantizes (int8), not for a
    # weight-only scheme, whose error is in the weights.
    split = kept_as == "float" and 0 < len(light) < len(ranked)
    pools = {"weight-light": light, "all": ranked} if split else {"all": ranked}

    def attempt(pool: str, count: int) -> dict:
        which = f"weight-light op(s) (≤ {limit:,} bytes of weights each)" if pool == "weight-light" else "op(s)"
        emit(Event("step", f"{label}: keeping the {count} {which} with the largest {scheme} error in {kept_as}"))
        try:
            if count:
                convert({"layer_errors": True, "float_nodes": [r["name"] for r in pools[pool][:count]]})
            else:
                convert({"layer_errors": True})
        except StageError as exc:
            raise StageError(f"selective quantization with {count} op(s) in {kept_as} failed: {exc}") from None
        size = measure.file_facts(path)["size_bytes"]
        step = {"float_ops": count, "metric_drop": round(drop(), 6), "size_bytes": size}
        return {**step, "pool": pool} if len(pools) > 1 else step

    def search() -> None:
        for pool, ops in pools.items():
            for count in groups(len(ops)):
                steps.append(attempt(pool, count))
                if steps[-1]["metric_drop"] <= budget.max_drop:
                    return
        # Never within budget: keep the step that lost least, with the smallest file.
        best = min(steps, key=lambda step: (step["metric_drop"], step["size_bytes"]))
        if best is not steps[-1]:
            chosen = attempt(best.get("pool", "all"), best["float_ops"])
            chosen["chosen_after_all_steps"] = True
            steps.append(chosen)

    search()
    return selective, [_outcome(selective, pools, first, budget, n, scheme, kept_as, full_size)]


def _outcome(selective: dict, pools: dict, first: float, budget: Budget, n: int, scheme: str, kept_as: str,
             full_size: int) -> str:  # fmt: skip
    """Record the last step's ops in ``selective``; the note that says what was kept and what it cost."""
    steps = selective["steps"]
    kept = pools[steps[-1].get("pool", "all")][: steps[-1]["float_ops"]]
    size = steps[-1]["size_bytes"]
    selective.update(
        {
            "kept_in_float": [
                {"name": r["name"], "op": r["op"], "snr_db": r["snr_db"], "rmse": r["rmse"]} for r in kept
            ],
            "within_budget": steps[-1]["metric_drop"] <= budget.max_drop,
            "size_cost_bytes": size - full_size,
        }
    )
    verdict = "within" if selective["within_budget"] else "still over"
    light = "weight-light " if steps[-1].get("pool") == "weight-light" else ""
    return (
        f"full {scheme} lost {100 * first:.2f} points (budget {100 * budget.max_drop:.2f}, on {n} train "
        f"samples); {len(kept)} {light}op(s) with the largest {scheme} error kept in {kept_as}, {verdict} budget "
        f"at {100 * steps[-1]['metric_drop']:.2f} points, size {size - full_size:+,} bytes"
    )


def _weight_bytes(name: str, weights: dict[str, int]) -> int:
    """The weights of the op writing ``name`` (the debugger's names may lack the file's trailing digit)."""
    for candidate in (name, name[:-1] if name[-1:].isdigit() else name):  # kept_reasons' convention
        if candidate in weights:
            return weights[candidate]
    return 1 << 62  # not found in the file: never counted as light


def kept_reasons(selective: dict | None) -> dict[str, str]:
    """Output tensor name → why it was kept in float, for ``quant_debug.float_ops``."""
    if not selective:
        return {}
    reasons = {}
    for r in selective.get("kept_in_float", []):
        reason = (
            f"kept in float: int8 error SNR {r['snr_db']:.1f} dB, RMSE {r['rmse']:.4g} "
            f"(metric budget {selective['max_metric_drop']})"
        )
        reasons[r["name"]] = reason
        # The debugger names a tensor with a trailing index digit the written artifact does not have.
        if r["name"][-1:].isdigit():
            reasons.setdefault(r["name"][:-1], reason)
    return reasons
