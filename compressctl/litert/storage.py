"""Where a .tflite file's bytes go: its constant tensors by encoding, and the rest.

Read from the flatbuffer itself (LiteRT's schema): every buffer that holds data is counted once,
under the encoding of the first tensor that uses it — ``float32``, ``float16``, ``int8``, ``int4``,
``int32`` (biases), …, with ``-sparse`` added when the tensor carries a sparse encoding. ``params``
counts the tensor's values (its dense shape for a sparse one), ``bytes`` the data as stored.
``other_bytes`` is everything else: the graph, metadata, names, quantization parameters and
alignment, so that the entries plus ``other_bytes`` add up to the file's size.

A tensor that TensorFlow Lite Micro's DECODE op (custom ``TFLM_DECODE``) rebuilds at run time is
counted under what DECODE makes of it: ``lut4`` for 4-bit indices into value tables (``lut1`` to
``lut7``), with ``params`` the decoded tensor's values and ``bytes`` its packed indices plus its
ancillary tensor (the 16-byte DECODE header and the value tables).

Pure: no TensorFlow, only the flatbuffer schema that ai-edge-litert ships.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class Entry:
    encoding: str
    tensors: int = 0
    params: int = 0
    bytes: int = 0

    def as_dict(self) -> dict:
        return {"encoding": self.encoding, "tensors": self.tensors, "params": self.params, "bytes": self.bytes}


def _type_names() -> dict[int, str]:
    from ai_edge_litert import schema_py_generated as schema

    return {v: k.lower() for k, v in vars(schema.TensorType).items() if not k.startswith("_")}


def _buffer_bytes(model, index: int) -> int:
    """The stored size of buffer ``index``: inline data, or data placed after the flatbuffer (offset/size)."""
    buffer = model.Buffers(index)
    if buffer is None:
        return 0
    size = buffer.DataLength()
    if not size and hasattr(buffer, "Offset") and buffer.Offset() > 1:  # files over 2 GB keep data outside
        size = int(buffer.Size())
    return size


_DECODE = b"TFLM_DECODE"
_DCM_BYTES = 16  # the DECODE Common Metadata header that begins every ancillary tensor


def _count(tensor) -> int:
    count = 1
    for d in tensor.ShapeAsNumpy() if tensor.ShapeLength() else []:
        count *= max(int(d), 0)
    return count


def _decoded(model, subgraph) -> dict[int, tuple[str, int, int]]:
    """Encoded tensor index -> (encoding, decoded params, its ancillary tensor's buffer) for every
    (encoded, ancillary) input pair of a DECODE op, whose i-th output is the i-th pair decoded."""
    found = {}
    for o in range(subgraph.OperatorsLength()):
        op = subgraph.Operators(o)
        if model.OperatorCodes(op.OpcodeIndex()).CustomCode() != _DECODE:
            continue
        for i in range(min(op.OutputsLength(), op.InputsLength() // 2)):
            ancillary = subgraph.Tensors(op.Inputs(2 * i + 1)).Buffer()
            header = model.Buffers(ancillary)
            if header is None or header.DataLength() < _DCM_BYTES:
                continue
            kind = int(header.Data(0))  # DCM byte 0: the decode type (0 = lookup tables)
            encoding = f"lut{int(header.Data(5)) & 0x07}" if kind == 0 else f"decode{kind}"
            found[op.Inputs(2 * i)] = (encoding, _count(subgraph.Tensors(op.Outputs(i))), ancillary)
    return found


def breakdown(path: str | Path, sized: bool = True) -> dict:
    """``{"storage": [entry, …], "other_bytes": n, "size_bytes": n}`` for one .tflite file, largest entry first.

    ``sized=False`` leaves ``size_bytes`` out (a record that states the size already).
    """
    from ai_edge_litert import schema_py_generated as schema

    blob = Path(path).read_bytes()
    model = schema.Model.GetRootAsModel(blob, 0)
    names = _type_names()
    entries: dict[str, Entry] = {}
    seen: set[int] = set()
    for s in range(model.SubgraphsLength()):
        subgraph = model.Subgraphs(s)
        decoded = _decoded(model, subgraph)
        seen.update(ancillary for _, _, ancillary in decoded.values())  # counted with their encoded tensor
        for t in range(subgraph.TensorsLength()):
            tensor = subgraph.Tensors(t)
            index = tensor.Buffer()
            if index == 0 or index in seen:  # buffer 0 is the empty sentinel; shared buffers count once
                continue
            size = _buffer_bytes(model, index)
            if not size:
                continue
            seen.add(index)
            encoding = names.get(tensor.Type(), f"type{tensor.Type()}")
            if tensor.Sparsity() is not None:  # the shape stays the dense one; the data holds the kept values
                encoding += "-sparse"
            params = _count(tensor)
            if t in decoded:  # packed indices: DECODE's output and its value tables count here
                encoding, params, ancillary = decoded[t]
                size += _buffer_bytes(model, ancillary)
            entry = entries.setdefault(encoding, Entry(encoding))
            entry.tensors += 1
            entry.params += params
            entry.bytes += size
    listed = sorted(entries.values(), key=lambda e: -e.bytes)
    other = len(blob) - sum(e.bytes for e in listed)
    found = {"storage": [e.as_dict() for e in listed], "other_bytes": other}
    return {**found, "size_bytes": len(blob)} if sized else found


def bits_per_param(storage: list[dict]) -> float | None:
    """Stored bits per weight over all constant tensors (None when the file holds none)."""
    params = sum(e["params"] for e in storage)
    return 8 * sum(e["bytes"] for e in storage) / params if params else None


def weights_by_output(path: str | Path) -> dict[str, int]:
    """Each op's output tensor name → the stored bytes of the constant tensors it reads (its weights and bias)."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAsModel(Path(path).read_bytes(), 0)
    found: dict[str, int] = {}
    for s in range(model.SubgraphsLength()):
        subgraph = model.Subgraphs(s)
        for o in range(subgraph.OperatorsLength()):
            op = subgraph.Operators(o)
            inputs = [int(i) for i in op.InputsAsNumpy()] if op.InputsLength() else []
            size = sum(_buffer_bytes(model, subgraph.Tensors(i).Buffer()) for i in inputs if i >= 0)
            for i in op.OutputsAsNumpy() if op.OutputsLength() else []:
                name = (subgraph.Tensors(int(i)).Name() or b"").decode(errors="replace")
                found[name] = found.get(name, 0) + size
    return found
