"""The microcontroller target's record (``artifacts[].mcu``): what TensorFlow Lite Micro measured.

Pure pydantic: no TensorFlow, no numpy.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class McuOp(_Record):
    op: str
    version: int
    layer: str = Field(description="The Keras layer of the op's first use (from its output tensor's name).")


class McuRecord(_Record):
    """The ``mcu`` target's figures, measured in the TFLM interpreter on the artifact written."""

    runtime: str = Field(description='The interpreter that measured them, e.g. "tflite-micro 0.dev20261023182759".')
    arena_bytes: int = Field(
        description="The smallest tensor arena in which the TFLM interpreter allocates the model (bisection on "
        "16-byte multiples), in which it then ran an inference and the test split."
    )
    flash_bytes: int = Field(description="The model array's size in model_data.cc (the .tflite file's bytes).")
    flash_budget: int | None = Field(None, description="The target's flash_budget in bytes, when set.")
    arena_budget: int | None = Field(None, description="The target's arena_budget in bytes, when set.")
    ops: list[McuOp] = Field(description="The model's distinct ops, each registered by the TFLM interpreter.")
    metric_runtime: str = Field(description="Where metric_value was measured: the TFLM interpreter, on the test split.")
    files: list[str] = Field(description="The C sources to ship, relative to the run directory.")

    def summary(self, target: str) -> str:
        """One line: flash, arena and where they and the metric were measured."""
        return (
            f"{target}: {self.flash_bytes:,} bytes of flash, {self.arena_bytes:,}-byte tensor arena "
            f"(smallest that allocates), {len(self.ops)} ops; measured in {self.runtime}, metric included; "
            f"files {', '.join(self.files)}"
        )
