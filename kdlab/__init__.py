"""kdlab: a knowledge-distillation lab over transformers (Hinton KD + MiniLM self-attention transfer)."""

import os as _os

# torch and the fast tokenizers both start thread pools; on a 2-core machine that oversubscribes the CPU.
_os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from kdlab.errors import KDLabError  # noqa: E402

__version__ = "0.1.0"
__all__ = ["KDLabError", "Lab", "__version__"]


def __getattr__(name: str):
    """``from kdlab import Lab`` (the notebooks' façade) loads torch and transformers only when asked for."""
    if name == "Lab":
        from kdlab.notebook import Lab

        return Lab
    raise AttributeError(f"module 'kdlab' has no attribute {name!r}")
