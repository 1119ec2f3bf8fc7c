"""What a target tells the pipeline: its params, the conversions to try in order, and checks on the result.

Who writes what: the pipeline creates ``<run>/<target name>/`` and writes ``model.tflite`` there
(through the conversion backend a ``Conversion`` names). It then hands the target that folder in
``finish``; the folder is the only place a target may write (the Edge TPU target writes its op
mapping and the compiler's output there). Everything else in the run directory is the pipeline's.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field

from compressctl.backends.conversion import Backend, Conversion  # noqa: F401 - the targets import them from here
from compressctl.core.events import Emit
from compressctl.core.strict import StrictModel
from compressctl.litert.compat import RUNTIME_HELP, RuntimeRequirement
from compressctl.report import figures as declared_figures
from compressctl.report.figures import Figure


class TargetParams(StrictModel):
    """Recipe fields every target has."""

    type: str
    name: str | None = Field(None, description="Folder and report name (default: the type).")
    runtime: RuntimeRequirement | None = Field(None, description=RUNTIME_HELP)
    strip_strings: bool = Field(
        False,
        description="Drop the file's tensor names, subgraph names and description (debug strings no runtime "
        "reads; signatures stay): on a small quantized model they are up to a third of the stored bytes. "
        "The report's per-op lists then name no layers.",
    )

    def calibration_size(self) -> int:
        """Train-split samples an int8 conversion calibrates on (0: the target never calibrates)."""
        return 0


class QuantizedTargetParams(TargetParams):
    """Recipe fields of targets that write integer artifacts: calibration size and I/O dtype."""

    calibration_samples: int = Field(
        200, ge=1, le=100_000, description="Train-split samples used to calibrate int8 activation ranges."
    )
    io_dtype: Literal["float32", "int8", "uint8"] = Field(
        "float32", description="Input/output type of an int8 model (float32 keeps float I/O)."
    )

    def calibration_size(self) -> int:
        return self.calibration_samples


class Target:
    """A deployment target: its params, its name, and the conversions to try (``conversions()``)."""

    Params: ClassVar[type[TargetParams]]
    # Fields of the artifact's record in report.json that ``finish`` may return: records typed in
    # report.artifact.Artifact, and the keys of ``figures`` (added when the class is defined).
    report_fields: ClassVar[tuple[str, ...]] = ()
    # Scalar figures ``finish`` returns (name, type, how each reads); the reports show them by the artifact.
    figures: ClassVar[tuple[Figure, ...]] = ()
    # The recipe's name (its ``name:``, else its file's stem), set by the pipeline: what files are named after.
    recipe_name: str = ""
    # The train samples its int8 conversion calibrated on, set by the pipeline before ``finish`` (None when it
    # does not calibrate): what a target checks its artifact on (the mcu target's lookup tables).
    calibration: object = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "figures" in vars(cls):
            cls.report_fields = tuple(dict.fromkeys([*cls.report_fields, *(f.key for f in cls.figures)]))
        if "type" in vars(cls):
            declared_figures.declare("target", cls.type, cls.figures)

    def __init__(self, params: TargetParams):
        self.params = params

    @classmethod
    def supports(cls, layer) -> bool | str | None:
        """Whether a Keras layer will run on this target (True or the reason not); None: no per-layer view.

        ``inspect`` shows a column for each target that answers.
        """
        return None

    @property
    def name(self) -> str:
        return self.params.name or self.params.type

    def calibration_size(self) -> int:
        return self.params.calibration_size()

    def conversions(self) -> list[Conversion]:  # pragma: no cover - every target overrides it
        raise NotImplementedError

    def evaluate(self, path: Path, data, task, emit: Emit) -> float | None:
        """The artifact's metric on ``data``'s test split measured in the target's own runtime (the mcu
        target's TFLM), after ``finish``; None: it is measured in LiteRT, as for every other target."""
        return None

    def finish(self, path: Path, folder: Path, emit: Emit) -> dict:
        """Check the artifact at ``path`` further; may write companion files into ``folder`` only.

        Raises StageError to reject the artifact (the next conversion is tried). Returns fields
        (named in ``report_fields``) that join the artifact's record.
        """
        return {}
