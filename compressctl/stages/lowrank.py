"""Low-rank factorization: a Dense (or 1×1 convolution) kernel W ≈ U·S·Vᵀ becomes two thinner layers."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from compressctl.model.params import FineTune, LayerSelection
from compressctl.stages.base import (
    Figure,
    Stage,
    StageContext,
    StageResult,
    kernel_arrays,
    rebuild_from_config,
    require_graph_model,
    require_keras,
)

# Layers whose kernel is a matrix from input features to output features; convolutions only at 1×1,
# where the kernel is that matrix applied at every position.
FACTORIZABLE = ("Dense", "Conv1D", "Conv2D")
RANK_CHOICES = ("energy", "rank", "rank_ratio")


class LowRank(Stage):
    """Replace a kernel W (m×n) by A (m×r) then B (r×n) from its truncated SVD, where r·(m+n) < m·n."""

    type = "lowrank"
    order = 0
    restructures = True
    why_first = "factorizing replaces the layers"
    figures = (
        Figure("factorized_layers", "int", "{value} layers factorized"),
        Figure("params_before", "int", "params {value:,}"),
        Figure("params_after", "int", "→ {value:,}"),
    )
    layer_figures = (
        Figure("rank", "int"),
        Figure("full_rank", "int"),
        Figure("params_before", "int"),
        Figure("params_after", "int"),
        Figure("energy_kept", "float", "{pct:.2f} %"),
    )

    class Params(LayerSelection, FineTune):
        type: Literal["lowrank"]
        energy: float | None = Field(
            None, gt=0, le=1, description="Keep the fewest singular values whose squares sum to this fraction."
        )
        rank: int | None = Field(None, ge=1, le=65536, description="Keep this many singular values per layer.")
        rank_ratio: float | None = Field(
            None, gt=0, lt=1, description="Keep this fraction of min(m, n) singular values per layer."
        )
        min_params: int = Field(
            0,
            ge=0,
            description="Leave alone layers whose kernel has fewer weights than this (small layers gain little).",
        )
        epochs: int = Field(2, ge=0, le=1000, description="Fine-tuning epochs after factorizing (0: none).")

        @model_validator(mode="after")
        def _exactly_one_rank_rule(self):
            given = [name for name in RANK_CHOICES if getattr(self, name) is not None]
            if len(given) != 1:
                got = ", ".join(given) if given else "none"
                raise ValueError(f"give exactly one of energy, rank or rank_ratio (got {got})")
            return self

    @classmethod
    def renamed(cls, names: list[str]) -> list[str]:
        return [*names, *(f"{name}_lowrank" for name in names)]

    @classmethod
    def supports(cls, layer) -> bool | str:
        """Whether the layer can be factorized (it still is only where that saves parameters)."""
        kind = type(layer).__name__
        if not layer.weights:
            return "no weights"
        if kind == "Dense":
            return True
        if kind in ("Conv1D", "Conv2D"):
            size = tuple(getattr(layer, "kernel_size", ()))
            return True if all(k == 1 for k in size) else f"{kind} kernel {size} is not 1×1"
        return f"lowrank factorizes Dense and 1×1 convolutions, not {kind}"

    def rank_for(self, singular_values: np.ndarray) -> int:
        """The rank the recipe asks for, given a kernel's singular values (largest first)."""
        p, full = self.params, len(singular_values)
        if p.rank is not None:
            return min(p.rank, full)
        if p.rank_ratio is not None:
            return max(1, min(full, int(round(p.rank_ratio * full))))
        power = singular_values.astype(np.float64) ** 2
        total = power.sum()
        if total == 0:
            return 1
        # The tolerance keeps energy 1.0 from asking for one more value than floating point needs.
        first = int(np.searchsorted(np.cumsum(power) / total, p.energy - 1e-9))
        return min(first + 1, full)

    def apply(self, model, ctx: StageContext) -> StageResult:
        require_keras(model, "lowrank")
        require_graph_model(model, "lowrank")
        from compressctl.core.env import keras

        p = self.params
        config = model.get_config()
        sequential = isinstance(model, keras().Sequential)
        taken = {entry["config"]["name"] for entry in config["layers"]}
        factors, rows, skipped = {}, [], []
        new_layers = []
        for entry in config["layers"]:
            plan = self._plan(model, entry, sequential, skipped)
            if plan is None:
                new_layers.append(entry)
                continue
            first_name = _free_name(f"{entry['config']['name']}_lowrank", taken)
            taken.add(first_name)
            first, second = _split_entry(entry, first_name, plan["rank"], sequential)
            new_layers.extend([first, second])
            factors[entry["config"]["name"]] = (first_name, plan["first_kernel"], plan["second_kernel"])
            rows.append(plan["row"])
        params_before = int(model.count_params())
        if not factors:
            return StageResult(
                model=model,
                measured={"params_before": params_before, "params_after": params_before, "factorized_layers": 0},
                skipped_layers=skipped,
                notes=["no layer was factorized"],
            )
        config["layers"] = new_layers
        factored = rebuild_from_config(model, config, "lowrank")
        thin = {first_name for first_name, _, _ in factors.values()}
        for layer in factored.layers:
            if layer.name in thin:
                continue
            weights = model.get_layer(layer.name).get_weights()
            if layer.name in factors:
                first_name, first_kernel, second_kernel = factors[layer.name]
                factored.get_layer(first_name).set_weights([first_kernel])
                weights[0] = second_kernel
            layer.set_weights(weights)
        if p.epochs > 0:
            ctx.fit(factored, p.epochs, p.learning_rate, p.batch_size, "lowrank")
        return StageResult(
            model=factored,
            measured={
                "params_before": params_before,
                "params_after": int(factored.count_params()),
                "factorized_layers": len(rows),
            },
            layers=rows,
            skipped_layers=skipped,
        )

    def _plan(self, model, entry: dict, sequential: bool, skipped: list) -> dict | None:
        """The factorization of one layer, or None (with a reason in ``skipped`` where it matters)."""
        kind, cfg = entry["class_name"], entry["config"]
        name = cfg.get("name")
        if kind == "InputLayer" or not self.params.selects(name):
            return None
        layer = model.get_layer(name)
        kernels = kernel_arrays(layer)
        if hasattr(layer, "layers"):
            skipped.append({"layer": name, "reason": "nested model: its inner layers are not factorized"})
            return None
        if not kernels:
            return None
        if kind not in FACTORIZABLE:
            skipped.append({"layer": name, "reason": f"lowrank factorizes Dense and 1×1 convolutions, not {kind}"})
            return None
        if kind != "Dense":
            size = tuple(cfg.get("kernel_size", ()))
            if any(s != 1 for s in size):
                shown = "×".join(str(s) for s in size)
                skipped.append({"layer": name, "reason": f"{shown} kernel: only 1×1 convolutions are factorized"})
                return None
            if cfg.get("groups", 1) != 1:
                skipped.append({"layer": name, "reason": "grouped convolution"})
                return None
        if not sequential and len(entry.get("inbound_nodes") or []) != 1:
            calls = len(entry.get("inbound_nodes") or [])
            skipped.append({"layer": name, "reason": f"shared layer (called {calls} times in the model)"})
            return None
        kernel = layer.get_weights()[0]
        if kernel.shape != kernels[0].shape:  # pragma: no cover - Keras puts the kernel first
            skipped.append({"layer": name, "reason": "kernel is not the layer's first weight"})
            return None
        m, n = kernel.shape[-2], kernel.shape[-1]
        if m * n < self.params.min_params:
            skipped.append(
                {"layer": name, "reason": f"{m * n} weights, fewer than min_params {self.params.min_params}"}
            )
            return None
        matrix = kernel.reshape(m, n).astype(np.float64)
        u, s, vt = np.linalg.svd(matrix, full_matrices=False)
        rank = self.rank_for(s)
        if rank * (m + n) >= m * n:
            skipped.append(
                {
                    "layer": name,
                    "reason": f"rank {rank} saves nothing: {rank}×({m}+{n}) = {rank * (m + n)} ≥ {m}×{n} = {m * n}",
                }
            )
            return None
        # Splitting √S evenly between the factors keeps their weight ranges alike, which suits
        # fine-tuning and the per-tensor int8 scales of a later quantization.
        root = np.sqrt(s[:rank])
        first = (u[:, :rank] * root).astype(np.float32).reshape(*kernel.shape[:-2], m, rank)
        second = (root[:, None] * vt[:rank]).astype(np.float32).reshape(*kernel.shape[:-2], rank, n)
        total = float(np.sum(s**2))
        bias = n if cfg.get("use_bias", False) else 0
        row = {
            "layer": name,
            "params": rank * (m + n) + bias,  # what the layer costs now, like the other stages' rows
            "rank": rank,
            "full_rank": len(s),
            "params_before": m * n + bias,
            "params_after": rank * (m + n) + bias,
            "energy_kept": round(float(np.sum(s[:rank] ** 2)) / total, 6) if total else 1.0,
        }
        return {"rank": rank, "first_kernel": first, "second_kernel": second, "row": row}


