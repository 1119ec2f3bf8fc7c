"""``compressctl batch`` end to end on embedded Ray: two sample models × two cheap recipes and a failing pair."""

import json
import os

import pytest

from tests import conftest
from tests.conftest import REPO
from tests.helpers.remeasure import remeasure

# One worker runs these in turn under pytest-xdist (--dist loadgroup): each starts Ray.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ray")]

CHEAP = ["bench.runs=10", "bench.warmup=2", "bench.rounds=2"]


def cli(*args):
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    return conftest.cli(*args, env=env, timeout=600)


def test_a_fleet_runs_every_pair_records_a_failure_resumes_and_compares(tmp_path, sample_models):
    digits = sample_models / "digits.npz"
    broken = tmp_path / "broken.h5"
    broken.write_bytes(b"not an HDF5 file")
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(
        "models:\n"
        f"  - {{name: lenet, model: {sample_models}/lenet5_digits, data: {digits}}}\n"
        f"  - {{name: mlp, model: {sample_models}/mlp_digits, data: {digits}}}\n"
        f"  - {{name: broken, model: {broken}, data: {digits}, recipes: [gpu-fp16]}}\n"
        f"recipes: [{REPO}/recipes/cpu-int8.yaml, {REPO}/recipes/gpu-fp16.yaml]\n"
        f"set: {json.dumps(CHEAP)}\n"
    )
    out = tmp_path / "batch"
    result = cli("batch", fleet, "--out", out, "--json")
    assert result.returncode == 3, result.stderr[-3000:]  # one run failed
    printed = json.loads(result.stdout)
    batch = json.loads((out / "batch.json").read_text())
    assert printed["runs"] == batch["runs"]
    assert batch["engine"]["address"] == "local" and batch["engine"]["name"] == "ray"
    runs = {r["run_dir"]: r for r in batch["runs"]}
    assert sorted(runs) == sorted(
        ["runs/lenet/cpu-int8", "runs/lenet/gpu-fp16", "runs/mlp/cpu-int8", "runs/mlp/gpu-fp16", "runs/broken/gpu-fp16"]
    )
    failed = runs.pop("runs/broken/gpu-fp16")
    assert failed["status"] == "failed" and failed["error"] and "\n" not in failed["error"]
    assert "broken.h5" in failed["error"]
    assert not (out / failed["run_dir"] / "report.json").exists()
    assert batch["counts"] == {"ok": 4, "gate_failed": 0, "failed": 1, "pending": 0}
    for run_dir, run in runs.items():
        assert run["status"] == "ok" and run["gates_passed"] is True and run["error"] is None
        assert run["node"] and run["seconds"] > 0
        report = remeasure(out / run_dir, digits)  # sizes, gzip, sha256, ratios and metrics match the files
        (artifact,) = report["artifacts"]
        for key in ("gzip_bytes", "size_bytes", "compression_ratio", "compression_ratio_gzip", "metric_delta"):
            assert run[key] == artifact[key]
        assert "runs: 10" in (out / run_dir / "recipe.lock.yaml").read_text()  # the fleet's `set` applied
        assert run["gates"] == [{k: g[k] for k in ("name", "target", "threshold", "value", "passed")}
                                for g in report["gates"]]  # fmt: skip
    # Each model's best within the gates: its int8 artifact (smaller than float16, both met the gates).
    for model in ("lenet", "mlp"):
        assert batch["best"][model]["run_dir"] == f"runs/{model}/cpu-int8"
        assert batch["best"][model]["gzip_bytes"] < runs[f"runs/{model}/gpu-fp16"]["gzip_bytes"]
    assert batch["best"]["broken"] is None
    page = (out / "report.html").read_text()
    assert page.count("<tr class=") == 5 and "no run met every gate" in page

    finished = {d: (out / d / "report.json").stat().st_mtime_ns for d in runs}
    again = cli("batch", fleet, "--out", out, "--resume", "--json")
    assert again.returncode == 3, again.stderr[-3000:]
    assert "started lenet" not in again.stderr and "started broken/gpu-fp16" in again.stderr
    assert {d: (out / d / "report.json").stat().st_mtime_ns for d in runs} == finished  # not run again
    resumed = json.loads((out / "batch.json").read_text())
    assert [r["status"] for r in resumed["runs"]] == [r["status"] for r in batch["runs"]]

    compared = cli("compare", out, "--json")
    assert compared.returncode == 0, compared.stderr
    rows = json.loads(compared.stdout)
    assert {r["run"] for r in rows if not r["baseline"]} == {n.removeprefix("runs/") for n in runs}
    assert len([r for r in rows if not r["baseline"]]) == 4
