#!/usr/bin/env bash
# The tests: sets up .venv with the test extra and runs the whole suite (extra pytest arguments pass through).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$root/scripts/setup_venv.sh" test,nfn,torch
cd "$root"
python -m pytest -n 2 --dist loadfile "$@"
