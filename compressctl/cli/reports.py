"""The commands that read finished run directories: ``report`` re-renders one, ``compare`` sets them
side by side, ``verify`` checks one against its manifest."""

from __future__ import annotations

from typing import Annotated

import typer

from compressctl.cli.common import JsonOpt, bad_flag, write_text
from compressctl.cli.ui import session
from compressctl.core.errors import EXIT_GATE_FAILED

REPORT_FORMATS = ("md", "html", "json")


def report(
    run_dir: Annotated[str, typer.Argument(help="A run directory (holding report.json).")],
    *,
    format_: Annotated[str, typer.Option("--format", "-f", help="md, html or json.")] = "md",
    out: Annotated[str | None, typer.Option("--out", "-o", help="Write to this file instead of stdout.")] = None,
    json_: Annotated[bool, typer.Option("--json", help="The same as --format json.")] = False,
):
    """Re-render a run's report from its report.json (runs nothing)."""
    from compressctl import api

    if json_:
        if format_ not in ("md", "json"):
            bad_flag(f"--json and --format {format_} ask for two formats; give one", json_)
        format_ = "json"
    if format_ not in REPORT_FORMATS:
        bad_flag(f"--format: must be md, html or json, got {format_!r}", json_)
    with session(json_, heavy=False) as ui:
        record = api.load_report(run_dir)
        if format_ == "json":
            text = record.to_json()
        elif format_ == "html":
            from compressctl.report import render_html

            text = render_html(record)
        else:
            from compressctl.report import render_markdown

            text = render_markdown(record)
        if out:
            write_text(out, text)
            ui.info(f"wrote {out}")
        elif json_:
            ui.print_json(record.to_dict())
        else:
            ui.out_stream.write(text)


def compare(
    run_dirs: Annotated[list[str], typer.Argument(help="Run directories (report.json) or batch folders (batch.json).")],
    *,
    by: Annotated[str, typer.Option("--by", help="Size axis of the Pareto front: size or gzip.")] = "size",
    html: Annotated[str | None, typer.Option("--html", help="Also write a self-contained HTML page here.")] = None,
    json_: JsonOpt = False,
):
    """One table of every artifact across runs, with the Pareto front of size against metric."""
    from compressctl import api
    from compressctl.report.compare import SIZE_KEYS, compare_reports, named_runs
    from compressctl.report.summary import TABLE_COLUMNS, format_row

    if by not in SIZE_KEYS:
        bad_flag(f"--by: must be size or gzip, got {by!r}", json_)
    with session(json_, heavy=False) as ui:
        runs = [(name, d, api.load_report(d)) for name, d in named_runs(run_dirs)]  # a batch: its runs
        rows, notes = compare_reports(runs, SIZE_KEYS[by])
        for note in notes:
            ui.warn(note)
        if html:
            from compressctl.report.html import render_compare_html

            write_text(html, render_compare_html(rows, SIZE_KEYS[by], notes))
            ui.info(f"wrote {html}")
        if json_:
            ui.print_json(rows)
            return
        metric = rows[0]["metric"] if rows else "metric"
        columns = [(metric if key == "metric_value" else label, "left" if key in ("run", "target") else "right")
                   for key, label in TABLE_COLUMNS]  # fmt: skip
        columns.append(("Pareto", "left"))
        table_rows = [[*format_row(r).values(), "*" if r["pareto"] else ""] for r in rows]
        ui.table(f"compressctl compare (Pareto front by {by} and {metric}: *)", columns, table_rows)


def verify(
    run_dir: Annotated[str, typer.Argument(help="A run directory (holding manifest.json).")],
    *,
    public_key: Annotated[
        str | None, typer.Option("--public-key", help="Ed25519 public key (PEM): also check manifest.sig.")
    ] = None,
    json_: JsonOpt = False,
):
    """Check every file of a run against its manifest.json (and signature); exit 1 naming what differs."""
    from compressctl import api

    with session(json_, heavy=False) as ui:
        result = api.verify(run_dir, public_key)
        if json_:
            ui.print_json(result)
        else:
            for kind in ("differ", "missing", "added"):
                for name in result[kind]:
                    ui.err.print(f"{kind}: {name}", style="bold red", markup=False)
            if result["signature"] is not None:
                ui.line(f"signature: {result['signature']}")
            verdict = "ok" if result["ok"] else "FAILED"
            ui.line(f"{run_dir}: {verdict} ({result['files']} files in the manifest)")
    raise typer.Exit(0 if result["ok"] else EXIT_GATE_FAILED)
