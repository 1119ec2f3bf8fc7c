"""Microcontroller target: a full-int8 model for TensorFlow Lite for Microcontrollers (TFLM), measured in
the real TFLM interpreter (the ``tflite-micro`` package), with the C sources a firmware compiles.

The artifact is converted like the cpu target's full int8, with int8 input and output and integer
ops only. Then, in TFLM itself (a child process, compressctl/backends/tflm_worker.py, so that a crash
fails this target with one line): every op is checked against the ops the interpreter registers
(before anything runs), the smallest tensor arena that allocates is found by bisection, and the
metric on the test split is measured (``evaluate``). ``mcu/model_data.cc``/``.h`` hold the model as
a 16-byte-aligned array and ``mcu/op_resolver.h`` a ``MicroMutableOpResolver`` with exactly its ops.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, field_validator

from compressctl.backends.convert import Converter
from compressctl.core import measure
from compressctl.core.errors import StageError
from compressctl.core.events import Event
from compressctl.litert import storage, tflm
from compressctl.litert.compat import read_operators
from compressctl.targets.base import Conversion, QuantizedTargetParams, Target

_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1024, "kib": 1024, "m": 1024**2, "mb": 1024**2, "mib": 1024**2}
_SIZE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$")
SIZE_HELP = (
    "bytes (262144) or a size with a unit: B, KB/KiB, MB/MiB (256 KB; K and M count 1,024 as microcontroller "
    "datasheets do)"
)


def parse_bytes(value) -> int | None:
    """A budget in bytes from an int or a string with a unit; a ValueError saying what is wrong otherwise."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"must be {SIZE_HELP}, not {value!r}")
    if isinstance(value, int | float):
        number, unit = float(value), ""
    else:
        match = _SIZE.match(value)
        if not match:
            raise ValueError(f"{value!r} is not a size; give {SIZE_HELP}")
        number, unit = float(match.group(1)), match.group(2)
        if unit in ("Kb", "Mb", "bit", "bits", "kbit", "Kbit", "Mbit"):
            raise ValueError(f"{value!r} is in bits ({unit}); give {SIZE_HELP}")
        if unit.lower() not in _UNITS:
            raise ValueError(f"{value!r} is not in a unit of bytes; give {SIZE_HELP}")
        number *= _UNITS[unit.lower()]
    if number <= 0:
        raise ValueError(f"must be a positive size, not {value!r}")
    if number != int(number):
        raise ValueError(f"{value!r} is not a whole number of bytes")
    return int(number)


class TflmProcess(Converter):
    """The TFLM interpreter in a child process of its own (protocol of compressctl/backends/convert.py)."""

    tool = "the TFLM interpreter"

    def _command(self) -> list[str]:
        return [sys.executable, "-m", "compressctl.backends.tflm_worker"]


