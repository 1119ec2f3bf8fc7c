"""The mcu target (TensorFlow Lite Micro) on LeNet-5 and on the MobileNetV2-type model of benchmarks/backends.py.

LeNet-5 goes through the bundled recipes/mcu.yaml unchanged (channel pruning → clustering → QAT →
mcu); the MobileNetV2-type model through a short clustering and the mcu target, so that its int8
figures stand beside its lookup-table ones. Every figure is compressctl's report.json, measured in
the TFLM interpreter (flash, arena, accuracy) on this host; latency per inference in TFLM is a host
figure, not a microcontroller's.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from benchmarks import backends

MOBILENET_RECIPE = """
name: mobilenet-mcu
seed: 0
training: {batch_size: 32, steps_per_epoch: 20}
stages:
  - {type: cluster, number_of_clusters: 16, epochs: 1, learning_rate: 0.0001}
targets:
  - {type: mcu, calibration_samples: 100}
bench: {runs: 20, warmup: 2, rounds: 2, threads: 1}
"""


def _run(cli: list[str], recipe: Path, model: Path, data: Path, out: Path, repo: Path, extra=()) -> dict:
    cmd = [*cli, "run", str(recipe), "--model", str(model), "--data", str(data), "--out", str(out), *extra]
    done = subprocess.run([*cmd, "--json", "--quiet"], capture_output=True, text=True, cwd=repo)
    if done.returncode not in (0, 1):
        print(done.stderr, file=sys.stderr)
        raise RuntimeError(f"compressctl run exited {done.returncode}")
    return json.loads(done.stdout)


def row(name: str, report: dict) -> dict:
    """The figures of the run's mcu artifact."""
    (artifact,) = [a for a in report["artifacts"] if a["type"] == "mcu"]
    mcu = artifact["mcu"]
    lut = mcu.get("lut_model") or {}
    return {
        "model": name,
        "params": report["model"]["params"],
        "baseline_metric": report["baseline"]["metric_value"],
        "metric": artifact["metric_value"],
        "delta": artifact["metric_delta"],
        "flash_bytes": mcu["flash_bytes"],
        "arena_bytes": mcu["arena_bytes"],
        "host_latency_ms": mcu.get("host_latency_ms"),
        "lut_tensors": len(mcu.get("lut") or []),
        "lut_flash_bytes": lut.get("flash_bytes"),
        "lut_arena_bytes": lut.get("arena_bytes"),
        "lut_host_latency_ms": lut.get("host_latency_ms"),
        "runtime": mcu["runtime"],
        "test_samples": report["data"]["test_samples"],
    }


def run(cli: list[str], out: Path, samples: Path, repo: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    lenet = _run(
        cli, repo / "recipes" / "mcu.yaml", samples / "lenet5_digits", samples / "digits.npz", out / "lenet5", repo
    )
    (out / "mobilenet").mkdir(exist_ok=True)
    model, data, _ = backends.build(out / "mobilenet")
    recipe = out / "mobilenet-mcu.yaml"
    recipe.write_text(MOBILENET_RECIPE)
    mobilenet = _run(cli, recipe, model, data, out / "mobilenet" / "run", repo)
    return {"rows": [row("LeNet-5 (recipes/mcu.yaml)", lenet), row("MobileNetV2-type (cluster → mcu)", mobilenet)]}


def goals(section: dict) -> list[dict]:
    """issue 21's goals, met or not, from the measured rows."""
    lenet = section["rows"][0]
    shipped = min(lenet["flash_bytes"], lenet["lut_flash_bytes"] or lenet["flash_bytes"])
    return [
        {
            "goal": "LeNet-5 through recipes/mcu.yaml, measured in TFLM: ≤ 48 KB flash, ≤ 32 KB arena, ≤ 1 point lost",
            "measured": f"{lenet['flash_bytes']:,} B flash (lookup tables: {lenet['lut_flash_bytes'] or 0:,} B), "
            f"{lenet['arena_bytes']:,} B arena (lookup tables: {lenet['lut_arena_bytes'] or 0:,} B), "
            f"{100 * lenet['delta']:+.2f} points",
            "met": lenet["flash_bytes"] <= 48 * 1024 and lenet["arena_bytes"] <= 32 * 1024 and -lenet["delta"] <= 0.01,
        },
        {
            "goal": "LeNet-5 aim: 32 KB of flash",
            "measured": f"{shipped:,} B",
            "met": shipped <= 32 * 1024,
        },
    ]


def render(section: dict) -> list[str]:
    lines = [
        "## Microcontrollers: the mcu target measured in TensorFlow Lite Micro",
        "",
        f"Flash, arena and accuracy measured in {section['rows'][0]['runtime']} (the TFLM interpreter on this "
        "host); latency per inference in TFLM is a host figure, not a microcontroller's.",
        "",
        "| model | accuracy (Δ) | int8 flash | int8 arena | lookup tables | LUT flash | LUT arena "
        "| TFLM ms (int8 / LUT) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in section["rows"]:
        lut_ms = "" if r["lut_host_latency_ms"] is None else f" / {r['lut_host_latency_ms']:.3f}"
        lines.append(
            f"| {r['model']} | {100 * r['metric']:.2f} % ({100 * r['delta']:+.2f} pt) | {r['flash_bytes']:,} | "
            f"{r['arena_bytes']:,} | {r['lut_tensors']} | {r['lut_flash_bytes'] or 0:,} | "
            f"{r['lut_arena_bytes'] or 0:,} | "
            f"{r['host_latency_ms']:.3f}{lut_ms} |"
        )
    return lines + [""]


if __name__ == "__main__":  # python -m benchmarks.mcu: measure and print the section alone
    repo = Path(__file__).resolve().parents[1]
    section = run(
        [sys.executable, "-m", "compressctl"], repo / "benchmarks" / "out" / "mcu", repo / "sample_models", repo
    )
    print("\n".join(render(section)))
    for goal in goals(section):
        print(f"{'met' if goal['met'] else 'NOT met'}: {goal['goal']}: {goal['measured']}")
    (repo / "benchmarks" / "out" / "mcu" / "results.json").write_text(json.dumps(section, indent=2) + "\n")
