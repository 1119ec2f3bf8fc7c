"""The LiteRT Quantizer's int4 weight-only against the TFLite converter's int8, on a MobileNetV2-type model.

A Keras MobileNetV2 (alpha 0.35, 96×96×3 input, weights=None, 4 classes) trained briefly on
generated images whose class is the quadrant holding a bright blob; both artifacts come from one
`compressctl run` (the converter's calibrated full int8, and the LiteRT Quantizer's int4
weight-only from the same float32 baseline), so sizes, accuracy and latency are measured alike.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

RECIPE = """
name: mobilenet-backends
seed: 0
targets:
  - {type: cpu, name: converter-int8, mode: int8, calibration_samples: 100}
  - {type: cpu, name: litert-int4, backend: litert-quantizer, mode: weight-only-int4}
  - {type: cpu, name: litert-int8, backend: litert-quantizer, mode: weight-only-int8}
bench: {runs: 60, warmup: 5, rounds: 3, threads: 1}
"""


def quadrant_images(n: int, rng, size: int = 96, classes: int = 4):
    y = rng.integers(0, classes, n)
    x = rng.normal(0.2, 0.08, (n, size, size, 3)).astype(np.float32)
    h = size // 2
    for i, label in enumerate(y):
        r, c = divmod(int(label), 2)
        x[i, r * h : (r + 1) * h, c * h : (c + 1) * h, int(label) % 3] += 0.6
    return np.clip(x, 0, 1), y


def build(out: Path, epochs: int = 4) -> tuple[Path, Path, int]:
    from compressctl.tfenv import keras, seed_everything

    seed_everything(0)
    k = keras()
    rng = np.random.default_rng(0)
    x_train, y_train = quadrant_images(320, rng)
    x_test, y_test = quadrant_images(120, rng)
    data = out / "quadrants96.npz"
    np.savez(data, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    model = k.applications.MobileNetV2(input_shape=(96, 96, 3), alpha=0.35, weights=None, classes=4)
    model.compile(k.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", ["accuracy"])
    model.fit(x_train, y_train, epochs=epochs, batch_size=32, verbose=0)
    path = out / "mobilenetv2_035_96"
    model.save(str(path), save_format="tf")
    return path, data, int(model.count_params())


def run(cli: list[str], out: Path, repo: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    model, data, params = build(out)
    recipe = out / "recipe.yaml"
    recipe.write_text(RECIPE)
    cmd = [*cli, "run", str(recipe), "--model", str(model), "--data", str(data), "--out", str(out / "run")]
    done = subprocess.run([*cmd, "--json", "--quiet"], capture_output=True, text=True, cwd=repo)
    if done.returncode not in (0, 1):
        print(done.stderr, file=sys.stderr)
        raise RuntimeError(f"compressctl run exited {done.returncode}")
    report = json.loads(done.stdout)
    rows = [
        {
            "artifact": "float32 baseline",
            "backend": "converter",
            "scheme": "float32",
            "size_bytes": report["baseline"]["size_bytes"],
            "gzip_bytes": report["baseline"]["gzip_bytes"],
            "ratio": 1.0,
            "ratio_gzip": 1.0,
            "metric": report["baseline"]["metric_value"],
            "delta": 0.0,
            "p50_ms": report["baseline"]["latency_ms"]["p50"],
            "speedup": 1.0,
        }
    ]
    for a in report["artifacts"]:
        rows.append(
            {
                "artifact": a["target"],
                "backend": a["quantization"]["backend"],
                "scheme": a["quantization"]["scheme"],
                "size_bytes": a["size_bytes"],
                "gzip_bytes": a["gzip_bytes"],
                "ratio": a["compression_ratio"],
                "ratio_gzip": a["compression_ratio_gzip"],
                "metric": a["metric_value"],
                "delta": a["metric_delta"],
                "p50_ms": a["latency_ms"]["p50"],
                "speedup": a["speedup"],
            }
        )
    return {
        "model": f"Keras MobileNetV2 alpha 0.35, 96×96×3, 4 classes, {params:,} parameters",
        "test_samples": report["data"]["test_samples"],
        "failed_targets": report["failed_targets"],
        "rows": rows,
    }
