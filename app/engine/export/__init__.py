"""Exporters: ONNX (checked against onnxruntime)."""
