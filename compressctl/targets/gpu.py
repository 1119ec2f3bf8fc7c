"""GPU target: float16 weights for the TFLite GPU delegate (which computes in float16 anyway)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from compressctl.params import StrictModel
from compressctl.runtime_compat import RUNTIME_HELP, RuntimeRequirement
from compressctl.targets.base import Conversion, Target


class GpuTarget(Target):
    """float16 TFLite: half the size of float32, no calibration, accuracy within float16 rounding.

    No GPU delegate runs on the build host, so the report's latency for this artifact is the
    host CPU's (``measured_on`` says so); on a phone the GPU delegate runs it in float16.
    """

    class Params(StrictModel):
        type: Literal["gpu"]
        name: str | None = Field(None, description="Folder and report name (default: the type).")
        runtime: RuntimeRequirement | None = Field(  # issue 10: see compressctl/runtime_compat.py
            None, description=RUNTIME_HELP
        )
        mode: Literal["float16"] = Field("float16", description="Weights stored as float16.")

    def conversions(self) -> list[Conversion]:
        return [Conversion("float16", label="float16")]

    def finish(self, path, folder, emit) -> dict:
        return {"latency_note": "timed on the host CPU; no GPU delegate runs here"}
