"""The zoo: small keras.applications families through the bundled recipes as they are, and `init` → `run`.

Each family (benchmarks/zoo_models.py builds them: 32×32 RGB, narrow, weights=None) is trained briefly on the
sample digits upscaled to 32×32 RGB, then every bundled recipe runs on it unchanged (only
``--model``, ``--data`` and ``--out``), and so does the recipe ``compressctl init`` writes. For
the first three families the TFMOT pruning and clustering guides (benchmarks/peers.py) run on the
same model, for their stored and gzip ratios. Every figure comes from the run's report.json (sizes of
the files written, accuracy through LiteRT on the test split, latency timed against the float32
baseline in one process) or, for the guides, from the bytes they wrote.
"""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
# Every bundled recipe `run` takes (search.yaml runs deep-compression's stages: prune → cluster → PCQAT);
# tests/test_zoo.py runs the same list.
RECIPES = [
    "cpu-int8",
    "cpu-int4",
    "gpu-fp16",
    "edgetpu",
    "fast-cpu",
    "deep-compression",
    "lowrank-distill",
    "smallest",
    "mcu",
]
GUIDE_FAMILIES = 3  # the guides run on the first three families


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def digits32(samples: Path, out: Path) -> Path:
    """The sample digits (28×28 grey) as 32×32 RGB: padded by two pixels a side, the grey in all three channels."""
    data = dict(np.load(samples / "digits.npz"))
    for split in ("x_train", "x_test"):
        x = data[split]
        x = x.reshape(*x.shape[:3]) if x.ndim == 4 else x
        x = np.pad(x, ((0, 0), (2, 2), (2, 2)))
        data[split] = np.repeat(x[..., None], 3, axis=-1).astype(np.float32)
    path = out / "digits32.npz"
    np.savez(path, **data)
    return path


def _train(family: str, data_path: Path, out: Path, epochs: int) -> tuple[Path, float]:
    """Train the family in a child process (TensorFlow stays out of this one); its path and Keras accuracy."""
    script = (
        "import sys, json, numpy as np\n"
        "sys.path.insert(0, sys.argv[4])\n"
        "import benchmarks.zoo_models as zoo\n"
        "zoo.CLASSES = 10\n"
        "from compressctl.core.env import keras, seed_everything\n"
        "seed_everything(0)\n"
        "k = keras()\n"
        "d = dict(np.load(sys.argv[2]))\n"
        "m = zoo.FAMILIES[sys.argv[1]]()\n"
        "for layer in m.layers:  # moving statistics that follow a brief training\n"
        "    if isinstance(layer, k.layers.BatchNormalization): layer.momentum = 0.9\n"
        "m.compile(k.optimizers.Adam(2e-3), 'sparse_categorical_crossentropy', ['accuracy'])\n"
        "m.fit(d['x_train'], d['y_train'], epochs=int(sys.argv[5]), batch_size=32, verbose=0)\n"
        "acc = m.evaluate(d['x_test'], d['y_test'], verbose=0)[1]\n"
        "m.save(sys.argv[3])\n"
        "print(json.dumps({'accuracy': float(acc), 'params': int(m.count_params())}))\n"
    )
    path = out / "models" / family  # beside the runs, not above them
    path.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [sys.executable, "-c", script, family, str(data_path), str(path), str(REPO), str(epochs)],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    if proc.returncode != 0:
        raise SystemExit(f"training {family} failed: {proc.stderr[-2000:]}")
    facts = json.loads(proc.stdout.strip().splitlines()[-1])
    return path, facts


