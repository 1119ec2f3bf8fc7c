"""Compression techniques, one module each. Importing this package does not import TensorFlow.

Each technique is a ``Stage`` subclass (see ``base.Stage``) in a module of its own here; they are
found by reading the package, and ``STAGE_TYPES`` lists them in their legal order. The recipe
validator, ``inspect``, ``init``, the reference docs and the reports read this registry, so a new
technique is one module (plus its tests) and nothing else, here or in a plugin package. May import
backends/, model/, litert/, datasets/, report/ and core/; never a target, the recipe or anything above
it, and a stage module never another.
"""

from compressctl.core.registry import discover
from compressctl.stages.base import Stage

# The package's modules, then the plugins' (core.registry: entry points or COMPRESSCTL_PLUGINS, kind "stages").
STAGE_TYPES: tuple[type[Stage], ...] = tuple(
    sorted(discover(__name__, Stage, kind="stages"), key=lambda cls: (cls.order, cls.type))
)
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
