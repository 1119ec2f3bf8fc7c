"""A stage, a target and a data source defined outside compressctl, one module each (tests/test_plugins.py).

Loaded through ``COMPRESSCTL_PLUGINS`` (``stages=tests.plugins.demo.stage,...``) or an entry point of the
groups ``compressctl.stages``, ``compressctl.targets`` and ``compressctl.data_sources``.
"""
