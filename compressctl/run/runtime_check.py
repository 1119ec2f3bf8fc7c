"""Load and invoke every artifact of run directories in another TFLite runtime (``make runtime-check``).

    python -m compressctl.run.runtime_check --python .venv-tflite-runtime/bin/python runs/a runs/b

Each artifact is loaded and invoked by ``runtime_probe.py`` under that runtime's Python, one process
per file. The result joins ``artifacts[].runtime.checked`` in the run's report.json (report.md,
report.html and manifest.json are rewritten to match; a signed run is only printed, never
rewritten). Exit status: 0 when every artifact behaved as its op versions predict, 1 when one
that should run there did not, or one whose target requires that runtime does not run on it;
2 for a missing run directory or runtime.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from compressctl.litert.compat import probe
from compressctl.litert.op_versions import version_key


def _predicted_to_load(record: dict, runtime: str) -> bool | None:
    minimum = record.get("min_tflite_version")
    if minimum is None or not runtime.startswith("tflite-runtime "):
        return None
    have = version_key(runtime.split()[1])[:2]
    return version_key(minimum)[:2] <= have


def check_run(run: Path, python: str, write: bool = True, out=print) -> bool:
    """Check every artifact of one run directory; True when nothing went against expectation."""
    from compressctl.litert import compat as runtime_compat

    report_path = run / "report.json"
    report = json.loads(report_path.read_text())
    ok = True
    for artifact in report["artifacts"]:
        path = run / artifact["path"]
        result = probe(path, python)
        record = artifact.get("runtime") or runtime_compat.describe(path)
        record["checked"] = [c for c in record["checked"] if c["runtime"] != result["runtime"]] + [result]
        artifact["runtime"] = record
        predicted = _predicted_to_load(record, result["runtime"])
        required = record.get("required", "")
        verdict = "runs" if result["loads"] else f"FAILS: {result['error']}"
        expected = ""
        if predicted is not None:
            outcome = "run" if predicted else "fail"
            expected = f" (op versions need TFLite {record['min_tflite_version']}: expected to {outcome})"
        out(f"{path}: {result['runtime']} {verdict}{expected}")
        if not result["loads"] and (predicted or required.startswith(result["runtime"].split()[0] + " ")):
            ok = False
    if write:
        if (run / "manifest.sig").exists():
            out(f"{run}: signed run, report.json left as it is")
        else:
            _rewrite(run, report)
    return ok


def _rewrite(run: Path, report: dict) -> None:
    from compressctl.report import render_html, render_markdown
    from compressctl.report.record import RunRecord
    from compressctl.run import manifest

    record = RunRecord.from_json(json.dumps(report), str(run / "report.json"))  # validated as it is written
    (run / "report.json").write_text(record.to_json())
    (run / "report.md").write_text(render_markdown(record))
    (run / "report.html").write_text(render_html(record), encoding="utf-8")
    manifest.write_manifest(run, None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m compressctl.run.runtime_check", description=__doc__.splitlines()[0]
    )
    parser.add_argument("runs", nargs="+", type=Path, help="run directories (with report.json)")
    parser.add_argument("--python", required=True, help="the Python of the runtime to check with")
    parser.add_argument("--no-write", action="store_true", help="print only; leave report.json as it is")
    args = parser.parse_args(argv)
    if not Path(args.python).exists():
        print(f"error: {args.python}: no such Python (make runtime-check builds .venv-tflite-runtime)", file=sys.stderr)
        return 2
    missing = [str(r) for r in args.runs if not (r / "report.json").exists()]
    if missing:
        print(f"error: {missing[0]}: not a run directory (no report.json)", file=sys.stderr)
        return 2
    ok = True
    for run in args.runs:
        ok = check_run(run, args.python, write=not args.no_write) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
