"""Metrics: accuracy and F1 through Hugging Face ``evaluate`` (modules shipped in ``evaluate_metrics/``, loaded by
path: ``evaluate_modules``), Wilson intervals, McNemar's test, predictions of a classifier (``classification``).

Imports the foundation only.
"""
