"""The artifact's side of the run record: one converted file, what was measured on it, and what its
target and the quantization analysis add (``Artifact`` and the records it holds).

Pure pydantic: no TensorFlow, no numpy. ``record.RunRecord`` holds a list of these; report.json
is their serialisation (see ``record``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from compressctl.report import figures
from compressctl.report.mcu import McuRecord
from compressctl.report.storage import StorageEntry


class Record(BaseModel):
    """The base of every record of report.json: unknown fields refused, frozen once built."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Throughput(Record):
    """Samples per second at one batch size (bench.batch_sizes), the interpreter's input resized to it."""

    batch_size: int
    samples_per_s: float | None = Field(None, description="batch_size / median seconds per invocation.")
    ms_per_batch: float | None = Field(None, description="Median milliseconds per invocation of one batch.")
    runs: int | None = None
    not_run: str | None = Field(None, description="Why this batch size was not timed (the input cannot be resized).")


class Latency(Record):
    """Milliseconds per inference (batch 1) over ``runs`` timed invocations."""

    p50: float
    p90: float
    p99: float
    mean: float
    runs: int | None = None
    throughput: list[Throughput] = Field(
        default_factory=list, description="Samples per second at each of bench.batch_sizes (none when unset)."
    )


class Fallback(Record):
    reason: str
    tried: list[str]


class RunsUnder(Record):
    xnnpack: bool
    reference: bool


class CompiledArtifact(Record):
    path: str
    size_bytes: int
    sha256: str


class EdgeTpuRecord(Record):
    """The Edge TPU target's record: where the ops run, predicted or from edgetpu_compiler."""

    compiled: bool
    status: str
    mapping: dict[str, Any]
    predicted: dict[str, Any]
    checks: dict[str, Any]
    mapping_file: str
    compiler: dict[str, Any] | None = None
    compiled_artifact: CompiledArtifact | None = None

    def summary(self, target: str) -> str:
        """One line on where the artifact's ops run."""
        mapping = self.mapping
        source = "edgetpu_compiler" if self.compiled else "predicted"
        text = (
            f"{target}: {mapping.get('ops_on_tpu')} of {mapping.get('ops_total')} ops on the Edge TPU "
            f"({source}; {self.status})"
        )
        first_cpu = mapping.get("first_cpu_op")
        if isinstance(first_cpu, dict):
            why = f" ({first_cpu['reason']})" if first_cpu.get("reason") else ""
            text += f"; from {first_cpu['op']} (op {first_cpu['index']}){why} on, ops run on the CPU"
        if self.compiled_artifact:
            text += f"; compiled model {self.compiled_artifact.path}"
        return text


class OpVersion(Record):
    op: str
    version: int = Field(description="The version its tensor types give it (TFLite's op_version.cc); >= declared.")
    count: int
    declared: int | None = Field(
        None, description="The version the file declares, where its INT4 tensors imply a newer one (absent otherwise)."
    )


class RuntimeCheck(Record):
    runtime: str = Field(description='e.g. "tflite-runtime 2.14.0".')
    loads: bool
    error: str | None = None


class RuntimeInfo(Record):
    ops: list[OpVersion]
    min_tflite_version: str | None = Field(description="null when an op is not in the version table.")
    checked: list[RuntimeCheck] = Field(default_factory=list)
    table: str | None = Field(None, description="Where the op-version table came from.")
    not_in_table: list[str] | None = Field(None, description="Op versions the table does not list.")
    required: str | None = Field(None, description="The runtime the target requires, e.g. tflite-runtime 2.14.")
    note: str | None = None


class FloatOp(Record):
    name: str
    op: str
    reason: str


class LayerError(Record):
    name: str
    op: str
    snr_db: float | None = None
    rmse: float | None = None


class SelectiveStep(Record):
    float_ops: int = Field(description="How many ops were kept in float at this step.")
    metric_drop: float
    size_bytes: int
    pool: Literal["weight-light", "all"] | None = Field(
        None,
        description="Which ops the step drew from, worst first: the weight-light ones (tried first) or all.",
    )
    chosen_after_all_steps: bool | None = None


class KeptOp(LayerError):
    """An op kept in float by selective quantization, with the int8 error that ranked it."""


