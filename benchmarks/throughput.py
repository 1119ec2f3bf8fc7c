"""Throughput for batch work (issue 22): the LeNet-5 demo artifact (recipes/deep-compression.yaml, the
file `make demo` writes) and its float32 baseline timed at several batch sizes, the interpreter's input
resized to each, beside the batch-1 latency: what `bench.batch_sizes` reports in report.json.

The files are the ones `benchmarks/run.py` already wrote for LeNet-5's table (no training here); timed
in this process with compressctl's own timing (`compressctl.litert.bench`), one interpreter thread.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

BATCH_SIZES = [1, 32, 256]


def files(out: Path) -> dict[str, Path]:
    run = out / "lenet5_digits" / "deep-compression"
    return {
        "float32 baseline": run / "baseline" / "model_float32.tflite",
        "deep-compression (int8)": run / "cpu" / "model.tflite",
    }


def section(out: Path, data: dict, runs: int) -> dict:
    from compressctl.litert import bench

    models = files(out)
    sample = np.asarray(data["x_test"][: max(BATCH_SIZES)], np.float32)
    latency = bench.bench_alternating(models, sample, runs, max(1, runs // 10), 5, 1)
    found = bench.throughput(models, sample, BATCH_SIZES, runs, 1)
    rows = [{"file": name, "p50_ms": latency[name]["p50"], "throughput": found[name]} for name in models]
    return {
        "model": "lenet5_digits",
        "recipe": "recipes/deep-compression.yaml",
        "batch_sizes": BATCH_SIZES,
        "rows": rows,
    }


def render(section: dict) -> list[str]:
    sizes = section["batch_sizes"]
    lines = [
        "## Throughput: the LeNet-5 demo artifact at several batch sizes",
        "",
        f"`{section['recipe']}` on LeNet-5 (what `make demo` writes) and its float32 baseline, timed with "
        "`bench.batch_sizes` (the interpreter's input resized to each batch, one thread): samples per second.",
        "",
        "| file | p50 ms (batch 1) | " + " | ".join(f"batch {n}: samples/s" for n in sizes) + " |",
        "| --- | ---: | " + " | ".join("---:" for _ in sizes) + " |",
    ]
    for row in section["rows"]:
        by_size = {t["batch_size"]: t for t in row["throughput"]}
        cells = [
            f"{by_size[n]['samples_per_s']:,.0f}" if by_size.get(n, {}).get("samples_per_s") else "not run"
            for n in sizes
        ]
        lines.append(f"| {row['file']} | {row['p50_ms']:.3f} | " + " | ".join(cells) + " |")
    return lines + [""]
