#!/usr/bin/env bash
# The demo: sets up .venv, runs the five papers' reproductions on embedded data, writes a report folder.
# Usage: bash scripts/demo.sh [--smoke | --full] [report_dir]      (default: the demo preset, reports/demo)
#   (default)  small models trained for real, all five papers in about 10 minutes on 2 CPU cores
#   --full     the full CPU reproductions plus the two foundation jobs (hours on 2 CPU cores)
#   --smoke    a few steps of everything: checks the pipeline; its numbers mean nothing
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
preset=demo
out=reports/demo
for arg in "$@"; do
  case "$arg" in
    --full) preset=full ;;
    --smoke) preset=smoke ;;
    --demo) preset=demo ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    -*) echo "demo.sh: unknown option $arg (use --smoke, --full or a report folder)" >&2; exit 2 ;;
    *) out="$arg" ;;
  esac
done
source "$root/scripts/setup_venv.sh" nfn
cd "$root"
python scripts/demo.py --preset "$preset" --out "$out"
