"""``compressctl search``: accuracy-aware compression search on Ray Tune with Optuna samplers.

Importing this package imports neither Ray nor TensorFlow: the recipe schema (``spec``) and the
pure helpers (``space``, ``objective``, ``pareto``) load at once; ``engine`` and ``sensitivity``
import the heavy packages inside their functions.
"""
