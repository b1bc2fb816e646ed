"""Calibration benchmark: ``python -m benchmarks.calibration`` (see run.py)."""
