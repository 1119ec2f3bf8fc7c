"""Compression techniques, one module each. Importing this package does not import TensorFlow.

Each technique is a ``Stage`` subclass (see ``base.Stage``); ``STAGE_TYPES`` lists them in their
legal order. The recipe validator, ``inspect``, ``init`` and the report read this registry, so a
new technique is one module plus its entry here.
"""

from compressctl.stages.base import Stage
from compressctl.stages.cluster import Cluster
from compressctl.stages.distill import Distill
from compressctl.stages.lowrank import LowRank
from compressctl.stages.prune import Prune
from compressctl.stages.quantize import Quantize

STAGE_TYPES: tuple[type[Stage], ...] = (LowRank, Distill, Prune, Cluster, Quantize)
STAGES: dict[str, type[Stage]] = {cls.type: cls for cls in STAGE_TYPES}


def build(params) -> Stage:
    """The stage object for one validated ``stages[]`` entry."""
    return STAGES[params.type](params)


def legal_order() -> list[str]:
    """Stage types in an order the recipe accepts (stable within a rank)."""
    return [cls.type for cls in sorted(STAGE_TYPES, key=lambda cls: cls.order)]


def order_problem(types: list[str]) -> tuple[int, str] | None:
    """The first stage that may not come where it is, and why; None for a legal sequence."""
    for i, kind in enumerate(types):
        stage = STAGES[kind]
        earlier = [STAGES[t] for t in types[:i]]
        if stage.once and any(e is stage for e in earlier):
            return i, f"{kind} appears twice; {stage.once}"
        later_rank = [e for e in earlier if e.order > stage.order]
        if later_rank:
            last = later_rank[-1]
            if stage.why_first:
                return i, f"cannot {kind} after {last.type}: {stage.why_first} and would lose {last.leaves}"
            return i, f"cannot {kind} after {last.type}: " + last.blocks.format(kind=kind)
    return None
