"""``compressctl search``: accuracy-aware compression search on Ray Tune with Optuna samplers.

Importing this package imports neither Ray nor TensorFlow: the pure helpers (``space``,
``objective``, ``pareto``) load at once; ``engine`` and ``sensitivity`` import the heavy packages
inside their functions. Its recipe section is ``compressctl.recipe.search_spec``.
May import run/ and everything below it; never the api or the CLI.
"""
