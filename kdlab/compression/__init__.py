"""Compression beyond fewer layers (``advanced/06-Compression.ipynb``).

- ``pruning``: structured pruning of heads and FFN neurons (gradient-of-mask importance, real removal, reloading).
- ``combined``: prune + KD recovery, INT8 on top, and the course's combined-compression table.

Imports everything below it: the foundation, data, models, metrics, distillation, measurement.
"""
