"""`compressctl search` in the benchmark: what a 24-trial search finds, and trials per hour.

Usage: python benchmarks/search_bench.py [--quick] [--trials N]   (also called by benchmarks/run.py)

- On LeNet-5 and on the MLP, `compressctl search recipes/search.yaml` (the bundled recipe,
  unchanged, given --model and --data) runs N trials (24 by default); its best trial is the
  largest gzip ratio among trials that lost at most one point (the recipe's gate), measured by
  that trial's own run, as every compressctl figure is.
- Early stopping: the MLP's 24-trial search again with `search.early_stopping` (ASHA, EARLY below), same
  seed and sampler: trials per hour and the best gzip and stored ratio within one point, beside the search
  without it (the same run's).
- Bisection first (benchmarks/search_zoo.py): 8-trial searches with `search.per_layer.bisect` on the zoo's
  residual CNN, MobileNetV2-type and DenseNet-type models, against the TFMOT guides on the same trained models.
- Trials per hour: the same random-sampler search (same seed, so the same trial parameters) on the
  MLP with 1 and with 2 concurrent trials (the machine's CPUs split between them).
Writes benchmarks/out/search/ (the search directories) and returns a dict for results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "benchmarks" / "out" / "search"
SAMPLES = REPO / "sample_models"
CLI = [sys.executable, "-m", "compressctl"]
QUICK_SETS = ["stages.0.epochs=1", "stages.1.epochs=1", "bench.runs=50"]
# ASHA compares the trials at the 4th and the 8th of the recipe's 15 training epochs (pruning still ramps up
# to epoch 8.4) and stops those in the bottom half there.
EARLY = "search.early_stopping={scheduler: asha, grace_epochs: 4, reduction_factor: 2}"
QUICK_EARLY = "search.early_stopping={scheduler: asha, grace_epochs: 1, reduction_factor: 2}"


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_search(model: str, out: Path, trials: int, extra: list[str] = (), data: str | None = None) -> dict:
    """recipes/search.yaml on a sample model (by name) or a model path, on the sample digits unless ``data``."""
    model_path = Path(model) if Path(model).is_absolute() else SAMPLES / model
    data = data or str(SAMPLES / "digits.npz")
    cmd = [*CLI, "search", "recipes/search.yaml", "--model", str(model_path), "--data", data,
           "--out", str(out), "--trials", str(trials), "--json", *extra]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=env)
    wall = time.perf_counter() - started
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    search = json.loads((out / "search.json").read_text())
    return {"search": search, "wall_s": wall, "exit_code": proc.returncode}


def best_within_one_point(search: dict) -> dict | None:
    """The trial with the largest gzip ratio among those that passed every gate (≤ 1 point lost)."""
    ok = [t for t in search["trials"] if t["status"] == "ok"]
    if not ok:
        return None
    best = max(ok, key=lambda t: t["compression_ratio_gzip"])
    return {k: best[k] for k in ("id", "params", "compression_ratio_gzip", "metric_value", "metric_delta",
                                 "gzip_bytes", "size_bytes", "seconds")}  # fmt: skip


def fresh(path: Path) -> Path:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
    return path


def search_section(
    trials: int = 24,
    quick: bool = False,
    models=("lenet5_digits", "mlp_digits"),
    parts=("models", "throughput", "early_stopping", "zoo"),
    earlier: dict | None = None,
    zoo_families: tuple = (),
) -> dict:
    """The search section; a part left out of ``parts``, or a model not in ``models``, is kept from
    ``earlier`` (a previous run's section)."""
    sets = [a for s in QUICK_SETS for a in ("--set", s)] if quick else []
    earlier = earlier if earlier and earlier.get("quick") == quick else {}
    section = {"trials": trials, "quick": quick, "models": {}, "throughput": {}, "early_stopping": {}, "zoo": {}}
    for part in {"models", "throughput", "early_stopping", "zoo"} - set(parts):
        section[part] = earlier.get(part, {})
    if "zoo" in parts:  # 8 trials with bisection on zoo families (benchmarks/search_zoo.py)
        from benchmarks import search_zoo

        trials_zoo, names = 2 if quick else search_zoo.TRIALS, zoo_families or search_zoo.FAMILIES
        section["zoo"] = search_zoo.section(OUT / "zoo", SAMPLES, trials_zoo, quick, names, earlier.get("zoo"))
    if "models" in parts:  # models not searched now keep their earlier figures
        section["models"] = {m: v for m, v in earlier.get("models", {}).items() if m not in models}
    plain = {}
    for model in models if "models" in parts else ():
        _log(f"search: {trials} trials on {model}")
        result = run_search(model, fresh(OUT / model), trials, sets)
        plain[model] = result
        search = result["search"]
        section["models"][model] = {
            "best": best_within_one_point(search),
            "wall_s": result["wall_s"],
            "statuses": {s: sum(t["status"] == s for t in search["trials"]) for s in ("ok", "gate_failed", "failed")},
            "engine": search["engine"],
            "date": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
        }
    if "early_stopping" in parts:
        section["early_stopping"] = early_stopping_part(trials, quick, sets, plain.get("mlp_digits"))
    throughput_trials = 2 if quick else 6
    for concurrent in (1, 2) if "throughput" in parts else ():
        _log(f"search: {throughput_trials} trials on mlp_digits, {concurrent} at a time")
        extra = [*sets, "--set", "search.sampler=random", "--set", "search.per_layer=null",
                 "--max-concurrent", str(concurrent)]  # fmt: skip
        result = run_search("mlp_digits", fresh(OUT / f"throughput-{concurrent}"), throughput_trials, extra)
        done = [t for t in result["search"]["trials"] if t["status"] != "failed"]
        span = trials_span_s(OUT / f"throughput-{concurrent}", result["search"])
        section["throughput"][str(concurrent)] = {
            "trials": len(result["search"]["trials"]),
            "wall_s": result["wall_s"],
            "trials_per_hour": 3600 * len(result["search"]["trials"]) / result["wall_s"],
            # Once Ray is up: from the first trial's start to the last trial's end (Ray's start left out).
            "trials_span_s": span,
            "trials_per_hour_running": 3600 * len(result["search"]["trials"]) / span if span else None,
            "mean_trial_s": sum(t["seconds"] for t in done) / max(len(done), 1),
            "cpus_per_trial": result["search"]["engine"]["cpus_per_trial"],
            "date": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
        }
    return section


def early_stopping_part(trials: int, quick: bool, sets: list[str], plain: dict | None) -> dict:
    """The MLP's search without and with ASHA (the one without reused when the models part just ran it)."""
    part = {"setting": (QUICK_EARLY if quick else EARLY).split("=", 1)[1], "runs": {}}
    for name in ("without", "with"):
        if name == "without" and plain is not None:
            result = plain
        else:
            _log(f"search: {trials} trials on mlp_digits, early stopping {name}")
            extra = [*sets, "--set", QUICK_EARLY if quick else EARLY] if name == "with" else sets
            result = run_search("mlp_digits", fresh(OUT / f"early-{name}"), trials, extra)
        search = result["search"]
        best = best_within_one_point(search)
        part["runs"][name] = {
            "trials": len(search["trials"]),
            "wall_s": result["wall_s"],
            "trials_per_hour": 3600 * len(search["trials"]) / result["wall_s"],
            "statuses": {
                s: sum(t["status"] == s for t in search["trials"]) for s in ("ok", "gate_failed", "failed", "stopped")
            },  # fmt: skip
            "best": best,
            "best_stored_ratio": _stored_ratio(search, best),
            "stopped_at": sorted(t["stopped_at_epoch"] for t in search["trials"] if t["status"] == "stopped"),
            "date": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
        }
    return part


def _stored_ratio(search: dict, best: dict | None) -> float | None:
    if best is None:
        return None
    trial = next(t for t in search["trials"] if t["id"] == best["id"])
    return trial["compression_ratio"]


def trials_span_s(out: Path, search: dict) -> float | None:
    """Seconds from the first trial's start to the last trial's end, from each trial's report.json.

    A trial ends when its report is written (``created``, to the second) and started ``seconds`` earlier
    (the engine's figure for the whole trial, its worker process included).
    """
    from datetime import datetime

    spans = []
    for trial in search["trials"]:
        report = out / trial["run_dir"] / "report.json"
        if trial["status"] == "failed" or not report.exists():
            return None
        end = datetime.fromisoformat(json.loads(report.read_text())["created"]).timestamp()
        spans.append((end - trial["seconds"], end))
    return max(e for _, e in spans) - min(s for s, _ in spans) if spans else None


HAND = "compressctl deep-compression"
GUIDES = ("TFMOT pruning guide", "TFMOT clustering guide")


def goals(section: dict, peers: dict[str, dict]) -> list[dict]:
    """Goals of the search; ``peers``: {model: {pipeline: row}} from the benchmark's tables, when run there."""
    out = []
    mlp = section["models"].get("mlp_digits", {}).get("best")
    out.append({"goal": "search on the MLP: ≥ 40× gzip at ≤ 1 point",
                "measured": f"{mlp['compression_ratio_gzip']:.1f}× at {100 * mlp['metric_delta']:+.2f} pt"
                if mlp else "no trial within one point",
                "met": bool(mlp and mlp["compression_ratio_gzip"] >= 40)})  # fmt: skip
    lenet = section["models"].get("lenet5_digits", {}).get("best")
    hand_row = peers.get("lenet5_digits", {}).get(HAND)
    if hand_row is not None:
        out.append({"goal": "search on LeNet-5: ≥ the hand-tuned deep-compression.yaml gzip ratio",
                    "measured": (f"{lenet['compression_ratio_gzip']:.1f}×" if lenet else "none within one point")
                    + f" vs {hand_row['ratio_gzip']:.1f}×",
                    "met": bool(lenet and lenet["compression_ratio_gzip"] >= hand_row["ratio_gzip"])})  # fmt: skip
    runs = (section.get("early_stopping") or {}).get("runs", {})
    if "with" in runs and "without" in runs:
        w, wo = runs["with"], runs["without"]
        rate = w["trials_per_hour"] / wo["trials_per_hour"]
        kept = (
            bool(w["best"] and wo["best"])
            and w["best"]["compression_ratio_gzip"] >= wo["best"]["compression_ratio_gzip"]
        )
        out.append({"goal": "early stopping on the MLP's search: more trials per hour, the best within one point kept",
                    "measured": f"{rate:.2f}× the trials per hour; best "
                    + (f"{w['best']['compression_ratio_gzip']:.1f}× gzip" if w["best"] else "none")
                    + " vs " + (f"{wo['best']['compression_ratio_gzip']:.1f}×" if wo["best"] else "none"),
                    "met": rate > 1.0 and kept})  # fmt: skip
    from benchmarks import search_zoo

    out += search_zoo.goals(section.get("zoo") or {})
    one, two = section["throughput"].get("1"), section["throughput"].get("2")
    if one and two:
        # The rate once the engine runs trials; the whole command (Ray's start included) is shown beside it.
        running = one.get("trials_per_hour_running") and two.get("trials_per_hour_running")
        key = "trials_per_hour_running" if running else "trials_per_hour"
        ratio = two[key] / one[key]
        whole = two["trials_per_hour"] / one["trials_per_hour"]
        out.append({"goal": "2 concurrent trials finish ≥ 1.6× the trials per hour of 1",
                    "measured": f"{ratio:.2f}× ({two[key]:.0f} vs {one[key]:.0f} per hour"
                    + (f"; whole command with Ray's start: {whole:.2f}×)" if key != "trials_per_hour" else ")"),
                    "met": ratio >= 1.6})  # fmt: skip
    return out


def _cell(row: dict | None) -> str:
    return f"{row['ratio_gzip']:.1f}× at {100 * row['delta']:+.2f} pt" if row else ""


def render_section(section: dict, peers: dict[str, dict] | None = None) -> list[str]:
    """Markdown lines for RESULTS.md."""
    peers = peers or {}
    lines = [
        "",
        f"## `compressctl search` ({section['trials']} trials per model"
        + (", quick settings: checks the harness only)" if section["quick"] else ")"),
        "",
        "`compressctl search recipes/search.yaml --model M --data sample_models/digits.npz` (the bundled recipe "
        "unchanged: per-layer sparsity ranges from the layer sensitivity, each ending where pruning that layer alone "
        "without fine-tuning lost more than 5 points, the density drawn on a log scale; 12 pruning epochs; 8, 16 or 32 "
        "clusters; PCQAT; int8; Optuna TPE; gate: at most one point lost). Best = largest gzip ratio among trials that "
        "passed the gate, as measured by that trial's run. The recipe had 6 pruning epochs until the MLP's best "
        "gate-failing trial (51.2× at -1.26 pt) was run again with 12 and 20: +0.76 pt at 49.5× and 50.5×; both "
        "models were then searched again with 12.",
        "",
        "| model | best trial | gzip ratio | accuracy Δ | hand deep-compression.yaml | TFMOT pruning guide "
        "| TFMOT clustering guide | trials ok / missed gate / failed | wall s |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: |",
    ]
    for model, entry in section["models"].items():
        best, counts = entry["best"], entry["statuses"]
        rows = peers.get(model, {})
        hand_cell = " | ".join(_cell(rows.get(name)) for name in (HAND, *GUIDES))
        lines.append(
            f"| {model} | {best['id'] if best else 'none'} | {best['compression_ratio_gzip']:.1f}× | "
            f"{100 * best['metric_delta']:+.2f} pt | {hand_cell} | "
            if best
            else f"| {model} | none within one point | | | {hand_cell} | "
        )
        lines[-1] += f"{counts['ok']} / {counts['gate_failed']} / {counts['failed']} | {entry['wall_s']:.0f} |"
    lines += ["", "| concurrent trials | CPUs per trial | trials | trials span s | trials per hour | whole command s "
              "| per hour, whole command | mean trial s |",
              "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]  # fmt: skip
    for k, t in section["throughput"].items():
        span, running = t.get("trials_span_s"), t.get("trials_per_hour_running")
        lines.append(
            f"| {k} | {t['cpus_per_trial']} | {t['trials']} | {f'{span:.0f}' if span else ''} "
            f"| {f'{running:.1f}' if running else ''} | {t['wall_s']:.0f} | {t['trials_per_hour']:.1f} "
            f"| {t['mean_trial_s']:.0f} |"
        )
    early = section.get("early_stopping") or {}
    if early.get("runs"):
        lines += ["", f"Early stopping on the MLP's search (`search.early_stopping: {early['setting']}`, same seed "
                  "and sampler; the training metric of each epoch compared at ASHA's rungs; measured "
                  f"{early['runs']['with']['date']}):", "",
                  "| early stopping | trials | ok / missed gate / failed / stopped | stopped at epoch | wall s "
                  "| trials per hour | best within one point | gzip ratio | stored ratio | accuracy Δ |",
                  "| --- | ---: | --- | --- | ---: | ---: | --- | ---: | ---: | ---: |"]  # fmt: skip
        for name, r in early["runs"].items():
            c, b = r["statuses"], r["best"]
            figures = (f"{b['id']} | {b['compression_ratio_gzip']:.1f}× | {r['best_stored_ratio']:.2f}× "
                       f"| {100 * b['metric_delta']:+.2f} pt" if b else "none | | |")  # fmt: skip
            lines.append(
                f"| {name} | {r['trials']} | {c['ok']} / {c['gate_failed']} / {c['failed']} / {c['stopped']} "
                f"| {', '.join(map(str, r['stopped_at'])) or '—'} | {r['wall_s']:.0f} | {r['trials_per_hour']:.1f} "
                f"| {figures} |"
            )
    lines.append(
        "\nTrials per hour: the same random-sampler search (same seed, same parameters, sensitivity off) on the MLP. "
        "Trials span: from the first trial's start to the last trial's end, each trial's start being its report's "
        "time less the engine's seconds for it (worker start included); the whole command adds Ray's start "
        "(once per search) and the search's own files."
    )
    from benchmarks import search_zoo

    return lines + search_zoo.render(section.get("zoo") or {})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1-epoch stages, fewer trials: checks the harness only")
    parser.add_argument("--trials", type=int, default=None, help="trials per model search (default 24; quick 2)")
    parser.add_argument("--models", default="lenet5_digits,mlp_digits")
    args = parser.parse_args()
    trials = args.trials or (2 if args.quick else 24)
    section = search_section(trials, args.quick, tuple(args.models.split(",")))
    section["goals"] = goals(section, {})
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "search_results.json").write_text(json.dumps(section, indent=2) + "\n")
    print("\n".join(render_section(section)))
    for goal in section["goals"]:
        print(f"- {goal['goal']}: {goal['measured']} ({'met' if goal['met'] else 'NOT met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
