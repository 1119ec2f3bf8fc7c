"""The command line as a user meets it: exit codes, one-line errors, no traceback, no TensorFlow for help."""

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO, cli, write_recipe

CLI = [sys.executable, "-m", "compressctl"]


def test_import_cli_does_not_import_tensorflow_or_matplotlib():
    code = (
        "import sys, compressctl.cli, compressctl.report, compressctl.report.compare\n"
        "heavy = [m for m in ('tensorflow', 'matplotlib') if m in sys.modules]\n"
        "sys.exit(str(heavy) if heavy else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_help_lists_every_command_with_its_summary():
    from compressctl.cli import app

    result = cli("--help")
    assert result.returncode == 0
    section = result.stdout.split("\nCommands:\n", 1)[1]
    listed = dict(line.split(None, 1) for line in section.splitlines() if line.startswith("  ") and line.split())
    registered = {c.name or c.callback.__name__ for c in app.registered_commands}
    assert set(listed) == registered
    assert {"run", "validate", "schema", "inspect", "eval", "bench", "report", "compare", "init"} <= registered
    assert all(summary.strip() for summary in listed.values())
    options = result.stdout.split("\nOptions:\n", 1)[1].split("\nCommands:")[0]
    assert [line.split()[0] for line in options.splitlines() if line.startswith("  -")][:3] == [
        "--version",
        "--install-completion",
        "--show-completion",
    ]


@pytest.mark.unit
def test_each_commands_positional_parameters_are_its_arguments():
    """Options are keyword-only (after `*`): a command function never takes a long positional list."""
    import inspect

    import typer

    from compressctl.cli import app

    group = typer.main.get_command(app)
    for info in app.registered_commands:
        name = info.name or info.callback.__name__
        parameters = inspect.signature(info.callback).parameters.values()
        positional = [p.name for p in parameters if p.kind is not inspect.Parameter.KEYWORD_ONLY]
        arguments = [param.name for param in group.commands[name].params if param.param_type_name == "argument"]
        assert positional == arguments, name
        assert len(group.commands[name].params) == len(parameters), name


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


def test_json_mode_errors_are_json_on_stdout(tmp_path):
    bad = write_recipe(tmp_path, "stages:\n  - type: prune\n    target_sparsity: 2\n")
    result = cli("validate", bad, "--json")
    assert result.returncode == 2
    assert json.loads(result.stdout) == {
        "exit_code": 2,
        "errors": [f"{bad}:3:22 stages[0].target_sparsity: must be < 1"],
    }
    assert result.stderr.startswith("error: ")


# --------------------------------------------------------------------------- report, recipes

FIXTURES = REPO / "tests" / "report" / "fixtures"


@pytest.fixture()
def fixture_run(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "report.json").write_text((FIXTURES / "deep-compression.report.json").read_text())
    return run


def test_report_renders_each_format_without_running_anything(fixture_run, tmp_path):
    md = cli("report", fixture_run)
    assert md.returncode == 0 and md.stdout.startswith("# compressctl run: deep-compression")
    as_json = cli("report", fixture_run, "--format", "json")
    stored = json.loads((fixture_run / "report.json").read_text())
    # The record as read: a report written when `metric` was a plain name shows it as an object.
    assert json.loads(as_json.stdout) == {**stored, "metric": {"name": stored["metric"], "higher_is_better": True}}
    assert json.loads(cli("report", fixture_run, "--json").stdout)["schema_version"] == 1
    html = cli("report", fixture_run, "--format", "html")
    assert html.returncode == 0, html.stderr
    assert html.stdout.startswith("<!DOCTYPE html>") and html.stdout.count("data:image/png;base64,") >= 5
    out = tmp_path / "pages" / "r.html"
    written = cli("report", fixture_run, "-f", "html", "--out", out)
    assert written.returncode == 0 and written.stdout == ""
    assert out.read_text() == html.stdout
    assert f"wrote {out}" in written.stderr


def test_report_schema_is_the_committed_one_and_an_invalid_report_is_one_line(fixture_run):
    result = cli("schema", "--report")
    assert result.returncode == 0
    assert result.stdout == (REPO / "docs" / "report.schema.json").read_text()
    assert json.loads(result.stdout)["title"] == "compressctl report.json"
    report = json.loads((fixture_run / "report.json").read_text())
    report["artifacts"][0]["speedup"] = "fast"
    (fixture_run / "report.json").write_text(json.dumps(report))
    bad = cli("report", fixture_run)
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.strip().splitlines() == [
        f"error: {fixture_run / 'report.json'}: artifacts[0].speedup: Input should be a valid number, "
        "unable to parse string as a number"
    ]


def test_report_bad_format(fixture_run):
    result = cli("report", fixture_run, "--format", "pdf")
    assert result.returncode == 2
    assert result.stderr.strip() == "error: --format: must be md, html or json, got 'pdf'"


def test_recipes_lists_bundled_recipes_with_descriptions():
    result = cli("recipes")
    assert result.returncode == 0, result.stderr
    bundled = sorted((REPO / "recipes").glob("*.yaml"))
    for path in bundled:
        assert any(line.split()[:1] == [path.stem] for line in result.stdout.splitlines()), path.stem
    assert "Post-training full-int8 TFLite for CPU" in result.stdout
    listed = json.loads(cli("recipes", "--json").stdout)
    assert {r["name"] for r in listed} >= {p.stem for p in bundled}
    assert all(r["description"] for r in listed)


# --------------------------------------------------------------------------- terminals, pipes and CI


def test_ui_is_plain_when_ci_is_set_even_on_a_terminal(monkeypatch):
    import io

    from compressctl.cli import UI

    class FakeTTY(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.delenv("CI", raising=False)
    assert UI(FakeTTY(), FakeTTY()).plain_err is False
    for value in ("true", "1"):
        monkeypatch.setenv("CI", value)
        ui = UI(FakeTTY(), FakeTTY())
        assert ui.plain_err and ui.plain_out and not ui.live
    monkeypatch.setenv("CI", "false")
    assert UI(FakeTTY(), FakeTTY()).plain_err is False


def run_on_a_terminal(*args, no_color: bool):
    """Run compressctl with stdout and stderr on a pseudo-terminal; return what it wrote."""
    import os
    import pty

    env = {k: v for k, v in os.environ.items() if k not in ("CI", "NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE")}
    env["TERM"] = "xterm-256color"
    if no_color:
        env["NO_COLOR"] = "1"
    leader, follower = pty.openpty()
    proc = subprocess.Popen([*CLI, *map(str, args)], stdout=follower, stderr=follower, cwd=REPO, env=env)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    proc.wait(timeout=120)
    return proc.returncode, b"".join(chunks).decode()


def test_no_color_is_honoured_on_a_terminal(tmp_path):
    import re

    bad = write_recipe(tmp_path, "stages:\n  - type: prune\n    target_sparsity: 2\n")
    colour = re.compile(r"\x1b\[[0-9;]*(3[0-9]|9[0-7]|38;)[0-9;]*m")
    code, coloured = run_on_a_terminal("validate", bad, no_color=False)
    assert code == 2 and "must be < 1" in coloured
    assert colour.search(coloured), "a terminal without NO_COLOR gets a red error line"
    code, plain = run_on_a_terminal("validate", bad, no_color=True)
    assert code == 2 and "must be < 1" in plain
    assert not colour.search(plain)


@pytest.mark.slow
def test_piped_run_output_is_clean_and_json_is_only_json(tmp_path, tiny_cnn_path, tiny_data):
    import os

    recipe = write_recipe(
        tmp_path,
        f"model: {tiny_cnn_path}\ndata: {tiny_data}\nbench: {{runs: 20, warmup: 2}}\n"
        "targets:\n  - type: cpu\n    calibration_samples: 50\n"
        "gates:\n  max_metric_drop: 0.5\n  min_compression_ratio: 1000\n",
    )
    # Colour forced on by the environment: piped output must stay free of escape codes anyway.
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env.update(FORCE_COLOR="1", TERM="xterm-256color")
    plain = cli("run", recipe, "--out", tmp_path / "plain", env=env)
    assert plain.returncode == 1, plain.stderr
    for stream in (plain.stdout, plain.stderr):
        assert "\x1b[" not in stream and "\r" not in stream
    assert not any(ch in plain.stdout for ch in "┏┃━│└"), "piped tables are plain columns"
    header = next(line for line in plain.stdout.splitlines() if line.startswith("artifact"))
    assert header.split() == [  # the stored ratio first; the gzip (download) size beside the stored size
        "artifact",
        "stored",
        "ratio",
        "stored",
        "download",
        "(gzip)",
        "gzip",
        "ratio",
        "accuracy",
        "Δ",
        "p50",
        "ms",
        "speed-up",
    ]
    assert "wrote" in plain.stdout and "report.html" in plain.stdout
    for step in (
        "• evaluating the Keras baseline on 90 test samples",
        "• converting the baseline to float32 TFLite",
        "• calibrating cpu: int8 activation ranges from 50 train samples",
        "• converting cpu: full int8",
        "• evaluating cpu on 90 test samples",
        "• timing 2 model(s), alternating",
        "• evaluating the float32 baseline TFLite on 90 test samples",
    ):
        assert step in plain.stderr, step
    failed = [line for line in plain.stderr.splitlines() if line.startswith("FAILED gate")]
    assert len(failed) == 1 and failed[0].startswith("FAILED gate min_compression_ratio [cpu]: ")
    assert "passed gate max_metric_drop [cpu]: " in plain.stderr
    assert (tmp_path / "plain" / "report.html").read_text().startswith("<!DOCTYPE html>")
    run_log = (tmp_path / "plain" / "run.log").read_text()
    assert "step: converting cpu: full int8" in run_log
    assert "--- TensorFlow, converter and interpreter output ---" in run_log

    env["CI"] = "true"
    as_json = cli("run", recipe, "--out", tmp_path / "json", "--json", env=env)
    assert as_json.returncode == 1
    assert "\x1b[" not in as_json.stdout + as_json.stderr
    payload = json.loads(as_json.stdout)
    assert payload["exit_code"] == 1 and payload["out"] == str(tmp_path / "json")
    assert payload["artifacts"][0]["target"] == "cpu" and payload["passed"] is False
    assert "FAILED gate min_compression_ratio" in as_json.stderr

    quiet = cli("run", recipe, "--out", tmp_path / "json", "--quiet", env=env)
    assert quiet.returncode == 1
    assert "•" not in quiet.stderr and "passed gate" not in quiet.stderr
    assert "FAILED gate min_compression_ratio" in quiet.stderr
