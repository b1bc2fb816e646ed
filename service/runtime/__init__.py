"""The inference runtime: model artifacts on disk, the ONNX segmenter, metrics, the process-wide Runtime, model evaluation."""
