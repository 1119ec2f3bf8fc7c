"""The run record: the one in-memory form of a run, and report.json is its serialisation.

The pipeline builds a ``RunRecord`` from what it measured, so a written report.json is valid by
construction; ``RunRecord.from_json`` reads one back (``api.load_report``). Renderers, compare,
gates and the benchmark read its typed fields. ``compressctl schema --report`` prints its JSON
Schema (docs/report.schema.json).

Serialisation keeps exactly the fields that were set (``exclude_unset``): an optional field a run
did not measure (``macs``, ``runtime``, ``quantization``, ``cpu_features``) is absent, not null,
so report.json holds what it held before these fields existed. Pure pydantic: no TensorFlow, no
numpy.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

# Where every run keeps its float32 baseline, relative to the run directory.
BASELINE_ARTIFACT = "baseline/model_float32.tflite"
SCHEMA_VERSION = 1

# A value in a per-layer row or a stage's own measured figure.
Scalar = str | int | float | bool | None


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Tool(_Record):
    name: str
    version: str


class ConvertedFrom(_Record):
    """How a Keras 3 file was rebuilt in tf_keras, and the output check that accepted it."""

    format: str
    keras_version: str
    checked_with: str
    layers_copied: int
    check_samples: int
    check_inputs: str
    max_abs_difference: float
    tolerance: float


class ModelInfo(_Record):
    path: str
    format: str
    input_shape: list[int | None]
    output_units: int | None = None
    params: int | None = Field(None, description="Parameters of the loaded Keras model (null without one).")
    notes: list[str] = Field(default_factory=list)
    converted_from: ConvertedFrom | None = Field(None, description="A Keras 3 file rebuilt in tf_keras.")


class DataInfo(_Record):
    """The data a run measured on. ``path`` and ``sha256`` are the npz file's; for another format they
    are the train split's location and the source's fingerprint, and the source's own settings follow."""

    path: str
    sha256: str
    train_samples: int
    test_samples: int
    format: Literal["npz", "images", "tfrecord", "csv", "python"] = "npz"
    fingerprint: str | None = Field(None, description="sha256 over the source's files (the npz's sha256).")
    sample_shape: list[int] | None = None
    train: str | None = None
    test: str | None = None
    label: str | None = None
    features: list[str] | dict[str, dict[str, Any]] | None = None
    files: dict[str, int] | None = Field(None, description="TFRecord files per split.")
    image_size: list[int] | None = None
    color_mode: str | None = None
    scale: float | None = None
    class_names: list[str] | None = None
    function: str | None = None
    module_file: str | None = None


class Metric(_Record):
    name: str = Field(description="e.g. accuracy, top_5_accuracy.")
    higher_is_better: bool = True


class Task(_Record):
    binary: bool
    from_logits: bool
    regression: bool = False


class Training(_Record):
    strategy: str = Field(description="training.strategy of the recipe: auto, none, mirrored or multi_worker.")
    devices: str = Field(description="What the training stages ran on, e.g. 'one device', '2 devices (mirrored)'.")


class Latency(_Record):
    """Milliseconds per inference (batch 1) over ``runs`` timed invocations."""

    p50: float
    p90: float
    p99: float
    mean: float
    runs: int | None = None


class Baseline(_Record):
    artifact: str = Field(description="Path relative to the run directory.")
    size_bytes: int
    gzip_bytes: int
    sha256: str
    metric_value: float = Field(description="The original Keras model on the test split.")
    tflite_metric_value: float | None = None
    latency_ms: Latency
    measured_on: str
    macs: int | None = Field(None, description="Multiply-accumulates per inference, from the model's shapes.")


class SkippedLayer(_Record):
    layer: str
    reason: str


