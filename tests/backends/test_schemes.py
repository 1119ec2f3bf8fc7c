"""The one table of quantization schemes: the names report.json gives each backend's schemes stay as they were."""

import pytest

from compressctl.backends import converter, litert_quantizer
from compressctl.backends.litert_quantizer import OpOverride, Options, scheme_label, scheme_name

pytestmark = pytest.mark.unit


def test_the_converters_scheme_names_in_report_json():
    # report.json's quantization.scheme of a converter artifact (before ", per-tensor Dense weights").
    assert {mode: scheme_name(mode) for mode in converter.MODES} == {
        "int8": "int8",
        "dynamic": "dynamic int8",
        "float32": "float32",
        "float16": "float16",
    }


def test_the_litert_quantizers_scheme_labels_in_report_json():
    assert {mode: scheme_label(mode) for mode in litert_quantizer.MODES} == {
        "int8": "int8 (static int8 activations)",
        "int16x8": "int16x8 (static int16 activations, int8 weights)",
        "dynamic": "dynamic int8",
        "dynamic-int4": "dynamic int4",
        "weight-only-int8": "int8 weight-only",
        "weight-only-int4": "int4 weight-only",
    }
    options = Options(granularity="blockwise", block_size=64, overrides=[OpOverride(regex="fc", mode="float")])
    assert scheme_label("dynamic-int4", options) == "dynamic int4, blocks of 64, 1 override(s)"


def test_each_quantizer_scheme_says_how_the_worker_configures_it():
    for mode, scheme in litert_quantizer.SCHEMES.items():
        assert scheme.kind in ("static", "dynamic", "weight_only"), mode
        static = scheme.kind == "static"  # calibrated, with activation bits and a word on them in the label
        assert static == (mode in litert_quantizer.CALIBRATED), mode
        assert static == (scheme.activation_bits is not None) == bool(scheme.activations), mode
