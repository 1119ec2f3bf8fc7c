"""RESULTS.md from results.json: figures only, as measured."""

from __future__ import annotations


def _kib(n: int) -> str:
    return f"{n / 1024:,.1f} KiB"


def render(results: dict) -> str:
    env = results["machine"]
    packages = ", ".join(f"{k} {v}" for k, v in env["packages"].items() if v)
    lines = [
        "# compressctl benchmark results",
        "",
        f"Measured {results['date']} on {env['cpu']} ({env['cpu_count']} CPUs, {env['platform']}), "
        f"Python {env['python']}; {packages}. Whole benchmark: {results['wall_s']:.0f} s. "
        "Regenerate with `make bench`.",
        "",
        "Every figure is measured in this run on the files it wrote: sizes and gzip sizes (level 9) of the "
        "`.tflite` artifacts; accuracy through the LiteRT interpreter on the 397-sample test split; latency "
        "p50 at batch 1, one thread, XNNPACK, every artifact timed alternately with the float32 baseline in one "
        "process; ratios against the float32 TFLite conversion of the same model. Accuracy Δ is against the "
        "original Keras model.",
        "",
        "## Goals",
        "",
        "| goal | measured | met |",
        "| --- | --- | --- |",
    ]
    for goal in results["goals"]:
        lines.append(f"| {goal['goal']} | {goal['measured']} | {'yes' if goal['met'] else '**no**'} |")
    for table in results["tables"]:
        lines += [
            "",
            f"## {table['model']} (Keras accuracy {100 * table['keras_accuracy']:.2f} %)",
            "",
            "| pipeline | size | gzip | ratio | gzip ratio | accuracy | Δ | p50 ms | speed-up | wall s |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for r in table["rows"]:
            wall = f"{r['wall_s']:.1f}" if r.get("wall_s") is not None else ""
            lines.append(
                f"| {r['pipeline']} | {_kib(r['size_bytes'])} | {_kib(r['gzip_bytes'])} | {r['ratio']:.2f}× "
                f"| {r['ratio_gzip']:.2f}× | {100 * r['accuracy']:.2f} % | {100 * r['delta']:+.2f} pt "
                f"| {r['p50_ms']:.4f} | {r['speedup']:.2f}× | {wall} |"
            )
        lines.append(
            "\nWall time: compressctl rows are the whole `compressctl run` (model load, stages, conversion of "
            "baseline and artifact, evaluation, timing, report); guide rows are the pipeline and its conversion only."
        )
    ptq = results["ptq"]
    lines += [
        "",
        "## Overhead",
        "",
        f"- `compressctl --help`: median {results['help_median_s']:.3f} s.",
        f"- PTQ-only `compressctl run recipes/cpu-int8.yaml`: median {ptq['compressctl_s']:.1f} s against "
        f"{ptq['plain_s']:.1f} s for `benchmarks/plain_ptq.py`, which converts (float32 and calibrated int8), "
        f"evaluates and times the same way with no checks or report: {ptq['ratio']:.2f}×.",
        "",
        "## How cost grows with model width (LeNet-5, `recipes/deep-compression.yaml`)",
        "",
        "| width | parameters | run s | peak RSS MiB | float32 size | artifact | gzip | gzip ratio | accuracy | Δ |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results["sweep"]:
        lines.append(
            f"| {r['width']}× | {r['params']:,} | {r['wall_s']:.1f} | {r['peak_rss_mib']:.0f} "
            f"| {_kib(r['baseline_bytes'])} | {_kib(r['size_bytes'])} | {_kib(r['gzip_bytes'])} "
            f"| {r['ratio_gzip']:.1f}× | {100 * r['accuracy']:.2f} % | {100 * r['delta']:+.2f} pt |"
        )
    lines.append(
        "\nPeak RSS is the largest resident set of the `compressctl run` process itself (the conversion worker "
        "is a separate process, not counted)."
    )
    if results.get("channels"):  # structured pruning (issue 12)
        from benchmarks.channels import render as render_channels

        lines += render_channels(results["channels"])
        if results.get("channels_date") != results["date"]:
            when = results["channels_date"]
            lines.append(f"\nThis section was measured {when} (`benchmarks/run.py --only channels`).")
    if results.get("throughput"):  # issue 22: bench.batch_sizes on the LeNet-5 demo artifact
        from benchmarks.throughput import render as render_throughput

        lines += ["", *render_throughput(results["throughput"])]
    if results.get("mcu"):  # issue 21: the mcu target measured in TensorFlow Lite Micro
        from benchmarks.mcu import render as render_mcu

        lines += ["", *render_mcu(results["mcu"])]
    if results.get("stored"):  # issue 20: stored size, smallest.yaml
        from benchmarks.stored import render as render_stored

        lines += ["", *render_stored(results["stored"], results.get("zoo"))]
        lines.append(f"This section was measured {results['stored']['date']}.")
    backends = results.get("backends")
    if backends:
        lines += [
            "",
            "## Quantization backends: LiteRT Quantizer int4 against converter int8",
            "",
            f"{backends['model']}; one `compressctl run` "
            f"({backends['test_samples']} test samples) with the TFLite converter's calibrated full int8 and the "
            "LiteRT Quantizer's weight-only int4 and int8 from the same float32 baseline.",
            "",
            "| artifact | backend | scheme | size | gzip | ratio | gzip ratio | accuracy | Δ | p50 ms | speed-up |",
            "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for r in backends["rows"]:
            lines.append(
                f"| {r['artifact']} | {r['backend']} | {r['scheme']} | {_kib(r['size_bytes'])} "
                f"| {_kib(r['gzip_bytes'])} | {r['ratio']:.2f}× | {r['ratio_gzip']:.2f}× | {100 * r['metric']:.2f} % "
                f"| {100 * r['delta']:+.2f} pt | {r['p50_ms']:.3f} | {r['speedup']:.2f}× |"
            )
        lines.append(
            "\nWeight-only artifacts store int4 or int8 weights and dequantize them to float at every invoke: "
            "the smallest files, with float compute, so no faster than the float32 baseline (the int4 DEQUANTIZE "
            "adds its own cost)."
        )
        for failure in backends.get("failed_targets", []):
            lines.append(f"\nTarget {failure['target']} failed: {failure['error']}")
    if results.get("scale"):
        from benchmarks.scale import render_scale

        lines += render_scale(results["scale"])
    if results.get("zoo"):
        from benchmarks.zoo import render_zoo

        lines += render_zoo(results["zoo"])
    if "search" in results:  # issue 11
        from benchmarks.search_bench import render_section

        lines += render_section(results["search"], peer_rows(results))
    notes = results.get("notes")
    if notes:
        lines += ["", "## Notes", "", *notes]
    return "\n".join(lines) + "\n"


def peer_rows(results: dict) -> dict:
    """Each model's table rows by pipeline name (the hand recipe and the TFMOT guides among them)."""
    return {t["model"]: {r["pipeline"]: r for r in t["rows"]} for t in results["tables"]}
