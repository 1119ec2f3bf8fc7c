"""The LiteRT Quantizer's int4 weight-only against the TFLite converter's int8, on a MobileNetV2-type model.

A Keras MobileNetV2 (alpha 0.35, 96×96×3 input, weights=None, 10 classes) trained briefly on
scikit-learn's bundled digits upscaled to 96×96×3; the artifacts come from one
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
  - {type: cpu, name: converter-int8, mode: int8, calibration_samples: 200}
  - {type: cpu, name: litert-int4, backend: litert-quantizer, mode: weight-only-int4}
  - {type: cpu, name: litert-int8, backend: litert-quantizer, mode: weight-only-int8}
bench: {runs: 60, warmup: 5, rounds: 3, threads: 1}
"""


def digits_96(split: int = 1400):
    """scikit-learn's bundled digits (8×8, no download), upscaled to 96×96 and repeated to 3 channels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = np.kron(digits.images / 16.0, np.ones((12, 12)))[..., None].repeat(3, axis=-1).astype(np.float32)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], digits.target[order]
    return x[:split], y[:split], x[split:], y[split:]


def build(out: Path, epochs: int = 5) -> tuple[Path, Path, int]:
    from compressctl.core.env import keras, seed_everything

    seed_everything(0)
    k = keras()
    x_train, y_train, x_test, y_test = digits_96()
    data = out / "digits96.npz"
    np.savez(data, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    model = k.applications.MobileNetV2(input_shape=(96, 96, 3), alpha=0.35, weights=None, classes=10)
    # keras.applications builds BatchNormalization with momentum 0.999: after a few hundred steps its
    # moving statistics are still near their initial values and the model predicts one class at
    # inference. A faster momentum lets a brief training give a model worth quantizing.
    for layer in model.layers:
        if isinstance(layer, k.layers.BatchNormalization):
            layer.momentum = 0.9
    model.compile(k.optimizers.Adam(2e-3), "sparse_categorical_crossentropy", ["accuracy"])
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
        "model": f"Keras MobileNetV2 alpha 0.35, 96×96×3, 10 classes, {params:,} parameters, trained 5 epochs on "
        "scikit-learn's digits upscaled to 96×96×3",
        "test_samples": report["data"]["test_samples"],
        "failed_targets": report["failed_targets"],
        "rows": rows,
    }
