"""The commands that measure one .tflite artifact: ``eval`` (its metric) and ``bench`` (its latency)."""

from __future__ import annotations

from typing import Annotated

import typer

from compressctl.cli.common import JsonOpt, bad_flag
from compressctl.cli.ui import session


def eval_(
    artifact: Annotated[str, typer.Argument(help=".tflite file.")],
    *,
    data: Annotated[str, typer.Option("--data", "-d", help="npz data set; its test split is used.")],
    metric: Annotated[str, typer.Option(help="accuracy, top_k_accuracy, auc, mae, mse or rmse.")] = "accuracy",
    top_k: Annotated[int, typer.Option(min=1, help="k for top_k_accuracy.")] = 5,
    logits: Annotated[bool, typer.Option(help="The model outputs logits (threshold 0 for one output).")] = False,
    layers: Annotated[
        bool, typer.Option("--layers", help="Also the layer-wise error against the float32 baseline, worst first.")
    ] = False,
    baseline: Annotated[
        str | None,
        typer.Option(help="Float32 .tflite for --layers (default: the run's baseline/model_float32.tflite)."),
    ] = None,
    json_: JsonOpt = False,
):
    """Measure an artifact's metric on the test split through the LiteRT interpreter."""
    from compressctl import api

    # The names live in compressctl.core.metrics (NumPy; imported here, not when the CLI starts).
    names = ("accuracy", "top_k_accuracy", "auc", "mae", "mse", "rmse")
    if metric not in names:
        bad_flag(f"--metric: must be one of {', '.join(names)}, got {metric!r}", json_)
    with session(json_) as ui:
        result = api.evaluate_artifact(artifact, data, metric, top_k, logits=logits, layers=layers, baseline=baseline)
        if json_:
            ui.print_json(result)
        else:
            ui.line(f"{artifact}: {result['metric']} {result['metric_value']:.4f} on {result['samples']} samples")
            if layers:  # issue 10: the layer-wise error table (litert/quant_debug.py)
                from compressctl.litert.quant_debug import format_table

                info = result["layers"]
                ui.line(f"layer-wise error against {info['baseline']} ({info['samples']} test samples), worst first:")
                for line in format_table(info["layer_errors"]):
                    ui.line(line)


def bench_(
    artifact: Annotated[str, typer.Argument(help=".tflite file.")],
    *,
    runs: Annotated[int, typer.Option(min=1, max=1_000_000, help="Timed invocations.")] = 200,
    threads: Annotated[int, typer.Option(min=1, max=256, help="Interpreter threads.")] = 1,
    warmup: Annotated[int, typer.Option(min=0, max=100_000, help="Untimed invocations first.")] = 20,
    baseline: Annotated[str | None, typer.Option(help="A second .tflite timed alternately, for a speed-up.")] = None,
    json_: JsonOpt = False,
):
    """Time an artifact in the LiteRT interpreter (p50/p90/p99/mean, batch 1)."""
    from compressctl import api

    with session(json_) as ui:
        result = api.bench_artifact(artifact, runs=runs, threads=threads, warmup=warmup, baseline=baseline)
        if json_:
            ui.print_json(result)
            return
        lat = result["latency_ms"]
        ui.line(
            f"{artifact}: p50 {lat['p50']:.4f} ms, p90 {lat['p90']:.4f} ms, p99 {lat['p99']:.4f} ms, "
            f"mean {lat['mean']:.4f} ms ({lat['runs']} runs, {result['measured_on']})"
        )
        if baseline:
            ui.line(f"speed-up over {baseline}: {result['speedup']:.2f}×")
