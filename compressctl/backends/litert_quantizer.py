"""The LiteRT Quantizer backend (``ai-edge-quantizer``): quantizes a float TFLite file.

Schemes (a target's ``mode`` with ``backend: litert-quantizer``):
- ``weight-only-int8`` / ``weight-only-int4``: weights stored as int8 / int4, dequantized to float
  before each op (smallest files, float compute);
- ``dynamic`` / ``dynamic-int4``: int8 / int4 weights, activations quantized at run time by the kernels;
- ``int8`` / ``int16x8``: static int8 or int16 activations with int8 weights, activation ranges
  calibrated on ``calibration_samples`` train samples.
Weights are quantized per output channel (``granularity: channelwise``) or in blocks of
``block_size`` values along the input dimension (``blockwise``, which the quantizer's policy allows
for ``dynamic-int4`` only, on fully connected and embedding ops). ``overrides`` give ops whose output
tensor name matches a regex another scheme, or ``float`` (mixed precision); later entries win.

The quantizer runs in a child process of its own (litert_quantizer_worker.py), like the TFLite
converter, so a crash inside it becomes one message and a fresh worker.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np
from pydantic import Field, field_validator

from compressctl.backends.convert import Converter
from compressctl.core.strict import StrictModel
from compressctl.model.params import check_patterns

NAME = "litert-quantizer"
WORKER = [sys.executable, "-m", "compressctl.backends.litert_quantizer_worker"]


class Scheme(NamedTuple):
    """One quantization scheme: how the quantizer's worker configures it and what report.json calls it."""

    kind: Literal["static", "dynamic", "weight_only"]
    activation_bits: int | None
    weight_bits: int
    # report.json's ``quantization.scheme`` for either backend (the TFLite converter's int8 and dynamic too)
    label: str
    # what the LiteRT Quantizer's label adds in parentheses (its calibrated schemes)
    activations: str = ""


# The one table of scheme labels (steps.py's converter records read it too); "float" exists for overrides only.
SCHEMES = {
    "int8": Scheme("static", 8, 8, "int8", "static int8 activations"),
    "int16x8": Scheme("static", 16, 8, "int16x8", "static int16 activations, int8 weights"),
    "dynamic": Scheme("dynamic", None, 8, "dynamic int8"),
    "dynamic-int4": Scheme("dynamic", None, 4, "dynamic int4"),
    "weight-only-int8": Scheme("weight_only", None, 8, "int8 weight-only"),
    "weight-only-int4": Scheme("weight_only", None, 4, "int4 weight-only"),
}
MODES = tuple(SCHEMES)
CALIBRATED = ("int8", "int16x8")
OverrideMode = Literal["float", "int8", "int16x8", "dynamic", "dynamic-int4", "weight-only-int8", "weight-only-int4"]
# The quantizer's own policy (ai_edge_quantizer/default_policy.py, 0.10) allows blockwise weights for
# dynamic int4 only; asked of another scheme it silently leaves the weights in float.
BLOCKWISE_MODES = ("dynamic-int4",)


class OpOverride(StrictModel):
    """Another scheme for the ops whose output tensor name matches ``regex``."""

    regex: str = Field(description="Python regex searched in each op's output tensor name (e.g. 'fc1' or '.*conv.*').")
    mode: OverrideMode = Field(description="Scheme for the matching ops; float leaves them unquantized.")

    @field_validator("regex")
    @classmethod
    def _valid_regex(cls, value):
        return check_patterns([value])[0]


class Options(StrictModel):
    """Options of the LiteRT Quantizer backend (a target's ``litert_quantizer:`` mapping)."""

    granularity: Literal["channelwise", "blockwise"] = Field(
        "channelwise", description="Weight scales per output channel, or per block of `block_size` input values."
    )
    block_size: Literal[32, 64, 128, 256] = Field(32, description="Values per scale with granularity blockwise.")
    overrides: list[OpOverride] = Field(
        default_factory=list, description="Per-op schemes by regex on output tensor names (mixed precision)."
    )


def scheme_name(mode: str) -> str:
    """report.json's name of a mode's scheme, either backend's: float32 and float16 are no scheme, named as they are."""
    return SCHEMES[mode].label if mode in SCHEMES else mode


def scheme_label(mode: str, options: Options | None = None) -> str:
    """The LiteRT Quantizer's name of a scheme: the table's label, what it does with activations, and the options."""
    scheme, options = SCHEMES[mode], options or Options()
    text = f"{scheme.label} ({scheme.activations})" if scheme.activations else scheme.label
    if options.granularity == "blockwise":
        text += f", blocks of {options.block_size}"
    if options.overrides:
        text += f", {len(options.overrides)} override(s)"
    return text


def conversions(params) -> list:
    """The one conversion a target with ``backend: litert-quantizer`` asks for."""
    from compressctl.backends.conversion import Conversion

    options = params.litert_quantizer or Options()
    return [
        Conversion(
            params.mode,
            label=f"{scheme_label(params.mode, options)} (LiteRT Quantizer)",
            backend=NAME,
            options=options.model_dump(),
        )
    ]