def _row(run: dict, label: str) -> dict:
    record = run.get("record")
    if record is None:
        return [{"recipe": label, "exit_code": run["exit_code"], "error": run.get("error", "")}]
    report = record.to_dict() if hasattr(record, "to_dict") else record
    base = report["baseline"]
    rows = []
    for art in report["artifacts"]:
        rows.append(
            {
                "recipe": label,
                "artifact": art["target"],
                "exit_code": run["exit_code"],
                "size_bytes": art["size_bytes"],
                "gzip_bytes": art["gzip_bytes"],
                "ratio": art["compression_ratio"],
                "ratio_gzip": art["compression_ratio_gzip"],
                "speedup": art.get("speedup"),
                "delta": art["metric_delta"],
                "baseline_bytes": base["size_bytes"],
                "baseline_gzip": base["gzip_bytes"],
                "wall_s": round(run["wall_s"], 1),
                # the mcu target's flash and arena, measured in the TFLM interpreter
                **({k: art["mcu"][k] for k in ("flash_bytes", "arena_bytes")} if art.get("mcu") else {}),
            }
        )
    failed = [f"{t['target']}: {t.get('reason', '')}" for t in report.get("failed_targets") or []]
    return rows or [{"recipe": label, "exit_code": run["exit_code"], "error": "; ".join(failed)}]


def _run(cli: list[str], recipe: str, model: Path, data: Path, out: Path) -> dict:
    from benchmarks.child import timed_child
    from compressctl.report.record import RunRecord

    cmd = [*cli, "run", recipe, "--model", str(model), "--data", str(data), "--out", str(out), "--json", "--quiet"]
    wall, _, proc = timed_child(cmd)
    if proc.returncode not in (0, 1):
        lines = [line for line in proc.stderr.splitlines() if line.startswith("error")]
        return {"exit_code": proc.returncode, "wall_s": wall, "error": (lines or [proc.stderr[-300:]])[-1]}
    printed = json.loads(proc.stdout)
    record = RunRecord.model_validate({k: v for k, v in printed.items() if k not in ("out", "exit_code")})
    return {"record": record, "wall_s": wall, "exit_code": proc.returncode}


def _exception_line(stderr: str) -> str:
    """The last ``SomeError: message`` line of a traceback (a message may go on over more lines), shortened."""
    lines = stderr.strip().splitlines() or [""]
    found = [line for line in lines if re.match(r"^[A-Za-z_.]*(Error|Exception)\b", line)]
    return " ".join((found or lines)[-1].split())[:200]


def _guides(model: Path, data_path: Path, baseline_bytes: int, baseline_gzip: int) -> list[dict]:
    """The TFMOT pruning and clustering guides on the same model, in a child process each."""
    rows = []
    for guide in ("pruning_guide", "clustering_guide"):
        script = (
            "import sys, numpy as np; sys.path.insert(0, sys.argv[3])\n"
            "from benchmarks import peers\n"
            "from compressctl.litert.evaluate import TaskInfo, evaluate_tflite\n"
            "d = dict(np.load(sys.argv[2]))\n"
            f"blob = peers.{guide}(sys.argv[1], d)\n"
            "open(sys.argv[4], 'wb').write(blob)\n"
            "print(evaluate_tflite(sys.argv[4], d['x_test'], d['y_test'], TaskInfo(binary=False, from_logits=False)))\n"
        )
        out = model.parent / f"{model.name}-{guide}.tflite"
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-c", script, str(model), str(data_path), str(REPO), str(out)],
            capture_output=True,
            text=True,
            cwd=REPO,
        )
        if proc.returncode != 0:
            rows.append({"recipe": f"TFMOT {guide.replace('_', ' ')}", "error": _exception_line(proc.stderr)})
            continue
        blob = out.read_bytes()
        gz = len(gzip.compress(blob, 9, mtime=0))
        rows.append(
            {
                "recipe": f"TFMOT {guide.replace('_', ' ')}",
                "size_bytes": len(blob),
                "gzip_bytes": gz,
                "ratio": baseline_bytes / len(blob),
                "ratio_gzip": baseline_gzip / gz,
                "accuracy": float(proc.stdout.strip().splitlines()[-1]),
                "wall_s": round(time.perf_counter() - t0, 1),
            }
        )
    return rows


