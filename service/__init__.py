"""woundscope: wound area from clinical photographs, and trial healing endpoints.

The ``service`` package is torch-free: it is what a serving install runs.
"""

__version__ = "0.1.0"
