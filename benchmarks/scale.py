"""Model scale: MobileNetV2 at 224×224 and ResNet-50 fed a generated image folder, run by ``compressctl run``.

Usage: python benchmarks/scale.py [--quick] [--out benchmarks/out/scale]   (``make bench`` calls ``run_scale``)

Both models come from ``keras.applications`` with random weights (``weights=None``: nothing is downloaded),
so their accuracy is chance and is not a result here; what is measured is the run time and peak memory of
whole ``compressctl run`` processes on models of real size:
- the int8 recipe (calibrated full-int8 CPU target) on MobileNetV2-224 and ResNet-50;
- a prune → cluster → PCQAT → int8 recipe on MobileNetV2-224, fed two image folders, the second four times
  the first (train and test splits alike): the data source streams, so peak memory should not grow with the
  folder. Both runs train the same number of steps (``training.steps_per_epoch``), so the folder's size is
  the one difference: four times the images to index, shuffle, fingerprint and evaluate. (A QAT step of
  MobileNetV2-224 takes seconds on a 2-core machine; a whole epoch over 1,024 images would take hours.)
Peak memory is reported two ways: the largest single process (``wait4``'s ``ru_maxrss``, which covers the
conversion worker too) and the sum over the process tree, sampled every 0.1 s from /proc.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CLASSES = 10
IMAGE = 224


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def write_image_folder(root: Path, train: int, test: int, size: int = IMAGE, seed: int = 0) -> dict:
    """JPEGs in ``root/{train,test}/class_<k>/``: a coloured square whose place and hue give the class, plus noise."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    total = 0
    for split, n in (("train", train), ("test", test)):
        for i in range(n):
            label = i % CLASSES
            folder = root / split / f"class_{label}"
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{i:06d}.jpg"
            if path.exists():
                continue
            image = rng.normal(96, 24, (size, size, 3))
            row, col = divmod(label, 4)
            side = size // 4
            hue = np.array([(label * 37) % 256, (label * 91) % 256, (label * 53) % 256], dtype=np.float64)
            image[row * side : (row + 1) * side, col * side : (col + 1) * side] = hue
            Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(path, quality=90)
        total += n
    files = list(root.rglob("*.jpg"))
    return {"train": train, "test": test, "files": len(files), "bytes": sum(p.stat().st_size for p in files)}


def build_model(name: str, path: Path) -> None:
    """Run in a child process: a keras.applications model with random weights, saved as a SavedModel."""
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    sys.path.insert(0, str(REPO))
    from compressctl.core.env import keras, seed_everything

    seed_everything(0)
    apps = keras().applications
    factory = {"mobilenet_v2_224": apps.MobileNetV2, "resnet50": apps.ResNet50}[name]
    model = factory(input_shape=(IMAGE, IMAGE, 3), weights=None, classes=CLASSES)
    model.save(str(path), save_format="tf")
    print(json.dumps({"params": int(model.count_params())}))


def _tree_rss_kib(root: int) -> int:
    """Resident set of a process and all its descendants, from /proc."""
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
            for task in Path(f"/proc/{pid}/task").iterdir():
                todo.extend(int(c) for c in (task / "children").read_text().split())
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return total


def timed_tree(cmd: list[str]) -> dict:
    """Wall seconds, largest-process peak RSS (wait4) and sampled whole-tree peak RSS of one command."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    captured, peak = {}, [0]
    readers = [
        threading.Thread(target=lambda name, stream: captured.__setitem__(name, stream.read()), args=(n, s))
        for n, s in (("stdout", proc.stdout), ("stderr", proc.stderr))
    ]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], _tree_rss_kib(proc.pid))
            done.wait(0.1)

    sampler = threading.Thread(target=sample)
    for thread in (*readers, sampler):
        thread.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    done.set()
    for thread in (*readers, sampler):
        thread.join()
    return {
        "wall_s": round(wall, 2),
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
        "peak_tree_rss_mib": round(peak[0] / 1024, 1),
        "exit_code": os.waitstatus_to_exitcode(status),
        "stdout": captured["stdout"],
        "stderr": captured["stderr"],
    }


def _recipe(
    model: Path, folder: Path, out: Path, stages: str, calibration: int, bench_runs: int, steps: int | None = None
) -> str:
    training = f"{{batch_size: 16{f', steps_per_epoch: {steps}' if steps else ''}}}"
    return f"""name: {out.name}