def zoo_section(cli: list[str], samples: Path, out: Path, families=None, recipes=None, epochs: int = 3) -> dict:
    """Each family trained, then through ``recipes`` (default: all, then ``init`` → ``run`` and the guides;
    recipes named: those alone)."""
    from benchmarks.zoo_models import FAMILIES

    out.mkdir(parents=True, exist_ok=True)
    data = digits32(samples, out)
    families = list(families or FAMILIES)
    every = not recipes
    recipes = list(recipes or RECIPES)
    section = {"families": {}, "recipes": recipes, "epochs": epochs}
    for index, family in enumerate(families):
        log(f"zoo: training {family}")
        model, facts = _train(family, data, out, epochs)
        rows: list[dict] = []
        for recipe in recipes:
            log(f"zoo: {family} × {recipe}")
            rows += _row(
                _run(cli, str(REPO / "recipes" / f"{recipe}.yaml"), model, data, out / family / recipe), recipe
            )
        if not every:
            section["families"][family] = {**facts, "rows": rows}
            continue
        log(f"zoo: {family} × init → run")
        init_recipe = out / family / "init.yaml"
        init_recipe.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [*cli, "init", str(model), "--data", str(data), "--out", str(init_recipe), "--force"],
            check=True,
            capture_output=True,
            cwd=REPO,
        )
        rows += _row(_run(cli, str(init_recipe), model, data, out / family / "init"), "init → run")
        base = next((r for r in rows if "baseline_bytes" in r), None)
        if index < GUIDE_FAMILIES and base:
            log(f"zoo: {family}: TFMOT guides")
            for row in _guides(model, data, base["baseline_bytes"], base["baseline_gzip"]):
                if "accuracy" in row:
                    row["delta"] = row["accuracy"] - facts["accuracy"]
                rows.append(row)
        section["families"][family] = {**facts, "rows": rows}
    return section


def merged(earlier: dict, zoo: dict) -> dict:
    """``zoo`` (families or recipes measured again) over ``earlier``: the rows not measured again stay."""
    families = dict(earlier.get("families", {}))
    for family, facts in zoo["families"].items():
        again = {row["recipe"] for row in facts["rows"]}
        kept = [row for row in families.get(family, {}).get("rows", []) if row["recipe"] not in again]
        order = {recipe: k for k, recipe in enumerate(RECIPES)}
        rows = sorted(kept + facts["rows"], key=lambda row: order.get(row["recipe"], len(order)))
        families[family] = {**facts, "rows": rows}
    recipes = list(dict.fromkeys([*earlier.get("recipes", []), *zoo["recipes"]]))
    return {**zoo, "families": families, "recipes": recipes}


