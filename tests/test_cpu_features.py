"""The CPU's SIMD features, read from /proc/cpuinfo text, and what they say about int8 speed."""

import pytest

from compressctl.core.cpu_features import cpu_features, int8_slower_note, simd_suffix

pytestmark = pytest.mark.unit

EPYC_AVX2 = "processor\t: 0\nmodel name\t: AMD EPYC 7B12\nflags\t\t: fpu sse4_1 sse4_2 avx avx2 fma f16c bmi2\n"
XEON_VNNI = "flags\t: sse4_2 avx avx2 fma avx512f avx512bw avx512vl avx512_vnni\n"
GRAVITON = "Features\t: fp asimd evtstrm aes crc32 asimddp i8mm sve\n"


def test_features_from_x86_flags():
    assert cpu_features(EPYC_AVX2, "x86_64") == ["sse4_1", "sse4_2", "avx", "avx2", "fma", "f16c"]
    assert "avx512_vnni" in cpu_features(XEON_VNNI, "x86_64")


def test_features_from_arm_features_line():
    assert cpu_features(GRAVITON, "aarch64") == ["neon", "dotprod", "i8mm", "sve"]


def test_the_suffix_names_the_instruction_set_that_decides_int8_speed():
    assert simd_suffix(cpu_features(EPYC_AVX2, "x86_64")) == "avx2"
    assert simd_suffix(cpu_features(XEON_VNNI, "x86_64")) == "avx512-vnni"
    assert simd_suffix(cpu_features(GRAVITON, "aarch64")) == "i8mm"
    assert simd_suffix([]) == "no-simd-info"


def test_slower_int8_note_names_the_missing_vnni():
    note = int8_slower_note(cpu_features(EPYC_AVX2, "x86_64"), 0.74)
    assert note.startswith("int8 ran slower than float32 on this host (0.74×)") and "no VNNI" in note
    assert "dot-product instruction" in int8_slower_note(cpu_features(XEON_VNNI, "x86_64"), 0.8)
    assert int8_slower_note(["avx2"], 1.3) is None and int8_slower_note(["avx2"], 0.97) is None


def test_this_host_measured_on_carries_the_suffix():
    from compressctl.litert.bench import measured_on

    assert measured_on(1).startswith("host-cpu-") and measured_on(1).endswith(simd_suffix(cpu_features()))
