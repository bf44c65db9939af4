#!/usr/bin/env bash
# Run the whole lab headless: install what is missing, then execute 01 -> 04 and print the results.
#   bash run_lab.sh [--profile full|cpu|smoke]
set -euo pipefail
cd "$(dirname "$0")"
bash setup.sh
exec python3 -m kdlab run "$@"
