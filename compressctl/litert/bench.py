"""Latency of TFLite artifacts: warm-up, then timed invocations, alternating between models.

Timing the baseline and each artifact in turn, round after round, in one process means a busy
neighbour on a shared machine slows them all alike, so their ratio (the speed-up) stays honest.
"""

from __future__ import annotations

import contextlib
import os
import platform
import time
from pathlib import Path

import numpy as np

from compressctl.core.events import Emit, Event, ignore
from compressctl.litert import interpreter as runtime


def latency_stats(seconds: list[float]) -> dict:
    ms = np.asarray(seconds, dtype=np.float64) * 1000.0
    return {
        "p50": round(float(np.percentile(ms, 50)), 5),
        "p90": round(float(np.percentile(ms, 90)), 5),
        "p99": round(float(np.percentile(ms, 99)), 5),
        "mean": round(float(ms.mean()), 5),
        "runs": int(len(ms)),
    }


def _prepared(interpreter, sample: np.ndarray):
    detail = interpreter.get_input_details()[0]
    value = runtime.quantize_input(sample[:1], detail)
    interpreter.set_tensor(detail["index"], value)
    return interpreter


def bench_alternating(
    models: dict[str, Path],
    sample: np.ndarray,
    runs: int = 200,
    warmup: int = 20,
    rounds: int = 5,
    threads: int = 1,
    xnnpack: dict[str, bool] | None = None,
    emit: Emit = ignore,
) -> dict[str, dict]:
    """Latency statistics per model name, every model timed in each of ``rounds`` rounds."""
    xnnpack = xnnpack or {}
    interpreters = {
        name: _prepared(runtime.load_interpreter(path, threads, xnnpack.get(name, True)), sample)
        for name, path in models.items()
    }
    for interpreter in interpreters.values():
        for _ in range(warmup):
            interpreter.invoke()
    per_round = max(1, runs // rounds)
    timings: dict[str, list[float]] = {name: [] for name in interpreters}
    total = per_round * rounds * len(interpreters)
    emit(Event("task_begin", "timing", total=total))
    done = 0
    for _ in range(rounds):
        for name, interpreter in interpreters.items():
            invoke = interpreter.invoke
            bucket = timings[name]
            for _ in range(per_round):
                start = time.perf_counter()
                invoke()
                bucket.append(time.perf_counter() - start)
            done += per_round
            emit(Event("task_advance", "timing", total=total, completed=done))
    emit(Event("task_end", "timing"))
    return {name: latency_stats(values) for name, values in timings.items()}


def _resized(path: Path, batch: int, threads: int, xnnpack: bool):
    """An interpreter whose inputs take ``batch`` samples, or the reason it cannot have them."""
    try:
        interpreter = runtime.load_interpreter(path, threads, xnnpack)
        for detail in interpreter.get_input_details():
            shape = [int(d) for d in detail["shape"]]
            if not shape:
                return None, "its input is a scalar, with no batch dimension"
            interpreter.resize_tensor_input(detail["index"], [batch, *shape[1:]], strict=False)
        interpreter.allocate_tensors()
    except (RuntimeError, ValueError) as exc:
        return None, f"the interpreter cannot resize its input to batch {batch} ({str(exc).splitlines()[0]})"
    out = interpreter.get_output_details()[0]["shape"]
    if len(out) == 0 or int(out[0]) != batch:
        return None, f"its output keeps batch {int(out[0]) if len(out) else 'none'} when the input is resized"
    return interpreter, None


def _batch_of(sample: np.ndarray, batch: int) -> np.ndarray:
    """``batch`` samples, the given ones repeated as often as needed."""
    repeats = -(-batch // len(sample))
    return np.concatenate([sample] * repeats)[:batch]


def throughput(
    models: dict[str, Path],
    sample: np.ndarray,
    batch_sizes: list[int],
    runs: int = 200,
    threads: int = 1,
    xnnpack: dict[str, bool] | None = None,
) -> dict[str, list[dict]]:
    """Samples per second per model at each batch size; a batch size a model cannot take is ``not_run``.

    Each batch size times about ``runs`` samples' worth of invocations (at least 5), after 2 untimed ones,
    alternating between the models as the batch-1 latency does."""
    xnnpack = xnnpack or {}
    found: dict[str, list[dict]] = {name: [] for name in models}
    for batch in batch_sizes:
        ready, values = {}, _batch_of(sample, batch)
        for name, path in models.items():
            interpreter, reason = _resized(path, batch, threads, xnnpack.get(name, True))
            if interpreter is None:
                found[name].append({"batch_size": batch, "not_run": reason})
                continue
            detail = interpreter.get_input_details()[0]
            interpreter.set_tensor(detail["index"], runtime.quantize_input(values, detail))
            try:
                for _ in range(2):
                    interpreter.invoke()
            except (RuntimeError, ValueError) as exc:
                found[name].append({"batch_size": batch, "not_run": f"invoke failed at batch {batch} ({exc})"})
                continue
            ready[name] = interpreter
        count = max(5, -(-runs // batch))
        seconds: dict[str, list[float]] = {name: [] for name in ready}
        for _ in range(count):
            for name, interpreter in ready.items():
                start = time.perf_counter()
                interpreter.invoke()
                seconds[name].append(time.perf_counter() - start)
        for name, values_s in seconds.items():
            median = float(np.median(values_s))
            found[name].append(
                {
                    "batch_size": batch,
                    "samples_per_s": round(batch / median, 2),
                    "ms_per_batch": float(f"{median * 1000.0:.6g}"),
                    "runs": count,
                }
            )
    for name in found:  # in the order the recipe lists the batch sizes
        found[name].sort(key=lambda entry: batch_sizes.index(entry["batch_size"]))
    return found


def measured_on(threads: int, xnnpack: bool = True) -> str:
    from compressctl.core.cpu_features import cpu_features, simd_suffix

    machine = platform.machine() or "cpu"
    # The suffix names the instruction set that decides int8 speed (avx2, avx512-vnni, dotprod, ...).
    return f"host-cpu-{machine}-{'xnnpack' if xnnpack else 'reference'}-{threads}t-{simd_suffix(cpu_features())}"


# ``compressctl search`` sets this to a lock file path in each trial's environment; the pipeline
# takes the lock (``fcntl.flock``) while it times, so two trials on one machine never time against
# each other. Unset (a plain ``compressctl run``), the lock does nothing. Trials on different
# machines time on different CPUs anyway; each report says where it timed.
TIMING_LOCK_ENV = "COMPRESSCTL_TIMING_LOCK"


@contextlib.contextmanager
def timing_lock():
    """A machine-wide lock around latency timing, so concurrent search trials are timed one at a time."""
    path = os.environ.get(TIMING_LOCK_ENV)
    if not path:
        yield
        return
    import fcntl

    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
