"""woundscope training: PyTorch datasets, model, loop, evaluation and ONNX export.

Needs the ``[train]`` extra (torch). The service never imports this package.
"""