class McuTarget(Target):
    """Full-int8 TFLite for TensorFlow Lite Micro: ops, flash and arena measured in its interpreter."""

    type = "mcu"

    class Params(QuantizedTargetParams):
        type: Literal["mcu"]
        # TFLM models take and give int8: no float at the edges of the graph.
        io_dtype: Literal["int8"] = Field("int8", description="Input/output type: int8 (TFLM runs integer models).")
        flash_budget: int | str | None = Field(
            None,
            description=f"Flash the model array may take: {SIZE_HELP}. A larger artifact fails this target.",
        )
        lut: bool = Field(
            True,
            description="true: also write mcu/lut/, the model with each constant tensor whose values fit in 1-7 bits "
            "(after clustering) stored as a TFLM lookup table at its quantization's granularity, kept when the outputs "
            "stay identical and the file shrinks; the report shows flash saved against arena added (DECODE decodes "
            "into the arena); false (or off): plain int8 only.",
        )
        arena_budget: int | str | None = Field(
            None,
            description=f"RAM the tensor arena may take: {SIZE_HELP}. A larger measured arena fails this target.",
        )

        @field_validator("flash_budget", "arena_budget", mode="before")
        @classmethod
        def _in_bytes(cls, value):
            return parse_bytes(value)

    report_fields = ("mcu", "latency_note")

    def __init__(self, params):
        super().__init__(params)
        self._shipped: tuple[Path, int] | None = None

    def conversions(self) -> list[Conversion]:
        return [Conversion("int8", io_dtype="int8", integer_only=True, label="full int8 (TFLM)")]

    def finish(self, path, folder, emit) -> dict:
        path, folder = Path(path), Path(folder)
        p = self.params
        ops = tflm.model_ops(path)
        missing = tflm.missing_ops(ops)
        if missing:
            lacks = ", ".join(f"{row['op']} v{row['version']} (layer {row['layer']!r})" for row in missing)
            raise StageError(f"{tflm.version()} does not register {lacks}")
        floats = _float_ops(path)
        if floats:
            raise StageError(
                f"float-only layers that do not become int8: {floats} (TFLM targets need every op in int8)"
            )
        emit(Event("step", f"{self.name}: measuring the tensor arena in {tflm.version()}"))
        with tempfile.TemporaryDirectory() as tmp, TflmProcess(timeout_s=1800) as worker:
            out = Path(tmp) / "answer.json"
            worker.request({"op": "arena", "model": str(path), "out": str(out)}, out, "arena measurement")
            dense = {"path": f"{folder.name}/{path.name}", "flash_bytes": path.stat().st_size}
            answer = json.loads(out.read_text())
            dense["arena_bytes"], latency = answer["arena_bytes"], answer["host_latency_ms"]
            lut, lut_failed = None, None
            if p.lut:
                emit(Event("step", f"{self.name}: lookup tables for the tensors whose values fit in 7 bits"))
                try:
                    lut = _lut(worker, path, folder, dense["arena_bytes"], Path(tmp), self.calibration)
                except StageError as exc:  # an extra: the int8 model still ships
                    shutil.rmtree(folder / "lut", ignore_errors=True)
                    lut_failed = f"no lookup tables: {exc}"
                    emit(Event("warn", f"{self.name}: {lut_failed}"))
        flash, arena = dense["flash_bytes"], dense["arena_bytes"]
        fits_with_lut = lut is not None and p.flash_budget is not None and lut["flash_bytes"] <= p.flash_budget
        if p.flash_budget is not None and flash > p.flash_budget and not fits_with_lut:
            with_lut = f" (with lookup tables {lut['flash_bytes']:,})" if lut else ""
            raise StageError(f"flash_bytes {flash:,}{with_lut} over flash_budget {p.flash_budget:,} bytes")
        if p.arena_budget is not None and arena > p.arena_budget:
            raise StageError(f"arena_bytes {arena:,} over arena_budget {p.arena_budget:,} bytes")
        self._shipped = (path, arena)
        name = self.recipe_name or "model"  # the array is g_<recipe>_model_data
        files = _write_sources(path.read_bytes(), ops, folder, name)
        emit(Event("step", f"{self.name}: {flash:,} bytes of flash, {arena:,}-byte arena in {tflm.version()}"))
        record = {
            "runtime": tflm.version(),
            "arena_bytes": arena,
            "flash_bytes": flash,
            "ops": [{"op": r["op"], "version": r["version"], "layer": r["layer"]} for r in ops],
            "metric_runtime": f"{tflm.version()} (Python interpreter on the host), test split",
            "host_latency_ms": latency,
            "files": [f"{folder.name}/{file}" for file in files],
        }
        if lut:
            lut_path = folder.parent / lut["path"]
            lut_files = _write_sources(lut_path.read_bytes(), tflm.model_ops(lut_path), lut_path.parent, name)
            record["lut"] = lut.pop("rows")
            skipped = lut.pop("skipped")
            if skipped:
                lut_failed = f"{len(skipped)} tensor(s) left int8, the TFLM interpreter failing on them: {skipped[0]}"
            record["decode_arena_bytes"] = lut["arena_bytes"] - arena
            record["lut_model"] = {**lut, "files": [f"{folder.name}/lut/{file}" for file in lut_files]}
            if p.arena_budget is not None and lut["arena_bytes"] > p.arena_budget:
                record["lut_note"] = f"the lookup-table model's arena is over arena_budget {p.arena_budget:,} bytes"
            elif fits_with_lut and flash > p.flash_budget:
                record["lut_note"] = f"only the lookup-table model fits flash_budget {p.flash_budget:,} bytes"
        if lut_failed:
            record["lut_note"] = "; ".join(note for note in (record.get("lut_note"), lut_failed) if note)
        record.update({k: v for k, v in (("flash_budget", p.flash_budget), ("arena_budget", p.arena_budget)) if v})
        return {"mcu": record, "latency_note": "timed in LiteRT on the host CPU; no microcontroller is attached here"}

    def evaluate(self, path, data, task, emit) -> float | None:
        """The metric on the test split measured in the TFLM interpreter, in the arena measured in ``finish``."""
        if self._shipped is None:
            return None
        path, arena = self._shipped  # the file model_data.cc holds, and its arena
        with tempfile.TemporaryDirectory() as tmp, TflmProcess(timeout_s=3600) as worker:
            inputs, out = Path(tmp) / "x.npy", Path(tmp) / "y.npy"

            def predict(x: np.ndarray) -> np.ndarray:
                np.save(inputs, np.asarray(x, np.float32))
                out.unlink(missing_ok=True)
                spec = {"op": "predict", "model": str(path), "inputs": str(inputs), "out": str(out), "arena": arena}
                worker.request(spec, out, "evaluation")
                return np.load(out)

            return data.score(predict, task)


