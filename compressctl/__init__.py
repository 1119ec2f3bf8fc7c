"""compressctl: compress trained Keras models into measured TFLite artifacts."""

__version__ = "0.1.0"
