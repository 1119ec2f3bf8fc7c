"""The stage cache's key chain: a key changes exactly when something that made the stage's output changes."""

from __future__ import annotations

import pytest

from compressctl.run.cache import StageCache
from compressctl.stages import STAGES

pytestmark = pytest.mark.unit

SETTINGS = {"seed": 0, "task": {"metric": "accuracy"}, "training": {"batch_size": 32}}


def stage(kind, **fields):
    return STAGES[kind].Params(type=kind, **fields)


def chain(tmp_path, stages, data="d" * 64, settings=SETTINGS, model_bytes=b"model"):
    model = tmp_path / "model.h5"
    model.write_bytes(model_bytes)
    cache = StageCache(tmp_path / "run", model, data, settings)
    # The stage, not its params, names the files it reads besides its input model.
    return [cache.key_for(params, STAGES[params.type](params).input_files()) for params in stages]


STAGES_ = [stage("prune", target_sparsity=0.5), stage("cluster", number_of_clusters=8), stage("quantize")]


def test_same_inputs_give_the_same_chain(tmp_path):
    assert chain(tmp_path, STAGES_) == chain(tmp_path, STAGES_)
    assert len(set(chain(tmp_path, STAGES_))) == 3


def test_changing_a_stage_changes_its_key_and_every_later_key_only(tmp_path):
    base = chain(tmp_path, STAGES_)
    changed = chain(tmp_path, [STAGES_[0], stage("cluster", number_of_clusters=16), STAGES_[2]])
    assert changed[0] == base[0]
    assert changed[1] != base[1] and changed[2] != base[2]


@pytest.mark.parametrize(
    "change",
    [
        {"data": "e" * 64},
        {"settings": {**SETTINGS, "seed": 1}},
        {"settings": {**SETTINGS, "training": {"batch_size": 64}}},
        {"model_bytes": b"other model"},
    ],
    ids=["data", "seed", "training", "model"],
)
def test_changing_an_input_of_the_run_changes_every_key(tmp_path, change):
    base = chain(tmp_path, STAGES_)
    changed = chain(tmp_path, STAGES_, **change)
    assert all(a != b for a, b in zip(base, changed, strict=True))


def test_a_distillation_students_file_is_part_of_its_key(tmp_path):
    student = tmp_path / "student.h5"
    student.write_bytes(b"one")
    params = [stage("distill", student={"model": str(student)})]
    first = chain(tmp_path, params)
    student.write_bytes(b"two")
    assert chain(tmp_path, params) != first


def test_only_a_stage_that_reads_a_file_names_one(tmp_path):
    student = tmp_path / "student.h5"
    assert STAGES["distill"](stage("distill", student={"model": str(student)})).input_files() == [str(student)]
    assert STAGES["distill"](stage("distill")).input_files() == []
    assert STAGES["prune"](stage("prune")).input_files() == []
