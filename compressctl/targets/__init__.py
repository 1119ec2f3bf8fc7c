"""Deployment targets, one module each: how to convert, and what to check on the result."""

from compressctl.targets.cpu import CpuTarget
from compressctl.targets.edgetpu import EdgeTpuTarget
from compressctl.targets.gpu import GpuTarget

TARGETS = {"cpu": CpuTarget, "gpu": GpuTarget, "edgetpu": EdgeTpuTarget}


def build(params):
    return TARGETS[params.type](params)