model: {model}
data:
  format: images
  train: {folder / "train"}
  test: {folder / "test"}
  image_size: [{IMAGE}, {IMAGE}]
  color_mode: rgb
  scale: 1/255
out: {out}
seed: 0
training: {training}
stages: {stages}
targets:
  - {{type: cpu, mode: int8, calibration_samples: {calibration}}}
bench: {{runs: {bench_runs}, warmup: 3, rounds: 2}}
"""


PCQAT = """
  - {type: prune, target_sparsity: 0.5, epochs: 1}
  - {type: cluster, number_of_clusters: 16, preserve_sparsity: true, epochs: 1}
  - {type: quantize, preserve: [sparsity, clusters], epochs: 1}"""


def _run(name: str, recipe_text: str, work: Path, slug: str) -> dict:
    row = _measure_run(name, recipe_text, work, slug)
    # Each finished run is kept at once, so an interrupted benchmark still shows what it measured.
    done = work / "runs.jsonl"
    with open(done, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(row) + "\n")
    return row


def _measure_run(name: str, recipe_text: str, work: Path, slug: str) -> dict:
    recipe = work / f"{slug}.yaml"
    recipe.write_text(recipe_text)
    cli = [sys.executable, "-m", "compressctl", "run", str(recipe), "--json", "--quiet"]
    _log(f"scale: compressctl run {recipe.name}")
    measured = timed_tree(cli)
    row = {"run": name, **{k: measured[k] for k in ("wall_s", "peak_rss_mib", "peak_tree_rss_mib", "exit_code")}}
    if measured["exit_code"] not in (0, 1):
        row["error"] = (measured["stderr"].strip().splitlines() or ["no output"])[-1]
        _log(f"scale: {name} failed: {row['error']}")
        return row
    report = json.loads(measured["stdout"])
    artifact = report["artifacts"][0]
    row.update(
        {
            "params": report["model"]["params"],
            "train_samples": report["data"]["train_samples"],
            "test_samples": report["data"]["test_samples"],
            "baseline_bytes": report["baseline"]["size_bytes"],
            "size_bytes": artifact["size_bytes"],
            "ratio": artifact["compression_ratio"],
            "p50_ms": artifact["latency_ms"]["p50"],
            "speedup": artifact["speedup"],
            "stage_seconds": {s["type"]: s["seconds"] for s in report["stages"]},
            "sparsity": next((s.get("sparsity") for s in report["stages"] if s["type"] == "prune"), None),
        }
    )
    _log(
        f"scale: {name}: {row['wall_s']:.0f} s, peak {row['peak_rss_mib']:.0f} MiB "
        f"({row['peak_tree_rss_mib']:.0f} tree)"
    )
    return row


def run_scale(quick: bool, out: Path) -> dict:
    """Every scale figure, measured now. ``quick`` shrinks the folders, calibration and timing, not the models."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "runs.jsonl").unlink(missing_ok=True)
    sizes = (48, 192) if quick else (256, 1024)
    calibration, bench_runs, steps = (32, 10, 2) if quick else (100, 50, 8)
    models = {}
    for name in ("mobilenet_v2_224", "resnet50"):
        path = out / "models" / name
        if not path.exists():
            _log(f"scale: building {name} (random weights)")
            subprocess.run([sys.executable, __file__, "--build", name, str(path)], check=True, cwd=REPO)
        models[name] = path
    folders = {}
    for n in sizes:
        folders[n] = out / f"images_{n}"
        _log(f"scale: image folder with {n} train images")
        folders[n] = (folders[n], write_image_folder(folders[n], n, n // 4))
    small = folders[sizes[0]]
    runs = [
        _run(
            "mobilenet_v2_224 int8",
            _recipe(models["mobilenet_v2_224"], small[0], out / "runs" / "mnv2-int8", "[]", calibration, bench_runs),
            out,
            "mnv2-int8",
        ),
        _run(
            "resnet50 int8",
            _recipe(models["resnet50"], small[0], out / "runs" / "resnet50-int8", "[]", calibration, bench_runs),
            out,
            "resnet50-int8",
        ),
    ]
    # The memory comparison: the PCQAT recipe on both folders, the same training steps in each.
    recipe_name = "prune→cluster→PCQAT"
    for n, (folder, _) in folders.items():
        slug = f"mnv2-pcqat-{n}"
        name = f"mobilenet_v2_224 {recipe_name}, {n} train images"
        recipe = _recipe(models["mobilenet_v2_224"], folder, out / "runs" / slug, PCQAT, calibration, bench_runs, steps)
        runs.append(_run(name, recipe, out, slug))
    pair = [r for r in runs if r["run"].startswith(f"mobilenet_v2_224 {recipe_name},")]
    # What holding a folder's images in memory would cost: train and test splits as float32 samples.
    decoded_mib = {n: (n + n // 4) * IMAGE * IMAGE * 3 * 4 / 2**20 for n in sizes}
    result = {
        "quick": quick,
        "folders": {str(n): info for n, (_, info) in folders.items()},
        "decoded_mib": {str(n): round(v, 1) for n, v in decoded_mib.items()},
        "steps_per_epoch": steps,
        "runs": runs,
    }
    if len(pair) == 2 and all("error" not in r for r in pair):
        growth = pair[1]["peak_tree_rss_mib"] - pair[0]["peak_tree_rss_mib"]
        result["memory_independence"] = {
            "recipe": recipe_name,
            "train_images": list(sizes),
            "peak_tree_rss_mib": [r["peak_tree_rss_mib"] for r in pair],
            "growth_mib": round(growth, 1),
            "added_decoded_mib": round(decoded_mib[sizes[1]] - decoded_mib[sizes[0]], 1),
            # Met when the bigger folder adds less than a quarter of its extra decoded bytes to the peak:
            # holding the split in memory would add all of them (float32 samples), streaming adds none.
            "met": growth < 0.25 * (decoded_mib[sizes[1]] - decoded_mib[sizes[0]]),
        }
    return result


def render_scale(scale: dict) -> list[str]:
    """The RESULTS.md section for ``run_scale``'s figures."""
    lines = [
        "",
        "## Model scale (keras.applications, random weights, fed a generated image folder)",
        "",
        "Whole `compressctl run` processes on a folder of generated 224×224 JPEGs (`format: images`). "
        "Accuracy is chance with random weights and is not reported. Peak RSS: the largest single process "
        "(main or conversion worker, `wait4`) and the sum over the process tree (sampled every 0.1 s)."
        + (" **Quick mode**: small folders, fewer calibration samples and timing runs." if scale["quick"] else ""),
        "",
        "| run | parameters | train images | run s | peak RSS MiB | tree peak MiB | float32 | int8 artifact | p50 ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in scale["runs"]:
        if "error" in r:
            lines.append(f"| {r['run']} | failed: {r['error']} | | | | | | | |")
            continue
        lines.append(
            f"| {r['run']} | {r['params']:,} | {r['train_samples']} | {r['wall_s']:.0f} | {r['peak_rss_mib']:.0f} "
            f"| {r['peak_tree_rss_mib']:.0f} | {r['baseline_bytes'] / 2**20:.1f} MiB "
            f"| {r['size_bytes'] / 2**20:.1f} MiB "
            f"| {r['p50_ms']:.1f} |"
        )
    if scale.get("note"):  # what the machine was doing beside the runs, when it was not idle
        lines += ["", scale["note"]]
    mem = scale.get("memory_independence")
    if mem:
        lines += [
            "",
            f"Peak memory against folder size ({mem['recipe']} recipe, {scale.get('steps_per_epoch')} training "
            "steps per stage in both runs): "
            f"{mem['train_images'][0]} → {mem['train_images'][1]} train images (and a test split a quarter of "
            f"that) adds {mem['added_decoded_mib']:.0f} MiB of decoded images and moves the tree peak by "
            f"{mem['growth_mib']:+.0f} MiB ({' → '.join(f'{v:.0f}' for v in mem['peak_tree_rss_mib'])} MiB): "
            f"{'independent of the folder size' if mem['met'] else '**grows with the folder**'}.",
        ]
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small folders and few timing runs (a smoke run)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "out" / "scale")
    parser.add_argument("--build", nargs=2, metavar=("NAME", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build:
        build_model(args.build[0], Path(args.build[1]))
        return 0
    result = run_scale(args.quick, args.out)
    (args.out / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "RESULTS.md").write_text("\n".join(render_scale(result)).lstrip() + "\n")
    _log(f"scale: wrote {args.out / 'results.json'} and {args.out / 'RESULTS.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
