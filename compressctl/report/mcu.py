"""The microcontroller target's record (``artifacts[].mcu``): what TensorFlow Lite Micro measured.

Pure pydantic: no TensorFlow, no numpy.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from compressctl.report.storage import StorageEntry


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class McuOp(_Record):
    op: str
    version: int
    layer: str = Field(description="The Keras layer of the op's first use (from its output tensor's name).")


class LutTensor(_Record):
    """One constant tensor stored as a TFLM lookup table (value tables and 1-7-bit indices)."""

    tensor: str
    bits: int = Field(description="Bits per index.")
    granularity: str = Field(description="per-tensor, or per-channel (axis N): the tensor's quantization's.")
    bytes_before: int = Field(description="The tensor's bytes stored as int8.")
    bytes_after: int = Field(description="bytes_before less what encoding it alone saved in the file (measured).")
    arena_bytes_added: int = Field(description="What encoding it alone added to the smallest arena (DECODE's output).")


class LutModel(_Record):
    """The model with its lookup tables: a drop-in alternative to the int8 array (same names)."""

    path: str = Field(description="mcu/lut/model.tflite, relative to the run directory.")
    flash_bytes: int
    arena_bytes: int = Field(description="Its smallest arena, measured like the int8 model's.")
    files: list[str] = Field(description="Its model_data.cc, model_data.h and op_resolver.h (with DECODE).")
    host_latency_ms: float | None = Field(None, description="Like McuRecord.host_latency_ms, for this model.")
    storage: list[StorageEntry] | None = Field(
        None, description="Its constant tensors by encoding (lut1-lut7 for the lookup tables), as artifacts[].storage."
    )
    other_bytes: int | None = Field(None, description="Its bytes outside the constant tensors; storage + this = flash.")


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
    host_latency_ms: float | None = Field(
        None,
        description="Median ms per inference in the TFLM interpreter on this host's CPU (reference kernels): a "
        "host figure, not a microcontroller's.",
    )
    lut: list[LutTensor] | None = Field(
        None, description="Tensors kept as lookup tables: outputs bit-identical to the plain int8 model's."
    )
    decode_arena_bytes: int | None = Field(
        None, description="What the lookup tables add to the arena (DECODE decodes into it): LUT arena − dense arena."
    )
    lut_model: LutModel | None = Field(None, description="The lookup-table model, when any tensor was kept encoded.")
    lut_note: str | None = Field(
        None, description="Which budget only one of the two models meets, or why there are no lookup tables."
    )

    def summary(self, target: str) -> str:
        """One line: flash, arena, the lookup tables' trade and where they and the metric were measured."""
        text = (
            f"{target}: {self.flash_bytes:,} bytes of flash, {self.arena_bytes:,}-byte tensor arena "
            f"(smallest that allocates), {len(self.ops)} ops; measured in {self.runtime}, metric included"
        )
        if self.host_latency_ms is not None:
            text += f"; {self.host_latency_ms:.3f} ms per inference in TFLM on this host (not a device figure)"
        if self.lut and self.lut_model:
            saved = self.flash_bytes - self.lut_model.flash_bytes
            text += (
                f"; with lookup tables for {len(self.lut)} tensor(s) ({', '.join(f'{r.bits}-bit' for r in self.lut)}), "
                f"{self.lut_model.path}: {self.lut_model.flash_bytes:,} bytes of flash ({saved:,} fewer) and a "
                f"{self.lut_model.arena_bytes:,}-byte arena ({self.decode_arena_bytes or 0:,} more)"
            )
        if self.lut_note:
            text += f"; {self.lut_note}"
        return text + f"; files {', '.join(self.files)}"