class SelectiveInfo(Record):
    """Accuracy-aware conversion: ops kept in float, one group at a time, until within the metric budget."""

    max_metric_drop: float
    budget_from: str
    checked_on: str
    full_int8: dict[str, float]
    steps: list[SelectiveStep]
    kept_in_float: list[KeptOp]
    within_budget: bool
    size_cost_bytes: int
    scheme: str | None = Field(
        None, description="What every op was first, when not int8 (full_int8 then holds that artifact's figures)."
    )
    kept_as: str | None = Field(
        None, description="What a kept op became, when not float (the LiteRT Quantizer's int4 keeps ops at 8 bits)."
    )


class QuantizationInfo(Record):
    backend: Literal["converter", "litert-quantizer"] | None = None
    scheme: str | None = Field(None, description='e.g. "int8", "int4 weight-only".')
    float_ops: list[FloatOp] = Field(default_factory=list)
    layer_errors: list[LayerError] = Field(default_factory=list, description="Worst first.")
    layer_errors_method: str | None = Field(None, description="How the layer errors were measured.")
    layer_errors_error: str | None = Field(None, description="Why no layer errors were measured.")
    selective: SelectiveInfo | None = None
    error: str | None = Field(None, description="Why the quantization analysis failed (the artifact is kept).")


class Artifact(Record):
    """One artifact: the conversion's facts, what was measured on it, and what its target added.

    A target adds typed records (``report_fields``: ``edgetpu``, ...) and may add scalar figures of
    its own (``Target.figures``, kept in ``report.figures``), which follow the common fields; one
    its target does not declare, or of another type, is refused when the target is known here.
    """

    model_config = ConfigDict(
        extra="allow",
        frozen=True,
        json_schema_extra={"additionalProperties": {"type": ["string", "number", "boolean", "null"]}},
    )

    target: str
    type: str
    path: str = Field(description="Path relative to the run directory.")
    conversion: str
    fallback: Fallback | None = None
    size_bytes: int
    gzip_bytes: int = Field(description="gzip level 9, mtime 0.")
    sha256: str
    runs_under: RunsUnder
    input_dtype: str
    output_dtype: str
    ops: list[str]
    # Fields a target adds (Target.report_fields); absent for targets that do not.
    edgetpu: EdgeTpuRecord | None = None
    mcu: McuRecord | None = None
    latency_note: str | None = Field(None, description="Where latency was timed, when not on the device.")
    metric_value: float
    metric_delta: float = Field(description="metric_value − baseline metric_value.")
    compression_ratio: float
    compression_ratio_gzip: float
    latency_ms: Latency
    speedup: float = Field(description="Baseline p50 / artifact p50, timed alternately in one process.")
    measured_on: str
    macs: int | None = None
    storage: list[StorageEntry] = Field(
        default_factory=list, description="Where the stored bytes go: constant tensors by encoding, largest first."
    )
    other_bytes: int | None = Field(
        None, description="Bytes outside the constant tensors (graph, metadata, alignment); storage + this = size."
    )
    runtime: RuntimeInfo | None = None
    quantization: QuantizationInfo | None = None
    notes: list[str] = Field(default_factory=list, description="What a reader should know about this artifact.")

    @model_validator(mode="after")
    def _declared_figures(self):
        figures.check("target", self.type, self.model_extra or {})
        return self

    def figures(self) -> dict[str, Any]:
        """The target's own scalar figures, in the order it returned them."""
        return dict(self.model_extra or {})

    def bits_per_weight(self) -> float | None:
        """Stored bits per value over every constant tensor (None when the record has no storage)."""
        params = sum(e.params for e in self.storage)
        return 8 * sum(e.bytes for e in self.storage) / params if params else None

    @property
    def label(self) -> str:
        return f"{self.target} ({self.conversion})"

    def target_lines(self) -> list[tuple[str, str]]:
        """The target-specific lines a report shows for this artifact, as (heading, text)."""
        lines = [("Edge TPU", self.edgetpu.summary(self.target))] if self.edgetpu else []
        return lines + ([("Microcontroller", self.mcu.summary(self.target))] if self.mcu else [])
