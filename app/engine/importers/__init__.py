"""Importers: other formats into NetCanvas projects (ONNX, PyTorch).

The names below load their module on first use (PEP 562): the ONNX export reads a few
helpers of this package (metadata, the onnxruntime comparison) and should not pay for the
whole importer (``onnx.reference``, the block finder) it does not run.
"""

from importlib import import_module

_FROM_ONNX_IMPORT = ("ImportResult", "OnnxFileError", "OnnxImportError", "compare_with_onnxruntime", "import_onnx",
                     "save_imported")
__all__ = list(_FROM_ONNX_IMPORT)


def __getattr__(name: str):
    if name in _FROM_ONNX_IMPORT:
        return getattr(import_module(".onnx_import", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
