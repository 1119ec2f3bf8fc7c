"""CPU target: int8 TFLite for the XNNPACK / reference kernels of the LiteRT interpreter."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from compressctl.backends import converter as converter_backend
from compressctl.backends import litert_quantizer as litert_backend
from compressctl.targets.base import Conversion, QuantizedTargetParams, Target


class CpuTarget(Target):
    """Full-int8 (calibrated on the train split) or dynamic-range int8 TFLite for CPUs."""

    type = "cpu"

    class Params(QuantizedTargetParams):
        type: Literal["cpu"]
        backend: Literal["converter", "litert-quantizer"] = Field(
            "converter",
            description="converter: the TFLite converter on the Keras model; litert-quantizer: the LiteRT Quantizer "
            "(ai-edge-quantizer) on the float TFLite model.",
        )
        mode: Literal[
            "int8", "dynamic", "float32", "int16x8", "dynamic-int4", "weight-only-int8", "weight-only-int4"
        ] = Field(
            "int8",
            description="int8: weights and activations int8, calibrated; dynamic: int8 weights, float "
            "activations; float32: plain conversion. With backend litert-quantizer also int16x8 (int16 "
            "activations, calibrated), dynamic-int4, weight-only-int8 and weight-only-int4 (float compute).",
        )
        fallback: Literal["dynamic", "none"] = Field(
            "dynamic",
            description="When int8 conversion fails or crashes: dynamic converts dynamic-range instead; "
            "none fails the target.",
        )
        # issue 10: accuracy-aware int8 (litert/selective.py)
        max_metric_drop: float | None = Field(
            None,
            ge=0,
            le=1,
            description="Metric budget of a full-int8 artifact (0.01 = one point; default: the recipe's "
            "gates.max_metric_drop when it applies to this target). Over budget, the ops with the largest int8 error "
            "are kept in float, a group at a time, until within budget or all are float; with the LiteRT Quantizer's "
            "int4 modes, the ops with the largest int4 weight error are kept at 8 bits the same way.",
        )
        sparse: bool = Field(
            False,
            description="Also ask the converter for sparse weight encoding (EXPERIMENTAL_SPARSITY); kept "
            "only when the artifact runs in the default interpreter (with XNNPACK), else the dense artifact is "
            "kept and the report says why.",
        )
        litert_quantizer: litert_backend.Options | None = Field(
            None, description="Options of backend litert-quantizer: granularity, block_size, per-op overrides."
        )

        @field_validator("mode")
        @classmethod
        def _mode_of_backend(cls, mode, info: ValidationInfo):
            if info.data.get("backend", "converter") == "converter":
                converter_backend.check_mode(mode)
            else:
                litert_backend.check_runtime(mode, info.data.get("runtime"))
            return mode

        @field_validator("io_dtype", "sparse", "litert_quantizer")
        @classmethod
        def _option_of_backend(cls, value, info: ValidationInfo):
            data = info.data
            litert_backend.check_option(info.field_name, value, data.get("backend", "converter"), data.get("mode"))
            return value

    def conversions(self) -> list[Conversion]:
        p = self.params
        if p.backend == litert_backend.NAME:
            return litert_backend.conversions(p)
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
