"""Keras 2's (tf_keras's) internals: a functional model's live graph and TensorFlow's op symbols.

- ``KerasTensor._keras_history``: the layer that produced a symbolic tensor (a model's outputs), and
  what tells a tensor argument of a layer call from a constant one.
- ``Model._is_graph_network``: a functional model (a subclassed one has no graph to clone or rebuild).
- ``Model._nodes_by_depth``: the layer calls that belong to this model (a layer shared with another
  model has nodes of both).
- ``Layer._inbound_nodes``: a layer's calls.
- ``tf_keras.src.layers.core.tf_op_layer.get_symbol_from_name``: the TensorFlow function a
  ``TFOpLambda`` names.
"""

from __future__ import annotations

from compressctl.core.internals.base import Internal, resolve
from compressctl.core.internals.base import check as check_internals

DISTRIBUTION = "tf_keras"

_OP_LAYER_MODULE = "tf_keras.src.layers.core.tf_op_layer"


def _model():
    from compressctl.core.env import keras

    k = keras()
    inputs = k.Input((2,))
    return k.Model(inputs, k.layers.Dense(1)(inputs))


def _output():
    return _model().outputs[0]


def _dense_layer():
    return _model().layers[-1]


def _op_layer_module():
    from compressctl.core.env import keras

    keras()
    return resolve(_OP_LAYER_MODULE)


INTERNALS = (
    Internal("a functional model's output tensor", "_keras_history", "reading a model's output layer", _output),
    Internal(
        "a functional tf_keras.Model", "_is_graph_network", "telling functional models from subclassed ones", _model
    ),
    Internal("a functional tf_keras.Model", "_nodes_by_depth", "reading a model's own layer calls", _model),
    Internal("a called tf_keras layer", "_inbound_nodes", "reading a layer's calls", _dense_layer),
    Internal(_OP_LAYER_MODULE, "get_symbol_from_name", "QAT's stand-in for a TFOpLambda", _op_layer_module),
)


def history_layer(tensor):
    """The layer that produced a symbolic Keras tensor."""
    return tensor._keras_history.layer


def is_symbolic(value) -> bool:
    """True for a tensor a Keras layer produced (a layer call's tensor argument, not a constant)."""
    return hasattr(value, "_keras_history")


def is_graph_network(model) -> bool:
    """True for a functional (or Sequential) model: one with a graph of layer calls."""
    return bool(getattr(model, "_is_graph_network", False))


def nodes_by_depth(model) -> dict | None:
    """The model's own layer calls by depth (None when the model has no graph)."""
    return getattr(model, "_nodes_by_depth", None)


def inbound_nodes(layer) -> list:
    """The calls of ``layer`` (in every model it belongs to); [] when it has none."""
    return getattr(layer, "_inbound_nodes", [])


def op_symbol(name: str):
    """The TensorFlow function a ``TFOpLambda`` config names (``"math.add"``, ``"__operators__.add"``...)."""
    from compressctl.core.env import keras

    keras()
    from tf_keras.src.layers.core.tf_op_layer import get_symbol_from_name

    return get_symbol_from_name(name)


def check() -> list[str]:
    """One line per internal above that the installed tf_keras lacks."""
    return check_internals(DISTRIBUTION, INTERNALS, __name__)
