"""Child process that runs the LiteRT Quantizer, one JSON request per line on stdin.

Same protocol as compressctl/backends/convert_worker.py: each request writes request["out"] whole or not
at all and is answered {"ok": true} or {"error": ...}; a crash kills only this process.
"""

from __future__ import annotations

import os
import sys

from compressctl.backends.convert_worker import serve
from compressctl.backends.litert_quantizer import BLOCKWISE_MODES, SCHEMES
from compressctl.core import measure


def _granularity(qtyping, spec: dict, mode: str):
    """Blocks for the schemes the quantizer has blocks for; an override to another scheme (int8 weights for the
    ops int4 loses most on, backends/bit_budget.py) keeps channelwise scales, which it quantizes."""
    if spec.get("granularity") == "blockwise" and mode in BLOCKWISE_MODES:
        return qtyping.QuantGranularity(f"BLOCKWISE_{spec.get('block_size', 32)}")
    return qtyping.QuantGranularity.CHANNELWISE


def _add(quantizer, qtyping, algorithm_manager, regex: str, mode: str, granularity) -> None:
    every_op = qtyping.TFLOperationName.ALL_SUPPORTED
    if mode == "float":
        quantizer.update_quantization_recipe(
            regex, every_op, None, algorithm_key=algorithm_manager.AlgorithmName.NO_QUANTIZE
        )
        return
    scheme = SCHEMES[mode]
    if scheme.kind == "static":
        quantizer.add_static_config(regex, every_op, scheme.activation_bits, scheme.weight_bits, granularity)
    elif scheme.kind == "dynamic":
        quantizer.add_dynamic_config(regex, every_op, scheme.weight_bits, granularity)
    else:
        quantizer.add_weight_only_config(regex, every_op, scheme.weight_bits, granularity)


def _calibration_data(float_model: str, samples):
    """{signature: [{input name: one sample}, ...]} for the float model's single-input signature."""
    from ai_edge_litert.interpreter import Interpreter

    signatures = Interpreter(model_path=float_model).get_signature_list()
    key = sorted(signatures)[0]
    (name,) = signatures[key]["inputs"]
    return {key: [{name: samples[k : k + 1]} for k in range(len(samples))]}


def quantize(spec: dict) -> bytes:
    import numpy as np
    from ai_edge_quantizer import algorithm_manager, qtyping, quantizer

    q = quantizer.Quantizer(spec["float_model"])
    _add(q, qtyping, algorithm_manager, ".*", spec["mode"], _granularity(qtyping, spec, spec["mode"]))
    for rule in spec.get("overrides", []):
        _add(q, qtyping, algorithm_manager, rule["regex"], rule["mode"], _granularity(qtyping, spec, rule["mode"]))
    calibration = None
    if q.need_calibration:
        samples = np.load(spec["calibration"]).astype(np.float32)
        calibration = q.calibrate(_calibration_data(spec["float_model"], samples), num_threads=1)
    result = q.quantize(calibration, enable_progress_report=False)
    return bytes(result.quantized_model)


def handle(spec: dict) -> dict:
    """Run one quantization; never raises."""
    try:
        flatbuffer = quantize(spec)
        measure.write_whole(spec["out"], flatbuffer)
        return {"ok": True}
    except Exception as exc:  # noqa: BLE001 - reported to the parent as one message
        lines = str(exc).strip().splitlines()
        return {"error": f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")}


def _import_quantizer() -> None:
    # The quantizer's calibration progress bar and debugging warnings would reach the user's terminal.
    os.environ["TQDM_DISABLE"] = "1"
    import warnings

    warnings.filterwarnings("ignore", message=".*experimental_preserve_all_tensors.*")
    import ai_edge_quantizer.quantizer  # noqa: F401 - imported while the parent works


if __name__ == "__main__":
    sys.exit(serve(handle, _import_quantizer))
