"""QAT's activation ranges start from the float model's measured ranges (stages/qat_ranges.py)."""

import re

import numpy as np
import pytest

from compressctl.stages.qat_ranges import calibrate, range_variables
from compressctl.stages.quantize import Quantize


def wide_model():
    """Activations far past TFMOT's starting [-6, 6]: inputs of spread 40, a swish, a sigmoid gate, residual sums."""
    from compressctl.core.env import keras, seed_everything

    seed_everything(0)
    k = keras()
    inputs = k.Input((12,))
    h = k.layers.Dense(16, activation="swish", name="wide")(inputs)
    r = k.layers.Dense(16, name="lin")(h)
    h = k.layers.Add(name="sum")([h, r])
    gate = k.layers.Dense(16, activation="sigmoid", name="gate")(h)  # TFMOT quantizes a sigmoid's input too
    h = k.layers.Add(name="mix")([h, gate])
    h = k.layers.Activation("relu", name="act")(h)
    outputs = k.layers.Dense(3, name="logits")(h)
    model = k.Model(inputs, outputs)
    for layer in model.layers[1:]:
        weights = layer.get_weights()
        layer.set_weights([w * 3 for w in weights])
    return model


def annotated(model):
    from compressctl.core.env import tfmot

    qk = tfmot().quantization.keras
    with qk.quantize_scope():
        return qk.quantize_apply(qk.quantize_annotate_model(model))


@pytest.fixture(scope="module")
def samples():
    return np.random.default_rng(0).normal(0, 40, (64, 12)).astype(np.float32)


def test_tfmot_still_names_its_range_variables_as_read_here(samples):
    qat = annotated(wide_model())
    names = {short for layer in qat.layers for short in range_variables(layer)}
    expected = {"output_min", "output_max", "post_activation_min", "post_activation_max", "pre_activation_min"}
    assert expected <= names, f"TFMOT renamed its activation range variables: read {sorted(names)}"
    assert any(name.startswith("quantize_layer") for name in names), sorted(names)


def test_ranges_are_the_measured_ones_and_the_untrained_qat_model_follows_the_float_one(samples):
    model = wide_model()
    qat = annotated(model)
    before = np.abs(qat(samples).numpy() - model(samples).numpy()).max()
    count = calibrate(model, qat, samples)
    assert count == 2 * 7  # min and max: the input, wide, lin, sum, gate (before the sigmoid), act, logits
    assert range_variables(qat.get_layer("quant_gate"))["pre_activation_max"].numpy() > 6
    wide = range_variables(qat.get_layer("quant_wide"))
    measured = model.get_layer("wide")(samples).numpy()
    assert wide["post_activation_max"].numpy() == pytest.approx(measured.max(), rel=1e-5)
    assert wide["post_activation_min"].numpy() == pytest.approx(min(0.0, measured.min()), rel=1e-5)
    (quantize_layer,) = [layer for layer in qat.layers if type(layer).__name__ == "QuantizeLayer"]
    assert range_variables(quantize_layer)[f"{quantize_layer.name}_max"].numpy() == pytest.approx(samples.max())
    after = np.abs(qat(samples).numpy() - model(samples).numpy()).max()
    scale = np.abs(model(samples).numpy()).max()
    # Clipped at ±6, the QAT model's logits were far off; from the measured ranges, within int8 rounding.
    assert before > 0.3 * scale and after < 0.05 * scale, (before, after, scale)


def test_the_quantize_stage_starts_from_measured_ranges(stage_ctx, tiny_cnn):
    result = Quantize(Quantize.Params(type="quantize", epochs=1)).apply(tiny_cnn, stage_ctx)
    (note,) = [n for n in result.notes if n.startswith("activation ranges")]
    match = re.fullmatch(r"activation ranges start from (\d+) measured on (\d+) training samples", note)
    assert match and int(match[1]) >= 2 * 3 and int(match[2]) == min(256, stage_ctx.data.train_samples), note
