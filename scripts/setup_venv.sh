#!/usr/bin/env bash
# Creates .venv (Python 3.11) and installs the project with the given extras, pinned by constraints.txt.
# Usage: source scripts/setup_venv.sh [extras]     e.g.  source scripts/setup_venv.sh test
# Re-running is cheap: the install is skipped while pyproject.toml, constraints.txt and the extras are unchanged.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
extras="${1:-}"
venv="${VENV:-$root/.venv}"
if [ ! -x "$venv/bin/python" ]; then
  py="$(command -v python3.11 || command -v python3)"
  "$py" -c 'import sys; assert sys.version_info[:2] >= (3, 11), "Python >= 3.11 is required"'
  "$py" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --upgrade pip
fi
stamp="$venv/.installed-$(cat "$root/pyproject.toml" "$root/constraints.txt" <(echo "$extras") | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  spec="$root"
  [ -n "$extras" ] && spec="$root[$extras]"
  echo "Installing the project into $venv (extras: ${extras:-none}); this takes a few minutes the first time." >&2
  "$venv/bin/python" -m pip install --quiet -c "$root/constraints.txt" -e "$spec"
  rm -f "$venv"/.installed-* && touch "$stamp"
fi
export PATH="$venv/bin:$PATH"