class StageRow(_Record):
    """One stage: its time, the Keras model's metric after it, and what it measured.

    A stage's own overall figures (``sparsity``, ``unique_weights``, ...) sit beside the common
    fields; the ones today's stages measure are declared, and a new stage may add scalar figures
    of its own. ``columns`` names the per-layer figures the stage reports (the stage class's
    ``columns``), in the order tables show them.
    """

    model_config = ConfigDict(
        extra="allow",
        frozen=True,
        json_schema_extra={"additionalProperties": {"type": ["string", "number", "boolean", "null"]}},
    )

    type: str
    seconds: float
    metric_value: float
    sparsity: float | None = None
    unique_weights: int | None = None
    quantized_layers: int | None = None
    factorized_layers: int | None = None
    params_before: int | None = None
    params_after: int | None = None
    teacher_metric_value: float | None = None
    student_metric_value: float | None = None
    teacher_params: int | None = None
    student_params: int | None = None
    layers: list[dict[str, Scalar]] = Field(default_factory=list)
    skipped_layers: list[SkippedLayer] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    cached: bool = False
    columns: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _scalar_extras_and_named_layers(self):
        for key, value in (self.model_extra or {}).items():
            if not isinstance(value, Scalar):
                raise ValueError(f"{key}: a stage's measured figure must be a number, string or bool")
        for row in self.layers:
            if not isinstance(row.get("layer"), str):
                raise ValueError("every per-layer row needs a `layer` name")
        return self

    def figure(self, key: str):
        """A measured figure by name (declared or added by the stage), or None."""
        if key in type(self).model_fields:
            return getattr(self, key)
        return (self.model_extra or {}).get(key)

    def layer_columns(self) -> list[str]:
        """The per-layer figures to show: the declared ``columns``, else those the rows hold (older reports)."""
        if self.columns:
            return list(self.columns)
        seen: list[str] = []
        for row in self.layers:
            seen += [k for k in row if k not in ("layer", "params") and k not in seen]
        return seen


class Fallback(_Record):
    reason: str
    tried: list[str]


class RunsUnder(_Record):
    xnnpack: bool
    reference: bool


class CompiledArtifact(_Record):
    path: str
    size_bytes: int
    sha256: str


class EdgeTpuRecord(_Record):
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


class OpVersion(_Record):
    op: str
    version: int = Field(description="The version its tensor types give it (TFLite's op_version.cc); >= declared.")
    count: int
    declared: int | None = Field(
        None, description="The version the file declares, where its INT4 tensors imply a newer one (absent otherwise)."
    )


class RuntimeCheck(_Record):
    runtime: str = Field(description='e.g. "tflite-runtime 2.14.0".')
    loads: bool
    error: str | None = None


class RuntimeInfo(_Record):
    ops: list[OpVersion]
    min_tflite_version: str | None = Field(description="null when an op is not in the version table.")
    checked: list[RuntimeCheck] = Field(default_factory=list)
    table: str | None = Field(None, description="Where the op-version table came from.")
    not_in_table: list[str] | None = Field(None, description="Op versions the table does not list.")
    required: str | None = Field(None, description="The runtime the target requires, e.g. tflite-runtime 2.14.")
    note: str | None = None


class FloatOp(_Record):
    name: str
    op: str
    reason: str


class LayerError(_Record):
    name: str
    op: str
    snr_db: float | None = None
    rmse: float | None = None


class SelectiveStep(_Record):
    float_ops: int = Field(description="How many ops were kept in float at this step.")
    metric_drop: float
    size_bytes: int
    chosen_after_all_steps: bool | None = None


class KeptOp(LayerError):
    """An op kept in float by selective quantization, with the int8 error that ranked it."""


class SelectiveInfo(_Record):
    """Accuracy-aware conversion: ops kept in float, one group at a time, until within the metric budget."""

    max_metric_drop: float
    budget_from: str
    checked_on: str
    full_int8: dict[str, float]
    steps: list[SelectiveStep]
    kept_in_float: list[KeptOp]
    within_budget: bool
    size_cost_bytes: int


class QuantizationInfo(_Record):
    backend: Literal["converter", "litert-quantizer"] | None = None
    scheme: str | None = Field(None, description='e.g. "int8", "int4 weight-only".')
    float_ops: list[FloatOp] = Field(default_factory=list)
    layer_errors: list[LayerError] = Field(default_factory=list, description="Worst first.")
    layer_errors_method: str | None = Field(None, description="How the layer errors were measured.")
    layer_errors_error: str | None = Field(None, description="Why no layer errors were measured.")
    selective: SelectiveInfo | None = None
    error: str | None = Field(None, description="Why the quantization analysis failed (the artifact is kept).")


