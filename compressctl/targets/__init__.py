"""Deployment targets, one module each: how to convert, and what to check on the result.

Each target is a ``Target`` subclass in a module of its own here, found by reading the package:
a new target is one module (plus its tests) and nothing else. May import backends/ and everything
below it; never a stage, the recipe or anything above it, and a target module never another.
"""

from compressctl.core.registry import discover
from compressctl.targets.base import Target

# The package's modules, then the plugins' (core.registry: entry points or COMPRESSCTL_PLUGINS, kind "targets").
TARGETS: dict[str, type[Target]] = {cls.type: cls for cls in discover(__name__, Target, kind="targets")}


def build(params) -> Target:
    return TARGETS[params.type](params)
