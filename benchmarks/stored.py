"""Stored size in `make bench`: recipes/smallest.yaml on LeNet-5, beside the TFMOT guides and the zoo.

LeNet-5 (the sample model) goes through the bundled recipes/smallest.yaml unchanged (channel pruning →
cluster onto the int4 grid → LiteRT Quantizer weight-only int4). The goals of stored size also read
the zoo section (benchmarks/zoo.py), which runs the same recipe unchanged on its families: its
`mobilenet_v2` (MobileNetV2-0.35 at 32×32) and `resnet` (a residual CNN) rows. Every figure is
compressctl's report.json: the bytes of the file written, the accuracy through LiteRT on the test
split, the latency timed alternately with the float32 baseline in that run.
"""

from __future__ import annotations

from pathlib import Path

RECIPE = "smallest"
# issue 20's goals: (stored ratio at least, points lost at most) per model, and LeNet-5's aim.
LENET_GOAL, LENET_AIM, ZOO_GOAL = (40.0, 0.5), 100.0, (6.0, 1.0)
ZOO_MODELS = {"mobilenet_v2": "MobileNetV2-type", "resnet": "residual CNN"}


def row(name: str, report: dict, exit_code: int) -> dict:
    """The figures of the run's artifact, with where its stored bytes go."""
    (artifact,) = report["artifacts"]
    return {
        "model": name,
        "exit_code": exit_code,
        "params": report["model"]["params"],
        "baseline_bytes": report["baseline"]["size_bytes"],
        "size_bytes": artifact["size_bytes"],
        "ratio": artifact["compression_ratio"],
        "ratio_gzip": artifact["compression_ratio_gzip"],
        "delta": artifact["metric_delta"],
        "speedup": artifact.get("speedup"),
        "p50_ms": (artifact.get("latency_ms") or {}).get("p50"),
        "baseline_p50_ms": (report["baseline"].get("latency_ms") or {}).get("p50"),
        "storage": artifact.get("storage") or [],
        "other_bytes": artifact.get("other_bytes"),
    }


def run(compressctl_run, samples: Path, out: Path) -> dict:
    """``compressctl_run(recipe, model, out, extra)`` is benchmarks/run.py's; LeNet-5 through smallest.yaml."""
    repo = Path(__file__).resolve().parent.parent
    done = compressctl_run(str(repo / "recipes" / f"{RECIPE}.yaml"), samples / "lenet5_digits", out / "lenet5")
    report = done["record"].to_dict()
    return {"recipe": f"recipes/{RECIPE}.yaml", "rows": [row("lenet5_digits", report, done["exit_code"])]}


def _zoo_rows(zoo: dict | None) -> dict[str, dict]:
    rows = {}
    for family in ZOO_MODELS:
        entry = ((zoo or {}).get("families") or {}).get(family) or {}
        found = [r for r in entry.get("rows", []) if r.get("recipe") == RECIPE and "size_bytes" in r]
        if found:
            rows[family] = found[0]
    return rows


def goals(section: dict, zoo: dict | None, guides: list[dict]) -> list[dict]:
    """issue 20's stored-size goals, met or not, from the measured rows (``guides``: LeNet-5's TFMOT rows)."""
    lenet = section["rows"][0]
    ratio, points = LENET_GOAL
    best_guide = max((g["ratio"] for g in guides), default=None)
    out = [
        {
            "goal": f"LeNet-5 {section['recipe']}: ≥ {ratio:g}× stored (raw bytes) over float32 TFLite at ≤ "
            f"{points:g} point lost, and above the TFMOT guides' stored ratio",
            "measured": f"{lenet['ratio']:.1f}× at {100 * lenet['delta']:+.2f} points"
            + (f" (best guide {best_guide:.2f}×)" if best_guide else ""),
            "met": lenet["ratio"] >= ratio
            and -lenet["delta"] <= points / 100 + 1e-9
            and (best_guide is None or lenet["ratio"] > best_guide),
        },
        {
            "goal": f"LeNet-5 aim: {LENET_AIM:g}× stored",
            "measured": f"{lenet['ratio']:.1f}×",
            "met": lenet["ratio"] >= LENET_AIM,
        },
    ]
    ratio, points = ZOO_GOAL
    for family, r in _zoo_rows(zoo).items():
        out.append(
            {
                "goal": f"{ZOO_MODELS[family]} (zoo's {family}) {section['recipe']}: ≥ {ratio:g}× stored at ≤ "
                f"{points:g} point lost",
                "measured": f"{r['ratio']:.2f}× at {100 * r['delta']:+.2f} points",
                "met": r["ratio"] >= ratio and -r["delta"] <= points / 100 + 1e-9,
            }
        )
    return out


def render(section: dict, zoo: dict | None) -> list[str]:
    lines = [
        f"## Stored size: `{section['recipe']}` as bundled",
        "",
        "The bytes a device stores (the .tflite file) against the float32 TFLite file, and gzip (the download) "
        "beside it; latency at batch 1 timed alternately with the float32 baseline in the same run, so the cost "
        "of int4 dequantization shows beside the size. LeNet-5 runs here; the zoo rows are the zoo section's "
        "runs of the same recipe. Bits per weight: the constant tensors' bytes over their values, read from "
        "the file.",
        "",
        "| model | exit | weights (model → file) | stored | stored ratio | gzip ratio | bits / weight | Δ "
        "| p50 ms (float32) | speed-up |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |",
    ]
    for r in section["rows"]:
        params = sum(e["params"] for e in r["storage"])
        bits = 8 * sum(e["bytes"] for e in r["storage"]) / params if params else None
        p50 = f"{r['p50_ms']:.4f} ({r['baseline_p50_ms']:.4f})" if r.get("p50_ms") else ""
        lines.append(
            f"| {r['model']} | {r['exit_code']} | {r['params']:,} → {params:,} | {r['size_bytes']:,} B "
            f"| {r['ratio']:.1f}× | {r['ratio_gzip']:.1f}× | {f'{bits:.2f}' if bits else ''} "
            f"| {100 * r['delta']:+.2f} pt | {p50} "
            f"| {r['speedup']:.2f}× |"
        )
    for family, r in _zoo_rows(zoo).items():
        speed = f"{r['speedup']:.2f}×" if r.get("speedup") else ""
        lines.append(
            f"| zoo {family} | {r.get('exit_code', '')} | | {r['size_bytes']:,} B | {r['ratio']:.2f}× "
            f"| {r['ratio_gzip']:.2f}× | | {100 * r['delta']:+.2f} pt | | {speed} |"
        )
    return lines + [""]
