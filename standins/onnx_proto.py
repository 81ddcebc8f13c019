"""A minimal ONNX writer, so that writing the stand-in insightface files needs no ``onnx`` package.

The demo on stand-ins then runs on the runtime dependencies plus the extras it names (``onnx`` is a test tool).
It encodes only what the stand-in graphs use: nodes with int / int-list attributes, float32 and int64
initializers as raw little-endian data, and float tensor inputs/outputs with fixed or named dimensions.
Field numbers are those of the public ``onnx/onnx.proto`` (proto2: repeated scalars unpacked, fields in number
order, as the reference serializer writes them). tests/unit/test_onnx_proto.py builds the same graphs with the
``onnx`` package and asserts that the bytes are identical and pass ``onnx.checker``.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["ProtoWriter"]

# TensorProto.DataType values (onnx.proto).
_DTYPES = {np.dtype(np.float32): 1, np.dtype(np.int64): 7}
_ATTR_INT, _ATTR_INTS = 2, 7  # AttributeProto.AttributeType


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1  # negative int64 values are written as 10-byte two's complement
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _int(field: int, n: int) -> bytes:
    return _varint(field << 3) + _varint(n)


def _bytes(field: int, data: bytes) -> bytes:
    return _varint(field << 3 | 2) + _varint(len(data)) + data


def _str(field: int, text: str) -> bytes:
    return _bytes(field, text.encode("utf-8"))


def _attribute(name: str, value: int | Sequence[int]) -> bytes:
    # AttributeProto: name = 1, i = 3, ints = 8, type = 20.
    if isinstance(value, (int, np.integer)):
        return _str(1, name) + _int(3, int(value)) + _int(20, _ATTR_INT)
    return _str(1, name) + b"".join(_int(8, int(v)) for v in value) + _int(20, _ATTR_INTS)


class ProtoWriter:
    """Builds one ONNX model as bytes; the same five calls the ``onnx``-backed test builder answers."""

    def tensor(self, name: str, array: np.ndarray) -> bytes:
        """TensorProto: dims = 1, data_type = 2, name = 8, raw_data = 9."""
        array = np.ascontiguousarray(array)
        dtype = _DTYPES[array.dtype]
        dims = b"".join(_int(1, d) for d in array.shape)
        return dims + _int(2, dtype) + _str(8, name) + _bytes(9, array.astype(array.dtype.newbyteorder("<")).tobytes())

    def node(self, op_type: str, inputs: Sequence[str], outputs: Sequence[str], name: str, **attrs) -> bytes:
        """NodeProto: input = 1, output = 2, name = 3, op_type = 4, attribute = 5 (sorted by name, like onnx.helper)."""
        body = b"".join(_str(1, i) for i in inputs) + b"".join(_str(2, o) for o in outputs)
        body += _str(3, name) + _str(4, op_type)
        return body + b"".join(_bytes(5, _attribute(k, v)) for k, v in sorted(attrs.items()))

    def value_info(self, name: str, dims: Sequence[int | str]) -> bytes:
        """ValueInfoProto(name = 1, type = 2) of a float tensor: TypeProto.tensor_type(elem_type = 1, shape = 2)."""
        shape = b"".join(_bytes(1, _int(1, d) if isinstance(d, int) else _str(2, d)) for d in dims)
        tensor_type = _int(1, _DTYPES[np.dtype(np.float32)]) + _bytes(2, shape)
        return _str(1, name) + _bytes(2, _bytes(1, tensor_type))

    def model(
        self,
        graph_name: str,
        nodes: Sequence[bytes],
        inputs: Sequence[bytes],
        outputs: Sequence[bytes],
        initializers: Sequence[bytes],
        *,
        opset: int,
        ir_version: int,
        producer: str,
    ) -> bytes:
        """ModelProto: ir_version = 1, producer_name = 2, graph = 7, opset_import = 8 (domain = 1, version = 2).

        GraphProto: node = 1, name = 2, initializer = 5, input = 11, output = 12.
        """
        graph = b"".join(_bytes(1, n) for n in nodes) + _str(2, graph_name)
        graph += b"".join(_bytes(5, t) for t in initializers)
        graph += b"".join(_bytes(11, v) for v in inputs) + b"".join(_bytes(12, v) for v in outputs)
        opset_id = _str(1, "") + _int(2, opset)
        return _int(1, ir_version) + _str(2, producer) + _bytes(7, graph) + _bytes(8, opset_id)
