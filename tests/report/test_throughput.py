"""bench.batch_sizes: samples per second at each batch size, validated, timed, and shown in report.md/html."""

import numpy as np
import pytest

from compressctl.core.errors import UserError
from compressctl.report import html, render_markdown
from compressctl.report.record import RunRecord
from tests.helpers.pages import fixture

pytestmark = pytest.mark.unit

THROUGHPUT = [
    {"batch_size": 1, "samples_per_s": 20000.0, "ms_per_batch": 0.05, "runs": 200},
    {"batch_size": 32, "samples_per_s": 150000.0, "ms_per_batch": 0.21333, "runs": 7},
]
NOT_RUN = [THROUGHPUT[0], {"batch_size": 32, "not_run": "its output keeps batch 1 when the input is resized"}]


def with_throughput() -> RunRecord:
    report = fixture("cpu-int8")
    report["baseline"]["latency_ms"]["throughput"] = THROUGHPUT
    report["artifacts"][0]["latency_ms"]["throughput"] = NOT_RUN
    return RunRecord.model_validate(report)


def test_report_md_shows_samples_per_second_per_batch_size_beside_the_batch_1_latency():
    record = with_throughput()
    text = render_markdown(record)
    assert "## Throughput" in text
    table = text.split("## Throughput", 1)[1]
    assert "| artifact | p50 ms (batch 1) | batch 1: samples/s | batch 32: samples/s |" in table
    assert f"| baseline (float32) | {record.baseline.latency_ms.p50:.3f} | 20,000 | 150,000 |" in table
    label = record.artifacts[0].label
    assert f"| {label} | {record.artifacts[0].latency_ms.p50:.3f} | " in table
    row = next(line for line in table.splitlines() if line.startswith(f"| {label} "))
    assert row.endswith("| not run |")
    assert f"- {label} at batch 32: its output keeps batch 1 when the input is resized" in table


def test_report_html_shows_the_throughput_table_and_why_a_batch_size_was_not_run():
    page = html.render_html(with_throughput())
    assert "<h3>Throughput</h3>" in page
    assert "150,000" in page and "batch 32: samples/s" in page
    assert "at batch 32: its output keeps batch 1 when the input is resized" in page


def test_a_run_without_batch_sizes_shows_no_throughput_section():
    record = RunRecord.model_validate(fixture("cpu-int8"))
    assert record.baseline.latency_ms.throughput == []
    assert "Throughput" not in render_markdown(record)
    assert "<h3>Throughput</h3>" not in html.render_html(record)


@pytest.mark.parametrize("bad", ["[0, 32]", "[1, -4]", "[1, 2.5]", "[one]", "[true]", "[8, 8]", "32"])
def test_bad_batch_sizes_exit_2_naming_the_field(tmp_path, bad):
    from compressctl.recipe.schema import load_recipe

    path = tmp_path / "r.yaml"
    path.write_text(f"model: m\ndata: d.npz\nbench:\n  batch_sizes: {bad}\n")
    with pytest.raises(UserError, match=r"bench\.batch_sizes") as caught:
        load_recipe(path)
    assert caught.value.exit_code == 2


class FakeInterpreter:
    """An interpreter whose input takes any batch (or none but 1), counting invocations."""

    def __init__(self, resizable: bool = True):
        self.resizable, self.batch, self.invoked = resizable, 1, 0

    def get_input_details(self):
        return [{"index": 0, "shape": np.array([self.batch, 4]), "dtype": np.float32, "quantization": (0.0, 0)}]

    def get_output_details(self):
        return [{"index": 1, "shape": np.array([self.batch if self.resizable else 1, 2])}]

    def resize_tensor_input(self, index, shape, strict=False):
        self.batch = shape[0]

    def allocate_tensors(self):
        pass

    def set_tensor(self, index, value):
        assert value.shape == (self.batch, 4)

    def invoke(self):
        self.invoked += 1


def test_throughput_times_every_batch_size_and_reports_one_the_model_cannot_take(monkeypatch):
    from compressctl.litert import bench

    made = {}

    def load(path, threads, xnnpack):
        made.setdefault(str(path), []).append(FakeInterpreter(resizable=str(path) != "fixed.tflite"))
        return made[str(path)][-1]

    monkeypatch.setattr(bench.runtime, "load_interpreter", load)
    sample = np.zeros((3, 4), np.float32)  # fewer samples than a batch: repeated to fill it
    found = bench.throughput({"base": "base.tflite", "fixed": "fixed.tflite"}, sample, [1, 8], runs=16)
    assert [e["batch_size"] for e in found["base"]] == [1, 8]
    assert all(e["samples_per_s"] > 0 and e["ms_per_batch"] > 0 for e in found["base"])
    assert [e["runs"] for e in found["base"]] == [16, 5]  # about `runs` samples' worth, at least 5
    assert found["fixed"][0]["samples_per_s"] > 0  # batch 1 needs no resize beyond the file's own
    assert found["fixed"][1] == {"batch_size": 8, "not_run": "its output keeps batch 1 when the input is resized"}
