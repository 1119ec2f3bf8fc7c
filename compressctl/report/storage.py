"""Where a stored file's bytes go, as report.json records it (computed by compressctl.litert.storage).

Pure pydantic: no TensorFlow, no numpy.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class StorageEntry(BaseModel):
    """The constant tensors of one encoding in the stored file (compressctl.litert.storage)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    encoding: str = Field(
        description="float32, float16, int8, int4, int32, …; -sparse when sparse-encoded; lut1-lut7 for TFLM "
        "lookup tables (indices of that many bits, decoded by DECODE)."
    )
    tensors: int
    params: int = Field(description="Values the tensors hold (their dense shape).")
    bytes: int = Field(description="Bytes they take in the file.")
