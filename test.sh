#!/usr/bin/env bash
# The test command: unit tests, a check that notebooks are committed clean, and the four lab notebooks (then the
# optional advanced ones) executed in order with nbval on the `smoke` profile (tiny model, synthetic data, offline).
set -euo pipefail
cd "$(dirname "$0")"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
python -m kdlab clean --check 01-Setup.ipynb 02-Distill.ipynb 03-Inference.ipynb 04-Benchmark.ipynb advanced/05-Advanced.ipynb advanced/06-Compression.ipynb advanced/07-LLM-Distillation.ipynb
python -m pytest -q tests
export KDLAB_PROFILE=smoke KDLAB_RUNS_DIR="$(mktemp -d)/runs"
python -m pytest -q -p no:cacheprovider --nbval-lax --nbval-current-env -x \
  01-Setup.ipynb 02-Distill.ipynb 03-Inference.ipynb 04-Benchmark.ipynb advanced/05-Advanced.ipynb advanced/06-Compression.ipynb advanced/07-LLM-Distillation.ipynb
