"""Keras models: loading and saving (Keras 2, Keras 3, SavedModel), the layer graph, layer selectors, stage params.

May import litert/ (task evaluation) and core/ only; never a stage, target, backend or the pipeline.
"""
