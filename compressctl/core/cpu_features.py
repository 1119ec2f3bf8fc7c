"""The CPU's SIMD features that decide how fast int8 (and float) TFLite kernels run on it.

XNNPACK's int8 kernels are fast where the CPU has a dot-product instruction for 8-bit values
(x86: AVX-512 VNNI or AVX-VNNI; Arm: the dot-product extension); with AVX2 alone they widen to
16 bits first and often run no faster, sometimes slower, than XNNPACK's float32 kernels.
"""

from __future__ import annotations

import platform
from pathlib import Path

# /proc/cpuinfo flag names that matter for TFLite kernels, in the order they are reported.
X86_FEATURES = (
    "sse4_1",
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx_vnni",
    "avx512_bf16",
    "amx_int8",
)
# Arm's `Features` line: asimd is NEON; asimddp the 8-bit dot product; i8mm 8-bit matrix multiply.
ARM_FEATURES = {"asimd": "neon", "neon": "neon", "asimddp": "dotprod", "i8mm": "i8mm", "sve": "sve", "sve2": "sve2"}
INT8_DOT = {"avx512_vnni", "avx_vnni", "amx_int8", "dotprod", "i8mm"}


def cpu_features(cpuinfo: str | None = None, machine: str | None = None) -> list[str]:
    """The SIMD features of this CPU that matter for TFLite kernels (empty when they cannot be read)."""
    machine = (machine or platform.machine()).lower()
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = ""
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            flags.update(value.split())
            break
    if machine in ("arm64", "aarch64") and not flags and platform.system() == "Darwin":
        # Apple silicon: every core has NEON and the dot product; /proc/cpuinfo does not exist there.
        return ["neon", "dotprod"]
    if machine.startswith(("arm", "aarch")):
        found = {ARM_FEATURES[f] for f in flags if f in ARM_FEATURES}
        if machine in ("arm64", "aarch64"):
            found.add("neon")  # Advanced SIMD is mandatory on AArch64
        return [f for f in ("neon", "dotprod", "i8mm", "sve", "sve2") if f in found]
    return [f for f in X86_FEATURES if f in flags]


def simd_suffix(features: list[str]) -> str:
    """A short name of the instruction set that decides int8 speed, for ``measured_on``."""
    for name in ("amx_int8", "avx512_vnni", "avx_vnni", "avx512f", "avx2", "avx", "i8mm", "dotprod", "neon"):
        if name in features:
            return name.replace("_", "-")
    return "no-simd-info" if not features else "sse"


def int8_slower_note(features: list[str], speedup: float) -> str | None:
    """One line when an int8 artifact ran slower than float32 here (by more than 5 %: timing noise), and why."""
    if speedup >= 0.95:
        return None
    if INT8_DOT & set(features):
        reason = (
            "this CPU has an 8-bit dot-product instruction, so the likely cause is a small model whose "
            "per-invoke overhead (quantize/dequantize at the float I/O) outweighs the arithmetic"
        )
    elif "avx2" in features or "neon" in features:
        isa = "AVX2" if "avx2" in features else "NEON"
        reason = (
            f"no VNNI/dot-product instruction on this CPU ({isa} only): XNNPACK's int8 kernels widen 8-bit values "
            "to 16 bits before multiplying, which can be slower than its float32 kernels"
        )
    else:
        reason = "this CPU has no SIMD int8 instructions XNNPACK uses"
    return f"int8 ran slower than float32 on this host ({speedup:.2f}×): {reason}"
