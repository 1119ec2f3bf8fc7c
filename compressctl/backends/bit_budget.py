"""The LiteRT Quantizer's int4 within a metric budget: the ops whose int4 weights err most are kept at 8 bits.

Like selective int8 (litert/selective.py), on the same train samples and the same steps (1, 2, 4, … ops,
worst first, until the artifact is within the target's budget, measured against the float TFLite file
it quantized): the ops are ranked by their own layer-wise error, which for weight-only and dynamic
int4 is their weights' int4 error weighted by their inputs' power (litert/weight_error.py, the int4
artifact against that float file, on 100 train samples), and each kept op gets the scheme's 8-bit
twin through an override on its output tensor name (``weight-only-int4`` → ``weight-only-int8``,
``dynamic-int4`` → ``dynamic``). The user's own overrides come first and stay in force for every other op.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

EIGHT_BIT = {"weight-only-int4": "weight-only-int8", "dynamic-int4": "dynamic"}


def applies(conversion) -> bool:
    from compressctl.backends import litert_quantizer

    return conversion.backend == litert_quantizer.NAME and conversion.mode in EIGHT_BIT


def within_budget(ctx, target, conversion, saved_model: Path, path: Path, budget) -> tuple[dict, list[str]]:
    """Re-quantize ``path`` with its worst int4 ops at 8 bits until it is within ``budget``.

    Returns (the ``selective`` record, notes); ``path`` holds the chosen artifact.
    """
    from compressctl.backends import litert_quantizer, steps
    from compressctl.litert import selective, weight_error

    source = steps.float_tflite(ctx, saved_model)
    ranked = weight_error.weight_errors(source, path, ctx.data.calibration(100, ctx.recipe.seed))
    answer = {"quantization": {"layer_errors": ranked}}
    eight = EIGHT_BIT[conversion.mode]
    own = list(conversion.options.get("overrides", []))

    def convert(quantization: dict) -> dict:
        # The quantizer matches a regex against the op scope: its output names joined by ";", with a ";" after.
        kept = [{"regex": f"^{re.escape(name)};", "mode": eight} for name in quantization.get("float_nodes", [])]
        again = replace(conversion, options={**conversion.options, "overrides": [*own, *kept]})
        steps.quantize(ctx, again, saved_model, path, None)
        return answer

    # Against the float file it quantized (the compressed model's after stages): what quantization loses,
    # not what the stages changed, which no op at 8 bits can win back (the gates judge the whole).
    chosen, notes = selective.within_budget(
        convert=convert,
        path=path,
        answer=answer,
        budget=budget,
        baseline_path=source,
        data=ctx.data,
        task=ctx.task,
        seed=ctx.recipe.seed,
        emit=ctx.emit,
        label=target.name,
        scheme=litert_quantizer.scheme_name(conversion.mode),
        kept_as=f"8 bits ({eight})",
    )
    chosen["checked_on"] = chosen["checked_on"].replace("float32 baseline TFLite", "the float32 TFLite it quantized")
    return chosen, notes
