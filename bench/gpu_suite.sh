#!/usr/bin/env bash
# The GPU benchmark suite in one call (issue 16): sets up .venv-gpu (the `gpu` extra, pinned by constraints.txt)
# if needed, then runs bench/gpu_suite.py: DiffEqFormer vs GPT-2 small (bf16, batch 8 and 32, MFU), CRATE-B/16 vs
# ViT-B/16, fusion of two ViT-B/16, zoo models per minute; each stage with its own timeout. Prints one JSON object
# and writes bench/results/gpu.json. Meant to finish in under 8 minutes on one H100/H200 from a fresh clone.
#
#   bash bench/gpu_suite.sh [--out DIR] [--budget SECONDS] [--only STAGE ...]
#   bash bench/gpu_suite.sh --cpu-smoke      # every stage at tiny sizes on CPU, in .venv: tests the plumbing
#
# VENV overrides the environment's folder (default .venv-gpu, or .venv with --cpu-smoke); GPU_SUITE_EXTRAS the
# extras installed into it (default gpu,torch: the zoo stage times PyTorch as its baseline; plain `gpu` installs
# a few GB less and the zoo stage then fails); GPU_SUITE_TOTAL_S the whole call's target (default 450 s): the
# stages get what the set-up leaves of it. Without PyPI, pip's own PIP_NO_INDEX=1 PIP_FIND_LINKS=<wheel folder>
# install from local wheels.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
smoke=false
for arg in "$@"; do [ "$arg" = "--cpu-smoke" ] && smoke=true; done

start=$(date +%s)
if $smoke; then
  export VENV="${VENV:-$root/.venv}"
  # an existing CPU environment is used as it is (re-installing it with other extras would disturb its users)
  [ -x "$VENV/bin/python" ] || source scripts/setup_venv.sh test
else
  export VENV="${VENV:-$root/.venv-gpu}"
  source scripts/setup_venv.sh "${GPU_SUITE_EXTRAS:-gpu,torch}"
  if ! "$VENV/bin/python" -c 'import jax, sys; sys.exit(jax.default_backend() != "gpu")'; then
    echo "bench/gpu_suite.sh: JAX in $VENV sees no GPU (backend: $("$VENV/bin/python" -c 'import jax; print(jax.default_backend())'))." >&2
    echo "Run it on a machine with an NVIDIA GPU and driver, or use --cpu-smoke to test the plumbing on CPU." >&2
    exit 2
  fi
fi
setup_seconds=$(( $(date +%s) - start ))
# the stages get what is left of GPU_SUITE_TOTAL_S (default 450 s) after the set-up, less 30 s for the merge;
# a --budget given on the command line comes later and wins
budget=$(( ${GPU_SUITE_TOTAL_S:-450} - setup_seconds - 30 ))
exec "$VENV/bin/python" bench/gpu_suite.py --setup_seconds "$setup_seconds" --budget $(( budget > 60 ? budget : 60 )) "$@"
