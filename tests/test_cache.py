"""The stage cache's key chain: each key depends on everything before it (no TensorFlow: keys only)."""

import pytest

from compressctl.cache import StageCache
from compressctl.stages.distill import Distill
from compressctl.stages.prune import Prune


@pytest.fixture()
def model_dir(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "saved_model.pb").write_bytes(b"graph")
    return model


def chain(tmp_path, model_dir, stages, data="d" * 64, settings=None):
    cache = StageCache(tmp_path / "run", model_dir, data, settings or {"seed": 0})
    return [cache.key_for(p, files) for p, files in stages]


def prune(sparsity=0.5):
    return Prune.Params(type="prune", target_sparsity=sparsity)


def test_keys_chain_so_a_change_upstream_changes_every_later_key(tmp_path, model_dir):
    two = [(prune(0.5), []), (prune(0.8), [])]
    first = chain(tmp_path, model_dir, two)
    assert len(set(first)) == 2 and chain(tmp_path, model_dir, two) == first
    changed_first_stage = chain(tmp_path, model_dir, [(prune(0.6), []), (prune(0.8), [])])
    assert changed_first_stage[0] != first[0] and changed_first_stage[1] != first[1]
    changed_last_stage = chain(tmp_path, model_dir, [(prune(0.5), []), (prune(0.9), [])])
    assert changed_last_stage[0] == first[0] and changed_last_stage[1] != first[1]


def test_model_data_and_settings_start_the_chain(tmp_path, model_dir):
    one = [(prune(), [])]
    base = chain(tmp_path, model_dir, one)
    assert chain(tmp_path, model_dir, one, data="e" * 64) != base
    assert chain(tmp_path, model_dir, one, settings={"seed": 1}) != base
    (model_dir / "saved_model.pb").write_bytes(b"other graph")
    assert chain(tmp_path, model_dir, one) != base


def test_a_file_the_stage_reads_is_keyed_by_its_content(tmp_path, model_dir):
    student = tmp_path / "student.h5"
    student.write_bytes(b"weights 1")
    params = Distill.Params(type="distill", student={"model": str(student)})
    assert Distill(params).input_files() == [str(student)]
    before = chain(tmp_path, model_dir, [(params, Distill(params).input_files())])
    student.write_bytes(b"weights 2")
    after = chain(tmp_path, model_dir, [(params, Distill(params).input_files())])
    assert before != after
    assert Prune(prune()).input_files() == []