class StorageEntry(_Record):
    """The constant tensors of one encoding in the stored file (compressctl.litert.storage)."""

    encoding: str = Field(description="float32, float16, int8, int4, int32, …; -sparse when sparse-encoded.")
    tensors: int
    params: int = Field(description="Values the tensors hold (their dense shape).")
    bytes: int = Field(description="Bytes they take in the file.")


class Artifact(_Record):
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

    def bits_per_weight(self) -> float | None:
        """Stored bits per value over every constant tensor (None when the record has no storage)."""
        params = sum(e.params for e in self.storage)
        return 8 * sum(e.bytes for e in self.storage) / params if params else None

    @property
    def label(self) -> str:
        return f"{self.target} ({self.conversion})"

    def target_lines(self) -> list[tuple[str, str]]:
        """The target-specific lines a report shows for this artifact, as (heading, text)."""
        return [("Edge TPU", self.edgetpu.summary(self.target))] if self.edgetpu else []


class FailedTarget(_Record):
    target: str
    error: str


class Gate(_Record):
    name: str
    target: str
    threshold: int | float
    value: int | float
    passed: bool

    @property
    def at_most(self) -> bool:
        return self.name.startswith("max_")

    def shown_value(self) -> str:
        return f"{self.value:.4g}" if isinstance(self.value, float) else str(self.value)

    def operator(self, ascii_only: bool = True) -> str:
        if ascii_only:
            return "<=" if self.at_most else ">="
        return "≤" if self.at_most else "≥"


class Environment(_Record):
    python: str
    platform: str
    machine: str
    cpu: str
    cpu_count: int | None = None
    threads: int
    packages: dict[str, str | None]
    runtime: str | None = None
    cpu_features: list[str] | None = Field(None, description='SIMD features, e.g. ["avx", "avx2", "avx512_vnni"].')


class RecipeInfo(_Record):
    name: str | None = None
    path: str
    sha256: str


class RunRecord(_Record):
    """Everything one run measured; report.json is this record."""

    schema_version: Literal[1] = SCHEMA_VERSION
    tool: Tool
    created: str
    model: ModelInfo
    data: DataInfo
    metric: Metric
    task: Task
    training: Training | None = None
    baseline: Baseline
    stages: list[StageRow] = Field(default_factory=list)
    artifacts: list[Artifact] = Field(default_factory=list)
    failed_targets: list[FailedTarget] = Field(default_factory=list)
    gates: list[Gate] = Field(default_factory=list)
    passed: bool
    environment: Environment
    recipe: RecipeInfo
    seconds: float | None = None

    @field_validator("metric", mode="before")
    @classmethod
    def _metric_name_alone(cls, value):
        # Reports written before `metric` became an object hold its name alone; every metric
        # then was an accuracy, where higher is better.
        return {"name": value, "higher_is_better": True} if isinstance(value, str) else value

    @property
    def name(self) -> str:
        return self.recipe.name or self.model.path

    def to_dict(self) -> dict:
        """report.json's contents as plain data."""
        return self.model_dump(mode="json", exclude_unset=True)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n"

    @classmethod
    def from_json(cls, text: str, source: str = "report.json") -> RunRecord:
        """Parse and validate report.json's text; ValueError with ``source: field: message`` when invalid."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{source}: not JSON ({exc})") from None
        if not isinstance(data, dict) or data.get("schema_version") != SCHEMA_VERSION:
            raise ValueError(f"{source}: not a compressctl report of schema_version {SCHEMA_VERSION}")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ValueError(f"{source}: {describe_error(exc)}") from None


def describe_error(exc: ValidationError) -> str:
    """The first problem as ``field.path: message``, and how many more there are."""
    errors = exc.errors()
    first = errors[0]
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first["loc"]).lstrip(".")
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where or 'report'}: {first['msg']}{more}"


def json_schema() -> dict:
    """report.json's JSON Schema (docs/report.schema.json)."""
    schema = RunRecord.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "compressctl report.json"
    return schema
