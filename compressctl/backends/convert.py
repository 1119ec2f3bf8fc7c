"""TFLite conversions in a child process (see convert_worker), with failures reported clearly."""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np

from compressctl.core.errors import ConversionError

_PACKAGE_PARENT = str(Path(__file__).resolve().parents[2])
WORKER = [sys.executable, "-m", "compressctl.backends.convert_worker"]
START_TIMEOUT_S = 600


class Converter:
    """A warm conversion worker. Start it early: its TensorFlow import overlaps the caller's work.

    A crash (the converter can segfault) ends only the conversion in flight: it becomes a
    ConversionError, and the next conversion starts a fresh worker.
    """

    tool = "the TFLite converter"  # how messages name what ran in the worker

    def __init__(self, timeout_s: float = 3600):
        self.timeout_s = timeout_s
        self._proc: subprocess.Popen | None = None
        self.last_answer: dict = {}

    def _command(self) -> list[str]:
        return WORKER  # read at start, so a test can swap in a worker that crashes

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()

    def start(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            return
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_PARENT, env.get("PYTHONPATH")) if p)
        self._proc = subprocess.Popen(
            self._command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=2, env=env, text=True, bufsize=1
        )
        self._ready = False

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        # Every answered conversion is already whole on disk, so the worker holds nothing worth a
        # graceful shutdown (TensorFlow's teardown alone takes a noticeable part of a second).
        with contextlib.suppress(OSError):
            proc.stdin.close()
        proc.kill()
        proc.wait()

    def _answer(self, timeout_s: float) -> dict | None:
        """The worker's next answer, or None when it died."""
        selector = selectors.DefaultSelector()
        selector.register(self._proc.stdout, selectors.EVENT_READ)
        try:
            if not selector.select(timeout_s):
                self._proc.kill()
                self._proc.wait()
                raise TimeoutError
        finally:
            selector.close()
        line = self._proc.stdout.readline()
        return json.loads(line) if line else None

    def _died(self, what: str) -> ConversionError:
        code = self._proc.wait()
        self._proc = None
        if code < 0:
            return ConversionError(f"{self.tool} crashed ({signal.Signals(-code).name}) during the {what}")
        return ConversionError(f"{self.tool} exited with status {code} during the {what}")

    def convert(
        self,
        saved_model: Path,
        out: Path,
        mode: str,
        workdir: Path,
        *,
        calibration: np.ndarray | None = None,
        io_dtype: str = "float32",
        integer_only: bool = False,
        sparsity: bool = False,
        quantization: dict | None = None,
        per_tensor_dense: bool = False,
    ) -> Path:
        """Convert ``saved_model`` to ``out`` (mode: float32, float16, dynamic or int8).

        ``quantization`` (int8 only; see convert_worker): what the worker measured is left in
        ``self.last_answer["quantization"]``.
        """
        workdir.mkdir(parents=True, exist_ok=True)
        spec = {
            "saved_model": str(saved_model),
            "out": str(out),
            "mode": mode,
            "io_dtype": io_dtype,
            "integer_only": integer_only,
            "sparsity": sparsity,
        }
        if quantization:
            spec["quantization"] = quantization
        if calibration is not None:
            spec["calibration"] = str(workdir / f"{out.parent.name}-{out.stem}.calibration.npy")
            spec["input_dtype"] = str(calibration.dtype)
            np.save(spec["calibration"], calibration)
        if per_tensor_dense:
            spec["per_tensor_dense"] = True
        what = f"{mode} conversion" + (" with sparsity" if sparsity else "")
        return self.request(spec, out, what)

    def request(self, spec: dict, out: Path, what: str) -> Path:
        """Send one request to the worker; ``out`` exists when it returns, else a ConversionError."""
        self.start()
        try:
            if not self._ready:
                ready = self._answer(START_TIMEOUT_S)
                if ready is None:
                    raise self._died("start of the conversion worker")
                self._ready = True
            self._proc.stdin.write(json.dumps(spec) + "\n")
            self._proc.stdin.flush()
            answer = self._answer(self.timeout_s)
        except TimeoutError:
            self._proc = None
            raise ConversionError(f"{self.tool} did not finish the {what} in {self.timeout_s:.0f} s") from None
        except BrokenPipeError:
            answer = None
        if answer is None:
            raise self._died(what)
        if "error" in answer:
            raise ConversionError(f"{self.tool} failed during the {what}: {answer['error']}")
        if not out.exists():
            raise ConversionError(f"{self.tool} wrote nothing during the {what}")
        self.last_answer = answer
        return out


def convert(saved_model: Path, out: Path, mode: str, workdir: Path, **options) -> Path:
    """One conversion in a worker of its own."""
    with Converter() as converter:
        return converter.convert(saved_model, out, mode, workdir, **options)
