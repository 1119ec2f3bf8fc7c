"""Broken and hostile inputs through the real CLI: exit 2, one `error:` line, no traceback, nothing written."""

import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import REPO, write_recipe

pytestmark = pytest.mark.slow


def run_cli(args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "compressctl", *map(str, args)], capture_output=True, text=True, timeout=600, cwd=cwd
    )


def npz(path, **arrays):
    np.savez(path, **arrays)
    return path


def good_arrays(n=20):
    x = np.random.default_rng(0).random((n, 8, 8, 1), dtype=np.float32)
    return {"x_train": x, "y_train": np.arange(n) % 3, "x_test": x, "y_test": np.arange(n) % 3}


def corpus(tmp_path, tiny_cnn_path, tiny_data):
    """(name, recipe text, expected message fragment); {model}/{data} filled in."""
    bad = tmp_path / "bad"
    bad.mkdir()
    arrays = good_arrays()
    nan = dict(arrays, x_train=np.full_like(arrays["x_train"], np.nan))
    npz(bad / "nan.npz", **nan)
    npz(bad / "nokeys.npz", x=arrays["x_train"])
    npz(
        bad / "shape.npz",
        **dict(arrays, x_train=np.zeros((20, 9, 9, 1), np.float32), x_test=np.zeros((20, 9, 9, 1), np.float32)),
    )
    npz(bad / "labels.npz", **dict(arrays, y_train=np.full(20, 9)))
    npz(bad / "empty.npz", **dict(arrays, x_test=arrays["x_test"][:0], y_test=arrays["y_test"][:0]))
    (bad / "corrupt.npz").write_bytes(b"PK\x03\x04 not really a zip")
    (bad / "corrupt_sm").mkdir()
    (bad / "corrupt_sm" / "saved_model.pb").write_bytes(b"garbage")
    (bad / "corrupt.h5").write_bytes(b"\x89HDF\r\n\x1a\n broken")
    from compressctl.core.env import keras

    k = keras()
    k.Sequential([k.Input((8, 8, 1)), k.layers.Lambda(lambda z: z + 1), k.layers.Flatten(), k.layers.Dense(3)]).save(
        str(bad / "lambda.h5")
    )
    base = f"model: {tiny_cnn_path}\ndata: {tiny_data}\n"
    return [
        ("python_tag", "model: !!python/object/apply:os.system ['touch pwned']\n", "tag not allowed"),
        (
            "alias_bomb",
            'a: &a ["x","x","x","x","x","x","x","x","x","x"]\n'
            + "".join(f"b{i}: &b{i} [{', '.join(['*' + ('a' if i == 0 else f'b{i - 1}')] * 10)}]\n" for i in range(6)),
            "YAML nodes",
        ),
        ("syntax", "stages:\n  - type: prune\n   epochs: 2\n", "expected"),
        ("wrong_order", base + "stages: [{type: quantize}, {type: prune}]\n", "cannot prune after quantize"),
        ("unknown_key", base + "stagse: []\n", "unknown field"),
        ("out_of_range", base + "stages: [{type: prune, target_sparsity: 1.2}]\n", "must be < 1"),
        ("missing_model", f"model: {bad}/nope\ndata: {tiny_data}\n", "model not found"),
        ("corrupt_savedmodel", f"model: {bad}/corrupt_sm\ndata: {tiny_data}\n", "could not load"),
        ("corrupt_h5", f"model: {bad}/corrupt.h5\ndata: {tiny_data}\n", "could not load the model"),
        ("lambda", f"model: {bad}/lambda.h5\ndata: {tiny_data}\n", "Pass --trust-model"),
        ("nan_data", f"model: {tiny_cnn_path}\ndata: {bad}/nan.npz\n", "NaN"),
        ("missing_keys", f"model: {tiny_cnn_path}\ndata: {bad}/nokeys.npz\n", "missing array(s)"),
        ("wrong_shape", f"model: {tiny_cnn_path}\ndata: {bad}/shape.npz\n", "expects input shape"),
        ("labels_out_of_range", f"model: {tiny_cnn_path}\ndata: {bad}/labels.npz\n", "labels must lie in"),
        ("empty_split", f"model: {tiny_cnn_path}\ndata: {bad}/empty.npz\n", "x_test is empty"),
        ("corrupt_npz", f"model: {tiny_cnn_path}\ndata: {bad}/corrupt.npz\n", "not a readable .npz"),
        ("no_model_key", f"data: {tiny_data}\n", "no model"),
    ]


def test_hostile_inputs_end_in_one_clear_line(tmp_path, tiny_cnn_path, tiny_data):
    cases = corpus(tmp_path, tiny_cnn_path, tiny_data)
    for name, text, fragment in cases:
        recipe = write_recipe(tmp_path, text, f"{name}.yaml")
        out = tmp_path / f"out-{name}"
        result = run_cli(["run", recipe, "--out", out], cwd=tmp_path)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2, (name, result.stderr)
        assert len(lines) == 1 and lines[0].startswith("error: "), (name, result.stderr)
        assert fragment in lines[0], (name, lines[0])
        assert "Traceback" not in result.stdout + result.stderr
        assert not out.exists(), name
    assert not (tmp_path / "pwned").exists()
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert leftovers == []


@pytest.mark.parametrize(
    ("sig", "trigger"),
    [
        (signal.SIGINT, "converting the baseline"),  # the conversion worker is busy
        (signal.SIGINT, "epoch 2/"),  # mid fine-tuning
        (signal.SIGTERM, "epoch 5/"),
    ],
)
def test_interrupted_real_run_leaves_nothing_partial(tmp_path, tiny_cnn_path, tiny_data, sig, trigger):
    recipe = write_recipe(
        tmp_path,
        f"model: {tiny_cnn_path}\ndata: {tiny_data}\nstages:\n  - type: prune\n    epochs: 400\n"
        "bench: {runs: 10, warmup: 1}\n",
    )
    out = tmp_path / "run"
    first = run_cli(["run", recipe, "--out", out, "--set", "stages.0.epochs=1"], cwd=REPO)
    assert first.returncode == 0, first.stderr
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    proc = subprocess.Popen(
        [sys.executable, "-m", "compressctl", "run", str(recipe), "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
        # A shell starts background jobs with SIGINT ignored, and Python then never raises
        # KeyboardInterrupt; restore the default so the child is the foreground run a user interrupts.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    seen = []
    for line in proc.stderr:  # plain progress lines, since stderr is a pipe
        seen.append(line)
        if trigger in line:
            break
    assert any(trigger in line for line in seen), "".join(seen)
    os.kill(proc.pid, sig)
    _, rest = proc.communicate(timeout=120)
    stderr = "".join(seen) + rest
    assert proc.returncode in (130, 143, -sig), stderr
    assert "interrupted; nothing was written" in stderr
    assert "Traceback" not in stderr
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before
    assert [p.name for p in tmp_path.iterdir() if ".partial-" in p.name or ".old-" in p.name] == []
