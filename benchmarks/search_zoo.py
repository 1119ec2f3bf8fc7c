"""`compressctl search` on the zoo's residual CNN, MobileNetV2-type and DenseNet-type models, bisection first.

Each family (benchmarks/zoo_models.py) is trained as the zoo trains it (5 epochs on the sample digits
as 32×32 RGB), then `compressctl search recipes/search.yaml` runs 8 trials on it with
``search.per_layer.bisect`` set and the target's debug strings stripped (``strip_strings``: the
tensor names are a quarter of the residual CNN's gzip bytes; the rest of the recipe as bundled),
and the TFMOT pruning and
clustering guides (benchmarks/peers.py) run on the same trained model, in the same run. Goal: the
best trial within one point reaches at least twice the best guide's gzip ratio, and lies within half
a point of the gate (the bisection pushed until the budget bound); and at least the best guide's
stored ratio too. Every figure is read from the trials' own report.json files and the bytes the
guides wrote.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

FAMILIES = ("resnet", "mobilenet_v2", "densenet")
TRIALS = 8
BISECT = 6
EPOCHS = 5


def section(
    out: Path, samples: Path, trials: int = TRIALS, quick: bool = False, families=FAMILIES, earlier: dict | None = None
) -> dict:
    """The part, measured on ``families``; the other families of ``earlier`` (a previous run's part with the
    same trials) keep their figures."""
    from benchmarks import zoo
    from benchmarks.search_bench import best_within_one_point, fresh, run_search

    out.mkdir(parents=True, exist_ok=True)
    data = zoo.digits32(samples, out)
    bisect = min(BISECT, max(trials - 1, 1))
    quick_sets = ["stages.0.epochs=1", "stages.1.epochs=1", "bench.runs=50"] if quick else []
    part = {"trials": trials, "bisect": bisect, "epochs": 1 if quick else EPOCHS, "families": {}}
    if earlier and all(earlier.get(k) == part[k] for k in ("trials", "bisect", "epochs")):
        part["families"] = {f: v for f, v in earlier.get("families", {}).items() if f not in families}
    for family in families:
        zoo.log(f"search: {family}, trained {part['epochs']} epochs")
        model, facts = zoo._train(family, data, out, part["epochs"])
        extra = ["--set", f"search.per_layer.bisect={bisect}", "--set", "targets.0.strip_strings=true"]
        for item in quick_sets:
            extra += ["--set", item]
        zoo.log(f"search: {trials} trials on {family}, the first {bisect} bisecting")
        result = run_search(str(model), fresh(out / family), trials, extra, data=str(data))
        search = result["search"]
        baseline = _baseline(out / family, search)
        guides = zoo._guides(model, data, *baseline) if baseline else []
        for row in guides:
            if "accuracy" in row:
                row["delta"] = row["accuracy"] - facts["accuracy"]
        part["families"][family] = {
            **facts,
            "best": best_within_one_point(search),
            "gate": search["objective"]["gates"].get("max_metric_drop"),
            "bisect": search.get("bisect"),
            "trials": [
                {k: t[k] for k in ("id", "status", "metric_delta", "compression_ratio_gzip", "compression_ratio")}
                for t in search["trials"]
            ],
            "guides": guides,
            "wall_s": result["wall_s"],
            "engine": search["engine"],
            "date": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
        }
    return part


def _baseline(out: Path, search: dict) -> tuple[int, int] | None:
    """The float32 baseline's stored and gzip bytes, from a trial's report.json."""
    for trial in search["trials"]:
        report = out / trial["run_dir"] / "report.json"
        if report.exists():
            base = json.loads(report.read_text())["baseline"]
            return base["size_bytes"], base["gzip_bytes"]
    return None


def best_guide(entry: dict) -> dict | None:
    rows = [g for g in entry["guides"] if "ratio_gzip" in g]
    return max(rows, key=lambda g: g["ratio_gzip"]) if rows else None


def goals(part: dict) -> list[dict]:
    out = []
    for family, entry in part.get("families", {}).items():
        best, guide, gate = entry["best"], best_guide(entry), entry["gate"]
        if guide is None:
            continue
        need = 2 * guide["ratio_gzip"]
        near = best is not None and gate is not None and -best["metric_delta"] >= gate - 0.005 - 1e-9
        measured = (
            f"{best['compression_ratio_gzip']:.2f}× gzip at {100 * best['metric_delta']:+.2f} pt (trial {best['id']})"
            if best
            else "no trial within one point"
        )
        out.append(
            {
                "goal": f"{part['trials']}-trial search on the zoo's {family} (bisection first): ≥ 2× the best "
                f"TFMOT guide's gzip ratio ({need:.2f}×) within one point, the best within half a point of the gate",
                "measured": f"{measured}; best guide {guide['ratio_gzip']:.2f}× ({guide['recipe']})",
                "met": bool(best and best["compression_ratio_gzip"] >= need and near),
            }
        )
        stored = max((g for g in entry["guides"] if "ratio" in g), key=lambda g: g["ratio"])
        best_stored = next((t["compression_ratio"] for t in entry["trials"] if best and t["id"] == best["id"]), 0.0)
        out.append(
            {
                "goal": f"{part['trials']}-trial search on the zoo's {family}: at one point lost, ≥ 2× the best "
                f"TFMOT guide's gzip ratio ({need:.2f}×) and ≥ its stored ratio ({stored['ratio']:.2f}×)",
                "measured": (
                    f"{best_stored:.2f}× stored / {best['compression_ratio_gzip']:.2f}× gzip at "
                    f"{100 * best['metric_delta']:+.2f} pt (trial {best['id']}); guides' best {stored['ratio']:.2f}× "
                    f"stored ({stored['recipe']}) / {guide['ratio_gzip']:.2f}× gzip"
                    if best
                    else "no trial within one point"
                ),
                "met": bool(best and best["compression_ratio_gzip"] >= need and best_stored >= stored["ratio"]),
            }
        )
    return out


def render(part: dict) -> list[str]:
    if not part.get("families"):
        return []
    lines = [
        "",
        f"### Bisection first: {part['trials']}-trial searches on zoo families",
        "",
        f"`compressctl search recipes/search.yaml --set search.per_layer.bisect={part['bisect']} --set "
        "targets.0.strip_strings=true` on the zoo's "
        f"families (trained {part['epochs']} epochs on the digits as 32×32 RGB, benchmarks/search_zoo.py): the first "
        f"{part['bisect']} trials bisect one allowance (each layer's one-shot drop on its sensitivity curve), the "
        "rest are TPE's in the narrowed ranges. The TFMOT guides ran on the same trained model; their files keep "
        "their tensor names, the search's artifacts do not (`strip_strings`). The guides convert as TFMOT's "
        "guides do (`Optimize.DEFAULT`, no calibration): dynamic-range files with float activations and biases, "
        "whose only quantization parameters are the weights' per-channel scales; the search's artifacts are full "
        "int8, whose int32 biases carry a per-channel scale and int64 zero point too, 12 bytes per channel that "
        "the guides' files do not hold.",
        "",
        "| family | best trial | gzip ratio | stored ratio | accuracy Δ | best guide (gzip) | 2× guide met "
        "| trials: Δ pt @ gzip ratio (allowance) | wall s |",
        "| --- | --- | ---: | ---: | ---: | --- | --- | --- | ---: |",
    ]
    for family, entry in part["families"].items():
        best, guide = entry["best"], best_guide(entry)
        allowances = (entry.get("bisect") or {}).get("allowances", {})
        trials = "; ".join(
            (
                f"{t['id']} {t['status']} {100 * t['metric_delta']:+.2f} @ {t['compression_ratio_gzip']:.1f}×"
                if t["metric_delta"] is not None
                else f"{t['id']} {t['status']}"
            )
            + (f" ({100 * allowances[t['id']]:.2f} pt)" if t["id"] in allowances else "")
            for t in entry["trials"]
        )
        stored = next((t["compression_ratio"] for t in entry["trials"] if best and t["id"] == best["id"]), None)
        guide_cell = f"{guide['ratio_gzip']:.2f}× ({guide['recipe']})" if guide else "failed"
        met = bool(best and guide and best["compression_ratio_gzip"] >= 2 * guide["ratio_gzip"])
        lines.append(
            f"| {family} | {best['id'] if best else 'none'} | "
            + (
                f"{best['compression_ratio_gzip']:.2f}× | {stored:.2f}× | {100 * best['metric_delta']:+.2f} pt | "
                if best
                else " | | | "
            )  # fmt: skip
            + f"{guide_cell} | {'yes' if met else 'no'} | {trials} | {entry['wall_s']:.0f} |"
        )
    return lines
