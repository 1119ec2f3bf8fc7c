"""Deployment targets, one module each: how to convert, and what to check on the result."""

from compressctl.targets.cpu import CpuTarget

TARGETS = {"cpu": CpuTarget}


def build(params):
    return TARGETS[params.type](params)
