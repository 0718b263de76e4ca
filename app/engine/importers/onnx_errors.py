"""The errors an ONNX import raises (``onnx_import`` re-exports them): kept apart so that
the importer's parts (``onnx_builder``) can raise them without importing ``onnx_import``."""

from __future__ import annotations

from ..errors import NetCanvasError


class OnnxImportError(NetCanvasError):
    """An ONNX file that cannot be read, or holds nodes NetCanvas has no layer for.
    ``failures`` lists ``(node name, op type, reason or None)`` for the latter."""

    def __init__(self, message: str, where: str | None = None, failures: list | None = None):
        super().__init__(message, where)
        self.failures = failures or []


class OnnxFileError(OnnxImportError):
    """A file that cannot be read or is not an ONNX model at all."""
