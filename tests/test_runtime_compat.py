"""The op-version table and conversions that stay within a runtime (a GRU end to end: tests/test_runtime_check.py)."""

from compressctl.litert.compat import (
    RuntimeRequirement,
    min_runtime,
    requirement_problem,
    within,
)
from compressctl.litert.op_versions import KNOWN_RELEASES, MIN_RUNTIME
from compressctl.targets.base import Conversion


def test_table_holds_the_published_entries():
    # Spot checks against runtime_version.cc (see the module docstring for the commit).
    assert MIN_RUNTIME[("FULLY_CONNECTED", 9)] == "2.3.0"
    assert MIN_RUNTIME[("FULLY_CONNECTED", 12)] == "2.17.0"
    assert MIN_RUNTIME[("CONV_2D", 1)] == "1.5.0"
    assert ("BROADCAST_TO", 1) not in MIN_RUNTIME and MIN_RUNTIME[("BROADCAST_TO", 2)] == "2.5.0"
    assert KNOWN_RELEASES[0] == "1.5" and "2.14" in KNOWN_RELEASES and KNOWN_RELEASES[-1] == "2.18"


def test_min_runtime_is_the_newest_op_and_null_for_an_unknown_one():
    ops = [{"op": "CONV_2D", "version": 3, "count": 1}, {"op": "FULLY_CONNECTED", "version": 12, "count": 2}]
    assert min_runtime(ops) == ("2.17.0", [])
    assert min_runtime(ops + [{"op": "FULLY_CONNECTED", "version": 99, "count": 1}]) == (None, ["FULLY_CONNECTED v99"])


def test_requirement_problem_names_the_op_that_is_too_new():
    record = {"ops": [{"op": "FULLY_CONNECTED", "version": 12, "count": 1}], "checked": []}
    problem = requirement_problem(record, RuntimeRequirement(version="2.14"))
    assert problem == "FULLY_CONNECTED v12 needs 2.17.0; the target requires tflite-runtime 2.14"
    assert requirement_problem(record, RuntimeRequirement(version="2.17")) is None
    failed = {"ops": [], "checked": [{"runtime": "tflite-runtime 2.14.0", "loads": False, "error": "boom"}]}
    assert (
        requirement_problem(failed, RuntimeRequirement(version="2.14"))
        == "tflite-runtime 2.14.0 could not run it: boom"
    )


def test_within_adds_a_per_tensor_variant_after_each_quantizing_conversion():
    tries = within(
        [Conversion("int8", label="full int8"), Conversion("float32", label="f")], RuntimeRequirement(version="2.14")
    )
    assert [(c.mode, c.per_tensor_dense) for c in tries] == [("int8", False), ("int8", True), ("float32", False)]
    assert "newer runtime than tflite-runtime 2.14" in tries[1].fallback_reason
    assert within(tries[:1], None) == tries[:1]
