"""RunRecord: report.json's one in-memory form, its serialisation and its published JSON Schema.

No TensorFlow: records come from stored report.json fixtures. When the schema test fails, run
`make schema` and commit docs/report.schema.json.
"""

import json

import jsonschema
import pytest
from pydantic import ValidationError

from compressctl import api
from compressctl.core.errors import UserError
from compressctl.report.record import RunRecord, StageRow, json_schema
from tests.conftest import REPO
from tests.helpers.pages import FIXTURES, fixture

pytestmark = pytest.mark.unit

SCHEMA_FILE = REPO / "docs" / "report.schema.json"
NAMES = ("cpu-int8", "deep-compression")


def test_committed_report_schema_is_what_compressctl_schema_report_prints():
    expected = json.dumps(json_schema(), indent=2) + "\n"
    assert SCHEMA_FILE.read_text() == expected, "docs/report.schema.json is stale: run `make schema`"


@pytest.mark.parametrize("name", NAMES)
def test_a_stored_report_round_trips_with_every_field(name):
    stored = fixture(name)
    record = RunRecord.model_validate(stored)
    # The only change: `metric`, once a plain name, is now {name, higher_is_better}.
    assert record.metric.name == stored["metric"] == "accuracy" and record.metric.higher_is_better
    expected = {**stored, "metric": {"name": "accuracy", "higher_is_better": True}}
    assert record.to_dict() == expected
    assert RunRecord.from_json(record.to_json()) == record


@pytest.mark.parametrize("name", NAMES)
def test_serialised_records_validate_against_the_published_schema(name):
    schema = json.loads(SCHEMA_FILE.read_text())
    written = RunRecord.model_validate(fixture(name)).to_dict()
    jsonschema.validate(written, schema)
    del written["baseline"]["sha256"]
    with pytest.raises(jsonschema.ValidationError, match="sha256"):
        jsonschema.validate(written, schema)


def test_optional_additions_validate_and_unset_ones_stay_absent():
    report = fixture("cpu-int8")
    assert "macs" not in RunRecord.model_validate(report).to_dict()["baseline"]
    report["environment"]["cpu_features"] = ["avx", "avx2"]
    report["baseline"]["macs"] = 1000
    report["artifacts"][0].update(
        macs=1000,
        runtime={
            "ops": [{"op": "FULLY_CONNECTED", "version": 9, "count": 2}],
            "min_tflite_version": "2.14.0",
            "checked": [{"runtime": "tflite-runtime 2.14.0", "loads": True, "error": None}],
        },
        quantization={
            "backend": "litert-quantizer",
            "scheme": "int4 weight-only",
            "float_ops": [{"name": "softmax", "op": "SOFTMAX", "reason": "no int4 kernel"}],
            "layer_errors": [{"name": "fc1", "op": "FULLY_CONNECTED", "snr_db": 31.5, "rmse": 0.01}],
        },
    )
    record = RunRecord.model_validate(report)
    assert record.artifacts[0].quantization.backend == "litert-quantizer"
    assert record.artifacts[0].runtime.ops[0].count == 2
    assert record.to_dict()["environment"]["cpu_features"] == ["avx", "avx2"]
    jsonschema.validate(record.to_dict(), json.loads(SCHEMA_FILE.read_text()))
    report["artifacts"][0]["quantization"]["backend"] = "tensorrt"
    with pytest.raises(ValidationError, match="backend"):
        RunRecord.model_validate(report)


def test_unknown_fields_are_refused_except_a_stages_own_scalar_figures():
    report = fixture("deep-compression")
    report["artifacts"][0]["bogus"] = 1
    with pytest.raises(ValidationError, match="bogus"):
        RunRecord.model_validate(report)
    row = {"type": "prune_channels", "seconds": 1.0, "metric_value": 0.9, "channels_removed": 12}
    assert StageRow.model_validate(row).figure("channels_removed") == 12
    with pytest.raises(ValidationError, match="channels_removed"):
        StageRow.model_validate({**row, "channels_removed": {"conv1": 3}})
    with pytest.raises(ValidationError, match="layer"):
        StageRow.model_validate({**row, "layers": [{"sparsity": 0.5}]})


def test_records_are_frozen():
    record = RunRecord.model_validate(fixture("cpu-int8"))
    with pytest.raises(ValidationError):
        record.passed = False


def test_layer_columns_are_the_declared_ones_else_those_the_rows_hold():
    prune = RunRecord.model_validate(fixture("deep-compression")).stages[0]
    assert prune.columns == []  # written before stages declared their columns
    assert prune.layer_columns() == ["sparsity", "target"]
    declared = prune.model_copy(update={"columns": ["target", "sparsity"]})
    assert declared.layer_columns() == ["target", "sparsity"]


def test_load_report_returns_a_record(tmp_path):
    (tmp_path / "report.json").write_text((FIXTURES / "cpu-int8.report.json").read_text())
    record = api.load_report(str(tmp_path))
    assert isinstance(record, RunRecord) and record.artifacts[0].target == "cpu"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda r: r["artifacts"][0].pop("sha256"), r"report\.json: artifacts\[0\]\.sha256: Field required"),
        (lambda r: r["baseline"].update(size_bytes="big"), r"report\.json: baseline\.size_bytes: Input should be"),
        (lambda r: r.update(schema_version=2), r"report\.json: not a compressctl report of schema_version 1"),
    ],
)
def test_an_invalid_report_is_one_user_error_naming_file_and_field(tmp_path, edit, message):
    report = fixture("cpu-int8")
    edit(report)
    (tmp_path / "report.json").write_text(json.dumps(report))
    with pytest.raises(UserError, match=message) as caught:
        api.load_report(str(tmp_path))
    assert str(tmp_path / "report.json") in str(caught.value) and "\n" not in str(caught.value)


def test_a_report_that_is_not_json_is_a_user_error(tmp_path):
    (tmp_path / "report.json").write_text("{not json")
    with pytest.raises(UserError, match="not JSON"):
        api.load_report(str(tmp_path))
