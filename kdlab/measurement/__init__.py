"""Measurement: what a model costs and how much of the teacher it took on.

- ``benchmark``: latency P50/P95/P99, throughput, memory and size per model and precision (fp32, fp16, INT8, ONNX).
- ``timing``, ``memory``: the instruments (pinned threads, round-robin timing with device syncs; peak memory).
- ``quantize``, ``onnx_export``: INT8 weights for the CPU; ONNX export and an onnxruntime session.
- ``train_step``: the cost of one training step, five ways.
- ``padding``: how much of a batch is padding.
- ``similarity``: agreement, attention KL and [CLS] cosine to the teacher.
- ``records``: Markdown tables and dated sections of BENCHMARKS.md.

Imports the foundation, ``kdlab.data``, ``kdlab.models``, ``kdlab.metrics`` and ``kdlab.distillation``.
"""
