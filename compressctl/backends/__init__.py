"""Quantization backends, one module each.

- ``converter``: the TFLite converter (``tf.lite.TFLiteConverter``), the default; it converts the
  Keras model's SavedModel (``compressctl/backends/convert.py`` runs it in a child process).
- ``litert_quantizer``: the LiteRT Quantizer (``ai-edge-quantizer``); it quantizes a float TFLite
  file (weight-only int8/int4, dynamic int8, static int8/int16 activations, per-op overrides).

A target picks one with ``backend:``; ``artifacts[].quantization.backend`` in report.json says which ran.
May import model/, litert/, datasets/, report/ and core/; never a target, a stage or anything above them.
"""

BACKENDS = ("converter", "litert-quantizer")
