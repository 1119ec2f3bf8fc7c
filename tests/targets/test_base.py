"""The Target base class: shared params, no-op finish, declared report fields, conversions naming a backend."""

import pytest
from pydantic import ValidationError

from compressctl.report.record import Artifact
from compressctl.targets import TARGETS
from compressctl.targets.base import QuantizedTargetParams, Target, TargetParams
from compressctl.targets.cpu import CpuTarget
from compressctl.targets.edgetpu import EdgeTpuTarget
from compressctl.targets.gpu import GpuTarget

pytestmark = pytest.mark.unit


def test_every_target_inherits_the_shared_params_and_the_base_class():
    for kind, cls in TARGETS.items():
        assert issubclass(cls, Target) and issubclass(cls.Params, TargetParams), kind
        assert cls.Params(type=kind).name is None
    assert issubclass(CpuTarget.Params, QuantizedTargetParams)
    assert issubclass(EdgeTpuTarget.Params, QuantizedTargetParams)
    assert not issubclass(GpuTarget.Params, QuantizedTargetParams)  # float16: nothing to calibrate


def test_calibration_size_comes_from_the_shared_field():
    assert CpuTarget(CpuTarget.Params(type="cpu", calibration_samples=64)).calibration_size() == 64
    assert EdgeTpuTarget(EdgeTpuTarget.Params(type="edgetpu")).calibration_size() == 200
    assert GpuTarget(GpuTarget.Params(type="gpu")).calibration_size() == 0
    with pytest.raises(ValidationError, match="calibration_samples"):
        GpuTarget.Params(type="gpu", calibration_samples=10)


def test_io_dtype_is_shared_and_the_edge_tpu_narrows_it():
    assert CpuTarget.Params(type="cpu").io_dtype == "float32"
    assert EdgeTpuTarget.Params(type="edgetpu").io_dtype == "uint8"
    with pytest.raises(ValidationError, match="io_dtype"):
        EdgeTpuTarget.Params(type="edgetpu", io_dtype="float32")


def test_finish_is_a_no_op_by_default(tmp_path):
    class Plain(Target):
        Params = TargetParams

    assert Plain(TargetParams(type="plain")).finish(tmp_path / "model.tflite", tmp_path, print) == {}
    assert list(tmp_path.iterdir()) == []


def test_report_fields_a_target_declares_are_typed_in_the_artifact_record():
    for kind, cls in TARGETS.items():
        assert set(cls.report_fields) <= set(Artifact.model_fields), kind
    assert GpuTarget(GpuTarget.Params(type="gpu")).finish(None, None, None).keys() <= set(GpuTarget.report_fields)


@pytest.mark.parametrize(
    "params",
    [
        CpuTarget.Params(type="cpu"),
        CpuTarget.Params(type="cpu", mode="dynamic", sparse=True),
        GpuTarget.Params(type="gpu"),
        EdgeTpuTarget.Params(type="edgetpu"),
    ],
    ids=lambda p: p.type,
)
def test_every_conversion_names_its_backend(params):
    conversions = TARGETS[params.type](params).conversions()
    assert conversions and all(c.backend == "converter" for c in conversions)
