"""Restoration engines: one protocol over torch, compiled, ONNX Runtime and TensorRT backends."""
