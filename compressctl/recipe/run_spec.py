"""The recipe's run settings: ``training:`` (batch size, steps, strategy, TensorFlow's threads) and ``bench:``."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError

from compressctl.core.strict import StrictModel


class Threads(StrictModel):
    intra_op: int = Field(ge=1, le=1024, description="TensorFlow's intra-op threads (one op's work split over them).")
    inter_op: int = Field(ge=1, le=1024, description="TensorFlow's inter-op threads (ops run side by side).")


class Training(StrictModel):
    batch_size: int = Field(64, ge=1, le=65536, description="Default fine-tuning batch size for every stage.")
    steps_per_epoch: int | None = Field(
        None,
        ge=1,
        le=1_000_000_000,
        description="At most this many batches per epoch in every training stage (default: the whole train "
        "split). For data sets too large to pass over: the train stream then repeats, reshuffled on every pass, "
        "and each epoch takes the next batches from it; pruning schedules count these steps.",
    )
    run_eagerly: bool = Field(
        False,
        description="Run the training stages' steps eagerly instead of tracing them into a graph first. Tracing "
        "a large model's training step (a QAT-annotated MobileNetV3, for one) takes longer than a few batches: "
        "with few steps (a CI smoke run with a small steps_per_epoch) eager steps finish sooner; for whole "
        "epochs the traced graph is faster. Eager and traced steps may round differently, so the artifact's bytes "
        "depend on it; recipe.lock.yaml records it.",
    )
    # compressctl.model.distribute turns this into a tf.distribute strategy for the training stages.
    strategy: Literal["auto", "none", "mirrored", "multi_worker"] = Field(
        "auto",
        description="Devices the training stages fine-tune on: none (one device), mirrored (MirroredStrategy over "
        "every local GPU), multi_worker (MultiWorkerMirroredStrategy from TF_CONFIG), auto (mirrored when more "
        "than one GPU is visible, else none). QAT and distillation always run on one device.",
    )
    threads: Threads | None = Field(
        None,
        description="{intra_op: N, inter_op: M}: TensorFlow's thread counts for the run (training and "
        "conversion), set before TensorFlow runs anything: float sums split over another count of threads "
        "round differently, so the artifact's bytes depend on them. Default: TensorFlow's own (the "
        "environment's TF_NUM_INTRAOP_THREADS and TF_NUM_INTEROP_THREADS, else the machine's CPUs); "
        "recipe.lock.yaml records the counts used either way.",
    )


class Bench(StrictModel):
    runs: int = Field(200, ge=1, le=1_000_000, description="Timed invocations per model.")
    warmup: int = Field(20, ge=0, le=100_000, description="Untimed invocations before timing.")
    rounds: int = Field(5, ge=1, le=1000, description="Rounds alternating baseline and artifacts.")
    threads: int = Field(1, ge=1, le=256, description="Interpreter threads.")
    batch_sizes: list[Annotated[int, Field(strict=True, ge=1, le=65536)]] = Field(
        default_factory=list,
        max_length=16,
        description="Batch sizes to time each artifact (and the baseline) at besides the batch-1 latency: samples "
        "per second with the interpreter's input resized to each (report.json: latency_ms.throughput). A model "
        "whose input cannot be resized reports that batch size as not run, with the reason. Default: none.",
    )

    @field_validator("batch_sizes")
    @classmethod
    def _distinct_batch_sizes(cls, sizes):
        if len(set(sizes)) != len(sizes):
            raise PydanticCustomError("duplicate_batch_size", "batch sizes repeat: {sizes}", {"sizes": sizes})
        return sizes
