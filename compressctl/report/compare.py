"""``compressctl compare``: artifacts of several runs in one table, and which of them are worth keeping.

Pure functions over run records (report.json): rows (one per artifact, plus each distinct baseline) and
the Pareto front on size and metric. An artifact is on the front when no other one is at least as
small and at least as good on the metric, and strictly better on one of the two.
"""

from __future__ import annotations

from pathlib import Path

from compressctl.core.errors import UserError
from compressctl.report.record import RunRecord

SIZE_KEYS = {"size": "size_bytes", "gzip": "gzip_bytes"}


def run_names(run_dirs: list[str]) -> list[str]:
    """Each run's folder name; the whole path as given where two folders share a name."""
    names = [Path(d).name or str(d) for d in run_dirs]
    return [str(d) if names.count(n) > 1 else n for d, n in zip(run_dirs, names, strict=True)]


def batch_runs(run_dir: str) -> list[tuple[str, str]] | None:
    """(``model/recipe``, run directory) of each finished run of a ``compressctl batch`` directory (it holds
    batch.json), in the batch's order; None for any other folder."""
    import json

    path = Path(run_dir) / "batch.json"
    if not path.is_file():
        return None
    try:
        batch = json.loads(path.read_text())
        runs = [(r["model"], r["recipe"], r["run_dir"]) for r in batch["runs"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{path}: not a readable batch record ({exc})") from None
    found = [
        (f"{model}/{Path(recipe).stem}", str(Path(run_dir) / sub))
        for model, recipe, sub in runs
        if (Path(run_dir) / sub / "report.json").is_file()
    ]
    if not found:
        raise UserError(f"{run_dir}: the batch holds no finished run yet")
    return found


def named_runs(run_dirs: list[str]) -> list[tuple[str, str]]:
    """(name, run directory) for each run to compare: a batch directory stands for its finished runs."""
    expanded = [batch_runs(d) or [(None, d)] for d in run_dirs]
    plain = [d for runs in expanded for name, d in runs if name is None]
    plain_names = iter(run_names(plain))
    return [(name or next(plain_names), d) for runs in expanded for name, d in runs]


def rows_from_report(run: str, record: RunRecord, run_dir: str | Path = "") -> list[dict]:
    """The baseline and every artifact of one run as flat rows."""
    base = record.baseline
    common = {
        "run": run,
        "recipe": record.recipe.name,
        "metric": record.metric.name,
        "higher_is_better": record.metric.higher_is_better,
        "measured_on": base.measured_on,
    }
    rows = [
        {
            **common,
            "target": "baseline",
            "conversion": "float32",
            "baseline": True,
            "path": str(Path(run_dir) / base.artifact),
            "sha256": base.sha256,
            "size_bytes": base.size_bytes,
            "gzip_bytes": base.gzip_bytes,
            "compression_ratio": 1.0,
            "compression_ratio_gzip": 1.0,
            "metric_value": base.metric_value,
            "metric_delta": 0.0,
            "p50_ms": base.latency_ms.p50,
            "speedup": 1.0,
            "flash_bytes": None,
            "arena_bytes": None,
        }
    ]
    for a in record.artifacts:
        rows.append(
            {
                **common,
                "target": a.target,
                "conversion": a.conversion,
                "baseline": False,
                "path": str(Path(run_dir) / a.path),
                "sha256": a.sha256,
                "size_bytes": a.size_bytes,
                "gzip_bytes": a.gzip_bytes,
                "compression_ratio": a.compression_ratio,
                "compression_ratio_gzip": a.compression_ratio_gzip,
                "metric_value": a.metric_value,
                "metric_delta": a.metric_delta,
                "p50_ms": a.latency_ms.p50,
                "speedup": a.speedup,
                "measured_on": a.measured_on,
                # mcu targets: measured in the TFLM interpreter (artifacts[].mcu); None for the others
                "flash_bytes": a.mcu.flash_bytes if a.mcu else None,
                "arena_bytes": a.mcu.arena_bytes if a.mcu else None,
            }
        )
    return rows


def dominates(a: dict, b: dict, by: str = "size_bytes") -> bool:
    """a is at least as small and as good as b, and strictly better on one of the two.

    "Good" follows the metric's direction (the rows' ``higher_is_better``; lower mae is better).
    """
    sign = 1 if a.get("higher_is_better", True) else -1
    ma, mb = sign * a["metric_value"], sign * b["metric_value"]
    no_worse = a[by] <= b[by] and ma >= mb
    return no_worse and (a[by] < b[by] or ma > mb)


def pareto_flags(rows: list[dict], by: str = "size_bytes") -> list[bool]:
    """For each row, True when no other row dominates it (ties on both axes all stay on the front)."""
    return [not any(dominates(other, row, by) for other in rows if other is not row) for row in rows]


def compare_reports(runs: list[tuple[str, str, RunRecord]], by: str = "size_bytes") -> tuple[list[dict], list[str]]:
    """(name, run_dir, record) per run → rows with ``pareto`` set, and notes on what makes them hard to compare.

    A baseline shared by several runs (same sha256) is listed once, under the first run that has it.
    """
    if by not in SIZE_KEYS.values():
        raise ValueError(f"by must be one of {sorted(SIZE_KEYS.values())}, got {by!r}")
    rows, seen_baselines = [], set()
    for name, run_dir, report in runs:
        for row in rows_from_report(name, report, run_dir):
            if row["baseline"]:
                key = row["sha256"] or (name, row["path"])
                if key in seen_baselines:
                    continue
                seen_baselines.add(key)
            rows.append(row)
    for row, flag in zip(rows, pareto_flags(rows, by), strict=True):
        row["pareto"] = flag
    return rows, _notes(runs)


def _notes(runs: list[tuple[str, str, RunRecord]]) -> list[str]:
    notes = []
    metrics = {r.metric.name for _, _, r in runs}
    if len(metrics) > 1:
        notes.append(f"the runs report different metrics ({', '.join(sorted(metrics))}); not comparable")
    datasets = {r.data.sha256 for _, _, r in runs}
    if len(datasets) > 1:
        notes.append("the runs were measured on different data (data sha256 differs); metrics are not comparable")
    places = {r.baseline.measured_on for _, _, r in runs}
    if len(places) > 1:
        notes.append(
            f"latency was measured in different settings ({', '.join(sorted(places))}); "
            "compare speed-ups, not milliseconds"
        )
    return notes