def _lut(worker, path: Path, folder: Path, arena: int, tmp: Path, samples) -> dict | None:
    """The LUT-encoded model (``folder/lut/model.tflite``) and its figures, or None when no tensor encodes.

    Each candidate is tried alone (a request of its own: a TFLM crash costs that tensor), kept when the file
    shrinks and TFLM's outputs stay bit-identical on the calibration ``samples``; then the kept ones together."""
    base = {"model": str(path), "arena": arena, "out": str(tmp / "lut.json")}
    if samples is not None:
        np.save(tmp / "samples.npy", np.asarray(samples, np.float32))
        base["samples"] = str(tmp / "samples.npy")
    kept, skipped = [], []
    for row in tflm.lut_candidates(path.read_bytes()):
        (tmp / "lut.json").unlink(missing_ok=True)
        try:
            worker.request({**base, "op": "lut_one", "row": row}, tmp / "lut.json", "lookup-table encoding")
        except StageError as exc:  # a crash: that tensor stays int8
            skipped.append(f"{row['name'][:60]}: {exc}")
            continue
        answer = json.loads((tmp / "lut.json").read_text())
        if answer["kept"]:
            kept.append({**row, "bytes_after": answer["bytes_after"], "arena_bytes_added": answer["arena_bytes_added"]})
    if not kept:
        if skipped:
            raise StageError(f"{len(skipped)} tensor(s) failed, e.g. {skipped[0]}")
        return None
    (folder / "lut").mkdir(exist_ok=True)
    encoded = folder / "lut" / "model.tflite"
    (tmp / "lut.json").unlink(missing_ok=True)
    try:
        spec = {**base, "op": "lut_all", "rows": kept, "model_out": str(encoded)}
        worker.request(spec, tmp / "lut.json", "lookup-table encoding")
    except StageError as exc:  # together they crash TFLM: the tensor that saves most, alone (it ran alone)
        if len(kept) == 1:
            raise
        skipped.append(f"{len(kept) - 1} of the {len(kept)} tensors together: {exc}")
        kept = [max(kept, key=lambda row: row["bytes_before"] - row["bytes_after"])]
        encoded.unlink(missing_ok=True)
        (tmp / "lut.json").unlink(missing_ok=True)
        spec = {**base, "op": "lut_all", "rows": kept, "model_out": str(encoded)}
        worker.request(spec, tmp / "lut.json", "lookup-table encoding")
    answer = json.loads((tmp / "lut.json").read_text())
    if not encoded.exists():
        (folder / "lut").rmdir()
        return None
    rows = [{k: row[k] for k in LUT_FIELDS} for row in kept]
    for out_row, row in zip(rows, kept, strict=True):
        out_row["tensor"] = row["name"]
    return {
        "path": f"{folder.name}/lut/{encoded.name}",
        "flash_bytes": encoded.stat().st_size,
        "arena_bytes": answer["arena_bytes"],
        "host_latency_ms": answer["host_latency_ms"],
        **storage.breakdown(encoded, sized=False),
        "rows": rows,
        "skipped": skipped,
    }


LUT_FIELDS = ("tensor", "bits", "granularity", "bytes_before", "bytes_after", "arena_bytes_added")


def _float_ops(path: Path) -> str:
    """The ops that compute in float, with their layers ('' when none)."""
    rows = []
    for operator in read_operators(path):
        if any(t.startswith("FLOAT") for t in operator["output_types"]) and operator["op"] != "DEQUANTIZE":
            name = operator["outputs"][0] if operator["outputs"] else ""
            rows.append(f"{operator['op']} (layer {tflm.layer_of(name)!r})")
    return ", ".join(rows[:5]) + (f" and {len(rows) - 5} more" if len(rows) > 5 else "")


def _write_sources(model: bytes, ops: list[dict], folder: Path, name: str) -> list[str]:
    """model_data.cc, model_data.h and op_resolver.h in ``folder``, each whole or not at all."""
    source, header = tflm.model_sources(model, name)
    files = {"model_data.cc": source, "model_data.h": header, "op_resolver.h": tflm.op_resolver_source(ops, name)}
    for file, text in files.items():
        measure.write_whole(folder / file, text.encode())
    return list(files)
