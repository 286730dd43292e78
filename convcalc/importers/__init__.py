"""Reading models written by other tools as convcalc specs.

- :mod:`convcalc.importers.onnx`: an ONNX model (``convcalc import model.onnx``, and
  ``convcalc check|verify|sizes model.onnx``), with the optional ``onnx`` package.

:func:`is_onnx` tells an ONNX file from a spec by its name (``.onnx``) or its first
byte (a serialized ``ModelProto`` starts with field 1, ``ir_version``: byte ``0x08``,
which no YAML or JSON text contains).
"""

from __future__ import annotations

#: The byte a serialized ONNX ModelProto starts with (field 1, a varint).
ONNX_FIRST_BYTE = b"\x08"


def is_onnx(name: str, head: bytes = b"") -> bool:
    """Whether file ``name``, whose first bytes are ``head``, is an ONNX model.

    >>> is_onnx("resnet50.onnx"), is_onnx("net.yaml", b"input: [3, 8, 8]"), is_onnx("m", b"\\x08\\x07")
    (True, False, True)
    """
    return name.lower().endswith(".onnx") or head[:1] == ONNX_FIRST_BYTE


__all__ = ["ONNX_FIRST_BYTE", "is_onnx"]