class LitertQuantizer(Converter):
    """A warm LiteRT Quantizer worker; a crash ends only the request in flight (see Converter)."""

    tool = "the LiteRT Quantizer"

    def _command(self) -> list[str]:
        return WORKER

    def quantize(
        self,
        float_model: Path,
        out: Path,
        mode: str,
        options: dict,
        workdir: Path,
        *,
        calibration: np.ndarray | None = None,
    ) -> Path:
        """Quantize the float TFLite file ``float_model`` into ``out`` with scheme ``mode``."""
        workdir.mkdir(parents=True, exist_ok=True)
        spec = {"float_model": str(float_model), "out": str(out), "mode": mode, **options}
        if mode in CALIBRATED:
            if calibration is None:
                raise ValueError(f"mode {mode} needs calibration samples")
            spec["calibration"] = str(workdir / f"{out.parent.name}-{out.stem}.litert-calibration.npy")
            np.save(spec["calibration"], calibration)
        return self.request(spec, out, f"{scheme_label(mode)} quantization")


# Ops whose second input is a weight tensor the quantizer may quantize.
WEIGHT_OPS = ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV", "BATCH_MATMUL", "EMBEDDING_LOOKUP")


def float_ops(path: Path, options: dict) -> list[dict]:
    """Weight ops whose weights stayed float32: ``{name, op, reason}`` for report.json's
    quantization.float_ops (an override asked for float, or the quantizer left them)."""
    from compressctl.litert.compat import read_operators

    found = []
    for op in read_operators(path):
        if op["op"] not in WEIGHT_OPS or len(op["inputs"]) < 2:
            continue
        weight = op["inputs"][1]
        if not (weight["constant"] and weight["type"] == "FLOAT32"):
            continue
        mode = None
        for rule in options.get("overrides", []):  # later overrides win, as in the quantizer's recipe
            if any(re.search(rule["regex"], name) for name in op["outputs"]):
                mode = rule["mode"]
        reason = "override: float" if mode == "float" else "left in float32 by the LiteRT Quantizer"
        found.append({"name": op["outputs"][0] if op["outputs"] else "", "op": op["op"], "reason": reason})
    return found


def check_quantized(path: Path, options: dict) -> list[dict]:
    """float_ops, or a ValueError when the quantizer quantized no weight at all (a scheme it does not
    apply to this model's ops, such as blockwise granularity where it is unsupported, is not an error there)."""
    from compressctl.litert.compat import read_operators

    floats = float_ops(path, options)
    weight_ops = [o for o in read_operators(path) if o["op"] in WEIGHT_OPS]
    if weight_ops and len(floats) == len(weight_ops) and not all(f["reason"] == "override: float" for f in floats):
        raise ValueError(f"the LiteRT Quantizer left all {len(floats)} weight op(s) in float32; nothing was quantized")
    return floats


# What each int4 scheme writes, for a target bound to a runtime (litert/compat.py: versions follow tensor types):
# weight-only int4 dequantizes INT4 weights (DEQUANTIZE v6); dynamic int4 feeds them to float ops, a kernel
# TFLite's op versioning gives no version, so no runtime can be promised to run it.
INT4_OPS = {"weight-only-int4": ("DEQUANTIZE", 6), "dynamic-int4": None}


def check_runtime(mode: str, runtime) -> None:
    """A ValueError when an int4 ``mode`` cannot be promised to run on ``runtime`` (a RuntimeRequirement)."""
    from compressctl.litert.op_versions import MIN_RUNTIME, version_key

    if runtime is None or mode not in INT4_OPS:
        return
    op = INT4_OPS[mode]
    if op is None:
        raise ValueError(
            f"{mode} writes float ops with INT4 weights, which TFLite's op versioning gives no version, so no "
            f"{runtime.label} can be promised to run it: use weight-only-int4 (TFLite "
            f"{MIN_RUNTIME[INT4_OPS['weight-only-int4']]}) or weight-only-int8, or drop `runtime`"
        )
    needed = MIN_RUNTIME[op]
    if version_key(runtime.version)[:2] < version_key(needed)[:2]:
        raise ValueError(
            f"{mode} needs TFLite {needed} ({op[0]} of INT4 weights is op version {op[1]}); the target requires "
            f"{runtime.label}: use weight-only-int8 or a newer runtime"
        )


def check_option(field: str, value, backend: str, mode: str | None = None) -> None:
    """A ValueError for a target field that does not apply to ``backend`` (and ``mode``)."""
    blockwise = field == "litert_quantizer" and value is not None and value.granularity == "blockwise"
    if blockwise and mode not in BLOCKWISE_MODES:
        raise ValueError(
            f"granularity blockwise: the LiteRT Quantizer applies blocks to mode {', '.join(BLOCKWISE_MODES)} "
            f"only, not {mode}"
        )
    if backend == NAME:
        if field == "io_dtype" and value != "float32":
            raise ValueError(
                "io_dtype is the TFLite converter's; the LiteRT Quantizer sets input and output types itself "
                "(integer for int8 and int16x8, float otherwise)"
            )
        if field == "sparse" and value:
            raise ValueError("sparse weight encoding is the TFLite converter's; it needs `backend: converter`")
    elif field == "litert_quantizer" and value is not None:
        raise ValueError("litert_quantizer options need `backend: litert-quantizer`")
