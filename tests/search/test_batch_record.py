"""batch.json's derived fields (exit code, each model's best within the gates) and a run directory's trip home."""

import pytest

from compressctl.search import batch_record as rec
from compressctl.search.ray_trials import pack_run, unpack_run

pytestmark = pytest.mark.unit


def run(model, recipe, status, gzip=None, delta=0.0):
    artifacts = [] if gzip is None else [{"target": "cpu", "path": "cpu/model.tflite", "gzip_bytes": gzip,
                                          "metric_delta": delta, "compression_ratio_gzip": 1000 / gzip}]  # fmt: skip
    return {"model": model, "recipe": f"recipes/{recipe}.yaml", "run_dir": f"runs/{model}/{recipe}",
            "status": status, "artifacts": artifacts}  # fmt: skip


@pytest.mark.parametrize(
    ("statuses", "code"),
    [(["ok", "ok"], 0), (["ok", "gate_failed"], 1), (["gate_failed", "failed"], 3), (["ok", "pending"], 3)],
)
def test_exit_code(statuses, code):
    assert rec.exit_code([{"status": s} for s in statuses]) == code


def test_best_per_model_is_the_smallest_artifact_of_a_run_that_met_every_gate():
    runs = [
        run("a", "int8", "ok", gzip=300),
        run("a", "fp16", "ok", gzip=500),
        run("a", "int4", "gate_failed", gzip=100),  # smaller, but missed a gate
        run("b", "int8", "failed"),
        run("b", "fp16", "gate_failed", gzip=200),
    ]
    best = rec.best_per_model(runs, ["a", "b"])
    assert best["a"]["run_dir"] == "runs/a/int8" and best["a"]["gzip_bytes"] == 300
    assert best["b"] is None
    page = rec.render_html(rec.build({"fleet": {"path": "f.yaml"}, "models": ["a", "b"]}, runs))
    assert "runs/a/int8/cpu/model.tflite" in page and "no run met every gate" in page


def test_a_shipped_run_directory_arrives_whole_and_leaves_the_sender(tmp_path):
    sent = tmp_path / "worker" / "runs" / "m" / "r"
    (sent / "cpu").mkdir(parents=True)
    (sent / "report.json").write_text("{}")
    (sent / "cpu" / "model.tflite").write_bytes(b"\0" * 1000)
    archive = pack_run(sent)
    assert not sent.exists() and list(sent.parent.iterdir()) == []
    target = tmp_path / "driver" / "runs" / "m" / "r"
    unpack_run(archive, target)
    assert (target / "report.json").read_text() == "{}"
    assert (target / "cpu" / "model.tflite").read_bytes() == b"\0" * 1000


def test_an_interrupted_batch_records_the_exit_code_the_command_gives(tmp_path):
    from compressctl.search.batch import _Batch

    runs = [{**run("a", "int8", "ok", gzip=300), "status": "ok"}, run("a", "fp16", "pending")]
    batch = _Batch(out=tmp_path, header={"fleet": {"path": "f.yaml"}, "models": ["a"]}, runs=runs)
    assert batch.write(final=True)["exit_code"] == 3  # a pending run: not all done
    written = batch.write(final=True, interrupted=True)
    assert written["exit_code"] == 130 and written["counts"]["pending"] == 1
    assert '"exit_code": 130' in (tmp_path / "batch.json").read_text()
