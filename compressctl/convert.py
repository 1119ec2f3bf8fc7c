"""Run a TFLite conversion in a child process (see convert_worker) and report failures clearly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np

from compressctl.errors import ConversionError

_PACKAGE_PARENT = str(Path(__file__).resolve().parent.parent)
WORKER = [sys.executable, "-m", "compressctl.convert_worker"]


def convert(
    saved_model: Path,
    out: Path,
    mode: str,
    workdir: Path,
    *,
    calibration: np.ndarray | None = None,
    io_dtype: str = "float32",
    integer_only: bool = False,
    sparsity: bool = False,
    timeout_s: float = 3600,
) -> Path:
    """Convert ``saved_model`` to ``out`` (mode: float32, float16, dynamic or int8)."""
    workdir.mkdir(parents=True, exist_ok=True)
    tag = out.parent.name + "-" + out.stem
    spec = {
        "saved_model": str(saved_model),
        "out": str(out),
        "result": str(workdir / f"{tag}.result.json"),
        "mode": mode,
        "io_dtype": io_dtype,
        "integer_only": integer_only,
        "sparsity": sparsity,
    }
    if calibration is not None:
        spec["calibration"] = str(workdir / f"{tag}.calibration.npy")
        spec["input_dtype"] = str(calibration.dtype)
        np.save(spec["calibration"], calibration)
    spec_path = workdir / f"{tag}.spec.json"
    spec_path.write_text(json.dumps(spec))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_PARENT, env.get("PYTHONPATH")) if p)
    what = f"{mode} conversion" + (" with sparsity" if sparsity else "")
    try:
        proc = subprocess.run(
            [*WORKER, str(spec_path)],
            stdin=subprocess.DEVNULL,
            stdout=2,
            stderr=2,
            env=env,
            timeout=timeout_s,
        )
    except subprocess.TimeoutExpired:
        raise ConversionError(f"the TFLite converter did not finish the {what} in {timeout_s:.0f} s") from None
    if proc.returncode < 0:
        name = signal.Signals(-proc.returncode).name
        raise ConversionError(f"the TFLite converter crashed ({name}) during the {what}")
    if proc.returncode != 0:
        try:
            error = json.loads(Path(spec["result"]).read_text())["error"]
        except (OSError, ValueError, KeyError):
            error = f"exit status {proc.returncode}"
        raise ConversionError(f"the TFLite converter failed during the {what}: {error}")
    if not out.exists():
        raise ConversionError(f"the TFLite converter wrote nothing during the {what}")
    return out