def render_zoo(zoo: dict) -> list[str]:
    """The zoo section of RESULTS.md: one table per family, a row per recipe (and guide)."""
    lines = [
        "",
        "## The zoo: keras.applications families, bundled recipes as they are",
        "",
        "Small versions of each family (benchmarks/zoo_models.py: 32×32 RGB, narrow, `weights=None`), "
        f"trained {zoo['epochs']} epochs on the sample digits padded to 32×32 RGB, "
        "then each bundled recipe run on it unchanged "
        "(`--model`, `--data`, `--out` only) and the recipe `compressctl init` writes. Stored ratio: float32 TFLite "
        "bytes over the artifact's bytes; gzip: the same at gzip level 9 (the download). Δ against the float32 "
        "baseline (guides: against the Keras model). Exit 1: a gate of the recipe missed; 2 or 3: refused or failed.",
    ]
    if zoo.get("date"):
        lines.append(f"\nMeasured {zoo['date']} (`benchmarks/run.py --only zoo`), {zoo.get('wall_s', 0):.0f} s.")
    for again in zoo.get("reruns", []):
        which = " ".join(
            f"{flag} {','.join(names)}"
            for flag, names in (("--zoo-families", again["families"]), ("--zoo-recipes", again["recipes"]))
            if names
        )
        lines.append(f"Measured again {again['date']} (`--only zoo {which}`), {again['wall_s']:.0f} s: those rows.")
    for family, entry in zoo["families"].items():
        lines += [
            "",
            f"### {family} ({entry['params']:,} parameters, Keras accuracy {100 * entry['accuracy']:.2f} %)",
            "",
            "| recipe | artifact | exit | size | stored ratio | gzip ratio | speed-up | Δ | wall s |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for r in entry["rows"]:
            if "size_bytes" not in r:
                lines.append(f"| {r['recipe']} | | {r.get('exit_code', '')} | {r.get('error', '')} | | | | | |")
                continue
            speed = f"{r['speedup']:.2f}×" if r.get("speedup") else ""
            gz = f"{r['ratio_gzip']:.2f}×" if r.get("ratio_gzip") else ""
            artifact = r.get("artifact", "")
            if "flash_bytes" in r:
                artifact += f" (flash {r['flash_bytes'] / 1024:,.1f} KiB, arena {r['arena_bytes'] / 1024:,.1f} KiB)"
            lines.append(
                f"| {r['recipe']} | {artifact} | {r.get('exit_code', '')} "
                f"| {r['size_bytes'] / 1024:,.1f} KiB "
                f"| {r['ratio']:.2f}× | {gz} | {speed} | {100 * r['delta']:+.2f} pt | {r.get('wall_s', '')} |"
            )
    return lines


def readme_table(zoo: dict) -> list[str]:
    """The README's zoo table: a row per recipe, a column per family (stored / gzip ratio, Δ, speed-up)."""
    families = list(zoo["families"])
    labels: list[str] = []
    cells: dict[tuple[str, str], str] = {}
    for family in families:
        for r in zoo["families"][family]["rows"]:
            if r["recipe"] not in labels:
                labels.append(r["recipe"])
            if "size_bytes" not in r:
                cells[r["recipe"], family] = "fails (RESULTS.md)"
                continue
            cell = f"{r['ratio']:.2f}× / {r['ratio_gzip']:.1f}×, {100 * r['delta']:+.1f} pt"
            if r.get("speedup"):
                cell += f", {r['speedup']:.2f}× faster"
            if "flash_bytes" in r:
                cell += f", {r['flash_bytes'] / 1024:,.0f} KiB flash, {r['arena_bytes'] / 1024:,.0f} KiB arena"
            if r.get("exit_code"):
                cell += f" (exit {r['exit_code']})"
            cells[r["recipe"], family] = cell
    lines = ["| recipe | " + " | ".join(families) + " |", "| --- |" + " ---: |" * len(families)]
    for label in labels:
        lines.append(f"| {label} | " + " | ".join(cells.get((label, f), "—") for f in families) + " |")
    return lines


def goals(zoo: dict) -> list[dict]:
    """issue 18's goal against the guides, per family that ran them: `init` → `run` at one point lost, at
    least twice the best guide's gzip ratio and at least its stored ratio."""
    out = []
    for family, entry in zoo["families"].items():
        rows = {r["recipe"]: r for r in entry["rows"] if "size_bytes" in r}
        guides = [r for name, r in rows.items() if name.startswith("TFMOT")]
        ours = rows.get("init → run")
        if not guides or ours is None:
            continue
        gzip_best, stored_best = max(g["ratio_gzip"] for g in guides), max(g["ratio"] for g in guides)
        within = [r for name, r in rows.items() if not name.startswith("TFMOT") and -r["delta"] <= 0.01 + 1e-9]
        best = max(within, key=lambda r: r["ratio_gzip"], default=None)
        beside = (
            f"; the bundled recipe with the best gzip ratio at ≤ 1 point: {best['recipe']}, {best['ratio']:.2f}× / "
            f"{best['ratio_gzip']:.2f}×"
            if best
            else ""
        )
        out.append(
            {
                "goal": f"zoo {family}: init → run at ≤ 1 point lost, ≥ 2× the best TFMOT guide's gzip ratio "
                "and ≥ its stored ratio",
                "measured": f"{ours['ratio']:.2f}× stored / {ours['ratio_gzip']:.2f}× gzip at "
                f"{100 * ours['delta']:+.2f} pt; guides' best {stored_best:.2f}× / {gzip_best:.2f}×{beside}",
                "met": -ours["delta"] <= 0.01 + 1e-9
                and ours["ratio_gzip"] >= 2 * gzip_best
                and ours["ratio"] >= stored_best,
            }
        )
    return out
