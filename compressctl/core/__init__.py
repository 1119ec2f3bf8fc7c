"""Core: errors and exit codes, events, logs, the TensorFlow environment, the module registry, metrics, measurement.

Imports nothing else of compressctl; every other package may import it. Importing it does not import TensorFlow.
"""
