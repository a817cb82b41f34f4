#!/usr/bin/env bash
# The demo: sets up .venv, runs every package's tiny reproduction on embedded data, writes a report folder.
# Usage: bash scripts/demo.sh [report_dir]        (default: reports/demo)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$root/scripts/setup_venv.sh" nfn
cd "$root"
python -m common_jax.main.demo --out "${1:-reports/demo}"
