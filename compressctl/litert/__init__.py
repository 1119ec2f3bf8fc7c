"""TFLite files: the interpreter, runtime compatibility, op versions, quantization debugging, MACs, bench, evaluation.

May import core/ only; runtime_probe.py is a script another Python runs and imports nothing of compressctl.
"""
