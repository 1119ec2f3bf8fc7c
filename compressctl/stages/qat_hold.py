"""Keep layers TFMOT cannot rebuild out of its clones, so QAT trains around them.

``quantize_apply`` clones the whole model three times (``clone_model`` without a clone function,
then ``Model.from_config`` in its layout transforms), which rebuilds every layer from its config.
A custom layer whose config does not rebuild it (constructor arguments missing from
``get_config``, or one revived from a SavedModel without its code, whose rebuilt copy has no
weights) makes that fail with "Unable to clone model". Before QAT each such layer is swapped for a
:func:`held` stand-in whose config names the original instance, so every rebuild hands back the
same layer; :func:`release` puts the originals back in the trained model.
"""

from __future__ import annotations

import itertools

_HELD: dict[str, object] = {}
_COUNTER = itertools.count()
_CLASS = []


def _held_class():
    if not _CLASS:
        from compressctl.core.env import keras

        k = keras()

        @k.utils.register_keras_serializable(package="compressctl")
        class HeldLayer(k.layers.Layer):
            """Calls the layer ``_HELD[key]``; rebuilding it from its config returns the same layer."""

            def __init__(self, key, **kwargs):
                super().__init__(**kwargs)
                self.key = key
                self.inner = _HELD[key]

            def call(self, inputs, training=None):
                return self.inner(inputs, training=training)

            def get_config(self):
                return {**super().get_config(), "key": self.key}

        _CLASS.append(HeldLayer)
    return _CLASS[0]


def held(layer):
    """A stand-in for ``layer`` (same name) that survives TFMOT's rebuilds as ``layer`` itself."""
    key = f"{layer.name}#{next(_COUNTER)}"
    _HELD[key] = layer
    return _held_class()(key, name=layer.name, trainable=layer.trainable, dtype=layer.dtype_policy)


def is_held(layer) -> bool:
    return bool(_CLASS) and isinstance(layer, _CLASS[0])


def release(model):
    """``model`` with every stand-in replaced by the layer it holds (the original instance)."""
    from compressctl.core.env import keras

    if not any(is_held(layer) for layer in model.layers):
        return model
    keys = [layer.key for layer in model.layers if is_held(layer)]
    released = keras().models.clone_model(model, clone_function=lambda layer: layer.inner if is_held(layer) else layer)
    for key in keys:
        _HELD.pop(key, None)
    return released


def forget() -> None:
    """Drop every held layer (after a failed attempt)."""
    _HELD.clear()
