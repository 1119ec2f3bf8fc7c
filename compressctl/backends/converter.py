"""The TFLite converter backend: the modes it can produce, and the check that a target asks only for those.

The conversion itself runs in compressctl/backends/convert.py (a warm child process, see convert_worker.py);
this module is the backend's contract with the recipe.
"""

from __future__ import annotations

from compressctl.backends.convert import Converter

NAME = "converter"
# Modes the TFLite converter produces. Lower-bit weights (int4), weight-only and int16-activation
# schemes are the LiteRT Quantizer's (compressctl/backends/litert_quantizer.py).
MODES = ("int8", "dynamic", "float32", "float16")

__all__ = ["MODES", "NAME", "Converter", "check_mode"]


def check_mode(mode: str) -> str:
    """``mode`` when the converter produces it; a ValueError naming the backend that does, else."""
    if mode not in MODES:
        raise ValueError(
            f"mode {mode} needs `backend: litert-quantizer`; the TFLite converter quantizes to "
            f"{', '.join(m for m in MODES if m != 'float16')} only"
        )
    return mode
