"""The drag payload that carries a layer type from the palette to the canvas."""

from __future__ import annotations

from PySide6.QtCore import QMimeData

LAYER_MIME = "application/x-netcanvas-layer"  # utf-8 layer type name, palette -> canvas


def layer_type(data: QMimeData) -> str | None:
    """The layer type name a drag carries, or None when it carries no layer."""
    if not data.hasFormat(LAYER_MIME):
        return None
    return bytes(data.data(LAYER_MIME)).decode("utf-8", errors="replace")
