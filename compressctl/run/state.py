"""What one run works with: ``RunState``, built once in ``pipeline.run`` and passed to each step."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from compressctl.backends.convert import Converter
from compressctl.core.events import Emit
from compressctl.datasets import DataSource
from compressctl.litert.evaluate import TaskInfo
from compressctl.recipe.schema import Recipe
from compressctl.run.cache import StageCache


@dataclass(kw_only=True)
class RunState:
    """What one run works with; built in ``pipeline.run`` and passed to each step."""

    recipe: Recipe
    data: DataSource  # npz or a streaming source (compressctl.datasets)
    converter: Converter
    emit: Emit
    staging: Path
    work: Path
    handle: object = None
    params: int | None = None  # counted at load: stages share, wrap and replace the original layers
    task: TaskInfo | None = None
    cache: StageCache | None = None
    resume: bool = False
    recipe_info: dict = field(default_factory=dict)  # name, path and sha256 of the recipe file
    started: float = 0.0  # perf_counter at the start of the run
    strategy: object = None  # tf.distribute strategy of the training stages (compressctl.model.distribute), or None
    devices: str = "one device"  # what the training stages ran on, for the report
    # The LiteRT Quantizer backend's worker and its float input (compressctl/backends/steps.py).
    quantizer: object = None
    float_tflite: Path | None = None