def _free_name(name: str, taken: set[str]) -> str:
    candidate, i = name, 1
    while candidate in taken:
        candidate, i = f"{name}_{i}", i + 1
    return candidate


def _split_entry(entry: dict, first_name: str, rank: int, sequential: bool) -> tuple[dict, dict]:
    """Config entries of the new thin layer and of the original layer, which now reads from it.

    The original keeps its name, activation and bias, so every layer downstream still finds it.
    """
    kind, cfg = entry["class_name"], dict(entry["config"])
    first_cfg = {"name": first_name, "trainable": cfg.get("trainable", True), "dtype": cfg.get("dtype", "float32")}
    first_cfg.update({"activation": "linear", "use_bias": False})
    if kind == "Dense":
        first_cfg["units"] = rank
    else:
        ones = [1] * len(cfg["kernel_size"])
        first_cfg.update(
            {
                "filters": rank,
                "kernel_size": ones,
                "strides": cfg["strides"],
                "padding": cfg["padding"],
                "data_format": cfg.get("data_format", "channels_last"),
            }
        )
        # The thin layer already applied the stride; a 1×1, stride-1 convolution pads nothing.
        cfg.update({"strides": ones, "padding": "valid", "dilation_rate": ones})
    if "batch_input_shape" in cfg:  # a Sequential without an InputLayer keeps its input shape on layer one
        first_cfg["batch_input_shape"] = cfg.pop("batch_input_shape")
    first = {"module": "keras.layers", "class_name": kind, "config": first_cfg, "registered_name": None}
    second = {key: value for key, value in entry.items() if key != "build_config"}
    second["config"] = cfg
    if not sequential:
        first["name"] = first_name
        first["inbound_nodes"] = entry["inbound_nodes"]
        second["inbound_nodes"] = [[[first_name, 0, 0, {}]]]
    return first, second
