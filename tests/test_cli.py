"""The command line as a user meets it: exit codes, one-line errors, no traceback, no TensorFlow for help."""

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO, write_recipe

CLI = [sys.executable, "-m", "compressctl"]


def cli(*args, cwd=REPO, env=None):
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, cwd=cwd, env=env, timeout=600)


def test_import_cli_does_not_import_tensorflow():
    code = "import sys, compressctl.cli; sys.exit(1 if 'tensorflow' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_help_lists_every_command():
    result = cli("--help")
    assert result.returncode == 0
    for command in ("run", "validate", "schema", "inspect", "eval", "bench", "report"):
        assert command in result.stdout


def test_version():
    assert cli("--version").stdout.startswith("compressctl ")


def test_validate_ok_and_bad(tmp_path):
    ok = cli("validate", REPO / "recipes" / "deep-compression.yaml")
    assert ok.returncode == 0, ok.stderr
    assert "valid (prune → cluster → quantize" in ok.stdout
    bad = write_recipe(tmp_path, "stages:\n  - type: prune\n    target_sparsity: 2\n")
    result = cli("validate", bad)
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: {bad}:3:22 stages[0].target_sparsity: must be < 1"
    assert "Traceback" not in result.stderr + result.stdout


def test_validate_with_set_and_json(tmp_path):
    path = write_recipe(tmp_path, "stages:\n  - type: prune\n")
    result = cli("validate", path, "--set", "stages.0.target_sparsity=0.9", "--json")
    assert result.returncode == 0
    payload = json.loads(result.stdout)
    assert payload["valid"] is True
    assert payload["recipe"]["stages"][0]["target_sparsity"] == 0.9


def test_schema_is_json_schema():
    result = cli("schema")
    assert result.returncode == 0
    schema = json.loads(result.stdout)
    assert schema["title"] == "compressctl recipe"
    assert "stages" in schema["properties"]


def test_unknown_flag_is_a_usage_error():
    result = cli("validate", "--bogus")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "does/not/exist"], "does/not/exist: model not found"),
        (["--data", "nope.npz"], "nope.npz: data file not found"),
    ],
)
def test_run_with_missing_inputs_is_exit_2_one_line(tmp_path, tiny_cnn_path, tiny_data, args, message):
    recipe = write_recipe(tmp_path, f"model: {tiny_cnn_path}\ndata: {tiny_data}\n")
    result = cli("run", recipe, "--out", tmp_path / "out", *args)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [f"error: {message}"]
    assert not (tmp_path / "out").exists()


def test_run_refuses_a_non_run_output_directory(tmp_path, tiny_cnn_path, tiny_data):
    out = tmp_path / "precious"
    out.mkdir()
    (out / "thesis.tex").write_text("keep me")
    recipe = write_recipe(tmp_path, f"model: {tiny_cnn_path}\ndata: {tiny_data}\n")
    result = cli("run", recipe, "--out", out)
    assert result.returncode == 2
    assert "holds no earlier run" in result.stderr
    assert (out / "thesis.tex").read_text() == "keep me"


def test_run_data_that_does_not_fit_the_model(tmp_path, tiny_cnn_path):
    import numpy as np

    data = tmp_path / "wrong.npz"
    x = np.zeros((4, 5, 5, 1), np.float32)
    np.savez(data, x_train=x, y_train=np.zeros(4), x_test=x, y_test=np.zeros(4))
    recipe = write_recipe(tmp_path, f"model: {tiny_cnn_path}\ndata: {data}\n")
    result = cli("run", recipe, "--out", tmp_path / "out")
    assert result.returncode == 2
    assert "samples have shape (5, 5, 1) but" in result.stderr
    assert "expects input shape (8, 8, 1)" in result.stderr


def test_report_of_a_non_run_directory(tmp_path):
    result = cli("report", tmp_path)
    assert result.returncode == 2
    assert "no report.json here" in result.stderr


def test_eval_missing_artifact():
    result = cli("eval", "nope.tflite", "--data", "x.npz")
    assert result.returncode == 2
    assert result.stderr.strip() == "error: nope.tflite: artifact not found"
