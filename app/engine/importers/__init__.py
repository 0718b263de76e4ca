"""Importers: other formats into NetCanvas projects (ONNX)."""

from .onnx_import import (
                          ImportResult,
                          OnnxFileError,
                          OnnxImportError,
                          compare_with_onnxruntime,
                          import_onnx,
                          save_imported,
)

__all__ = ["ImportResult", "OnnxFileError", "OnnxImportError", "compare_with_onnxruntime", "import_onnx",
           "save_imported"]
