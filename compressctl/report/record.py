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

from pydantic import ConfigDict, Field, ValidationError, field_validator, model_serializer, model_validator

from compressctl.report import figures
from compressctl.report.artifact import (  # noqa: F401 - the artifact's records, importable from here as before
    Artifact,
    CompiledArtifact,
    EdgeTpuRecord,
    Fallback,
    FloatOp,
    KeptOp,
    Latency,
    LayerError,
    OpVersion,
    QuantizationInfo,
    Record,
    RunsUnder,
    RuntimeCheck,
    RuntimeInfo,
    SelectiveInfo,
    SelectiveStep,
    StorageEntry,
)

# Where every run keeps its float32 baseline, relative to the run directory.
BASELINE_ARTIFACT = "baseline/model_float32.tflite"
SCHEMA_VERSION = 1

# A value in a per-layer row or a stage's own measured figure.
Scalar = figures.Scalar


class Tool(Record):
    name: str
    version: str


class ConvertedFrom(Record):
    """How a Keras 3 file was rebuilt in tf_keras, and the output check that accepted it."""

    format: str
    keras_version: str
    checked_with: str
    layers_copied: int
    check_samples: int
    check_inputs: str
    max_abs_difference: float
    tolerance: float


class ModelInfo(Record):
    path: str
    format: str
    input_shape: list[int | None]
    output_units: int | None = None
    params: int | None = Field(None, description="Parameters of the loaded Keras model (null without one).")
    notes: list[str] = Field(default_factory=list)
    converted_from: ConvertedFrom | None = Field(None, description="A Keras 3 file rebuilt in tf_keras.")


class DataInfo(Record):
    """The data a run measured on. ``path`` and ``sha256`` are the npz file's; for another format they
    are the train split's location and the source's fingerprint, and the source's own settings follow."""

    path: str
    sha256: str
    train_samples: int
    test_samples: int
    format: str = Field("npz", description="npz, images, tfrecord, csv, python, or a plugin's format.")
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


class Metric(Record):
    name: str = Field(description="e.g. accuracy, top_5_accuracy.")
    higher_is_better: bool = True


class Task(Record):
    binary: bool
    from_logits: bool
    regression: bool = False


class Training(Record):
    strategy: str = Field(description="training.strategy of the recipe: auto, none, mirrored or multi_worker.")
    devices: str = Field(description="What the training stages ran on, e.g. 'one device', '2 devices (mirrored)'.")


class Baseline(Record):
    artifact: str = Field(description="Path relative to the run directory.")
    size_bytes: int
    gzip_bytes: int
    sha256: str
    metric_value: float = Field(description="The original Keras model on the test split.")
    tflite_metric_value: float | None = None
    latency_ms: Latency
    measured_on: str
    macs: int | None = Field(None, description="Multiply-accumulates per inference, from the model's shapes.")


class SkippedLayer(Record):
    layer: str
    reason: str


class StageRow(Record):
    """One stage: its time, the Keras model's metric after it, and what it measured.

    A stage's own overall figures (``sparsity``, ``params_after``, ...) sit beside the common
    fields, scalars each, as the stage class declares them (``Stage.figures``, kept in
    ``report.figures``); one of another type than declared is refused, one not declared is kept
    and not shown. ``columns`` names the per-layer figures the stage reports (its
    ``layer_figures``), in the order tables show them. In report.json the figures follow
    ``metric_value``, in the order the stage measured them.
    """

    model_config = ConfigDict(
        extra="allow",
        frozen=True,
        json_schema_extra={"additionalProperties": {"type": ["string", "number", "boolean", "null"]}},
    )

    type: str
    seconds: float
    metric_value: float
    layers: list[dict[str, Scalar]] = Field(default_factory=list)
    skipped_layers: list[SkippedLayer] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    cached: bool = False
    columns: list[str] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _plain_scalars(cls, data):
        # A figure measured as a numpy scalar (np.float64, np.int64) is stored as the Python number it holds.
        if isinstance(data, dict):
            return {k: v.item() if hasattr(v, "dtype") and hasattr(v, "item") else v for k, v in data.items()}
        return data

    @model_validator(mode="after")
    def _declared_figures_and_named_layers(self):
        figures.check("stage", self.type, self.model_extra or {}, undeclared=True)
        for row in self.layers:
            if not isinstance(row.get("layer"), str):
                raise ValueError("every per-layer row needs a `layer` name")
        return self

    @model_serializer(mode="wrap")
    def _figures_after_the_metric(self, handler):
        data = handler(self)
        head = [k for k in ("type", "seconds", "metric_value") if k in data]
        extra = [k for k in self.model_extra or {} if k in data]
        return {k: data[k] for k in [*head, *extra, *(k for k in data if k not in head and k not in extra)]}

    def figure(self, key: str):
        """A measured figure by name, or None."""
        return (self.model_extra or {}).get(key)

    def measured(self) -> dict[str, Scalar]:
        """The stage's own figures, in the order it measured them."""
        return dict(self.model_extra or {})

    def layer_columns(self) -> list[str]:
        """The per-layer figures to show: the declared ``columns``, else those the rows hold (older reports)."""
        if self.columns:
            return list(self.columns)
        seen: list[str] = []
        for row in self.layers:
            seen += [k for k in row if k not in ("layer", "params") and k not in seen]
        return seen


class FailedTarget(Record):
    target: str
    error: str


class Gate(Record):
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


class Environment(Record):
    python: str
    platform: str
    machine: str
    cpu: str
    cpu_count: int | None = None
    threads: int
    packages: dict[str, str | None]
    runtime: str | None = None
    cpu_features: list[str] | None = Field(None, description='SIMD features, e.g. ["avx", "avx2", "avx512_vnni"].')


class RecipeInfo(Record):
    name: str | None = None
    path: str
    sha256: str


class RunRecord(Record):
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
