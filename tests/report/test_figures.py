"""What a stage or target declares it reports (report.figures): checked in the record, shown as declared.

No TensorFlow: the stage and target classes are read, not run; rows come from stored fixtures.
"""

from pathlib import Path

import pytest
from pydantic import ValidationError

import compressctl.report
from compressctl.report import figures
from compressctl.report.figures import Figure
from compressctl.report.record import RunRecord, StageRow
from compressctl.report.summary import layer_table, notices, stage_measured
from compressctl.stages import STAGES
from compressctl.targets import TARGETS
from tests.helpers.pages import fixture

pytestmark = pytest.mark.unit

REPORT = Path(compressctl.report.__file__).parent
ROW = {"type": "prune", "seconds": 1.0, "metric_value": 0.9}


def test_every_stage_and_target_declares_its_figures_on_its_class():
    for kind, classes in (("stage", STAGES), ("target", TARGETS)):
        for name, cls in classes.items():
            declared = figures.declared(kind, name)
            assert declared is not None and declared.figures == tuple(cls.figures), name
    prune = STAGES["prune"]
    assert prune.columns == ("sparsity", "target") == tuple(f.key for f in prune.layer_figures)


def test_the_renderers_hold_no_stage_or_target_field_list():
    # Names that only a stage's or a target's declaration gives: none may be spelt in record.py, summary.py,
    # markdown.py or html.py (the per-layer plots read rows by figure name in plots.py).
    keys = {f.key for cls in STAGES.values() for f in (*cls.figures, *cls.layer_figures)}
    keys |= {f.key for cls in TARGETS.values() for f in cls.figures}
    keys -= {"params", "target", "ratio"}  # also a layer's parameter count, a target, a summary column
    for module in ("record.py", "summary.py", "markdown.py"):
        text = (REPORT / module).read_text()
        assert [k for k in sorted(keys) if f'"{k}"' in text] == [], module
    assert [k for k in sorted(keys) if f'"{k}"' in (REPORT / "html.py").read_text()] == ["channels_before"]


def test_a_figure_of_another_type_than_declared_is_refused_naming_it():
    assert StageRow.model_validate({**ROW, "sparsity": 0.5}).figure("sparsity") == 0.5
    with pytest.raises(ValidationError, match="sparsity: stage prune declares it a float, got 'half'"):
        StageRow.model_validate({**ROW, "sparsity": "half"})
    with pytest.raises(ValidationError, match="unique_weights: stage cluster declares it a int, got 2.5"):
        StageRow.model_validate({**ROW, "type": "cluster", "unique_weights": 2.5})
    # A stage may record more than it shows; a stage no module here defines keeps any scalar figure.
    assert StageRow.model_validate({**ROW, "kept_zeros": 3}).figure("kept_zeros") == 3
    assert StageRow.model_validate({**ROW, "type": "elsewhere", "widgets": "blue"}).figure("widgets") == "blue"


def test_stage_figures_read_as_declared_in_declared_order():
    row = StageRow.model_validate(
        {**ROW, "type": "prune_channels", "macs_after": 10, "params_after": 20, "params_before": 40, "macs_before": 30}
    )
    assert stage_measured(row) == "params 40 → 20, MACs 30 → 10"
    unknown = StageRow.model_validate({**ROW, "type": "elsewhere", "widgets_tuned": 1200, "mode": "fast"})
    assert stage_measured(unknown) == "widgets tuned 1,200, mode fast"
    # The declared figures follow metric_value in report.json, in the order the stage measured them.
    assert list(row.model_dump(exclude_unset=True))[:5] == [
        "type",
        "seconds",
        "metric_value",
        "macs_after",
        "params_after",
    ]


def test_per_layer_columns_read_as_the_stage_declared_them():
    prune = RunRecord.model_validate(fixture("deep-compression")).stages[0]
    headers, rows = layer_table(prune)
    assert headers == ["layer", "params", "sparsity", "target sparsity"]
    first = prune.layers[0]
    assert rows[0] == [first["layer"], f"{first['params']:,}", f"{100 * first['sparsity']:.2f} %", rows[0][3]]
    unknown = StageRow.model_validate(
        {**ROW, "type": "elsewhere", "layers": [{"layer": "fc", "params": 1234, "gain": 0.5}]}
    )
    assert layer_table(unknown) == (["layer", "params", "gain"], [["fc", "1,234", "0.5"]])


def test_an_artifact_keeps_only_the_figures_its_target_declares():
    report = fixture("cpu-int8")
    report["artifacts"][0]["board"] = "nano"
    with pytest.raises(ValidationError, match="board: target cpu declares no such figure"):
        RunRecord.model_validate(report)
    # A target this process does not know (a plugin not installed here): its scalar figures are kept, shown by name.
    report["artifacts"][0]["type"] = "elsewhere"
    record = RunRecord.model_validate(report)
    assert record.artifacts[0].figures() == {"board": "nano"}
    assert ("info", "cpu:", "board nano.") in notices(record)
    report["artifacts"][0]["board"] = {"name": "nano"}
    with pytest.raises(ValidationError, match="board: a target's measured figure must be a number, string or bool"):
        RunRecord.model_validate(report)


def test_a_figure_reads_by_its_format_and_refuses_an_unknown_type():
    assert Figure("x", "float", "{pct:.1f} % of {value}").text(0.25) == "25.0 % of 0.25"
    assert Figure("n", "int").text(12345) == "12,345" and Figure("n", "int").column == "n"
    assert Figure("n_kept", "int").column == "n kept" and Figure("n", heading="kept").column == "kept"
    with pytest.raises(ValueError, match="type must be one of int, float, str, bool"):
        Figure("x", "double")


def test_a_figure_measured_as_a_numpy_scalar_is_stored_as_a_python_number():
    import numpy as np

    row = StageRow.model_validate({**ROW, "type": "prune_channels", "macs_before": np.int64(30), "params_after": 2})
    assert row.figure("macs_before") == 30 and type(row.figure("macs_before")) is int
    assert type(StageRow.model_validate({**ROW, "sparsity": np.float64(0.5)}).figure("sparsity")) is float
