"""Adapters: every private name or internal module of a library that compressctl uses, one module per library.

Imports only ``compressctl.core``; each adapter imports its library lazily, inside the functions that use it.
"""
