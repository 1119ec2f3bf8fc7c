"""CPU target: int8 TFLite for the XNNPACK / reference kernels of the LiteRT interpreter."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from compressctl.targets.base import Conversion, QuantizedTargetParams, Target


class CpuTarget(Target):
    """Full-int8 (calibrated on the train split) or dynamic-range int8 TFLite for CPUs."""

    type = "cpu"

    class Params(QuantizedTargetParams):
        type: Literal["cpu"]
        mode: Literal["int8", "dynamic", "float32"] = Field(
            "int8",
            description="int8: weights and activations int8, calibrated; dynamic: int8 weights, float "
            "activations; float32: plain conversion.",
        )
        fallback: Literal["dynamic", "none"] = Field(
            "dynamic",
            description="When int8 conversion fails or crashes: dynamic converts dynamic-range instead; "
            "none fails the target.",
        )
        # issue 10: accuracy-aware int8 (selective.py)
        max_metric_drop: float | None = Field(
            None,
            ge=0,
            le=1,
            description="Metric budget of a full-int8 artifact (0.01 = one point; default: the recipe's "
            "gates.max_metric_drop when it applies to this target). Over budget, the ops with the largest int8 error "
            "are kept in float, a group at a time, until within budget or all are float.",
        )
        sparse: bool = Field(
            False,
            description="Also ask the converter for sparse weight encoding (EXPERIMENTAL_SPARSITY); kept "
            "only when the artifact runs in the default interpreter (with XNNPACK), else the dense artifact is "
            "kept and the report says why.",
        )

    def conversions(self) -> list[Conversion]:
        p = self.params
        if p.mode == "float32":
            return [Conversion("float32", label="float32")]
        if p.mode == "dynamic":
            first = [Conversion("dynamic", label="dynamic-range int8")]
        else:
            first = [Conversion("int8", io_dtype=p.io_dtype, label="full int8")]
        if p.sparse:
            first = [Conversion(c.mode, c.io_dtype, sparsity=True, label=c.label + " sparse") for c in first] + [
                Conversion(c.mode, c.io_dtype, label=c.label, fallback_reason="the sparse artifact did not run")
                for c in first
            ]
        if p.mode == "int8" and p.fallback == "dynamic":
            first.append(
                Conversion("dynamic", label="dynamic-range int8", fallback_reason="full-int8 conversion failed")
            )
        return first
