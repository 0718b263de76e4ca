"""MIME types shared by the palette, the canvas and the clipboard."""

LAYER_MIME = "application/x-netcanvas-layer"  # utf-8 layer type name, palette -> canvas
