"""LiteRT's (ai-edge-litert's) internals: the interpreter's op listing.

The interpreter's public API lists tensors only; ``_get_ops_details`` is the one listing of its ops
(each with ``index``, ``op_name``, ``inputs`` and ``outputs``). tflite-runtime's interpreter, the
fallback on edge boards, has the same method.
"""

from __future__ import annotations

from compressctl.core.internals.base import Internal
from compressctl.core.internals.base import check as check_internals

DISTRIBUTION = "ai-edge-litert"

INTERNALS = (
    Internal(
        "ai_edge_litert.interpreter.Interpreter",
        "_get_ops_details",
        "the ops of a .tflite file (MACs, op names, layer-wise errors, Edge TPU op checks)",
    ),
)


def ops_details(interpreter) -> list[dict]:
    """Every op of a loaded interpreter's main subgraph: ``index``, ``op_name``, ``inputs``, ``outputs``."""
    return interpreter._get_ops_details()


def check() -> list[str]:
    """One line per internal above that the installed LiteRT lacks."""
    return check_internals(DISTRIBUTION, INTERNALS, __name__)
