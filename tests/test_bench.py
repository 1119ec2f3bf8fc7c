"""Latency statistics: percentiles in milliseconds from per-invoke seconds (no interpreter, no TensorFlow)."""

import pytest

from compressctl.litert.bench import latency_stats, measured_on

pytestmark = pytest.mark.unit


def test_percentiles_of_a_known_series_in_milliseconds():
    seconds = [i / 1000 for i in range(1, 101)]  # 1 ms … 100 ms
    stats = latency_stats(seconds)
    # numpy's default (linear) percentile: p50 of 1..100 is 50.5, p90 is 90.1, p99 is 99.01.
    assert stats == {"p50": 50.5, "p90": 90.1, "p99": 99.01, "mean": 50.5, "runs": 100}


def test_outliers_move_the_tail_not_the_median():
    seconds = [0.001] * 98 + [0.5, 0.5]
    stats = latency_stats(seconds)
    assert stats["p50"] == 1.0 and stats["p90"] == 1.0
    assert stats["p99"] == pytest.approx(500.0)
    assert stats["mean"] == pytest.approx(10.98)


def test_figures_are_rounded_to_five_decimals():
    stats = latency_stats([1.23456789e-5] * 3)
    assert stats["p50"] == 0.01235 and stats["runs"] == 3


def test_measured_on_names_machine_delegate_threads_and_int8_instruction_set():
    from compressctl.core.cpu_features import cpu_features, simd_suffix

    suffix = "-" + simd_suffix(cpu_features())
    assert measured_on(1).startswith("host-cpu-") and measured_on(1).endswith("-xnnpack-1t" + suffix)
    assert measured_on(4, xnnpack=False).endswith("-reference-4t" + suffix)


def test_a_partial_zoo_rerun_keeps_other_rows_and_is_dated_apart():
    from benchmarks.zoo import merged, render_zoo

    row = {"size_bytes": 2048, "ratio": 2.0, "ratio_gzip": 3.0, "delta": 0.01, "exit_code": 0}
    earlier = {
        "epochs": 5,
        "recipes": ["cpu-int8", "smallest"],
        "families": {
            "resnet": {
                "params": 10,
                "accuracy": 0.9,
                "rows": [{**row, "recipe": "cpu-int8"}, {**row, "recipe": "smallest"}],
            }
        },
    }
    again = {
        "epochs": 5,
        "recipes": ["smallest"],
        "families": {"resnet": {"params": 10, "accuracy": 0.9, "rows": [{**row, "recipe": "smallest", "ratio": 6.0}]}},
    }
    zoo = merged(earlier, again)
    rows = {r["recipe"]: r["ratio"] for r in zoo["families"]["resnet"]["rows"]}
    assert rows == {"cpu-int8": 2.0, "smallest": 6.0}
    zoo.update(
        date="D1", wall_s=1800.0, reruns=[{"date": "D2", "wall_s": 200.0, "families": [], "recipes": ["smallest"]}]
    )
    text = "\n".join(render_zoo(zoo))
    assert "Measured D1 (`benchmarks/run.py --only zoo`), 1800 s." in text
    assert "Measured again D2 (`--only zoo --zoo-recipes smallest`), 200 s: those rows." in text
