"""Strip a .tflite file's debug strings: tensor names, subgraph names and the model description.

The converter names every tensor after the Keras ops fused into it ("model/conv2d_3/BiasAdd;model/…"),
which on a small quantized model is a third of the file and none of the computation: the interpreter,
XNNPACK and TensorFlow Lite Micro address tensors by index. What stays: every operator, buffer and
quantization parameter, the metadata (``min_runtime_version``, TFLM's compression metadata) and the
signature definitions, whose own short input and output names the signature runners use.

The file is read and written with LiteRT's flatbuffer object API. Every constant buffer is written 16-byte
aligned, as the schema asks (``force_align: 16``; the object API's own writer aligns to 1 byte and the
converter some buffers to 4): a microcontroller reads int32 biases in place, where an unaligned read faults.

Pure: no TensorFlow, only the flatbuffer schema and tools that ai-edge-litert ships.
"""

from __future__ import annotations

from pathlib import Path

_ALIGN = 16
_IDENTIFIER = b"TFL3"


def _aligned_buffer_class():
    from ai_edge_litert import schema_py_generated as schema

    class Aligned(schema.BufferT):
        """A buffer whose data vector starts on a 16-byte boundary of the finished file."""

        def Pack(self, builder):  # noqa: N802 - the flatbuffers object API's name
            data = None
            if self.data is not None:
                payload = bytes(memoryview(self.data).cast("B"))
                builder.StartVector(1, len(payload), _ALIGN)
                builder.head = builder.head - len(payload)
                builder.Bytes[builder.head : builder.head + len(payload)] = payload
                builder.vectorNumElems = len(payload)
                data = builder.EndVector()
            schema.BufferStart(builder)
            if data is not None:
                schema.BufferAddData(builder, data)
            schema.BufferAddOffset(builder, self.offset)
            schema.BufferAddSize(builder, self.size)
            return schema.BufferEnd(builder)

    return Aligned


def stripped(blob: bytes) -> bytes:
    """``blob`` (a .tflite file's bytes) without tensor names, subgraph names and description."""
    import flatbuffers
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(blob))
    model.description = None
    for subgraph in model.subgraphs or []:
        subgraph.name = None
        for tensor in subgraph.tensors or []:
            tensor.name = None
    aligned = _aligned_buffer_class()
    for buffer in model.buffers or []:
        buffer.__class__ = aligned
    builder = flatbuffers.Builder(len(blob) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=_IDENTIFIER)
    return bytes(builder.Output())


def strip_file(path: str | Path) -> int:
    """Rewrite ``path`` stripped; returns the bytes saved (0 when stripping would not make it smaller)."""
    path = Path(path)
    blob = path.read_bytes()
    smaller = stripped(blob)
    if len(smaller) >= len(blob):
        return 0
    path.write_bytes(smaller)
    return len(blob) - len(smaller)
